//! Reads live state in batches: clusters and registries (a list per subscription, or a GET
//! when the file names only a few), then role assignments once per registry scope. Never
//! mutates anything. The number of requests grows with subscriptions and registries, not with
//! clusters × registries.

use std::collections::{BTreeMap, BTreeSet};

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
    let hint = match error {
        AzureError::Authentication(_) => {
            Some("check the credential: acrlink --auth, AZURE_* variables or `az login`".into())
        }
        AzureError::Api { status: 403, .. } => Some("the identity needs Reader on this scope to observe it".into()),
        _ => None,
    };
    Finding { subject: subject.to_string(), message: format!("cannot read {subject}: {error}"), hint }
}

/// The fleet's clusters: those the file names and those its cluster sets discover.
pub async fn clusters<A: Azure>(config: &Config, azure: &A) -> (Vec<FleetCluster>, Vec<Finding>) {
    let mut inventory = Inventory::default();

    // Clusters: which subscriptions need a list, which clusters a GET.
    let mut static_by_subscription: BTreeMap<String, Vec<&Cluster>> = BTreeMap::new();
    for cluster in config.clusters.values() {
        static_by_subscription.entry(cluster.subscription_id.to_ascii_lowercase()).or_default().push(cluster);
    }
    let set_subscriptions: BTreeSet<String> =
        config.cluster_sets.iter().map(|s| s.subscription_id.to_ascii_lowercase()).collect();
    let mut list_subscriptions: BTreeSet<String> = set_subscriptions.clone();
    for (subscription, clusters) in &static_by_subscription {
        if clusters.len() >= LIST_THRESHOLD {
            list_subscriptions.insert(subscription.clone());
        }
    }
    let lists =
        join_all(list_subscriptions.iter().map(|s| async move { (s.clone(), azure.list_clusters(s, None).await) }))
            .await;
    let mut listed: BTreeMap<String, Vec<LiveCluster>> = BTreeMap::new();
    for (subscription, result) in lists {
        match result {
            Ok(clusters) => {
                listed.insert(subscription, clusters);
            }
            Err(e) => inventory.problems.push(fetch_error(&format!("clusters of subscription {subscription}"), &e)),
        }
    }
    let gets = static_by_subscription
        .iter()
        .filter(|(subscription, _)| !list_subscriptions.contains(*subscription))
        .flat_map(|(_, clusters)| clusters.iter())
        .map(|cluster| async move {
            (
                cluster.key.clone(),
                azure.get_cluster(&cluster.subscription_id, &cluster.resource_group, &cluster.name).await,
            )
        });
    let fetched: BTreeMap<String, Result<Option<LiveCluster>, AzureError>> = join_all(gets).await.into_iter().collect();

    let mut seen_ids: BTreeMap<String, usize> = BTreeMap::new();
    for cluster in config.clusters.values() {
        let subscription = cluster.subscription_id.to_ascii_lowercase();
        let found = match fetched.get(&cluster.key) {
            Some(Ok(found)) => found.clone(),
            Some(Err(e)) => {
                inventory.problems.push(fetch_error(&format!("cluster {}", cluster.key), e));
                continue;
            }
            None => match listed.get(&subscription) {
                Some(clusters) => clusters
                    .iter()
                    .find(|c| {
                        c.name.eq_ignore_ascii_case(&cluster.name)
                            && c.resource_group.eq_ignore_ascii_case(&cluster.resource_group)
                    })
                    .cloned(),
                // The list failed; its problem is already recorded.
                None => continue,
            },
        };
        match found {
            Some(live) => {
                seen_ids.insert(normalize_id(&live.id), inventory.clusters.len());
                inventory.clusters.push(FleetCluster {
                    key: cluster.key.clone(),
                    labels: cluster.labels.clone(),
                    live,
                    origin: format!("clusters.{}", cluster.key),
                });
            }
            None => inventory.problems.push(Finding {
                subject: format!("clusters.{}", cluster.key),
                message: format!(
                    "AKS cluster {} was not found in resource group {} of subscription {}",
                    cluster.name, cluster.resource_group, cluster.subscription_id
                ),
                hint: Some("check name, resource_group and subscription_id, or remove the entry".into()),
            }),
        }
    }

    for set in &config.cluster_sets {
        let Some(clusters) = listed.get(&set.subscription_id.to_ascii_lowercase()) else { continue };
        for live in clusters {
            let in_group = set.resource_group.as_ref().is_none_or(|rg| live.resource_group.eq_ignore_ascii_case(rg));
            // Azure tag names are case-insensitive (values are not).
            let tagged =
                set.tags.iter().all(|(k, v)| live.tags.iter().any(|(lk, lv)| lk.eq_ignore_ascii_case(k) && lv == v));
            if !(in_group && tagged) {
                continue;
            }
            match seen_ids.get(&normalize_id(&live.id)) {
                // Named in the file too: the set's labels add to the file's.
                Some(&index) => {
                    let labels = &mut inventory.clusters[index].labels;
                    for (k, v) in &set.labels {
                        labels.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                None => {
                    let taken = inventory.clusters.iter().any(|c| c.key == live.name);
                    let key = if taken { format!("{}/{}", live.resource_group, live.name) } else { live.name.clone() };
                    seen_ids.insert(normalize_id(&live.id), inventory.clusters.len());
                    inventory.clusters.push(FleetCluster {
                        key,
                        labels: set.labels.clone(),
                        live: live.clone(),
                        origin: set.name.clone(),
                    });
                }
            }
        }
    }
    inventory.clusters.sort_by(|a, b| a.key.cmp(&b.key));
    (inventory.clusters, inventory.problems)
}

/// The registries the file names, by key.
pub async fn registries<A: Azure>(config: &Config, azure: &A) -> (BTreeMap<String, LiveRegistry>, Vec<Finding>) {
    let mut inventory = Inventory::default();

    // Registries, the same way.
    let mut registries_by_subscription: BTreeMap<String, Vec<&crate::config::model::Registry>> = BTreeMap::new();
    for registry in config.registries.values() {
        registries_by_subscription.entry(registry.subscription_id.to_ascii_lowercase()).or_default().push(registry);
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
                Err(e) => {
                    let message = e.to_string();
                    registries
                        .iter()
                        .map(|r| (r.key.clone(), Err(AzureError::Transport(message.clone())), (*r).clone()))
                        .collect()
                }
            }
        } else {
            let gets = registries.iter().map(|r| async move {
                (r.key.clone(), azure.get_registry(&r.subscription_id, &r.resource_group, &r.name).await, (*r).clone())
            });
            join_all(gets).await
        }
    });
    for (key, result, registry) in join_all(lookups).await.into_iter().flatten() {
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
