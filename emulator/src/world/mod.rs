//! The world file: the TOML description of an emulated Azure tenant (subscriptions, resource
//! groups, AKS clusters, registries, principals, role assignments, settings and faults).
//! Only the file's shape lives here; checking it is `validate`, running it is `state`.

mod locate;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cloud::CloudName;
use crate::error::EmulatorError;

/// An emulated Azure tenant. See `emulator/README.md` for a walk-through and
/// `schemas/world.schema.json` for the generated schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// The Entra tenant that owns every subscription and principal.
    pub tenant: Tenant,
    /// Knobs of the emulator itself: paging, token lifetime, throttling, long-running operations.
    #[serde(default, skip_serializing_if = "Settings::is_default")]
    pub settings: Settings,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<Subscription>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_groups: Vec<ResourceGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<Cluster>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<Registry>,
    /// Service principals, users and groups in the tenant's directory. Kubelet identities of
    /// clusters are added to the directory automatically.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<Principal>,
    /// Custom role definitions, next to the built-in ones the emulator always knows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_definitions: Vec<CustomRole>,
    /// Role assignments that exist before anyone calls the emulator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_assignments: Vec<RoleAssignment>,
    /// Faults active from the start; change them at runtime through the admin endpoint.
    #[serde(default, skip_serializing_if = "Faults::is_default")]
    pub faults: Faults,
    /// Where clients get an identity without a secret: the CI token services (GitHub Actions,
    /// Azure Pipelines) and the managed-identity endpoints (IMDS, App Service).
    #[serde(default, skip_serializing_if = "SignIn::is_default")]
    pub sign_in: SignIn,
}

/// The emulated places a client signs in from without a secret. The CI token services issue
/// ID tokens with these claims; Entra accepts them as `client_assertion` for principals whose
/// `federated_credentials` match (issuer, subject, audience `api://AzureADTokenExchange`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SignIn {
    /// `iss` of the GitHub Actions ID tokens.
    pub github_issuer: String,
    /// `sub` of the GitHub Actions ID tokens (the job's repository, ref or environment).
    pub github_subject: String,
    /// The Azure Pipelines service connection the OIDC endpoint issues tokens for
    /// (`serviceConnectionId`).
    pub pipelines_service_connection_id: String,
    /// `iss` of the Azure Pipelines ID tokens.
    pub pipelines_issuer: String,
    /// `sub` of the Azure Pipelines ID tokens (`sc://org/project/connection`).
    pub pipelines_subject: String,
    /// Lifetime of the CI ID tokens (GitHub's are about 5 minutes).
    pub id_token_lifetime_seconds: u64,
    /// Principals (names) the machine's managed-identity endpoints sign in as: the first is
    /// the system-assigned identity, every one is selectable by its client id (user-assigned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub managed_identities: Vec<String>,
}

impl Default for SignIn {
    fn default() -> Self {
        SignIn {
            github_issuer: "https://token.actions.githubusercontent.com".into(),
            github_subject: "repo:contoso/fleet:ref:refs/heads/main".into(),
            pipelines_service_connection_id: "5c1d4b7e-2f0a-4e8b-9a6c-3d2e1f0a9b8c".into(),
            pipelines_issuer: "https://vstoken.dev.azure.com/7a9c0e21-53b4-4f6d-8e2a-1b0c9d8e7f6a".into(),
            pipelines_subject: "sc://contoso/fleet/acrlink".into(),
            id_token_lifetime_seconds: 300,
            managed_identities: Vec::new(),
        }
    }
}

impl SignIn {
    pub fn is_default(&self) -> bool {
        *self == SignIn::default()
    }
}

impl World {
    /// Parses and checks a world. Errors name the line, column and field of every problem.
    pub fn from_toml_str(text: &str) -> Result<World, EmulatorError> {
        Self::parse(text, "<world>")
    }

