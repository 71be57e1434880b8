//! Throttling buckets and every injected fault: forced 429, 5xx, dropped connections,
//! latency with jitter, and principals invisible after creation.

use std::time::{Duration, Instant};

use acrlink_emulator::{FaultKind, FaultRule, Faults};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

const AKS: &str = "api-version=2026-08-01";

fn rule(route: &str, kind: FaultKind, count: u32) -> FaultRule {
    FaultRule { route: route.into(), method: None, kind, count, status: None, retry_after_seconds: None }
}

#[tokio::test]
async fn read_buckets_run_dry_per_principal_and_subscription() {
    let world = WORLD.replace(
        "[settings]\n",
        "[settings]\nthrottle = { reads = { capacity = 3, refill_per_second = 0.5 }, writes = { capacity = 5, refill_per_second = 1.0 }, deletes = { capacity = 5, refill_per_second = 1.0 } }\n",
    );
    let env = start_world(&world).await;
    let cluster = format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1"));
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let ok = env.get(&cluster).await;
        assert_eq!(ok.status, StatusCode::OK);
        remaining.push(ok.header("x-ms-ratelimit-remaining-subscription-reads").unwrap_or_default().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let throttled = env.get(&cluster).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.code(), "TooManyRequests");
    assert!(throttled.message().contains("'Read'"), "{throttled}");
    let retry_after: u64 = throttled.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");

    // Writes have their own bucket; other subscriptions and other principals too.
    let write = env
        .post(&format!("{}/listClusterUserCredential?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1")), None)
        .await;
    assert_eq!(write.status, StatusCode::OK);
    assert!(write.header("x-ms-ratelimit-remaining-subscription-writes").is_some());
    assert_eq!(env.get(&format!("{}?{AKS}", cluster_path(DEV, "rg-dev", "aks-dev-1"))).await.status, StatusCode::OK);
    let reader = fetch_token(&env.client, &env.base, READER_CLIENT, "reader-secret").await;
    assert_eq!(env.get_as(&reader, &cluster).await.status, StatusCode::OK);

    // The bucket refills.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(env.get(&cluster).await.status, StatusCode::OK);
}

#[tokio::test]
async fn forced_throttling_for_the_next_calls_of_a_route() {
    let env = start().await;
    let mut throttle = rule("ManagedClusters_Get", FaultKind::Throttle, 2);
    throttle.retry_after_seconds = Some(7);
    env.emulator.add_fault(throttle);
    let cluster = format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1"));
    for _ in 0..2 {
        let answer = env.get(&cluster).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.header("retry-after"), Some("7"));
    }
    assert_eq!(env.get(&cluster).await.status, StatusCode::OK);
    // Other routes were never affected.
    let ledger = env.emulator.ledger();
    assert_eq!(ledger.count("GET", "ManagedClusters_Get"), 3);
    assert_eq!(ledger.count_status(429), 2);
    assert!(env.emulator.faults().rules.is_empty(), "the spent rule is gone");
}

#[tokio::test]
async fn server_errors_and_their_bodies() {
    let env = start().await;
    let mut unavailable = rule(
        "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/managedClusters",
        FaultKind::ServerError,
        1,
    );
    unavailable.status = Some(503);
    env.emulator.add_fault(unavailable);
    env.emulator.add_fault(rule("Token", FaultKind::ServerError, 1));
    let list = format!("/subscriptions/{PROD}/providers/Microsoft.ContainerService/managedClusters?{AKS}");
    let failed = env.get(&list).await;
    assert_eq!((failed.status, failed.code()), (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"));
    assert_eq!(env.get(&list).await.status, StatusCode::OK);
    let (status, body) = token_response(
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
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn dropped_connections_fail_the_call_and_are_counted() {
    let env = start().await;
    let mut drop_put = rule("RoleAssignments_Create", FaultKind::Drop, 1);
    drop_put.method = Some("PUT".into());
    env.emulator.add_fault(drop_put);
    let path = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/0f0f0f0f-0000-4000-8000-00000000000d?api-version=2022-04-01",
        registry_scope()
    );
    let body = json!({"properties": {"roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"), "principalId": KUBELET_PROD_2, "principalType": "ServicePrincipal"}});
    let result = env.client.put(env.url(&path)).bearer_auth(&env.token).json(&body).send().await;
    assert!(result.is_err(), "the connection was closed without an answer: {result:?}");
    assert_eq!(env.emulator.ledger().count_status(0), 1);
    let retried = env.put(&path, &body).await;
    assert_eq!(retried.status, StatusCode::CREATED, "nothing was created by the dropped call: {retried}");
}

#[tokio::test]
async fn latency_and_jitter_delay_answers() {
    let env = start().await;
    env.emulator.set_faults(Faults { latency_ms: 150, jitter_ms: 50, ..Faults::default() });
    let path = format!("/subscriptions/{PROD}?api-version=2022-12-01");
    let started = Instant::now();
    assert_eq!(env.get(&path).await.status, StatusCode::OK);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    env.emulator.set_faults(Faults::default());
    let started = Instant::now();
    env.get(&path).await;
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[tokio::test]
async fn faults_from_the_world_file_are_active_at_start() {
    let world = format!(
        "{WORLD}\n[faults]\nrules = [{{ route = \"Subscriptions_List\", kind = \"throttle\", count = 1, retry_after_seconds = 3 }}]\n"
    );
    let env = start_world(&world).await;
    let first = env.get("/subscriptions?api-version=2022-12-01").await;
    assert_eq!(first.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.header("retry-after"), Some("3"));
    assert_eq!(env.get("/subscriptions?api-version=2022-12-01").await.status, StatusCode::OK);
}

#[tokio::test]
async fn principals_created_at_runtime_stay_invisible_for_a_while() {
    let env = start().await;
    env.emulator.set_faults(Faults { principal_invisible_seconds: 0.5, ..Faults::default() });
    let created = env
        .admin(
            reqwest::Method::POST,
            "/principals",
            Some(&json!({"name": "late-sp", "client_id": "a0000000-0000-0000-0000-0000000000ff", "secret": "late"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created}");
    assert_eq!(created.body["visible"], false);
    let object_id = created.body["object_id"].as_str().unwrap_or_default().to_string();
    let (status, _) = token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "a0000000-0000-0000-0000-0000000000ff"),
            ("client_secret", "late"),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not replicated to Entra yet");
    let path = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/0f0f0f0f-0000-4000-8000-0000000000ee?api-version=2022-04-01",
        registry_scope()
    );
    let body = json!({"properties": {"roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"), "principalId": object_id}});
    assert_eq!(env.put(&path, &body).await.code(), "PrincipalNotFound");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(env.put(&path, &body).await.status, StatusCode::CREATED);
    fetch_token(&env.client, &env.base, "a0000000-0000-0000-0000-0000000000ff", "late").await;
}
