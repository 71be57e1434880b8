//! Who may do what on a registry's repositories: the admin user, scope-map tokens, service
//! principals and ACR refresh tokens as credentials, and Azure RBAC for principals (legacy
//! `actions` such as AcrPull's `pull/read` on non-ABAC registries; repository `dataActions`
//! with their ABAC repository conditions everywhere), honouring the propagation delay.
//! Shared by the data plane's token service and the kubelet's pulls.

use std::time::{Duration, Instant};

use ring::hmac;
use time::OffsetDateTime;

use crate::entra::verify;
use crate::http::parse_time;
use crate::ids::{is_at_or_above, scope_key};
use crate::roles::wildcard_match;
use crate::state::{RegistryRec, State};
use crate::world::RoleAssignmentMode;

/// The user name kubelets and `docker login` use with an ACR refresh token as password.
pub const REFRESH_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";

/// An authenticated caller of one registry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Who {
    Admin,
    /// A scope-map token: the map's actions (`repositories/team/*/content/read`).
    Token(Vec<String>),
    /// A directory object; Azure RBAC decides.
    Principal(String),
    Anonymous,
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Checks `user`/`password` against the registry as it is now (rotated or expired
/// passwords fail). None means 401.
pub(crate) fn basic(state: &State, key: &hmac::Key, registry: &RegistryRec, user: &str, password: &str) -> Option<Who> {
    if registry.admin_user_enabled
        && user.eq_ignore_ascii_case(&registry.name)
        && registry.passwords.iter().any(|p| p == password)
    {
        return Some(Who::Admin);
    }
    if user == REFRESH_TOKEN_USER {
        return refresh_token(key, registry, password).map(Who::Principal);
    }
    if let Some(token) = registry.tokens.get(&user.to_ascii_lowercase()) {
        let now = OffsetDateTime::now_utc();
        let valid = token.status.eq_ignore_ascii_case("enabled")
            && token.passwords.iter().any(|p| {
                p.value == password && p.expiry.as_deref().and_then(parse_time).is_none_or(|expiry| expiry > now)
            });
        if !valid {
            return None;
        }
        let map = token.scope_map_id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
        return Some(Who::Token(registry.scope_maps.get(&map).map(|m| m.actions.clone()).unwrap_or_default()));
    }
    // A service principal: application (client) id and one of its secrets.
    let object_id = state.clients.get(&user.to_ascii_lowercase())?;
    let principal = state.visible(object_id, Instant::now())?;
    let now = OffsetDateTime::now_utc();
    principal
        .secrets
        .iter()
        .any(|(value, expiry)| value == password && expiry.is_none_or(|e| e > now))
        .then(|| principal.object_id.clone())
        .map(Who::Principal)
}

/// The principal an ACR refresh token of this registry stands for.
pub(crate) fn refresh_token(key: &hmac::Key, registry: &RegistryRec, token: &str) -> Option<String> {
    let claims = verify(key, token)?;
    let fresh = claims["exp"].as_i64().is_some_and(|exp| exp > unix_now());
    let ours = claims["aud"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(&registry.login_server));
    (fresh && ours && claims["grant_type"] == "refresh_token")
        .then(|| claims["sub"].as_str().unwrap_or_default().to_string())
}

fn legacy_action(action: &str) -> &'static str {
    match action {
        "pull" => "Microsoft.ContainerRegistry/registries/pull/read",
        "push" => "Microsoft.ContainerRegistry/registries/push/write",
        _ => "Microsoft.ContainerRegistry/registries/artifacts/delete",
    }
}

fn content_action(action: &str) -> &'static str {
    match action {
        "pull" => "content/read",
        "push" => "content/write",
        _ => "content/delete",
    }
}

