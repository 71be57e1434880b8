//! The OpenAPI v3 schemas `kubectl explain` reads: the Secret and the ObjectMeta it refers to,
//! with the fields the server knows and short descriptions of our own (not the upstream
//! documentation texts). Other kinds carry no schema, so `kubectl explain` knows only Secret.

use serde_json::{Value, json};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn string_map(description: &str, format: Option<&str>) -> Value {
    let mut item = json!({"type": "string"});
    if let Some(format) = format {
        item["format"] = json!(format);
    }
    json!({"type": "object", "additionalProperties": item, "description": description})
}

fn object_meta() -> Value {
    json!({
        "type": "object",
        "description": "Metadata every persisted object has: its name, namespace, labels, annotations and the fields the server sets.",
        "properties": {
            "annotations": string_map("Unstructured key/value data attached to the object.", None),
            "creationTimestamp": {"type": "string", "format": "date-time", "description": "When the server created the object (read-only)."},
            "deletionTimestamp": {"type": "string", "format": "date-time", "description": "When deletion was requested (read-only)."},
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""}, "description": "What must happen before the object is removed from the registry."},
            "generateName": string("Prefix the server completes into a unique name when `name` is empty."),
            "generation": {"type": "integer", "format": "int64", "description": "Sequence number of the desired state (read-only)."},
            "labels": string_map("Key/value pairs selectors match on.", None),
            "name": string("Unique name within the namespace."),
            "namespace": string("The namespace the object lives in."),
            "resourceVersion": string("Opaque version of the object, for optimistic concurrency (read-only)."),
            "uid": string("Unique id of the object in time and space (read-only)."),
        },
    })
}

fn secret() -> Value {
    json!({
        "type": "object",
        "description": "Secret holds secret data of a certain type.",
        "properties": {
            "apiVersion": string("The versioned schema of this representation of an object."),
            "data": string_map("The secret data: each key a file name, each value base64-encoded bytes.", Some("byte")),
            "immutable": {"type": "boolean", "description": "When true, data cannot change (only delete and recreate)."},
            "kind": string("The REST resource this object represents."),
            "metadata": {"allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}], "default": {}, "description": "Standard object's metadata."},
            "stringData": string_map("Write-only convenience: plain-text values merged into data on write.", None),
            "type": string("How the data is to be used, e.g. Opaque or kubernetes.io/dockerconfigjson."),
        },
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Secret", "version": "v1"}],
    })
}

/// `components.schemas` of a group-version document.
pub(crate) fn schemas(group: &str) -> Value {
    if !group.is_empty() {
        return json!({});
    }
    json!({"io.k8s.api.core.v1.Secret": secret(), OBJECT_META: object_meta()})
}
