//! apps/v1 Deployments and ReplicaSets: the apiserver's defaults and generation rules, and the
//! deployment and replica-set controllers of kube-controller-manager, reduced to what
//! `kubectl create deploy` / `rollout status` / `get pods` show. A Deployment gets one
//! ReplicaSet per pod template (`<name>-<pod-template-hash>`, older ones scaled to 0), each
//! ReplicaSet its Pods (`<rs>-<5 chars>`), which the kubelet then pulls and runs; statuses
//! and conditions follow the Pods. The controllers run on the kubelet's tick.

use serde_json::{Value, json};

use super::pods;
use super::resources::{DEPLOYMENTS, EVENTS, PODS, REPLICA_SETS, ResourceType};
use super::store::{Store, now, stamp_new};

/// The apiserver's defaults on create (`SetDefaults_Deployment`, `SetDefaults_ReplicaSet`,
/// `SetDefaults_PodSpec`, `SetDefaults_Container`) and `generation: 1`, `status: {}`.
pub(crate) fn defaults(kind: &str, object: &mut Value) {
    if !matches!(kind, "Deployment" | "ReplicaSet") {
        return;
    }
    object["metadata"]["generation"] = json!(1);
    object["status"] = json!({});
    let spec = &mut object["spec"];
    if spec["replicas"].is_null() {
        spec["replicas"] = json!(1);
    }
    if kind == "Deployment" {
        if spec["strategy"]["type"].is_null() {
            spec["strategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
        }
        for (field, value) in [("revisionHistoryLimit", 10), ("progressDeadlineSeconds", 600)] {
            if spec[field].is_null() {
                spec[field] = json!(value);
            }
        }
    }
    let pod = &mut spec["template"]["spec"];
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
        ("terminationGracePeriodSeconds", json!(30)),
    ] {
        if pod[field].is_null() {
            pod[field] = value;
        }
    }
    if let Some(containers) = pod["containers"].as_array_mut() {
        for c in containers {
            for (field, value) in
                [("terminationMessagePath", "/dev/termination-log"), ("terminationMessagePolicy", "File")]
            {
                if c[field].is_null() {
                    c[field] = json!(value);
                }
            }
            if c["imagePullPolicy"].is_null() {
                let image = c["image"].as_str().unwrap_or_default();
                c["imagePullPolicy"] = json!(pods::image_pull_policy(image));
            }
        }
    }
}

/// On update through the main resource: a spec or annotation change bumps `generation`; the
/// status is kept (only `/status` writes it).
pub(crate) fn on_update(kind: &str, old: &Value, new: &mut Value) {
    if !matches!(kind, "Deployment" | "ReplicaSet") {
        return;
    }
    new["status"] = old["status"].clone();
    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
    let changed = old["spec"] != new["spec"] || old["metadata"]["annotations"] != new["metadata"]["annotations"];
    new["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
}

/// The controllers' pass over one cluster.
pub(crate) fn reconcile(store: &mut Store) {
    for deployment in objects(store, DEPLOYMENTS) {
        sync_deployment(store, &deployment);
    }
    for replica_set in objects(store, REPLICA_SETS) {
        sync_replica_set(store, &replica_set);
    }
    for deployment in objects(store, DEPLOYMENTS) {
        deployment_status(store, &deployment);
    }
    collect_orphans(store);
}

fn objects(store: &Store, res: &ResourceType) -> Vec<Value> {
    store.list(res, None).into_iter().filter(|o| !o["metadata"]["deletionTimestamp"].is_string()).cloned().collect()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// The owner reference a controller puts on what it creates.
fn owner(kind: &str, object: &Value) -> Value {
    json!([{"apiVersion": "apps/v1", "kind": kind, "name": object["metadata"]["name"], "uid": object["metadata"]["uid"],
            "controller": true, "blockOwnerDeletion": true}])
}

fn owned_by(object: &Value, owner: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner["metadata"]["uid"] && r["controller"] == true))
}

/// `pod-template-hash`: a hash of the template, in the controller's alphabet.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let digest = ring::digest::digest(&ring::digest::SHA256, template.to_string().as_bytes());
    digest.as_ref().iter().take(10).map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// A Normal Event from a controller about `object` (`deployment-controller`,
