//! An in-memory `Kubernetes` for unit tests of the pull-secret stages: resourceVersions,
//! uid preconditions, JSON-patch `test`, AlreadyExists; counts calls per cluster.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::kubernetes::{
    ClusterTarget, KubeError, Kubernetes, LiveNamespace, LivePod, LiveSecret, LiveServiceAccount, ProbePod,
    PullOutcome, SecretWrite,
};
use crate::ownership::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, PATCHED_LABEL};
use crate::sensitive::Sensitive;

#[derive(Debug, Clone, Default)]
pub struct FakeCluster {
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<(String, String), LiveSecret>,
    pub service_accounts: BTreeMap<(String, String), LiveServiceAccount>,
    pub pods: Vec<LivePod>,
    /// Namespaces being deleted (waiting for finalizers): creates in them are refused.
    pub terminating: std::collections::BTreeSet<String>,
}

#[derive(Default)]
pub struct FakeKube {
    pub clusters: Mutex<BTreeMap<String, FakeCluster>>,
    pub calls: Mutex<BTreeMap<String, u64>>,
    version: AtomicU64,
    /// Secret replaces to refuse with a resourceVersion conflict, as if another writer won.
    pub replace_conflicts: AtomicU64,
    /// ServiceAccount patches that meet another writer first (its resourceVersion moves on).
    pub patch_conflicts: AtomicU64,
}

impl FakeKube {
    pub fn with_cluster(self, key: &str, namespaces: &[&str]) -> Self {
        let mut cluster = FakeCluster::default();
        for ns in namespaces {
            cluster.namespaces.insert(ns.to_string(), BTreeMap::new());
            cluster.service_accounts.insert(
                (ns.to_string(), "default".into()),
                LiveServiceAccount {
                    uid: format!("uid-sa-{ns}"),
                    namespace: ns.to_string(),
                    name: "default".into(),
                    resource_version: "1".into(),
                    image_pull_secrets: None,
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                },
            );
        }
        self.clusters.lock().unwrap().insert(key.to_string(), cluster);
        self
    }

    pub fn secret(&self, cluster: &str, namespace: &str, name: &str) -> Option<LiveSecret> {
        self.clusters.lock().unwrap().get(cluster)?.secrets.get(&(namespace.into(), name.into())).cloned()
    }

    pub fn put_secret(&self, cluster: &str, secret: LiveSecret) {
        let mut clusters = self.clusters.lock().unwrap();
        let c = clusters.get_mut(cluster).expect("cluster");
        c.secrets.insert((secret.namespace.clone(), secret.name.clone()), secret);
    }

    pub fn service_account(&self, cluster: &str, namespace: &str, name: &str) -> Option<LiveServiceAccount> {
        self.clusters.lock().unwrap().get(cluster)?.service_accounts.get(&(namespace.into(), name.into())).cloned()
    }

    pub fn put_service_account(&self, cluster: &str, account: LiveServiceAccount) {
        let mut clusters = self.clusters.lock().unwrap();
        let c = clusters.get_mut(cluster).expect("cluster");
        c.service_accounts.insert((account.namespace.clone(), account.name.clone()), account);
    }

    pub fn calls_for(&self, cluster: &str) -> u64 {
        self.calls.lock().unwrap().get(cluster).copied().unwrap_or_default()
    }

    fn next_version(&self) -> String {
        (self.version.fetch_add(1, Ordering::Relaxed) + 100).to_string()
    }

    fn with<T>(
        &self,
        cluster: &ClusterTarget,
        run: impl FnOnce(&mut FakeCluster) -> Result<T, KubeError>,
    ) -> Result<T, KubeError> {
        *self.calls.lock().unwrap().entry(cluster.key.clone()).or_default() += 1;
        let mut clusters = self.clusters.lock().unwrap();
        let state = clusters
            .get_mut(&cluster.key)
            .ok_or_else(|| KubeError::Connect { cluster: cluster.key.clone(), message: "no such cluster".into() })?;
        run(state)
    }

