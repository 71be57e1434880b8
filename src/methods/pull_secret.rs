//! What pull-secret bindings want, expanded against the observed fleet: one Secret per
//! (cluster, namespace, secret name) holding every registry bound to it, the ServiceAccounts
//! that must name it, and the ACR tokens and scope maps registry-token bindings need. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::acr_names as naming;
use super::managed_identity::select_clusters;
use crate::config::model::{Binding, Config, CredentialSource, Method, Namespaces, PullSecret, SecretReference};
use crate::kinds::Desired;
use crate::kinds::dockerconfig::Credential;
use crate::kinds::pull_secret::{DesiredEntry, DesiredSecret, Source, read_client_secret};
use crate::kinds::registry_token::DesiredToken;
use crate::kinds::role_assignment::DesiredAssignment;
use crate::kinds::roles::{pull_grant, pull_role, role_name};
use crate::kinds::scope_map::DesiredScopeMap;
use crate::model::{Address, Finding, Grantee};
use crate::observe::objects::{ClusterQuery, ClusterState, RegistryQuery};
use crate::observe::{FleetCluster, Inventory};
use crate::ownership;
use crate::provider::LiveRegistry;
use crate::provider::kubernetes::ClusterTarget;

fn pull_secret(binding: &Binding) -> Option<&PullSecret> {
    match &binding.method {
        Method::PullSecret(p) => Some(p),
        Method::ManagedIdentity => None,
    }
}

pub fn target(config: &Config, cluster: &FleetCluster) -> ClusterTarget {
    ClusterTarget {
        key: cluster.key.clone(),
        id: cluster.live.id.clone(),
        kube_context: config.clusters.get(&cluster.key).and_then(|c| c.kube_context.clone()),
    }
}

/// Which clusters and registries to read, and what of each. Called only when the file has
/// pull-secret bindings.
pub fn queries(
    config: &Config,
    inventory: &Inventory,
) -> (BTreeMap<ClusterTarget, ClusterQuery>, BTreeMap<String, RegistryQuery>) {
    // Every cluster of the fleet is read for acrlink's own Secrets, so a cluster dropped from
    // the pull-secret bindings (but still in the file) is cleaned up too.
    let mut clusters: BTreeMap<ClusterTarget, ClusterQuery> =
        inventory.clusters.iter().map(|c| (target(config, c), ClusterQuery::default())).collect();
    let mut registries: BTreeMap<String, RegistryQuery> = BTreeMap::new();
    for binding in &config.bindings {
        let Some(pull) = pull_secret(binding) else { continue };
        for cluster in select_clusters(binding, inventory) {
            let query = clusters.entry(target(config, cluster)).or_default();
            query.secret_names.insert(pull.secret_name.clone());
            query.service_account_names.extend(pull.service_accounts.iter().cloned());
        }
        for registry in &binding.registries {
            let query = registries.entry(registry.clone()).or_default();
            match pull.credential {
                CredentialSource::Admin => query.admin = true,
                CredentialSource::RegistryToken => query.tokens = true,
                CredentialSource::ServicePrincipal { .. } => {}
            }
        }
    }
    // Every other registry of the file is searched for acrlink's tokens too, so a binding that
    // stops using a registry's tokens (another credential, another registry) leaves none behind.
    for key in inventory.registries.keys() {
        registries.entry(key.clone()).or_insert(RegistryQuery { tokens: true, leftovers_only: true, admin: false });
    }
    for query in registries.values_mut().filter(|q| !q.tokens) {
        query.tokens = true;
        query.leftovers_only = true;
    }
    (clusters, registries)
}

