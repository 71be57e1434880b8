//! Semantic checks of a parsed world: ids are GUIDs, references resolve, names are unique and
//! well-formed. Every problem is reported, each with the path of its field.

use std::collections::{HashMap, HashSet};

use super::{ClusterIdentity, FaultKind, World};
use crate::ids::{is_guid, is_valid_scope};
use crate::roles;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub path: Vec<Seg>,
    pub message: String,
}

pub fn field_name(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, path: &[Seg], message: impl Into<String>) {
        self.problems.push(Problem { path: path.to_vec(), message: message.into() });
    }
}

fn at(list: &str, index: usize, key: &str) -> Vec<Seg> {
    vec![Seg::Key(list.into()), Seg::Index(index), Seg::Key(key.into())]
}

const PRINCIPAL_KINDS: &[&str] = &["ServicePrincipal", "User", "Group", "ForeignGroup", "Device"];
const SYSTEM_SCOPE_MAPS: &[&str] = &[
    "_repositories_pull",
    "_repositories_pull_metadata_read",
    "_repositories_push",
    "_repositories_push_metadata_write",
    "_repositories_admin",
];

/// Resource types whose api-versions `settings.api_versions` may override.
pub const API_VERSION_TYPES: &[&str] = &[
    "Microsoft.Resources/subscriptions",
    "Microsoft.Resources/resourceGroups",
    "Microsoft.ContainerService/managedClusters",
    "Microsoft.ContainerRegistry/registries",
    "Microsoft.Authorization/roleAssignments",
    "Microsoft.Authorization/roleDefinitions",
];

fn cluster_name_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

