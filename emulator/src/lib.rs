//! acrlink-emulator: a faithful local Azure on loopback (Entra token endpoint, ARM for
//! subscriptions, AKS, ACR and Microsoft.Authorization) over HTTPS with a CA generated at start.
//! It shares no types with the acrlink engine, so a serialisation bug cannot hide on both sides.
//!
//! Map of the crate:
//! - `world`: the world file (TOML) model, its checks and JSON schema; `generate`: big worlds.
//! - `server`: TLS listener and the per-request pipeline; `route`: path → route template.
//! - `entra`: token endpoint and JWTs; `arm`: ARM's front door and resource providers.
//! - `state`: live tenant state; `handle`: the library's `StateHandle`; `admin`: `/_emulator/`.
//! - `faults`, `throttle`, `ledger`: injected misbehaviour, buckets, request counts.
//! - `kube`: each cluster's Kubernetes API server; `kubelet`: its nodes pulling images.
//! - `registry`: each registry's data plane (token service, manifests) and pull checks.

mod admin;
mod arm;
mod assignments;
mod cloud;
mod entra;
mod error;
mod faults;
mod generate;
mod graph;
mod handle;
mod http;
mod identity;
mod ids;
mod kube;
mod kubelet;
mod ledger;
mod registry;
mod roles;
mod route;
mod server;
mod state;
mod throttle;
mod tls;
mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;

pub use cloud::CloudName;
pub use error::{EmulatorError, WorldProblem};
pub use generate::{Spec as GenerateSpec, generate_world, parse_spec as parse_generate_spec};
pub use handle::StateHandle;
pub use ledger::{LedgerEntry, LedgerSnapshot};
pub use state::views::{
    ClusterView, NewPrincipal, NewRoleAssignment, PrincipalView, RegistryPatch, RegistryView, RoleAssignmentView,
};
pub use world::{
    Bucket, ClientSecret, Cluster, ClusterIdentity, CustomRole, FaultKind, FaultRule, Faults, FederatedCredential,
    Grant, Kubelet, KubeletIdentity, Lro, LroMode, Principal, Registry, RegistryToken, ResourceGroup, RoleAssignment,
    RoleAssignmentMode, ScopeMap, Settings, SignIn, Subscription, Tenant, Throttle, World,
};

/// The role definition GUID of AcrPull (the same in every tenant and cloud).
pub const ACR_PULL_ROLE_ID: &str = roles::ACR_PULL;
/// The role definition GUID of Container Registry Repository Reader (ABAC registries).
pub const REPOSITORY_READER_ROLE_ID: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";

/// What a started emulator tells its clients: the one JSON line `acrlink emulator` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadyInfo {
    /// ARM, e.g. `https://127.0.0.1:PORT`.
    pub arm_endpoint: String,
    /// Entra's authority host (the same server), e.g. `https://127.0.0.1:PORT`.
    pub authority_host: String,
    pub tenant_id: String,
    /// The reserved admin endpoint, `https://127.0.0.1:PORT/_emulator`.
    pub admin_endpoint: String,
    /// PEM bundle of the generated CA; exists while the emulator runs.
    pub ca_file: String,
    /// The base of the per-cluster Kubernetes API paths kubeconfigs point at.
    pub kubernetes_endpoint: String,
    /// The base of the registries' data planes by path: `{registry_endpoint}/{loginServer}/v2/`.
    /// (Clients that resolve `<name>.azurecr.io` to the emulator may use the name instead.)
    pub registry_endpoint: String,
    /// The environment that makes acrlink and Azure SDK clients target this emulator.
    pub env: BTreeMap<String, String>,
    /// What the secret-less sign-in places would add to a process's environment, pointing at
    /// this emulator: GitHub Actions' and Azure Pipelines' OIDC token services, App Service's
    /// managed-identity endpoint and `ACRLINK_IMDS_ENDPOINT` (IMDS). Not part of `env`: each
    /// would change which method `--auth auto` picks. Not in the ready line either, which
    /// keeps its keys.
    #[serde(skip)]
    pub sign_in_env: BTreeMap<String, String>,
}

