//! The kubelets of every emulated cluster: a loop that schedules new Pods onto a node, pulls
//! their images the way AKS does (the Pod's imagePullSecrets, then the cluster's kubelet
//! identity through Azure RBAC on the registry), and moves them to Running, or to
//! `ErrImagePull` / `ImagePullBackOff` with kubelet-like Events, retrying with exponential
//! back-off so that a later grant (after the RBAC propagation delay) lets the Pod start.
//! Images of registries the world does not emulate (docker.io, mcr.microsoft.com, ...) pull.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::kube::resources::{EVENTS, PODS, SECRETS};
use crate::kube::store::{Store, now};
use crate::registry::access::{self, Who};
use crate::registry::image::ImageRef;
use crate::registry::{Lookup, lookup};
use crate::server::Shared;
use crate::state::{ClusterRec, State};

const TICK: Duration = Duration::from_millis(50);

/// What the kubelet remembers about one Pod.
#[derive(Debug, Clone)]
pub(crate) struct PodRuntime {
    next_attempt: Instant,
    /// When a failed pull turns into ImagePullBackOff.
    show_backoff_at: Option<Instant>,
    backoff: Duration,
    /// The images that run, once the Pod is Running.
    running: Option<Vec<String>>,
}

pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticker.tick() => tick(&shared),
        }
    }
}

fn tick(shared: &Shared) {
    let mut state = shared.state();
    // The stores are taken out so the pull checks can read the rest of the state.
    let mut stores = std::mem::take(&mut state.kube);
    for (key, store) in &mut stores {
        if let Some(cluster) = state.clusters.get(key) {
            sync_cluster(shared, &state, cluster, store);
        }
    }
    state.kube = stores;
}

fn images(pod: &Value) -> Vec<(String, String)> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (c["name"].as_str().unwrap_or_default().to_string(), c["image"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn sync_cluster(shared: &Shared, state: &State, cluster: &ClusterRec, store: &mut Store) {
    // The deployment and replica-set controllers: Pods for the ReplicaSets, statuses.
    crate::kube::apps::reconcile(store);
    // The controller manager's part: objects every namespace gets, once their time has come.
    let now_instant = Instant::now();
    let (due, later): (Vec<_>, Vec<_>) =
        std::mem::take(&mut store.pending_namespaces).into_iter().partition(|(_, at)| *at <= now_instant);
    store.pending_namespaces = later;
    for (namespace, _) in due {
        if store.get(crate::kube::resources::NAMESPACES, "", &namespace).is_some() {
            store.namespace_created(&namespace);
        }
    }
    let settings = state.settings.kubelet.clone();
    let pods: Vec<Value> = store.list(PODS, None).into_iter().cloned().collect();
    let alive: HashSet<String> =
        pods.iter().filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_string)).collect();
    store.kubelet.retain(|uid, _| alive.contains(uid));
    for pod in pods {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        let runtime = store.kubelet.entry(uid.clone()).or_insert_with(|| PodRuntime {
            next_attempt: now_instant + Duration::from_millis(settings.pull_delay_ms),
            show_backoff_at: None,
            backoff: Duration::from_millis(settings.backoff_initial_ms),
            running: None,
        });
        let wanted: Vec<String> = images(&pod).into_iter().map(|(_, i)| i).collect();
        if runtime.running.as_ref() == Some(&wanted) {
            continue;
        }
        let mut runtime = runtime.clone();
        if pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
            schedule(store, cluster, &pod);
            continue;
        }
        if let Some(at) = runtime.show_backoff_at
            && now_instant >= at
        {
            runtime.show_backoff_at = None;
            back_off(store, &pod);
        }
        if now_instant >= runtime.next_attempt {
            match attempt(shared, state, cluster, store, &pod) {
                Ok(()) => {
                    runtime.running = Some(wanted);
                    runtime.backoff = Duration::from_millis(settings.backoff_initial_ms);
                }
                Err(_) => {
                    runtime.show_backoff_at = Some(now_instant + (runtime.backoff / 4).min(Duration::from_secs(2)));
                    runtime.next_attempt = now_instant + runtime.backoff;
                    runtime.backoff = (runtime.backoff * 2).min(Duration::from_millis(settings.backoff_max_ms.max(1)));
                }
            }
        }
        store.kubelet.insert(uid, runtime);
    }
}