fn registry_name_ok(name: &str) -> bool {
    (5..=50).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn resource_group_name_ok(name: &str) -> bool {
    (1..=90).contains(&name.len())
        && !name.ends_with('.')
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

fn scope_map_name_ok(name: &str) -> bool {
    (5..=50).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn token_name_ok(name: &str) -> bool {
    (5..=50).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub fn check(world: &World) -> Vec<Problem> {
    let mut c = Checker { problems: Vec::new() };

    if !is_guid(&world.tenant.id) {
        c.report(&[Seg::Key("tenant".into()), Seg::Key("id".into())], "must be a GUID");
    }
    if world.settings.page_size == 0 {
        c.report(&[Seg::Key("settings".into()), Seg::Key("page_size".into())], "must be at least 1");
    }
    for key in world.settings.api_versions.keys() {
        if !API_VERSION_TYPES.iter().any(|t| t.eq_ignore_ascii_case(key)) {
            c.report(
                &[Seg::Key("settings".into()), Seg::Key("api_versions".into()), Seg::Key(key.clone())],
                format!("unknown resource type; expected one of {}", API_VERSION_TYPES.join(", ")),
            );
        }
    }
    for (name, bucket) in [
        ("reads", &world.settings.throttle.reads),
        ("writes", &world.settings.throttle.writes),
        ("deletes", &world.settings.throttle.deletes),
    ] {
        if bucket.capacity == 0 || bucket.refill_per_second.is_nan() || bucket.refill_per_second < 0.0 {
            c.report(
                &[Seg::Key("settings".into()), Seg::Key("throttle".into()), Seg::Key(name.into())],
                "capacity must be at least 1 and refill_per_second at least 0",
            );
        }
    }

    // Subscriptions, by id and by name.
    let mut subscriptions: HashMap<String, String> = HashMap::new();
    let mut sub_ids = HashSet::new();
    for (i, sub) in world.subscriptions.iter().enumerate() {
        if !is_guid(&sub.id) {
            c.report(&at("subscriptions", i, "id"), "must be a GUID");
        }
        if !sub_ids.insert(sub.id.to_ascii_lowercase()) {
            c.report(&at("subscriptions", i, "id"), "duplicate subscription id");
        }
        if subscriptions.insert(sub.name.to_ascii_lowercase(), sub.id.to_ascii_lowercase()).is_some() {
            c.report(&at("subscriptions", i, "name"), format!("duplicate subscription name {:?}", sub.name));
        }
        subscriptions.insert(sub.id.to_ascii_lowercase(), sub.id.to_ascii_lowercase());
    }
    let resolve_sub = |text: &str| subscriptions.get(&text.to_ascii_lowercase()).cloned();

    let mut groups: HashSet<(String, String)> = HashSet::new();
    for (i, rg) in world.resource_groups.iter().enumerate() {
        match resolve_sub(&rg.subscription) {
            None => c.report(
                &at("resource_groups", i, "subscription"),
                format!("no subscription with id or name {:?}", rg.subscription),
            ),
            Some(sub) => {
                if !groups.insert((sub, rg.name.to_ascii_lowercase())) {
                    c.report(&at("resource_groups", i, "name"), format!("duplicate resource group {:?}", rg.name));
                }
            }
        }
        if !resource_group_name_ok(&rg.name) {
            c.report(
                &at("resource_groups", i, "name"),
                "1 to 90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'",
            );
        }
    }

    let check_placement =
        |c: &mut Checker, list: &str, i: usize, subscription: &str, group: &str| match resolve_sub(subscription) {
            None => c.report(&at(list, i, "subscription"), format!("no subscription with id or name {subscription:?}")),
            Some(sub) => {
                if !groups.contains(&(sub, group.to_ascii_lowercase())) {
                    c.report(
                        &at(list, i, "resource_group"),
                        format!("resource group {group:?} is not declared in [[resource_groups]] of this subscription"),
                    );
                }
            }
        };

    let mut cluster_keys = HashSet::new();
    let mut object_ids: HashMap<String, String> = HashMap::new();
    for (i, cluster) in world.clusters.iter().enumerate() {
        check_placement(&mut c, "clusters", i, &cluster.subscription, &cluster.resource_group);
        if !cluster_name_ok(&cluster.name) {
            c.report(
                &at("clusters", i, "name"),
                "1 to 63 letters, digits, '-' or '_', starting and ending with a letter or digit",
            );
        }
        let key = (
            cluster.subscription.to_ascii_lowercase(),
            cluster.resource_group.to_ascii_lowercase(),
            cluster.name.to_ascii_lowercase(),
        );
        if !cluster_keys.insert(key) {
            c.report(&at("clusters", i, "name"), format!("duplicate cluster {:?} in its resource group", cluster.name));
        }
        match cluster.identity {
            ClusterIdentity::ServicePrincipal => {
                if cluster.kubelet_identity.is_some() {
                    c.report(
                        &at("clusters", i, "kubelet_identity"),
                        "a ServicePrincipal cluster has no kubelet identity",
                    );
                }
                match &cluster.service_principal_client_id {
                    None => c.report(
                        &at("clusters", i, "service_principal_client_id"),
                        "required when identity = \"ServicePrincipal\"",
                    ),
                    Some(id) if !is_guid(id) => {
                        c.report(&at("clusters", i, "service_principal_client_id"), "must be a GUID")
                    }
                    Some(_) => {}
                }
            }
            _ => {
                if cluster.service_principal_client_id.is_some() {
                    c.report(
                        &at("clusters", i, "service_principal_client_id"),
                        "only for identity = \"ServicePrincipal\"",
                    );
                }
            }
        }
        if let Some(kubelet) = &cluster.kubelet_identity {
            let mut path = at("clusters", i, "kubelet_identity");
            for (field, value) in [("client_id", &kubelet.client_id), ("object_id", &kubelet.object_id)] {
                path.push(Seg::Key(field.into()));
                if !is_guid(value) {
                    c.report(&path, "must be a GUID");
                }
                path.pop();
            }
            object_ids.insert(kubelet.object_id.to_ascii_lowercase(), format!("clusters[{i}].kubelet_identity"));
        }
        if cluster.azure_rbac && !cluster.aad {
            c.report(&at("clusters", i, "azure_rbac"), "Azure RBAC for Kubernetes needs aad = true");
        }
    }

    let mut registry_names = HashSet::new();
    for (i, registry) in world.registries.iter().enumerate() {
        check_placement(&mut c, "registries", i, &registry.subscription, &registry.resource_group);
        if !registry_name_ok(&registry.name) {
            c.report(&at("registries", i, "name"), "5 to 50 letters and digits");
        }
        if !registry_names.insert(registry.name.to_ascii_lowercase()) {
            c.report(
                &at("registries", i, "name"),
                format!("duplicate registry name {:?} (names are global)", registry.name),
            );
        }
        if !["Basic", "Standard", "Premium", "Classic"].contains(&registry.sku.as_str()) {
            c.report(&at("registries", i, "sku"), "one of Basic, Standard, Premium, Classic");
        }
        if !registry.admin_passwords.is_empty() && registry.admin_passwords.len() != 2 {
            c.report(&at("registries", i, "admin_passwords"), "exactly two passwords (password and password2)");
        }
        let mut maps: HashSet<String> = SYSTEM_SCOPE_MAPS.iter().map(|s| s.to_string()).collect();
        for (j, map) in registry.scope_maps.iter().enumerate() {
            let mut path = at("registries", i, "scope_maps");
            path.push(Seg::Index(j));
            path.push(Seg::Key("name".into()));
            if !scope_map_name_ok(&map.name) || map.name.starts_with('_') {
                c.report(
                    &path,
                    "5 to 50 letters, digits, '-' or '_', not starting with '_' (reserved for system scope maps)",
                );
            }
            if !maps.insert(map.name.to_ascii_lowercase()) {
                c.report(&path, format!("duplicate scope map {:?}", map.name));
            }
        }
        let mut tokens = HashSet::new();
        for (j, token) in registry.tokens.iter().enumerate() {
            let mut path = at("registries", i, "tokens");
            path.push(Seg::Index(j));
            path.push(Seg::Key("name".into()));
            if !token_name_ok(&token.name) {
                c.report(&path, "5 to 50 letters, digits or '-'");
            }
            if !tokens.insert(token.name.to_ascii_lowercase()) {
                c.report(&path, format!("duplicate token {:?}", token.name));
            }
            path.pop();
            path.push(Seg::Key("scope_map".into()));
            if !maps.contains(&token.scope_map.to_ascii_lowercase()) {
                c.report(&path, format!("no scope map {:?} in this registry", token.scope_map));
            }
            path.pop();
            path.push(Seg::Key("status".into()));
            if token.status != "enabled" && token.status != "disabled" {
                c.report(&path, "\"enabled\" or \"disabled\"");
            }
        }
    }

    // Custom roles first: grants and assignments may name them.
    let mut role_names: HashSet<String> = HashSet::new();
    let mut role_guids: HashSet<String> = HashSet::new();
    for role in roles::built_ins() {
        role_names.insert(role.name.to_ascii_lowercase());
        role_guids.insert(role.guid.to_ascii_lowercase());
    }
    for (i, role) in world.role_definitions.iter().enumerate() {
        if !is_guid(&role.id) {
            c.report(&at("role_definitions", i, "id"), "must be a GUID");
        }
        if !role_guids.insert(role.id.to_ascii_lowercase()) {
            c.report(&at("role_definitions", i, "id"), "a role definition with this id already exists");
        }
        if !role_names.insert(role.name.to_ascii_lowercase()) {
            c.report(&at("role_definitions", i, "name"), "a role definition with this name already exists");
        }
    }
    let role_known =
        |role: &str| role_names.contains(&role.to_ascii_lowercase()) || role_guids.contains(&role.to_ascii_lowercase());

    let mut principal_names: HashMap<String, String> = HashMap::new();
    let mut client_ids = HashSet::new();
    for (i, principal) in world.principals.iter().enumerate() {
        if !PRINCIPAL_KINDS.contains(&principal.kind.as_str()) {
            c.report(&at("principals", i, "kind"), format!("one of {}", PRINCIPAL_KINDS.join(", ")));
        }
        if !is_guid(&principal.object_id) {
            c.report(&at("principals", i, "object_id"), "must be a GUID");
        }
        if let Some(previous) = object_ids.insert(principal.object_id.to_ascii_lowercase(), format!("principals[{i}]"))
        {
            c.report(&at("principals", i, "object_id"), format!("object id already used by {previous}"));
        }
        if principal_names.insert(principal.name.to_ascii_lowercase(), principal.kind.clone()).is_some() {
            c.report(&at("principals", i, "name"), format!("duplicate principal name {:?}", principal.name));
        }
        match &principal.client_id {
            Some(id) => {
                if !is_guid(id) {
                    c.report(&at("principals", i, "client_id"), "must be a GUID");
                }
                if !client_ids.insert(id.to_ascii_lowercase()) {
                    c.report(&at("principals", i, "client_id"), "duplicate client id");
                }
                if principal.kind != "ServicePrincipal" {
                    c.report(&at("principals", i, "client_id"), "only service principals have a client id");
                }
            }
            None => {
                if !principal.secrets.is_empty() || !principal.federated_credentials.is_empty() {
                    c.report(
                        &at("principals", i, "client_id"),
                        "a principal with secrets or federated credentials needs a client_id",
                    );
                }
            }
        }
        for (j, secret) in principal.secrets.iter().enumerate() {
            let mut path = at("principals", i, "secrets");
            path.push(Seg::Index(j));
            if secret.value().is_empty() {
                c.report(&path, "a secret cannot be empty");
            }
            if let Some(expiry) = secret.expires_at()
                && time::OffsetDateTime::parse(expiry, &time::format_description::well_known::Rfc3339).is_err()
            {
                c.report(&path, format!("expires_at {expiry:?} is not an RFC 3339 date-time"));
            }
        }
        for (j, grant) in principal.roles.iter().enumerate() {
            let mut path = at("principals", i, "roles");
            path.push(Seg::Index(j));
            path.push(Seg::Key("role".into()));
            if !role_known(&grant.role) {
                c.report(
                    &path,
                    format!("unknown role {:?} (a built-in or [[role_definitions]] name or GUID)", grant.role),
                );
            }
            path.pop();
            path.push(Seg::Key("scope".into()));
            if !is_valid_scope(&grant.scope) {
                c.report(&path, format!("{:?} is not an ARM scope", grant.scope));
            }
        }
        if principal.visible_after_seconds < 0.0 {
            c.report(&at("principals", i, "visible_after_seconds"), "cannot be negative");
        }
    }
    for (i, principal) in world.principals.iter().enumerate() {
        for (j, group) in principal.member_of.iter().enumerate() {
            let is_group = world.principals.iter().any(|p| {
                (p.name.eq_ignore_ascii_case(group) || p.object_id.eq_ignore_ascii_case(group)) && p.kind == "Group"
            });
            if !is_group {
                let mut path = at("principals", i, "member_of");
                path.push(Seg::Index(j));
                c.report(&path, format!("no Group principal named {group:?}"));
            }
        }
    }
    if !world.principals.iter().any(|p| !p.secrets.is_empty()) {
        c.report(
            &[Seg::Key("principals".into())],
            "at least one principal needs a client_id and secrets: the ready line hands it out as AZURE_CLIENT_ID/AZURE_CLIENT_SECRET",
        );
    }
    if world.principals.iter().filter(|p| p.default_client).count() > 1 {
        c.report(&[Seg::Key("principals".into())], "only one principal can be default_client");
    }
    for (i, p) in world.principals.iter().enumerate() {
        if p.default_client && p.secrets.is_empty() {
            c.report(&at("principals", i, "default_client"), "the default client needs secrets");
        }
    }

    let mut names = HashSet::new();
    for (i, assignment) in world.role_assignments.iter().enumerate() {
        if let Some(name) = &assignment.name {
            if !is_guid(name) {
                c.report(&at("role_assignments", i, "name"), "must be a GUID");
            }
            if !names.insert(name.to_ascii_lowercase()) {
                c.report(
                    &at("role_assignments", i, "name"),
                    "duplicate role assignment name (names are unique in the tenant)",
                );
            }
        }
        if !is_valid_scope(&assignment.scope) {
            c.report(&at("role_assignments", i, "scope"), format!("{:?} is not an ARM scope", assignment.scope));
        }
        if !role_known(&assignment.role) {
            c.report(&at("role_assignments", i, "role"), format!("unknown role {:?}", assignment.role));
        }
        if !is_guid(&assignment.principal) && !principal_names.contains_key(&assignment.principal.to_ascii_lowercase())
        {
            c.report(
                &at("role_assignments", i, "principal"),
                "an object id (GUID) or the name of a principal of this world",
            );
        }
        if let Some(kind) = &assignment.principal_type
            && !PRINCIPAL_KINDS.contains(&kind.as_str())
        {
            c.report(&at("role_assignments", i, "principal_type"), format!("one of {}", PRINCIPAL_KINDS.join(", ")));
        }
    }

    for (i, rule) in world.faults.rules.iter().enumerate() {
        let mut path = vec![Seg::Key("faults".into()), Seg::Key("rules".into()), Seg::Index(i)];
        if rule.route.trim().is_empty() {
            path.push(Seg::Key("route".into()));
            c.report(&path, "an operation id, a route template or \"*\"");
            path.pop();
        }
        if let Some(status) = rule.status {
            path.push(Seg::Key("status".into()));
            if rule.kind != FaultKind::ServerError {
                c.report(&path, "only for kind = \"server_error\"");
            } else if !(500..=599).contains(&status) {
                c.report(&path, "a 5xx status");
            }
        }
    }
    if world.faults.principal_invisible_seconds < 0.0 {
        c.report(&[Seg::Key("faults".into()), Seg::Key("principal_invisible_seconds".into())], "cannot be negative");
    }

    c.problems
}
