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

/// The problems found so far and what earlier sections declared, which later ones refer to.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    /// Subscription id or lowercase name → lowercase id.
    subscriptions: HashMap<String, String>,
    /// (subscription id, lowercase group name) of every declared resource group.
    groups: HashSet<(String, String)>,
    /// Object ids in use → where (kubelet identities and principals share one directory).
    object_ids: HashMap<String, String>,
    role_names: HashSet<String>,
    role_guids: HashSet<String>,
    /// Lowercase principal names → kind.
    principal_names: HashMap<String, String>,
    client_ids: HashSet<String>,
    /// (subscription, group, name) of each cluster, lowercase.
    cluster_keys: HashSet<(String, String, String)>,
    /// Registry names, lowercase (they are global).
    registry_names: HashSet<String>,
}

impl Checker {
    fn report(&mut self, path: &[Seg], message: impl Into<String>) {
        self.problems.push(Problem { path: path.to_vec(), message: message.into() });
    }

    fn resolve_subscription(&self, text: &str) -> Option<String> {
        self.subscriptions.get(&text.to_ascii_lowercase()).cloned()
    }

    fn role_known(&self, role: &str) -> bool {
        self.role_names.contains(&role.to_ascii_lowercase()) || self.role_guids.contains(&role.to_ascii_lowercase())
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
    "Microsoft.Resources/resources",
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
    let mut c = Checker::default();
    c.settings(world);
    c.subscriptions(world);
    c.resource_groups(world);
    for (i, cluster) in world.clusters.iter().enumerate() {
        c.cluster(i, cluster);
    }
    for (i, registry) in world.registries.iter().enumerate() {
        c.registry(i, registry);
    }
    // Custom roles first: grants and assignments may name them.
    c.role_definitions(world);
    for (i, principal) in world.principals.iter().enumerate() {
        c.principal(i, principal);
    }
    c.memberships_and_default_client(world);
    c.role_assignments(world);
    c.faults(world);
    c.sign_in(world);
    c.problems
}

impl Checker {
    /// Managed identities are principals with a client id; the service connection is a GUID.
    fn sign_in(&mut self, world: &World) {
        let sign_in = &world.sign_in;
        if !is_guid(&sign_in.pipelines_service_connection_id) {
            self.report(
                &[Seg::Key("sign_in".into()), Seg::Key("pipelines_service_connection_id".into())],
                "must be a GUID",
            );
        }
        for (i, name) in sign_in.managed_identities.iter().enumerate() {
            let found = world.principals.iter().find(|p| p.name.eq_ignore_ascii_case(name));
            let message = match found {
                None => format!("no principal is named {name:?}"),
                Some(p) if p.client_id.is_none() => format!("principal {name:?} has no client_id"),
                Some(_) => continue,
            };
            self.report(&[Seg::Key("sign_in".into()), Seg::Key("managed_identities".into()), Seg::Index(i)], message);
        }
    }

