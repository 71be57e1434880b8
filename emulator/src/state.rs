//! The live emulated tenant built from a world: directory, subscriptions, clusters, registries,
//! role definitions and assignments, pending long-running operations. Handlers and the admin
//! endpoint change it under one lock; nothing here does I/O.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::http::{now_azure, parse_time};
use crate::ids::{bicep_guid, derived_guid, is_at_or_above, normalize_scope, scope_key, subscription_of};
use crate::roles::{self, RoleDef};
use crate::world::{self, ClusterIdentity, FederatedCredential, RoleAssignmentMode, Settings, World};

pub(crate) struct SubscriptionRec {
    pub id: String,
    pub name: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

pub(crate) struct ResourceGroupRec {
    pub subscription: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone)]
pub(crate) struct IdentityRec {
    pub client_id: String,
    pub object_id: String,
    pub resource_id: String,
}

pub(crate) struct ClusterRec {
    pub id: String,
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
    pub kubernetes_version: String,
    pub identity: ClusterIdentity,
    pub control_plane: Option<IdentityRec>,
    pub kubelet: Option<IdentityRec>,
    pub service_principal_client_id: Option<String>,
    pub local_accounts: bool,
    pub aad: bool,
    pub azure_rbac: bool,
    pub sku_tier: String,
    pub power_state: String,
    pub provisioning_state: String,
    pub node_count: u32,
    pub workload_identity: bool,
    pub private_cluster: bool,
    /// Kubernetes RBAC denials on the cluster's API (`*`, `secrets`, `patch:serviceaccounts`).
    pub kube_denials: Vec<String>,
    pub dns_prefix: String,
    pub fqdn: String,
    pub etag: String,
}

pub(crate) struct ScopeMapRec {
    pub name: String,
    pub description: Option<String>,
    pub actions: Vec<String>,
    pub system: bool,
    pub creation_date: String,
    pub provisioning_state: String,
}

#[derive(Clone)]
pub(crate) struct TokenPassword {
    pub name: String,
    pub value: String,
    pub creation_time: String,
    pub expiry: Option<String>,
}

pub(crate) struct TokenRec {
    pub name: String,
    pub scope_map_id: String,
    pub status: String,
    pub creation_date: String,
    pub provisioning_state: String,
    pub passwords: Vec<TokenPassword>,
}

impl RegistryRec {
    /// Whether a cluster's kubelet reaches the registry: its network is open, or a private
    /// endpoint (in a virtual network the clusters are taken to share) is approved.
    pub fn reachable_from_clusters(&self) -> bool {
        (self.public_network && !self.deny_by_default)
            || self.private_endpoints.iter().any(|(_, status)| status.eq_ignore_ascii_case("Approved"))
    }
}

pub(crate) struct RegistryRec {
    pub id: String,
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
    pub sku: String,
    pub login_server: String,
    pub admin_user_enabled: bool,
    pub role_assignment_mode: RoleAssignmentMode,
    pub aad_as_arm: bool,
    pub anonymous_pull: bool,
    pub public_network: bool,
    pub deny_by_default: bool,
    /// (name, connection status) of each private endpoint.
    pub private_endpoints: Vec<(String, String)>,
    pub passwords: [String; 2],
    pub repositories: BTreeMap<String, Vec<String>>,
    pub scope_maps: BTreeMap<String, ScopeMapRec>,
    pub tokens: BTreeMap<String, TokenRec>,
    pub creation_date: String,
}

pub(crate) struct DirectoryObject {
    pub object_id: String,
    pub client_id: Option<String>,
    pub name: String,
    pub kind: String,
    pub secrets: Vec<(String, Option<OffsetDateTime>)>,
    pub federated: Vec<FederatedCredential>,
    pub groups: Vec<String>,
    pub visible_at: Instant,
    /// Graph refuses this principal's directory reads.
    pub no_directory_read: bool,
}

#[derive(Clone)]
pub(crate) struct AssignmentRec {
    pub name: String,
    pub scope: String,
    pub role_guid: String,
    pub principal_id: String,
    pub principal_type: String,
    pub description: Option<String>,
    pub condition: Option<String>,
    pub condition_version: Option<String>,
    pub created_on: String,
    pub updated_on: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub delegated_managed_identity_resource_id: Option<String>,
    /// When it was created at runtime (None: part of the world, long propagated). Data-plane
    /// checks honour it only after `settings.rbac_propagation_seconds`.
    pub created_at: Option<Instant>,
}