fn node_name(cluster: &ClusterRec) -> String {
    let digits: String = crate::ids::derived_guid(&cluster.id.to_ascii_lowercase())
        .chars()
        .filter(char::is_ascii_digit)
        .take(8)
        .collect();
    format!("aks-nodepool1-{digits:0<8}-vmss000000")
}

/// The scheduler's part: the Pod lands on the (only) node.
fn schedule(store: &mut Store, cluster: &ClusterRec, pod: &Value) {
    let mut pod = pod.clone();
    pod["spec"]["nodeName"] = json!(node_name(cluster));
    pod["status"]["conditions"] =
        json!([{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now()}]);
    put_pod(store, pod);
}

fn put_pod(store: &mut Store, pod: Value) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
    store.put(PODS, &ns, &name, pod);
}

/// Event names end in the recorder's clock in hex, so they sort by time; strictly increasing.
fn event_stamp() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = nanos.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Records an Event about the Pod, counting repeats as the event recorder does.
fn event(store: &mut Store, pod: &Value, kind: &str, reason: &str, message: &str, container: Option<&str>) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let uid = pod["metadata"]["uid"].clone();
    let stamp = now();
    let existing = store
        .list(EVENTS, Some(&ns))
        .into_iter()
        .find(|e| e["involvedObject"]["uid"] == uid && e["reason"] == reason && e["message"] == message)
        .cloned();
    let node = pod["spec"]["nodeName"].clone();
    let object = match existing {
        Some(mut e) => {
            e["count"] = json!(e["count"].as_u64().unwrap_or(1) + 1);
            e["lastTimestamp"] = json!(stamp);
            e
        }
        None => {
            let name = format!("{}.{:016x}", pod["metadata"]["name"].as_str().unwrap_or_default(), event_stamp());
            let mut e = json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"], "uid": uid,
                                   "apiVersion": "v1", "resourceVersion": pod["metadata"]["resourceVersion"]},
                "reason": reason, "message": message, "type": kind, "count": 1,
                "source": {"component": "kubelet", "host": node}, "reportingComponent": "kubelet", "reportingInstance": node,
                "firstTimestamp": stamp, "lastTimestamp": stamp, "eventTime": null,
            });
            if let Some(c) = container {
                e["involvedObject"]["fieldPath"] = json!(format!("spec.containers{{{c}}}"));
            }
            crate::kube::store::stamp_new(&mut e);
            e
        }
    };
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    store.put(EVENTS, &ns, &name, object);
}

/// The credentials of the Pod's pull secrets for one login server, in order.
fn secret_credentials(store: &Store, pod: &Value, login_server: &str) -> Vec<(String, String)> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let mut found = Vec::new();
    for reference in pod["spec"]["imagePullSecrets"].as_array().into_iter().flatten() {
        let Some(secret) = reference["name"].as_str().and_then(|n| store.get(SECRETS, ns, n)) else { continue };
        let (key, wrapped) = match secret["type"].as_str() {
            Some("kubernetes.io/dockercfg") => (".dockercfg", false),
            _ => (".dockerconfigjson", true),
        };
        let Some(config) = secret["data"][key]
            .as_str()
            .and_then(|d| STANDARD.decode(d).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        let auths = if wrapped { &config["auths"] } else { &config };
        for (server, entry) in auths.as_object().into_iter().flatten() {
            // Keys may carry a scheme and path (`https://x.azurecr.io/v1/`).
            let host = server.trim_start_matches("https://").trim_start_matches("http://");
            let host = host.split('/').next().unwrap_or_default();
            if !host.eq_ignore_ascii_case(login_server) {
                continue;
            }
            let pair = match (entry["username"].as_str(), entry["password"].as_str()) {
                (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
                _ => entry["auth"]
                    .as_str()
                    .and_then(|a| STANDARD.decode(a).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))),
            };
            found.extend(pair);
        }
    }
    found
}

