//! ARM's conventions: authentication and its 401 codes, api-version checks, headers,
//! case-insensitive ids, paging, both error envelopes, subscriptions and resource groups.

use reqwest::{Method, StatusCode};

use crate::support::*;

const AKS: &str = "api-version=2026-08-01";

#[tokio::test]
async fn missing_and_bad_tokens_get_arms_401_codes() {
    let env = start().await;
    let path = format!("/subscriptions/{PROD}?api-version=2022-12-01");

    let missing = env.call(Method::GET, &path, None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), "AuthenticationFailed");
    let challenge = missing.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer authorization_uri=") && challenge.contains(TENANT), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    let garbage = env.call(Method::GET, &path, Some("not.a.token"), None).await;
    assert_eq!(garbage.code(), "InvalidAuthenticationToken", "{garbage}");
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);

    // A token with a changed payload no longer matches its signature.
    let mut parts: Vec<String> = env.token.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    let forged = env.call(Method::GET, &path, Some(&parts.join(".")), None).await;
    assert_eq!(forged.code(), "InvalidAuthenticationToken");

    let expired = env.emulator.state().mint_token(ACRLINK_CLIENT, "https://management.azure.com", -60).expect("mint");
    let expired = env.call(Method::GET, &path, Some(&expired), None).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.code(), "ExpiredAuthenticationToken");
    assert!(expired.message().contains("is earlier than current UTC time"), "{expired}");

    let (status, body) = token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "s3cret"),
            ("scope", "https://containerregistry.azure.net/.default"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let acr_token = body["access_token"].as_str().unwrap_or_default().to_string();
    let audience = env.call(Method::GET, &path, Some(&acr_token), None).await;
    assert_eq!(audience.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audience.code(), "InvalidAuthenticationTokenAudience");
    assert!(audience.message().contains("https://containerregistry.azure.net"), "{audience}");
}

#[tokio::test]
async fn api_version_is_required_and_checked_per_resource_type() {
    let env = start().await;
    let cluster = cluster_path(PROD, "rg-aks", "aks-prod-1");
    let missing = env.get(&cluster).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.code(), "MissingApiVersionParameter");

    let unknown = env.get(&format!("{cluster}?api-version=2019-01-01")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.code(), "NoRegisteredProviderFound");
    assert!(unknown.message().contains("2026-08-01"), "lists the supported versions: {unknown}");

    // An ACR version is not an AKS version.
    assert_eq!(env.get(&format!("{cluster}?api-version=2025-11-01")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(env.get(&format!("{cluster}?api-version=2025-10-01")).await.status, StatusCode::OK);

    let arm_type = env.get(&format!("/subscriptions/{PROD}?api-version=2026-08-01")).await;
    assert_eq!(arm_type.code(), "InvalidApiVersionParameter");
    let role_assignments = env
        .get(&format!("{}/providers/Microsoft.Authorization/roleAssignments?api-version=2025-11-01", registry_scope()))
        .await;
    assert_eq!(role_assignments.code(), "InvalidApiVersionParameter");
}

#[tokio::test]
async fn api_version_allow_lists_are_configurable() {
    let world = WORLD.replace(
        "[settings]\n",
        "[settings]\napi_versions = { \"Microsoft.ContainerService/managedClusters\" = [\"2026-08-01\"] }\n",
    );
    let env = start_world(&world).await;
    let cluster = cluster_path(PROD, "rg-aks", "aks-prod-1");
    assert_eq!(env.get(&format!("{cluster}?{AKS}")).await.status, StatusCode::OK);
    assert_eq!(env.get(&format!("{cluster}?api-version=2025-10-01")).await.code(), "NoRegisteredProviderFound");
}

#[tokio::test]
async fn answers_carry_request_ids_and_rate_limit_headers() {
    let env = start().await;
    let path = format!("/subscriptions/{PROD}?api-version=2022-12-01");
    let response = env
        .client
        .get(env.url(&path))
        .bearer_auth(&env.token)
        .header("x-ms-client-request-id", "7d3c1a2e-0000-4000-8000-000000000001")
        .send()
        .await
        .expect("request");
    let first = answer(response).await;
    assert_eq!(first.status, StatusCode::OK);
    for header in ["x-ms-request-id", "x-ms-correlation-request-id", "x-ms-routing-request-id"] {
        assert!(first.header(header).is_some_and(|v| !v.is_empty()), "{header}");
    }
    assert_eq!(first.header("x-ms-client-request-id"), Some("7d3c1a2e-0000-4000-8000-000000000001"));
    assert!(first.header("content-type").unwrap_or_default().starts_with("application/json"));
    let remaining =
        |a: &Answer| a.header("x-ms-ratelimit-remaining-subscription-reads").and_then(|v| v.parse::<u64>().ok());
    let before = remaining(&first).expect("reads header");
    let second = env.get(&path).await;
    assert!(remaining(&second).expect("reads header") < before);
    let tenant_level = env.get("/subscriptions?api-version=2022-12-01").await;
    assert!(tenant_level.header("x-ms-ratelimit-remaining-tenant-reads").is_some());
}

#[tokio::test]
async fn ids_are_case_insensitive() {
    let env = start().await;
    let shouting = format!(
        "/SUBSCRIPTIONS/{PROD}/RESOURCEGROUPS/RG-AKS/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD-1?{AKS}"
    );
    let answer = env.get(&shouting).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer}");
    assert_eq!(answer.body["name"], "aks-prod-1");
    let role = env
        .get(&format!(
            "{}/providers/microsoft.authorization/ROLEASSIGNMENTS/{}?api-version=2022-04-01",
            registry_scope().to_uppercase().replace("SUBSCRIPTIONS", "subscriptions"),
            EXISTING_GRANT.to_uppercase()
        ))
        .await;
    assert_eq!(role.status, StatusCode::OK, "{role}");
}

