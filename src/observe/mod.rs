//! Reads live state in batches: clusters and registries (a list per subscription, or a GET
//! when the file names only a few), then role assignments once per registry scope. Never
//! mutates anything. The number of requests grows with subscriptions and registries, not with
//! clusters × registries.

pub mod objects;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::future::join_all;

use crate::config::model::{Cluster, Config};
use crate::provider::{Azure, AzureError, LiveCluster, LiveRegistry, LiveRoleAssignment, normalize_id};

/// Below this many named resources in one subscription, GETs are cheaper than a (paged) list.
const LIST_THRESHOLD: usize = 3;

/// A cluster the engine considers, named in the file or discovered through a cluster set.
#[derive(Debug, Clone)]
pub struct FleetCluster {
    /// The file's key, or the Azure name for a discovered cluster.
    pub key: String,
    pub labels: BTreeMap<String, String>,
    pub live: LiveCluster,
    /// "clusters.KEY" or the cluster set's name.
    pub origin: String,
}

pub use crate::model::Finding;

#[derive(Debug, Default)]
pub struct Inventory {
    pub clusters: Vec<FleetCluster>,
    /// By the file's registry key.
    pub registries: BTreeMap<String, LiveRegistry>,
    pub problems: Vec<Finding>,
}

fn fetch_error(subject: &str, error: &AzureError) -> Finding {
    // Every read of an endpoint that cannot be reached fails alike: one error (the engine
    // drops repeats), about the endpoint, not one per read.
    if let AzureError::Unreachable { .. } = error {
        return Finding {
            subject: "Azure".into(),
            message: error.to_string(),
            hint: Some(
                "check the network path and proxy settings to it, and the cloud in [azure] (ACRLINK_ARM_ENDPOINT overrides the endpoint)"
                    .into(),
            ),
        };
    }
    let hint = match error {
        AzureError::Authentication(_) => {
            Some("check the credential: acrlink --auth, AZURE_* variables or `az login`".into())
        }
        AzureError::Api { status: 403, .. } => Some("the identity needs Reader on this scope to observe it".into()),
        _ => None,
    };
    Finding { subject: subject.to_string(), message: format!("cannot read {subject}: {error}"), hint }
}

/// Clusters listed per subscription, indexed by lowercased (resource group, name).
type Listed = BTreeMap<String, HashMap<(String, String), LiveCluster>>;

/// The clusters found so far, and where each id sits, so discovery never adds one twice.
#[derive(Default)]
struct Found {
    clusters: Vec<FleetCluster>,
    by_id: HashMap<String, usize>,
    keys: HashSet<String>,
    problems: Vec<Finding>,
}

impl Found {
    fn add(&mut self, cluster: FleetCluster) {
        self.by_id.insert(normalize_id(&cluster.live.id), self.clusters.len());
        self.keys.insert(cluster.key.clone());
        self.clusters.push(cluster);
    }
}

/// The fleet's clusters: those the file names and those its cluster sets discover.
pub async fn clusters<A: Azure>(config: &Config, azure: &A) -> (Vec<FleetCluster>, Vec<Finding>) {
    let mut found = Found::default();
    // Which subscriptions need a list (cluster sets, or enough named clusters), which a GET.
    let mut named_by_subscription: BTreeMap<String, Vec<&Cluster>> = BTreeMap::new();
    for cluster in config.clusters.values() {
        named_by_subscription.entry(cluster.subscription_id.to_ascii_lowercase()).or_default().push(cluster);
    }
    let mut list_subscriptions: BTreeSet<String> =
        config.cluster_sets.iter().map(|s| s.subscription_id.to_ascii_lowercase()).collect();
    for (subscription, clusters) in &named_by_subscription {
        if clusters.len() >= LIST_THRESHOLD {
            list_subscriptions.insert(subscription.clone());
        }
    }
    let all: BTreeSet<String> = named_by_subscription.keys().cloned().chain(list_subscriptions.clone()).collect();
    let listed = if azure.reads_via_graph(all.len()) {
        // One query for every subscription: no list per subscription, no GET per cluster.
        list_subscriptions = all;
        graph_clusters(azure, &list_subscriptions, &mut found.problems).await
    } else {
        list_clusters(azure, &list_subscriptions, &mut found.problems).await
    };
    let gets = named_by_subscription
        .iter()
        .filter(|(subscription, _)| !list_subscriptions.contains(*subscription))
        .flat_map(|(_, clusters)| clusters.iter())
        .map(|cluster| async move {
            let found = azure.get_cluster(&cluster.subscription_id, &cluster.resource_group, &cluster.name).await;
            (cluster.key.clone(), found)
        });
    let fetched: BTreeMap<String, Result<Option<LiveCluster>, AzureError>> = join_all(gets).await.into_iter().collect();
    for cluster in config.clusters.values() {
        named_cluster(cluster, &listed, &fetched, &mut found);
    }
    for set in &config.cluster_sets {
        discovered_clusters(set, &listed, &mut found);
    }
    found.clusters.sort_by(|a, b| a.key.cmp(&b.key));
    (found.clusters, found.problems)
}

