//! Discovery: `/version`, `/api`, `/api/v1`, `/apis`, and reduced OpenAPI documents
//! (`/openapi/v2`, `/openapi/v3`). kubectl builds its REST mapping from these; the server
//! offers no aggregated discovery, and kubectl falls back to the legacy documents as it does
//! with older servers.

use serde_json::{Value, json};

use super::resources::RESOURCES;
use super::routes::Discovery;
use super::status::no_such_path;
use crate::http::Reply;

fn version(kubernetes_version: &str) -> Value {
    let mut parts = kubernetes_version.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major, "minor": minor, "gitVersion": format!("v{kubernetes_version}"),
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-06-17T18:36:08Z", "goVersion": "go1.24.4", "compiler": "gc", "platform": "linux/amd64",
    })
}

/// The APIResourceList of one group-version: `v1` (group "") or `apps/v1`.
fn resource_list(group: &str) -> Value {
    let mut resources: Vec<Value> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        let mut entry = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
            "verbs": r.verbs, "storageVersionHash": format!("{:x}", r.plural.len() * 7919),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        resources.push(entry);
        if matches!(r.kind, "Pod" | "Namespace" | "Deployment" | "ReplicaSet") {
            resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let group_version = if group.is_empty() { "v1".to_string() } else { format!("{group}/v1") };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn apps_group() -> Value {
    let version = json!({"groupVersion": "apps/v1", "version": "v1"});
    json!({"name": "apps", "versions": [version], "preferredVersion": version})
}

/// `/openapi/v3`: the root lists the group-version documents.
pub(crate) fn openapi_root() -> Value {
    json!({"paths": {
        "api/v1": {"serverRelativeURL": format!("/openapi/v3/api/v1?hash={OPENAPI_HASH}")},
        "apis/apps/v1": {"serverRelativeURL": format!("/openapi/v3/apis/apps/v1?hash={OPENAPI_HASH}")},
    }})
}

const OPENAPI_HASH: &str = "6A1E0E6F0EB5C6F9A0D8E0A2C0A1E5B7D3C3F1A6E2B8E4C0D9F7A3B5C1E2D4F6";

/// `/openapi/v3/api/v1` and `/openapi/v3/apis/apps/v1`, reduced to what kubectl reads from
/// them: each kind's PATCH operation and its `fieldValidation` parameter (so kubectl
/// validates on the server, not from schemas).
pub(crate) fn openapi_group(group: &str, kubernetes_version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        let path = if r.namespaced {
            format!("{}/namespaces/{{namespace}}/{}/{{name}}", r.path_prefix(), r.plural)
        } else {
            format!("{}/{}/{{name}}", r.path_prefix(), r.plural)
        };
        let parameter =
            |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}{}{}", r.operation_group(), if r.namespaced { "Namespaced" } else { "" }, r.operation),
                "parameters": [parameter("dryRun"), parameter("fieldManager"), parameter("fieldValidation"), parameter("force")],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": r.group, "version": "v1", "kind": r.kind},
            }}),
        );
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": format!("v{kubernetes_version}")}, "paths": paths, "components": {"schemas": super::explain::schemas(group)}})
}

/// The protobuf media type of `/openapi/v2` (gnostic's `openapi_v2.Document`), as kubectl
/// 1.28 asks for it and as the server names it in its answer.
const OPENAPI_V2_PROTOBUF_ASKED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `/openapi/v2`, reduced as the v3 documents are: the swagger version and info, no paths
/// and no definitions. kubectl 1.28 fetches and parses it before every `create -f` /
/// `apply -f` / `diff`; with no definition for a kind it skips client-side schema checks
/// (the server validates: see the v3 documents) and builds apply patches from its
/// built-in types.
fn openapi_v2(kubernetes_version: &str, accept: &str) -> Reply {
    let version = format!("v{kubernetes_version}");
    if accept.contains(OPENAPI_V2_PROTOBUF_ASKED) || accept.contains(OPENAPI_V2_PROTOBUF) {
        // Document { swagger = 1; info = 2 { title = 1; version = 2 } }.
        let mut info = Vec::new();
        proto_string(&mut info, 1, "Kubernetes");
        proto_string(&mut info, 2, &version);
        let mut document = Vec::new();
        proto_string(&mut document, 1, "2.0");
        proto_bytes(&mut document, 2, &info);
        return Reply { status: 200, body: Some(document), content_type: OPENAPI_V2_PROTOBUF, headers: Vec::new() };
    }
    Reply::json(
        200,
        &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": version}, "paths": {}, "definitions": {}}),
    )
}

/// A length-delimited protobuf field.
fn proto_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push((field << 3) | 2);
    let mut len = bytes.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
}

fn proto_string(out: &mut Vec<u8>, field: u8, text: &str) {
    proto_bytes(out, field, text.as_bytes());
}

pub(crate) fn answer(which: &Discovery, kubernetes_version: &str, server_address: &str, accept: &str) -> Reply {
    match which {
        Discovery::Version => Reply::json(200, &version(kubernetes_version)),
        Discovery::Api => Reply::json(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}),
        ),
        Discovery::ApiV1 => Reply::json(200, &resource_list("")),
        Discovery::Apis => {
            Reply::json(200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [apps_group()]}))
        }
        Discovery::AppsGroup => {
            let mut group = apps_group();
            group["kind"] = json!("APIGroup");
            group["apiVersion"] = json!("v1");
            Reply::json(200, &group)
        }
        Discovery::AppsV1 => Reply::json(200, &resource_list("apps")),
        Discovery::OpenApiV3Root => Reply::json(200, &openapi_root()),
        Discovery::OpenApiV3 => Reply::json(200, &openapi_group("", kubernetes_version)),
        Discovery::OpenApiV3Apps => Reply::json(200, &openapi_group("apps", kubernetes_version)),
        Discovery::OpenApiV2 => openapi_v2(kubernetes_version, accept),
        Discovery::OpenApi => no_such_path().reply(),
    }
}
