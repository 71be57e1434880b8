//! Why a change is planned, or why a resource needs none: typed facts, never decided on as
//! text. Only `render` turns them into words; apply never reads them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a change is planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// A binding wants this cluster to pull from this registry and no grant does it.
    GrantMissing { binding: String, cluster: String, registry: String },
    /// acrlink's grant carries another repository condition than the binding's.
    ConditionDiffers,
    /// acrlink's grant that no binding of this file wants any more.
    GrantUnwanted,
    /// Another acrlink owner's grant that this file wants too: this owner is recorded on it, so
    /// neither deletes it while the other still wants it.
    GrantShared { owners: Vec<String> },
    /// A shared grant this file no longer wants: only this owner's mark goes, the others keep it.
    GrantLeft { remaining: Vec<String> },
    /// acrlink's grant to a kubelet identity its cluster no longer has.
    OrphanIdentityReplaced,
    /// acrlink's grant to a principal of no cluster in the fleet.
    OrphanClusterGone,
    /// Registry-token bindings need this scope map.
    ScopeMapNeeded,
    /// The repositories a scope map reads changed.
    ScopeMapActionsChanged,
    /// One token per cluster binding.
    TokenNeeded,
    /// What changes on an existing token.
    TokenChanged { changes: Vec<TokenChange> },
    /// `create_namespaces = true` and the namespace is missing.
    NamespaceMissing,
    /// These bindings want these registries in a Secret that does not exist. (`bindings` is
    /// absent from plans saved before it was added.)
    SecretNeeded {
        #[serde(default)]
        bindings: Vec<String>,
        registries: Vec<String>,
    },
    /// A Secret's type cannot change in place.
    SecretTypeWrong { live_type: String },
    /// acrlink's Secret is `immutable` and its registries must change: made again.
    SecretImmutable { changes: Vec<EntryChange> },
    /// `adopt = true`: acrlink takes over a Secret it did not make.
    SecretAdopted,
    /// What changes in an existing Secret's registries.
    SecretChanged { changes: Vec<EntryChange> },
    /// A ServiceAccount's `imagePullSecrets` lacks these or still names those.
    ServiceAccountEntries { add: Vec<String>, remove: Vec<String> },
    /// acrlink's Secret that no binding wants any more.
    SecretUnwanted,
    /// acrlink's token or scope map that no binding uses any more.
    RegistryObjectUnwanted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum TokenChange {
    ScopeMapChanged,
    DisabledOutside,
    /// A new password is generated, because of this.
    NewPassword {
        because: EntryChange,
    },
}

/// A registry entry of a Secret that cannot stay as it is, or why a token's Secrets need a
/// new password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum EntryChange {
    AddsRegistry {
        registry: String,
    },
    Removes {
        login_server: String,
    },
    EditedOutside {
        registry: String,
    },
    AdminPasswordChanged {
        registry: String,
    },
    ServicePrincipalSecretChanged {
        registry: String,
    },
    SwitchesToken {
        registry: String,
        token: String,
    },
    TokenGone {
        registry: String,
        token: String,
    },
    PasswordGone {
        token: String,
    },
    PasswordRegenerated {
        token: String,
    },
    PasswordExpired,
    /// The password expires at `expiry` (RFC 3339), less than `rotate_before` away.
    Rotation {
        expiry: String,
    },
    NoWorkingPassword,
    NewToken,
}

impl EntryChange {
    /// Whether the credential itself changes (shown as a sensitive change), as opposed to
    /// registries being added or removed.
    pub fn is_sensitive(&self) -> bool {
        !matches!(self, EntryChange::AddsRegistry { .. } | EntryChange::Removes { .. })
    }
}

/// Why a desired resource needs no change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum InPlace {
    GrantedByAcrlink,
    GrantedUnderAnotherName { name: String },
    Inherited { scope: String, role: String },
    GrantedOutside { role: String, name: String },
    ScopeMapInPlace,
    TokenInPlace,
    SecretInPlace,
    ServiceAccountLists { names: Vec<String> },
}
