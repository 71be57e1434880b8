//! The validated desired-state file: what the engine reads. Every value here has passed the
//! checks in `check`; names are Azure-valid, references resolve, defaults are applied.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use super::raw::{Cloud, Credential};
pub use super::selector::{ClusterSelector, LabelSelector};

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// Set when several files manage the same registries or clusters; see `Owner`.
    pub owner: Owner,
    pub cloud: Cloud,
    pub tenant_id: Option<String>,
    pub registries: BTreeMap<String, Registry>,
    pub clusters: BTreeMap<String, Cluster>,
    pub cluster_sets: Vec<ClusterSet>,
    pub bindings: Vec<Binding>,
}

/// Whose objects a run may change and prune. Everything acrlink writes carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(Option<String>);

impl Owner {
    /// `owner = "default"` is the same owner as no owner at all.
    pub fn named(name: &str) -> Owner {
        if name == "default" { Owner(None) } else { Owner(Some(name.to_string())) }
    }

    /// The name written on objects; "default" for files that set none.
    pub fn name(&self) -> &str {
        self.0.as_deref().unwrap_or("default")
    }

    pub fn is_default(&self) -> bool {
        self.0.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The key in the file; bindings refer to it.
    pub key: String,
    /// The Azure resource name.
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    /// The image `verify --probe pod` pulls (`verify.image`).
    pub verify_image: Option<String>,
}

/// A cluster's labels, sorted by key.
pub type Labels = litemap::LiteMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub key: String,
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub labels: Labels,
    pub kube_context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSet {
    pub name: String,
    pub subscription_id: String,
    pub resource_group: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Given name, or "bindings[N]".
    pub name: String,
    pub clusters: Vec<ClusterSelector>,
    /// Registry keys, globs already expanded against the file.
    pub registries: Vec<String>,
    /// Repository patterns; empty means the whole registry.
    pub repositories: Vec<String>,
    pub method: Method,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    ManagedIdentity,
    PullSecret(PullSecret),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PullSecret {
    pub credential: CredentialSource,
    pub namespaces: Namespaces,
    pub secret_name: String,
    pub service_accounts: Vec<String>,
    pub token_ttl_seconds: u64,
    pub rotate_before_seconds: u64,
    pub adopt: bool,
    pub create_namespaces: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    Admin,
    RegistryToken,
    /// The application's client id, where its secret is read, and its service principal's
    /// object id when the file gives it (else looked up in Microsoft Graph).
    ServicePrincipal {
        client_id: String,
        secret: SecretReference,
        principal_object_id: Option<String>,
    },
}

impl CredentialSource {
    pub fn kind(&self) -> Credential {
        match self {
            CredentialSource::Admin => Credential::Admin,
            CredentialSource::RegistryToken => Credential::RegistryToken,
            CredentialSource::ServicePrincipal { .. } => Credential::ServicePrincipal,
        }
    }
}

/// Where a secret is read at run time; the value itself never enters the config model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretReference {
    Environment(String),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Namespaces {
    Listed(Vec<String>),
    All { exclude: Vec<String> },
    Selector(LabelSelector),
}

pub const DEFAULT_SECRET_NAME: &str = "acrlink-pull";
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 90 * 86_400;
pub const DEFAULT_ROTATE_BEFORE_SECONDS: u64 = 30 * 86_400;
