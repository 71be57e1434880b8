//! Which live grants a managed-identity binding can stand for, pair by pair (cluster, registry),
//! and what the file cannot say. The answer is checked against `kinds::role_assignment::diff`,
//! the very diff plan runs: a pair whose binding plan would change (another owner's grant it
//! would join, a condition it would rewrite) is left out and noted, so the first plan after an
//! import is empty. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::Live;
use super::layout::Keys;
use crate::config::model::Owner;
use crate::kinds::Diff;
use crate::kinds::role_assignment::{DesiredAssignment, assignment_address, covers};
use crate::kinds::roles::{
    condition_repositories, grants_pull, pull_grant, pull_role, repository_condition, role_assignment_name, role_name,
};
use crate::model::Address;
use crate::observe::FleetCluster;
use crate::ownership;
use crate::provider::{LiveRegistry, LiveRoleAssignment, RoleAssignmentMode, normalize_id, role_guid};

/// A cluster that may pull from a registry: indices into `Live`, and the repositories its grant's
/// ABAC condition allows (empty: the whole registry).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pair {
    pub cluster: usize,
    pub registry: usize,
    pub repositories: Vec<String>,
}

/// What the file cannot say, listed as comments at its top; never a binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unexpressed {
    /// A grant that lets pull, to a principal that is no kubelet identity of a cluster in scope
    /// (a person, a CI identity, a cluster outside the scope, a deleted cluster's identity).
    NotAKubelet { id: String, role: String, principal: String, scope: String, registries: Vec<String> },
    /// A kubelet identity's grant on a registry that does not let it pull there: a custom role
    /// (acrlink cannot tell what it allows) or a role the registry's mode ignores.
    NoPull { id: String, role: String, cluster: String, registry: String, abac: bool },
    /// A repository condition acrlink did not write and cannot read back exactly.
    OtherCondition { id: String, cluster: String, registry: String },
    /// A repository condition on a registry not in ABAC mode, where bindings cannot limit repositories.
    ConditionWithoutAbac { id: String, cluster: String, registry: String },
    /// What plan would still do with the file: a pair left out, or an acrlink grant it would prune.
    PlanWould { address: String, action: String, reason: String },
    /// A cluster whose pull Secrets could not be read (`--pull-secrets`).
    Unreadable { cluster: String, message: String },
    /// A pull Secret no binding stands for: its registries and credential kinds, never a value.
    Secret { cluster: String, namespace: String, name: String, holds: Vec<String>, why: SecretWhy },
}

/// Why a pull Secret is not bound.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretWhy {
    /// Made outside acrlink: a binding of its name would be blocked (or, with adopt, rewrite it).
    MadeOutside,
    /// Made by another acrlink owner's file.
    OtherOwner(String),
    /// A registry that is not in scope (or not in Azure).
    NotInScope,
    /// A service principal's: the file must say where its secret is read (client_secret_env).
    ServicePrincipal,
    /// An Entra token, which expires within hours.
    EntraToken,
    /// A token whose binding's name its scope map does not give back.
    TokenBindingUnknown,
    /// A token binding whose clusters differ in namespaces or registries.
    Uneven,
}

/// The pairs the file binds, the owner it names, and what it cannot say.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub owner: Owner,
    pub pairs: Vec<Pair>,
    pub unexpressed: BTreeSet<Unexpressed>,
}

/// Each registry's grants to kubelet identities, by cluster; the rest noted when they let pull.
struct Sorted<'a> {
    by_pair: BTreeMap<(usize, usize), Vec<&'a LiveRoleAssignment>>,
    outside: BTreeMap<String, (&'a LiveRoleAssignment, Vec<String>)>,
}

fn sort_grants<'a>(live: &'a Live, keys: &Keys) -> Sorted<'a> {
    let kubelets: HashMap<String, usize> = live
        .clusters
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.kubelet_identity.as_ref().map(|k| (k.object_id.to_ascii_lowercase(), i)))
        .collect();
    let mut sorted = Sorted { by_pair: BTreeMap::new(), outside: BTreeMap::new() };
    for (r, registry) in live.registries.iter().enumerate() {
        let Some(list) = live.assignments.get(&normalize_id(&registry.id)) else { continue };
        for assignment in list.iter().filter(|a| covers(&a.scope, &registry.id)) {
            match kubelets.get(&assignment.principal_id.to_ascii_lowercase()) {
                Some(&c) => sorted.by_pair.entry((c, r)).or_default().push(assignment),
                None if grants_pull(&role_guid(&assignment.role_definition_id), registry.role_assignment_mode) => {
                    let entry = sorted.outside.entry(normalize_id(&assignment.id)).or_insert((assignment, Vec::new()));
                    entry.1.push(keys.registries[r].clone());
                }
                None => {}
            }
        }
    }
    for grants in sorted.by_pair.values_mut() {
        grants.sort_by_key(|a| normalize_id(&a.id));
    }
    sorted
}