/// Whether one image pulls; the error is containerd's text as the kubelet reports it.
fn pull(
    shared: &Shared,
    state: &State,
    cluster: &ClusterRec,
    store: &Store,
    pod: &Value,
    image: &str,
) -> Result<(), String> {
    let r = ImageRef::parse(image);
    let Some(registry) = state.registries.values().find(|g| g.login_server.eq_ignore_ascii_case(&r.host)) else {
        return Ok(());
    };
    let separator = if r.reference.starts_with("sha256:") { '@' } else { ':' };
    let full = format!("{}/{}{separator}{}", registry.login_server, r.repository, r.reference);
    let prefix = format!("failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\"");
    // A closed registry answers the node's requests with 403 (or not at all) before any token.
    if !registry.reachable_from_clusters() {
        return Err(format!(
            "rpc error: code = Unknown desc = {prefix}: unexpected status from HEAD request to https://{login}/v2/{repository}/manifests/{reference}: 403 Forbidden",
            login = registry.login_server,
            repository = r.repository,
            reference = r.reference
        ));
    }
    let credentials = secret_credentials(store, pod, &registry.login_server);
    let mut authorized = credentials.iter().any(|(u, p)| {
        access::basic(state, &shared.signing_key, registry, u, p)
            .is_some_and(|who| access::may(state, registry, &who, &r.repository, "pull"))
    });
    // The kubelet identity (or a ServicePrincipal cluster's service principal).
    let identity = cluster
        .kubelet
        .as_ref()
        .map(|k| k.object_id.clone())
        .or_else(|| cluster.service_principal_client_id.as_ref().and_then(|c| state.clients.get(c)).cloned());
    // The kubelet's credential provider exchanges an ARM-audience token: refused where the
    // registry's azureADAuthenticationAsArmPolicy is disabled.
    if !authorized
        && registry.aad_as_arm
        && let Some(oid) = &identity
    {
        authorized = access::may(state, registry, &Who::Principal(oid.clone()), &r.repository, "pull");
    }
    authorized = authorized || access::may(state, registry, &Who::Anonymous, &r.repository, "pull");
    if !authorized {
        let flavour = if credentials.is_empty() && identity.is_none() { "anonymous" } else { "oauth" };
        let scope = format!("repository%3A{}%3Apull", r.repository.replace('/', "%2F"));
        return Err(format!(
            "rpc error: code = Unknown desc = {prefix}: failed to authorize: failed to fetch {flavour} token: unexpected status from GET request to https://{login}/oauth2/token?scope={scope}&service={login}: 401 Unauthorized",
            login = registry.login_server
        ));
    }
    match lookup(registry, &r.repository, &r.reference) {
        Lookup::Found(..) => Ok(()),
        Lookup::NoRepository | Lookup::NoManifest => {
            Err(format!("rpc error: code = NotFound desc = {prefix}: {full}: not found"))
        }
    }
}

fn attempt(shared: &Shared, state: &State, cluster: &ClusterRec, store: &mut Store, pod: &Value) -> Result<(), ()> {
    let containers = images(pod);
    warn_missing_pull_secrets(store, pod);
    let failure = pull_images(shared, state, cluster, store, pod, &containers);
    let mut updated = pod.clone();
    let started = now();
    let statuses = container_statuses(pod, failure.as_ref(), &started);
    let conditions = pod_conditions(&statuses, failure.is_some(), &started);
    let status = &mut updated["status"];
    status["phase"] = json!(if failure.is_none() { "Running" } else { "Pending" });
    status["conditions"] = json!(conditions);
    status["containerStatuses"] = json!(statuses);
    status["hostIP"] = json!("10.224.0.4");
    status["startTime"] = status.get("startTime").cloned().filter(|v| !v.is_null()).unwrap_or(json!(started));
    if failure.is_none() {
        status["podIP"] = json!("10.244.0.12");
        status["podIPs"] = json!([{"ip": "10.244.0.12"}]);
    }
    put_pod(store, updated.clone());
    if failure.is_none() {
        for (name, _) in &containers {
            event(store, &updated, "Normal", "Created", &format!("Created container {name}"), Some(name));
            event(store, &updated, "Normal", "Started", &format!("Started container {name}"), Some(name));
        }
        return Ok(());
    }
    Err(())
}