/// How a pending operation is polled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollStyle {
    /// `Azure-AsyncOperation`: 200 with `{"status": ...}`.
    AsyncOperation,
    /// `Location`: 202 while running, then the final answer.
    Location,
}

pub(crate) enum Completion {
    /// Set the resource's provisioning state to Succeeded.
    Provisioned { registry: String, child: Child },
    /// Final answer of a Location poll.
    Final { status: u16, body: Option<Value> },
    /// Remove a scope map or token whose DELETE was accepted.
    Delete { registry: String, child: Child },
    /// An AKS cluster update finished: the cluster (by key) is `Succeeded` again.
    ClusterUpdated { cluster: String },
}

#[derive(Clone)]
pub(crate) enum Child {
    ScopeMap(String),
    Token(String),
}

pub(crate) struct Operation {
    pub style: PollStyle,
    pub polls_left: u32,
    pub started: String,
    pub completion: Completion,
}

pub(crate) struct State {
    pub tenant_id: String,
    pub tenant_domain: Option<String>,
    pub settings: Settings,
    pub subscriptions: Vec<SubscriptionRec>,
    pub resource_groups: Vec<ResourceGroupRec>,
    pub clusters: BTreeMap<String, ClusterRec>,
    pub registries: BTreeMap<String, RegistryRec>,
    pub directory: HashMap<String, DirectoryObject>,
    pub clients: HashMap<String, String>,
    pub roles: Vec<RoleDef>,
    pub assignments: crate::assignments::Assignments,
    /// Recently deleted assignment names: when, and the (scope key, principal, role) they had.
    pub deleted: HashMap<String, (Instant, String, String, String)>,
    pub operations: HashMap<String, Operation>,
    pub default_client: (String, String),
    /// Each cluster's Kubernetes objects, created on first use (key: lowercase cluster id).
    pub kube: HashMap<String, crate::kube::store::Store>,
}

pub(crate) fn random_password() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(52).map(char::from).collect()
}

fn lc(text: &str) -> String {
    text.to_ascii_lowercase()
}

pub(crate) fn cluster_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{name}"
    )
}

pub(crate) fn registry_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ContainerRegistry/registries/{name}"
    )
}

fn system_scope_maps() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        ("_repositories_pull", "Can pull any repository of the registry", vec!["repositories/*/content/read"]),
        (
            "_repositories_pull_metadata_read",
            "Can perform all read operations on the registry",
            vec!["repositories/*/content/read", "repositories/*/metadata/read"],
        ),
        (
            "_repositories_push",
            "Can push to any repository of the registry",
            vec!["repositories/*/content/read", "repositories/*/content/write"],
        ),
        (
            "_repositories_push_metadata_write",
            "Can perform all read and write operations on the registry",
            vec![
                "repositories/*/metadata/read",
                "repositories/*/metadata/write",
                "repositories/*/content/read",
                "repositories/*/content/write",
            ],
        ),
        (
            "_repositories_admin",
            "Can perform all read, write and delete operations on the registry",
            vec![
                "repositories/*/metadata/read",
                "repositories/*/metadata/write",
                "repositories/*/content/read",
                "repositories/*/content/write",
                "repositories/*/content/delete",
            ],
        ),
    ]
}

fn subscriptions_of(world: &World) -> Vec<SubscriptionRec> {
    world
        .subscriptions
        .iter()
        .map(|s| SubscriptionRec { id: lc(&s.id), name: s.name.clone(), state: s.state.clone(), tags: s.tags.clone() })
        .collect()
}

/// A subscription's id from its id or name, as the world file may give either.
fn resolve_subscription(subscriptions: &[SubscriptionRec], text: &str) -> String {
    subscriptions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(text) || s.name.eq_ignore_ascii_case(text))
        .map(|s| s.id.clone())
        .unwrap_or_else(|| lc(text))
}

fn resource_groups_of(world: &World, subscriptions: &[SubscriptionRec]) -> Vec<ResourceGroupRec> {
    world
        .resource_groups
        .iter()
        .map(|g| ResourceGroupRec {
            subscription: resolve_subscription(subscriptions, &g.subscription),
            name: g.name.clone(),
            location: g.location.clone(),
            tags: g.tags.clone(),
        })
        .collect()
}