/// A running emulator. Dropping it stops serving as well; `shutdown` waits for that.
pub struct Emulator {
    shared: Arc<server::Shared>,
    address: SocketAddr,
    ca_file: tls::CaFile,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Starts serving `world` on `listen` (`127.0.0.1:0` picks a free port).
    pub async fn start(world: World, listen: SocketAddr) -> Result<Emulator, EmulatorError> {
        // The workspace builds rustls with ring only; a second install attempt is harmless.
        rustls::crypto::ring::default_provider().install_default().ok();
        world.check()?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| EmulatorError::Bind { addr: listen, source })?;
        let address = listener.local_addr().map_err(|source| EmulatorError::Bind { addr: listen, source })?;
        // Login servers go into the certificate so clients can reach registries by name.
        let suffix = world.tenant.cloud.profile().acr_suffix;
        let mut login_servers: Vec<String> = world
            .registries
            .iter()
            .map(|r| r.login_server.clone().unwrap_or_else(|| format!("{}.{suffix}", r.name.to_ascii_lowercase())))
            .collect();
        login_servers.push(format!("*.{suffix}"));
        let tls = tls::generate(address.ip(), &login_servers)?;
        let ca_file = tls::CaFile::write(&tls.ca_pem)?;
        let host = if address.ip().is_unspecified() { "127.0.0.1".to_string() } else { address.ip().to_string() };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let endpoint = format!("https://{host}:{}", address.port());