    fn stored(&self, secret: &SecretWrite, uid: String) -> LiveSecret {
        LiveSecret {
            namespace: secret.namespace.clone(),
            name: secret.name.clone(),
            uid,
            resource_version: self.next_version(),
            type_: super::kubernetes::DOCKER_CONFIG_JSON_TYPE.into(),
            immutable: false,
            labels: secret.labels.clone(),
            annotations: secret.annotations.clone(),
            docker_config: Some(Sensitive::new(secret.docker_config_json.expose().as_bytes().to_vec())),
        }
    }
}

fn account_json(account: &LiveServiceAccount) -> serde_json::Value {
    let mut value = serde_json::json!({
        "metadata": {"resourceVersion": account.resource_version, "labels": account.labels, "annotations": account.annotations},
    });
    if let Some(list) = &account.image_pull_secrets {
        value["imagePullSecrets"] = list.iter().map(|n| serde_json::json!({"name": n})).collect();
    }
    value
}

/// RFC 6902 over the few paths acrlink patches (whole members, `/-` appends).
fn apply_patch(document: &mut serde_json::Value, patch: &serde_json::Value) -> Result<(), KubeError> {
    for op in patch.as_array().into_iter().flatten() {
        let path = op["path"].as_str().unwrap_or_default();
        let (parent_path, last) = path.rsplit_once('/').unwrap_or(("", path));
        match op["op"].as_str().unwrap_or_default() {
            "test" => {
                // A real kube-apiserver answers 422 Invalid with exactly this message and empty
                // details; nothing in the body says which op failed.
                if document.pointer(path) != Some(&op["value"]) {
                    return Err(KubeError::Invalid {
                        message: "the server rejected our request due to an error in our request".into(),
                    });
                }
            }
            "add" | "replace" => {
                let parent = document
                    .pointer_mut(parent_path)
                    .ok_or_else(|| KubeError::Invalid { message: format!("no parent for {path}") })?;
                match (parent, last) {
                    (serde_json::Value::Array(list), "-") => list.push(op["value"].clone()),
                    (serde_json::Value::Object(map), key) => {
                        map.insert(key.replace("~1", "/").replace("~0", "~"), op["value"].clone());
                    }
                    _ => return Err(KubeError::Invalid { message: format!("cannot add at {path}") }),
                }
            }
            "remove" => {
                if let Some(serde_json::Value::Object(map)) = document.pointer_mut(parent_path) {
                    map.remove(last);
                }
            }
            other => return Err(KubeError::Invalid { message: format!("unsupported op {other}") }),
        }
    }
    Ok(())
}

fn strings(value: &serde_json::Value) -> BTreeMap<String, String> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

impl Kubernetes for FakeKube {
    async fn namespaces(&self, cluster: &ClusterTarget) -> Result<Vec<LiveNamespace>, KubeError> {
        self.with(cluster, |c| {
            Ok(c.namespaces
                .iter()
                .map(|(name, labels)| LiveNamespace { name: name.clone(), labels: labels.clone(), terminating: false })
                .collect())
        })
    }

    async fn secrets_named(&self, cluster: &ClusterTarget, name: &str) -> Result<Vec<LiveSecret>, KubeError> {
        self.with(cluster, |c| Ok(c.secrets.values().filter(|s| s.name == name).cloned().collect()))
    }