/// The namespaces of a cluster a binding reaches, and warnings for listed ones that are missing.
fn namespaces(
    pull: &PullSecret,
    cluster: &ClusterTarget,
    state: &ClusterState,
    binding: &str,
    warnings: &mut Vec<Finding>,
) -> (Vec<String>, Vec<String>) {
    let live: BTreeMap<&str, &crate::provider::kubernetes::LiveNamespace> =
        state.namespaces.iter().map(|n| (n.name.as_str(), n)).collect();
    match &pull.namespaces {
        Namespaces::Listed(names) => {
            let mut present = Vec::new();
            let mut to_create = Vec::new();
            for name in names {
                match live.get(name.as_str()) {
                    Some(ns) if !ns.terminating => present.push(name.clone()),
                    Some(_) => warnings.push(Finding {
                        subject: naming::namespace_address(&cluster.key, name).to_string(),
                        message: format!(
                            "namespace {name} of cluster {} is terminating; binding {binding:?} skips it",
                            cluster.key
                        ),
                        hint: None,
                    }),
                    None if pull.create_namespaces => to_create.push(name.clone()),
                    None => warnings.push(Finding {
                        subject: naming::namespace_address(&cluster.key, name).to_string(),
                        message: format!(
                            "namespace {name} does not exist in cluster {}; binding {binding:?} skips it",
                            cluster.key
                        ),
                        hint: Some("create it, or set create_namespaces = true on the binding".into()),
                    }),
                }
            }
            (present, to_create)
        }
        Namespaces::All { exclude } => (
            live.values().filter(|n| !n.terminating).map(|n| n.name.clone()).filter(|n| !exclude.contains(n)).collect(),
            Vec::new(),
        ),
        Namespaces::Selector(selector) => (
            live.values().filter(|n| !n.terminating && selector.matches(&n.labels)).map(|n| n.name.clone()).collect(),
            Vec::new(),
        ),
    }
}

/// What the bindings want, built binding by binding and cluster by cluster.
struct Builder<'a> {
    config: &'a Config,
    desired: Desired,
    warnings: Vec<Finding>,
    /// A set: the same problem (a disabled admin user) comes up once per cluster.
    problems: BTreeSet<Finding>,
}

pub fn desired(
    config: &Config,
    inventory: &Inventory,
    states: &BTreeMap<ClusterTarget, ClusterState>,
) -> (Desired, Vec<Finding>, Vec<Finding>) {
    let mut builder = Builder { config, desired: Desired::default(), warnings: Vec::new(), problems: BTreeSet::new() };
    for binding in &config.bindings {
        let Some(pull) = pull_secret(binding) else { continue };
        for cluster in select_clusters(binding, inventory) {
            let target = target(config, cluster);
            // A cluster that could not be read was reported already; nothing is planned there,
            // and its token is not mistaken for a leftover.
            match states.get(&target) {
                Some(state) => builder.cluster_binding(binding, pull, cluster, &target, state, inventory),
                None => builder.reserve_tokens(binding, pull, cluster),
            }
        }
    }
    (builder.desired, builder.warnings, builder.problems.into_iter().collect())
}

