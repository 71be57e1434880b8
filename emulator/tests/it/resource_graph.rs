//! Azure Resource Graph: the query forms acrlink sends, paging with `$skipToken`, the quota
//! headers and 429, the 400 for anything outside the emulated KQL subset, and rows that agree
//! with what ARM's own lists answer.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::scale::{start_generated, subscription_ids};
use crate::support::*;

const ARG: &str = "/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01";
const CLUSTERS: &str = "resources | where type =~ 'microsoft.containerservice/managedclusters'";
const REGISTRIES: &str = "resources | where type =~ 'microsoft.containerregistry/registries'";
const ASSIGNMENTS: &str = "authorizationresources | where type =~ 'microsoft.authorization/roleassignments'";

async fn query(env: &Env, subscriptions: &[&str], text: &str, options: Value) -> Answer {
    env.post(ARG, Some(&json!({"subscriptions": subscriptions, "query": text, "options": options}))).await
}

/// Every row of a query, following `$skipToken`; checks each page's counts.
async fn query_all(env: &Env, subscriptions: &[&str], text: &str, top: usize) -> (Vec<Value>, usize) {
    let mut rows = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut options = json!({"$top": top, "resultFormat": "objectArray"});
        if let Some(t) = &token {
            options["$skipToken"] = json!(t);
        }
        let page = query(env, subscriptions, text, options).await;
        assert_eq!(page.status, StatusCode::OK, "{page}");
        pages += 1;
        let data = page.body["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(page.body["count"], json!(data.len()));
        assert_eq!(page.body["resultTruncated"], json!("false"));
        assert_eq!(page.body["facets"], json!([]));
        rows.extend(data);
        match page.body["$skipToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => {
                assert_eq!(page.body["totalRecords"], json!(rows.len()), "the last page ends the result");
                return (rows, pages);
            }
        }
        assert!(pages < 1000, "paging does not end");
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = rows.iter().map(|r| r["id"].as_str().unwrap_or_default().to_ascii_lowercase()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn clusters_and_registries_by_type_group_and_projection() {
    let env = start().await;
    let clusters = query(&env, &[PROD, DEV], CLUSTERS, json!({"resultFormat": "objectArray"})).await;
    assert_eq!(clusters.status, StatusCode::OK, "{clusters}");
    assert_eq!((clusters.body["totalRecords"].clone(), clusters.body["count"].clone()), (json!(5), json!(5)));
    assert!(clusters.body.get("$skipToken").is_none());
    let row = clusters.body["data"]
        .as_array()
        .and_then(|d| d.iter().find(|r| r["name"] == "aks-prod-1"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["type"], "microsoft.containerservice/managedclusters");
    assert_eq!((row["subscriptionId"].as_str(), row["resourceGroup"].as_str()), (Some(PROD), Some("rg-aks")));
    assert_eq!(row["tenantId"], TENANT);
    let arm = env.get(&format!("{}?api-version=2026-08-01", cluster_path(PROD, "rg-aks", "aks-prod-1"))).await;
    for column in ["id", "name", "location", "tags", "properties", "identity", "sku"] {
        assert_eq!(row[column], arm.body[column], "{column}");
    }

    let in_group = format!("{CLUSTERS} | where resourceGroup =~ 'RG-AKS'");
    let in_group = query(&env, &[PROD, DEV], &in_group, json!({})).await;
    assert_eq!(in_group.body["totalRecords"], 3, "{in_group}");
    let projected = format!("{CLUSTERS} | project id, name, resourceGroup, subscriptionId, location, tags, properties");
    let projected = query(&env, &[DEV], &projected, json!({})).await;
    let first = projected.body["data"][0].as_object().cloned().unwrap_or_default();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "location", "name", "properties", "resourceGroup", "subscriptionId", "tags"]);

    let registries = query(&env, &[PROD], REGISTRIES, json!({})).await;
    let names: Vec<&str> = registries.body["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["acrabac", "acrprod"]);
    assert_eq!(registries.body["data"][0]["properties"]["roleAssignmentMode"], "AbacRepositoryPermissions");

    let docs_form = "Resources\n| where type =~ 'microsoft.containerservice/managedclusters'\n| project id, name, subscriptionId, resourceGroup, location,\n  kubeletObjectId = tostring(properties.identityProfile.kubeletidentity.objectId),\n  spClientId = tostring(properties.servicePrincipalProfile.clientId)\n| order by id asc";
    let docs_form = query(&env, &[PROD, DEV], docs_form, json!({"$top": 1000})).await;
    let data = docs_form.body["data"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = data.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["aks-prod-1", "aks-prod-2", "aks-prod-3", "aks-dev-1", "aks-old"], "by id, ascending");
    assert_eq!(data[0]["kubeletObjectId"], KUBELET_PROD_1);
    assert_eq!(data[4]["kubeletObjectId"], "", "a service-principal cluster has none");
    assert_eq!(data[4]["spClientId"], "f0000000-0000-0000-0000-000000000001");
    assert_eq!(env.emulator.ledger().count("POST", "Resources"), 5);
}

#[tokio::test]
async fn role_assignments_at_a_registry_scope() {
    let env = start().await;
    let registry = registry_scope();
    let (all, _) = env
        .list_all(&format!("{registry}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"))
        .await;
    // ARM lists the grants above the registry too; Resource Graph is asked for those at it.
    let at_registry_all: Vec<Value> = all.into_iter().filter(|a| a["properties"]["scope"] == json!(registry)).collect();
    assert!(at_registry_all.len() >= 2, "{at_registry_all:?}");

    for form in [
        format!("{ASSIGNMENTS} | where properties.scope startswith '{}'", registry.to_uppercase()),
        format!("{ASSIGNMENTS} | where properties.scope =~ '{registry}'"),
        format!(
            "{ASSIGNMENTS} | extend scope = tostring(properties.scope) | where scope in~ ('{registry}') | order by id asc"
        ),
    ] {
        let answer = query(&env, &[PROD], &form, json!({})).await;
        assert_eq!(answer.status, StatusCode::OK, "{form}: {answer}");
        let rows = answer.body["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(ids(&rows), ids(&at_registry_all), "{form}");
        for row in &rows {
            let same = at_registry_all.iter().find(|a| a["name"] == row["name"]).cloned().unwrap_or_default();
            assert_eq!(row["properties"], same["properties"], "{form}");
            assert_eq!(row["type"], "microsoft.authorization/roleassignments");
            assert_eq!((row["subscriptionId"].as_str(), row["resourceGroup"].as_str()), (Some(PROD), Some("rg-acr")));
        }
    }
    let exact = query(&env, &[PROD], ASSIGNMENTS, json!({"authorizationScopeFilter": "AtScopeExact"})).await;
    let scopes: Vec<&str> = exact.body["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|r| r["properties"]["scope"].as_str()).collect())
        .unwrap_or_default();
    assert!(scopes.len() >= 3 && scopes.iter().all(|s| *s == format!("/subscriptions/{PROD}")), "{scopes:?}");
    let below = query(&env, &[PROD], ASSIGNMENTS, json!({})).await;
    assert!(below.body["totalRecords"].as_u64() > Some(scopes.len() as u64), "AtScopeAndBelow by default");

    let projected = format!(
        "{ASSIGNMENTS} | where properties.scope =~ '{registry}' | project id, name, principalId = tostring(properties.principalId), roleDefinitionId = tostring(properties.roleDefinitionId)"
    );
    let projected = query(&env, &[PROD], &projected, json!({})).await;
    let row = projected.body["data"]
        .as_array()
        .and_then(|d| d.iter().find(|r| r["name"] == EXISTING_GRANT))
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["principalId"], KUBELET_PROD_1);
    assert!(row["roleDefinitionId"].as_str().is_some_and(|r| r.ends_with(ACR_PULL)), "{row}");
}

#[tokio::test]
async fn pages_follow_skip_token_and_render_only_the_page() {
    let env = start_generated("clusters=250,registries=5,subscriptions=2").await;
    let subs = subscription_ids(&env).await;
    let subs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let before = env.emulator.list_items_rendered();
    let (rows, pages) = query_all(&env, &subs, CLUSTERS, 100).await;
    assert_eq!((rows.len(), pages), (250, 3));
    assert_eq!(env.emulator.list_items_rendered() - before, 250, "each row rendered once");
    let mut unique = ids(&rows);
    unique.dedup();
    assert_eq!(unique.len(), 250);

    let first = query(&env, &subs, CLUSTERS, json!({})).await;
    assert_eq!(
        (first.body["count"].clone(), first.body["totalRecords"].clone()),
        (json!(100), json!(250)),
        "100 by default"
    );
    let skipped = query(&env, &subs, CLUSTERS, json!({"$skip": 240, "$top": 20})).await;
    assert_eq!(skipped.body["count"], 10);
    let no_id = query(&env, &subs, &format!("{CLUSTERS} | project name"), json!({"$top": 10})).await;
    assert_eq!(no_id.body["resultTruncated"], "true", "{no_id}");
    assert!(no_id.body.get("$skipToken").is_none(), "paging needs the id column");
    let bad_token = query(&env, &subs, CLUSTERS, json!({"$skipToken": "not-a-token"})).await;
    assert_eq!(bad_token.status, StatusCode::BAD_REQUEST);
    for top in [0, 1001] {
        assert_eq!(query(&env, &subs, CLUSTERS, json!({"$top": top})).await.status, StatusCode::BAD_REQUEST, "{top}");
    }
    let too_many: Vec<String> = (0..1001).map(|i| format!("00000000-0000-0000-0000-{i:012}")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    assert_eq!(query(&env, &too_many, CLUSTERS, json!({})).await.status, StatusCode::BAD_REQUEST);
    let thousand = &too_many[..1000];
    assert_eq!(
        query(&env, thousand, CLUSTERS, json!({})).await.body["totalRecords"],
        0,
        "unknown subscriptions: no rows"
    );
}

#[tokio::test]
async fn queries_outside_the_subset_get_resource_graphs_400() {
    let env = start().await;
    for text in [
        "resources | summarize count() by type",
        "resources | join (resourcecontainers) on subscriptionId",
        "resources | parse id with * '/providers/' provider",
        "securityresources | where type == 'x'",
        "resources | where substring(name, 0, 3) == 'aks'",
        "resources | where type =~ 'microsoft.containerservice/managedclusters",
        "resources | where",
        "resources | project name | where id == 'x'",
    ] {
        let answer = query(&env, &[PROD], text, json!({})).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{text}: {answer}");
        assert_eq!(answer.code(), "BadRequest", "{text}");
        assert!(answer.message().contains("correlationId"), "{text}");
        assert_eq!(answer.body["error"]["details"][0]["code"], "InvalidQuery", "{text}");
        assert!(answer.body["error"]["details"][1]["code"].is_string(), "{text}");
    }
    let parse = query(&env, &[PROD], "resources | where type =~ 'x", json!({})).await;
    assert_eq!(parse.body["error"]["details"][1]["code"], "ParserFailure");
    assert_eq!(parse.body["error"]["details"][1]["characterPositionInLine"], 26);
    let unsupported = query(&env, &[PROD], "resources | summarize count()", json!({})).await;
    assert_eq!(unsupported.body["error"]["details"][1]["token"], "summarize");
    let table = query(&env, &[PROD], CLUSTERS, json!({"resultFormat": "table"})).await;
    assert_eq!(table.status, StatusCode::BAD_REQUEST);
    let missing = env.post(ARG, Some(&json!({"subscriptions": [PROD]}))).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    let old = env
        .post("/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01", Some(&json!({"query": CLUSTERS})))
        .await;
    assert_eq!(old.status, StatusCode::OK, "2021-03-01 is served; no subscriptions: every visible one");
    assert_eq!(old.body["totalRecords"], 5);
    let unknown = env
        .post("/providers/Microsoft.ResourceGraph/resources?api-version=2020-01-01", Some(&json!({"query": CLUSTERS})))
        .await;
    assert_eq!(unknown.code(), "InvalidApiVersionParameter");
    assert_eq!(env.get(ARG).await.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_user_quota_is_shown_and_spent() {
    let env = start().await;
    let reader = fetch_token(&env.client, &env.base, READER_CLIENT, "reader-secret").await;
    let body = json!({"subscriptions": [PROD, DEV], "query": CLUSTERS});
    let mut remaining = Vec::new();
    for _ in 0..15 {
        let answer = env.call(reqwest::Method::POST, ARG, Some(&reader), Some(&body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer}");
        assert_eq!(answer.body["totalRecords"], 3, "the reader reads prod only");
        let resets = answer.header("x-ms-user-quota-resets-after").unwrap_or_default().to_string();
        assert!(resets.len() == 8 && resets.starts_with("00:00:0"), "{resets}");
        remaining.push(answer.header("x-ms-user-quota-remaining").and_then(|v| v.parse::<u32>().ok()));
    }
    assert_eq!(remaining.first().copied().flatten(), Some(14));
    assert_eq!(remaining.last().copied().flatten(), Some(0));
    let throttled = env.call(reqwest::Method::POST, ARG, Some(&reader), Some(&body)).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.code(), "RateLimiting");
    assert!(throttled.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| (1..=5).contains(&s)));
    assert_eq!(throttled.header("x-ms-user-quota-remaining"), Some("0"));
    // The quota is per user: the default principal still has its own.
    assert_eq!(env.post(ARG, Some(&body)).await.header("x-ms-user-quota-remaining"), Some("14"));
}

#[tokio::test]
async fn rows_agree_with_arm_lists_on_a_generated_world() {
    let env = start_generated("clusters=120,registries=12,subscriptions=3").await;
    let subs = subscription_ids(&env).await;
    let sub_refs: Vec<&str> = subs.iter().map(String::as_str).collect();
    let (arg_clusters, _) = query_all(&env, &sub_refs, CLUSTERS, 1000).await;
    let (arg_registries, _) = query_all(&env, &sub_refs, REGISTRIES, 1000).await;
    let (arg_assignments, _) = query_all(&env, &sub_refs, ASSIGNMENTS, 1000).await;
    let by_id = |rows: &[Value]| -> BTreeMap<String, Value> {
        rows.iter().map(|r| (r["id"].as_str().unwrap_or_default().to_ascii_lowercase(), r.clone())).collect()
    };
    let (arg_clusters, arg_registries, arg_assignments) =
        (by_id(&arg_clusters), by_id(&arg_registries), by_id(&arg_assignments));
    let (mut clusters, mut registries, mut assignments) = (0, 0, 0);
    for sub in &subs {
        let mc =
            format!("/subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters?api-version=2026-08-01");
        let cr =
            format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01");
        for (path, arg, columns) in [
            (mc, &arg_clusters, &["id", "name", "location", "tags", "properties", "identity", "sku"][..]),
            (cr, &arg_registries, &["id", "name", "location", "tags", "properties", "sku"][..]),
        ] {
            let (items, _) = env.list_all(&path).await;
            for item in &items {
                let id = item["id"].as_str().unwrap_or_default().to_ascii_lowercase();
                let row = arg.get(&id).unwrap_or_else(|| panic!("{id} is in Resource Graph"));
                for column in columns {
                    assert_eq!(row[*column], item[*column], "{id}: {column}");
                }
                assert!(
                    row["type"]
                        .as_str()
                        .is_some_and(|t| item["type"].as_str().is_some_and(|a| t.eq_ignore_ascii_case(a)))
                );
                assert_eq!(row["subscriptionId"].as_str(), Some(sub.as_str()));
            }
            if path.contains("managedClusters") {
                clusters += items.len();
            } else {
                registries += items.len();
            }
        }
        let ra =
            format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01");
        let (items, _) = env.list_all(&ra).await;
        for item in &items {
            let id = item["id"].as_str().unwrap_or_default().to_ascii_lowercase();
            let row = arg_assignments.get(&id).unwrap_or_else(|| panic!("{id} is in Resource Graph"));
            assert_eq!(row["properties"], item["properties"], "{id}");
            assert_eq!(row["name"], item["name"]);
        }
        assignments += items.len();
    }
    assert_eq!((clusters, registries), (arg_clusters.len(), arg_registries.len()));
    assert_eq!((clusters, registries), (120, 12));
    assert_eq!(assignments, arg_assignments.len(), "every assignment at or under the subscriptions, once");
}
