//! One cluster's object store: every object as JSON under (resource, namespace, name), a
//! cluster-wide revision counter standing in for etcd's (each write gets the next one as its
//! `resourceVersion`), and the bootstrap objects a new AKS cluster has.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::broadcast;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::resources::{CONFIG_MAPS, NAMESPACES, ResourceType, SERVICE_ACCOUNTS};

type Key = (&'static str, String, String);

/// One write, as watches report it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub revision: u64,
    pub plural: &'static str,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub object: Value,
}

/// How many past writes a watch may resume from (older resourceVersions get 410 Expired).
const HISTORY: usize = 4096;

pub(crate) struct Store {
    pub revision: u64,
    objects: BTreeMap<Key, Value>,
    ca_pem: String,
    /// The kubelet's memory of each Pod (by uid): pulls, back-off, what runs.
    pub kubelet: HashMap<String, crate::kubelet::PodRuntime>,
    /// Recent writes, oldest first, for watches that resume from a resourceVersion.
    pub history: VecDeque<Arc<Change>>,
    /// Live writes for open watches.
    pub changes: broadcast::Sender<Arc<Change>>,
    /// Namespaces whose controller-made objects are still to come, and when.
    pub pending_namespaces: Vec<(String, std::time::Instant)>,
}

/// Kubernetes' timestamp form: RFC 3339 in UTC with whole seconds.
pub(crate) fn k8s_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

pub(crate) fn now() -> String {
    k8s_time(OffsetDateTime::now_utc())
}

impl Store {
    /// A fresh cluster: the four system namespaces, each with its `default` ServiceAccount
    /// and `kube-root-ca.crt` ConfigMap.
    pub fn new(ca_pem: &str) -> Store {
        let mut store = Store {
            revision: 1,
            objects: BTreeMap::new(),
            ca_pem: ca_pem.to_string(),
            kubelet: HashMap::new(),
            history: VecDeque::new(),
            changes: broadcast::channel(1024).0,
            pending_namespaces: Vec::new(),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            store.insert_new(NAMESPACES, "", ns, namespace_defaults(object));
            store.namespace_created(ns);
        }
        store
    }

    pub fn get(&self, res: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(res.plural, namespace.to_string(), name.to_string()))
    }

    /// Objects of one type, in one namespace or (None) all, in name order.
    pub fn list(&self, res: &ResourceType, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((plural, ns, _), _)| *plural == res.plural && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .collect()
    }

    /// Stores `object`, giving it the next resourceVersion; returns what was stored.
    pub fn put(&mut self, res: &ResourceType, namespace: &str, name: &str, mut object: Value) -> Value {
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        let previous = self.objects.insert((res.plural, namespace.to_string(), name.to_string()), object.clone());
        self.record(res.plural, namespace, if previous.is_some() { "MODIFIED" } else { "ADDED" }, &object, res.kind);
        object
    }

    pub fn remove(&mut self, res: &ResourceType, namespace: &str, name: &str) -> Option<Value> {
        let mut removed = self.objects.remove(&(res.plural, namespace.to_string(), name.to_string()))?;
        self.revision += 1;
        removed["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.record(res.plural, namespace, "DELETED", &removed, res.kind);
        Some(removed)
    }

    /// Every object's (resource, namespace, name), in key order.
    pub fn keys(&self) -> Vec<(&'static ResourceType, String, String)> {
        self.objects
            .keys()
            .filter_map(|(plural, ns, name)| {
                super::resources::by_plural(plural).map(|res| (res, ns.clone(), name.clone()))
            })
            .collect()
    }

    fn record(&mut self, plural: &'static str, namespace: &str, kind: &'static str, object: &Value, object_kind: &str) {
        let mut object = object.clone();
        object["kind"] = json!(object_kind);
        let api_version = super::resources::by_plural(plural).map(ResourceType::api_version).unwrap_or("v1");
        object["apiVersion"] = json!(api_version);
        let change =
            Arc::new(Change { revision: self.revision, plural, namespace: namespace.to_string(), kind, object });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(change.clone());
        // Nobody listening is fine.
        let _ = self.changes.send(change);
    }

    /// Creates an object with server-set metadata (uid, creation time, resourceVersion).
    pub fn insert_new(&mut self, res: &ResourceType, namespace: &str, name: &str, mut object: Value) -> Value {
        stamp_new(&mut object);
        self.put(res, namespace, name, object)
    }

    /// What controllers add to a new namespace: the `default` ServiceAccount (no token Secret,
    /// as since 1.24) and the `kube-root-ca.crt` ConfigMap.
    pub fn namespace_created(&mut self, namespace: &str) {
        if self.get(SERVICE_ACCOUNTS, namespace, "default").is_none() {
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}});
            self.insert_new(SERVICE_ACCOUNTS, namespace, "default", sa);
        }
        if self.get(CONFIG_MAPS, namespace, "kube-root-ca.crt").is_none() {
            let cm = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-root-ca.crt", "namespace": namespace,
                             "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                "data": {"ca.crt": self.ca_pem},
            });
            self.insert_new(CONFIG_MAPS, namespace, "kube-root-ca.crt", cm);
        }
    }
}

/// Sets the metadata the server owns on a new object.
pub(crate) fn stamp_new(object: &mut Value) {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    let meta = &mut object["metadata"];
    meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
    meta["creationTimestamp"] = json!(now());
}

/// A namespace as the server completes it: the name label, the `kubernetes` finalizer and
/// phase Active.
pub(crate) fn namespace_defaults(mut object: Value) -> Value {
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    if !object["metadata"]["labels"].is_object() {
        object["metadata"]["labels"] = json!({});
    }
    object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    object["spec"] = json!({"finalizers": ["kubernetes"]});
    object["status"] = json!({"phase": "Active"});
    object
}
