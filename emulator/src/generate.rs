//! `--generate clusters=N,registries=M,subscriptions=S`: a large, consistent, deterministic
//! world for fleet tests. Every cluster has a kubelet identity, every registry repositories.

use std::collections::BTreeMap;

use crate::error::EmulatorError;
use crate::ids::derived_guid;
use crate::world::{
    ClientSecret, Cluster, ClusterIdentity, Faults, FederatedCredential, Grant, KubeletIdentity, Principal, Registry,
    RegistryToken, ResourceGroup, RoleAssignment, RoleAssignmentMode, ScopeMap, Settings, Subscription, Tenant, World,
};

/// The parsed spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub clusters: usize,
    pub registries: usize,
    pub subscriptions: usize,
    /// Varies every generated id; the same spec and seed always give the same world.
    pub seed: u64,
}

fn spec_error(spec: &str, message: impl Into<String>) -> EmulatorError {
    EmulatorError::GenerateSpec { spec: spec.to_string(), message: message.into() }
}

pub fn parse_spec(spec: &str) -> Result<Spec, EmulatorError> {
    let mut parsed = Spec { clusters: 10, registries: 2, subscriptions: 1, seed: 0 };
    let mut seen = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) =
            part.split_once('=').ok_or_else(|| spec_error(spec, format!("{part:?} is not key=value")))?;
        let key = key.trim();
        if seen.contains(&key.to_string()) {
            return Err(spec_error(spec, format!("{key} is given twice")));
        }
        seen.push(key.to_string());
        let number: u64 =
            value.trim().parse().map_err(|_| spec_error(spec, format!("{key}={value}: not a whole number")))?;
        match key {
            "clusters" if number <= 100_000 => parsed.clusters = number as usize,
            "registries" if number <= 10_000 => parsed.registries = number as usize,
            "subscriptions" if (1..=1_000).contains(&number) => parsed.subscriptions = number as usize,
            "seed" => parsed.seed = number,
            "clusters" | "registries" | "subscriptions" => {
                return Err(spec_error(
                    spec,
                    format!(
                        "{key}={number} is out of range (clusters ≤ 100000, registries ≤ 10000, 1 ≤ subscriptions ≤ 1000)"
                    ),
                ));
            }
            other => {
                return Err(spec_error(
                    spec,
                    format!("unknown key {other:?} (clusters, registries, subscriptions, seed)"),
                ));
            }
        }
    }
    Ok(parsed)
}

const LOCATIONS: &[&str] = &["westeurope", "northeurope", "eastus", "westus2"];
const VERSIONS: &[&str] = &["1.31.9", "1.32.5", "1.33.2"];
const ENVIRONMENTS: &[&str] = &["dev", "staging", "prod"];
const TEAMS: &[&str] = &["team-a", "team-b", "team-c", "team-d", "team-e"];

fn resource_groups(subscriptions: &[Subscription]) -> Vec<ResourceGroup> {
    let mut resource_groups = Vec::new();
    for (i, sub) in subscriptions.iter().enumerate() {
        let location = LOCATIONS[i % LOCATIONS.len()].to_string();
        for name in ["rg-clusters", "rg-registries"] {
            resource_groups.push(ResourceGroup {
                subscription: sub.name.clone(),
                name: name.into(),
                location: location.clone(),
                tags: BTreeMap::new(),
            });
        }
    }
    resource_groups
}

