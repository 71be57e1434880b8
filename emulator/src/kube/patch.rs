//! The three patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902, with the
//! error texts of the evanphx/json-patch v4 library the apiserver uses) and strategic merge
//! patch with the merge keys of the core/v1 types served here. Lists without a merge key
//! (ServiceAccount `imagePullSecrets` among them) are replaced by a strategic patch.

use serde_json::{Map, Value};

/// RFC 7386.
pub(crate) fn merge(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch_map) = patch else { return patch.clone() };
    let mut out = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in patch_map {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

/// The merge key of a list at a path (list indices left out), as the Go struct tags give it.
pub(crate) fn merge_key(kind: &str, path: &[&str]) -> Option<&'static str> {
    match (kind, path) {
        (_, ["metadata", "ownerReferences"]) => Some("uid"),
        ("Pod", ["spec", "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "imagePullSecrets"]) => {
            Some("name")
        }
        ("Pod", ["spec", "containers" | "initContainers", "env"]) => Some("name"),
        ("Pod", ["spec", "containers" | "initContainers", "ports"]) => Some("containerPort"),
        ("Pod", ["spec", "containers" | "initContainers", "volumeMounts"]) => Some("mountPath"),
        ("ServiceAccount", ["secrets"]) => Some("name"),
        _ => None,
    }
}

/// Lists of scalars with `patchStrategy:"merge"` (merged as sets).
fn merges_scalars(path: &[&str]) -> bool {
    matches!(path, ["metadata", "finalizers"])
}

/// Strategic merge patch of `original` with `patch` for an object of `kind`.
pub(crate) fn strategic(kind: &str, original: &Value, patch: &Value) -> Result<Value, String> {
    strategic_at(kind, original, patch, &mut Vec::new())
}

fn strategic_at(kind: &str, original: &Value, patch: &Value, path: &mut Vec<String>) -> Result<Value, String> {
    let Value::Object(patch_map) = patch else { return Ok(patch.clone()) };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_map.clone();
        replaced.remove("$patch");
        return Ok(Value::Object(replaced));
    }
    let mut out = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    // `$deleteFromPrimitiveList/<field>` removes scalars from a merged list.
    for (k, v) in patch_map {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
            && let (Some(Value::Array(list)), Value::Array(remove)) = (out.get_mut(field), v)
        {
            list.retain(|x| !remove.contains(x));
        }
    }
    for (k, v) in patch_map {
        if k.starts_with('$') {
            continue;
        }
        path.push(k.clone());
        let here: Vec<&str> = path.iter().map(String::as_str).collect();
        match v {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(inner) if inner.get("$patch").and_then(Value::as_str) == Some("delete") => {
                out.remove(k);
            }
            Value::Object(_) => {
                let merged = strategic_at(kind, out.get(k).unwrap_or(&Value::Null), v, path)?;
                out.insert(k.clone(), merged);
            }
            Value::Array(items) => {
                let merged = if let Some(key) = merge_key(kind, &here) {
                    merge_list(kind, out.get(k), items, key, path)?
                } else if merges_scalars(&here) {
                    let mut list = out.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
                    for item in items {
                        if !list.contains(item) {
                            list.push(item.clone());
                        }
                    }
                    Value::Array(list)
                } else {
                    Value::Array(items.iter().filter(|i| !is_directive(i)).cloned().collect())
                };
                out.insert(k.clone(), merged);
            }
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
        path.pop();
    }
    Ok(Value::Object(out))
}

fn is_directive(item: &Value) -> bool {
    item.get("$patch").is_some()
}

fn merge_list(
    kind: &str,
    original: Option<&Value>,
    items: &[Value],
    key: &str,
    path: &mut Vec<String>,
) -> Result<Value, String> {
    if items.iter().any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace")) {
        return Ok(Value::Array(items.iter().filter(|i| !is_directive(i)).cloned().collect()));
    }
    let mut list = original.and_then(Value::as_array).cloned().unwrap_or_default();
    for item in items {
        let Some(id) = item.get(key) else {
            return Err(format!("map: {item} does not contain declared merge key: {key}"));
        };
        let at = list.iter().position(|existing| existing.get(key) == Some(id));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(at) = at {
                list.remove(at);
            }
            continue;
        }
        match at {
            Some(at) => {
                // Entries are merged with the same rules one level down (path without index).
                let merged = strategic_at(kind, &list[at], item, path)?;
                list[at] = merged;
            }
            None => list.push(item.clone()),
        }
    }
    Ok(Value::Array(list))
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn pointer_parts(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer must be empty or start with a \"/\": {pointer}"));
    };
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, parts: &[String]) -> Option<&'a mut Value> {
    let mut at = doc;
    for part in parts {
        at = match at {
            Value::Object(m) => m.get_mut(part)?,
            Value::Array(a) => a.get_mut(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn get<'a>(doc: &'a Value, parts: &[String]) -> Option<&'a Value> {
    let mut at = doc;
    for part in parts {
        at = match at {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let parts = pointer_parts(path)?;
    let Some((last, parents)) = parts.split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || format!("add operation does not apply: doc is missing path: \"{path}\": missing value");
    match parent_mut(doc, parents).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let index = if last == "-" { a.len() } else { last.parse::<usize>().map_err(|_| missing())? };
            if index > a.len() {
                return Err(format!("Unable to access invalid index: {index}: invalid index referenced"));
            }
            a.insert(index, value);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str, op: &str) -> Result<Value, String> {
    let parts = pointer_parts(path)?;
    let Some((last, parents)) = parts.split_last() else {
        return Err(format!("{op} operation does not apply: doc is missing path: \"{path}\": missing value"));
    };
    let missing_key = || format!("Unable to remove nonexistent key: {last}: missing value");
    match parent_mut(doc, parents) {
        Some(Value::Object(m)) => m.remove(last).ok_or_else(missing_key),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(format!("Unable to access invalid index: {last}: invalid index referenced")),
        },
        _ => Err(format!("{op} operation does not apply: doc is missing path: \"{path}\": missing value")),
    }
}

/// RFC 6902 over `doc`. Errors are the library's texts; the apiserver answers them with 422.
pub(crate) fn json_patch(doc: &Value, ops: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = ops else {
        return Err(PatchError::Decode("json: cannot unmarshal object into Go value of type jsonpatch.Patch".into()));
    };
    let mut doc = doc.clone();
    for op in ops {
        let kind = op["op"].as_str().unwrap_or_default();
        let path = op["path"].as_str().unwrap_or_default();
        let result = match kind {
            "add" => add(&mut doc, path, op["value"].clone()),
            "remove" => remove(&mut doc, path, "remove").map(|_| ()),
            "replace" => {
                let parts = pointer_parts(path).map_err(PatchError::Apply)?;
                match parent_mut(&mut doc, &parts) {
                    Some(slot) if !parts.is_empty() => {
                        *slot = op["value"].clone();
                        Ok(())
                    }
                    _ => Err(format!("replace operation does not apply: doc is missing key: {path}: missing value")),
                }
            }
            "move" => {
                let from = op["from"].as_str().unwrap_or_default();
                remove(&mut doc, from, "move").and_then(|value| add(&mut doc, path, value))
            }
            "copy" => {
                let from = op["from"].as_str().unwrap_or_default();
                let parts = pointer_parts(from).map_err(PatchError::Apply)?;
                match get(&doc, &parts).cloned() {
                    Some(value) => add(&mut doc, path, value),
                    None => {
                        Err(format!("copy operation does not apply: doc is missing from path: {from}: missing value"))
                    }
                }
            }
            "test" => {
                let parts = pointer_parts(path).map_err(PatchError::Apply)?;
                let expected = &op["value"];
                let actual = get(&doc, &parts);
                let same = match actual {
                    Some(v) => v == expected,
                    None => expected.is_null(),
                };
                if same { Ok(()) } else { Err(format!("testing value {path} failed: test failed")) }
            }
            other => Err(format!("Unexpected kind: {other}")),
        };
        result.map_err(PatchError::Apply)?;
    }
    Ok(doc)
}

#[derive(Debug, PartialEq)]
pub(crate) enum PatchError {
    /// The patch document itself is malformed (400).
    Decode(String),
    /// An operation failed (422).
    Apply(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_replaces_lists_without_merge_key() {
        let sa = json!({"imagePullSecrets": [{"name": "a"}], "secrets": [{"name": "t"}]});
        let patched =
            strategic("ServiceAccount", &sa, &json!({"imagePullSecrets": [{"name": "b"}], "secrets": [{"name": "u"}]}))
                .unwrap();
        assert_eq!(patched["imagePullSecrets"], json!([{"name": "b"}]));
        assert_eq!(patched["secrets"], json!([{"name": "t"}, {"name": "u"}]));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}],
                                    "$setElementOrder/containers": [{"name": "b"}]}});
        let patched = strategic("Pod", &pod, &patch).unwrap();
        assert_eq!(patched["spec"]["containers"], json!([{"name": "b", "image": "z"}]));
    }

    #[test]
    fn json_patch_test_op_and_errors() {
        let doc = json!({"type": "Opaque", "data": {"a": "eA=="}});
        let ok = json_patch(
            &doc,
            &json!([{"op": "test", "path": "/type", "value": "Opaque"}, {"op": "add", "path": "/data/b", "value": "eQ=="}]),
        );
        assert_eq!(ok.unwrap()["data"]["b"], "eQ==");
        let failed = json_patch(&doc, &json!([{"op": "test", "path": "/type", "value": "kubernetes.io/tls"}]));
        assert_eq!(failed, Err(PatchError::Apply("testing value /type failed: test failed".into())));
        let missing = json_patch(&doc, &json!([{"op": "remove", "path": "/data/zz"}]));
        assert_eq!(missing, Err(PatchError::Apply("Unable to remove nonexistent key: zz: missing value".into())));
    }

    #[test]
    fn merge_patch_deletes_with_null() {
        assert_eq!(
            merge(&json!({"a": 1, "b": {"c": 2, "d": 3}}), &json!({"a": null, "b": {"c": null}})),
            json!({"b": {"d": 3}})
        );
    }
}