/// Decides the pairs and the owner (`fallback` when no acrlink grant in scope names one), then
/// keeps only pairs plan leaves alone.
pub fn decide(live: &Live, keys: &Keys, fallback: Owner) -> Grants {
    let sorted = sort_grants(live, keys);
    let mut unexpressed = BTreeSet::new();
    for (assignment, registries) in sorted.outside.values() {
        unexpressed.insert(Unexpressed::NotAKubelet {
            id: assignment.id.clone(),
            role: role_label(assignment),
            principal: assignment.principal_id.clone(),
            scope: assignment.scope.clone(),
            registries: registries.clone(),
        });
    }
    let mut pairs = Vec::new();
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for (&(c, r), grants) in &sorted.by_pair {
        let at = At { live, keys, cluster: c, registry: r };
        if let Some(repositories) = at.choose(grants, &mut unexpressed) {
            pairs.push(Pair { cluster: c, registry: r, repositories });
        }
        let managed = grants.iter().filter_map(|a| a.description.as_deref().and_then(ownership::description_owners));
        for owner in managed.flatten() {
            *owners.entry(owner).or_default() += 1;
        }
    }
    let owner = if owners.is_empty() { fallback } else { most_common(&owners) };
    // First pass: leave out every pair plan would touch; second: what plan would still do.
    let first = simulate(live, keys, &pairs, &owner);
    let touched: HashSet<String> = first
        .changes
        .iter()
        .map(|c| c.address.to_string())
        .chain(first.warnings.iter().map(|w| w.subject.clone()))
        .collect();
    pairs.retain(|p| !touched.contains(&pair_address(keys, p).to_string()));
    let second = simulate(live, keys, &pairs, &owner);
    for change in first.changes.iter().chain(&second.changes) {
        unexpressed.insert(Unexpressed::PlanWould {
            address: change.address.to_string(),
            action: format!("{:?}", change.action).to_ascii_lowercase(),
            reason: crate::render::reason::reason(&change.reason),
        });
    }
    // A warning about a change already noted (an orphan it would prune) says nothing more.
    let changed: HashSet<String> = second.changes.iter().map(|c| c.address.to_string()).collect();
    for warning in first.warnings.iter().chain(&second.warnings).filter(|w| !changed.contains(&w.subject)) {
        unexpressed.insert(Unexpressed::PlanWould {
            address: warning.subject.clone(),
            action: "warn".into(),
            reason: warning.message.clone(),
        });
    }
    Grants { owner, pairs, unexpressed }
}

/// The owner most acrlink grants (or Secrets) in scope carry ("default" first among equals,
/// then by name), so that plan joins none of them.
pub fn most_common(owners: &BTreeMap<String, usize>) -> Owner {
    let best = owners.iter().max_by(|a, b| {
        a.1.cmp(b.1).then_with(|| (b.0 != "default").cmp(&(a.0 != "default"))).then_with(|| b.0.cmp(a.0))
    });
    best.map_or_else(Owner::default, |(name, _)| Owner::named(name))
}

/// One pair being decided.
struct At<'a> {
    live: &'a Live,
    keys: &'a Keys,
    cluster: usize,
    registry: usize,
}