/// A declared group's name as declared and its location.
fn group_of(groups: &[ResourceGroupRec], sub: &str, name: &str) -> (String, String) {
    groups
        .iter()
        .find(|g| g.subscription == sub && g.name.eq_ignore_ascii_case(name))
        .map(|g| (g.name.clone(), g.location.clone()))
        .unwrap_or_else(|| (name.to_string(), "eastus".to_string()))
}

/// The kubelet identity: the world's, or one derived from the cluster id; none for clusters
/// that still use a service principal.
fn kubelet_of(c: &world::Cluster, key: &str, sub: &str, rg: &str, location: &str) -> Option<IdentityRec> {
    if c.identity == ClusterIdentity::ServicePrincipal {
        return None;
    }
    Some(match &c.kubelet_identity {
        Some(k) => IdentityRec {
            client_id: lc(&k.client_id),
            object_id: lc(&k.object_id),
            resource_id: k.resource_id.clone().unwrap_or_else(|| kubelet_resource_id(sub, rg, &c.name, location)),
        },
        None => IdentityRec {
            client_id: derived_guid(&format!("kubelet-client:{key}")),
            object_id: derived_guid(&format!("kubelet-object:{key}")),
            resource_id: kubelet_resource_id(sub, rg, &c.name, location),
        },
    })
}

fn control_plane_of(c: &world::Cluster, key: &str, sub: &str, rg: &str) -> Option<IdentityRec> {
    match c.identity {
        ClusterIdentity::ServicePrincipal => None,
        ClusterIdentity::SystemAssigned => Some(IdentityRec {
            client_id: "msi".into(),
            object_id: derived_guid(&format!("control-plane:{key}")),
            resource_id: String::new(),
        }),
        ClusterIdentity::UserAssigned => Some(IdentityRec {
            client_id: derived_guid(&format!("control-plane-client:{key}")),
            object_id: derived_guid(&format!("control-plane:{key}")),
            resource_id: format!(
                "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}-identity",
                c.name
            ),
        }),
    }
}

fn cluster_rec(c: &world::Cluster, sub: String, rg: String, rg_location: String) -> ClusterRec {
    let location = c.location.clone().unwrap_or(rg_location);
    let id = cluster_id(&sub, &rg, &c.name);
    let key = lc(&id);
    let hash = &derived_guid(&format!("fqdn:{key}"))[..8];
    let dns_prefix = format!("{}-{}-{}", c.name, rg, &sub[..6]).chars().take(54).collect::<String>();
    ClusterRec {
        fqdn: format!("{}-{hash}.hcp.{}.azmk8s.io", dns_prefix.to_ascii_lowercase(), location.to_ascii_lowercase()),
        dns_prefix,
        kubelet: kubelet_of(c, &key, &sub, &rg, &location),
        control_plane: control_plane_of(c, &key, &sub, &rg),
        id,
        subscription: sub,
        resource_group: rg,
        name: c.name.clone(),
        location,
        tags: c.tags.clone(),
        kubernetes_version: c.kubernetes_version.clone(),
        identity: c.identity,
        service_principal_client_id: c.service_principal_client_id.as_deref().map(lc),
        local_accounts: c.local_accounts,
        aad: c.aad,
        azure_rbac: c.azure_rbac,
        sku_tier: c.sku_tier.clone(),
        power_state: c.power_state.clone(),
        provisioning_state: c.provisioning_state.clone(),
        node_count: c.node_count,
        workload_identity: c.workload_identity,
        private_cluster: c.private_cluster,
        kube_denials: c.kube_denials.clone(),
        etag: derived_guid(&format!("etag:{}", c.name)),
    }
}

/// A directory entry for an identity Azure creates (no secrets, no groups).
fn identity_object(object_id: &str, client_id: Option<String>, name: String, visible_at: Instant) -> DirectoryObject {
    DirectoryObject {
        object_id: object_id.to_string(),
        client_id,
        name,
        kind: "ServicePrincipal".into(),
        secrets: Vec::new(),
        federated: Vec::new(),
        groups: Vec::new(),
        visible_at,
        no_directory_read: false,
    }
}