/// Whether an ABAC condition lets a repository through. Conditions that do not mention the
/// repository name do not restrict it; clauses on the name are OR-ed (the portal's form);
/// an operator the emulator does not know fails closed.
pub(crate) fn condition_allows(condition: Option<&str>, repository: &str) -> bool {
    let Some(condition) = condition else { return true };
    const ATTRIBUTE: &str = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";
    let mut rest = condition;
    let mut seen = false;
    while let Some(at) = rest.find(ATTRIBUTE) {
        seen = true;
        rest = &rest[at + ATTRIBUTE.len()..];
        let trimmed = rest.trim_start();
        let op: String = trimmed.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == ':').collect();
        let after = &trimmed[op.len()..];
        let Some(start) = after.find('\'') else { continue };
        let Some(len) = after[start + 1..].find('\'') else { continue };
        let value = &after[start + 1..start + 1 + len];
        let matched = match op.as_str() {
            "StringEquals" => repository == value,
            "StringEqualsIgnoreCase" => repository.eq_ignore_ascii_case(value),
            "StringStartsWith" => repository.starts_with(value),
            "StringStartsWithIgnoreCase" => repository.to_ascii_lowercase().starts_with(&value.to_ascii_lowercase()),
            "StringLike" => wildcard_match(value, repository),
            _ => false,
        };
        if matched {
            return true;
        }
    }
    !seen
}

/// Whether a scope covers the registry: at or above it, or the tenant root management group.
fn covers(state: &State, scope: &str, registry_id: &str) -> bool {
    let key = scope_key(scope);
    let root = format!("/providers/microsoft.management/managementgroups/{}", state.tenant_id);
    key == root || is_at_or_above(&key, registry_id)
}

/// Azure RBAC for a principal (and its groups) on one repository action.
pub(crate) fn principal_may(
    state: &State,
    registry: &RegistryRec,
    object_id: &str,
    repository: &str,
    action: &str,
) -> bool {
    let ids = state.identities_of(object_id);
    let propagation = Duration::from_secs_f64(state.settings.rbac_propagation_seconds.max(0.0));
    let data = format!("Microsoft.ContainerRegistry/registries/repositories/{}", content_action(action));
    state
        .assignments
        .of_principals(&ids)
        .filter(|a| a.created_at.is_none_or(|t| t.elapsed() >= propagation))
        .filter(|a| covers(state, &a.scope, &registry.id))
        .any(|a| {
            let Some(role) = state.roles.iter().find(|r| r.guid == a.role_guid) else { return false };
            let legacy = registry.role_assignment_mode == RoleAssignmentMode::LegacyRegistryPermissions
                && role.allows(legacy_action(action));
            let data_ok = role.data_actions.iter().any(|p| wildcard_match(p, &data))
                && !role.not_data_actions.iter().any(|p| wildcard_match(p, &data))
                && condition_allows(a.condition.as_deref(), repository);
            legacy || data_ok
        })
}

/// Whether `who` may do `action` (`pull`, `push`, `delete`) on `repository`.
pub(crate) fn may(state: &State, registry: &RegistryRec, who: &Who, repository: &str, action: &str) -> bool {
    match who {
        Who::Admin => true,
        Who::Anonymous => registry.anonymous_pull && action == "pull",
        Who::Token(actions) => {
            let wanted = format!("repositories/{repository}/{}", content_action(action));
            actions.iter().any(|a| wildcard_match(a, &wanted))
        }
        Who::Principal(oid) => {
            (registry.anonymous_pull && action == "pull") || principal_may(state, registry, oid, repository, action)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::condition_allows;

    #[test]
    fn repository_conditions() {
        let c = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team-b/'))";
        assert!(condition_allows(Some(c), "team-b/api"));
        assert!(!condition_allows(Some(c), "team-a/app"));
        assert!(condition_allows(None, "x"));
        let eq = "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'a/b' OR @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'c'";
        assert!(condition_allows(Some(eq), "c"));
        assert!(!condition_allows(Some(eq), "a"));
        assert!(!condition_allows(
            Some("@Request[Microsoft.ContainerRegistry/registries/repositories:name] ForAnyOfAnyValues:Weird 'x'"),
            "x"
        ));
        // The form acrlink writes (src/resolve.rs: repository_condition).
        let acrlink = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team/' OR @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'base/nginx'))";
        assert!(condition_allows(Some(acrlink), "Team/App"));
        assert!(condition_allows(Some(acrlink), "base/nginx"));
        assert!(!condition_allows(Some(acrlink), "base/nginx2"));
        assert!(!condition_allows(Some(acrlink), "other/app"));
    }
}