impl At<'_> {
    /// The repositories of the grant a binding would stand for, or None when no grant lets pull
    /// in a way a binding can say.
    fn choose(&self, grants: &[&LiveRoleAssignment], unexpressed: &mut BTreeSet<Unexpressed>) -> Option<Vec<String>> {
        let registry = &self.live.registries[self.registry];
        let mode = registry.role_assignment_mode;
        let (pull, other): (Vec<&LiveRoleAssignment>, Vec<&LiveRoleAssignment>) =
            grants.iter().partition(|a| grants_pull(&role_guid(&a.role_definition_id), mode));
        for assignment in other {
            unexpressed.insert(Unexpressed::NoPull {
                id: assignment.id.clone(),
                role: role_label(assignment),
                cluster: self.cluster_key().into(),
                registry: self.registry_key().into(),
                abac: mode == RoleAssignmentMode::Abac,
            });
        }
        let chosen = self.chosen(&pull)?;
        let repositories = match chosen.condition.as_deref() {
            None => Vec::new(),
            Some(condition) => match condition_repositories(condition) {
                Some(repositories) => repositories,
                None => {
                    unexpressed.insert(Unexpressed::OtherCondition {
                        id: chosen.id.clone(),
                        cluster: self.cluster_key().into(),
                        registry: self.registry_key().into(),
                    });
                    return None;
                }
            },
        };
        if !repositories.is_empty() && mode == RoleAssignmentMode::Legacy {
            unexpressed.insert(Unexpressed::ConditionWithoutAbac {
                id: chosen.id.clone(),
                cluster: self.cluster_key().into(),
                registry: self.registry_key().into(),
            });
            return None;
        }
        Some(repositories)
    }

    /// The grant plan compares a binding with first: the one under acrlink's deterministic name
    /// (plan matches it by id), else one without a condition, else one whose condition reads back.
    fn chosen<'g>(&self, pull: &[&'g LiveRoleAssignment]) -> Option<&'g LiveRoleAssignment> {
        let registry = &self.live.registries[self.registry];
        let kubelet = self.live.clusters[self.cluster].kubelet_identity.as_ref()?;
        let name = role_assignment_name(&registry.id, &kubelet.object_id, pull_role(registry.role_assignment_mode));
        let named = pull
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(&name) && normalize_id(&a.scope) == normalize_id(&registry.id));
        named
            .or_else(|| pull.iter().find(|a| a.condition.is_none()))
            .or_else(|| pull.iter().find(|a| a.condition.as_deref().and_then(condition_repositories).is_some()))
            .or_else(|| pull.first())
            .copied()
    }

    fn cluster_key(&self) -> &str {
        &self.keys.clusters[self.cluster]
    }

    fn registry_key(&self) -> &str {
        &self.keys.registries[self.registry]
    }
}

/// A role's name, or its definition's GUID when it is none acrlink knows (a custom role).
fn role_label(assignment: &LiveRoleAssignment) -> String {
    let guid = role_guid(&assignment.role_definition_id);
    match role_name(&guid) {
        "another role" => format!("role {guid}"),
        known => known.to_string(),
    }
}

fn pair_address(keys: &Keys, pair: &Pair) -> Address {
    assignment_address(&keys.clusters[pair.cluster], &keys.registries[pair.registry])
}

/// The role-assignment diff plan would run on a file binding exactly `pairs`, owned by `owner`.
fn simulate(live: &Live, keys: &Keys, pairs: &[Pair], owner: &Owner) -> Diff {
    let mut registries: BTreeMap<String, LiveRegistry> = BTreeMap::new();
    let mut assignments: BTreeMap<String, Vec<LiveRoleAssignment>> = BTreeMap::new();
    let mut clusters: BTreeMap<usize, FleetCluster> = BTreeMap::new();
    let mut desired = Vec::new();
    for pair in pairs {
        let (registry, cluster) = (&live.registries[pair.registry], &live.clusters[pair.cluster]);
        let Some(kubelet) = &cluster.kubelet_identity else { continue };
        let (registry_key, cluster_key) = (&keys.registries[pair.registry], &keys.clusters[pair.cluster]);
        registries.insert(registry_key.clone(), registry.clone());
        let list = live.assignments.get(&normalize_id(&registry.id)).cloned().unwrap_or_default();
        assignments.insert(registry_key.clone(), list);
        clusters.entry(pair.cluster).or_insert_with(|| FleetCluster {
            key: cluster_key.clone(),
            labels: BTreeMap::new(),
            live: cluster.clone(),
            origin: format!("clusters.{cluster_key}"),
        });
        let role = pull_role(registry.role_assignment_mode);
        let condition = (!pair.repositories.is_empty()).then(|| repository_condition(&pair.repositories));
        let description = ownership::assignment_description(owner, "import", &cluster.id);
        desired.push(DesiredAssignment {
            address: pair_address(keys, pair),
            cluster: cluster_key.clone(),
            registry: registry_key.clone(),
            binding: "import".into(),
            role_name: role_name(role),
            spec: pull_grant(registry, &kubelet.object_id, role, description, condition),
        });
    }
    let clusters: Vec<FleetCluster> = clusters.into_values().collect();
    crate::kinds::role_assignment::diff(&desired, &assignments, &registries, &clusters, owner)
}
