//! Field validation of the served kinds' top level and metadata: unknown fields are dropped
//! with a `Warning` header (`fieldValidation=Warn`, the server's default), dropped silently
//! (`Ignore`) or refused (`Strict`, kubectl's default: 400 `strict decoding error`); apply
//! configurations with unknown fields fail as typed patches do.

use serde_json::Value;

use super::status::{Failure, bad_request};

const META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn top_level(kind: &str) -> &'static [&'static str] {
    match kind {
        "Secret" => &["data", "stringData", "type", "immutable"],
        "ServiceAccount" => &["secrets", "imagePullSecrets", "automountServiceAccountToken"],
        "ConfigMap" => &["data", "binaryData", "immutable"],
        "Namespace" | "Pod" | "Deployment" | "ReplicaSet" => &["spec", "status"],
        "Event" => &[
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ],
        _ => &[],
    }
}

/// The unknown fields of `object`, as dotted paths (`foo`, `metadata.bar`).
pub(crate) fn unknown(kind: &str, object: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(map) = object.as_object() {
        for key in map.keys() {
            if !["apiVersion", "kind", "metadata"].contains(&key.as_str()) && !top_level(kind).contains(&key.as_str()) {
                found.push(key.clone());
            }
        }
    }
    if let Some(meta) = object["metadata"].as_object() {
        found.extend(meta.keys().filter(|k| !META.contains(&k.as_str())).map(|k| format!("metadata.{k}")));
    }
    found
}

fn strip(object: &mut Value, paths: &[String]) {
    for path in paths {
        match path.strip_prefix("metadata.") {
            Some(field) => {
                if let Some(meta) = object["metadata"].as_object_mut() {
                    meta.remove(field);
                }
            }
            None => {
                if let Some(map) = object.as_object_mut() {
                    map.remove(path);
                }
            }
        }
    }
}

/// Applies `fieldValidation` to a decoded object; returns the warnings to send.
pub(crate) fn check(kind: &str, validation: Option<&str>, object: &mut Value) -> Result<Vec<String>, Failure> {
    let found = unknown(kind, object);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let listed: Vec<String> = found.iter().map(|f| format!("unknown field \"{f}\"")).collect();
    match validation.unwrap_or("Warn") {
        "Strict" => Err(bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: strict decoding error: {}",
            listed.join(", ")
        ))),
        "Ignore" => {
            strip(object, &found);
            Ok(Vec::new())
        }
        _ => {
            strip(object, &found);
            Ok(listed)
        }
    }
}

/// Apply configurations are typed: an unknown field fails the whole patch.
pub(crate) fn check_apply(kind: &str, config: &Value) -> Result<(), Failure> {
    match unknown(kind, config).first() {
        None => Ok(()),
        Some(field) => Err(bad_request(format!(
            "failed to create typed patch object (/v1, Kind={kind}): .{field}: field not declared in schema"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_warn_ignore() {
        let object = json!({"metadata": {"name": "s", "colour": "red"}, "type": "Opaque", "foo": 1});
        let strict = check("Secret", Some("Strict"), &mut object.clone()).expect_err("strict");
        assert_eq!(
            strict.message,
            "Secret in version \"v1\" cannot be handled as a Secret: strict decoding error: unknown field \"foo\", unknown field \"metadata.colour\""
        );
        let mut warned = object.clone();
        assert_eq!(check("Secret", None, &mut warned).expect("warn").len(), 2);
        assert_eq!(warned, json!({"metadata": {"name": "s"}, "type": "Opaque"}));
        assert!(check_apply("Secret", &object).is_err());
    }
}
