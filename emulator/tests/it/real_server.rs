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

#[tokio::test]
async fn namespace_with_finalized_content_stays_terminating_and_refuses_creates() {
    let (_env, kube) = prod().await;
    kube.create_namespace("dying").await;
    let held = json!({"metadata": {"name": "held", "finalizers": ["example.com/keep"]}, "type": "Opaque"});
    kube.post("/api/v1/namespaces/dying/secrets", &held).await;
    kube.post("/api/v1/namespaces/dying/secrets", &json!({"metadata": {"name": "plain"}})).await;
    let deleted = kube.delete("/api/v1/namespaces/dying").await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted.body["status"]["phase"], "Terminating");
    let namespace = kube.get("/api/v1/namespaces/dying").await;
    assert_eq!(namespace.status, StatusCode::OK, "kept while content has finalizers");
    assert_eq!(namespace.body["status"]["phase"], "Terminating");
    let conditions = namespace.body["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let condition = |kind: &str| conditions.iter().find(|c| c["type"] == kind).cloned().unwrap_or_default();
    assert_eq!(conditions.len(), 5, "{namespace}");
    assert_eq!(
        condition("NamespaceContentRemaining")["message"],
        "Some resources are remaining: secrets. has 1 resource instances"
    );
    assert_eq!(
        condition("NamespaceFinalizersRemaining")["message"],
        "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"
    );
    assert_eq!(kube.get("/api/v1/namespaces/dying/secrets/plain").await.status, StatusCode::NOT_FOUND);
    let held_now = kube.get("/api/v1/namespaces/dying/secrets/held").await;
    assert!(held_now.body["metadata"]["deletionTimestamp"].is_string(), "{held_now}");

    let refused = kube.post("/api/v1/namespaces/dying/secrets", &json!({"metadata": {"name": "p"}})).await;
    assert_eq!(
        refused.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "secrets \"p\" is forbidden: unable to create new content in namespace dying because it is being terminated",
               "reason": "Forbidden",
               "details": {"name": "p", "kind": "secrets", "causes": [{"reason": "NamespaceTerminating", "message": "namespace dying is being terminated", "field": "metadata.namespace"}]},
               "code": 403})
    );
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let updated = kube
        .patch(
            "/api/v1/namespaces/dying/secrets/held",
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"a": "b"}}}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "updates are not refused: {updated}");

    // The last finalizer goes: the Secret goes, then the namespace.
    let released = kube
        .patch(
            "/api/v1/namespaces/dying/secrets/held",
            "application/merge-patch+json",
            &json!({"metadata": {"finalizers": null}}),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK, "{released}");
    assert_eq!(kube.get("/api/v1/namespaces/dying/secrets/held").await.status, StatusCode::NOT_FOUND);
    assert_eq!(kube.get("/api/v1/namespaces/dying").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_object_with_finalizers_is_only_marked_by_delete() {
    let (_env, kube) = prod().await;
    let held = json!({"metadata": {"name": "held", "finalizers": ["example.com/keep"]}});
    kube.post("/api/v1/namespaces/default/configmaps", &held).await;
    let deleted = kube.delete("/api/v1/namespaces/default/configmaps/held").await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["kind"], "ConfigMap", "the object, not a Status: {deleted}");
    assert!(deleted.body["metadata"]["deletionTimestamp"].is_string());
    let path = "/api/v1/namespaces/default/configmaps/held";
    assert_eq!(kube.get(path).await.status, StatusCode::OK);
    kube.patch(path, "application/json-patch+json", &json!([{"op": "remove", "path": "/metadata/finalizers"}])).await;
    assert_eq!(kube.get(path).await.status, StatusCode::NOT_FOUND);
}
