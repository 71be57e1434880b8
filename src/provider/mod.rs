//! The live world behind small traits: what the engine may ask of Azure (and, later,
//! Kubernetes), and the one retry policy they share. Implementations live in submodules; the
//! engine depends only on the traits and the plain data types here.

pub mod azure;
#[cfg(test)]
pub mod fake;
#[cfg(test)]
pub mod fake_kube;
pub mod kubernetes;
pub mod registry;
pub mod retry;

use std::collections::BTreeMap;
use std::future::Future;

use crate::sensitive::Sensitive;

/// A kubelet managed identity, as AKS reports it in `identityProfile.kubeletidentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletIdentity {
    pub client_id: String,
    pub object_id: String,
    pub resource_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCluster {
    pub id: String,
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub tags: BTreeMap<String, String>,
    pub kubelet_identity: Option<KubeletIdentity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleAssignmentMode {
    Legacy,
    /// `AbacRepositoryPermissions`: AcrPull is ignored; repository roles apply.
    Abac,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRegistry {
    pub id: String,
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub login_server: String,
    pub role_assignment_mode: RoleAssignmentMode,
    pub admin_user_enabled: bool,
    /// Settings that decide who reaches the registry and with which tokens (`verify`).
    pub access: RegistryAccess,
}

/// A registry's settings that can break pulls, read with the registry itself (no extra read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAccess {
    /// `policies.azureADAuthenticationAsArmPolicy`: whether ARM-audience tokens (the kubelet's)
    /// are accepted by the token exchange. Enabled when absent, as in Azure.
    pub arm_tokens: bool,
    /// `publicNetworkAccess` is not `Disabled`.
    pub public_network: bool,
    /// `networkRuleSet.defaultAction` is `Deny`: only listed networks reach the registry.
    pub default_deny: bool,
    pub private_endpoints: Vec<PrivateEndpoint>,
    /// `sku.name` (Basic, Standard, Premium), when known.
    pub sku: Option<String>,
}

impl Default for RegistryAccess {
    fn default() -> Self {
        RegistryAccess {
            arm_tokens: true,
            public_network: true,
            default_deny: false,
            private_endpoints: Vec::new(),
            sku: None,
        }
    }
}

/// A private endpoint connection of a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateEndpoint {
    /// The private endpoint's ARM id.
    pub id: String,
    /// `privateLinkServiceConnectionState.status` is `Approved`.
    pub approved: bool,
}

