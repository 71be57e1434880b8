//! The plan: a typed, versioned list of changes, each with the precondition it expects of live
//! state. Apply executes these changes, never the config. A change's `reason` only explains;
//! nothing reads it to decide. Saved plans carry a format version and the config's digest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::observe::Problem;
use crate::provider::RoleAssignmentSpec;

pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// What apply checks before it acts; a mismatch means the plan is stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "expect", rename_all = "lowercase")]
pub enum Precondition {
    /// Nothing exists at the resource's id.
    Absent,
    /// The resource exists with this id (and, for role assignments, this principal and role).
    Present { id: String },
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
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// Stable address, e.g. `role_assignment[aks1/acr1]`.
    pub address: String,
    pub action: Action,
    /// Why; for people only.
    pub reason: String,
    pub precondition: Precondition,
    /// Addresses of changes that must succeed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    pub resource: Resource,
}

/// A desired resource that needs nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Unchanged {
    pub address: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub subject: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<Problem> for Finding {
    fn from(problem: Problem) -> Finding {
        Finding { subject: problem.subject, message: problem.message, hint: problem.hint }
    }
}

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
    pub summary: Summary,
    /// Sorted by address; apply executes exactly these.
    pub changes: Vec<Change>,
    pub unchanged: Vec<Unchanged>,
    /// Worth knowing, not blocking: ineffective grants, orphans, grants made outside acrlink.
    pub warnings: Vec<Finding>,
    /// Blocking: apply refuses a plan with errors.
    pub errors: Vec<Finding>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn summarize(changes: &[Change]) -> Summary {
        let count = |action| changes.iter().filter(|c| c.action == action).count();
        Summary { add: count(Action::Create), change: count(Action::Update), destroy: count(Action::Delete) }
    }
}

pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Plan)).unwrap_or_default()
}