    async fn managed_secrets(&self, cluster: &ClusterTarget) -> Result<Vec<LiveSecret>, KubeError> {
        self.with(cluster, |c| {
            Ok(c.secrets
                .values()
                .filter(|s| s.labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE))
                .cloned()
                .collect())
        })
    }

    async fn pull_secrets(&self, cluster: &ClusterTarget) -> Result<Vec<LiveSecret>, KubeError> {
        self.with(cluster, |c| {
            Ok(c.secrets
                .values()
                .filter(|s| s.type_ == crate::provider::kubernetes::DOCKER_CONFIG_JSON_TYPE)
                .cloned()
                .collect())
        })
    }

    async fn service_accounts(&self, cluster: &ClusterTarget) -> Result<Vec<LiveServiceAccount>, KubeError> {
        self.with(cluster, |c| Ok(c.service_accounts.values().cloned().collect()))
    }

    async fn service_accounts_named(
        &self,
        cluster: &ClusterTarget,
        name: &str,
    ) -> Result<Vec<LiveServiceAccount>, KubeError> {
        self.with(cluster, |c| Ok(c.service_accounts.values().filter(|a| a.name == name).cloned().collect()))
    }

    async fn patched_service_accounts(&self, cluster: &ClusterTarget) -> Result<Vec<LiveServiceAccount>, KubeError> {
        self.with(cluster, |c| {
            Ok(c.service_accounts.values().filter(|a| a.labels.contains_key(PATCHED_LABEL)).cloned().collect())
        })
    }

    async fn pods(&self, cluster: &ClusterTarget, namespace: &str) -> Result<Vec<LivePod>, KubeError> {
        self.with(cluster, |c| Ok(c.pods.iter().filter(|p| p.namespace == namespace).cloned().collect()))
    }

    async fn get_secret(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LiveSecret>, KubeError> {
        self.with(cluster, |c| Ok(c.secrets.get(&(namespace.into(), name.into())).cloned()))
    }

    async fn get_service_account(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LiveServiceAccount>, KubeError> {
        self.with(cluster, |c| Ok(c.service_accounts.get(&(namespace.into(), name.into())).cloned()))
    }

    async fn create_namespace(&self, cluster: &ClusterTarget, name: &str) -> Result<(), KubeError> {
        self.with(cluster, |c| {
            if c.namespaces.contains_key(name) {
                return Err(KubeError::Conflict { message: format!("namespaces \"{name}\" already exists") });
            }
            c.namespaces.insert(name.into(), BTreeMap::new());
            c.service_accounts.insert(
                (name.into(), "default".into()),
                LiveServiceAccount {
                    uid: format!("uid-sa-{name}"),
                    namespace: name.into(),
                    name: "default".into(),
                    resource_version: "1".into(),
                    image_pull_secrets: None,
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                },
            );
            Ok(())
        })
    }

    async fn create_secret(&self, cluster: &ClusterTarget, secret: &SecretWrite) -> Result<(), KubeError> {
        let stored = self.stored(secret, format!("uid-{}", self.next_version()));
        self.with(cluster, |c| {
            if !c.namespaces.contains_key(&secret.namespace) {
                return Err(KubeError::NotFound { message: format!("namespaces \"{}\" not found", secret.namespace) });
            }
            if c.terminating.contains(&secret.namespace) {
                return Err(KubeError::NamespaceTerminating {
                    cluster: cluster.key.clone(),
                    namespace: secret.namespace.clone(),
                });
            }
            let key = (secret.namespace.clone(), secret.name.clone());
            if c.secrets.contains_key(&key) {
                return Err(KubeError::Conflict { message: format!("secrets \"{}\" already exists", secret.name) });
            }
            c.secrets.insert(key, stored);
            Ok(())
        })
    }

    async fn replace_secret(
        &self,
        cluster: &ClusterTarget,
        secret: &SecretWrite,
        resource_version: &str,
    ) -> Result<(), KubeError> {
        let version = self.next_version();
        let conflict =
            self.replace_conflicts.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
        self.with(cluster, |c| {
            let key = (secret.namespace.clone(), secret.name.clone());
            let live = c.secrets.get_mut(&key).ok_or_else(|| KubeError::NotFound { message: "gone".into() })?;
            if conflict {
                live.resource_version = format!("{version}-other-writer");
                return Err(KubeError::Conflict { message: "the object has been modified".into() });
            }
            if live.resource_version != resource_version {
                return Err(KubeError::Conflict { message: "the object has been modified".into() });
            }
            if live.type_ != super::kubernetes::DOCKER_CONFIG_JSON_TYPE {
                return Err(KubeError::Invalid { message: "type: Invalid value: field is immutable".into() });
            }
            if live.immutable {
                return Err(KubeError::Invalid {
                    message: format!(
                        "Secret \"{}\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
                        secret.name
                    ),
                });
            }
            live.resource_version = version;
            live.labels = secret.labels.clone();
            live.annotations = secret.annotations.clone();
            live.docker_config = Some(Sensitive::new(secret.docker_config_json.expose().as_bytes().to_vec()));
            Ok(())
        })
    }

    async fn delete_secret(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<(), KubeError> {
        self.with(cluster, |c| {
            let key = (namespace.to_string(), name.to_string());
            match c.secrets.get(&key) {
                Some(live) if !uid.is_empty() && live.uid != uid => {
                    Err(KubeError::Conflict { message: "Precondition failed: UID in precondition".into() })
                }
                Some(_) => {
                    c.secrets.remove(&key);
                    Ok(())
                }
                None => Ok(()),
            }
        })
    }

    /// A probe Pod is kept as a Pod whose phase is what the fake's kubelet does: it pulls.
    async fn create_probe_pod(&self, cluster: &ClusterTarget, pod: &ProbePod) -> Result<(), KubeError> {
        self.with(cluster, |c| {
            c.pods.push(LivePod {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                service_account: pod.service_account.clone().unwrap_or_else(|| "default".into()),
                image_pull_secrets: Vec::new(),
                phase: "Running".into(),
            });
            Ok(())
        })
    }

    async fn watch_pull(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        _wait: std::time::Duration,
        _pulled_only: bool,
    ) -> Result<PullOutcome, KubeError> {
        self.with(cluster, |c| {
            let pod = c.pods.iter().find(|p| p.namespace == namespace && p.name == name);
            Ok(match pod {
                Some(p) if p.phase == "Running" => PullOutcome::Pulled,
                Some(_) => PullOutcome::Pending,
                None => PullOutcome::Failed { reason: "Deleted".into(), message: String::new() },
            })
        })
    }

    async fn delete_pod(&self, cluster: &ClusterTarget, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.with(cluster, |c| {
            c.pods.retain(|p| !(p.namespace == namespace && p.name == name));
            Ok(())
        })
    }

    /// The fake keeps no labels: probe Pods are known by acrlink's name prefix.
    async fn pods_labelled(
        &self,
        cluster: &ClusterTarget,
        _selector: &str,
    ) -> Result<Vec<(String, String)>, KubeError> {
        self.with(cluster, |c| {
            let probes = c.pods.iter().filter(|p| p.name.starts_with("acrlink-verify"));
            Ok(probes.map(|p| (p.namespace.clone(), p.name.clone())).collect())
        })
    }

    async fn patch_service_account(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<(), KubeError> {
        let version = self.next_version();
        let raced =
            self.patch_conflicts.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
        let other_writer = self.next_version();
        self.with(cluster, |c| {
            let account = c
                .service_accounts
                .get_mut(&(namespace.to_string(), name.to_string()))
                .ok_or_else(|| KubeError::NotFound { message: "no such service account".into() })?;
            if raced {
                account.resource_version = other_writer;
            }
            let mut document = account_json(account);
            apply_patch(&mut document, patch)?;
            account.image_pull_secrets = document["imagePullSecrets"]
                .as_array()
                .map(|list| list.iter().filter_map(|r| r["name"].as_str().map(str::to_string)).collect());
            account.labels = strings(&document["metadata"]["labels"]);
            account.annotations = strings(&document["metadata"]["annotations"]);
            account.resource_version = version;
            Ok(())
        })
    }
}
