//! Field ownership for server-side apply: the set of fields an object (or an applied
//! configuration) sets, in the `fieldsV1` encoding of managedFields (`f:data`, `k:{...}`,
//! `.`), and how entries change on apply and update. Lists are atomic unless they have a
//! merge key (the same table the strategic merge patch uses).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::patch::merge_key;

pub(crate) type Path = Vec<String>;
pub(crate) type FieldSet = BTreeSet<Path>;

/// Maps whose keys are data, not schema fields: they get a `.` entry of their own.
fn is_map_field(name: &str) -> bool {
    matches!(name, "labels" | "annotations" | "data" | "stringData" | "binaryData" | "nodeSelector")
}

/// Metadata the server owns; never part of a field set.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The leaf fields (and map markers) `object` sets.
pub(crate) fn field_set(kind: &str, object: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let Value::Object(top) = object else { return set };
    for (k, v) in top {
        // The status of kinds with a status subresource is reset on writes to the main
        // resource, so no writer there owns it.
        let has_status = matches!(kind, "Pod" | "Namespace" | "Deployment" | "ReplicaSet");
        if k == "apiVersion" || k == "kind" || (k == "status" && has_status) {
            continue;
        }
        let mut path = vec![format!("f:{k}")];
        if k == "metadata" {
            if let Value::Object(meta) = v {
                for (mk, mv) in meta {
                    if SERVER_META.contains(&mk.as_str()) {
                        continue;
                    }
                    path.push(format!("f:{mk}"));
                    walk(kind, &mut vec!["metadata".into(), mk.clone()], mk, mv, &mut path, &mut set);
                    path.pop();
                }
            }
            continue;
        }
        walk(kind, &mut vec![k.clone()], k, v, &mut path, &mut set);
    }
    set
}

fn walk(kind: &str, schema: &mut Vec<String>, name: &str, value: &Value, path: &mut Path, set: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            if is_map_field(name) {
                let mut marker = path.clone();
                marker.push(".".into());
                set.insert(marker);
            }
            for (k, v) in map {
                path.push(format!("f:{k}"));
                schema.push(k.clone());
                walk(kind, schema, k, v, path, set);
                schema.pop();
                path.pop();
            }
        }
        Value::Array(items) => {
            let here: Vec<&str> = schema.iter().map(String::as_str).collect();
            match merge_key(kind, &here) {
                Some(key) if !items.is_empty() => {
                    for item in items {
                        let id = json!({key: item.get(key).cloned().unwrap_or(Value::Null)});
                        path.push(format!("k:{id}"));
                        let mut marker = path.clone();
                        marker.push(".".into());
                        set.insert(marker);
                        if let Value::Object(fields) = item {
                            for (k, v) in fields {
                                path.push(format!("f:{k}"));
                                schema.push(k.clone());
                                walk(kind, schema, k, v, path, set);
                                schema.pop();
                                path.pop();
                            }
                        }
                        path.pop();
                    }
                }
                _ => {
                    set.insert(path.clone());
                }
            }
        }
        _ => {
            set.insert(path.clone());
        }
    }
}

/// The value a field path points at in `object` (None when absent).
pub(crate) fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut at = object;
    for segment in path {
        if segment == "." {
            return Some(at);
        }
        if let Some(field) = segment.strip_prefix("f:") {
            at = at.get(field)?;
        } else if let Some(key) = segment.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
            at = at.as_array()?.iter().find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)))?;
        } else {
            return None;
        }
    }
    Some(at)
}

/// `.stringData.username`, `.spec.containers[name="app"].image`: paths as conflicts print them.
pub(crate) fn render(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if let Some(field) = segment.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = segment.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    out
}

/// The nested `fieldsV1` object of a set.
pub(crate) fn encode(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut at = &mut root;
        for segment in path {
            let entry = at.entry(segment.clone()).or_insert_with(|| json!({}));
            at = match entry {
                Value::Object(m) => m,
                _ => unreachable!("fieldsV1 nodes are objects"),
            };
        }
    }
    Value::Object(root)
}

