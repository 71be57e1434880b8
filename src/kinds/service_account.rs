//! The pull-secret entries of ServiceAccounts' `imagePullSecrets`: acrlink adds the Secrets a
//! binding names and removes only the entries it recorded as its own (`crate::ownership`), with
//! a JSON patch guarded by `test` ops so another writer's change is never lost.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Diff, Done, Failed, Found, Inputs};
use crate::config::model::Owner;
use crate::model::{Address, Finding, InPlace, Precondition, Reason, State};
use crate::ownership::{self, PATCHED_LABEL, patched_annotation};
use crate::plan::{Action, Change, Resource, Unchanged};
use crate::provider::kubernetes::{ClusterTarget, KubeError, Kubernetes, LiveServiceAccount};

/// A service account made moments from now (with its namespace) is expected absent.
pub fn expect_service_account(live: &LiveServiceAccount) -> Precondition {
    if live.resource_version.is_empty() {
        return Precondition::Absent;
    }
    Precondition::Kubernetes { uid: live.uid.clone(), resource_version: live.resource_version.clone() }
}

type AccountKey = (ClusterTarget, String, String);

/// Every ServiceAccount a binding names or this owner patched before.
fn account_keys(inputs: &Inputs<'_>) -> BTreeSet<AccountKey> {
    let mut keys: BTreeSet<AccountKey> = inputs.desired.service_accounts.keys().cloned().collect();
    for (cluster, state) in inputs.clusters {
        for account in &state.service_accounts {
            if ownership::service_account_patched_by(&account.annotations, inputs.owner) {
                keys.insert((cluster.clone(), account.namespace.clone(), account.name.clone()));
            }
        }
    }
    keys
}

/// The live account, or the `default` one the controller will make in a namespace acrlink
/// creates this run.
fn live_account(
    inputs: &Inputs<'_>,
    index: &HashMap<(&ClusterTarget, &str, &str), &LiveServiceAccount>,
    (cluster, namespace, name): &AccountKey,
) -> Option<LiveServiceAccount> {
    if let Some(live) = index.get(&(cluster, namespace.as_str(), name.as_str())) {
        return Some((*live).clone());
    }
    let namespace_created = inputs.desired.namespaces.contains(&(cluster.clone(), namespace.clone()));
    (namespace_created && name == "default").then(|| LiveServiceAccount {
        uid: String::new(),
        namespace: namespace.clone(),
        name: name.clone(),
        resource_version: String::new(),
        image_pull_secrets: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    })
}

pub(super) fn diff(inputs: &Inputs<'_>, out: &mut Diff) {
    let index: HashMap<(&ClusterTarget, &str, &str), &LiveServiceAccount> = inputs
        .clusters
        .iter()
        .flat_map(|(cluster, state)| {
            state.service_accounts.iter().map(move |a| ((cluster, a.namespace.as_str(), a.name.as_str()), a))
        })
        .collect();
    // Secrets that will exist after this run, by address: an account names only those.
    let planned: HashSet<Address> = out
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .map(|c| c.address.clone())
        .chain(out.unchanged.iter().map(|u| u.address.clone()))
        .collect();
    for key in account_keys(inputs) {
        service_account(inputs, &key, live_account(inputs, &index, &key), &planned, out);
    }
}

