//! Pod admission as the apiserver's plugins do it: the ServiceAccount admission plugin (the
//! account must exist; a Pod without `imagePullSecrets` gets the account's), and the defaults
//! the Pod strategy and defaulting functions add.

use serde_json::{Value, json};

use super::resources::SERVICE_ACCOUNTS;
use super::status::Failure;
use super::store::Store;

pub(crate) fn image_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        "IfNotPresent"
    } else if !last.contains(':') || last.ends_with(":latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

pub(crate) fn admit(store: &Store, namespace: &str, pod: &mut Value) -> Result<(), Failure> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let account = pod["spec"]["serviceAccountName"]
        .as_str()
        .or_else(|| pod["spec"]["serviceAccount"].as_str())
        .filter(|a| !a.is_empty())
        .unwrap_or("default")
        .to_string();
    let Some(sa) = store.get(SERVICE_ACCOUNTS, namespace, &account) else {
        return Err(Failure::new(
            403,
            "Forbidden",
            format!(
                "pods \"{name}\" is forbidden: error looking up service account {namespace}/{account}: serviceaccount \"{account}\" not found"
            ),
        )
        .with_details(json!({"name": name, "kind": "pods"})));
    };
    let spec = &mut pod["spec"];
    spec["serviceAccountName"] = json!(account);
    spec["serviceAccount"] = json!(account);
    let has_secrets = spec["imagePullSecrets"].as_array().is_some_and(|l| !l.is_empty());
    if !has_secrets && let Some(list) = sa["imagePullSecrets"].as_array().filter(|l| !l.is_empty()) {
        spec["imagePullSecrets"] = json!(list);
    }
    for (field, default) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        ("priority", json!(0)),
    ] {
        if spec[field].is_null() {
            spec[field] = default;
        }
    }
    for list in ["initContainers", "containers"] {
        if let Some(containers) = spec[list].as_array_mut() {
            for c in containers {
                let image = c["image"].as_str().unwrap_or_default().to_string();
                if c["imagePullPolicy"].is_null() {
                    c["imagePullPolicy"] = json!(image_pull_policy(&image));
                }
                for (field, default) in [
                    ("terminationMessagePath", json!("/dev/termination-log")),
                    ("terminationMessagePolicy", json!("File")),
                    ("resources", json!({})),
                ] {
                    if c[field].is_null() {
                        c[field] = default;
                    }
                }
            }
        }
    }
    pod["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    Ok(())
}
