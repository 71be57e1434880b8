//! The types every stage shares: addresses, preconditions and findings. Plain data with no
//! I/O; it imports nothing from the adapters (`provider`), the stages or the CLI.

pub mod address;
pub mod reason;
pub mod state;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use address::{Address, Grantee, Kind};
pub use reason::{EntryChange, InPlace, Reason, TokenChange};
pub use state::{RegistryCredential, State, TokenPassword};

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

/// Where a pull Secret's registry credential comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    Admin,
    RegistryToken,
    ServicePrincipal,
}

/// One of the two passwords an ACR token holds; rotation writes the one no Secret uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PasswordSlot {
    Password1,
    Password2,
}

impl PasswordSlot {
    pub const BOTH: [PasswordSlot; 2] = [PasswordSlot::Password1, PasswordSlot::Password2];

    /// The name ACR gives the slot.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordSlot::Password1 => "password1",
            PasswordSlot::Password2 => "password2",
        }
    }

    pub fn from_acr(name: &str) -> Option<PasswordSlot> {
        PasswordSlot::BOTH.into_iter().find(|slot| slot.as_str().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for PasswordSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    fn password_slots_and_credential_kinds_keep_their_written_names() {
        for slot in PasswordSlot::BOTH {
            assert_eq!(PasswordSlot::from_acr(slot.as_str()), Some(slot));
            assert_eq!(serde_json::to_value(slot).unwrap(), slot.as_str());
        }
        assert_eq!(PasswordSlot::from_acr("password3"), None);
        assert_eq!(serde_json::to_value(CredentialKind::RegistryToken).unwrap(), "registry-token");
        assert_eq!(serde_json::to_value(CredentialKind::ServicePrincipal).unwrap(), "service-principal");
        assert_eq!(serde_json::to_value(CredentialKind::Admin).unwrap(), "admin");
    }

    #[test]
    fn versions_change_with_any_field_and_not_by_joining_differently() {
        assert_eq!(version_of(&["a", "b"]), version_of(&["a", "b"]));
        assert_ne!(version_of(&["a", "b"]), version_of(&["a", "c"]));
        assert_ne!(version_of(&["ab", ""]), version_of(&["a", "b"]));
    }
}