/// The i-th cluster: identities, Entra integration and tiers vary with i.
fn cluster(spec: &Spec, subscriptions: &[Subscription], i: usize) -> Cluster {
    let guid = |label: &str| derived_guid(&format!("generate:{}:{label}", spec.seed));
    let sub = &subscriptions[i % subscriptions.len()];
    let mut tags = BTreeMap::new();
    tags.insert("env".to_string(), ENVIRONMENTS[i % ENVIRONMENTS.len()].to_string());
    tags.insert("team".to_string(), TEAMS[i % TEAMS.len()].to_string());
    Cluster {
        subscription: sub.name.clone(),
        resource_group: "rg-clusters".into(),
        name: format!("aks-{:04}", i + 1),
        location: Some(LOCATIONS[(i / subscriptions.len()) % LOCATIONS.len()].to_string()),
        tags,
        kubernetes_version: VERSIONS[i % VERSIONS.len()].into(),
        identity: if i % 20 == 19 { ClusterIdentity::UserAssigned } else { ClusterIdentity::SystemAssigned },
        kubelet_identity: Some(KubeletIdentity {
            client_id: guid(&format!("kubelet-client:{i}")),
            object_id: guid(&format!("kubelet-object:{i}")),
            resource_id: None,
            visible_after_seconds: 0.0,
        }),
        service_principal_client_id: None,
        local_accounts: i % 10 != 9,
        // AKS refuses to disable local accounts on a cluster without Entra integration.
        aad: i % 4 == 3 || i % 10 == 9,
        azure_rbac: i % 8 == 7,
        sku_tier: if i % 3 == 2 { "Standard".into() } else { "Free".into() },
        power_state: "Running".into(),
        provisioning_state: "Succeeded".into(),
        node_count: 3,
        workload_identity: i.is_multiple_of(2),
        private_cluster: false,
        kube_denials: Vec::new(),
    }
}

/// The j-th registry: SKU, admin user and role-assignment mode vary with j.
fn registry(subscriptions: &[Subscription], j: usize) -> Registry {
    let sub = &subscriptions[j % subscriptions.len()];
    let mut repositories = BTreeMap::new();
    repositories.insert("base/nginx".to_string(), vec!["1.27".to_string(), "latest".to_string()]);
    repositories
        .insert(format!("{}/app", TEAMS[j % TEAMS.len()]), vec!["1.0.0".into(), "1.1.0".into(), "latest".into()]);
    repositories.insert(format!("{}/api", TEAMS[(j + 1) % TEAMS.len()]), vec!["2.3.1".into()]);
    let mut tags = BTreeMap::new();
    tags.insert("owner".to_string(), TEAMS[j % TEAMS.len()].to_string());
    Registry {
        subscription: sub.name.clone(),
        resource_group: "rg-registries".into(),
        name: format!("acrfleet{:04}", j + 1),
        location: None,
        tags,
        sku: if j.is_multiple_of(2) { "Premium".into() } else { "Standard".into() },
        login_server: None,
        admin_user_enabled: j.is_multiple_of(3),
        role_assignment_mode: if j % 5 == 4 {
            RoleAssignmentMode::AbacRepositoryPermissions
        } else {
            RoleAssignmentMode::LegacyRegistryPermissions
        },
        azure_ad_authentication_as_arm: true,
        anonymous_pull: false,
        public_network_access: true,
        network_deny_by_default: false,
        private_endpoints: Vec::new(),
        admin_passwords: Vec::new(),
        repositories,
        scope_maps: vec![ScopeMap {
            name: "pull-base".into(),
            actions: vec![
                "repositories/base/nginx/content/read".into(),
                "repositories/base/nginx/metadata/read".into(),
            ],
            description: Some("Pull the shared base images".into()),
        }],
        tokens: vec![RegistryToken {
            name: "ci-pull".into(),
            scope_map: "_repositories_pull".into(),
            status: "enabled".into(),
        }],
    }
}