/// The cluster's kubelet and control-plane identities join the directory.
fn cluster_identities(c: &world::Cluster, cluster: &ClusterRec, start: Instant) -> Vec<DirectoryObject> {
    let mut objects = Vec::new();
    if let Some(k) = &cluster.kubelet {
        let delay = c.kubelet_identity.as_ref().map(|k| k.visible_after_seconds).unwrap_or(0.0);
        let visible_at = start + Duration::from_secs_f64(delay);
        objects.push(identity_object(
            &k.object_id,
            Some(k.client_id.clone()),
            format!("{}-agentpool", c.name),
            visible_at,
        ));
    }
    if let Some(cp) = &cluster.control_plane {
        objects.push(identity_object(&cp.object_id, None, c.name.clone(), start));
    }
    objects
}

/// The registry's system scope maps and the world's own.
fn scope_maps_of(r: &world::Registry, created: &str) -> BTreeMap<String, ScopeMapRec> {
    let system = system_scope_maps().into_iter().map(|(name, description, actions)| ScopeMapRec {
        name: name.into(),
        description: Some(description.into()),
        actions: actions.into_iter().map(String::from).collect(),
        system: true,
        creation_date: created.to_string(),
        provisioning_state: "Succeeded".into(),
    });
    let declared = r.scope_maps.iter().map(|m| ScopeMapRec {
        name: m.name.clone(),
        description: m.description.clone(),
        actions: m.actions.clone(),
        system: false,
        creation_date: created.to_string(),
        provisioning_state: "Succeeded".into(),
    });
    system.chain(declared).map(|m| (lc(&m.name), m)).collect()
}

fn tokens_of(
    r: &world::Registry,
    id: &str,
    scope_maps: &BTreeMap<String, ScopeMapRec>,
    created: &str,
) -> BTreeMap<String, TokenRec> {
    r.tokens
        .iter()
        .map(|t| {
            let map_name =
                scope_maps.get(&lc(&t.scope_map)).map(|m| m.name.clone()).unwrap_or_else(|| t.scope_map.clone());
            let token = TokenRec {
                name: t.name.clone(),
                scope_map_id: format!("{id}/scopeMaps/{map_name}"),
                status: t.status.clone(),
                creation_date: created.to_string(),
                provisioning_state: "Succeeded".into(),
                passwords: Vec::new(),
            };
            (lc(&t.name), token)
        })
        .collect()
}

fn registry_rec(
    r: &world::Registry,
    sub: String,
    rg: String,
    rg_location: String,
    created: &str,
    suffix: &str,
) -> RegistryRec {
    let id = registry_id(&sub, &rg, &r.name);
    let scope_maps = scope_maps_of(r, created);
    let tokens = tokens_of(r, &id, &scope_maps, created);
    let passwords = match r.admin_passwords.as_slice() {
        [a, b] => [a.clone(), b.clone()],
        _ => [random_password(), random_password()],
    };
    RegistryRec {
        id,
        subscription: sub,
        resource_group: rg,
        name: r.name.clone(),
        location: r.location.clone().unwrap_or(rg_location),
        tags: r.tags.clone(),
        sku: r.sku.clone(),
        login_server: r.login_server.clone().unwrap_or_else(|| format!("{}.{suffix}", lc(&r.name))),
        admin_user_enabled: r.admin_user_enabled,
        role_assignment_mode: r.role_assignment_mode,
        aad_as_arm: r.azure_ad_authentication_as_arm,
        anonymous_pull: r.anonymous_pull,
        public_network: r.public_network_access,
        deny_by_default: r.network_deny_by_default,
        private_endpoints: r.private_endpoints.iter().map(|e| (e.name.clone(), e.status.clone())).collect(),
        passwords,
        repositories: r.repositories.clone(),
        scope_maps,
        tokens,
        creation_date: created.to_string(),
    }
}

/// Built-in roles plus the world's custom ones.
fn roles_of(world: &World) -> Vec<RoleDef> {
    let mut roles = roles::built_ins();
    roles.extend(world.role_definitions.iter().map(|custom| RoleDef {
        guid: lc(&custom.id),
        name: custom.name.clone(),
        description: custom.description.clone().unwrap_or_default(),
        built_in: false,
        actions: custom.actions.clone(),
        not_actions: custom.not_actions.clone(),
        data_actions: custom.data_actions.clone(),
        not_data_actions: custom.not_data_actions.clone(),
        assignable_scopes: custom.assignable_scopes.clone(),
    }));
    roles
}