/// `replicaset-controller`), as `kubectl describe` lists them.
fn event(store: &mut Store, object: &Value, component: &str, reason: &str, message: &str) {
    let kind = if component == "deployment-controller" { "Deployment" } else { "ReplicaSet" };
    let namespace = text(&object["metadata"]["namespace"]);
    let stamp = now();
    let suffix: String = template_hash(&json!([stamp, message])).chars().take(8).collect();
    let name = format!("{}.{suffix}", text(&object["metadata"]["name"]));
    let mut e = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": kind, "namespace": namespace, "name": object["metadata"]["name"],
                           "uid": object["metadata"]["uid"], "apiVersion": "apps/v1",
                           "resourceVersion": object["metadata"]["resourceVersion"]},
        "reason": reason, "message": message, "type": "Normal", "count": 1,
        "source": {"component": component}, "reportingComponent": component, "reportingInstance": "",
        "firstTimestamp": stamp, "lastTimestamp": stamp, "eventTime": null,
    });
    stamp_new(&mut e);
    store.put(EVENTS, &namespace, &name, e);
}

/// Writes `object` if it differs from what is stored.
fn put_if_changed(store: &mut Store, res: &ResourceType, object: Value) {
    let namespace = text(&object["metadata"]["namespace"]);
    let name = text(&object["metadata"]["name"]);
    if store.get(res, &namespace, &name) != Some(&object) {
        store.put(res, &namespace, &name, object);
    }
}

/// The Deployment's ReplicaSet for its current template, created or scaled to `replicas`;
/// ReplicaSets of older templates are scaled to 0.
fn sync_deployment(store: &mut Store, deployment: &Value) {
    let namespace = text(&deployment["metadata"]["namespace"]);
    let hash = template_hash(&deployment["spec"]["template"]);
    let name = format!("{}-{hash}", text(&deployment["metadata"]["name"]));
    let replicas = deployment["spec"]["replicas"].clone();
    for mut old in objects(store, REPLICA_SETS).into_iter().filter(|rs| owned_by(rs, deployment)) {
        let current = text(&old["metadata"]["name"]) == name;
        let wanted = if current { replicas.clone() } else { json!(0) };
        if old["spec"]["replicas"] != wanted {
            let (from, to) = (old["spec"]["replicas"].as_u64().unwrap_or(0), wanted.as_u64().unwrap_or(0));
            let way = if to > from { "up" } else { "down" };
            let message = format!("Scaled {way} replica set {} to {to} from {from}", text(&old["metadata"]["name"]));
            old["spec"]["replicas"] = wanted;
            put_if_changed(store, REPLICA_SETS, old);
            event(store, deployment, "deployment-controller", "ScalingReplicaSet", &message);
        }
    }
    if store.get(REPLICA_SETS, &namespace, &name).is_some() {
        return;
    }
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let revision = deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|r| r.parse::<u64>().ok())
        .map_or(1, |r| r + 1);
    let mut replica_set = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": name, "namespace": namespace, "labels": template["metadata"]["labels"],
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": replicas.as_u64().map_or(1, |r| r + r.div_ceil(4)).to_string(),
                "deployment.kubernetes.io/revision": revision.to_string(),
            },
            "ownerReferences": owner("Deployment", deployment),
            "generation": 1,
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
        "status": {"replicas": 0},
    });
    stamp_new(&mut replica_set);
    store.put(REPLICA_SETS, &namespace, &name, replica_set);
    let message = format!("Scaled up replica set {name} to {replicas}");
    event(store, deployment, "deployment-controller", "ScalingReplicaSet", &message);
    let mut annotated = deployment.clone();
    annotated["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(revision.to_string());
    put_if_changed(store, DEPLOYMENTS, annotated);
}

/// Creates or deletes the ReplicaSet's Pods to match `replicas`, then reports them.
fn sync_replica_set(store: &mut Store, replica_set: &Value) {
    let namespace = text(&replica_set["metadata"]["namespace"]);
    let wanted = replica_set["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    let mut pods: Vec<Value> = objects(store, PODS).into_iter().filter(|p| owned_by(p, replica_set)).collect();
    while pods.len() < wanted {
        match new_pod(store, replica_set, &namespace) {
            Some(pod) => {
                let message = format!("Created pod: {}", text(&pod["metadata"]["name"]));
                event(store, replica_set, "replicaset-controller", "SuccessfulCreate", &message);
                pods.push(pod);
            }
            // Admission refused it (no ServiceAccount yet): the next pass tries again.
            None => break,
        }
    }
    while pods.len() > wanted {
        if let Some(extra) = pods.pop() {
            let pod_name = text(&extra["metadata"]["name"]);
            store.remove(PODS, &namespace, &pod_name);
            event(store, replica_set, "replicaset-controller", "SuccessfulDelete", &format!("Deleted pod: {pod_name}"));
        }
    }
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let mut updated = replica_set.clone();
    updated["status"] = json!({
        "replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "readyReplicas": ready,
        "availableReplicas": ready, "observedGeneration": replica_set["metadata"]["generation"],
    });
    drop_zero(&mut updated["status"], &["fullyLabeledReplicas", "readyReplicas", "availableReplicas"]);
    put_if_changed(store, REPLICA_SETS, updated);
}

fn new_pod(store: &mut Store, replica_set: &Value, namespace: &str) -> Option<Value> {
    let template = &replica_set["spec"]["template"];
    let name = format!("{}-{}", text(&replica_set["metadata"]["name"]), random_suffix());
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "generateName": format!("{}-", text(&replica_set["metadata"]["name"])),
                     "namespace": namespace, "labels": template["metadata"]["labels"],
                     "ownerReferences": owner("ReplicaSet", replica_set)},
        "spec": template["spec"],
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    });
    pod["spec"]["enableServiceLinks"] = json!(true);
    pods::admit(store, namespace, &mut pod).ok()?;
    stamp_new(&mut pod);
    Some(store.put(PODS, namespace, &name, pod))
}