/// acrlink (Owner everywhere, the default client) and a fleet-wide reader.
fn principals(spec: &Spec, subscriptions: &[Subscription]) -> Vec<Principal> {
    let guid = |label: &str| derived_guid(&format!("generate:{}:{label}", spec.seed));
    let all_subscriptions = |role: &str| -> Vec<Grant> {
        subscriptions.iter().map(|s| Grant { role: role.into(), scope: format!("/subscriptions/{}", s.id) }).collect()
    };
    vec![
        Principal {
            name: "acrlink".into(),
            kind: "ServicePrincipal".into(),
            object_id: guid("principal:acrlink:object"),
            client_id: Some(guid("principal:acrlink:client")),
            secrets: vec![ClientSecret::Value(format!("acrlink-secret-{}", spec.seed))],
            federated_credentials: vec![FederatedCredential {
                issuer: "https://token.actions.githubusercontent.com".into(),
                subject: "repo:example/platform:ref:refs/heads/main".into(),
                audience: "api://AzureADTokenExchange".into(),
            }],
            member_of: Vec::new(),
            roles: all_subscriptions("Owner"),
            visible_after_seconds: 0.0,
            default_client: true,
            no_directory_read: false,
        },
        Principal {
            name: "fleet-reader".into(),
            kind: "ServicePrincipal".into(),
            object_id: guid("principal:reader:object"),
            client_id: Some(guid("principal:reader:client")),
            secrets: vec![ClientSecret::Value(format!("reader-secret-{}", spec.seed))],
            federated_credentials: Vec::new(),
            member_of: Vec::new(),
            roles: all_subscriptions("Reader"),
            visible_after_seconds: 0.0,
            default_client: false,
            no_directory_read: false,
        },
    ]
}

/// A hand-made grant on every tenth cluster, as `az aks update --attach-acr` leaves them.
fn attached_grants(
    subscriptions: &[Subscription],
    clusters: &[Cluster],
    registries: &[Registry],
) -> Vec<RoleAssignment> {
    if registries.is_empty() {
        return Vec::new();
    }
    clusters
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 0)
        .filter_map(|(i, cluster)| {
            let registry = &registries[i % registries.len()];
            if registry.role_assignment_mode == RoleAssignmentMode::AbacRepositoryPermissions {
                return None;
            }
            let sub = subscriptions.iter().find(|s| s.name == registry.subscription)?;
            Some(RoleAssignment {
                name: None,
                scope: format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{}",
                    sub.id, registry.resource_group, registry.name
                ),
                role: "AcrPull".into(),
                principal: cluster.kubelet_identity.as_ref().map(|k| k.object_id.clone()).unwrap_or_default(),
                principal_type: Some("ServicePrincipal".into()),
                description: None,
                condition: None,
                condition_version: None,
                created_by: None,
            })
        })
        .collect()
}

/// Builds the world for a spec.
pub fn generate(spec: &Spec) -> World {
    let guid = |label: &str| derived_guid(&format!("generate:{}:{label}", spec.seed));
    let subscriptions: Vec<Subscription> = (0..spec.subscriptions)
        .map(|i| Subscription {
            id: guid(&format!("subscription:{i}")),
            name: format!("fleet-sub-{:02}", i + 1),
            state: "Enabled".into(),
            tags: BTreeMap::new(),
        })
        .collect();
    let resource_groups = resource_groups(&subscriptions);
    let clusters: Vec<Cluster> = (0..spec.clusters).map(|i| cluster(spec, &subscriptions, i)).collect();
    let registries: Vec<Registry> = (0..spec.registries).map(|j| registry(&subscriptions, j)).collect();
    let principals = principals(spec, &subscriptions);
    let role_assignments = attached_grants(&subscriptions, &clusters, &registries);
    World {
        tenant: Tenant { id: guid("tenant"), domain: Some("fleet.onmicrosoft.com".into()), cloud: Default::default() },
        settings: Settings::default(),
        subscriptions,
        resource_groups,
        clusters,
        registries,
        principals,
        role_definitions: Vec::new(),
        role_assignments,
        faults: Faults::default(),
        sign_in: crate::world::SignIn::default(),
    }
}

/// The generated world as TOML text, with a header saying how it was made.
pub fn generate_world(spec_text: &str) -> Result<String, EmulatorError> {
    let spec = parse_spec(spec_text)?;
    let world = generate(&spec);
    let body = world.to_toml_string()?;
    Ok(format!(
        "# Generated by `acrlink emulator --generate {spec_text}`: {} subscription(s), {} cluster(s), {} registr{}.\n# Schema: schemas/world.schema.json\n\n{body}",
        spec.subscriptions,
        spec.clusters,
        spec.registries,
        if spec.registries == 1 { "y" } else { "ies" }
    ))
}
