//! Saved plans: re-reads the target of every change and compares it with the precondition the
//! plan recorded, one check per kind, before apply writes anything. A plan whose Secret,
//! service-account entry, token, scope map, namespace or role assignment changed behind
//! acrlink's back is stale and refused whole.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;

use crate::config::model::SecretReference;
use crate::kinds::{self, Found, Lists};
use crate::model::{Finding, Precondition};
use crate::plan::{CredentialPlan, Plan, Resource};
use crate::provider::kubernetes::{ClusterTarget, Kubernetes};
use crate::provider::{Azure, LiveScopeMap, LiveToken, normalize_id};

/// Why `found` does not meet `expected`, if it does not.
fn mismatch(expected: &Precondition, found: &Found) -> Option<String> {
    match (expected, found) {
        (Precondition::Absent, Found::Absent) => None,
        (Precondition::Absent, _) => Some("it was expected absent but now exists".into()),
        (_, Found::Absent) => Some("it was expected to exist but is gone".into()),
        (Precondition::Arm { version, .. }, Found::Arm { version: now }) if version == now => None,
        (Precondition::Kubernetes { uid, resource_version }, Found::Kubernetes { uid: now_uid, .. })
            if !uid.is_empty() && uid != now_uid =>
        {
            Some(format!("it was deleted and made again since the plan (uid {uid}, now {now_uid})"))
        }
        (Precondition::Kubernetes { resource_version, .. }, Found::Kubernetes { resource_version: now, .. })
            if resource_version == now =>
        {
            None
        }
        (Precondition::Kubernetes { resource_version, .. }, Found::Kubernetes { resource_version: now, .. }) => {
            Some(format!("it changed since the plan (resourceVersion {resource_version}, now {now})"))
        }
        _ => Some("it changed since the plan".into()),
    }
}

/// Tokens and scope maps of every registry the plan touches, one list each; namespaces of every
/// cluster where it creates one.
async fn lists<A: Azure, K: Kubernetes>(plan: &Plan, azure: &A, kube: &K) -> Lists {
    let (registry, namespaces) = futures::join!(registry_objects(plan, azure), namespaces(plan, kube));
    Lists { tokens: registry.0, scope_maps: registry.1, namespaces }
}

type RegistryLists =
    (BTreeMap<String, Result<Vec<LiveToken>, String>>, BTreeMap<String, Result<Vec<LiveScopeMap>, String>>);

async fn registry_objects<A: Azure>(plan: &Plan, azure: &A) -> RegistryLists {
    let mut token_registries = BTreeSet::new();
    let mut map_registries = BTreeSet::new();
    for change in &plan.changes {
        match &change.resource {
            Resource::RegistryToken { registry_id, .. } => token_registries.insert(normalize_id(registry_id)),
            Resource::ScopeMap { registry_id, .. } => map_registries.insert(normalize_id(registry_id)),
            _ => false,
        };
    }
    let tokens = join_all(token_registries.into_iter().map(|id| async move {
        let found = azure.list_tokens(&id).await.map_err(|e| e.to_string());
        (id, found)
    }));
    let maps = join_all(map_registries.into_iter().map(|id| async move {
        let found = azure.list_scope_maps(&id).await.map_err(|e| e.to_string());
        (id, found)
    }));
    let (tokens, maps) = futures::join!(tokens, maps);
    (tokens.into_iter().collect(), maps.into_iter().collect())
}

/// Namespaces of every cluster where the plan creates one, one list each.
async fn namespaces<K: Kubernetes>(plan: &Plan, kube: &K) -> BTreeMap<ClusterTarget, Result<BTreeSet<String>, String>> {
    let clusters: BTreeSet<&ClusterTarget> = plan
        .changes
        .iter()
        .filter_map(|c| match &c.resource {
            Resource::Namespace { cluster, .. } => Some(cluster),
            _ => None,
        })
        .collect();
    let lists = clusters.into_iter().map(|cluster| async move {
        let names = kube.namespaces(cluster).await.map(|list| list.into_iter().map(|n| n.name).collect());
        (cluster.clone(), names.map_err(|e| e.to_string()))
    });
    join_all(lists).await.into_iter().collect()
}

/// Every change of `plan` whose target no longer matches its precondition, as findings that
/// name the change's address. Empty when the plan may be applied.
pub async fn stale_changes<A: Azure, K: Kubernetes>(plan: &Plan, azure: &A, kube: &K) -> Vec<Finding> {
    let lists = &lists(plan, azure, kube).await;
    let checks = plan.changes.iter().map(|change| async move {
        let message = match kinds::found(change, azure, kube, lists).await {
            Ok(found) => mismatch(&change.precondition, &found)?,
            Err(error) => format!("cannot re-check it: {error}"),
        };
        Some(Finding { subject: change.address.to_string(), message, hint: None })
    });
    join_all(checks).await.into_iter().flatten().collect()
}

/// Service-principal entries whose secret source in the plan is not the one the file names:
/// apply reads secrets only where the file says, so such a plan was altered or is stale.
pub fn secret_sources(plan: &Plan, sources: &BTreeMap<String, SecretReference>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for change in &plan.changes {
        let Resource::PullSecret { entries, .. } = &change.resource else { continue };
        for entry in entries {
            let CredentialPlan::ServicePrincipal { client_id, secret_env, secret_file } = &entry.credential else {
                continue;
            };
            let planned = match (secret_env, secret_file) {
                (Some(name), _) => Some(SecretReference::Environment(name.clone())),
                (None, Some(path)) => Some(SecretReference::File(path.into())),
                (None, None) => None,
            };
            if planned.as_ref() != sources.get(client_id) {
                findings.push(Finding {
                    subject: change.address.to_string(),
                    message: format!(
                        "the client secret source of {client_id} in the plan is not the one the desired-state file names"
                    ),
                    hint: None,
                });
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_precondition_meets_only_what_it_expects() {
        let arm = Precondition::Arm { id: "x".into(), version: "v1".into() };
        let kube = Precondition::Kubernetes { uid: "u1".into(), resource_version: "7".into() };
        let cases = [
            (Precondition::Absent, Found::Absent, true),
            (Precondition::Absent, Found::Present, false),
            (arm.clone(), Found::Arm { version: "v1".into() }, true),
            (arm.clone(), Found::Arm { version: "v2".into() }, false),
            (arm, Found::Absent, false),
            (kube.clone(), Found::Kubernetes { uid: "u1".into(), resource_version: "7".into() }, true),
            (kube.clone(), Found::Kubernetes { uid: "u1".into(), resource_version: "8".into() }, false),
            (kube.clone(), Found::Kubernetes { uid: "u2".into(), resource_version: "7".into() }, false),
            (kube, Found::Absent, false),
        ];
        for (expected, found, ok) in cases {
            assert_eq!(mismatch(&expected, &found).is_none(), ok, "{expected:?} vs {found:?}");
        }
    }
}