#[tokio::test]
async fn lists_are_paged_with_absolute_next_links() {
    let env = start().await;
    let (items, pages) = env
        .list_all(&format!("/subscriptions/{PROD}/providers/Microsoft.ContainerService/managedClusters?{AKS}"))
        .await;
    assert_eq!(sorted_names(&items), ["aks-prod-1", "aks-prod-2", "aks-prod-3"]);
    assert_eq!(pages, 2, "page size 2 splits three clusters into two pages");
    let first =
        env.get(&format!("/subscriptions/{PROD}/providers/Microsoft.ContainerService/managedClusters?{AKS}")).await;
    assert!(first.body["nextLink"].as_str().unwrap_or_default().contains("$skiptoken="));
    let last = env
        .get(&format!("/subscriptions/{PROD}/providers/Microsoft.ContainerService/managedClusters?{AKS}&$skiptoken=2"))
        .await;
    assert!(last.body.get("nextLink").is_none(), "the last page has no nextLink: {last}");
    let bad = env
        .get(&format!("/subscriptions/{PROD}/providers/Microsoft.ContainerService/managedClusters?{AKS}&$skiptoken=x"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn not_found_answers_name_what_is_missing() {
    let env = start().await;
    let sub = env.get("/subscriptions/99999999-9999-9999-9999-999999999999?api-version=2022-12-01").await;
    assert_eq!((sub.status, sub.code()), (StatusCode::NOT_FOUND, "SubscriptionNotFound"));
    let rg = env.get(&format!("{}?{AKS}", cluster_path(PROD, "rg-missing", "aks-prod-1"))).await;
    assert_eq!((rg.status, rg.code()), (StatusCode::NOT_FOUND, "ResourceGroupNotFound"));
    let cluster = env.get(&format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "nope"))).await;
    assert_eq!((cluster.status, cluster.code()), (StatusCode::NOT_FOUND, "ResourceNotFound"));
    assert!(cluster.body["error"].is_object(), "ARM's wrapped envelope: {cluster}");
    assert!(cluster.message().contains("Microsoft.ContainerService/managedClusters/nope"), "{cluster}");
    let kind = env
        .get(&format!("/subscriptions/{PROD}/resourceGroups/rg-aks/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01"))
        .await;
    assert_eq!((kind.status, kind.code()), (StatusCode::NOT_FOUND, "InvalidResourceType"));
    let method = env
        .call(Method::DELETE, &format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1")), Some(&env.token), None)
        .await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn subscriptions_show_what_the_caller_can_see() {
    let env = start().await;
    let (all, _) = env.list_all("/subscriptions?api-version=2022-12-01").await;
    let mut ids: Vec<&str> = all.iter().filter_map(|s| s["subscriptionId"].as_str()).collect();
    ids.sort();
    assert_eq!(ids, [PROD, DEV], "no role in the empty subscription, so it is not listed");
    assert_eq!(all[0]["tenantId"], TENANT);
    assert_eq!(all[0]["state"], "Enabled");

    let reader = fetch_token(&env.client, &env.base, READER_CLIENT, "reader-secret").await;
    let answer = env.get_as(&reader, "/subscriptions?api-version=2016-06-01").await;
    let names: Vec<&str> = answer.body["value"]
        .as_array()
        .map(|v| v.iter().filter_map(|s| s["displayName"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["prod"]);
    let forbidden = env.get_as(&reader, &format!("/subscriptions/{DEV}?api-version=2022-12-01")).await;
    assert_eq!((forbidden.status, forbidden.code()), (StatusCode::FORBIDDEN, "AuthorizationFailed"));
    let prod = env.get_as(&reader, &format!("/subscriptions/{PROD}?api-version=2022-12-01")).await;
    assert_eq!(prod.body["displayName"], "prod");
}

#[tokio::test]
async fn resource_groups_list_and_get() {
    let env = start().await;
    let (groups, _) = env.list_all(&format!("/subscriptions/{PROD}/resourcegroups?api-version=2021-04-01")).await;
    assert_eq!(sorted_names(&groups), ["rg-acr", "rg-aks"]);
    let one = env.get(&format!("/subscriptions/{PROD}/resourceGroups/RG-ACR?api-version=2021-04-01")).await;
    assert_eq!(one.body["location"], "westeurope");
    let missing = env.get(&format!("/subscriptions/{PROD}/resourceGroups/nope?api-version=2021-04-01")).await;
    assert_eq!(missing.code(), "ResourceGroupNotFound");
}

#[tokio::test]
async fn metadata_endpoint_describes_the_emulated_cloud() {
    let env = start().await;
    let answer = env.call(Method::GET, "/metadata/endpoints?api-version=2019-05-01", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["resourceManager"], format!("{}/", env.base));
}

#[tokio::test]
async fn the_ready_line_names_everything_a_client_needs() {
    let env = start().await;
    let info = serde_json::to_value(env.emulator.ready_info()).expect("serializable");
    for key in ["arm_endpoint", "authority_host", "tenant_id", "admin_endpoint", "ca_file", "env"] {
        assert!(!info[key].is_null(), "{key} in {info}");
    }
    assert!(info["arm_endpoint"].as_str().unwrap_or_default().starts_with("https://127.0.0.1:"));
    let vars = &info["env"];
    assert_eq!(vars["AZURE_TENANT_ID"], TENANT);
    assert_eq!(vars["AZURE_CLIENT_ID"], ACRLINK_CLIENT, "the default_client principal");
    assert_eq!(vars["AZURE_CLIENT_SECRET"], "s3cret");
    assert_eq!(vars["ACRLINK_ARM_ENDPOINT"], info["arm_endpoint"]);
    assert_eq!(vars["AZURE_AUTHORITY_HOST"], info["authority_host"]);
    let ca = std::fs::read_to_string(vars["SSL_CERT_FILE"].as_str().unwrap_or_default()).expect("the CA file exists");
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let ca_path = env.emulator.ca_file().to_path_buf();
    env.emulator.shutdown().await;
    assert!(!ca_path.exists(), "the CA file goes away with the emulator");
}