        let rng = ring::rand::SystemRandom::new();
        let signing_key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| EmulatorError::Tls("cannot generate the token signing key".into()))?;
        let state = state::State::build(&world, Instant::now());
        let arc_key_directory = ca_file.dir().join("azcmagent-tokens");
        std::fs::create_dir_all(&arc_key_directory)
            .map_err(|source| EmulatorError::Output { what: arc_key_directory.display().to_string(), source })?;
        let shared = Arc::new(server::Shared {
            throttle: Mutex::new(throttle::Throttler::new(world.settings.throttle.clone())),
            state: Mutex::new(state),
            faults: Mutex::new(faults::FaultState::new(world.faults.clone())),
            ledger: Mutex::new(ledger::Ledger::default()),
            signing_key,
            endpoint,
            ca_pem: tls.ca_pem.clone(),
            sign_in: world.sign_in.clone(),
            arc_key_directory,
            cloud: world.tenant.cloud,
            rendered: std::sync::atomic::AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(kubelet::run(shared.clone(), stopped.clone()));
        let task = tokio::spawn(server::serve(listener, tls.config, shared.clone(), stopped));
        Ok(Emulator { shared, address, ca_file, stop, task: Some(task) })
    }

    /// The address actually listened on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The generated CA certificate (PEM), for clients configured in code.
    pub fn ca_pem(&self) -> &str {
        &self.shared.ca_pem
    }

    pub fn ca_file(&self) -> &Path {
        self.ca_file.path()
    }

    pub fn ready_info(&self) -> ReadyInfo {
        let endpoint = self.shared.endpoint.clone();
        // Taken apart from the literal: `env()` locks the state again, and a guard held across
        // the whole struct expression would deadlock.
        let tenant_id = self.shared.state().tenant_id.clone();
        ReadyInfo {
            arm_endpoint: endpoint.clone(),
            authority_host: endpoint.clone(),
            tenant_id,
            admin_endpoint: format!("{endpoint}/_emulator"),
            ca_file: self.ca_file.path().display().to_string(),
            kubernetes_endpoint: format!("{endpoint}/k8s"),
            registry_endpoint: format!("{endpoint}/acr"),
            env: self.env(),
            sign_in_env: self.sign_in_env(),
        }
    }

    /// The variables of every secret-less sign-in place (see `ReadyInfo::sign_in_env`).
    pub fn sign_in_env(&self) -> BTreeMap<String, String> {
        identity::environment(&self.shared)
    }

    /// The variables of an Azure Arc-enabled server whose agent is this emulator: IDENTITY_ENDPOINT
    /// and IMDS_ENDPOINT, and ACRLINK_ARC_KEY_DIRECTORY, where its challenge keys are written.
    pub fn arc_sign_in_env(&self) -> BTreeMap<String, String> {
        identity::arc_environment(&self.shared)
    }

    /// Exactly what makes acrlink and other clients target this emulator.
    pub fn env(&self) -> BTreeMap<String, String> {
        let endpoint = self.shared.endpoint.clone();
        let ca = self.ca_file.path().display().to_string();
        let state = self.shared.state();
        let mut env = BTreeMap::new();
        env.insert("SSL_CERT_FILE".into(), ca.clone());
        // Python's requests (Azure CLI, azure-identity for Python) ignores SSL_CERT_FILE.
        env.insert("REQUESTS_CA_BUNDLE".into(), ca);
        env.insert("AZURE_AUTHORITY_HOST".into(), endpoint.clone());
        env.insert("ACRLINK_ARM_ENDPOINT".into(), endpoint.clone());
        // Microsoft Graph (`/v1.0`) is served on the same host.
        env.insert("ACRLINK_GRAPH_ENDPOINT".into(), endpoint.clone());
        env.insert("ACRLINK_EMULATOR_ADMIN".into(), format!("{endpoint}/_emulator"));
        // Registries' data planes (token exchange), each under `/acr/<login server>`.
        env.insert("ACRLINK_REGISTRY_ENDPOINT".into(), format!("{endpoint}/acr"));
        env.insert("AZURE_TENANT_ID".into(), state.tenant_id.clone());
        env.insert("AZURE_CLIENT_ID".into(), state.default_client.0.clone());
        env.insert("AZURE_CLIENT_SECRET".into(), state.default_client.1.clone());
        if let Some(sub) = state.subscriptions.first() {
            env.insert("AZURE_SUBSCRIPTION_ID".into(), sub.id.clone());
        }
        env
    }

    /// Request counts so far.
    pub fn ledger(&self) -> LedgerSnapshot {
        self.shared.ledger().snapshot()
    }

    pub fn reset_ledger(&self) {
        self.shared.ledger().reset();
    }

    /// How many list items (clusters, registries, role assignments, Resource Graph rows, ...)
    /// the emulator has turned into JSON for list answers since it started: the work paging
    /// costs, which should grow with the pages asked for, not with the size of the lists.
    pub fn list_items_rendered(&self) -> u64 {
        self.shared.rendered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Replaces every fault (latency, jitter, invisibility, one-shot rules).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults().faults = faults;
    }

    /// Adds one one-shot rule to the current faults.
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.faults().faults.rules.push(rule);
    }

    /// The faults in force now (spent rules are gone).
    pub fn faults(&self) -> Faults {
        self.shared.faults().faults.clone()
    }

    /// Changes live state behind the clients' back.
    pub fn state(&self) -> StateHandle {
        StateHandle { shared: self.shared.clone() }
    }

    /// Stops accepting, closes open connections and removes the CA file.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What `acrlink emulator` runs: with `generate = Some(spec)` write the generated world to `out`
/// or stdout and return; otherwise load `world`, start, print ONE JSON ready line on stdout,
/// and serve until SIGINT/SIGTERM.
pub async fn run_command(
    world: Option<PathBuf>,
    listen: SocketAddr,
    generate: Option<String>,
    out: Option<PathBuf>,
) -> Result<(), EmulatorError> {
    if let Some(spec) = generate {
        let text = generate_world(&spec)?;
        return match out {
            Some(path) => std::fs::write(&path, text)
                .map_err(|source| EmulatorError::Output { what: path.display().to_string(), source }),
            None => {
                use std::io::Write;
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .map_err(|source| EmulatorError::Output { what: "stdout".into(), source })
            }
        };
    }
    let Some(path) = world else {
        return Err(EmulatorError::State("give a world file (--world FILE) or a spec to --generate".into()));
    };
    let world = World::from_file(&path)?;
    let emulator = Emulator::start(world, listen).await?;
    let line = serde_json::to_string(&emulator.ready_info())
        .map_err(|e| EmulatorError::State(format!("cannot write the ready line: {e}")))?;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(|source| EmulatorError::Output { what: "stdout".into(), source })?;
    }
    wait_for_signal().await;
    emulator.shutdown().await;
    Ok(())
}

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere): how a serving emulator is told to stop.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
