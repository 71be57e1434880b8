//! `acrlink import`: writes the desired-state file of a live fleet, so a fleet wired by hand,
//! by `az aks update --attach-acr` or by another tool can adopt acrlink with an empty first plan.
//!
//! Three stages, data flowing one way: `read` lists the clusters and registries in scope and
//! each registry's role assignments (the same batched reads as plan: a list per subscription, or
//! one Resource Graph query, and one assignment list per registry); `grants` decides, pair by
//! pair, which grants a managed-identity binding can stand for, and checks the answer against
//! the role-assignment diff plan itself runs; `layout` names clusters and registries and groups
//! pairs into bindings; `write` renders the file. Nothing is written to Azure.

pub mod grants;
pub mod layout;
pub mod secret_bindings;
pub mod secrets;
pub mod write;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::future::join_all;

use crate::model::Finding;
use crate::provider::{Azure, AzureError, LiveCluster, LiveRegistry, LiveRoleAssignment, normalize_id};

/// What `import` reads: subscriptions, and optionally resource groups and cluster tags.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub subscriptions: Vec<String>,
    /// Clusters and registries in any of these resource groups (all when empty).
    pub resource_groups: Vec<String>,
    /// Azure tags a cluster must carry, all of them (registries are not filtered by tags).
    pub tags: BTreeMap<String, String>,
}

impl Scope {
    fn in_groups(&self, resource_group: &str) -> bool {
        self.resource_groups.is_empty() || self.resource_groups.iter().any(|rg| rg.eq_ignore_ascii_case(resource_group))
    }

    fn holds_cluster(&self, cluster: &LiveCluster) -> bool {
        // Azure tag names are case-insensitive (values are not), as cluster sets match them.
        let tagged =
            self.tags.iter().all(|(k, v)| cluster.tags.iter().any(|(lk, lv)| lk.eq_ignore_ascii_case(k) && lv == v));
        self.in_groups(&cluster.resource_group) && tagged
    }

    fn holds_registry(&self, registry: &LiveRegistry) -> bool {
        self.in_groups(&registry.resource_group)
    }
}

/// Why nothing was written: an import that missed part of the fleet would write a file whose
/// plan prunes or re-creates what it could not see.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the fleet: {}", .0.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; "))]
    Incomplete(Vec<Finding>),
    #[error("no subscription to read: pass --subscription ID (the signed-in identity sees none)")]
    NoSubscription,
}

/// The live state in scope, sorted by id so that the same state always gives the same file.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub clusters: Vec<LiveCluster>,
    pub registries: Vec<LiveRegistry>,
    /// Each registry's list (at, above and below it), by its normalized id.
    pub assignments: BTreeMap<String, Vec<LiveRoleAssignment>>,
}

fn read_error(subject: &str, error: &AzureError) -> Finding {
    Finding { subject: subject.to_string(), message: format!("cannot read {subject}: {error}"), hint: None }
}

/// Reads clusters, registries and role assignments in scope.
pub async fn read<A: Azure>(scope: &Scope, azure: &A) -> Result<Live, ImportError> {
    if scope.subscriptions.is_empty() {
        return Err(ImportError::NoSubscription);
    }
    let mut problems = Vec::new();
    let (mut clusters, mut registries) = if azure.reads_via_graph(scope.subscriptions.len()) {
        let (clusters, registries) = futures::join!(
            azure.list_clusters_in(&scope.subscriptions),
            azure.list_registries_in(&scope.subscriptions)
        );
        let clusters = clusters.unwrap_or_else(|e| {
            problems.push(read_error("clusters (Resource Graph)", &e));
            Vec::new()
        });
        let registries = registries.unwrap_or_else(|e| {
            problems.push(read_error("registries (Resource Graph)", &e));
            Vec::new()
        });
        (clusters, registries)
    } else {
        per_subscription(scope, azure, &mut problems).await
    };
    clusters.retain(|c| scope.holds_cluster(c));
    registries.retain(|r| scope.holds_registry(r));
    clusters.sort_by_key(|c| normalize_id(&c.id));
    clusters.dedup_by_key(|c| normalize_id(&c.id));
    registries.sort_by_key(|r| normalize_id(&r.id));
    registries.dedup_by_key(|r| normalize_id(&r.id));
    let by_id: BTreeMap<String, LiveRegistry> = registries.iter().map(|r| (normalize_id(&r.id), r.clone())).collect();
    let (assignments, failed) = crate::observe::role_assignments(&by_id, azure).await;
    problems.extend(failed);
    if !problems.is_empty() {
        return Err(ImportError::Incomplete(problems));
    }
    Ok(Live { clusters, registries, assignments })
}