impl Builder<'_> {
    /// The token and scope-map names of an unreachable cluster's binding, kept from pruning.
    fn reserve_tokens(&mut self, binding: &Binding, pull: &PullSecret, cluster: &FleetCluster) {
        if !matches!(pull.credential, CredentialSource::RegistryToken) {
            return;
        }
        let owner = &self.config.owner;
        for registry in &binding.registries {
            let token = naming::token_name(owner, &cluster.key, &cluster.live.id, &binding.name, registry);
            self.desired.reserved.insert((registry.clone(), token));
            let map = naming::scope_map_name(owner, &binding.name, registry);
            self.desired.reserved.insert((registry.clone(), map));
        }
    }

    fn cluster_binding(
        &mut self,
        binding: &Binding,
        pull: &PullSecret,
        cluster: &FleetCluster,
        target: &ClusterTarget,
        state: &ClusterState,
        inventory: &Inventory,
    ) {
        let (present, to_create) = namespaces(pull, target, state, &binding.name, &mut self.warnings);
        for namespace in &to_create {
            self.desired.namespaces.insert((target.clone(), namespace.clone()));
        }
        let namespaces: Vec<&String> = present.iter().chain(&to_create).collect();
        for registry_key in &binding.registries {
            let Some(registry) = inventory.registries.get(registry_key) else { continue };
            let Some(source) = self.source(binding, pull, cluster, registry_key, registry) else { continue };
            let entry = DesiredEntry {
                registry: registry_key.clone(),
                registry_id: registry.id.clone(),
                login_server: registry.login_server.to_ascii_lowercase(),
                binding: binding.name.clone(),
                source,
            };
            for namespace in &namespaces {
                self.add_entry(pull, target, namespace, &entry);
            }
        }
        for namespace in namespaces {
            for account in &pull.service_accounts {
                let key = (target.clone(), namespace.clone(), account.clone());
                self.desired.service_accounts.entry(key).or_default().insert(pull.secret_name.clone());
            }
        }
    }

    /// Where a registry's credential comes from; None (and a problem) when it cannot.
    fn source(
        &mut self,
        binding: &Binding,
        pull: &PullSecret,
        cluster: &FleetCluster,
        registry_key: &str,
        registry: &LiveRegistry,
    ) -> Option<Source> {
        match &pull.credential {
            CredentialSource::Admin if !registry.admin_user_enabled => {
                self.problems.insert(Finding {
                    subject: format!("registry[{registry_key}]"),
                    message: format!(
                        "binding {:?} uses the admin user of registry {registry_key}, which is disabled",
                        binding.name
                    ),
                    hint: Some(format!(
                        "enable it (az acr update -n {} --admin-enabled true), or prefer credential = \"registry-token\": scoped, expiring and rotated",
                        registry.name
                    )),
                });
                None
            }
            CredentialSource::Admin => Some(Source::Admin),
            CredentialSource::RegistryToken => Some(self.token(binding, pull, cluster, registry_key, registry)),
            CredentialSource::ServicePrincipal { client_id, secret, .. } => {
                Some(Source::ServicePrincipal { client_id: client_id.clone(), secret: secret.clone() })
            }
        }
    }

    /// The token of one cluster binding, and the scope map it reads through.
    fn token(
        &mut self,
        binding: &Binding,
        pull: &PullSecret,
        cluster: &FleetCluster,
        registry_key: &str,
        registry: &LiveRegistry,
    ) -> Source {
        let owner = &self.config.owner;
        let name = naming::token_name(owner, &cluster.key, &cluster.live.id, &binding.name, registry_key);
        let scope_map = if binding.repositories.is_empty() {
            naming::ALL_REPOSITORIES_SCOPE_MAP.to_string()
        } else {
            let map_name = naming::scope_map_name(owner, &binding.name, registry_key);
            let map = DesiredScopeMap {
                registry: registry_key.to_string(),
                registry_id: registry.id.clone(),
                name: map_name.clone(),
                actions: naming::read_actions(&binding.repositories),
            };
            self.desired.scope_maps.insert((registry_key.to_string(), map_name.clone()), map);
            map_name
        };
        let token = DesiredToken {
            registry: registry_key.to_string(),
            registry_id: registry.id.clone(),
            name: name.clone(),
            scope_map,
            ttl_seconds: pull.token_ttl_seconds,
            rotate_before_seconds: pull.rotate_before_seconds,
        };
        self.desired.tokens.insert((registry_key.to_string(), name.clone()), token);
        Source::Token { name }
    }

    /// Puts a registry entry into the namespace's Secret; two bindings must agree on it.
    fn add_entry(&mut self, pull: &PullSecret, target: &ClusterTarget, namespace: &str, entry: &DesiredEntry) {
        let key = (target.clone(), namespace.to_string(), pull.secret_name.clone());
        let secret = self.desired.secrets.entry(key).or_insert_with(|| DesiredSecret {
            cluster: target.clone(),
            namespace: namespace.to_string(),
            name: pull.secret_name.clone(),
            adopt: false,
            entries: BTreeMap::new(),
        });
        secret.adopt |= pull.adopt;
        let login = &entry.login_server;
        match secret.entries.get(login) {
            Some(existing) if existing.source != entry.source => {
                self.problems.insert(Finding {
                    subject: naming::secret_address(&target.key, namespace, &pull.secret_name).to_string(),
                    message: format!(
                        "bindings {:?} and {:?} put different credentials for {login} into the same Secret",
                        existing.binding, entry.binding
                    ),
                    hint: Some("give one of them another secret_name, or use one credential".into()),
                });
            }
            Some(_) => {}
            None => {
                secret.entries.insert(login.clone(), entry.clone());
            }
        }
    }
}

