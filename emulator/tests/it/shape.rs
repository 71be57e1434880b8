//! Responses have Azure's shapes: each emulator answer is compared key by key and type by type
//! with a fixture written from the official x-ms-examples (see tests/fixtures/README.md).

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// Maps whose keys are data (tags, identity ids), not schema: only their values' types count.
const DATA_MAPS: &[&str] =
    &["$.tags", "$.value[].tags", "$.identity.userAssignedIdentities", "$.value[].identity.userAssignedIdentities"];

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every difference in structure between a fixture and an answer. A `null` in the fixture
/// stands for "nullable": any type is accepted there.
fn differences(path: &str, fixture: &Value, actual: &Value, out: &mut Vec<String>) {
    if fixture.is_null() {
        return;
    }
    if kind(fixture) != kind(actual) {
        out.push(format!("{path}: fixture has {}, answer has {} ({actual})", kind(fixture), kind(actual)));
        return;
    }
    match (fixture, actual) {
        (Value::Object(f), Value::Object(a)) => {
            if DATA_MAPS.contains(&path) {
                return;
            }
            for (key, value) in f {
                match a.get(key) {
                    Some(other) => differences(&format!("{path}.{key}"), value, other, out),
                    None => out.push(format!("{path}.{key}: missing from the answer")),
                }
            }
            for key in a.keys().filter(|k| !f.contains_key(*k)) {
                out.push(format!("{path}.{key}: not in the fixture"));
            }
        }
        (Value::Array(f), Value::Array(a)) => {
            if let Some(template) = f.first() {
                // An empty list proves nothing about its items' shape; a page must have some.
                if a.is_empty() && path == "$.value" {
                    out.push(format!("{path}: the fixture shows items, the answer has none"));
                }
                for item in a {
                    differences(&format!("{path}[]"), template, item, out);
                }
            }
        }
        _ => {}
    }
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_shape(name: &str, answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{name}: {answer}");
    if let Some(dir) = std::env::var_os("ACRLINK_DUMP_SHAPES") {
        // Writing down answers (to review them against the examples) replaces comparing them.
        let _ = std::fs::write(
            PathBuf::from(dir).join(format!("{name}.json")),
            serde_json::to_string_pretty(&answer.body).unwrap_or_default(),
        );
        return;
    }
    let mut out = Vec::new();
    differences("$", &fixture(name), &answer.body, &mut out);
    assert!(out.is_empty(), "{name} differs from its fixture:\n  {}", out.join("\n  "));
}

#[test]
fn the_comparison_itself_catches_differences() {
    let mut out = Vec::new();
    differences(
        "$",
        &json!({"a": 1, "b": {"c": "x"}, "l": [{"n": true}]}),
        &json!({"a": "1", "b": {}, "l": [{"n": true, "m": 1}], "z": 0}),
        &mut out,
    );
    assert_eq!(out.len(), 4, "{out:#?}");
    let mut none = Vec::new();
    differences("$", &json!({"a": null, "tags": {"k": "v"}}), &json!({"a": 5, "tags": {"other": "v"}}), &mut none);
    assert!(none.is_empty(), "{none:#?}");
}

#[tokio::test]
async fn responses_match_the_official_examples() {
    let env = start().await;
    let cluster = cluster_path(PROD, "rg-aks", "aks-prod-1");
    assert_shape("managed_cluster_get", &env.get(&format!("{cluster}?api-version=2026-08-01")).await, StatusCode::OK);
    assert_shape(
        "managed_cluster_list",
        &env.get(&format!("/subscriptions/{PROD}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters?api-version=2026-07-01")).await,
        StatusCode::OK,
    );
    assert_shape(
        "managed_cluster_credentials",
        &env.post(&format!("{cluster}/listClusterUserCredential?api-version=2026-04-01"), None).await,
        StatusCode::OK,
    );
    let registry =
        format!("/subscriptions/{PROD}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acrprod");
    assert_shape("registry_get", &env.get(&format!("{registry}?api-version=2025-11-01")).await, StatusCode::OK);
    assert_shape(
        "registry_list",
        &env.get(&format!("/subscriptions/{PROD}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01&$skiptoken=1")).await,
        StatusCode::OK,
    );
    assert_shape(
        "registry_list_credentials",
        &env.post(&format!("{registry}/listCredentials?api-version=2025-11-01"), None).await,
        StatusCode::OK,
    );
    assert_shape(
        "scope_map_get",
        &env.get(&format!("{registry}/scopeMaps/team-a-pull?api-version=2025-11-01")).await,
        StatusCode::OK,
    );
    assert_shape(
        "registry_token_get",
        &env.get(&format!("{registry}/tokens/ci-token?api-version=2025-11-01")).await,
        StatusCode::OK,
    );

    let scope = registry_scope();
    assert_shape(
        "role_assignment_list",
        &env.get(&format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"
        ))
        .await,
        StatusCode::OK,
    );
    let name = "0f0f0f0f-0000-4000-8000-0000000000aa";
    let body = json!({"properties": {
        "roleDefinitionId": format!("/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"),
        "principalId": KUBELET_PROD_2,
        "principalType": "ServicePrincipal",
    }});
    let one = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01");
    assert_shape("role_assignment", &env.put(&one, &body).await, StatusCode::CREATED);
    assert_shape("role_assignment", &env.put(&one, &body).await, StatusCode::OK);
    assert_shape("role_assignment", &env.get(&one).await, StatusCode::OK);
    assert_shape("role_assignment", &env.delete(&one).await, StatusCode::OK);
    assert_eq!(env.delete(&one).await.body, Value::Null, "204 has no body");

    assert_shape(
        "role_definition_list",
        &env.get(&format!("/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=roleName%20eq%20%27AcrPull%27")).await,
        StatusCode::OK,
    );
    assert_shape(
        "role_definition_get",
        &env.get(&format!(
            "/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}?api-version=2022-04-01"
        ))
        .await,
        StatusCode::OK,
    );
    let (status, token) = token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "s3cret"),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_shape("token", &Answer { status, headers: Default::default(), body: token }, StatusCode::OK);
    let (status, error) = token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "wrong"),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_shape("token_error", &Answer { status, headers: Default::default(), body: error }, StatusCode::UNAUTHORIZED);
    assert_shape(
        "arm_error",
        &env.get(&format!("{}?api-version=2026-08-01", cluster_path(PROD, "rg-aks", "missing"))).await,
        StatusCode::NOT_FOUND,
    );
}
