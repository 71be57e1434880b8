//! Each registry's data plane: the `/v2/` challenge by Host header and by `/acr/` prefix,
//! `/oauth2/exchange`, `/oauth2/token` with every kind of credential, access claims that list
//! only what was granted, manifests, and credentials that stop working when rotated.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

const ACR: &str = "api-version=2025-11-01";

fn registry(name: &str) -> String {
    format!("/subscriptions/{PROD}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/{name}")
}

fn claims(token: &str) -> Value {
    let body = token.split('.').nth(1).expect("JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64url")).expect("JSON")
}

/// A world with synchronous ACR operations and a principal without any role.
fn world() -> String {
    WORLD.replace(
        "lro = { mode = \"async\", polls = 1, retry_after_seconds = 0 }",
        "lro = { mode = \"sync\" }\nrbac_propagation_seconds = 0.0",
    ) + r#"
[[principals]]
name = "nobody"
object_id = "b0000000-0000-0000-0000-0000000000ff"
client_id = "a0000000-0000-0000-0000-0000000000ff"
secrets = ["nobody-secret"]

[[registries]]
subscription = "prod"
resource_group = "rg-acr"
name = "acrstrict"
azure_ad_authentication_as_arm = false
repositories = { "app" = ["1"] }
"#
}

fn base(env: &Env, login: &str) -> String {
    format!("{}/acr/{login}", env.base)
}

async fn token_with(env: &Env, login: &str, user: &str, password: &str, scope: &str) -> (StatusCode, Value) {
    let response = env
        .client
        .get(format!("{}/oauth2/token", base(env, login)))
        .query(&[("service", login), ("scope", scope)])
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("token");
    let answer = answer(response).await;
    (answer.status, answer.body)
}

async fn manifest(env: &Env, login: &str, token: &str, path: &str) -> Answer {
    let response =
        env.client.get(format!("{}/v2/{path}", base(env, login))).bearer_auth(token).send().await.expect("manifest");
    answer(response).await
}

#[tokio::test]
async fn v2_challenges_by_prefix_and_by_host() {
    let env = start_world(&world()).await;
    let challenge = env.call(Method::GET, "/acr/acrprod.azurecr.io/v2/", None, None).await;
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.header("www-authenticate"),
        Some(
            format!("Bearer realm=\"{}/acr/acrprod.azurecr.io/oauth2/token\",service=\"acrprod.azurecr.io\"", env.base)
                .as_str()
        )
    );
    assert_eq!(challenge.header("docker-distribution-api-version"), Some("registry/2.0"));
    assert_eq!(challenge.body["errors"][0]["code"], "UNAUTHORIZED");
    assert_eq!(challenge.body["errors"][0]["message"], "authentication required");

    // By name: the login server is in the emulator's certificate.
    let address = env.emulator.address();
    let ca = reqwest::Certificate::from_pem(env.emulator.ca_pem().as_bytes()).expect("CA");
    let by_name = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .resolve("acrprod.azurecr.io", address)
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("https://acrprod.azurecr.io:{}/v2/", address.port());
    let answer = answer(by_name.get(&url).send().await.expect("reaches the registry by name")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"https://acrprod.azurecr.io:{}/oauth2/token\",service=\"acrprod.azurecr.io\"",
                address.port()
            )
            .as_str()
        )
    );
    let ok = by_name.get(&url).basic_auth("acrprod", Some("first-password")).send().await.expect("v2");
    assert_eq!(ok.status(), StatusCode::OK);
    let ledger = env.emulator.ledger();
    assert_eq!(ledger.count_registry("acrprod.azurecr.io"), 3);
    assert_eq!(ledger.count("GET", "V2Support_Check"), 3);
}

