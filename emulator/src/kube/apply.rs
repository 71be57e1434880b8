//! Server-side apply: merges an applied configuration into the live object, records the
//! manager's `Apply` entry in managedFields, drops fields it stopped applying, and reports
//! conflicts with other managers as the apiserver words them (or takes the fields on `force`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fields::{self, Entry, FieldSet, Path, field_set, print_manager, render, value_at};
use super::patch::strategic;
use super::status::Failure;

fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = object;
    for segment in parents {
        let next = if let Some(field) = segment.strip_prefix("f:") {
            at.get_mut(field)
        } else if let Some(key) = segment.strip_prefix("k:") {
            let key: serde_json::Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            at.as_array_mut().and_then(|list| list.iter_mut().find(|i| key.iter().all(|(k, v)| i.get(k) == Some(v))))
        } else {
            None
        };
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:")
        && let Some(map) = at.as_object_mut()
    {
        map.remove(field);
    } else if let Some(key) = last.strip_prefix("k:") {
        let key: serde_json::Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
        if let Some(list) = at.as_array_mut() {
            list.retain(|i| !key.iter().all(|(k, v)| i.get(k) == Some(v)));
        }
    }
}

fn conflict_failure(conflicts: &[(Entry, Path)]) -> Failure {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(e, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", print_manager(e)), "field": render(p)}))
        .collect();
    let message = if let [(entry, path)] = conflicts {
        format!("Apply failed with 1 conflict: conflict with {}: {}", print_manager(entry), render(path))
    } else {
        let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (e, p) in conflicts {
            by_manager.entry(print_manager(e)).or_default().push(render(p));
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {manager}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
    };
    Failure::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

/// The object after `manager` applies `config` over `live` (None: the apply creates it).
pub(crate) fn apply(
    kind: &str,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    time: &str,
) -> Result<Value, Failure> {
    let applied: FieldSet = field_set(kind, config);
    let mut list = live.map(fields::entries).unwrap_or_default();
    let mine = |e: &Entry| e.manager == manager && e.operation == "Apply";
    let previously: FieldSet = list.iter().filter(|e| mine(e)).flat_map(|e| e.fields.iter().cloned()).collect();

    let mut merged = live.cloned().unwrap_or_else(|| json!({}));
    // Fields this manager applied before and left out now go, unless someone else owns them.
    for path in previously.difference(&applied) {
        let shared = list.iter().any(|e| !mine(e) && e.fields.contains(path));
        if !shared && path.last().map(String::as_str) != Some(".") {
            remove_at(&mut merged, path);
        }
    }
    let mut config_body = config.clone();
    if let Some(meta) = config_body["metadata"].as_object_mut() {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    let mut merged = strategic(kind, &merged, &config_body).map_err(|e| Failure::new(500, "InternalError", e))?;

    let empty = json!({});
    let before = live.unwrap_or(&empty);
    let mut conflicts: Vec<(Entry, Path)> = Vec::new();
    for path in applied.iter().filter(|p| p.last().map(String::as_str) != Some(".")) {
        if value_at(before, path) == value_at(&merged, path) {
            continue;
        }
        for other in list.iter().filter(|e| !mine(e)) {
            if other.fields.contains(path) {
                conflicts.push((other.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflict_failure(&conflicts));
        }
        for (owner, path) in &conflicts {
            for e in list.iter_mut().filter(|e| e.manager == owner.manager && e.operation == owner.operation) {
                e.fields.remove(path);
            }
        }
    }
    match list.iter_mut().find(|e| mine(e)) {
        Some(entry) => {
            entry.fields = applied;
            entry.time = time.to_string();
        }
        None => list.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            time: time.to_string(),
            subresource: None,
            fields: applied,
        }),
    }
    fields::store_entries(&mut merged, &list);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_force_and_removal() {
        let config = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "1"}},
                            "stringData": {"username": "u"}, "type": "Opaque"});
        let first = apply("Secret", None, &config, "kubectl", false, "t1").expect("create");
        assert_eq!(first["metadata"]["managedFields"][0]["manager"], "kubectl");
        let other = json!({"metadata": {"name": "s"}, "stringData": {"username": "v"}});
        let failure = apply("Secret", Some(&first), &other, "other", false, "t2").expect_err("conflict");
        assert_eq!(failure.code, 409);
        assert_eq!(failure.message, "Apply failed with 1 conflict: conflict with \"kubectl\": .stringData.username");
        let forced = apply("Secret", Some(&first), &other, "other", true, "t2").expect("force");
        assert_eq!(forced["stringData"]["username"], "v");
        let owners: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(owners, ["kubectl", "other"]);
        // kubectl stops applying the label: it goes.
        let smaller = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        let after = apply("Secret", Some(&forced), &smaller, "kubectl", false, "t3").expect("apply");
        assert!(after["metadata"]["labels"].get("a").is_none());
        assert_eq!(after["type"], "Opaque");
    }
}
