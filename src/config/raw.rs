//! The desired-state file exactly as written (`Raw*` types, 1:1 with the file). Owns the file's
//! grammar and its JSON Schema; must not interpret values (that is `check` and `model`).

use std::collections::BTreeMap;

use schemars::JsonSchema;

use super::model::Labels;
use serde::{Deserialize, Serialize};

/// acrlink desired-state file, format version 1.
///
/// Lists the cluster-registry bindings of a fleet. Secrets never live here: a service-principal
/// secret is referenced with `client_secret_env` or `client_secret_file`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "acrlink desired-state file")]
pub struct RawConfig {
    /// Format version of this file. This acrlink reads version 1.
    #[schemars(range(min = 1))]
    pub version: u32,
    /// Who owns what this file manages, when several files (teams, pipelines) manage the same
    /// registries or clusters: each prunes only what carries its own owner. 1-30 lowercase
    /// letters, digits and '-', starting with a letter. Files without one share the owner
    /// "default".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,29}$"))]
    pub owner: Option<String>,
    /// Azure cloud, tenant and the default subscription for everything below.
    #[serde(default)]
    pub azure: RawAzure,
    /// Container registries, keyed by a local name (the Azure name unless `name` is given).
    #[serde(default)]
    pub registries: BTreeMap<String, RawRegistry>,
    /// AKS clusters, keyed by a local name (the Azure name unless `name` is given).
    #[serde(default)]
    pub clusters: BTreeMap<String, RawCluster>,
    /// Discovery: every AKS cluster in a subscription (or resource group) whose Azure tags match.
    #[serde(default)]
    pub cluster_sets: Vec<RawClusterSet>,
    /// Which clusters may pull from which registries, and how.
    #[serde(default)]
    pub bindings: Vec<RawBinding>,
}

/// Azure cloud and defaults.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAzure {
    /// Azure cloud whose endpoints are used.
    #[serde(default)]
    pub cloud: Cloud,
    /// Entra tenant id (a GUID). Defaults to the tenant of the credential in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Subscription id (a GUID) used by every registry, cluster and cluster set that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
}

impl Default for RawAzure {
    fn default() -> Self {
        RawAzure { cloud: Cloud::AzureCloud, tenant_id: None, subscription_id: None }
    }
}

/// An Azure cloud (the names `az cloud list` shows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum Cloud {
    /// Azure public cloud (management.azure.com).
    #[default]
    AzureCloud,
    /// Azure operated by 21Vianet (management.chinacloudapi.cn).
    AzureChinaCloud,
    /// Azure Government (management.usgovcloudapi.net).
    #[serde(rename = "AzureUSGovernment")]
    AzureUsGovernment,
}

/// A container registry.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    /// Azure name of the registry (5-50 letters and digits). Defaults to the table key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Resource group that holds the registry.
    pub resource_group: String,
    /// Subscription id, when it differs from `azure.subscription_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// How `acrlink verify --probe pod` tests pulls from this registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<RawVerify>,
}

/// What `acrlink verify` pulls from a registry.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// The probe image: a repository and tag or digest on this registry ("base/nginx@sha256:..."
    /// is best: it never changes), with or without the login server.
    pub image: String,
}

/// An AKS cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// Azure name of the managed cluster. Defaults to the table key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Resource group that holds the cluster.
    pub resource_group: String,
    /// Subscription id, when it differs from `azure.subscription_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// Local labels, matched by binding selectors such as "env=prod".
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: Labels,
    /// Reach the cluster's Kubernetes API through this context of the local kubeconfig instead
    /// of the AKS user credential (pull-secret bindings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_context: Option<String>,
}

/// Clusters discovered at plan time.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClusterSet {
    /// A name for messages and plan addresses. Defaults to "cluster_sets[N]".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Subscription to search, when it differs from `azure.subscription_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// Only clusters in this resource group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
    /// Azure tags a cluster must carry, all of them, to belong to the set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Local labels given to every cluster of the set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How a cluster is allowed to pull.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// AcrPull for the cluster's kubelet identity, what `az aks update --attach-acr` does.
    #[default]
    ManagedIdentity,
    /// A `kubernetes.io/dockerconfigjson` Secret named in `imagePullSecrets`.
    PullSecret,
}