/// Counts of 0 are absent from the status (Go's `omitempty` on int32).
fn drop_zero(status: &mut Value, fields: &[&str]) {
    if let Some(map) = status.as_object_mut() {
        map.retain(|k, v| !(fields.contains(&k.as_str()) && *v == 0));
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|all| all.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// The Deployment's status from its ReplicaSets, with the Available and Progressing
/// conditions the deployment controller writes (`kubectl rollout status` reads them).
fn deployment_status(store: &mut Store, deployment: &Value) {
    let sets: Vec<Value> = objects(store, REPLICA_SETS).into_iter().filter(|rs| owned_by(rs, deployment)).collect();
    let hash = template_hash(&deployment["spec"]["template"]);
    let new_name = format!("{}-{hash}", text(&deployment["metadata"]["name"]));
    let count = |field: &str| -> u64 { sets.iter().map(|rs| rs["status"][field].as_u64().unwrap_or(0)).sum() };
    let desired = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
    let updated = sets
        .iter()
        .find(|rs| text(&rs["metadata"]["name"]) == new_name)
        .map_or(0, |rs| rs["status"]["replicas"].as_u64().unwrap_or(0));
    let (replicas, ready, available) = (count("replicas"), count("readyReplicas"), count("availableReplicas"));
    // maxUnavailable 25% of the replicas, rounded down.
    let minimum = desired - desired / 4;
    let previous = &deployment["status"]["conditions"];
    let mut status = json!({"observedGeneration": deployment["metadata"]["generation"], "replicas": replicas,
                            "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": available});
    if desired > available {
        status["unavailableReplicas"] = json!(desired - available);
    }
    drop_zero(&mut status, &["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"]);
    let available_condition = if available >= minimum {
        condition(previous, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    } else {
        condition(
            previous,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let progressing = if updated == desired && available >= desired {
        condition(
            previous,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else {
        condition(
            previous,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{new_name}\" is progressing."),
        )
    };
    status["conditions"] = json!([available_condition, progressing]);
    let mut object = deployment.clone();
    object["status"] = status;
    put_if_changed(store, DEPLOYMENTS, object);
}

/// A condition; `lastTransitionTime` moves only when the status flips, `lastUpdateTime`
/// when anything changes.
fn condition(previous: &Value, kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let before = previous.as_array().and_then(|all| all.iter().find(|c| c["type"] == kind));
    let time = now();
    let unchanged = before.is_some_and(|c| c["status"] == status && c["reason"] == reason && c["message"] == message);
    let transition = before.filter(|c| c["status"] == status).map_or(json!(time), |c| c["lastTransitionTime"].clone());
    let update = if unchanged { before.map_or(json!(time), |c| c["lastUpdateTime"].clone()) } else { json!(time) };
    json!({"type": kind, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition,
           "reason": reason, "message": message})
}

/// The garbage collector: ReplicaSets whose Deployment is gone, Pods whose ReplicaSet is gone.
fn collect_orphans(store: &mut Store) {
    for (res, owner_res) in [(REPLICA_SETS, DEPLOYMENTS), (PODS, REPLICA_SETS)] {
        let owners: Vec<Value> = store.list(owner_res, None).into_iter().cloned().collect();
        let orphans: Vec<(String, String)> = store
            .list(res, None)
            .into_iter()
            .filter(|o| {
                o["metadata"]["ownerReferences"].as_array().is_some_and(|refs| {
                    refs.iter().any(|r| {
                        r["kind"] == owner_res.kind && !owners.iter().any(|w| w["metadata"]["uid"] == r["uid"])
                    })
                })
            })
            .map(|o| (text(&o["metadata"]["namespace"]), text(&o["metadata"]["name"])))
            .collect();
        for (namespace, name) in orphans {
            store.remove(res, &namespace, &name);
        }
    }
}