/// The kubelet's warning when a named pull Secret does not exist.
fn warn_missing_pull_secrets(store: &mut Store, pod: &Value) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let missing: Vec<&str> = pod["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .filter(|name| store.get(SECRETS, ns, name).is_none())
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
            missing.join(", ")
        );
        event(store, pod, "Warning", "FailedToRetrieveImagePullSecret", &message, None);
    }
}

/// Pulls each container's image in order, with the kubelet's events; the first failure
/// (container, image, CRI message) stops it.
fn pull_images(
    shared: &Shared,
    state: &State,
    cluster: &ClusterRec,
    store: &mut Store,
    pod: &Value,
    containers: &[(String, String)],
) -> Option<(String, String, String)> {
    for (name, image) in containers {
        event(store, pod, "Normal", "Pulling", &format!("Pulling image \"{image}\""), Some(name));
        match pull(shared, state, cluster, store, pod, image) {
            Ok(()) => {
                event(
                    store,
                    pod,
                    "Normal",
                    "Pulled",
                    &format!(
                        "Successfully pulled image \"{image}\" in 1.2s (1.2s including waiting). Image size: 3623807 bytes."
                    ),
                    Some(name),
                );
            }
            Err(message) => {
                event(
                    store,
                    pod,
                    "Warning",
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {message}"),
                    Some(name),
                );
                event(store, pod, "Warning", "Failed", "Error: ErrImagePull", Some(name));
                return Some((name.clone(), image.clone(), message));
            }
        }
    }
    None
}

fn container_statuses(pod: &Value, failure: Option<&(String, String, String)>, started: &str) -> Vec<Value> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or_default();
            let image = c["image"].as_str().unwrap_or_default();
            let state = match failure {
                Some((_, _, message)) => json!({"waiting": {"reason": "ErrImagePull", "message": message}}),
                None => json!({"running": {"startedAt": started}}),
            };
            let mut status = json!({"name": name, "image": image, "imageID": "", "ready": failure.is_none(),
                                    "started": failure.is_none(), "restartCount": 0, "state": state, "lastState": {}});
            if failure.is_none() {
                status["containerID"] = json!(format!(
                    "containerd://{}",
                    crate::ids::derived_guid(&format!("{}:{name}", pod["metadata"]["uid"])).replace('-', "")
                ));
            }
            status
        })
        .collect()
}

fn pod_conditions(statuses: &[Value], failed: bool, started: &str) -> Vec<Value> {
    let ready = if failed { "False" } else { "True" };
    let mut conditions = vec![
        json!({"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "Ready", "status": ready, "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "ContainersReady", "status": ready, "lastProbeTime": null, "lastTransitionTime": started}),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": started}),
    ];
    if failed {
        let names: Vec<&str> = statuses.iter().filter_map(|s| s["name"].as_str()).collect();
        for c in &mut conditions[2..4] {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(format!("containers with unready status: [{}]", names.join(" ")));
        }
    }
    conditions
}

/// The kubelet's next sync after a failed pull: ImagePullBackOff and its events.
fn back_off(store: &mut Store, pod: &Value) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let Some(mut current) = store.get(PODS, ns, name).cloned() else { return };
    let mut waiting = Vec::new();
    for status in current["status"]["containerStatuses"].as_array_mut().into_iter().flatten() {
        if status["state"]["waiting"]["reason"] == "ErrImagePull" {
            let image = status["image"].as_str().unwrap_or_default().to_string();
            status["state"] = json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}});
            waiting.push((status["name"].as_str().unwrap_or_default().to_string(), image));
        }
    }
    if waiting.is_empty() {
        return;
    }
    put_pod(store, current.clone());
    for (container, image) in waiting {
        event(store, &current, "Normal", "BackOff", &format!("Back-off pulling image \"{image}\""), Some(&container));
        event(store, &current, "Warning", "Failed", "Error: ImagePullBackOff", Some(&container));
    }
}