/// A world principal's directory entry, its groups resolved by name or id.
fn principal_object(world: &World, p: &world::Principal, start: Instant) -> DirectoryObject {
    let groups = p
        .member_of
        .iter()
        .filter_map(|g| {
            world.principals.iter().find(|q| q.name.eq_ignore_ascii_case(g) || q.object_id.eq_ignore_ascii_case(g))
        })
        .map(|q| lc(&q.object_id))
        .collect();
    DirectoryObject {
        object_id: lc(&p.object_id),
        client_id: p.client_id.as_deref().map(lc),
        name: p.name.clone(),
        kind: p.kind.clone(),
        secrets: p.secrets.iter().map(|s| (s.value().to_string(), s.expires_at().and_then(parse_time))).collect(),
        federated: p.federated_credentials.clone(),
        groups,
        visible_at: start + Duration::from_secs_f64(p.visible_after_seconds.max(0.0)),
        no_directory_read: p.no_directory_read,
    }
}

/// The client handed out in the ready line: the `default_client`, else the first principal
/// with a client id and a secret.
fn default_client_of(world: &World) -> (String, String) {
    let default = world
        .principals
        .iter()
        .find(|p| p.default_client)
        .or_else(|| world.principals.iter().find(|p| !p.secrets.is_empty() && p.client_id.is_some()));
    default
        .map(|p| {
            (
                p.client_id.clone().unwrap_or_default(),
                p.secrets.first().map(|s| s.value().to_string()).unwrap_or_default(),
            )
        })
        .unwrap_or_default()
}

impl State {
    /// Builds the live state; the world must have passed validation.
    pub fn build(world: &World, start: Instant) -> State {
        let created = now_azure();
        let subscriptions = subscriptions_of(world);
        let resource_groups = resource_groups_of(world, &subscriptions);
        let mut directory = HashMap::new();
        let mut clusters = BTreeMap::new();
        for c in &world.clusters {
            let sub = resolve_subscription(&subscriptions, &c.subscription);
            let (rg, rg_location) = group_of(&resource_groups, &sub, &c.resource_group);
            let cluster = cluster_rec(c, sub, rg, rg_location);
            for object in cluster_identities(c, &cluster, start) {
                directory.insert(object.object_id.clone(), object);
            }
            clusters.insert(lc(&cluster.id), cluster);
        }
        let mut registries = BTreeMap::new();
        for r in &world.registries {
            let sub = resolve_subscription(&subscriptions, &r.subscription);
            let (rg, rg_location) = group_of(&resource_groups, &sub, &r.resource_group);
            let registry = registry_rec(r, sub, rg, rg_location, &created, world.tenant.cloud.profile().acr_suffix);
            registries.insert(lc(&registry.id), registry);
        }
        let mut clients = HashMap::new();
        for p in &world.principals {
            if let Some(client) = &p.client_id {
                clients.insert(lc(client), lc(&p.object_id));
            }
            directory.insert(lc(&p.object_id), principal_object(world, p, start));
        }
        let mut state = State {
            tenant_id: lc(&world.tenant.id),
            tenant_domain: world.tenant.domain.clone(),
            settings: world.settings.clone(),
            subscriptions,
            resource_groups,
            clusters,
            registries,
            directory,
            clients,
            roles: roles_of(world),
            assignments: crate::assignments::Assignments::default(),
            deleted: HashMap::new(),
            operations: HashMap::new(),
            default_client: default_client_of(world),
            kube: HashMap::new(),
        };
        state.assign_world_roles(world);
        state
    }

