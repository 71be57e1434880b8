//! Scale: list pages cost what is on them. The emulator counts the list items it turns into
//! JSON, so these tests measure work rather than wall time; one pages a 10,000-cluster world
//! and reports how long that took.

use std::time::{Duration, Instant};

use acrlink_emulator::{Emulator, World, generate_world};
use reqwest::StatusCode;

use crate::support::*;

const AKS: &str = "api-version=2026-08-01";
const ACR: &str = "api-version=2025-11-01";

/// A generated world, started, with a token for its default principal (Owner everywhere).
pub async fn start_generated(spec: &str) -> Env {
    let text = generate_world(spec).expect("generate");
    let world = World::from_toml_str(&text).expect("load");
    let emulator = Emulator::start(world, "127.0.0.1:0".parse().expect("addr")).await.expect("start");
    let info = emulator.ready_info();
    let client = client_for(&emulator);
    let token = fetch_token_in(
        &client,
        &info.arm_endpoint,
        &info.tenant_id,
        &info.env["AZURE_CLIENT_ID"],
        &info.env["AZURE_CLIENT_SECRET"],
    )
    .await;
    Env { client, base: info.arm_endpoint.clone(), token, emulator }
}

pub async fn subscription_ids(env: &Env) -> Vec<String> {
    let (subs, _) = env.list_all("/subscriptions?api-version=2022-12-01").await;
    subs.iter().map(|s| s["subscriptionId"].as_str().unwrap_or_default().to_string()).collect()
}

/// Follows a list and checks the emulator rendered each item once, whatever the page count.
async fn list_once(env: &Env, path: &str) -> (Vec<serde_json::Value>, usize) {
    let before = env.emulator.list_items_rendered();
    let (items, pages) = env.list_all(path).await;
    let rendered = env.emulator.list_items_rendered() - before;
    assert_eq!(
        rendered,
        items.len() as u64,
        "{path}: {} items in {pages} pages cost {rendered} rendered items",
        items.len()
    );
    (items, pages)
}

#[tokio::test]
async fn list_pages_render_only_their_own_items() {
    let env = start_generated("clusters=600,registries=60,subscriptions=2").await;
    let subs = subscription_ids(&env).await;
    let sub = &subs[0];
    let mc = format!("/subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters?{AKS}");
    let (clusters, pages) = list_once(&env, &mc).await;
    assert_eq!((clusters.len(), pages), (300, 15));
    let mc_rg = format!(
        "/subscriptions/{sub}/resourceGroups/rg-clusters/providers/Microsoft.ContainerService/managedClusters?{AKS}"
    );
    assert_eq!(list_once(&env, &mc_rg).await.0, clusters, "the same clusters, in the same order");
    let cr = format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries?{ACR}");
    let (registries, _) = list_once(&env, &cr).await;
    assert_eq!(registries.len(), 30);
    let resources = format!("/subscriptions/{sub}/resources?api-version=2024-11-01");
    assert_eq!(list_once(&env, &resources).await.0.len(), 330);
    let filtered = format!(
        "/subscriptions/{sub}/resources?$filter=resourceType eq 'Microsoft.ContainerRegistry/registries'&api-version=2024-11-01"
    );
    assert_eq!(list_once(&env, &filtered).await.0.len(), 30);

    let registry = registries[0]["id"].as_str().unwrap_or_default();
    let at_registry = format!("{registry}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01");
    let (assignments, _) = list_once(&env, &at_registry).await;
    // Owner and Reader at the subscription, AcrPull for attached clusters at the registry.
    assert!(assignments.len() >= 3, "{assignments:?}");
    let at_sub =
        format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01");
    let (everything, _) = list_once(&env, &at_sub).await;
    assert!(everything.len() > assignments.len());
}

#[tokio::test]
async fn ten_thousand_clusters_page_in_proportion() {
    let started = Instant::now();
    let env = start_generated("clusters=10000,registries=100,subscriptions=4").await;
    eprintln!("10,000-cluster world: generate + parse + start in {:?}", started.elapsed());
    let subs = subscription_ids(&env).await;
    let before = env.emulator.list_items_rendered();
    let started = Instant::now();
    let (mut clusters, mut pages) = (0, 0);
    for sub in &subs {
        let (items, p) = env
            .list_all(&format!("/subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters?{AKS}"))
            .await;
        assert_eq!(items.first().map(|c| c["properties"]["provisioningState"].clone()), Some("Succeeded".into()));
        clusters += items.len();
        pages += p;
    }
    let elapsed = started.elapsed();
    assert_eq!((clusters, pages), (10_000, 500));
    assert_eq!(env.emulator.list_items_rendered() - before, 10_000);
    let per_thousand = elapsed / 10;
    eprintln!(
        "10,000 clusters in {pages} pages of 20: {elapsed:?} ({per_thousand:?} per 1,000 clusters, {} build)",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    if !cfg!(debug_assertions) {
        assert!(per_thousand < Duration::from_secs(1), "{per_thousand:?} per 1,000 clusters");
    }

    // The same clusters through Resource Graph, 1,000 rows a page.
    let before = env.emulator.list_items_rendered();
    let started = Instant::now();
    let (mut rows, mut queries, mut token) = (0, 0, None::<String>);
    loop {
        let mut options = serde_json::json!({"$top": 1000});
        if let Some(t) = &token {
            options["$skipToken"] = t.clone().into();
        }
        let body = serde_json::json!({
            "subscriptions": subs,
            "query": "resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, name, resourceGroup, subscriptionId, location, tags, properties",
            "options": options,
        });
        let page = env.post("/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01", Some(&body)).await;
        assert_eq!(page.status, StatusCode::OK, "{page}");
        rows += page.body["count"].as_u64().unwrap_or_default();
        queries += 1;
        token = page.body["$skipToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!((rows, queries), (10_000, 10));
    assert_eq!(env.emulator.list_items_rendered() - before, 10_000);
    eprintln!("10,000 clusters through Resource Graph in {queries} queries of 1,000: {elapsed:?}");

    // Role assignments at each registry, the way a plan reads them.
    let (registries, _) = env
        .list_all(&format!("/subscriptions/{}/providers/Microsoft.ContainerRegistry/registries?{ACR}", subs[0]))
        .await;
    let started = Instant::now();
    for registry in &registries {
        let id = registry["id"].as_str().unwrap_or_default();
        let (assignments, _) = env
            .list_all(&format!("{id}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"))
            .await;
        assert!(!assignments.is_empty());
    }
    eprintln!("role assignments at {} registries: {:?}", registries.len(), started.elapsed());

    let ledger = env.emulator.ledger();
    assert_eq!(ledger.count("GET", "ManagedClusters_List"), 500);
    assert_eq!(ledger.count("POST", "Resources"), 10);
    assert_eq!(ledger.count_status(StatusCode::OK.as_u16()), ledger.total());
}