pub fn has_bindings(config: &Config) -> bool {
    config.bindings.iter().any(|b| matches!(b.method, Method::PullSecret(_)))
}

/// Where each service principal's client secret is read, by client id: the file decides this,
/// never a plan (an altered saved plan must not make apply read another file).
pub fn secret_sources(config: &Config) -> BTreeMap<String, SecretReference> {
    let mut sources = BTreeMap::new();
    for binding in &config.bindings {
        let Method::PullSecret(pull) = &binding.method else { continue };
        if let CredentialSource::ServicePrincipal { client_id, secret, .. } = &pull.credential {
            sources.insert(client_id.clone(), secret.clone());
        }
    }
    sources
}

/// Service-principal secrets, read now so the plan can tell whether they changed.
pub fn service_principals(config: &Config) -> (BTreeMap<String, Credential>, Vec<Finding>) {
    let mut found = BTreeMap::new();
    let mut problems = Vec::new();
    for binding in &config.bindings {
        let Method::PullSecret(pull) = &binding.method else { continue };
        let CredentialSource::ServicePrincipal { client_id, secret, .. } = &pull.credential else { continue };
        match read_client_secret(secret) {
            Ok(password) => {
                found.insert(client_id.clone(), Credential { username: client_id.clone(), password });
            }
            Err(message) => problems.push(Finding {
                subject: format!("binding {}", binding.name),
                message: format!("cannot read the client secret of {client_id}: {message}"),
                hint: Some(
                    "set it in the environment of acrlink (CI secret), or point client_secret_file at a readable file"
                        .into(),
                ),
            }),
        }
    }
    (found, problems)
}

/// The service principals whose object id the file does not give, by client id: looked up in
/// Microsoft Graph once per run.
pub fn principals_to_look_up(config: &Config) -> BTreeSet<String> {
    let mut client_ids = BTreeSet::new();
    for binding in &config.bindings {
        let Method::PullSecret(pull) = &binding.method else { continue };
        if let CredentialSource::ServicePrincipal { client_id, principal_object_id: None, .. } = &pull.credential {
            client_ids.insert(client_id.to_ascii_lowercase());
        }
    }
    client_ids
}

/// The pull grants service-principal bindings need: each principal gets the pull role on every
/// registry its bindings name, as `az ad sp create-for-rbac --role acrpull` gives it.
/// `principals` holds the object ids Graph gave, by lowercased client id.
pub fn grants(
    config: &Config,
    inventory: &Inventory,
    principals: &BTreeMap<String, String>,
) -> BTreeMap<Address, DesiredAssignment> {
    let mut wanted = BTreeMap::new();
    for binding in &config.bindings {
        let Method::PullSecret(pull) = &binding.method else { continue };
        let CredentialSource::ServicePrincipal { client_id, principal_object_id, .. } = &pull.credential else {
            continue;
        };
        let given = principal_object_id.clone();
        let Some(object_id) = given.or_else(|| principals.get(&client_id.to_ascii_lowercase()).cloned()) else {
            continue;
        };
        for key in &binding.registries {
            let Some(registry) = inventory.registries.get(key) else { continue };
            let grant = service_principal_grant(config, &binding.name, client_id, &object_id, (key, registry));
            wanted.entry(grant.address.clone()).or_insert(grant);
        }
    }
    wanted
}

fn service_principal_grant(
    config: &Config,
    binding: &str,
    client_id: &str,
    object_id: &str,
    (key, registry): (&str, &LiveRegistry),
) -> DesiredAssignment {
    let role_guid = pull_role(registry.role_assignment_mode);
    let grantee = Grantee::ServicePrincipal(client_id.to_string());
    DesiredAssignment {
        address: Address::RoleAssignment { grantee: grantee.clone(), registry: key.to_string(), role: None },
        cluster: grantee.to_string(),
        registry: key.to_string(),
        binding: binding.to_string(),
        role_name: role_name(role_guid),
        spec: pull_grant(
            registry,
            object_id,
            role_guid,
            ownership::service_principal_description(&config.owner, binding, client_id),
            None,
        ),
    }
}
