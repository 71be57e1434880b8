//! The Instance Metadata Service's managed-identity token endpoint (VMs, VM scale sets, AKS
//! nodes). azure_identity's own IMDS credential has a fixed address and waits up to 72 s for
//! an absent endpoint; this one takes an address override (ACRLINK_IMDS_ENDPOINT, for the
//! emulator and proxies) and, inside `--auth auto`, probes first with a short timeout, as the
//! Azure SDKs' DefaultAzureCredential does.
//!
//! Azure Arc-enabled servers run an IMDS-like service (IDENTITY_ENDPOINT + IMDS_ENDPOINT) that
//! azure_identity for Rust does not support: it answers the first request 401 with
//! `WWW-Authenticate: Basic realm=<key file>`, a file only local administrators can read, and
//! the request is repeated with `Authorization: Basic <its content>`. As MSAL and
//! azure-identity do, the key is read only from the agent's key directory, and only a `.key`
//! file of at most 4 KB.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use serde_json::Value;

use crate::sensitive::Sensitive;

/// Where IMDS answers on every Azure VM.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
const PATH: &str = "/metadata/identity/oauth2/token";
const API_VERSION: &str = "2018-02-01";
/// The Azure Arc identity service's API version (MSAL's and azure-identity's).
const ARC_API_VERSION: &str = "2020-06-01";
/// Largest key file read, as MSAL and azure-identity refuse bigger ones.
const ARC_KEY_LIMIT: u64 = 4096;

/// Where the Azure Connected Machine agent writes the keys its identity service challenges with.
#[cfg(not(windows))]
pub fn default_arc_key_directory(_program_data: Option<&str>) -> PathBuf {
    PathBuf::from("/var/opt/azcmagent/tokens")
}

/// Where the Azure Connected Machine agent writes the keys its identity service challenges with.
#[cfg(windows)]
pub fn default_arc_key_directory(program_data: Option<&str>) -> PathBuf {
    Path::new(program_data.unwrap_or("C:\\ProgramData")).join("AzureConnectedMachineAgent").join("Tokens")
}

/// Which service hands out the tokens.
#[derive(Debug)]
enum Service {
    /// IMDS at a base address (`http://169.254.169.254`).
    Imds,
    /// Azure Arc's identity service: `endpoint` is the full token URL (IDENTITY_ENDPOINT).
    Arc { key_directory: PathBuf },
}

#[derive(Debug)]
pub struct ImdsCredential {
    http: reqwest::Client,
    service: Service,
    endpoint: String,
    client_id: Option<String>,
    /// Some(timeout): ask once without the Metadata header first; no answer within it means
    /// there is no IMDS here.
    probe: Option<Duration>,
    probed: tokio::sync::OnceCell<Result<(), String>>,
    cache: Mutex<HashMap<String, AccessToken>>,
}

fn credential_error(message: String) -> Error {
    Error::with_message(ErrorKind::Credential, message)
}

impl ImdsCredential {
    /// `endpoint` is the base (`http://169.254.169.254`); `client_id` picks a user-assigned
    /// identity.
    pub fn new(endpoint: &str, client_id: Option<String>, probe: Option<Duration>) -> Result<ImdsCredential, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("acrlink/", env!("CARGO_PKG_VERSION")))
            // IMDS is link-local: never through a proxy.
            .no_proxy()
            .connect_timeout(probe.unwrap_or(Duration::from_secs(5)))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ImdsCredential {
            http,
            service: Service::Imds,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            client_id,
            probe,
            probed: tokio::sync::OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Azure Arc's identity service at `endpoint` (IDENTITY_ENDPOINT, the full token URL), whose
    /// challenge keys are read from `key_directory` only. System-assigned identity only.
    pub fn arc(endpoint: &str, key_directory: PathBuf) -> Result<ImdsCredential, String> {
        let mut credential = ImdsCredential::new(endpoint, None, None)?;
        credential.service = Service::Arc { key_directory };
        Ok(credential)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn url(&self, resource: &str) -> String {
        if let Service::Arc { .. } = self.service {
            let separator = if self.endpoint.contains('?') { '&' } else { '?' };
            return format!(
                "{}{separator}api-version={ARC_API_VERSION}&resource={}",
                self.endpoint,
                form_encode(resource)
            );
        }
        let mut url = format!("{}{PATH}?api-version={API_VERSION}&resource={}", self.endpoint, form_encode(resource));
        if let Some(client_id) = &self.client_id {
            url.push_str("&client_id=");
            url.push_str(&form_encode(client_id));
        }
        url
    }

    /// Any HTTP answer (even an error) means IMDS is there.
    async fn probe(&self, resource: &str, timeout: Duration) -> Result<(), String> {
        match self.http.get(self.url(resource)).timeout(timeout).send().await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "no answer from IMDS at {} within {} s (not an Azure VM; set ACRLINK_IMDS_ENDPOINT to reach it elsewhere)",
                self.endpoint,
                timeout.as_secs_f64()
            )),
        }
    }

    fn name(&self) -> &'static str {
        match self.service {
            Service::Imds => "IMDS",
            Service::Arc { .. } => "the Azure Arc identity service",
        }
    }

    async fn send(&self, resource: &str, key: Option<&Sensitive<String>>) -> Result<reqwest::Response, String> {
        let mut request = self.http.get(self.url(resource)).header("Metadata", "true");
        if let Some(key) = key {
            request = request.header("Authorization", format!("Basic {}", key.expose()));
        }
        request.send().await.map_err(|e| format!("{} at {} did not answer: {e}", self.name(), self.endpoint))
    }

    async fn request(&self, resource: &str) -> Result<AccessToken, String> {
        let mut response = self.send(resource, None).await?;
        if let Service::Arc { key_directory } = &self.service
            && response.status() == reqwest::StatusCode::UNAUTHORIZED
        {
            let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
            let key = arc_key(challenge, key_directory).map_err(|why| format!("{why} (from {})", self.endpoint))?;
            response = self.send(resource, Some(&key)).await?;
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let name = self.name();
        if !status.is_success() {
            let why = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no details");
            let which = match &self.client_id {
                Some(id) => format!("the user-assigned identity {id}"),
                None => "the system-assigned identity".to_string(),
            };
            return Err(format!("{name} at {} refused a token for {which} ({status}): {why}", self.endpoint));
        }
        let token = body["access_token"].as_str().ok_or_else(|| format!("{name} answered without an access_token"))?;
        let expires_on = number(&body["expires_on"])
            .or_else(|| number(&body["expires_in"]).map(|s| time::OffsetDateTime::now_utc().unix_timestamp() + s))
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or_else(|| format!("{name} answered without a valid expires_on"))?;
        Ok(AccessToken::new(token.to_string(), expires_on))
    }
}

