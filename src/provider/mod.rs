//! The live world behind small traits: what the engine may ask of Azure (and, later,
//! Kubernetes), and the one retry policy they share. Implementations live in submodules; the
//! engine depends only on the traits and the plain data types here.

pub mod azure;
#[cfg(test)]
pub mod fake;
pub mod retry;

use std::collections::BTreeMap;
use std::future::Future;

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

#[derive(Debug, thiserror::Error)]
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
    fn create_role_assignment(
        &self,
        spec: &RoleAssignmentSpec,
    ) -> impl Future<Output = Result<LiveRoleAssignment, AzureError>> + Send;
    /// Succeeds when the assignment is gone, whether or not it existed.
    fn delete_role_assignment(&self, id: &str) -> impl Future<Output = Result<(), AzureError>> + Send;
}

/// ARM ids compare case-insensitively; this is the canonical form for keys.
pub fn normalize_id(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// The trailing GUID of a role definition id, lowercased.
pub fn role_guid(role_definition_id: &str) -> String {
    role_definition_id.rsplit('/').next().unwrap_or(role_definition_id).to_ascii_lowercase()
}
