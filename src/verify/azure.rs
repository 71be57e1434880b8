//! The Azure layer: decides, without touching a cluster, whether a kubelet identity (or a pull
//! Secret's registry credential) can pull. A grant counts when its role DEFINITION carries pull
//! (whatever the role is called, whoever made it, at the registry or any scope above it), each
//! distinct role definition read once per run.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use time::OffsetDateTime;

use super::{Cause, Check, Fleet, Layer, Pair, credential_of};
use crate::config::model::{CredentialSource, Owner};
use crate::methods::acr_names;
use crate::model::Finding;
use crate::ownership;
use crate::provider::{
    Azure, LiveRegistry, LiveRoleAssignment, LiveToken, Permission, RoleAssignmentMode, RoleDefinition, normalize_id,
    role_guid,
};

/// The action AcrPull (and Owner, Contributor, Reader...) carries on registries outside ABAC mode.
const PULL_ACTION: &str = "Microsoft.ContainerRegistry/registries/pull/read";
/// The data action repository roles carry; the only one that counts on ABAC registries.
const CONTENT_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";
const REPOSITORY_ATTRIBUTE: &str = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";

/// Role definitions by GUID.
pub(crate) type Roles = BTreeMap<String, RoleDefinition>;
/// Tokens by registry key, for registries that registry-token bindings use.
pub(crate) type Tokens = BTreeMap<String, Vec<LiveToken>>;

pub(crate) struct Facts<'a> {
    pub fleet: &'a Fleet,
    pub roles: &'a Roles,
    pub tokens: &'a Tokens,
    pub owner: &'a Owner,
}

/// Why a check fails.
struct Failure {
    cause: Cause,
    message: String,
    hint: String,
}

fn failure(cause: Cause, message: String, hint: String) -> Failure {
    Failure { cause, message, hint }
}

/// Whether an assignment at `scope` covers the registry: at it or above it. The registry's
/// list holds assignments at, above and below it, so a management group there is above it.
fn covers(scope: &str, registry_id: &str) -> bool {
    let (scope, registry) = (normalize_id(scope), normalize_id(registry_id));
    scope.is_empty()
        || scope == "/"
        || registry == scope
        || registry.starts_with(&format!("{scope}/"))
        || scope.starts_with("/providers/microsoft.management/managementgroups/")
}

/// Action patterns match case-insensitively, `*` standing for any run of characters.
fn matches(pattern: &str, action: &str) -> bool {
    let (pattern, action) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == action;
    }
    let mut rest = action.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(after) = rest.strip_prefix(part) else { return false };
            rest = after;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

fn allows(allowed: &[String], denied: &[String], action: &str) -> bool {
    allowed.iter().any(|p| matches(p, action)) && !denied.iter().any(|p| matches(p, action))
}

fn carries_pull(permissions: &[Permission]) -> bool {
    permissions.iter().any(|p| allows(&p.actions, &p.not_actions, PULL_ACTION))
}

fn carries_content_read(permissions: &[Permission]) -> bool {
    permissions.iter().any(|p| allows(&p.data_actions, &p.not_data_actions, CONTENT_READ))
}

/// The kubelet identities' assignments covering each pair's registry.
fn candidate_grants<'a>(fleet: &'a Fleet, pair: &Pair<'_>) -> Vec<&'a LiveRoleAssignment> {
    let Some(identity) = &pair.cluster.live.kubelet_identity else { return Vec::new() };
    let Some(registry) = fleet.inventory.registries.get(&pair.registry) else { return Vec::new() };
    fleet
        .assignments
        .get(&pair.registry)
        .into_iter()
        .flatten()
        .filter(|a| a.principal_id.eq_ignore_ascii_case(&identity.object_id) && covers(&a.scope, &registry.id))
        .collect()
}

