//! The endpoints az CLI needs beyond what acrlink calls, over plain HTTPS (so they are covered
//! even where az is not installed): the cloud metadata document, Resources_List, the AKS
//! cluster PUT and its operation, Microsoft Graph and Graph tokens.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const RESOURCES: &str = "api-version=2024-11-01";

async fn graph_token(env: &Env, scope: &str) -> String {
    let (status, body) = token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "s3cret"),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{scope}: {body}");
    body["access_token"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn metadata_endpoints_use_current_key_names() {
    let env = start().await;
    let doc = env.call(Method::GET, "/metadata/endpoints?api-version=2022-09-01", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let own = format!("{}/", env.base);
    assert_eq!(doc.body["resourceManager"], own.as_str());
    assert_eq!(doc.body["microsoftGraphResourceId"], own.as_str());
    assert_eq!(doc.body["authentication"]["loginEndpoint"], own.as_str());
    for key in ["graph", "graphAudience", "portal", "gallery", "activeDirectoryDataLake", "name"] {
        assert!(doc.body[key].is_string(), "{key} in {}", doc.body);
    }
    assert!(doc.body.get("graphEndpoint").is_none() && doc.body.get("portalEndpoint").is_none());
}

#[tokio::test]
async fn resources_list_filters_by_type_and_pages() {
    let env = start().await;
    let (all, pages) = env.list_all(&format!("/subscriptions/{PROD}/resources?{RESOURCES}")).await;
    assert_eq!(all.len(), 5, "3 clusters and 2 registries");
    assert_eq!(pages, 3, "page size 2");
    let filter = "$filter=resourceType%20eq%20%27Microsoft.ContainerRegistry%2Fregistries%27";
    let (registries, _) = env.list_all(&format!("/subscriptions/{PROD}/resources?{filter}&{RESOURCES}")).await;
    assert_eq!(sorted_names(&registries), ["acrabac", "acrprod"]);
    assert!(registries.iter().all(|r| r.get("properties").is_none()), "no properties: {registries:?}");
    assert_eq!(registries[0]["type"], "Microsoft.ContainerRegistry/registries");
    let filter = "$filter=resourceType%20eq%20%27microsoft.containerservice%2Fmanagedclusters%27%20and%20name%20eq%20%27AKS-PROD-2%27";
    let (found, _) =
        env.list_all(&format!("/subscriptions/{PROD}/resourceGroups/rg-aks/resources?{filter}&{RESOURCES}")).await;
    assert_eq!(sorted_names(&found), ["aks-prod-2"]);
    let bad = env.get(&format!("/subscriptions/{PROD}/resources?$filter=substringof('a',name)&{RESOURCES}")).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "InvalidFilterParameter"));
}

#[tokio::test]
async fn cluster_put_is_a_long_running_update() {
    let env = start().await;
    let path = format!("{}?api-version=2026-06-01", cluster_path(PROD, "rg-aks", "aks-prod-1"));
    let read = env.get(&path).await;
    assert_eq!(read.status, StatusCode::OK);
    let put = env.put(&path, &read.body).await;
    assert_eq!(put.status, StatusCode::OK, "{put}");
    assert_eq!(put.body["properties"]["provisioningState"], "Updating");
    assert_ne!(put.body["eTag"], read.body["eTag"]);
    assert_eq!(put.body["properties"]["identityProfile"], read.body["properties"]["identityProfile"]);
    let status_url = put.header("Azure-AsyncOperation").map(str::to_string).unwrap_or_default();
    assert!(
        status_url.contains("/providers/Microsoft.ContainerService/locations/westeurope/operations/"),
        "{status_url}"
    );
    let again = env.put(&path, &read.body).await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "OperationNotAllowed"));
    let first = env.get(&status_url).await;
    assert_eq!(first.body["status"], "InProgress");
    let done = env.get(&status_url).await;
    assert_eq!(done.body["status"], "Succeeded", "{done}");
    assert_eq!(env.get(&path).await.body["properties"]["provisioningState"], "Succeeded");
    let reader = fetch_token(&env.client, &env.base, READER_CLIENT, "reader-secret").await;
    let denied = env.put_as(&reader, &path, &read.body).await;
    assert_eq!((denied.status, denied.code()), (StatusCode::FORBIDDEN, "AuthorizationFailed"));
}

#[tokio::test]
async fn graph_tokens_accept_the_double_slash_scope() {
    let env = start().await;
    let token = graph_token(&env, "https://graph.microsoft.com//.default").await;
    let own = graph_token(&env, &format!("{}//.default", env.base)).await;
    for token in [&token, &own] {
        let found = env.get_as(token, &format!("/v1.0/servicePrincipals(appId='{ACRLINK_CLIENT}')")).await;
        assert_eq!(found.status, StatusCode::OK, "{found}");
    }
    let arm = env.get(&format!("/v1.0/servicePrincipals(appId='{ACRLINK_CLIENT}')")).await;
    assert_eq!(arm.status, StatusCode::UNAUTHORIZED, "an ARM token is not for Graph");
    assert_eq!(arm.body["error"]["code"], "InvalidAuthenticationToken");
}

#[tokio::test]
async fn graph_finds_service_principals_as_az_cli_asks() {
    let env = start().await;
    let token = graph_token(&env, "https://graph.microsoft.com/.default").await;
    let kubelet_client = "e0000000-0000-0000-0000-000000000001";
    let filter = format!("servicePrincipalNames/any(c:c%20eq%20'{kubelet_client}')");
    let listed = env.get_as(&token, &format!("/v1.0/servicePrincipals?$filter={filter}")).await;
    assert_eq!(listed.body["@odata.context"], "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals");
    assert_eq!(listed.body["value"][0]["id"], KUBELET_PROD_1, "{listed}");
    assert_eq!(listed.body["value"][0]["servicePrincipalType"], "ManagedIdentity");
    let none = env.get_as(&token, "/v1.0/servicePrincipals?$filter=appId%20eq%20'nobody'").await;
    assert_eq!(none.body["value"], json!([]));
    let missing = env.get_as(&token, "/v1.0/servicePrincipals(appId='nobody')").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["code"], "Request_ResourceNotFound");
    let body = json!({"ids": [KUBELET_PROD_1, GROUP_OBJECT, "00000000-0000-0000-0000-00000000dead"]});
    let found = env.call(Method::POST, "/v1.0/directoryObjects/getByIds", Some(&token), Some(&body)).await;
    let types: Vec<&str> = found.body["value"]
        .as_array()
        .map(|all| all.iter().filter_map(|o| o["@odata.type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(types, ["#microsoft.graph.servicePrincipal", "#microsoft.graph.group"], "{found}");
    let typed = json!({"ids": [KUBELET_PROD_1, GROUP_OBJECT], "types": ["Group"]});
    let only = env.call(Method::POST, "/v1.0/directoryObjects/getByIds", Some(&token), Some(&typed)).await;
    assert_eq!(only.body["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(only.body["value"][0]["id"], Value::from(GROUP_OBJECT));
}
