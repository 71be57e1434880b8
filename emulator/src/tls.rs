//! The certificate authority generated at start, the server certificate it signs for loopback
//! names, the rustls server config (ring provider), and the CA file handed to clients.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::EmulatorError;

pub(crate) struct Tls {
    pub config: Arc<ServerConfig>,
    pub ca_pem: String,
}

fn tls_error(e: impl std::fmt::Display) -> EmulatorError {
    EmulatorError::Tls(e.to_string())
}

pub(crate) fn generate(listen_ip: IpAddr, extra_names: &[String]) -> Result<Tls, EmulatorError> {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "acrlink emulator CA");
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().map_err(tls_error)?)
        .map_err(tls_error)?;

    let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string(), "::1".to_string()];
    if !listen_ip.is_unspecified() && !names.contains(&listen_ip.to_string()) {
        names.push(listen_ip.to_string());
    }
    for name in extra_names.iter().map(|n| n.to_ascii_lowercase()).chain(["*.azurecr.io".to_string()]) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let leaf_key = rcgen::KeyPair::generate().map_err(tls_error)?;
    let mut leaf_params = rcgen::CertificateParams::new(names).map_err(tls_error)?;
    leaf_params.distinguished_name.push(rcgen::DnType::CommonName, "acrlink emulator");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(tls_error)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), CertificateDer::from(ca.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .map_err(tls_error)?;
    // Offer both, as ARM does; clients with HTTP/2 support pick it.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls { config: Arc::new(config), ca_pem: ca.pem() })
}

/// The CA bundle on disk, removed when the emulator stops.
pub(crate) struct CaFile {
    dir: PathBuf,
    pub path: PathBuf,
}

impl CaFile {
    pub fn write(pem: &str) -> Result<CaFile, EmulatorError> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("acrlink-emulator-{}-{}", std::process::id(), &unique[..8]));
        std::fs::create_dir_all(&dir)
            .map_err(|source| EmulatorError::Output { what: dir.display().to_string(), source })?;
        let path = dir.join("ca.pem");
        std::fs::write(&path, pem)
            .map_err(|source| EmulatorError::Output { what: path.display().to_string(), source })?;
        Ok(CaFile { dir, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The emulator's own temporary directory, removed with it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for CaFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