async fn list_clusters<A: Azure>(azure: &A, subscriptions: &BTreeSet<String>, problems: &mut Vec<Finding>) -> Listed {
    let lists = join_all(subscriptions.iter().map(|s| async move { (s.clone(), azure.list_clusters(s, None).await) }));
    let mut listed = Listed::new();
    for (subscription, result) in lists.await {
        match result {
            Ok(clusters) => {
                let index = clusters
                    .into_iter()
                    .map(|c| ((c.resource_group.to_ascii_lowercase(), c.name.to_ascii_lowercase()), c))
                    .collect();
                listed.insert(subscription, index);
            }
            Err(e) => problems.push(fetch_error(&format!("clusters of subscription {subscription}"), &e)),
        }
    }
    listed
}

async fn graph_clusters<A: Azure>(azure: &A, subscriptions: &BTreeSet<String>, problems: &mut Vec<Finding>) -> Listed {
    let wanted: Vec<String> = subscriptions.iter().cloned().collect();
    match azure.list_clusters_in(&wanted).await {
        Ok(clusters) => {
            let mut listed: Listed = wanted.into_iter().map(|s| (s, HashMap::new())).collect();
            for cluster in clusters {
                let index = listed.entry(cluster.subscription_id.to_ascii_lowercase()).or_default();
                index.insert((cluster.resource_group.to_ascii_lowercase(), cluster.name.to_ascii_lowercase()), cluster);
            }
            listed
        }
        Err(e) => {
            problems.push(fetch_error("clusters (Resource Graph)", &e));
            Listed::new()
        }
    }
}

/// A cluster the file names, from its GET or its subscription's list.
fn named_cluster(
    cluster: &Cluster,
    listed: &Listed,
    fetched: &BTreeMap<String, Result<Option<LiveCluster>, AzureError>>,
    found: &mut Found,
) {
    let live = match fetched.get(&cluster.key) {
        Some(Ok(live)) => live.clone(),
        Some(Err(e)) => return found.problems.push(fetch_error(&format!("cluster {}", cluster.key), e)),
        None => match listed.get(&cluster.subscription_id.to_ascii_lowercase()) {
            Some(clusters) => {
                clusters.get(&(cluster.resource_group.to_ascii_lowercase(), cluster.name.to_ascii_lowercase())).cloned()
            }
            // The list failed; its problem is already recorded.
            None => return,
        },
    };
    let Some(live) = live else {
        return found.problems.push(Finding {
            subject: format!("clusters.{}", cluster.key),
            message: format!(
                "AKS cluster {} was not found in resource group {} of subscription {}",
                cluster.name, cluster.resource_group, cluster.subscription_id
            ),
            hint: Some("check name, resource_group and subscription_id, or remove the entry".into()),
        });
    };
    found.add(FleetCluster {
        key: cluster.key.clone(),
        labels: cluster.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        live,
        origin: format!("clusters.{}", cluster.key),
    });
}