    pub fn from_file(path: &Path) -> Result<World, EmulatorError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| EmulatorError::Io { path: path.to_path_buf(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<World, EmulatorError> {
        let world: World = toml::from_str(text)
            .map_err(|e| EmulatorError::WorldSyntax { origin: origin.to_string(), message: e.to_string() })?;
        let problems = validate::check(&world);
        if problems.is_empty() {
            Ok(world)
        } else {
            let problems = problems.into_iter().map(|p| locate::place(text, p)).collect();
            Err(EmulatorError::WorldInvalid { origin: origin.to_string(), problems })
        }
    }

    /// Checks a world built in code (not parsed from text): the same rules, without lines.
    pub fn check(&self) -> Result<(), EmulatorError> {
        let problems = validate::check(self);
        if problems.is_empty() {
            Ok(())
        } else {
            let problems = problems
                .into_iter()
                .map(|p| crate::error::WorldProblem {
                    field: validate::field_name(&p.path),
                    line: None,
                    column: None,
                    message: p.message,
                })
                .collect();
            Err(EmulatorError::WorldInvalid { origin: "<world>".into(), problems })
        }
    }

    /// The world as TOML text (what `--generate` writes).
    pub fn to_toml_string(&self) -> Result<String, EmulatorError> {
        toml::to_string(self).map_err(|e| EmulatorError::State(format!("cannot write the world as TOML: {e}")))
    }

    /// The JSON schema of the world file, as committed in `schemas/world.schema.json`.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(World)).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The tenant id (a GUID); tokens carry it as `tid`.
    pub id: String,
    /// A verified domain, e.g. `contoso.onmicrosoft.com`; the token endpoint accepts it in
    /// place of the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The Azure cloud: its ARM audiences, registry login-server suffix (`azurecr.cn`,
    /// `azurecr.us`) and metadata follow.
    #[serde(default, skip_serializing_if = "CloudName::is_public")]
    pub cloud: CloudName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Items per page of every ARM list; clients must follow `nextLink` beyond it.
    #[schemars(range(min = 1))]
    pub page_size: usize,
    /// Lifetime of issued access tokens (`expires_in`).
    pub token_lifetime_seconds: u64,
    /// ARM request buckets per principal and subscription.
    pub throttle: Throttle,
    /// How ACR long-running operations answer.
    pub lro: Lro,
    /// Role assignments allowed per subscription before `RoleAssignmentLimitExceeded`.
    pub role_assignment_limit: usize,
    /// For this long after a delete, re-creating the same assignment name for another
    /// scope, principal or role fails with `RoleAssignmentUpdateNotPermitted`, as Azure does.
    pub deleted_name_reuse_block_seconds: u64,
    /// Replaces the accepted api-versions of a resource type, e.g.
    /// `"Microsoft.ContainerService/managedClusters" = ["2026-08-01"]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub api_versions: BTreeMap<String, Vec<String>>,
    /// Seconds before a role assignment created at runtime counts on the data plane
    /// (registry tokens, kubelet pulls); Azure takes minutes. World assignments count at once.
    pub rbac_propagation_seconds: f64,
    /// The emulated kubelets' image pulls.
    pub kubelet: Kubelet,
    /// The controller manager creates a new namespace's `default` ServiceAccount and
    /// `kube-root-ca.crt` ConfigMap this long after the namespace (a second or two on a real
    /// cluster; 0 = at once, in the same request).
    pub namespace_controller_delay_ms: u64,
}

/// When kubelets pull and how they back off after a failed pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Kubelet {
    /// A new Pod's first pull starts this long after it was created.
    pub pull_delay_ms: u64,
    /// The first back-off after a failed pull; it doubles on every failure ...
    pub backoff_initial_ms: u64,
    /// ... up to this (kubelet: 10 s doubling to 5 min).
    pub backoff_max_ms: u64,
}

impl Default for Kubelet {
    fn default() -> Self {
        Kubelet { pull_delay_ms: 1000, backoff_initial_ms: 10_000, backoff_max_ms: 300_000 }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            page_size: 20,
            token_lifetime_seconds: 3599,
            throttle: Throttle::default(),
            lro: Lro::default(),
            role_assignment_limit: 4000,
            deleted_name_reuse_block_seconds: 0,
            api_versions: BTreeMap::new(),
            rbac_propagation_seconds: 5.0,
            kubelet: Kubelet::default(),
            namespace_controller_delay_ms: 0,
        }
    }
}

