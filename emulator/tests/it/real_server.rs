//! Differences from a real kube-apiserver (v1.28.7, ../shared/docs/kubernetes-behaviour.md)
//! that once hid engine bugs, each checked with the real server's exact texts.

use reqwest::StatusCode;
use serde_json::json;

use crate::kube_support::*;
use crate::support::*;

async fn prod() -> (Env, Kube) {
    let env = start().await;
    let kube = Kube::connect(&env, PROD, "rg-aks", "aks-prod-1").await;
    (env, kube)
}

#[tokio::test]
async fn empty_lists_and_maps_are_absent_as_go_omits_them() {
    let (_env, kube) = prod().await;
    kube.create_namespace("empty").await;
    let created = kube
        .post(
            "/api/v1/namespaces/empty/serviceaccounts",
            &json!({"metadata": {"name": "builder", "labels": {}, "annotations": {}}, "imagePullSecrets": []}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created}");
    for answer in [&created, &kube.get("/api/v1/namespaces/empty/serviceaccounts/builder").await] {
        assert!(answer.body.get("imagePullSecrets").is_none(), "{answer}");
        assert!(answer.body["metadata"].get("labels").is_none(), "{answer}");
        assert!(answer.body["metadata"].get("annotations").is_none(), "{answer}");
    }
    let sa = "/api/v1/namespaces/empty/serviceaccounts/default";
    kube.patch(sa, "application/merge-patch+json", &json!({"imagePullSecrets": [{"name": "regcred"}]})).await;
    let emptied = kube
        .patch(sa, "application/json-patch+json", &json!([{"op": "replace", "path": "/imagePullSecrets", "value": []}]))
        .await;
    assert_eq!(emptied.status, StatusCode::OK, "{emptied}");
    assert!(emptied.body.get("imagePullSecrets").is_none(), "{emptied}");
    let put = kube.put(sa, &json!({"metadata": {"name": "default", "labels": {}}, "imagePullSecrets": []})).await;
    assert!(put.body.get("imagePullSecrets").is_none() && put.body["metadata"].get("labels").is_none(), "{put}");
}

#[tokio::test]
async fn controller_made_default_service_account_never_gets_managed_fields() {
    let (_env, kube) = prod().await;
    kube.create_namespace("team").await;
    let sa = "/api/v1/namespaces/team/serviceaccounts/default";
    let before = kube.get(sa).await;
    assert!(before.body["metadata"].get("managedFields").is_none(), "{before}");
    let rv = before.body["metadata"]["resourceVersion"].clone();
    let patched = kube
        .patch(
            &format!("{sa}?fieldManager=acrlink"),
            "application/json-patch+json",
            &json!([{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                    {"op": "add", "path": "/imagePullSecrets", "value": [{"name": "acr-pull"}]}]),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched}");
    assert_eq!(patched.body["imagePullSecrets"], json!([{"name": "acr-pull"}]));
    assert!(patched.body["metadata"].get("managedFields").is_none(), "1.28 adds none: {patched}");
    let merged = kube
        .patch(
            &format!("{sa}?fieldManager=other"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"a": "b"}}}),
        )
        .await;
    assert!(merged.body["metadata"].get("managedFields").is_none(), "{merged}");

    // An object created through the API is tracked from its create on.
    let secret = json!({"metadata": {"name": "made"}, "type": "Opaque", "data": {"a": "Yg=="}});
    kube.post("/api/v1/namespaces/team/secrets?fieldManager=kubectl-create", &secret).await;
    let later = kube
        .patch(
            "/api/v1/namespaces/team/secrets/made?fieldManager=acrlink",
            "application/merge-patch+json",
            &json!({"data": {"b": "Yw=="}}),
        )
        .await;
    let managers: Vec<&str> = later.body["metadata"]["managedFields"]
        .as_array()
        .map(|all| all.iter().filter_map(|m| m["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["kubectl-create", "acrlink"], "{later}");
}