/// The clusters a cluster set discovers by resource group and tags.
fn discovered_clusters(set: &crate::config::model::ClusterSet, listed: &Listed, found: &mut Found) {
    let Some(clusters) = listed.get(&set.subscription_id.to_ascii_lowercase()) else { return };
    let mut matching: Vec<&LiveCluster> = clusters
        .values()
        .filter(|live| {
            let in_group = set.resource_group.as_ref().is_none_or(|rg| live.resource_group.eq_ignore_ascii_case(rg));
            // Azure tag names are case-insensitive (values are not).
            let tagged =
                set.tags.iter().all(|(k, v)| live.tags.iter().any(|(lk, lv)| lk.eq_ignore_ascii_case(k) && lv == v));
            in_group && tagged
        })
        .collect();
    // In list order (by id), so which of two same-named clusters keeps the plain key is stable.
    matching.sort_by_key(|live| normalize_id(&live.id));
    for live in matching {
        match found.by_id.get(&normalize_id(&live.id)) {
            // Named in the file too: the set's labels add to the file's.
            Some(&index) => {
                let labels = &mut found.clusters[index].labels;
                for (k, v) in &set.labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            None => {
                let taken = found.keys.contains(&live.name);
                let key = if taken { format!("{}/{}", live.resource_group, live.name) } else { live.name.clone() };
                found.add(FleetCluster {
                    key,
                    labels: set.labels.clone(),
                    live: live.clone(),
                    origin: set.name.clone(),
                });
            }
        }
    }
}

/// The registries the file names, by key.
pub async fn registries<A: Azure>(config: &Config, azure: &A) -> (BTreeMap<String, LiveRegistry>, Vec<Finding>) {
    // A list per subscription with enough registries, else a GET each; or one Resource Graph
    // query for all.
    let mut registries_by_subscription: BTreeMap<String, Vec<&crate::config::model::Registry>> = BTreeMap::new();
    for registry in config.registries.values() {
        registries_by_subscription.entry(registry.subscription_id.to_ascii_lowercase()).or_default().push(registry);
    }
    if azure.reads_via_graph(registries_by_subscription.len()) {
        let subscriptions: Vec<String> = registries_by_subscription.keys().cloned().collect();
        let listed = azure.list_registries_in(&subscriptions).await;
        let all = registries_by_subscription.into_values().flatten();
        return found_registries(all.map(|r| (r.key.clone(), find_registry(&listed, r), r.clone())));
    }
    let lookups = registries_by_subscription.into_iter().map(|(subscription, registries)| async move {
        if registries.len() >= LIST_THRESHOLD {
            match azure.list_registries(&subscription).await {
                Ok(all) => registries
                    .iter()
                    .map(|r| {
                        let found = all
                            .iter()
                            .find(|l| {
                                l.name.eq_ignore_ascii_case(&r.name)
                                    && l.resource_group.eq_ignore_ascii_case(&r.resource_group)
                            })
                            .cloned();
                        (r.key.clone(), Ok(found), (*r).clone())
                    })
                    .collect::<Vec<_>>(),
                // Every registry of the list shares its failure, whatever it was.
                Err(e) => registries.iter().map(|r| (r.key.clone(), Err(e.clone()), (*r).clone())).collect(),
            }
        } else {
            let gets = registries.iter().map(|r| async move {
                (r.key.clone(), azure.get_registry(&r.subscription_id, &r.resource_group, &r.name).await, (*r).clone())
            });
            join_all(gets).await
        }
    });
    found_registries(join_all(lookups).await.into_iter().flatten())
}

/// A registry of the file in a list that covers its subscription, or the list's failure.
fn find_registry(
    listed: &Result<Vec<LiveRegistry>, AzureError>,
    registry: &crate::config::model::Registry,
) -> Result<Option<LiveRegistry>, AzureError> {
    let all = listed.as_ref().map_err(Clone::clone)?;
    let same = |l: &&LiveRegistry| {
        l.subscription_id.eq_ignore_ascii_case(&registry.subscription_id)
            && l.name.eq_ignore_ascii_case(&registry.name)
            && l.resource_group.eq_ignore_ascii_case(&registry.resource_group)
    };
    Ok(all.iter().find(same).cloned())
}

type RegistryLookup = (String, Result<Option<LiveRegistry>, AzureError>, crate::config::model::Registry);

fn found_registries(lookups: impl Iterator<Item = RegistryLookup>) -> (BTreeMap<String, LiveRegistry>, Vec<Finding>) {
    let mut inventory = Inventory::default();
    for (key, result, registry) in lookups {
        match result {
            Ok(Some(live)) => {
                inventory.registries.insert(key, live);
            }
            Ok(None) => inventory.problems.push(Finding {
                subject: format!("registries.{key}"),
                message: format!(
                    "container registry {} was not found in resource group {} of subscription {}",
                    registry.name, registry.resource_group, registry.subscription_id
                ),
                hint: Some("check name, resource_group and subscription_id, or remove the entry".into()),
            }),
            Err(e) => inventory.problems.push(fetch_error(&format!("registry {key}"), &e)),
        }
    }
    (inventory.registries, inventory.problems)
}

/// Role assignments at, above and below each registry, one list per registry.
pub async fn role_assignments<A: Azure>(
    registries: &BTreeMap<String, LiveRegistry>,
    azure: &A,
) -> (BTreeMap<String, Vec<LiveRoleAssignment>>, Vec<Finding>) {
    let lists = join_all(
        registries
            .iter()
            .map(|(key, registry)| async move { (key.clone(), azure.list_role_assignments(&registry.id).await) }),
    )
    .await;
    let mut found = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, result) in lists {
        match result {
            Ok(assignments) => {
                found.insert(key, assignments);
            }
            Err(e) => problems.push(fetch_error(&format!("role assignments of registry {key}"), &e)),
        }
    }
    (found, problems)
}
