//! The types every stage shares: addresses, preconditions and findings. Plain data with no
//! I/O; it imports nothing from the adapters (`provider`), the stages or the CLI.

pub mod address;
pub mod reason;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use address::{Address, Grantee, Kind};
pub use reason::{EntryChange, InPlace, Reason, TokenChange};

/// What apply checks before it acts on a saved plan; a mismatch means the plan is stale, and
/// apply refuses it before writing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "expect", rename_all = "snake_case")]
pub enum Precondition {
    /// Nothing exists there yet.
    Absent,
    /// An ARM resource at `id`, in the state `version` names: a digest of the fields acrlink
    /// decides on (see `version_of`), since ARM gives these resources no etag.
    Arm { id: String, version: String },
    /// A Kubernetes object: the same one (`uid`) at the same `resource_version`.
    Kubernetes { uid: String, resource_version: String },
}

impl Precondition {
    /// The ARM id a change expects to find, if any.
    pub fn arm_id(&self) -> Option<&str> {
        match self {
            Precondition::Arm { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The Kubernetes uid a change expects to find, if any.
    pub fn uid(&self) -> Option<&str> {
        match self {
            Precondition::Kubernetes { uid, .. } if !uid.is_empty() => Some(uid),
            _ => None,
        }
    }
}

/// A short digest of the fields that identify a resource's state, for `Precondition::Arm`.
/// Each kind lists its own fields in a fixed order.
pub fn version_of(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update(field.as_bytes());
        hasher.update([0u8]);
    }
    hasher.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Something worth telling: an error (blocking) or a warning, about `subject`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub subject: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_change_with_any_field_and_not_by_joining_differently() {
        assert_eq!(version_of(&["a", "b"]), version_of(&["a", "b"]));
        assert_ne!(version_of(&["a", "b"]), version_of(&["a", "c"]));
        assert_ne!(version_of(&["ab", ""]), version_of(&["a", "b"]));
    }
}