/// Where a pull secret's registry credential comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    /// The registry's admin user (`az acr credential show`).
    Admin,
    /// A repository-scoped ACR token that acrlink creates and rotates.
    RegistryToken,
    /// An existing service principal; its secret is referenced, never written here.
    ServicePrincipal,
}

/// One binding: these clusters may pull from these registries.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    /// A name for messages and plan addresses. Defaults to "bindings[N]".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Cluster keys, globs ("tiu-*"), label selectors ("env=prod,wave!=canary") or "*".
    #[schemars(length(min = 1))]
    pub clusters: Vec<String>,
    /// Registry keys or globs.
    #[schemars(length(min = 1))]
    pub registries: Vec<String>,
    /// "managed-identity" (the default) or "pull-secret".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Repository patterns ("team/*"): the scope of a registry token, or the repository
    /// condition of the role assignment on an ABAC registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
    /// pull-secret: where the registry credential comes from. Default "registry-token".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
    /// pull-secret: namespaces that get the Secret; "*" means all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// pull-secret: with namespaces = ["*"], namespaces to leave out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_namespaces: Option<Vec<String>>,
    /// pull-secret: a label selector on namespaces, instead of `namespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<String>,
    /// pull-secret: name of the Secret. Default "acrlink-pull".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// pull-secret: service accounts whose `imagePullSecrets` gain the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<Vec<String>>,
    /// pull-secret with registry-token: lifetime of a generated password ("90d", "2160h").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[smhd]$"))]
    pub token_ttl: Option<String>,
    /// pull-secret with registry-token: rotate when less than this remains ("30d").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[smhd]$"))]
    pub rotate_before: Option<String>,
    /// pull-secret: take over a Secret of the same name that acrlink did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
    /// pull-secret: create listed namespaces that do not exist (otherwise they are reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_namespaces: Option<bool>,
    /// pull-secret with service-principal: the application (client) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// pull-secret with service-principal: environment variable that holds the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// pull-secret with service-principal: file that holds the secret (a relative path is read
    /// from the directory of this file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    /// pull-secret with service-principal: the principal's object id, so acrlink need not look
    /// it up in Microsoft Graph (which needs directory read permission) to grant it pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_object_id: Option<String>,
}

impl RawBinding {
    /// The fields that only mean something on a pull-secret binding, with their presence.
    pub fn pull_secret_fields(&self) -> [(&'static str, bool); 14] {
        [
            ("credential", self.credential.is_some()),
            ("namespaces", self.namespaces.is_some()),
            ("exclude_namespaces", self.exclude_namespaces.is_some()),
            ("namespace_selector", self.namespace_selector.is_some()),
            ("secret_name", self.secret_name.is_some()),
            ("service_accounts", self.service_accounts.is_some()),
            ("token_ttl", self.token_ttl.is_some()),
            ("rotate_before", self.rotate_before.is_some()),
            ("adopt", self.adopt.is_some()),
            ("create_namespaces", self.create_namespaces.is_some()),
            ("client_id", self.client_id.is_some()),
            ("client_secret_env", self.client_secret_env.is_some()),
            ("client_secret_file", self.client_secret_file.is_some()),
            ("principal_object_id", self.principal_object_id.is_some()),
        ]
    }
}

/// The file as far as it could be read: entries that failed the structure check are `None`,
/// so the semantic checks still run on the rest and keep the file's indices and keys.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PartialConfig {
    pub version: Option<u32>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub azure: Option<RawAzure>,
    #[serde(default)]
    pub registries: BTreeMap<String, Option<RawRegistry>>,
    /// Boxed: the checks move each cluster into the model and keep only the key here, for
    /// references and suggestions.
    #[serde(default)]
    pub clusters: BTreeMap<String, Option<Box<RawCluster>>>,
    #[serde(default)]
    pub cluster_sets: Vec<Option<RawClusterSet>>,
    #[serde(default)]
    pub bindings: Vec<Option<RawBinding>>,
}

/// The JSON Schema of the file, as committed in `schemas/acrlink.schema.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(RawConfig);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