/// Reads the definition of every role that some kubelet identity holds over a bound registry,
/// once per distinct role.
pub(crate) async fn role_definitions<A: Azure>(
    fleet: &Fleet,
    pairs: &[Pair<'_>],
    azure: &A,
    errors: &mut Vec<Finding>,
) -> Roles {
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for pair in pairs.iter().filter(|p| credential_of(p.binding).is_none()) {
        for grant in candidate_grants(fleet, pair) {
            wanted.entry(role_guid(&grant.role_definition_id)).or_insert_with(|| grant.role_definition_id.clone());
        }
    }
    let reads =
        wanted.into_iter().map(|(guid, id)| async move { (guid, id.clone(), azure.get_role_definition(&id).await) });
    let mut roles = Roles::new();
    for (guid, id, read) in join_all(reads).await {
        match read {
            Ok(Some(definition)) => {
                roles.insert(guid, definition);
            }
            Ok(None) => {}
            Err(error) => errors.push(Finding {
                subject: format!("role definition {id}"),
                message: format!("cannot read role definition {id}: {error}"),
                hint: Some("the identity running acrlink needs Reader (Microsoft.Authorization/roleDefinitions/read) on the registries' scopes".into()),
            }),
        }
    }
    roles
}

/// The tokens of every registry a registry-token binding uses: one list per registry.
pub(crate) async fn tokens<A: Azure>(
    fleet: &Fleet,
    pairs: &[Pair<'_>],
    azure: &A,
    errors: &mut Vec<Finding>,
) -> Tokens {
    let registries: BTreeSet<&str> = pairs
        .iter()
        .filter(|p| matches!(credential_of(p.binding), Some(CredentialSource::RegistryToken)))
        .map(|p| p.registry.as_str())
        .collect();
    let reads = registries.into_iter().filter_map(|key| {
        let registry = fleet.inventory.registries.get(key)?;
        Some(async move { (key.to_string(), azure.list_tokens(&registry.id).await) })
    });
    let mut tokens = Tokens::new();
    for (key, read) in join_all(reads).await {
        match read {
            Ok(list) => {
                tokens.insert(key, list);
            }
            Err(error) => errors.push(Finding {
                subject: format!("registry {key}"),
                message: format!("cannot read the tokens of registry {key}: {error}"),
                hint: None,
            }),
        }
    }
    tokens
}

/// Decides one check at the Azure layer.
pub(crate) fn decide(facts: &Facts<'_>, pair: &Pair<'_>, check: &mut Check) {
    let Some(registry) = facts.fleet.inventory.registries.get(&pair.registry) else { return };
    let notes = network_notes(registry);
    check.notes.extend(notes);
    let decided = network(registry).and_then(|()| match credential_of(pair.binding) {
        None => managed_identity(facts, pair, registry, check.repository.as_deref()).map(Some),
        Some(credential) => pull_secret(facts, pair, registry, credential),
    });
    match decided {
        Ok(Some(message)) => check.ok(Layer::Azure, message),
        Ok(None) => check.skip(
            Layer::Azure,
            "a service principal's secret and grant are checked at the registry's token endpoint".into(),
            Some("run verify with --probe registry (the default) or --probe pod".into()),
        ),
        Err(f) => check.fail(Layer::Azure, f.cause, f.message, f.hint),
    }
}

fn network_notes(registry: &LiveRegistry) -> Vec<String> {
    let access = &registry.access;
    if access.public_network && !access.default_deny {
        return Vec::new();
    }
    let approved: Vec<&str> = access.private_endpoints.iter().filter(|e| e.approved).map(|e| e.id.as_str()).collect();
    let pending = access.private_endpoints.len() - approved.len();
    let mut note = if approved.is_empty() {
        format!("registry {} has no approved private endpoint", registry.name)
    } else {
        format!("registry {} is reached through approved private endpoint(s) {}", registry.name, approved.join(", "))
    };
    if pending > 0 {
        note.push_str(&format!(" ({pending} not approved)"));
    }
    note.push_str("; the cluster's network path itself is checked only by --probe pod");
    vec![note]
}

/// A closed registry network with no approved private endpoint: nothing outside reaches it.
fn network(registry: &LiveRegistry) -> Result<(), Failure> {
    let access = &registry.access;
    if access.private_endpoints.iter().any(|e| e.approved) || (access.public_network && !access.default_deny) {
        return Ok(());
    }
    let what = if access.public_network {
        "its network rules deny by default (networkRuleSet.defaultAction = Deny)"
    } else {
        "public network access is disabled"
    };
    Err(failure(
        Cause::Network,
        format!("registry {} cannot be reached: {what} and no private endpoint is approved", registry.name),
        format!(
            "approve a private endpoint in the cluster's virtual network (az network private-endpoint-connection approve), or allow the cluster's egress (az acr network-rule add -n {} / az acr update -n {} --public-network-enabled true)",
            registry.name, registry.name
        ),
    ))
}

fn managed_identity(
    facts: &Facts<'_>,
    pair: &Pair<'_>,
    registry: &LiveRegistry,
    repository: Option<&str>,
) -> Result<String, Failure> {
    let cluster = pair.cluster;
    let Some(identity) = &cluster.live.kubelet_identity else {
        return Err(failure(
            Cause::Identity,
            format!("cluster {} has no kubelet managed identity (it uses a service principal)", cluster.key),
            "migrate the cluster to managed identity (az aks update --enable-managed-identity), or bind it with method = \"pull-secret\"".into(),
        ));
    };
    if !registry.access.arm_tokens {
        return Err(failure(
            Cause::RegistryPolicy,
            format!(
                "registry {} refuses ARM-audience tokens (policies.azureADAuthenticationAsArmPolicy is disabled), and kubelet tokens are ARM-audience",
                registry.name
            ),
            format!("az acr config authentication-as-arm update -r {} --status enabled", registry.name),
        ));
    }
    let grants = candidate_grants(facts.fleet, pair);
    let mut excluded = Vec::new();
    let mut legacy_on_abac = false;
    for grant in &grants {
        let Some(role) = facts.roles.get(&role_guid(&grant.role_definition_id)) else { continue };
        let legacy = carries_pull(&role.permissions);
        if legacy && registry.role_assignment_mode == RoleAssignmentMode::Legacy {
            return Ok(format!("{} pulls through {} {}", identity.object_id, role.role_name, at(grant, registry)));
        }
        legacy_on_abac |= legacy;
        if carries_content_read(&role.permissions) {
            if condition_covers(grant.condition.as_deref(), repository) {
                return Ok(format!("{} reads through {} {}", identity.object_id, role.role_name, at(grant, registry)));
            }
            excluded.push(role.role_name.clone());
        }
    }
    Err(no_grant(facts, pair, registry, repository, &excluded, legacy_on_abac))
}

/// Where a grant is: on the registry itself, or the scope above it that it is inherited from.
fn at(grant: &LiveRoleAssignment, registry: &LiveRegistry) -> String {
    if normalize_id(&grant.scope) == normalize_id(&registry.id) {
        "on the registry".into()
    } else {
        format!("inherited from {}", grant.scope)
    }
}

/// Why no grant works: a swapped identity, a condition that leaves the repository out, AcrPull
/// on an ABAC registry, or no grant at all.
fn no_grant(
    facts: &Facts<'_>,
    pair: &Pair<'_>,
    registry: &LiveRegistry,
    repository: Option<&str>,
    excluded: &[String],
    legacy_on_abac: bool,
) -> Failure {
    let cluster = pair.cluster;
    let kubelet = cluster.live.kubelet_identity.as_ref().map(|k| k.object_id.as_str()).unwrap_or_default();
    let cluster_id = normalize_id(&cluster.live.id);
    let swapped = facts.fleet.assignments.get(&pair.registry).into_iter().flatten().find(|a| {
        !a.principal_id.eq_ignore_ascii_case(kubelet)
            && a.description
                .as_deref()
                .and_then(ownership::described_cluster)
                .is_some_and(|c| normalize_id(c) == cluster_id)
    });
    let what = repository.map_or_else(|| "the registry".to_string(), |r| format!("repository {r}"));
    if let Some(old) = swapped {
        return failure(
            Cause::Identity,
            format!(
                "cluster {}'s kubelet identity changed: the grant on {} is for principal {}, the kubelet is now {kubelet}",
                cluster.key, registry.name, old.principal_id
            ),
            "run `acrlink apply`: it grants the new identity and removes the old grant".into(),
        );
    }
    if !excluded.is_empty() {
        return failure(
            Cause::AbacCondition,
            format!(
                "{kubelet} holds {} on {}, but its ABAC condition leaves out {what}",
                excluded.join(", "),
                registry.name
            ),
            format!(
                "widen the condition to include {what}: add it to `repositories` of binding {:?} and run `acrlink apply`",
                pair.binding.name
            ),
        );
    }
    if legacy_on_abac {
        return failure(
            Cause::Rbac,
            format!(
                "{kubelet} holds AcrPull-like roles on {}, which are ineffective: the registry is in ABAC mode (AbacRepositoryPermissions)",
                registry.name
            ),
            "grant Container Registry Repository Reader (with a repository condition): run `acrlink apply`".into(),
        );
    }
    failure(
        Cause::Rbac,
        format!(
            "no role assignment lets kubelet identity {kubelet} of cluster {} pull from {}",
            cluster.key, registry.name
        ),
        "run `acrlink apply` (or az aks update --attach-acr); a grant takes a few minutes to propagate".into(),
    )
}

/// Whether an ABAC condition lets every repository the pattern stands for be read (`None`:
/// every repository). A condition that does not test the repository name restricts nothing;
/// tests on it are OR-ed; an operator not known here does not count.
pub(crate) fn condition_covers(condition: Option<&str>, repository: Option<&str>) -> bool {
    let Some(condition) = condition else { return true };
    let mut rest = condition;
    let mut tests = 0;
    while let Some(at) = rest.find(REPOSITORY_ATTRIBUTE) {
        tests += 1;
        rest = rest[at + REPOSITORY_ATTRIBUTE.len()..].trim_start();
        let operator: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == ':').collect();
        let after = &rest[operator.len()..];
        let Some(start) = after.find('\'') else { continue };
        let Some(length) = after[start + 1..].find('\'') else { continue };
        let value = &after[start + 1..start + 1 + length];
        if repository.is_some_and(|r| test_covers(&operator, value, r)) {
            return true;
        }
    }
    tests == 0
}

/// Whether one test on the repository name admits every repository `pattern` stands for.
fn test_covers(operator: &str, value: &str, pattern: &str) -> bool {
    let (prefix, exact) = match pattern.strip_suffix('*') {
        Some(prefix) => (prefix, false),
        None => (pattern, true),
    };
    let lower = |s: &str| s.to_ascii_lowercase();
    match operator {
        "StringEquals" => exact && prefix == value,
        "StringEqualsIgnoreCase" => exact && prefix.eq_ignore_ascii_case(value),
        "StringStartsWith" => prefix.starts_with(value),
        "StringStartsWithIgnoreCase" => lower(prefix).starts_with(&lower(value)),
        "StringLike" => match value.strip_suffix('*') {
            Some(like) if !like.contains('*') => prefix.starts_with(like),
            _ => exact && matches(value, prefix),
        },
        _ => false,
    }
}

fn pull_secret(
    facts: &Facts<'_>,
    pair: &Pair<'_>,
    registry: &LiveRegistry,
    credential: &CredentialSource,
) -> Result<Option<String>, Failure> {
    match credential {
        CredentialSource::Admin if !registry.admin_user_enabled => Err(failure(
            Cause::RegistryPolicy,
            format!(
                "registry {}'s admin user is disabled, and binding {:?} pulls with it",
                registry.name, pair.binding.name
            ),
            format!(
                "az acr update -n {} --admin-enabled true, then `acrlink apply`; or use credential = \"registry-token\"",
                registry.name
            ),
        )),
        CredentialSource::Admin => Ok(Some(format!("registry {}'s admin user is enabled", registry.name))),
        CredentialSource::RegistryToken => token(facts, pair, registry).map(Some),
        CredentialSource::ServicePrincipal { .. } => Ok(None),
    }
}

/// A token that does not exist: apply makes it, unless the registry already holds as many
/// tokens as its SKU allows, when ACR refuses any new one.
fn missing_token(name: &str, registry: &LiveRegistry, held: usize, apply: String) -> Failure {
    let sku = registry.access.sku.as_deref().unwrap_or_default();
    match crate::kinds::registry_token::sku_token_limit(sku) {
        Some(limit) if held >= limit => failure(
            Cause::RegistryPolicy,
            format!(
                "token {name} of registry {} does not exist, and the registry holds {held} tokens, the most its {sku} SKU allows ({limit})",
                registry.name
            ),
            format!(
                "delete tokens no one uses (az acr token list -r {r}), or move the registry to a larger SKU (az acr update -n {r} --sku Premium; Standard holds 500 tokens, Premium 50,000), then `acrlink apply`",
                r = registry.name
            ),
        ),
        _ => failure(Cause::Credential, format!("token {name} of registry {} does not exist", registry.name), apply),
    }
}

fn token(facts: &Facts<'_>, pair: &Pair<'_>, registry: &LiveRegistry) -> Result<String, Failure> {
    let name = acr_names::token_name(
        facts.owner,
        &pair.cluster.key,
        &pair.cluster.live.id,
        &pair.binding.name,
        &pair.registry,
    );
    let apply = "run `acrlink apply`: it creates, enables or renews the token and updates the pull Secrets".to_string();
    let tokens = facts.tokens.get(&pair.registry).map_or(&[][..], Vec::as_slice);
    let Some(token) = tokens.iter().find(|t| t.name == name) else {
        return Err(missing_token(&name, registry, tokens.len(), apply));
    };
    if !token.enabled {
        return Err(failure(
            Cause::Credential,
            format!("token {name} of registry {} is disabled", registry.name),
            apply,
        ));
    }
    let now = OffsetDateTime::now_utc();
    let alive = token.passwords.iter().any(|p| {
        p.expiry.as_deref().is_none_or(|e| {
            OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).is_ok_and(|at| at > now)
        })
    });
    if !alive {
        return Err(failure(
            Cause::Credential,
            format!("every password of token {name} of registry {} has expired", registry.name),
            apply,
        ));
    }
    Ok(format!("token {name} of registry {} is enabled and has a live password", registry.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_the_registry_at_and_above_it() {
        let registry = "/subscriptions/S/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr";
        assert!(covers(registry, registry));
        assert!(covers("/subscriptions/s/resourcegroups/RG", registry));
        assert!(covers("/subscriptions/S", registry));
        assert!(covers("/providers/Microsoft.Management/managementGroups/root", registry));
        assert!(!covers("/subscriptions/S/resourceGroups/rg2", registry));
        assert!(!covers("/subscriptions/S/resourceGroups/r", registry), "a prefix that is not a parent");
        assert!(!covers(&format!("{registry}/scopeMaps/x"), registry), "below the registry");
    }

    #[test]
    fn roles_carry_pull_by_their_permissions() {
        let permission = |actions: &[&str], not: &[&str]| Permission {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            not_actions: not.iter().map(|s| s.to_string()).collect(),
            ..Permission::default()
        };
        assert!(carries_pull(&[permission(&["Microsoft.ContainerRegistry/registries/pull/read"], &[])]));
        assert!(carries_pull(&[permission(&["*"], &[])]), "Owner and Contributor");
        assert!(carries_pull(&[permission(&["*/read"], &[])]), "Reader");
        assert!(!carries_pull(&[permission(&["*"], &["Microsoft.ContainerRegistry/*"])]));
        let data = Permission {
            data_actions: vec!["Microsoft.ContainerRegistry/registries/repositories/*/read".into()],
            ..Permission::default()
        };
        assert!(carries_content_read(&[data]));
    }

    #[test]
    fn conditions_cover_repository_patterns() {
        let condition = crate::kinds::roles::repository_condition(&["payments/*".into(), "base/nginx".into()]);
        assert!(condition_covers(Some(&condition), Some("payments/*")));
        assert!(condition_covers(Some(&condition), Some("payments/api")));
        assert!(condition_covers(Some(&condition), Some("Base/Nginx")));
        assert!(!condition_covers(Some(&condition), Some("research/model")));
        assert!(!condition_covers(Some(&condition), Some("pay*")), "wider than the condition");
        assert!(!condition_covers(Some(&condition), None), "the whole registry");
        assert!(condition_covers(None, None));
        assert!(condition_covers(Some("@Resource[x] StringEquals 'y'"), None), "no test on the name");
    }
}
