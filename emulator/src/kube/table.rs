//! `meta.k8s.io/v1` Table answers (what `kubectl get` asks for with `Accept: ...;as=Table`),
//! with the columns the real server prints for each type.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::resources::ResourceType;

fn age(object: &Value) -> String {
    let created = object["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok());
    let Some(created) = created else { return "<unknown>".into() };
    let seconds = (OffsetDateTime::now_utc() - created).whole_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn columns(res: &ResourceType) -> Vec<(&'static str, &'static str)> {
    match res.kind {
        "Secret" => vec![("Name", "string"), ("Type", "string"), ("Data", "string"), ("Age", "string")],
        "ServiceAccount" => vec![("Name", "string"), ("Secrets", "string"), ("Age", "string")],
        "Namespace" => vec![("Name", "string"), ("Status", "string"), ("Age", "string")],
        "Pod" => vec![
            ("Name", "string"),
            ("Ready", "string"),
            ("Status", "string"),
            ("Restarts", "string"),
            ("Age", "string"),
        ],
        "ConfigMap" => vec![("Name", "string"), ("Data", "string"), ("Age", "string")],
        "Deployment" => vec![
            ("Name", "string"),
            ("Ready", "string"),
            ("Up-to-date", "string"),
            ("Available", "string"),
            ("Age", "string"),
        ],
        "ReplicaSet" => {
            vec![
                ("Name", "string"),
                ("Desired", "integer"),
                ("Current", "integer"),
                ("Ready", "integer"),
                ("Age", "string"),
            ]
        }
        "Event" => vec![
            ("Last Seen", "string"),
            ("Type", "string"),
            ("Reason", "string"),
            ("Object", "string"),
            ("Message", "string"),
        ],
        _ => vec![("Name", "string"), ("Age", "string")],
    }
}

fn count(value: &Value) -> usize {
    value.as_object().map(|m| m.len()).or_else(|| value.as_array().map(Vec::len)).unwrap_or(0)
}

fn pod_status(pod: &Value) -> String {
    for c in pod["status"]["containerStatuses"].as_array().into_iter().flatten() {
        if let Some(reason) = c["state"]["waiting"]["reason"].as_str() {
            return reason.to_string();
        }
    }
    pod["status"]["phase"].as_str().unwrap_or("Pending").to_string()
}

fn cells(res: &ResourceType, o: &Value) -> Vec<Value> {
    let name = json!(o["metadata"]["name"]);
    match res.kind {
        "Secret" => vec![name, o["type"].clone(), json!(count(&o["data"])), json!(age(o))],
        "ServiceAccount" => vec![name, json!(count(&o["secrets"])), json!(age(o))],
        "Namespace" => vec![name, o["status"]["phase"].clone(), json!(age(o))],
        "Pod" => {
            let statuses = o["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
            let total = count(&o["spec"]["containers"]);
            let ready = statuses.iter().filter(|c| c["ready"] == json!(true)).count();
            vec![name, json!(format!("{ready}/{total}")), json!(pod_status(o)), json!(0), json!(age(o))]
        }
        "ConfigMap" => vec![name, json!(count(&o["data"]) + count(&o["binaryData"])), json!(age(o))],
        "Deployment" => {
            let number = |field: &str| o["status"][field].as_u64().unwrap_or(0);
            let ready = format!("{}/{}", number("readyReplicas"), o["spec"]["replicas"].as_u64().unwrap_or(0));
            vec![
                name,
                json!(ready),
                json!(number("updatedReplicas")),
                json!(number("availableReplicas")),
                json!(age(o)),
            ]
        }
        "ReplicaSet" => {
            let number = |value: &Value| json!(value.as_u64().unwrap_or(0));
            vec![
                name,
                number(&o["spec"]["replicas"]),
                number(&o["status"]["replicas"]),
                number(&o["status"]["readyReplicas"]),
                json!(age(o)),
            ]
        }
        "Event" => vec![
            json!(age(o)),
            o["type"].clone(),
            o["reason"].clone(),
            json!(format!(
                "{}/{}",
                o["involvedObject"]["kind"].as_str().unwrap_or_default().to_ascii_lowercase(),
                o["involvedObject"]["name"].as_str().unwrap_or_default()
            )),
            o["message"].clone(),
        ],
        _ => vec![name, json!(age(o))],
    }
}

fn row(res: &ResourceType, object: &Value) -> Value {
    let mut meta = object["metadata"].clone();
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
    }
    json!({"cells": cells(res, object), "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
}

fn definitions(res: &ResourceType) -> Vec<Value> {
    columns(res)
        .into_iter()
        .map(|(name, kind)| {
            let format = if name == "Name" { "name" } else { "" };
            json!({"name": name, "type": kind, "format": format, "description": "", "priority": 0})
        })
        .collect()
}

pub(crate) fn list(res: &ResourceType, items: &[Value], metadata: Value) -> Value {
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
        "columnDefinitions": definitions(res),
        "rows": items.iter().map(|o| row(res, o)).collect::<Vec<_>>(),
    })
}

pub(crate) fn single(res: &ResourceType, object: &Value) -> Value {
    list(res, std::slice::from_ref(object), json!({"resourceVersion": object["metadata"]["resourceVersion"]}))
}