fn service_account(
    inputs: &Inputs<'_>,
    key: &AccountKey,
    live: Option<LiveServiceAccount>,
    planned: &HashSet<Address>,
    out: &mut Diff,
) {
    let (cluster, namespace, name) = key;
    let address = Address::service_account(&cluster.key, namespace, name);
    let wanted = inputs.desired.service_accounts.get(key).cloned().unwrap_or_default();
    let Some(live) = live else {
        if !wanted.is_empty() {
            out.warnings.push(Finding {
                subject: address.to_string(),
                message: format!(
                    "service account {name} does not exist in {}/{namespace}; it is not patched",
                    cluster.key
                ),
                hint: Some("create it, or remove it from the binding's service_accounts".into()),
            });
        }
        return;
    };
    let listed: BTreeSet<String> = live.image_pull_secrets.clone().unwrap_or_default().into_iter().collect();
    let ours = ownership::recorded_entries(&live.annotations, inputs.owner);
    // Only Secrets that will exist are added: a foreign Secret left alone is not named.
    let add: Vec<String> = wanted
        .iter()
        .filter(|s| !listed.contains(*s))
        .filter(|s| {
            let secret_key = (cluster.clone(), namespace.clone(), (*s).clone());
            planned.contains(&Address::secret(&cluster.key, namespace, s))
                || !inputs.desired.secrets.contains_key(&secret_key)
        })
        .cloned()
        .collect();
    let remove: Vec<String> = ours.iter().filter(|s| !wanted.contains(*s) && listed.contains(*s)).cloned().collect();
    if add.is_empty() && remove.is_empty() {
        if !wanted.is_empty() {
            let names = wanted.iter().cloned().collect();
            out.unchanged.push(Unchanged { address, reason: InPlace::ServiceAccountLists { names } });
        }
        return;
    }
    let mut depends_on: Vec<Address> = add.iter().map(|s| Address::secret(&cluster.key, namespace, s)).collect();
    if inputs.desired.namespaces.contains(&(cluster.clone(), namespace.clone())) {
        depends_on.push(Address::namespace(&cluster.key, namespace));
    }
    order_secret_deletes_after(out, &cluster.key, namespace, &remove, &address);
    let before = live.image_pull_secrets.clone().unwrap_or_default();
    let mut after: Vec<String> = before.iter().filter(|s| !remove.contains(*s)).cloned().collect();
    after.extend(add.iter().cloned());
    let change = Change {
        address,
        action: Action::Update,
        reason: Reason::ServiceAccountEntries { add: add.clone(), remove: remove.clone() },
        precondition: expect_service_account(&live),
        depends_on,
        before: None,
        after: None,
        resource: Resource::ServiceAccountPullSecrets {
            cluster: cluster.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            add,
            remove,
        },
    };
    out.changes.push(change.shifting(
        State::ServiceAccount { image_pull_secrets: before },
        State::ServiceAccount { image_pull_secrets: after },
    ));
}

/// A Secret this account stops naming is deleted only once the account no longer names it:
/// were the patch to fail, pods admitted later would name a Secret that is gone.
fn order_secret_deletes_after(out: &mut Diff, cluster: &str, namespace: &str, removed: &[String], account: &Address) {
    for name in removed {
        let secret = Address::secret(cluster, namespace, name);
        for change in out.changes.iter_mut().filter(|c| c.address == secret && c.action == Action::Delete) {
            change.depends_on.push(account.clone());
        }
    }
}

/// The account a service-account change patches.
pub(super) struct Target<'a> {
    pub cluster: &'a ClusterTarget,
    pub namespace: &'a str,
    pub name: &'a str,
}

pub(super) async fn apply<K: Kubernetes>(
    account: &Target<'_>,
    add: &[String],
    remove: &[String],
    kube: &K,
    owner: &Owner,
) -> Result<Done, Failed> {
    let message = patch(account, add, remove, kube, owner).await?;
    Ok(Done::as_planned(Action::Update, message))
}