impl Settings {
    fn is_default(&self) -> bool {
        *self == Settings::default()
    }
}

/// Azure Resource Manager's token buckets (defaults as Azure documents them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Throttle {
    pub enabled: bool,
    pub reads: Bucket,
    pub writes: Bucket,
    pub deletes: Bucket,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            enabled: true,
            reads: Bucket { capacity: 250, refill_per_second: 25.0 },
            writes: Bucket { capacity: 200, refill_per_second: 10.0 },
            deletes: Bucket { capacity: 200, refill_per_second: 10.0 },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    #[schemars(range(min = 1))]
    pub capacity: u32,
    pub refill_per_second: f64,
}

/// ACR long-running operations (scope map and token PUT/DELETE, generateCredentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Lro {
    /// `async`: 201 + Azure-AsyncOperation, 202 + Location; `sync`: 200 at once.
    pub mode: LroMode,
    /// How many polls answer `InProgress` before `Succeeded`.
    pub polls: u32,
    /// The `Retry-After` seconds sent with every in-progress answer.
    pub retry_after_seconds: u64,
}

impl Default for Lro {
    fn default() -> Self {
        Lro { mode: LroMode::Async, polls: 1, retry_after_seconds: 1 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LroMode {
    Async,
    Sync,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The subscription id (a GUID).
    pub id: String,
    /// The display name; other entries may refer to the subscription by it.
    pub name: String,
    /// `Enabled`, `Warned`, `PastDue`, `Disabled` or `Deleted`.
    #[serde(default = "enabled", skip_serializing_if = "is_enabled")]
    pub state: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

fn enabled() -> String {
    "Enabled".into()
}

fn is_enabled(state: &String) -> bool {
    state == "Enabled"
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceGroup {
    /// The subscription's id or name.
    pub subscription: String,
    pub name: String,
    pub location: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The subscription's id or name.
    pub subscription: String,
    /// A resource group declared under `[[resource_groups]]`.
    pub resource_group: String,
    pub name: String,
    /// Defaults to the resource group's location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default = "default_kubernetes_version")]
    pub kubernetes_version: String,
    /// The control-plane identity: `SystemAssigned`, `UserAssigned`, or `ServicePrincipal`
    /// for an old cluster that has no managed identity (and so no kubelet identity).
    #[serde(default)]
    pub identity: ClusterIdentity,
    /// The identity kubelets pull images with. Derived deterministically from the cluster's
    /// id when left out of a managed-identity cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_identity: Option<KubeletIdentity>,
    /// The client id of a `ServicePrincipal` cluster (`servicePrincipalProfile.clientId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_client_id: Option<String>,
    /// false means `disableLocalAccounts: true`: listClusterAdminCredential is refused.
    #[serde(default = "yes")]
    pub local_accounts: bool,
    /// Entra-integrated (managed AAD): user kubeconfigs use kubelogin.
    #[serde(default)]
    pub aad: bool,
    /// Azure RBAC for Kubernetes authorization (only with `aad`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub azure_rbac: bool,
    /// `Free`, `Standard` or `Premium`.
    #[serde(default = "free", skip_serializing_if = "is_free")]
    pub sku_tier: String,
    /// `Running` or `Stopped`.
    #[serde(default = "running", skip_serializing_if = "is_running")]
    pub power_state: String,
    #[serde(default = "succeeded", skip_serializing_if = "is_succeeded")]
    pub provisioning_state: String,
    #[serde(default = "three", skip_serializing_if = "is_three")]
    pub node_count: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub workload_identity: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub private_cluster: bool,
    /// Kubernetes RBAC denials on the cluster's API server (403 Forbidden): `*` for every
    /// resource request, a resource (`secrets`) or `verb:resource` (`patch:serviceaccounts`).
    /// Discovery stays allowed, as for any authenticated user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kube_denials: Vec<String>,
}

fn default_kubernetes_version() -> String {
    "1.33.2".into()
}
fn yes() -> bool {
    true
}
fn is_false(v: &bool) -> bool {
    !*v
}
fn free() -> String {
    "Free".into()
}
fn is_free(v: &String) -> bool {
    v == "Free"
}
fn running() -> String {
    "Running".into()
}
fn is_running(v: &String) -> bool {
    v == "Running"
}
fn succeeded() -> String {
    "Succeeded".into()
}
fn is_succeeded(v: &String) -> bool {
    v == "Succeeded"
}
fn three() -> u32 {
    3
}
fn is_three(v: &u32) -> bool {
    *v == 3
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterIdentity {
    #[default]
    SystemAssigned,
    UserAssigned,
    ServicePrincipal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeletIdentity {
    pub client_id: String,
    /// The principal to grant AcrPull to.
    pub object_id: String,
    /// Defaults to `/subscriptions/S/resourcegroups/MC_<rg>_<cluster>_<location>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<cluster>-agentpool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The identity was just created: the directory does not show it for this many seconds
    /// after the emulator starts (PrincipalNotFound without principalType).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub visible_after_seconds: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// The subscription's id or name.
    pub subscription: String,
    pub resource_group: String,
    /// 5 to 50 letters and digits, unique across the world (as in Azure).
    pub name: String,
    /// Defaults to the resource group's location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `Basic`, `Standard` or `Premium`.
    #[serde(default = "standard")]
    pub sku: String,
    /// Defaults to `<lowercase name>.azurecr.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_server: Option<String>,
    #[serde(default)]
    pub admin_user_enabled: bool,
    #[serde(default)]
    pub role_assignment_mode: RoleAssignmentMode,
    /// `policies.azureADAuthenticationAsArmPolicy.status`: whether ARM-audience tokens work
    /// on the registry's token exchange.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub azure_ad_authentication_as_arm: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub anonymous_pull: bool,
    /// `publicNetworkAccess`: false shows `Disabled`, and kubelets reach the registry only
    /// through an approved private endpoint.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub public_network_access: bool,
    /// `networkRuleSet.defaultAction = Deny`: as closed to kubelets as public access disabled
    /// (the emulator knows no cluster egress addresses), unless a private endpoint is approved.
    #[serde(default, skip_serializing_if = "is_false")]
    pub network_deny_by_default: bool,
    /// Private endpoint connections (`privateEndpointConnections`); the clusters' virtual
    /// networks are taken to be linked to each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_endpoints: Vec<PrivateEndpoint>,
    /// The admin user's `password` and `password2`; random when left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_passwords: Vec<String>,
    /// Repositories that exist, each with its tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub repositories: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_maps: Vec<ScopeMap>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<RegistryToken>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivateEndpoint {
    /// The private endpoint's name (in the registry's resource group).
    pub name: String,
    /// `privateLinkServiceConnectionState.status`: `Approved`, `Pending`, `Rejected` or
    /// `Disconnected`; only `Approved` lets traffic through.
    #[serde(default = "approved")]
    pub status: String,
}

fn approved() -> String {
    "Approved".into()
}

fn standard() -> String {
    "Standard".into()
}
fn is_true(v: &bool) -> bool {
    *v
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RoleAssignmentMode {
    /// AcrPull and friends work.
    #[default]
    LegacyRegistryPermissions,
    /// ABAC: only the Container Registry Repository roles work.
    AbacRepositoryPermissions,
}

impl RoleAssignmentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleAssignmentMode::LegacyRegistryPermissions => "LegacyRegistryPermissions",
            RoleAssignmentMode::AbacRepositoryPermissions => "AbacRepositoryPermissions",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeMap {
    pub name: String,
    /// e.g. `repositories/team-a/app/content/read`.
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryToken {
    pub name: String,
    /// The name of a scope map of the same registry (user-defined or `_repositories_*`).
    pub scope_map: String,
    /// `enabled` or `disabled`.
    #[serde(default = "token_enabled")]
    pub status: String,
}

fn token_enabled() -> String {
    "enabled".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Display name, unique in the world; other entries may refer to the principal by it.
    pub name: String,
    /// `ServicePrincipal`, `User`, `Group`, `ForeignGroup` or `Device`.
    #[serde(default = "service_principal")]
    pub kind: String,
    /// The directory object id (a GUID): `oid` in tokens, `principalId` in role assignments.
    pub object_id: String,
    /// The application (client) id of a service principal; needed to get tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client secrets the token endpoint accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ClientSecret>,
    /// Federated identity credentials accepted as `client_assertion` (workload identity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_credentials: Vec<FederatedCredential>,
    /// Groups (names or object ids of `Group` principals) this principal belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_of: Vec<String>,
    /// Roles this principal holds; each becomes a role assignment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Grant>,
    /// The principal was just created: invisible to the directory (role-assignment lookups,
    /// token requests) for this many seconds after the emulator starts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub visible_after_seconds: f64,
    /// This principal's id and secret go into the ready line's environment. Without any
    /// marked principal, the first one with a secret is used.
    #[serde(default, skip_serializing_if = "is_false")]
    pub default_client: bool,
    /// Microsoft Graph refuses this principal's directory reads (403
    /// `Authorization_RequestDenied`), as it does an identity without Application.Read.All or
    /// the Directory Readers role.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_directory_read: bool,
}

fn service_principal() -> String {
    "ServicePrincipal".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ClientSecret {
    Value(String),
    Detailed {
        value: String,
        /// RFC 3339; after it the token endpoint answers AADSTS7000222.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<String>,
    },
}

impl ClientSecret {
    pub fn value(&self) -> &str {
        match self {
            ClientSecret::Value(v) | ClientSecret::Detailed { value: v, .. } => v,
        }
    }
    pub fn expires_at(&self) -> Option<&str> {
        match self {
            ClientSecret::Value(_) => None,
            ClientSecret::Detailed { expires_at, .. } => expires_at.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    #[serde(default = "token_exchange_audience")]
    pub audience: String,
}

fn token_exchange_audience() -> String {
    "api://AzureADTokenExchange".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// A role name (`Owner`, `AcrPull`, ...) or role definition GUID.
    pub role: String,
    /// An ARM scope: `/`, `/subscriptions/S`, `/subscriptions/S/resourceGroups/RG` or a resource id.
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomRole {
    /// The role definition GUID.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_data_actions: Vec<String>,
    #[serde(default = "root_scope")]
    pub assignable_scopes: Vec<String>,
}

fn root_scope() -> Vec<String> {
    vec!["/".into()]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// The assignment name (a GUID); derived from scope, principal and role when left out,
    /// the way Bicep's `guid()` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub scope: String,
    /// A role name or role definition GUID.
    pub role: String,
    /// A principal's object id, or the name of a principal of this world.
    pub principal: String,
    /// Defaults to the directory's type of the principal (`ServicePrincipal` if unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_version: Option<String>,
    /// The object id shown as `createdBy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// Injected misbehaviour. The same type is used in the world file, the admin endpoint
/// (`PUT /_emulator/faults`) and the library (`Emulator::set_faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Added to every answer (except the admin endpoint's).
    pub latency_ms: u64,
    /// A random extra delay between 0 and this, on top of `latency_ms`.
    pub jitter_ms: u64,
    /// Principals created at runtime stay invisible to the directory for this long.
    pub principal_invisible_seconds: f64,
    /// One-shot faults for the next N matching calls, applied in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<FaultRule>,
}

impl Faults {
    fn is_default(&self) -> bool {
        *self == Faults::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Which calls: an operation id (`RoleAssignments_Create`, `ManagedClusters_List`,
    /// `Token`, `readCoreV1NamespacedSecret`, ...), a route template as in the ledger, or `*`
    /// for every call; `@<cluster name>` or `@<login server>` at the end narrows it to one
    /// cluster's Kubernetes API or one registry's data plane.
    pub route: String,
    /// Only calls with this HTTP method (any when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub kind: FaultKind,
    /// How many matching calls fail; the rule is spent after that.
    #[serde(default = "one")]
    pub count: u32,
    /// For `server_error`: the status (500 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// For `throttle`: the `Retry-After` seconds (1 when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 TooManyRequests with Retry-After.
    Throttle,
    /// A 5xx with ARM's InternalServerError/ServiceUnavailable body.
    ServerError,
    /// The connection is closed without an answer.
    Drop,
}