/// A role definition's permissions: what decides whether a role grants pull, whatever its name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleDefinition {
    pub id: String,
    pub role_name: String,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permission {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoleAssignment {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: Option<String>,
    pub description: Option<String>,
    pub condition: Option<String>,
}

/// What acrlink writes: a role assignment request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RoleAssignmentSpec {
    /// ARM id of the scope (the registry).
    pub scope: String,
    /// Deterministic GUID name, see `resolve::role_assignment_name`.
    pub name: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

impl RoleAssignmentSpec {
    pub fn id(&self) -> String {
        format!("{}/providers/Microsoft.Authorization/roleAssignments/{}", self.scope, self.name)
    }
}

/// The registry's admin user (`listCredentials`): the first password is the one used.
#[derive(Debug, Clone)]
pub struct AdminCredentials {
    pub username: String,
    pub password: Sensitive<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveScopeMap {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub actions: Vec<String>,
}

/// What ARM shows of a token password: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPasswordInfo {
    /// `password1` or `password2`.
    pub name: String,
    pub creation_time: Option<String>,
    pub expiry: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveToken {
    pub id: String,
    pub name: String,
    pub scope_map_id: String,
    pub enabled: bool,
    pub passwords: Vec<TokenPasswordInfo>,
}

/// A password generateCredentials just made: its only appearance.
#[derive(Debug, Clone)]
pub struct GeneratedPassword {
    pub username: String,
    pub slot: String,
    pub password: Sensitive<String>,
    pub creation_time: Option<String>,
    pub expiry: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AzureError {
    #[error("{what} was not found")]
    NotFound { what: String },
    #[error("the role assignment already exists as {existing_id}")]
    RoleAssignmentExists { existing_id: String },
    #[error("principal {principal_id} is not visible in the directory yet")]
    PrincipalNotFound { principal_id: String },
    #[error("not authorized to perform {action} over scope {scope}")]
    AuthorizationFailed { action: String, scope: String, message: String },
    #[error("authentication failed: {0}")]
    Authentication(String),
    #[error("Azure answered {status} {code}: {message}")]
    Api { status: u16, code: String, message: String },
    #[error("gave up after {attempts} attempts over {elapsed_seconds:.1}s: {last}")]
    RetriesExhausted { attempts: u32, elapsed_seconds: f64, last: String },
    #[error("cannot reach Azure: {0}")]
    Transport(String),
    /// No connection could be made to `endpoint` (scheme, host and port) after a few quick tries.
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error("the answer to {url} is larger than {limit} bytes; refused (ACRLINK_MAX_RESPONSE_BYTES raises the limit)")]
    TooLarge { url: String, limit: usize },
    #[error("unexpected response from Azure: {0}")]
    Decode(String),
}

/// The Azure operations the engine needs. Observing never mutates; each mutation is idempotent.
pub trait Azure: Send + Sync {
    fn list_clusters(
        &self,
        subscription_id: &str,
        resource_group: Option<&str>,
    ) -> impl Future<Output = Result<Vec<LiveCluster>, AzureError>> + Send;
    fn get_cluster(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<LiveCluster>, AzureError>> + Send;
    /// The object id of application `client_id`'s service principal (Microsoft Graph), or None
    /// when the tenant has none.
    fn service_principal_object_id(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<String>, AzureError>> + Send;
    /// Whether clusters and registries of this many subscriptions are read in one Resource
    /// Graph query (`list_*_in`) rather than a list per subscription.
    fn reads_via_graph(&self, _subscriptions: usize) -> bool {
        false
    }
    /// The clusters of every one of `subscriptions`, through Resource Graph.
    fn list_clusters_in(
        &self,
        subscriptions: &[String],
    ) -> impl Future<Output = Result<Vec<LiveCluster>, AzureError>> + Send;
    /// The registries of every one of `subscriptions`, through Resource Graph.
    fn list_registries_in(
        &self,
        subscriptions: &[String],
    ) -> impl Future<Output = Result<Vec<LiveRegistry>, AzureError>> + Send;
    fn list_registries(
        &self,
        subscription_id: &str,
    ) -> impl Future<Output = Result<Vec<LiveRegistry>, AzureError>> + Send;
    fn get_registry(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<LiveRegistry>, AzureError>> + Send;
    /// Every assignment at, above and below `scope`.
    fn list_role_assignments(
        &self,
        scope: &str,
    ) -> impl Future<Output = Result<Vec<LiveRoleAssignment>, AzureError>> + Send;
    fn get_role_assignment(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<LiveRoleAssignment>, AzureError>> + Send;
    /// A role definition by its full id (as a role assignment names it), or None.
    fn get_role_definition(&self, id: &str) -> impl Future<Output = Result<Option<RoleDefinition>, AzureError>> + Send;
    /// PUT: creates the assignment, or (same name) updates its description and condition.
    fn create_role_assignment(
        &self,
        spec: &RoleAssignmentSpec,
    ) -> impl Future<Output = Result<Written, AzureError>> + Send;
    /// Succeeds when the assignment is gone, whether or not it existed.
    fn delete_role_assignment(&self, id: &str) -> impl Future<Output = Result<(), AzureError>> + Send;

    /// The kubeconfig `listClusterUserCredential` hands out (it carries a bearer token).
    fn cluster_user_kubeconfig(
        &self,
        cluster_id: &str,
    ) -> impl Future<Output = Result<Sensitive<String>, AzureError>> + Send;
    fn registry_admin_credentials(
        &self,
        registry_id: &str,
    ) -> impl Future<Output = Result<AdminCredentials, AzureError>> + Send;
    fn list_scope_maps(&self, registry_id: &str) -> impl Future<Output = Result<Vec<LiveScopeMap>, AzureError>> + Send;
    fn put_scope_map(
        &self,
        registry_id: &str,
        name: &str,
        description: &str,
        actions: &[String],
    ) -> impl Future<Output = Result<(), AzureError>> + Send;
    fn delete_scope_map(&self, registry_id: &str, name: &str) -> impl Future<Output = Result<(), AzureError>> + Send;
    fn list_tokens(&self, registry_id: &str) -> impl Future<Output = Result<Vec<LiveToken>, AzureError>> + Send;
    /// One token as ACR holds it now (its passwords' slots and creation times), or None.
    fn get_token(
        &self,
        registry_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<LiveToken>, AzureError>> + Send;
    fn put_token(
        &self,
        registry_id: &str,
        name: &str,
        scope_map_id: &str,
    ) -> impl Future<Output = Result<(), AzureError>> + Send;
    /// Points an existing token at a scope map and enables it (Tokens_Update, a PATCH: a PUT
    /// without credentials could drop its passwords).
    fn update_token(
        &self,
        registry_id: &str,
        name: &str,
        scope_map_id: &str,
    ) -> impl Future<Output = Result<(), AzureError>> + Send;
    fn delete_token(&self, registry_id: &str, name: &str) -> impl Future<Output = Result<(), AzureError>> + Send;
    /// Generates a new password in `slot` (`password1`/`password2`), valid until `expiry`
    /// (RFC 3339); the other slot keeps working.
    fn generate_token_password(
        &self,
        registry_id: &str,
        token_name: &str,
        slot: &str,
        expiry: &str,
    ) -> impl Future<Output = Result<GeneratedPassword, AzureError>> + Send;
}

/// ARM ids compare case-insensitively; this is the canonical form for keys.
/// How clusters and registries are read (ACRLINK_READ_VIA): a list per subscription (ARM),
/// one Resource Graph query for many subscriptions, or Resource Graph from
/// `AUTO_GRAPH_SUBSCRIPTIONS` subscriptions on (auto, the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadVia {
    Arm,
    ResourceGraph,
    #[default]
    Auto,
}

/// From this many subscriptions on, `auto` reads through Resource Graph: below it a list per
/// subscription costs about as few requests and needs no Resource Graph quota.
pub const AUTO_GRAPH_SUBSCRIPTIONS: usize = 10;

impl ReadVia {
    pub fn parse(text: &str) -> Option<ReadVia> {
        match text.trim() {
            "arm" => Some(ReadVia::Arm),
            "resource-graph" => Some(ReadVia::ResourceGraph),
            "auto" => Some(ReadVia::Auto),
            _ => None,
        }
    }

    pub fn uses_graph(self, subscriptions: usize) -> bool {
        match self {
            ReadVia::Arm => false,
            ReadVia::ResourceGraph => true,
            ReadVia::Auto => subscriptions >= AUTO_GRAPH_SUBSCRIPTIONS,
        }
    }
}

/// What a PUT did, as ARM says: 201 made it; 200 found it, and changed it (its `updatedOn`
/// moved off its `createdOn`) or found it exactly as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Unchanged,
}

pub fn normalize_id(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// The trailing GUID of a role definition id, lowercased.
pub fn role_guid(role_definition_id: &str) -> String {
    role_definition_id.rsplit('/').next().unwrap_or(role_definition_id).to_ascii_lowercase()
}
