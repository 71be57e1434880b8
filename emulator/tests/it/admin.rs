//! The admin endpoint under `/_emulator/`: ledger, faults, settings and live-state changes
//! behind the client's back; and the same through the library handle.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

const AKS: &str = "api-version=2026-08-01";

#[tokio::test]
async fn the_ledger_counts_calls_per_route_and_is_resettable() {
    let env = start().await;
    env.get(&format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1"))).await;
    env.get(&format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-2"))).await;
    env.get(&format!("{}?{AKS}", cluster_path(DEV, "rg-dev", "aks-dev-1"))).await;
    let ledger = env.admin(Method::GET, "/ledger", None).await;
    assert_eq!(ledger.status, StatusCode::OK);
    assert_eq!(ledger.body["total"], 4, "one token request and three gets: {}", ledger.body);
    let entries = ledger.body["entries"].as_array().cloned().unwrap_or_default();
    let gets: Vec<_> = entries.iter().filter(|e| e["operation"] == "ManagedClusters_Get").collect();
    assert_eq!(gets.len(), 3, "one entry per cluster");
    assert_eq!(
        gets[0]["route"],
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService/managedClusters/{resourceName}"
    );
    let library = env.emulator.ledger();
    assert_eq!(library.count("GET", "ManagedClusters_Get"), 3);
    assert_eq!(library.count_subscription(PROD), 2);
    assert_eq!(library.count_cluster("aks-dev-1"), 1);
    assert_eq!(library.count_operation("Token"), 1);

    assert_eq!(env.admin(Method::DELETE, "/ledger", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.emulator.ledger().total(), 0, "admin calls are never counted");
    env.get(&format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1"))).await;
    env.emulator.reset_ledger();
    assert_eq!(env.emulator.ledger().total(), 0);
}

#[tokio::test]
async fn faults_can_be_replaced_and_extended_over_http() {
    let env = start().await;
    let put = env
        .admin(Method::PUT, "/faults", Some(&json!({"latency_ms": 0, "rules": [{"route": "Subscriptions_Get", "kind": "server_error", "count": 2}]})))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put}");
    let added = env
        .admin(Method::POST, "/faults/rules", Some(&json!({"route": "*", "method": "DELETE", "kind": "throttle"})))
        .await;
    assert_eq!(added.body["rules"].as_array().map(Vec::len), Some(2));
    let path = format!("/subscriptions/{PROD}?api-version=2022-12-01");
    assert_eq!(env.get(&path).await.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(env.admin(Method::GET, "/faults", None).await.body["rules"][0]["count"], 1);
    assert_eq!(env.admin(Method::DELETE, "/faults", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.get(&path).await.status, StatusCode::OK);
    let bad = env.admin(Method::PUT, "/faults", Some(&json!({"rules": [{"route": "*", "kind": "explode"}]}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn live_state_changes_behind_the_clients_back() {
    let env = start().await;
    let grant = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{EXISTING_GRANT}?api-version=2022-04-01",
        registry_scope()
    );
    assert_eq!(env.get(&grant).await.status, StatusCode::OK);
    let removed = env.admin(Method::DELETE, &format!("/role-assignments/{EXISTING_GRANT}"), None).await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(removed.body["principal_id"], KUBELET_PROD_1);
    assert_eq!(env.get(&grant).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        env.admin(Method::DELETE, &format!("/role-assignments/{EXISTING_GRANT}"), None).await.status,
        StatusCode::NOT_FOUND
    );

    let created = env
        .admin(
            Method::POST,
            "/role-assignments",
            Some(&json!({"name": EXISTING_GRANT, "scope": registry_scope(), "role": "AcrPull", "principal_id": KUBELET_PROD_1})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created}");
    assert_eq!(env.get(&grant).await.status, StatusCode::OK);
    let listed = env.admin(Method::GET, "/role-assignments", None).await;
    assert!(listed.body.as_array().is_some_and(|a| a.len() >= 7));

    let patched = env.admin(Method::PATCH, "/registries/acrabac", Some(&json!({"admin_user_enabled": true}))).await;
    assert_eq!(patched.body["admin_user_enabled"], true);
    let creds = env
        .post(
            &format!("/subscriptions/{PROD}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acrabac/listCredentials?api-version=2025-11-01"),
            None,
        )
        .await;
    assert_eq!(creds.status, StatusCode::OK);
    let rotated =
        env.admin(Method::POST, "/registries/acrprod/regenerate-credential", Some(&json!({"name": "password2"}))).await;
    assert_ne!(rotated.body["passwords"][1], "second-password");
    assert_eq!(rotated.body["repositories"]["team-a/app"], json!(["1.0", "latest"]));

    let clusters = env.admin(Method::GET, "/clusters", None).await;
    assert_eq!(clusters.body.as_array().map(Vec::len), Some(5));
    let principals = env.admin(Method::GET, "/principals", None).await;
    assert!(
        principals.body.as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "newbie" && p["visible"] == false))
    );
}

#[tokio::test]
async fn settings_and_minted_tokens() {
    let env = start().await;
    let mut settings = env.admin(Method::GET, "/settings", None).await.body;
    assert_eq!(settings["page_size"], 2);
    settings["page_size"] = json!(100);
    assert_eq!(env.admin(Method::PUT, "/settings", Some(&settings)).await.status, StatusCode::OK);
    let page =
        env.get(&format!("/subscriptions/{PROD}/providers/Microsoft.ContainerService/managedClusters?{AKS}")).await;
    assert!(page.body.get("nextLink").is_none());

    let minted =
        env.admin(Method::POST, "/tokens", Some(&json!({"client_id": READER_CLIENT, "lifetime_seconds": -5}))).await;
    let token = minted.body["access_token"].as_str().unwrap_or_default().to_string();
    let expired = env.get_as(&token, &format!("/subscriptions/{PROD}?api-version=2022-12-01")).await;
    assert_eq!(expired.code(), "ExpiredAuthenticationToken");
    assert_eq!(env.admin(Method::GET, "/nope", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(env.admin(Method::GET, "/health", None).await.body["status"], "ok");
}
