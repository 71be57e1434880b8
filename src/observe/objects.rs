//! Reads what pull-secret bindings depend on, in batches: per cluster a constant handful of
//! list calls (namespaces, Secrets by name, acrlink's Secrets, ServiceAccounts by name, the
//! ServiceAccounts acrlink patched), never one per namespace; per registry its admin
//! credential or its tokens and scope maps. Clusters are read concurrently.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use crate::observe::Finding;
use crate::provider::kubernetes::{
    ClusterTarget, KubeError, Kubernetes, LiveNamespace, LiveSecret, LiveServiceAccount,
};
use crate::provider::{AdminCredentials, Azure, AzureError, LiveRegistry, LiveScopeMap, LiveToken};

/// How many clusters are read at once.
const CLUSTER_CONCURRENCY: usize = 16;

#[derive(Debug, Default)]
pub struct ClusterState {
    pub namespaces: Vec<LiveNamespace>,
    /// Secrets with the names the bindings use (ours or not), and every Secret acrlink manages.
    pub secrets: Vec<LiveSecret>,
    /// ServiceAccounts with the names the bindings list, and those acrlink patched.
    pub service_accounts: Vec<LiveServiceAccount>,
}

/// What one cluster needs read.
#[derive(Debug, Clone, Default)]
pub struct ClusterQuery {
    pub secret_names: BTreeSet<String>,
    pub service_account_names: BTreeSet<String>,
}

pub fn kube_problem(cluster: &ClusterTarget, error: &KubeError) -> Finding {
    let hint = match error {
        KubeError::Forbidden { .. } => Some(format!(
            "the identity acrlink uses needs get/list/create/update/patch/delete on secrets and serviceaccounts, and list on namespaces and pods, in cluster {}, in all namespaces: acrlink lists them cluster-wide, one request per kind, so a namespaced Role is not enough (a ClusterRole and ClusterRoleBinding are); on clusters with Azure RBAC for Kubernetes that is the Azure Kubernetes Service RBAC Cluster Admin role (or a custom one) on the cluster",
            cluster.key
        )),
        KubeError::Connect { .. } => Some(match &cluster.kube_context {
            Some(context) => format!(
                "check that context {context} exists in the kubeconfig acrlink reads (KUBECONFIG) and that its server answers"
            ),
            None => "acrlink reaches clusters through AKS (listClusterUserCredential needs Azure Kubernetes Service Cluster User Role), or set kube_context for the cluster".into(),
        }),
        _ => None,
    };
    Finding {
        subject: format!("cluster[{}]", cluster.key),
        message: format!("cannot read cluster {}: {error}", cluster.key),
        hint,
    }
}

async fn read_cluster<K: Kubernetes>(
    kube: &K,
    cluster: &ClusterTarget,
    query: &ClusterQuery,
) -> Result<ClusterState, KubeError> {
    // The first call also makes the connection; the rest go concurrently on it. A cluster no
    // binding targets is only searched for acrlink's leftovers.
    let targeted = !query.secret_names.is_empty();
    let namespaces = if targeted { kube.namespaces(cluster).await? } else { Vec::new() };
    let secrets_named =
        futures::future::try_join_all(query.secret_names.iter().map(|n| kube.secrets_named(cluster, n)));
    let accounts_named = futures::future::try_join_all(
        query.service_account_names.iter().map(|n| kube.service_accounts_named(cluster, n)),
    );
    let (secrets_named, managed, accounts_named, patched) = tokio::try_join!(
        secrets_named,
        kube.managed_secrets(cluster),
        accounts_named,
        kube.patched_service_accounts(cluster)
    )?;
    let mut seen = BTreeSet::new();
    let secrets = secrets_named
        .into_iter()
        .flatten()
        .chain(managed)
        .filter(|s| seen.insert((s.namespace.clone(), s.name.clone())))
        .collect();
    let mut seen = BTreeSet::new();
    let service_accounts = accounts_named
        .into_iter()
        .flatten()
        .chain(patched)
        .filter(|a| seen.insert((a.namespace.clone(), a.name.clone())))
        .collect();
    Ok(ClusterState { namespaces, secrets, service_accounts })
}