/// The set a `fieldsV1` object describes (its leaves are empty objects).
pub(crate) fn decode(fields: &Value) -> FieldSet {
    fn go(value: &Value, path: &mut Path, set: &mut FieldSet) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    path.push(k.clone());
                    go(v, path, set);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    set.insert(path.clone());
                }
            }
        }
    }
    let mut set = FieldSet::new();
    go(fields, &mut Vec::new(), &mut set);
    set
}

/// One managedFields entry, decoded.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

pub(crate) fn entries(object: &Value) -> Vec<Entry> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    subresource: e["subresource"].as_str().map(str::to_string),
                    fields: decode(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn store_entries(object: &mut Value, list: &[Entry]) {
    let encoded: Vec<Value> = list
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut entry = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": "v1",
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": encode(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                entry["subresource"] = json!(sub);
            }
            entry
        })
        .collect();
    if encoded.is_empty() {
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
    } else {
        object["metadata"]["managedFields"] = Value::Array(encoded);
    }
}

/// A manager as conflict messages print it: `"kubectl"`, or `"x" using v1 at <time>` for
/// update managers.
pub(crate) fn print_manager(entry: &Entry) -> String {
    if entry.operation == "Update" {
        if entry.time.is_empty() {
            format!("\"{}\" using v1", entry.manager)
        } else {
            format!("\"{}\" using v1 at {}", entry.manager, entry.time)
        }
    } else {
        format!("\"{}\"", entry.manager)
    }
}

/// Records a non-apply write by `manager`: it takes every field that changed from `old` to
/// `new` (all of `new` on create), other managers lose those and every removed field.
pub(crate) fn record_update(kind: &str, old: Option<&Value>, new: &mut Value, manager: &str, time: &str) {
    let mut list = old.map(entries).unwrap_or_default();
    // The apiserver's field manager does not start tracking on an update of an object that
    // has no managedFields (skipNonAppliedManager): only a create or an apply starts it. So
    // the controller-made `default` ServiceAccount stays without managedFields when patched.
    if old.is_some() && list.is_empty() {
        store_entries(new, &list);
        return;
    }
    let new_set = field_set(kind, new);
    let old_set = old.map(|o| field_set(kind, o)).unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| p.last().map(String::as_str) != Some("."))
        .filter(|p| match old {
            None => true,
            Some(o) => value_at(o, p) != value_at(new, p),
        })
        .cloned()
        .chain(new_set.iter().filter(|p| p.last().map(String::as_str) == Some(".") && !old_set.contains(*p)).cloned())
        .collect();
    for entry in &mut list {
        entry.fields.retain(|p| new_set.contains(p) && !(changed.contains(p) && entry.manager != manager));
    }
    if !changed.is_empty() {
        match list.iter_mut().find(|e| e.manager == manager && e.operation == "Update" && e.subresource.is_none()) {
            Some(entry) => {
                entry.fields.extend(changed);
                entry.time = time.to_string();
            }
            None => list.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                time: time.to_string(),
                subresource: None,
                fields: changed,
            }),
        }
    }
    store_entries(new, &list);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_sets_encode_like_managed_fields() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "b"}},
                            "stringData": {"username": "u"}, "type": "Opaque"});
        let set = field_set("Secret", &secret);
        assert_eq!(
            encode(&set),
            json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:stringData": {".": {}, "f:username": {}}, "f:type": {}})
        );
        assert_eq!(decode(&encode(&set)), set);
        let pod = json!({"spec": {"containers": [{"name": "app", "image": "x"}]}});
        let set = field_set("Pod", &pod);
        let image: Path = vec!["f:spec".into(), "f:containers".into(), "k:{\"name\":\"app\"}".into(), "f:image".into()];
        assert!(set.contains(&image));
        assert_eq!(render(&image), ".spec.containers[name=\"app\"].image");
        assert_eq!(value_at(&pod, &image), Some(&json!("x")));
    }
}