    /// The world's role assignments (principals' `roles` and `[[role_assignments]]`), as
    /// long propagated: they count on the data plane at once.
    fn assign_world_roles(&mut self, world: &World) {
        for p in &world.principals {
            for grant in &p.roles {
                if let Some(role) = self.role(&grant.role).map(|r| r.guid.clone()) {
                    self.insert_assignment(
                        None,
                        &grant.scope,
                        &role,
                        &p.object_id,
                        Some(&p.kind),
                        None,
                        None,
                        None,
                        None,
                    );
                }
            }
        }
        for a in &world.role_assignments {
            let principal = world
                .principals
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(&a.principal))
                .map(|p| p.object_id.clone())
                .unwrap_or_else(|| a.principal.clone());
            if let Some(role) = self.role(&a.role).map(|r| r.guid.clone()) {
                self.insert_assignment(
                    a.name.as_deref(),
                    &a.scope,
                    &role,
                    &principal,
                    a.principal_type.as_deref(),
                    a.description.clone(),
                    a.condition.clone(),
                    a.condition_version.clone(),
                    a.created_by.clone(),
                );
            }
        }
        self.assignments.mark_propagated();
    }

    /// A role definition by GUID, full id, or name (case-insensitive).
    pub fn role(&self, text: &str) -> Option<&RoleDef> {
        let guid = crate::ids::trailing_guid(text);
        self.roles.iter().find(|r| match &guid {
            Some(g) => r.guid.eq_ignore_ascii_case(g),
            None => r.name.eq_ignore_ascii_case(text),
        })
    }

    /// Adds an assignment without any of ARM's checks (world loading, admin changes).
    #[allow(clippy::too_many_arguments)]
    pub fn insert_assignment(
        &mut self,
        name: Option<&str>,
        scope: &str,
        role_guid: &str,
        principal_id: &str,
        principal_type: Option<&str>,
        description: Option<String>,
        condition: Option<String>,
        condition_version: Option<String>,
        created_by: Option<String>,
    ) -> AssignmentRec {
        let scope = normalize_scope(scope);
        let principal_id = lc(principal_id);
        let name = name.map(lc).unwrap_or_else(|| bicep_guid(&[&scope_key(&scope), &principal_id, &lc(role_guid)]));
        let principal_type = principal_type
            .map(str::to_string)
            .or_else(|| self.directory.get(&principal_id).map(|d| d.kind.clone()))
            .unwrap_or_else(|| "ServicePrincipal".into());
        let now = now_azure();
        let record = AssignmentRec {
            name: name.clone(),
            scope,
            role_guid: lc(role_guid),
            principal_id,
            principal_type,
            description,
            condition_version: condition_version.or_else(|| condition.as_ref().map(|_| "2.0".to_string())),
            condition,
            created_on: now.clone(),
            updated_on: now,
            created_by: created_by.clone(),
            updated_by: created_by,
            delegated_managed_identity_resource_id: None,
            created_at: Some(Instant::now()),
        };
        self.assignments.insert(name, record.clone());
        record
    }

    pub fn role_definition_id(&self, scope: &str, role_guid: &str) -> String {
        match subscription_of(scope) {
            Some(sub) => format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"),
            None => format!("/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"),
        }
    }

    pub fn assignment_json(&self, a: &AssignmentRec) -> Value {
        let id = if a.scope == "/" {
            format!("/providers/Microsoft.Authorization/roleAssignments/{}", a.name)
        } else {
            format!("{}/providers/Microsoft.Authorization/roleAssignments/{}", a.scope, a.name)
        };
        json!({
            "properties": {
                "roleDefinitionId": self.role_definition_id(&a.scope, &a.role_guid),
                "principalId": a.principal_id,
                "principalType": a.principal_type,
                "scope": a.scope,
                "condition": a.condition,
                "conditionVersion": a.condition_version,
                "createdOn": a.created_on,
                "updatedOn": a.updated_on,
                "createdBy": a.created_by,
                "updatedBy": a.updated_by,
                "delegatedManagedIdentityResourceId": a.delegated_managed_identity_resource_id,
                "description": a.description,
            },
            "id": id,
            "type": "Microsoft.Authorization/roleAssignments",
            "name": a.name,
        })
    }

    pub fn role_definition_json(&self, role: &RoleDef, scope: &str) -> Value {
        json!({
            "properties": {
                "roleName": role.name,
                "type": if role.built_in { "BuiltInRole" } else { "CustomRole" },
                "description": role.description,
                "assignableScopes": role.assignable_scopes,
                "permissions": [{
                    "actions": role.actions,
                    "notActions": role.not_actions,
                    "dataActions": role.data_actions,
                    "notDataActions": role.not_data_actions,
                }],
                "createdOn": "2018-02-28T19:22:45.7680000Z",
                "updatedOn": "2024-08-22T15:40:11.8123000Z",
                "createdBy": Value::Null,
                "updatedBy": Value::Null,
            },
            "id": self.role_definition_id(scope, &role.guid),
            "type": "Microsoft.Authorization/roleDefinitions",
            "name": role.guid,
        })
    }

    /// The principal as the directory shows it now (None while it is still invisible).
    pub fn visible(&self, object_id: &str, now: Instant) -> Option<&DirectoryObject> {
        self.directory.get(&lc(object_id)).filter(|d| d.visible_at <= now)
    }

    /// The object ids whose assignments count for a principal: itself and its groups.
    pub fn identities_of(&self, object_id: &str) -> Vec<String> {
        let mut ids = vec![lc(object_id)];
        if let Some(d) = self.directory.get(&lc(object_id)) {
            ids.extend(d.groups.iter().cloned());
        }
        ids
    }

    /// The caller's grants: (scope key, role) for every assignment of it or its groups.
    pub fn grants_of(&self, object_id: &str) -> Vec<(String, RoleDef)> {
        let ids = self.identities_of(object_id);
        self.assignments
            .of_principals(&ids)
            .filter_map(|a| self.roles.iter().find(|r| r.guid == a.role_guid).map(|r| (scope_key(&a.scope), r.clone())))
            .collect()
    }

    pub fn subscription(&self, id: &str) -> Option<&SubscriptionRec> {
        self.subscriptions.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    pub fn resource_group(&self, sub: &str, name: &str) -> Option<&ResourceGroupRec> {
        self.resource_groups
            .iter()
            .find(|g| g.subscription.eq_ignore_ascii_case(sub) && g.name.eq_ignore_ascii_case(name))
    }

    pub fn registry_by_name(&self, name: &str) -> Option<&RegistryRec> {
        self.registries.values().find(|r| r.name.eq_ignore_ascii_case(name))
    }

    pub fn registry_by_name_mut(&mut self, name: &str) -> Option<&mut RegistryRec> {
        self.registries.values_mut().find(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// Assignments in a subscription (for the 4000 limit).
    pub fn assignments_in_subscription(&self, sub: &str) -> usize {
        self.assignments.count_in_subscription(sub)
    }
}

fn kubelet_resource_id(sub: &str, rg: &str, cluster: &str, location: &str) -> String {
    // AKS hands this id back with a lowercase `resourcegroups`, and clients must cope.
    format!(
        "/subscriptions/{sub}/resourcegroups/MC_{rg}_{cluster}_{location}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{cluster}-agentpool"
    )
}

/// Whether a scope is visible through any grant: at, above or below it.
pub(crate) fn touches(grants: &[(String, RoleDef)], scope: &str) -> bool {
    let key = scope_key(scope);
    grants.iter().any(|(g, _)| is_at_or_above(g, &key) || is_at_or_above(&key, g))
}

/// Whether grants allow `action` at `scope` (a grant at or above the scope).
pub(crate) fn allowed(grants: &[(String, RoleDef)], scope: &str, action: &str) -> bool {
    let key = scope_key(scope);
    grants.iter().any(|(g, role)| is_at_or_above(g, &key) && role.allows(action))
}

/// Which items of a list at one scope grants let a caller read, decided per item by its
/// lowercase id without allocating: every item when a grant at or above the list's scope
/// allows the action, else those under a grant below the scope that allows it. The same
/// answers as [`allowed`] for ids under the scope.
pub(crate) struct Readable {
    everything: bool,
    below: Vec<String>,
}

impl Readable {
    pub fn new(grants: &[(String, RoleDef)], scope: &str, action: &str) -> Readable {
        let key = scope_key(scope);
        let granting = || grants.iter().filter(|(_, role)| role.allows(action));
        Readable {
            everything: granting().any(|(g, _)| is_at_or_above(g, &key)),
            below: granting().filter(|(g, _)| is_at_or_above(&key, g)).map(|(g, _)| g.clone()).collect(),
        }
    }

    /// `key`: the item's lowercase id.
    pub fn allows(&self, key: &str) -> bool {
        self.everything
            || self
                .below
                .iter()
                .any(|g| key.strip_prefix(g.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
    }
}

#[cfg(test)]
mod readable_tests {
    use super::*;

    /// Readable answers what `allowed` answers for every id under the list's scope.
    #[test]
    fn readable_agrees_with_allowed() {
        let role = |actions: &[&str]| RoleDef {
            guid: "g".into(),
            name: "r".into(),
            description: String::new(),
            built_in: false,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            not_actions: Vec::new(),
            data_actions: Vec::new(),
            not_data_actions: Vec::new(),
            assignable_scopes: Vec::new(),
        };
        let read = "Microsoft.ContainerService/managedClusters/read";
        let ids = [
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/a",
            "/subscriptions/s/resourcegroups/rg-2/providers/microsoft.containerservice/managedclusters/b",
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/ab",
        ];
        let grant = |scope: &str, actions: &[&str]| (scope_key(scope), role(actions));
        let cases = vec![
            vec![grant("/subscriptions/S", &["*"])],
            vec![grant("/", &["*/read"])],
            vec![grant("/subscriptions/s/resourceGroups/RG", &["*"])],
            vec![grant(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/a",
                &["*"],
            )],
            vec![grant("/subscriptions/s", &["Microsoft.Storage/*"]), grant("/subscriptions/other", &["*"])],
            vec![],
        ];
        for grants in &cases {
            for scope in ["/subscriptions/s", "/subscriptions/s/resourcegroups/rg"] {
                let readable = Readable::new(grants, scope, read);
                for id in ids.iter().filter(|id| id.starts_with(&format!("{scope}/"))) {
                    assert_eq!(readable.allows(id), allowed(grants, id, read), "{scope} {id}");
                }
            }
        }
    }
}

/// Public, owned views of live state for the library API.
pub mod views {
    use serde::{Deserialize, Serialize};

    /// A role assignment as it is stored now.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct RoleAssignmentView {
        pub id: String,
        pub name: String,
        pub scope: String,
        pub role_definition_id: String,
        pub principal_id: String,
        pub principal_type: String,
        pub description: Option<String>,
        pub condition: Option<String>,
    }

    /// What to create behind the client's back (no ARM checks apply).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NewRoleAssignment {
        /// A GUID; derived like Bicep's `guid(scope, principal, role)` when left out.
        #[serde(default)]
        pub name: Option<String>,
        pub scope: String,
        /// Role name or GUID.
        pub role: String,
        pub principal_id: String,
        #[serde(default)]
        pub principal_type: Option<String>,
        #[serde(default)]
        pub description: Option<String>,
    }

    /// A principal created at runtime (it obeys `faults.principal_invisible_seconds`).
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NewPrincipal {
        pub name: String,
        /// `ServicePrincipal` when left out.
        #[serde(default)]
        pub kind: Option<String>,
        /// Random when left out.
        #[serde(default)]
        pub object_id: Option<String>,
        #[serde(default)]
        pub client_id: Option<String>,
        #[serde(default)]
        pub secret: Option<String>,
        /// Overrides `faults.principal_invisible_seconds` for this principal.
        #[serde(default)]
        pub invisible_seconds: Option<f64>,
    }

    /// A principal as the directory knows it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct PrincipalView {
        pub name: String,
        pub kind: String,
        pub object_id: String,
        pub client_id: Option<String>,
        /// Whether the directory shows it yet.
        pub visible: bool,
    }

    /// A registry's live settings and admin credentials.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct RegistryView {
        pub id: String,
        pub name: String,
        pub login_server: String,
        pub admin_user_enabled: bool,
        pub role_assignment_mode: String,
        pub passwords: [String; 2],
        pub repositories: std::collections::BTreeMap<String, Vec<String>>,
    }

    /// A changeable subset of a registry's settings.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RegistryPatch {
        #[serde(default)]
        pub admin_user_enabled: Option<bool>,
        /// `LegacyRegistryPermissions` or `AbacRepositoryPermissions`.
        #[serde(default)]
        pub role_assignment_mode: Option<String>,
    }

    /// A cluster's identity facts.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct ClusterView {
        pub id: String,
        pub name: String,
        pub subscription: String,
        pub resource_group: String,
        pub kubelet_object_id: Option<String>,
        pub kubelet_client_id: Option<String>,
        pub local_accounts: bool,
        pub aad: bool,
    }
}

pub(crate) fn world_mode(text: &str) -> Option<RoleAssignmentMode> {
    match text {
        t if t.eq_ignore_ascii_case("LegacyRegistryPermissions") => {
            Some(world::RoleAssignmentMode::LegacyRegistryPermissions)
        }
        t if t.eq_ignore_ascii_case("AbacRepositoryPermissions") => {
            Some(world::RoleAssignmentMode::AbacRepositoryPermissions)
        }
        _ => None,
    }
}