/// The clusters' states, the problems of clusters a binding targets, and (as warnings) those
/// of clusters only searched for leftovers: one unreachable cluster that has no pull-secret
/// binding must not block the fleet.
pub async fn clusters<K: Kubernetes>(
    kube: &K,
    queries: &BTreeMap<ClusterTarget, ClusterQuery>,
) -> (BTreeMap<ClusterTarget, ClusterState>, Vec<Finding>, Vec<Finding>) {
    let results: Vec<(ClusterTarget, Result<ClusterState, KubeError>)> = futures::stream::iter(
        queries
            .iter()
            .map(|(cluster, query)| async move { (cluster.clone(), read_cluster(kube, cluster, query).await) }),
    )
    .buffer_unordered(CLUSTER_CONCURRENCY)
    .collect()
    .await;
    let mut states = BTreeMap::new();
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    for (cluster, result) in results {
        match result {
            Ok(state) => {
                states.insert(cluster, state);
            }
            Err(error) if queries.get(&cluster).is_some_and(|q| q.secret_names.is_empty()) => {
                let mut warning = kube_problem(&cluster, &error);
                warning.message.push_str(" (no pull-secret binding targets it; leftovers there are not cleaned up)");
                warnings.push(warning);
            }
            Err(error) => problems.push(kube_problem(&cluster, &error)),
        }
    }
    problems.sort_by(|a, b| a.subject.cmp(&b.subject));
    warnings.sort_by(|a, b| a.subject.cmp(&b.subject));
    (states, problems, warnings)
}

/// A registry's side of pull secrets.
#[derive(Debug, Default)]
pub struct RegistryState {
    pub admin: Option<AdminCredentials>,
    pub tokens: Vec<LiveToken>,
    pub scope_maps: Vec<LiveScopeMap>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RegistryQuery {
    pub admin: bool,
    pub tokens: bool,
    /// Read only to find acrlink's leftover tokens (no binding uses the registry's tokens now):
    /// a failure is a warning, not an error.
    pub leftovers_only: bool,
}

pub async fn registries<A: Azure>(
    azure: &A,
    registries: &BTreeMap<String, LiveRegistry>,
    queries: &BTreeMap<String, RegistryQuery>,
) -> (BTreeMap<String, RegistryState>, Vec<Finding>, Vec<Finding>) {
    let reads = queries.iter().filter_map(|(key, query)| {
        let registry = registries.get(key)?;
        Some(async move {
            let admin = async {
                if !query.admin || !registry.admin_user_enabled {
                    return Ok(None);
                }
                azure.registry_admin_credentials(&registry.id).await.map(Some)
            };
            let tokens = async {
                if !query.tokens {
                    return Ok((Vec::new(), Vec::new()));
                }
                tokio::try_join!(azure.list_tokens(&registry.id), azure.list_scope_maps(&registry.id))
            };
            let result: Result<_, AzureError> = async {
                let (admin, (tokens, scope_maps)) = tokio::try_join!(admin, tokens)?;
                Ok(RegistryState { admin, tokens, scope_maps })
            }
            .await;
            (key.clone(), result)
        })
    });
    let results = futures::future::join_all(reads).await;
    let mut states = BTreeMap::new();
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    for (key, result) in results {
        match result {
            Ok(state) => {
                states.insert(key, state);
            }
            Err(error) if queries.get(&key).is_some_and(|q| q.leftovers_only) => warnings.push(Finding {
                subject: format!("registry[{key}]"),
                message: format!(
                    "cannot list the tokens of registry {key} to clean up acrlink's leftovers there: {error}"
                ),
                hint: None,
            }),
            Err(error) => {
                let hint = match &error {
                    AzureError::AuthorizationFailed { action, .. } => Some(format!(
                        "the identity running acrlink needs {action} on registry {key} (Contributor, or a custom role)"
                    )),
                    _ => None,
                };
                problems.push(Finding {
                    subject: format!("registry[{key}]"),
                    message: format!("cannot read the pull credentials of registry {key}: {error}"),
                    hint,
                });
            }
        }
    }
    (states, problems, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(context: Option<&str>) -> ClusterTarget {
        ClusterTarget { key: "aks1".into(), id: "/x/aks1".into(), kube_context: context.map(str::to_string) }
    }

    #[test]
    fn connection_hints_fit_how_the_cluster_is_reached() {
        let refused = KubeError::Connect { cluster: "aks1".into(), message: "connection refused".into() };
        let through_aks = kube_problem(&target(None), &refused).hint.unwrap_or_default();
        assert!(through_aks.contains("or set kube_context"), "{through_aks}");
        let by_context = kube_problem(&target(Some("prod-admin")), &refused).hint.unwrap_or_default();
        assert!(!by_context.contains("set kube_context"), "it is set already: {by_context}");
        assert!(by_context.contains("prod-admin") && by_context.contains("KUBECONFIG"), "{by_context}");
    }

    #[test]
    fn the_forbidden_hint_says_the_rights_are_needed_cluster_wide() {
        let denied = KubeError::Forbidden { message: "secrets is forbidden".into() };
        let hint = kube_problem(&target(None), &denied).hint.unwrap_or_default();
        assert!(hint.contains("all namespaces") && hint.contains("ClusterRole"), "{hint}");
    }
}
