//! Deletion as the apiserver and the namespace controller do it: an object with finalizers
//! is only marked (`deletionTimestamp`) and goes when its last finalizer is removed; a
//! deleted namespace turns `Terminating`, its content without finalizers is removed, and it
//! goes once nothing is left and its own finalizers are gone. Until then it carries the
//! controller's five conditions, and creates in it are refused (NamespaceTerminating).
//! The controller's passes run after every write, so there is no delay to wait for.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::resources::{NAMESPACES, ResourceType};
use super::store::{Store, now};

fn finalizers(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .map(|list| list.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn marked(object: &Value) -> bool {
    object["metadata"]["deletionTimestamp"].as_str().is_some()
}

/// Marks an object for deletion (what DELETE does to an object with finalizers).
fn mark(object: &mut Value) {
    object["metadata"]["deletionTimestamp"] = json!(now());
    object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
}

pub(crate) fn is_terminating(store: &Store, namespace: &str) -> bool {
    store.get(NAMESPACES, "", namespace).is_some_and(marked)
}

/// DELETE of one object: removed at once without finalizers; else marked and kept.
/// Returns the object as answered and whether it is gone.
pub(crate) fn delete(
    store: &mut Store,
    res: &'static ResourceType,
    namespace: &str,
    name: &str,
) -> Option<(Value, bool)> {
    let mut object = store.get(res, namespace, name)?.clone();
    if res.kind == "Namespace" {
        if !marked(&object) {
            mark(&mut object);
            object["status"]["phase"] = json!("Terminating");
            object = store.put(res, namespace, name, object);
        }
        settle(store);
        return Some(match store.get(res, namespace, name) {
            Some(kept) => (kept.clone(), false),
            None => (object, true),
        });
    }
    if finalizers(&object).is_empty() {
        let removed = store.remove(res, namespace, name)?;
        return Some((removed, true));
    }
    if !marked(&object) {
        mark(&mut object);
        object = store.put(res, namespace, name, object);
    }
    Some((object, false))
}

/// Runs what the garbage collector and the namespace controller would do after a write:
/// marked objects whose finalizers are gone are removed, terminating namespaces are emptied.
pub(crate) fn settle(store: &mut Store) {
    for (res, namespace, name) in store.keys() {
        if res.kind != "Namespace"
            && let Some(object) = store.get(res, &namespace, &name)
            && marked(object)
            && finalizers(object).is_empty()
        {
            store.remove(res, &namespace, &name);
        }
    }
    let terminating: Vec<String> = store
        .list(NAMESPACES, None)
        .into_iter()
        .filter(|ns| marked(ns))
        .filter_map(|ns| ns["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    for namespace in terminating {
        namespace_pass(store, &namespace);
    }
}

/// One pass of the namespace controller over a terminating namespace.
fn namespace_pass(store: &mut Store, namespace: &str) {
    let content = |store: &Store| -> Vec<(&'static ResourceType, String)> {
        store.keys().into_iter().filter(|(_, ns, _)| ns == namespace).map(|(res, _, name)| (res, name)).collect()
    };
    for (res, name) in content(store) {
        delete(store, res, namespace, &name);
    }
    let left: Vec<(&'static ResourceType, Value)> = content(store)
        .into_iter()
        .filter_map(|(res, name)| store.get(res, namespace, &name).cloned().map(|o| (res, o)))
        .collect();
    let Some(mut object) = store.get(NAMESPACES, "", namespace).cloned() else { return };
    if left.is_empty() {
        // All content gone: the controller removes the `kubernetes` finalizer (/finalize).
        object["spec"]["finalizers"] = json!([]);
        if finalizers(&object).is_empty() {
            store.remove(NAMESPACES, "", namespace);
            return;
        }
    }
    let conditions = conditions(&left, &object);
    if object["status"]["conditions"] != conditions {
        object["status"]["conditions"] = conditions;
        store.put(NAMESPACES, "", namespace, object);
    }
}

/// The five conditions the controller writes on every pass: problem states `True`, fine
/// states `False`.
fn conditions(left: &[(&'static ResourceType, Value)], previous: &Value) -> Value {
    let mut per_resource: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_finalizer: BTreeMap<String, usize> = BTreeMap::new();
    for (res, object) in left {
        // `<resource>.<group>`; every kind served is in the core group, whose name is empty.
        *per_resource.entry(format!("{}.", res.plural)).or_default() += 1;
        for f in finalizers(object) {
            *per_finalizer.entry(f).or_default() += 1;
        }
    }
    let remaining = (!per_resource.is_empty()).then(|| {
        let parts: Vec<String> = per_resource.iter().map(|(r, n)| format!("{r} has {n} resource instances")).collect();
        format!("Some resources are remaining: {}", parts.join(", "))
    });
    let finalizing = (!per_finalizer.is_empty()).then(|| {
        let parts: Vec<String> = per_finalizer.iter().map(|(f, n)| format!("{f} in {n} resource instances")).collect();
        format!("Some content in the namespace has finalizers remaining: {}", parts.join(", "))
    });
    let fine =
        |kind: &str, reason: &str, message: &str| (kind.to_string(), "False", reason.to_string(), message.to_string());
    let mut list = vec![
        fine("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
        fine(
            "NamespaceDeletionGroupVersionParsingFailure",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        fine(
            "NamespaceDeletionContentFailure",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
    ];
    list.push(match remaining {
        Some(m) => ("NamespaceContentRemaining".into(), "True", "SomeResourcesRemain".into(), m),
        None => fine("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    });
    list.push(match finalizing {
        Some(m) => ("NamespaceFinalizersRemaining".into(), "True", "SomeFinalizersRemain".into(), m),
        None => {
            fine("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished")
        }
    });
    let time = now();
    Value::Array(
        list.into_iter()
            .map(|(kind, status, reason, message)| {
                // lastTransitionTime changes only when the status flips.
                let before = previous["status"]["conditions"]
                    .as_array()
                    .and_then(|all| all.iter().find(|c| c["type"] == kind.as_str()))
                    .filter(|c| c["status"] == status)
                    .map(|c| c["lastTransitionTime"].clone());
                json!({"type": kind, "status": status, "lastTransitionTime": before.unwrap_or(json!(time)),
                       "reason": reason, "message": message})
            })
            .collect(),
    )
}
