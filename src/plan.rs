//! The plan: a typed, versioned list of changes, each with the precondition it expects of live
//! state. Apply executes these changes, never the config. A change's `reason` only explains;
//! nothing reads it to decide. Saved plans carry a format version and the config's digest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::provider::RoleAssignmentSpec;
use crate::provider::kubernetes::ClusterTarget;

/// 2: typed preconditions for every kind (Arm / Kubernetes / Absent).
pub const PLAN_FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    /// Delete and create again: what cannot change in place (a Secret's type).
    Replace,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    RoleAssignment {
        /// Human name of the role, for display only.
        role_name: String,
        cluster: String,
        registry: String,
        #[serde(flatten)]
        spec: RoleAssignmentSpec,
        /// What the change does to the owners recorded on the grant (shared pairs).
        #[serde(default, skip_serializing_if = "Marks::is_write")]
        marks: Marks,
    },
    /// A namespace acrlink creates for a binding with `create_namespaces = true`.
    Namespace { cluster: ClusterTarget, name: String },
    /// The ACR scope map a registry-token binding's tokens use.
    ScopeMap { registry: String, registry_id: String, name: String, actions: Vec<String> },
    /// An ACR token, one per (cluster, binding, registry); `generate` makes a new password.
    RegistryToken {
        registry: String,
        registry_id: String,
        name: String,
        scope_map_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generate: Option<PasswordGeneration>,
    },
    /// A `kubernetes.io/dockerconfigjson` Secret holding every registry bound to it.
    PullSecret {
        cluster: ClusterTarget,
        namespace: String,
        name: String,
        /// Empty for a delete.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        entries: Vec<SecretEntry>,
        /// Whether the registry credentials in it change (never shown).
        #[serde(default)]
        sensitive_change: bool,
    },
    /// Entries acrlink adds to or removes from a ServiceAccount's `imagePullSecrets`.
    ServiceAccountPullSecrets {
        cluster: ClusterTarget,
        namespace: String,
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
    },
}

/// What a role-assignment change does to the acrlink owners recorded in the grant's
/// description. Two files with different `owner`s may want one (cluster, registry) pair, and
/// ARM holds one assignment for it: each owner that wants it is listed, none rewrites another's
/// mark, and the grant is deleted only by the last owner to stop wanting it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Marks {
    /// The grant is this owner's alone: write the change's description.
    #[default]
    Write,
    /// Add this owner to the owners of the live grant, keeping theirs.
    Join,
    /// Remove this owner from the live grant, which other owners still want.
    Leave,
}

impl Marks {
    fn is_write(&self) -> bool {
        *self == Marks::Write
    }
}

/// A token password to generate, in the slot the Secrets do not use, valid until `expiry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PasswordGeneration {
    pub slot: PasswordSlot,
    /// Lifetime of the new password, from the binding's `token_ttl`.
    pub ttl_seconds: u64,
}

/// One registry in a pull Secret, and where its credential comes from at apply time. Never
/// the credential itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretEntry {
    pub registry: String,
    pub login_server: String,
    pub credential: CredentialPlan,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CredentialPlan {
    /// The admin user, read with `listCredentials` when applying.
    Admin { registry_id: String },
    /// A token password: the one this apply generates, or the one the Secret holds now.
    RegistryToken {
        registry_id: String,
        token: String,
        #[serde(flatten)]
        source: TokenSource,
    },
    /// An application's client id and its secret, read from the environment or a file.
    ServicePrincipal {
        client_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_env: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_file: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "password", rename_all = "kebab-case")]
pub enum TokenSource {
    /// Generated by this apply's `registry_token` change.
    Generated,
    /// Copied from the live Secret, whose entry must still have this fingerprint.
    Keep { fingerprint: String },
    /// Copied from another Secret of the same cluster that holds the token's working password
    /// (a new namespace, or a Secret edited behind acrlink's back), instead of rotating.
    Copy { namespace: String, name: String, fingerprint: String },
}

