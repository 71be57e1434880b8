//! Go's `omitempty`: the apiserver stores and returns Go structs, so a map or slice field
//! written empty (`imagePullSecrets: []`, `labels: {}`, `annotations: {}`) is absent in what
//! it answers and stores. Only map and slice fields are dropped; empty structs such as
//! `resources: {}` or `securityContext: {}` stay, so the fields are listed per kind.

use serde_json::Value;

/// `metadata` fields of every kind that are maps or slices.
const METADATA: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// Top-level map and slice fields (paths from the object root) per kind.
fn kind_fields(kind: &str) -> &'static [&'static [&'static str]] {
    match kind {
        "ServiceAccount" => &[&["secrets"], &["imagePullSecrets"]],
        "Secret" => &[&["data"], &["stringData"]],
        "ConfigMap" => &[&["data"], &["binaryData"]],
        "Namespace" => &[&["spec", "finalizers"]],
        "Pod" => &[
            &["spec", "imagePullSecrets"],
            &["spec", "volumes"],
            &["spec", "initContainers"],
            &["spec", "ephemeralContainers"],
            &["spec", "nodeSelector"],
            &["spec", "tolerations"],
        ],
        _ => &[],
    }
}

/// Container fields that are slices.
const CONTAINER: &[&str] = &["command", "args", "env", "envFrom", "ports", "volumeMounts", "volumeDevices"];

fn is_empty_collection(value: &Value) -> bool {
    match value {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Removes `path`'s last field from its parent object when it is an empty map or slice.
fn drop_at(object: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = object;
    for p in parents {
        match at.get_mut(*p) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(map) = at.as_object_mut()
        && map.get(*last).is_some_and(is_empty_collection)
    {
        map.remove(*last);
    }
}

/// Drops the empty map and slice fields of an object of `kind`, as the apiserver's Go
/// encoding does.
pub(crate) fn drop_empty(kind: &str, object: &mut Value) {
    for field in METADATA {
        drop_at(object, &["metadata", field]);
    }
    for path in kind_fields(kind) {
        drop_at(object, path);
    }
    if kind == "Pod" {
        for list in ["containers", "initContainers"] {
            if let Some(containers) = object["spec"].get_mut(list).and_then(Value::as_array_mut) {
                for container in containers {
                    for field in CONTAINER {
                        drop_at(container, &[field]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_maps_and_slices_go_empty_structs_stay() {
        let mut sa = json!({"metadata": {"name": "default", "labels": {}, "annotations": {}}, "imagePullSecrets": []});
        drop_empty("ServiceAccount", &mut sa);
        assert_eq!(sa, json!({"metadata": {"name": "default"}}));
        let mut pod = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "env": [], "resources": {}}], "volumes": []}});
        drop_empty("Pod", &mut pod);
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "resources": {}}]}})
        );
    }
}