#[tokio::test]
async fn admin_credentials_get_tokens_for_manifests_until_rotated() {
    let env = start_world(&world()).await;
    let login = "acrprod.azurecr.io";
    let (status, body) = token_with(&env, login, "acrprod", "first-password", "repository:team-a/app:pull,push").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().expect("access_token").to_string();
    let c = claims(&token);
    assert_eq!(c["aud"], login);
    assert_eq!(c["iss"], "Azure Container Registry");
    assert_eq!(c["access"], json!([{"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]}]));

    let found = manifest(&env, login, &token, "team-a/app/manifests/1.0").await;
    assert_eq!(found.status, StatusCode::OK, "{found}");
    assert!(found.header("docker-content-digest").is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(found.body["schemaVersion"], 2);
    let digest = found.header("docker-content-digest").expect("digest").to_string();
    assert_eq!(manifest(&env, login, &token, &format!("team-a/app/manifests/{digest}")).await.status, StatusCode::OK);
    let tag = manifest(&env, login, &token, "team-a/app/manifests/9.9").await;
    assert_eq!(tag.status, StatusCode::NOT_FOUND);
    assert_eq!(
        tag.body["errors"][0],
        json!({"code": "MANIFEST_UNKNOWN", "message": "manifest tagged by \"9.9\" is not found", "detail": {"Tag": "9.9"}})
    );
    let other = manifest(&env, login, &token, "base/nginx/manifests/1.27").await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "the token grants team-a/app only");
    assert!(
        other
            .header("www-authenticate")
            .is_some_and(|h| h.contains("scope=\"repository:base/nginx:pull\"") && h.contains("insufficient_scope"))
    );

    let (_, body) = token_with(&env, login, "acrprod", "first-password", "repository:nope/x:pull").await;
    let token = body["access_token"].as_str().expect("token").to_string();
    let missing = manifest(&env, login, &token, "nope/x/manifests/1").await;
    assert_eq!(missing.body["errors"][0]["code"], "NAME_UNKNOWN");

    let rotated = env
        .post(&format!("{}/regenerateCredential?{ACR}", registry("acrprod")), Some(&json!({"name": "password"})))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let (status, body) = token_with(&env, login, "acrprod", "first-password", "repository:team-a/app:pull").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    assert_eq!(
        token_with(&env, login, "acrprod", "second-password", "repository:team-a/app:pull").await.0,
        StatusCode::OK
    );
    let disabled =
        env.patch(&format!("{}?{ACR}", registry("acrprod")), &json!({"properties": {"adminUserEnabled": false}})).await;
    assert_eq!(disabled.status, StatusCode::OK, "{disabled}");
    assert_eq!(
        token_with(&env, login, "acrprod", "second-password", "repository:team-a/app:pull").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn scope_map_tokens_grant_their_repositories_until_they_expire() {
    let env = start_world(&world()).await;
    let login = "acrprod.azurecr.io";
    let token_id = format!("{}/tokens/ci-token", registry("acrprod"));
    let generated = env
        .post(&format!("{}/generateCredentials?{ACR}", registry("acrprod")), Some(&json!({"tokenId": token_id})))
        .await;
    assert_eq!(generated.status, StatusCode::OK, "{generated}");
    let password = generated.body["passwords"][0]["value"].as_str().expect("password").to_string();
    let (status, body) = token_with(&env, login, "ci-token", &password, "repository:team-a/app:pull,push").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        claims(body["access_token"].as_str().expect("token"))["access"],
        json!([{"type": "repository", "name": "team-a/app", "actions": ["pull"]}])
    );
    let (_, body) = token_with(&env, login, "ci-token", &password, "repository:base/nginx:pull").await;
    assert_eq!(claims(body["access_token"].as_str().expect("token"))["access"], json!([]), "not in the scope map");
    assert_eq!(
        token_with(&env, login, "ci-token", "wrong", "repository:team-a/app:pull").await.0,
        StatusCode::UNAUTHORIZED
    );

    let expired = env
        .post(
            &format!("{}/generateCredentials?{ACR}", registry("acrprod")),
            Some(&json!({"tokenId": token_id, "name": "password1", "expiry": "2020-01-01T00:00:00Z"})),
        )
        .await;
    let old = expired.body["passwords"][0]["value"].as_str().expect("password").to_string();
    assert_eq!(
        token_with(&env, login, "ci-token", &old, "repository:team-a/app:pull").await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn entra_token(env: &Env, client: &str, secret: &str, scope: &str) -> String {
    let (status, body) = token_response(
        &env.client,
        &env.base,
        &[("grant_type", "client_credentials"), ("client_id", client), ("client_secret", secret), ("scope", scope)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("token").to_string()
}

async fn exchange(env: &Env, login: &str, aad: &str) -> Answer {
    let response = env
        .client
        .post(format!("{}/oauth2/exchange", base(env, login)))
        .form(&[("grant_type", "access_token"), ("service", login), ("tenant", TENANT), ("access_token", aad)])
        .send()
        .await
        .expect("exchange");
    answer(response).await
}

async fn refresh_to_access(env: &Env, login: &str, refresh: &str, scope: &str) -> Value {
    let response = env
        .client
        .post(format!("{}/oauth2/token", base(env, login)))
        .form(&[("grant_type", "refresh_token"), ("service", login), ("scope", scope), ("refresh_token", refresh)])
        .send()
        .await
        .expect("token");
    let answer = answer(response).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer}");
    claims(answer.body["access_token"].as_str().expect("access_token"))["access"].clone()
}

#[tokio::test]
async fn entra_tokens_exchange_and_rbac_decides_access() {
    let env = start_world(&world()).await;
    let login = "acrprod.azurecr.io";
    let arm = entra_token(&env, ACRLINK_CLIENT, "s3cret", "https://management.azure.com/.default").await;
    let exchanged = exchange(&env, login, &arm).await;
    assert_eq!(exchanged.status, StatusCode::OK, "{exchanged}");
    let refresh = exchanged.body["refresh_token"].as_str().expect("refresh_token").to_string();
    let c = claims(&refresh);
    assert_eq!(
        (c["grant_type"].as_str(), c["aud"].as_str(), c["sub"].as_str()),
        (Some("refresh_token"), Some(login), Some(ACRLINK_OBJECT))
    );
    // Owner of the subscription may pull (legacy registry).
    assert_eq!(
        refresh_to_access(&env, login, &refresh, "repository:team-a/app:pull").await[0]["actions"],
        json!(["pull"])
    );
    // The refresh token also works as a docker password with the all-zero user.
    let (status, _) =
        token_with(&env, login, "00000000-0000-0000-0000-000000000000", &refresh, "repository:team-a/app:pull").await;
    assert_eq!(status, StatusCode::OK);

    // Without any role: a token, but no access.
    let nobody = entra_token(
        &env,
        "a0000000-0000-0000-0000-0000000000ff",
        "nobody-secret",
        "https://management.azure.com/.default",
    )
    .await;
    let refresh = exchange(&env, login, &nobody).await.body["refresh_token"].as_str().expect("refresh").to_string();
    assert_eq!(refresh_to_access(&env, login, &refresh, "repository:team-a/app:pull").await, json!([]));
    // A service principal as basic credentials, once it holds AcrPull.
    assert_eq!(
        claims(
            token_with(
                &env,
                login,
                "a0000000-0000-0000-0000-0000000000ff",
                "nobody-secret",
                "repository:team-a/app:pull"
            )
            .await
            .1["access_token"]
                .as_str()
                .expect("t")
        )["access"],
        json!([])
    );
    let granted = env
        .admin(Method::POST, "/role-assignments", Some(&json!({"scope": registry("acrprod"), "role": "AcrPull", "principal_id": "b0000000-0000-0000-0000-0000000000ff"})))
        .await;
    assert_eq!(granted.status, StatusCode::CREATED);
    assert_eq!(refresh_to_access(&env, login, &refresh, "repository:team-a/app:pull").await[0]["name"], "team-a/app");

    // ABAC registry: Owner and AcrPull do nothing; a Repository Reader with a condition does.
    let abac = "acrabac.azurecr.io";
    let refresh = exchange(&env, abac, &arm).await.body["refresh_token"].as_str().expect("refresh").to_string();
    assert_eq!(refresh_to_access(&env, abac, &refresh, "repository:team-b/api:pull").await, json!([]));
    let condition = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team-b/'))";
    let put = env
        .put(
            &format!("{}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01", registry("acrabac"), "e0000000-0000-0000-0000-0000000000ab"),
            &json!({"properties": {"roleDefinitionId": format!("/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions/b93aa761-3e63-49ed-ac28-beffa264f7ac"),
                                   "principalId": ACRLINK_OBJECT, "principalType": "ServicePrincipal", "condition": condition, "conditionVersion": "2.0"}}),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put}");
    let access = refresh_to_access(&env, abac, &refresh, "repository:team-b/api:pull repository:team-c/x:pull").await;
    assert_eq!(access, json!([{"type": "repository", "name": "team-b/api", "actions": ["pull"]}]));

    // With ARM-audience authentication disabled, only ACR-audience tokens exchange.
    assert_eq!(exchange(&env, "acrstrict.azurecr.io", &arm).await.status, StatusCode::UNAUTHORIZED);
    let acr = entra_token(&env, ACRLINK_CLIENT, "s3cret", "https://containerregistry.azure.net/.default").await;
    assert_eq!(exchange(&env, "acrstrict.azurecr.io", &acr).await.status, StatusCode::OK);
    let forged = format!("{}x", &arm[..arm.len() - 1]);
    assert_eq!(exchange(&env, login, &forged).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn role_assignments_count_only_after_propagation() {
    let env = start_world(&world().replace("rbac_propagation_seconds = 0.0", "rbac_propagation_seconds = 0.6")).await;
    let login = "acrprod.azurecr.io";
    let nobody = entra_token(
        &env,
        "a0000000-0000-0000-0000-0000000000ff",
        "nobody-secret",
        "https://management.azure.com/.default",
    )
    .await;
    let refresh = exchange(&env, login, &nobody).await.body["refresh_token"].as_str().expect("refresh").to_string();
    env.admin(Method::POST, "/role-assignments", Some(&json!({"scope": format!("/subscriptions/{PROD}"), "role": "AcrPull", "principal_id": "b0000000-0000-0000-0000-0000000000ff"})))
        .await;
    assert_eq!(
        refresh_to_access(&env, login, &refresh, "repository:team-a/app:pull").await,
        json!([]),
        "not propagated yet"
    );
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(
        refresh_to_access(&env, login, &refresh, "repository:team-a/app:pull").await[0]["actions"],
        json!(["pull"])
    );
}