/// The key an Azure Arc challenge (`Basic realm=<path>`) points at, read only when the file is a
/// `.key` file directly in `directory` and at most 4 KB: the service names the file, so a
/// compromised or impostor service must not make acrlink send any other file's content.
fn arc_key(challenge: Option<&str>, directory: &Path) -> Result<Sensitive<String>, String> {
    let realm = challenge
        .and_then(|h| h.split_once("realm="))
        .map(|(_, realm)| realm.trim().trim_matches('"'))
        .filter(|realm| !realm.is_empty())
        .ok_or("the Azure Arc identity service answered 401 without a `WWW-Authenticate: Basic realm=<key file>` challenge")?;
    let file = Path::new(realm);
    let refuse =
        |why: &str| Err(format!("refused the key file {realm} named by the Azure Arc identity service: {why}"));
    if file.parent() != Some(directory) {
        return refuse(&format!("keys are read only from {}", directory.display()));
    }
    if file.extension().and_then(|e| e.to_str()) != Some("key") {
        return refuse("not a .key file");
    }
    let size = std::fs::metadata(file).map_err(|e| format!("cannot read the Azure Arc key file {realm}: {e}"))?.len();
    if size > ARC_KEY_LIMIT {
        return refuse(&format!("{size} bytes, more than a key's {ARC_KEY_LIMIT}"));
    }
    let key = std::fs::read_to_string(file).map_err(|e| format!("cannot read the Azure Arc key file {realm}: {e}"))?;
    Ok(Sensitive::new(key))
}

/// IMDS sends numbers as strings; App Service-like endpoints sometimes as numbers.
fn number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[async_trait::async_trait]
impl TokenCredential for ImdsCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(credential_error("a managed identity token is for exactly one scope".into()));
        };
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        if let Some(timeout) = self.probe {
            self.probed.get_or_init(|| self.probe(resource, timeout)).await.clone().map_err(credential_error)?;
        }
        let fresh = |t: &AccessToken| t.expires_on > time::OffsetDateTime::now_utc() + Duration::from_secs(30);
        if let Ok(cache) = self.cache.lock()
            && let Some(token) = cache.get(resource).filter(|t| fresh(t))
        {
            return Ok(token.clone());
        }
        let token = self.request(resource).await.map_err(credential_error)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(resource.to_string(), token.clone());
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arc_key_is_read_only_from_a_small_key_file_in_the_key_directory() {
        let keys = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let challenge = |path: &Path| format!("Basic realm={}", path.display());
        let good = keys.path().join("a1.key");
        std::fs::write(&good, "the-key").unwrap();
        let key = arc_key(Some(&challenge(&good)), keys.path()).unwrap();
        assert_eq!(key.expose(), "the-key");

        let outside = other.path().join("a1.key");
        std::fs::write(&outside, "x").unwrap();
        let not_key = keys.path().join("passwd");
        std::fs::write(&not_key, "x").unwrap();
        let big = keys.path().join("big.key");
        std::fs::write(&big, "x".repeat(5000)).unwrap();
        let dotted = keys.path().join("..").join(other.path().file_name().unwrap()).join("a1.key");
        for (file, why) in [
            (outside, "keys are read only from"),
            (dotted, "keys are read only from"),
            (not_key, "not a .key file"),
            (big, "5000 bytes"),
        ] {
            let error = arc_key(Some(&challenge(&file)), keys.path()).err().unwrap();
            assert!(error.contains(why), "{error}");
        }
        assert!(arc_key(None, keys.path()).err().unwrap().contains("without a `WWW-Authenticate"));
    }
}