    fn settings(&mut self, world: &World) {
        if !is_guid(&world.tenant.id) {
            self.report(&[Seg::Key("tenant".into()), Seg::Key("id".into())], "must be a GUID");
        }
        if world.settings.page_size == 0 {
            self.report(&[Seg::Key("settings".into()), Seg::Key("page_size".into())], "must be at least 1");
        }
        for key in world.settings.api_versions.keys() {
            if !API_VERSION_TYPES.iter().any(|t| t.eq_ignore_ascii_case(key)) {
                self.report(
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
                self.report(
                    &[Seg::Key("settings".into()), Seg::Key("throttle".into()), Seg::Key(name.into())],
                    "capacity must be at least 1 and refill_per_second at least 0",
                );
            }
        }
    }

    /// Subscriptions, by id and by name.
    fn subscriptions(&mut self, world: &World) {
        let mut sub_ids = HashSet::new();
        for (i, sub) in world.subscriptions.iter().enumerate() {
            if !is_guid(&sub.id) {
                self.report(&at("subscriptions", i, "id"), "must be a GUID");
            }
            if !sub_ids.insert(sub.id.to_ascii_lowercase()) {
                self.report(&at("subscriptions", i, "id"), "duplicate subscription id");
            }
            if self.subscriptions.insert(sub.name.to_ascii_lowercase(), sub.id.to_ascii_lowercase()).is_some() {
                self.report(&at("subscriptions", i, "name"), format!("duplicate subscription name {:?}", sub.name));
            }
            self.subscriptions.insert(sub.id.to_ascii_lowercase(), sub.id.to_ascii_lowercase());
        }
    }

    fn resource_groups(&mut self, world: &World) {
        for (i, rg) in world.resource_groups.iter().enumerate() {
            match self.resolve_subscription(&rg.subscription) {
                None => self.report(
                    &at("resource_groups", i, "subscription"),
                    format!("no subscription with id or name {:?}", rg.subscription),
                ),
                Some(sub) => {
                    if !self.groups.insert((sub, rg.name.to_ascii_lowercase())) {
                        self.report(
                            &at("resource_groups", i, "name"),
                            format!("duplicate resource group {:?}", rg.name),
                        );
                    }
                }
            }
            if !resource_group_name_ok(&rg.name) {
                self.report(
                    &at("resource_groups", i, "name"),
                    "1 to 90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'",
                );
            }
        }
    }

    /// A cluster or registry names a declared subscription and a group declared in it.
    fn placement(&mut self, list: &str, i: usize, subscription: &str, group: &str) {
        match self.resolve_subscription(subscription) {
            None => {
                self.report(&at(list, i, "subscription"), format!("no subscription with id or name {subscription:?}"))
            }
            Some(sub) => {
                if !self.groups.contains(&(sub, group.to_ascii_lowercase())) {
                    self.report(
                        &at(list, i, "resource_group"),
                        format!("resource group {group:?} is not declared in [[resource_groups]] of this subscription"),
                    );
                }
            }
        }
    }

    fn cluster(&mut self, i: usize, cluster: &super::Cluster) {
        self.placement("clusters", i, &cluster.subscription, &cluster.resource_group);
        if !cluster_name_ok(&cluster.name) {
            self.report(
                &at("clusters", i, "name"),
                "1 to 63 letters, digits, '-' or '_', starting and ending with a letter or digit",
            );
        }
        let key = (
            cluster.subscription.to_ascii_lowercase(),
            cluster.resource_group.to_ascii_lowercase(),
            cluster.name.to_ascii_lowercase(),
        );
        if !self.cluster_keys.insert(key) {
            self.report(
                &at("clusters", i, "name"),
                format!("duplicate cluster {:?} in its resource group", cluster.name),
            );
        }
        self.cluster_identity(i, cluster);
        if let Some(kubelet) = &cluster.kubelet_identity {
            let mut path = at("clusters", i, "kubelet_identity");
            for (field, value) in [("client_id", &kubelet.client_id), ("object_id", &kubelet.object_id)] {
                path.push(Seg::Key(field.into()));
                if !is_guid(value) {
                    self.report(&path, "must be a GUID");
                }
                path.pop();
            }
            self.object_ids.insert(kubelet.object_id.to_ascii_lowercase(), format!("clusters[{i}].kubelet_identity"));
        }
        if cluster.azure_rbac && !cluster.aad {
            self.report(&at("clusters", i, "azure_rbac"), "Azure RBAC for Kubernetes needs aad = true");
        }
    }

    /// A ServicePrincipal cluster has its client id and no kubelet identity; others the reverse.
    fn cluster_identity(&mut self, i: usize, cluster: &super::Cluster) {
        if cluster.identity != ClusterIdentity::ServicePrincipal {
            if cluster.service_principal_client_id.is_some() {
                self.report(
                    &at("clusters", i, "service_principal_client_id"),
                    "only for identity = \"ServicePrincipal\"",
                );
            }
            return;
        }
        if cluster.kubelet_identity.is_some() {
            self.report(&at("clusters", i, "kubelet_identity"), "a ServicePrincipal cluster has no kubelet identity");
        }
        match &cluster.service_principal_client_id {
            None => self.report(
                &at("clusters", i, "service_principal_client_id"),
                "required when identity = \"ServicePrincipal\"",
            ),
            Some(id) if !is_guid(id) => {
                self.report(&at("clusters", i, "service_principal_client_id"), "must be a GUID")
            }
            Some(_) => {}
        }
    }

    fn registry(&mut self, i: usize, registry: &super::Registry) {
        self.placement("registries", i, &registry.subscription, &registry.resource_group);
        if !registry_name_ok(&registry.name) {
            self.report(&at("registries", i, "name"), "5 to 50 letters and digits");
        }
        if !self.registry_names.insert(registry.name.to_ascii_lowercase()) {
            self.report(
                &at("registries", i, "name"),
                format!("duplicate registry name {:?} (names are global)", registry.name),
            );
        }
        if !["Basic", "Standard", "Premium", "Classic"].contains(&registry.sku.as_str()) {
            self.report(&at("registries", i, "sku"), "one of Basic, Standard, Premium, Classic");
        }
        if !registry.admin_passwords.is_empty() && registry.admin_passwords.len() != 2 {
            self.report(&at("registries", i, "admin_passwords"), "exactly two passwords (password and password2)");
        }
        let maps = self.scope_maps(i, registry);
        self.tokens(i, registry, &maps);
    }

    /// Checks the registry's scope maps; returns their names with the system ones.
    fn scope_maps(&mut self, i: usize, registry: &super::Registry) -> HashSet<String> {
        let mut maps: HashSet<String> = SYSTEM_SCOPE_MAPS.iter().map(|s| s.to_string()).collect();
        for (j, map) in registry.scope_maps.iter().enumerate() {
            let mut path = at("registries", i, "scope_maps");
            path.push(Seg::Index(j));
            path.push(Seg::Key("name".into()));
            if !scope_map_name_ok(&map.name) || map.name.starts_with('_') {
                self.report(
                    &path,
                    "5 to 50 letters, digits, '-' or '_', not starting with '_' (reserved for system scope maps)",
                );
            }
            if !maps.insert(map.name.to_ascii_lowercase()) {
                self.report(&path, format!("duplicate scope map {:?}", map.name));
            }
        }
        maps
    }

    fn tokens(&mut self, i: usize, registry: &super::Registry, maps: &HashSet<String>) {
        let mut tokens = HashSet::new();
        for (j, token) in registry.tokens.iter().enumerate() {
            let mut path = at("registries", i, "tokens");
            path.push(Seg::Index(j));
            path.push(Seg::Key("name".into()));
            if !token_name_ok(&token.name) {
                self.report(&path, "5 to 50 letters, digits or '-'");
            }
            if !tokens.insert(token.name.to_ascii_lowercase()) {
                self.report(&path, format!("duplicate token {:?}", token.name));
            }
            path.pop();
            path.push(Seg::Key("scope_map".into()));
            if !maps.contains(&token.scope_map.to_ascii_lowercase()) {
                self.report(&path, format!("no scope map {:?} in this registry", token.scope_map));
            }
            path.pop();
            path.push(Seg::Key("status".into()));
            if token.status != "enabled" && token.status != "disabled" {
                self.report(&path, "\"enabled\" or \"disabled\"");
            }
        }
    }

    fn role_definitions(&mut self, world: &World) {
        for role in roles::built_ins() {
            self.role_names.insert(role.name.to_ascii_lowercase());
            self.role_guids.insert(role.guid.to_ascii_lowercase());
        }
        for (i, role) in world.role_definitions.iter().enumerate() {
            if !is_guid(&role.id) {
                self.report(&at("role_definitions", i, "id"), "must be a GUID");
            }
            if !self.role_guids.insert(role.id.to_ascii_lowercase()) {
                self.report(&at("role_definitions", i, "id"), "a role definition with this id already exists");
            }
            if !self.role_names.insert(role.name.to_ascii_lowercase()) {
                self.report(&at("role_definitions", i, "name"), "a role definition with this name already exists");
            }
        }
    }

    fn principal(&mut self, i: usize, principal: &super::Principal) {
        if !PRINCIPAL_KINDS.contains(&principal.kind.as_str()) {
            self.report(&at("principals", i, "kind"), format!("one of {}", PRINCIPAL_KINDS.join(", ")));
        }
        if !is_guid(&principal.object_id) {
            self.report(&at("principals", i, "object_id"), "must be a GUID");
        }
        if let Some(previous) =
            self.object_ids.insert(principal.object_id.to_ascii_lowercase(), format!("principals[{i}]"))
        {
            self.report(&at("principals", i, "object_id"), format!("object id already used by {previous}"));
        }
        if self.principal_names.insert(principal.name.to_ascii_lowercase(), principal.kind.clone()).is_some() {
            self.report(&at("principals", i, "name"), format!("duplicate principal name {:?}", principal.name));
        }
        self.principal_client(i, principal);
        self.principal_secrets(i, principal);
        self.principal_roles(i, principal);
        if principal.visible_after_seconds < 0.0 {
            self.report(&at("principals", i, "visible_after_seconds"), "cannot be negative");
        }
    }

    fn principal_client(&mut self, i: usize, principal: &super::Principal) {
        let Some(id) = &principal.client_id else {
            if !principal.secrets.is_empty() || !principal.federated_credentials.is_empty() {
                self.report(
                    &at("principals", i, "client_id"),
                    "a principal with secrets or federated credentials needs a client_id",
                );
            }
            return;
        };
        if !is_guid(id) {
            self.report(&at("principals", i, "client_id"), "must be a GUID");
        }
        if !self.client_ids.insert(id.to_ascii_lowercase()) {
            self.report(&at("principals", i, "client_id"), "duplicate client id");
        }
        if principal.kind != "ServicePrincipal" {
            self.report(&at("principals", i, "client_id"), "only service principals have a client id");
        }
    }

    fn principal_secrets(&mut self, i: usize, principal: &super::Principal) {
        for (j, secret) in principal.secrets.iter().enumerate() {
            let mut path = at("principals", i, "secrets");
            path.push(Seg::Index(j));
            if secret.value().is_empty() {
                self.report(&path, "a secret cannot be empty");
            }
            if let Some(expiry) = secret.expires_at()
                && time::OffsetDateTime::parse(expiry, &time::format_description::well_known::Rfc3339).is_err()
            {
                self.report(&path, format!("expires_at {expiry:?} is not an RFC 3339 date-time"));
            }
        }
    }

    fn principal_roles(&mut self, i: usize, principal: &super::Principal) {
        for (j, grant) in principal.roles.iter().enumerate() {
            let mut path = at("principals", i, "roles");
            path.push(Seg::Index(j));
            path.push(Seg::Key("role".into()));
            if !self.role_known(&grant.role) {
                self.report(
                    &path,
                    format!("unknown role {:?} (a built-in or [[role_definitions]] name or GUID)", grant.role),
                );
            }
            path.pop();
            path.push(Seg::Key("scope".into()));
            if !is_valid_scope(&grant.scope) {
                self.report(&path, format!("{:?} is not an ARM scope", grant.scope));
            }
        }
    }

    fn memberships_and_default_client(&mut self, world: &World) {
        for (i, principal) in world.principals.iter().enumerate() {
            for (j, group) in principal.member_of.iter().enumerate() {
                let is_group = world.principals.iter().any(|p| {
                    (p.name.eq_ignore_ascii_case(group) || p.object_id.eq_ignore_ascii_case(group)) && p.kind == "Group"
                });
                if !is_group {
                    let mut path = at("principals", i, "member_of");
                    path.push(Seg::Index(j));
                    self.report(&path, format!("no Group principal named {group:?}"));
                }
            }
        }
        if !world.principals.iter().any(|p| !p.secrets.is_empty()) {
            self.report(
                &[Seg::Key("principals".into())],
                "at least one principal needs a client_id and secrets: the ready line hands it out as AZURE_CLIENT_ID/AZURE_CLIENT_SECRET",
            );
        }
        if world.principals.iter().filter(|p| p.default_client).count() > 1 {
            self.report(&[Seg::Key("principals".into())], "only one principal can be default_client");
        }
        for (i, p) in world.principals.iter().enumerate() {
            if p.default_client && p.secrets.is_empty() {
                self.report(&at("principals", i, "default_client"), "the default client needs secrets");
            }
        }
    }

    fn role_assignments(&mut self, world: &World) {
        let mut names = HashSet::new();
        for (i, assignment) in world.role_assignments.iter().enumerate() {
            if let Some(name) = &assignment.name {
                if !is_guid(name) {
                    self.report(&at("role_assignments", i, "name"), "must be a GUID");
                }
                if !names.insert(name.to_ascii_lowercase()) {
                    self.report(
                        &at("role_assignments", i, "name"),
                        "duplicate role assignment name (names are unique in the tenant)",
                    );
                }
            }
            self.role_assignment_refs(i, assignment);
        }
    }

    /// What an assignment refers to: its scope, role, principal and principal type.
    fn role_assignment_refs(&mut self, i: usize, assignment: &super::RoleAssignment) {
        if !is_valid_scope(&assignment.scope) {
            self.report(&at("role_assignments", i, "scope"), format!("{:?} is not an ARM scope", assignment.scope));
        }
        if !self.role_known(&assignment.role) {
            self.report(&at("role_assignments", i, "role"), format!("unknown role {:?}", assignment.role));
        }
        if !is_guid(&assignment.principal)
            && !self.principal_names.contains_key(&assignment.principal.to_ascii_lowercase())
        {
            self.report(
                &at("role_assignments", i, "principal"),
                "an object id (GUID) or the name of a principal of this world",
            );
        }
        if let Some(kind) = &assignment.principal_type
            && !PRINCIPAL_KINDS.contains(&kind.as_str())
        {
            self.report(&at("role_assignments", i, "principal_type"), format!("one of {}", PRINCIPAL_KINDS.join(", ")));
        }
    }

    fn faults(&mut self, world: &World) {
        for (i, rule) in world.faults.rules.iter().enumerate() {
            let mut path = vec![Seg::Key("faults".into()), Seg::Key("rules".into()), Seg::Index(i)];
            if rule.route.trim().is_empty() {
                path.push(Seg::Key("route".into()));
                self.report(&path, "an operation id, a route template or \"*\"");
                path.pop();
            }
            if let Some(status) = rule.status {
                path.push(Seg::Key("status".into()));
                if rule.kind != FaultKind::ServerError {
                    self.report(&path, "only for kind = \"server_error\"");
                } else if !(500..=599).contains(&status) {
                    self.report(&path, "a 5xx status");
                }
            }
        }
        if world.faults.principal_invisible_seconds < 0.0 {
            self.report(
                &[Seg::Key("faults".into()), Seg::Key("principal_invisible_seconds".into())],
                "cannot be negative",
            );
        }
    }
}