/// A list of clusters and one of registries per subscription.
async fn per_subscription<A: Azure>(
    scope: &Scope,
    azure: &A,
    problems: &mut Vec<Finding>,
) -> (Vec<LiveCluster>, Vec<LiveRegistry>) {
    let lists = join_all(scope.subscriptions.iter().map(|subscription| async move {
        let (clusters, registries) =
            futures::join!(azure.list_clusters(subscription, None), azure.list_registries(subscription));
        (subscription, clusters, registries)
    }))
    .await;
    let (mut clusters, mut registries) = (Vec::new(), Vec::new());
    for (subscription, listed_clusters, listed_registries) in lists {
        match listed_clusters {
            Ok(found) => clusters.extend(found),
            Err(e) => problems.push(read_error(&format!("clusters of subscription {subscription}"), &e)),
        }
        match listed_registries {
            Ok(found) => registries.extend(found),
            Err(e) => problems.push(read_error(&format!("registries of subscription {subscription}"), &e)),
        }
    }
    (clusters, registries)
}

/// What an import decided, ready to be written.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub live: Live,
    pub keys: layout::Keys,
    pub grants: grants::Grants,
    pub bindings: Vec<layout::Binding>,
    /// The clusters and registries the file names, by index into `live`.
    pub clusters: BTreeSet<usize>,
    pub registries: BTreeSet<usize>,
}

impl Outcome {
    /// Names, grants and bindings of the live state read (and its pull Secrets, when read).
    pub fn decide(live: Live, secrets: Option<&secrets::SecretsLive>) -> Outcome {
        let keys = layout::keys(&live);
        // When no acrlink grant in scope names an owner, the owner of acrlink's Secrets does.
        let mut secret_owners = BTreeMap::new();
        for owner in secrets.iter().flat_map(|found| found.secrets.iter().filter_map(|s| s.owner.clone())) {
            *secret_owners.entry(owner).or_default() += 1;
        }
        let mut grants = grants::decide(&live, &keys, grants::most_common(&secret_owners));
        let (mut secret_bindings, unexpressed) = match secrets {
            Some(found) => secret_bindings::decide(&live, &keys, found, &grants.owner),
            None => Default::default(),
        };
        grants.unexpressed.extend(unexpressed);
        // Token bindings keep the names their tokens were made under; the rest avoid them.
        let mut names: HashSet<String> = secret_bindings.iter().filter_map(|b| b.name.clone()).collect();
        let file = layout::FileKeys::new(&keys, &grants.pairs, &secret_bindings);
        let mut bindings = layout::bindings(&keys, &grants.pairs, &file, &mut names);
        secret_bindings::name_bindings(&mut secret_bindings, &mut names);
        bindings.extend(layout::secret_bindings(&keys, &secret_bindings, &file));
        let clusters = grants
            .pairs
            .iter()
            .map(|p| p.cluster)
            .chain(secret_bindings.iter().flat_map(|b| b.clusters.iter().copied()))
            .collect();
        let registries = grants
            .pairs
            .iter()
            .map(|p| p.registry)
            .chain(secret_bindings.iter().flat_map(|b| b.registries.iter().copied()))
            .collect();
        Outcome { live, keys, grants, bindings, clusters, registries }
    }

    /// The file's text.
    pub fn file(&self, header: &write::Header<'_>, format: write::Format) -> Result<String, write::WriteError> {
        write::file(self, header, format)
    }
}