async fn patch<K: Kubernetes>(
    account: &Target<'_>,
    add: &[String],
    remove: &[String],
    kube: &K,
    owner: &Owner,
) -> Result<String, Failed> {
    let Target { cluster, namespace, name } = *account;
    let annotation = patched_annotation(owner);
    let place = format!("{}/{namespace}", cluster.key);
    // Another writer between our read and our patch fails the `test` op; read again and retry.
    // A namespace created moments ago gets its `default` ServiceAccount from the controller
    // manager a second or two later; wait for it that long.
    let mut missing_since: Option<std::time::Instant> = None;
    let mut conflicts = 0;
    let mut last_answer = String::new();
    while conflicts < 5 {
        let Some(live) = kube.get_service_account(cluster, namespace, name).await? else {
            let since = *missing_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < std::time::Duration::from_secs(10) {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                continue;
            }
            return Err(Failed {
                message: format!("service account {name} does not exist in {place}"),
                hint: Some("create it, or remove it from the binding's service_accounts".into()),
            });
        };
        let current = live.image_pull_secrets.clone().unwrap_or_default();
        let mut next: Vec<String> = current.iter().filter(|s| !remove.contains(s)).cloned().collect();
        for secret in add {
            if !next.contains(secret) {
                next.push(secret.clone());
            }
        }
        let mut ours: Vec<String> = ownership::recorded_entries(&live.annotations, owner).into_iter().collect();
        ours.retain(|s| !remove.contains(s));
        for secret in add {
            if !ours.contains(secret) && !current.contains(secret) {
                ours.push(secret.clone());
            }
        }
        let references = |names: &[String]| -> serde_json::Value {
            names.iter().map(|n| serde_json::json!({ "name": n })).collect()
        };
        let mut patch = vec![
            serde_json::json!({"op": "test", "path": "/metadata/resourceVersion", "value": live.resource_version}),
        ];
        if let Some(list) = &live.image_pull_secrets {
            patch.push(serde_json::json!({"op": "test", "path": "/imagePullSecrets", "value": references(list)}));
        }
        patch.push(serde_json::json!({"op": "add", "path": "/imagePullSecrets", "value": references(&next)}));
        let mut annotations = live.annotations.clone();
        annotations.insert(annotation.clone(), ownership::record_entries(&ours));
        let mut labels = live.labels.clone();
        labels.insert(PATCHED_LABEL.into(), "true".into());
        if ours.is_empty() {
            annotations.remove(&annotation);
            // Other owners may still have entries here; the label goes with the last of them.
            if !ownership::any_owner_recorded(&annotations) {
                labels.remove(PATCHED_LABEL);
            }
        }
        patch.push(serde_json::json!({"op": "add", "path": "/metadata/annotations", "value": annotations}));
        patch.push(serde_json::json!({"op": "add", "path": "/metadata/labels", "value": labels}));
        match kube.patch_service_account(cluster, namespace, name, &serde_json::Value::Array(patch)).await {
            Ok(()) => {}
            // The patch is guarded by `test` ops on resourceVersion and the list: a 422 Invalid
            // means one no longer holds (another writer), as does a 409. Read again and retry.
            Err(error @ (KubeError::Conflict { .. } | KubeError::Invalid { .. })) => {
                conflicts += 1;
                last_answer = error.to_string();
                continue;
            }
            Err(error) => return Err(error.into()),
        }
        let mut summary = match (add.is_empty(), remove.is_empty()) {
            (false, true) => format!("service account {name} in {place} now names {}", add.join(", ")),
            (true, false) => format!("service account {name} in {place} no longer names {}", remove.join(", ")),
            _ => format!("service account {name} in {place}: +{} -{}", add.join(","), remove.join(",")),
        };
        if !add.is_empty() {
            let pods = match kube.pods(cluster, namespace).await {
                Ok(pods) => pods,
                Err(error) => {
                    summary.push_str(&format!("; could not list its pods to tell which need a restart ({error})"));
                    return Ok(summary);
                }
            };
            let stale: Vec<String> = pods
                .into_iter()
                .filter(|p| p.service_account == name && p.phase == "Running")
                .filter(|p| add.iter().any(|s| !p.image_pull_secrets.contains(s)))
                .map(|p| p.name)
                .collect();
            if !stale.is_empty() {
                summary.push_str(&format!(
                    "; {} running pod(s) were admitted before and need a restart to use it: {}",
                    stale.len(),
                    stale.join(", ")
                ));
            }
        }
        return Ok(summary);
    }
    Err(Failed {
        message: format!(
            "service account {name} in {place} kept changing under acrlink; gave up after 5 tries (last answer: {last_answer})"
        ),
        hint: Some("run apply again".into()),
    })
}

pub(super) async fn found<K: Kubernetes>(
    cluster: &ClusterTarget,
    namespace: &str,
    name: &str,
    kube: &K,
) -> Result<Found, String> {
    let live = kube.get_service_account(cluster, namespace, name).await.map_err(|e| e.to_string())?;
    Ok(live.map_or(Found::Absent, |a| Found::Kubernetes { uid: a.uid, resource_version: a.resource_version }))
}
