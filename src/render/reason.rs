//! Words for the typed reasons of the plan: the only place they become text.

use crate::model::{EntryChange, InPlace, Reason, TokenChange};

pub fn reason(reason: &Reason) -> String {
    match reason {
        Reason::GrantMissing { binding, cluster, registry } => {
            format!("binding {binding:?} wants {cluster} pull {registry} and no grant exists")
        }
        Reason::ConditionDiffers => "its repository condition differs from the binding's".into(),
        Reason::GrantUnwanted => "managed by acrlink and no binding wants it any more".into(),
        Reason::GrantShared { owners } => {
            format!("already granted by acrlink owner(s) {}; this owner is recorded on it too", owners.join(", "))
        }
        Reason::GrantLeft { remaining } => format!(
            "no binding wants it any more, but acrlink owner(s) {} still do: only this owner's mark is removed",
            remaining.join(", ")
        ),
        Reason::OrphanIdentityReplaced => "orphan: the cluster's kubelet identity was replaced".into(),
        Reason::OrphanClusterGone => "orphan: managed by acrlink, its cluster is gone or no longer bound".into(),
        Reason::ScopeMapNeeded => "registry-token bindings read these repositories".into(),
        Reason::ScopeMapActionsChanged => "the binding's repositories changed".into(),
        Reason::TokenNeeded => "one token per cluster binding".into(),
        Reason::TokenChanged { changes } => changes.iter().map(token_change).collect::<Vec<_>>().join("; "),
        Reason::NamespaceMissing => "create_namespaces = true and it does not exist".into(),
        Reason::SecretNeeded { bindings, registries } => {
            let quoted: Vec<String> = bindings.iter().map(|b| format!("{b:?}")).collect();
            let who = match quoted.as_slice() {
                [one] => format!("binding {one} wants"),
                many => format!("bindings {} want", many.join(", ")),
            };
            format!("{who} registries {} here", registries.join(", "))
        }
        Reason::SecretTypeWrong { live_type } => format!("its type is {live_type} and a Secret's type cannot change"),
        Reason::SecretImmutable { changes } => format!(
            "it is immutable, so it is made again: {}",
            changes.iter().map(entry_change).collect::<Vec<_>>().join("; ")
        ),
        Reason::SecretAdopted => "adopt = true: acrlink takes it over".into(),
        Reason::SecretChanged { changes } => changes.iter().map(entry_change).collect::<Vec<_>>().join("; "),
        Reason::ServiceAccountEntries { add, remove } => match (add.is_empty(), remove.is_empty()) {
            (false, true) => format!("imagePullSecrets lacks {}", add.join(", ")),
            (true, false) => format!("no binding puts {} here any more", remove.join(", ")),
            _ => format!(
                "imagePullSecrets lacks {} and no binding puts {} here any more",
                add.join(", "),
                remove.join(", ")
            ),
        },
        Reason::SecretUnwanted => "made by acrlink and no binding wants it any more".into(),
        Reason::RegistryObjectUnwanted => "made by acrlink and no binding uses it any more".into(),
    }
}

fn token_change(change: &TokenChange) -> String {
    match change {
        TokenChange::ScopeMapChanged => "its scope map changed".into(),
        TokenChange::DisabledOutside => "it was disabled outside acrlink".into(),
        TokenChange::NewPassword { because } => format!("new password: {}", entry_change(because)),
    }
}

pub fn entry_change(change: &EntryChange) -> String {
    match change {
        EntryChange::AddsRegistry { registry } => format!("adds registry {registry}"),
        EntryChange::Removes { login_server } => format!("removes {login_server}"),
        EntryChange::EditedOutside { registry } => format!("its {registry} entry was edited outside acrlink"),
        EntryChange::AdminPasswordChanged { registry } => format!("the admin password of {registry} changed"),
        EntryChange::ServicePrincipalSecretChanged { registry } => {
            format!("the service principal secret for {registry} changed")
        }
        EntryChange::SwitchesToken { registry, token } => format!("switches {registry} to token {token}"),
        EntryChange::TokenGone { registry, token } => format!("token {token} of {registry} is gone"),
        EntryChange::PasswordGone { token } => format!("the password it uses on token {token} is gone"),
        EntryChange::PasswordRegenerated { token } => {
            format!("the password it uses on token {token} was regenerated outside acrlink")
        }
        EntryChange::PasswordExpired => "its password expired".into(),
        EntryChange::Rotation { expiry } => {
            format!("rotation: the password expires {expiry} (less than rotate_before away)")
        }
        EntryChange::NoWorkingPassword => "no Secret holds a working password".into(),
        EntryChange::NewToken => "a new token".into(),
    }
}

pub fn in_place(reason: &InPlace) -> String {
    match reason {
        InPlace::GrantedByAcrlink => "granted by acrlink".into(),
        InPlace::GrantedUnderAnotherName { name } => format!("granted by acrlink under another name ({name})"),
        InPlace::Inherited { scope, role } => format!("inherited from {scope} ({role})"),
        InPlace::GrantedOutside { role, name } => {
            format!("already granted outside acrlink ({role} as {name}; az aks update --attach-acr or by hand)")
        }
        InPlace::ScopeMapInPlace => "scope map in place".into(),
        InPlace::TokenInPlace => "token and its password in place".into(),
        InPlace::SecretInPlace => "pull Secret in place".into(),
        InPlace::ServiceAccountLists { names } => format!("imagePullSecrets lists {}", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_needed_secret_names_the_bindings_that_want_it() {
        let one = Reason::SecretNeeded { bindings: vec!["vendor".into()], registries: vec!["a".into(), "b".into()] };
        assert_eq!(reason(&one), "binding \"vendor\" wants registries a, b here");
        let two = Reason::SecretNeeded { bindings: vec!["x".into(), "y".into()], registries: vec!["a".into()] };
        assert_eq!(reason(&two), "bindings \"x\", \"y\" want registries a here");
    }
}