impl Resource {
    /// The cluster a Kubernetes resource lives in.
    pub fn cluster(&self) -> Option<&ClusterTarget> {
        match self {
            Resource::Namespace { cluster, .. }
            | Resource::PullSecret { cluster, .. }
            | Resource::ServiceAccountPullSecrets { cluster, .. } => Some(cluster),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// Stable address, e.g. `role_assignment[aks1/acr1]`.
    pub address: Address,
    pub action: Action,
    /// Why; for people only (rendered by `render`); apply never reads it.
    pub reason: Reason,
    pub precondition: Precondition,
    /// Changes that must succeed before this one starts (ordering edges set at diff time:
    /// a Secret is deleted after the service-account entry naming it is gone, a token after
    /// the Secrets holding its password moved off it, a scope map after its tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    pub resource: Resource,
    /// The resource before the change, in the fields that decide it (none for a create or a
    /// namespace); for people and programs only, apply never reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<State>,
    /// The same fields after it (none for a delete; a credential made at apply time has no
    /// fingerprint yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<State>,
}

impl Change {
    /// This change, showing what it changes: `before` → `after`.
    #[must_use]
    pub fn shifting(self, before: State, after: State) -> Change {
        self.states(Some(before), Some(after))
    }

    /// This change with what it starts from and what it leaves (a create has no before, a
    /// delete no after).
    #[must_use]
    pub fn states(mut self, before: Option<State>, after: Option<State>) -> Change {
        self.before = before;
        self.after = after;
        self
    }
}

/// A desired resource that needs nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Unchanged {
    pub address: Address,
    pub reason: InPlace,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

pub use crate::model::{Address, Finding, InPlace, PasswordSlot, Precondition, Reason, State};

/// acrlink plan, as printed by `plan --format json` and saved by `plan --out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "acrlink plan")]
pub struct Plan {
    /// Version of this document's format; apply refuses versions it does not know.
    pub format_version: u32,
    pub acrlink_version: String,
    /// The desired-state file the plan was made from.
    pub config_path: String,
    /// SHA-256 of that file's bytes.
    pub config_digest: String,
    /// The file's `owner` ("default" when it sets none): written on everything apply makes.
    #[serde(default = "default_owner")]
    pub owner: String,
    pub summary: Summary,
    /// Sorted by address; apply executes exactly these.
    pub changes: Vec<Change>,
    pub unchanged: Vec<Unchanged>,
    /// Worth knowing, not blocking: ineffective grants, orphans, grants made outside acrlink.
    pub warnings: Vec<Finding>,
    /// Blocking: apply refuses a plan with errors.
    pub errors: Vec<Finding>,
    /// Bindings acrlink cannot satisfy as things stand (a Secret of the binding's name that
    /// acrlink did not make): apply does everything else, and plan, drift and apply all say so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<Finding>,
}

fn default_owner() -> String {
    "default".into()
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn summarize(changes: &[Change]) -> Summary {
        // A replacement adds one and destroys one, as Terraform counts it.
        let count = |action| changes.iter().filter(|c| c.action == action).count();
        let replaced = count(Action::Replace);
        Summary {
            add: count(Action::Create) + replaced,
            change: count(Action::Update),
            destroy: count(Action::Delete) + replaced,
        }
    }
}

pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Plan)).unwrap_or_default()
}

/// Why a saved plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read the plan {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a plan file: {message}")]
    NotAPlan { path: String, message: String },
    #[error("{path} has plan format {found:?}; this acrlink reads format {PLAN_FORMAT_VERSION}")]
    Format { path: String, found: Option<u64> },
}

impl SavedPlanError {
    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            SavedPlanError::Read { .. } => None,
            SavedPlanError::NotAPlan { .. } => Some("make one with `acrlink plan --out FILE`"),
            SavedPlanError::Format { .. } => Some("plan again with this acrlink"),
        }
    }
}

/// Reads a plan saved by `plan --out`, refusing formats this acrlink does not know.
pub fn load_saved(path: &std::path::Path) -> Result<Plan, SavedPlanError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read { path: shown.clone(), source })?;
    let not_a_plan = |e: serde_json::Error| SavedPlanError::NotAPlan { path: shown.clone(), message: e.to_string() };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(not_a_plan)?;
    let found = value.get("format_version").and_then(serde_json::Value::as_u64);
    if found != Some(u64::from(PLAN_FORMAT_VERSION)) {
        return Err(SavedPlanError::Format { path: shown, found });
    }
    serde_json::from_value(value).map_err(not_a_plan)
}
