//! Signing in without a secret: the GitHub Actions and Azure Pipelines OIDC token services,
//! their ID tokens exchanged at Entra as federated assertions, and the managed-identity
//! endpoints (IMDS through its address override, App Service, Azure Arc), all as a client would
//! call them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

const GITHUB_CLIENT: &str = "a0000000-0000-0000-0000-0000000000c1";
const PIPELINES_CLIENT: &str = "a0000000-0000-0000-0000-0000000000c2";
const VM_CLIENT: &str = "a0000000-0000-0000-0000-0000000000c3";
const VM_OBJECT: &str = "b0000000-0000-0000-0000-0000000000c3";
const UAMI_CLIENT: &str = "a0000000-0000-0000-0000-0000000000c4";
const UAMI_OBJECT: &str = "b0000000-0000-0000-0000-0000000000c4";

fn world() -> String {
    format!(
        r#"{WORLD}
[[principals]]
name = "github-deployer"
object_id = "b0000000-0000-0000-0000-0000000000c1"
client_id = "{GITHUB_CLIENT}"
federated_credentials = [{{ issuer = "https://token.actions.githubusercontent.com", subject = "repo:contoso/fleet:ref:refs/heads/main" }}]

[[principals]]
name = "pipelines-deployer"
object_id = "b0000000-0000-0000-0000-0000000000c2"
client_id = "{PIPELINES_CLIENT}"
federated_credentials = [{{ issuer = "https://vstoken.dev.azure.com/7a9c0e21-53b4-4f6d-8e2a-1b0c9d8e7f6a", subject = "sc://contoso/fleet/acrlink" }}]

[[principals]]
name = "vm-identity"
object_id = "{VM_OBJECT}"
client_id = "{VM_CLIENT}"

[[principals]]
name = "vm-user-assigned"
object_id = "{UAMI_OBJECT}"
client_id = "{UAMI_CLIENT}"

[sign_in]
managed_identities = ["vm-identity", "vm-user-assigned"]
"#
    )
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

fn var(env: &Env, name: &str) -> String {
    env.emulator.sign_in_env().get(name).cloned().unwrap_or_else(|| panic!("{name} is in sign_in_env"))
}

async fn exchange(env: &Env, client_id: &str, assertion: &str) -> (StatusCode, Value) {
    token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", "https://management.azure.com/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn github_token(env: &Env, request_token: &str) -> reqwest::Response {
    let url = format!("{}&audience=api%3A%2F%2FAzureADTokenExchange", var(env, "ACTIONS_ID_TOKEN_REQUEST_URL"));
    env.client.get(url).bearer_auth(request_token).header("Accept", "application/json").send().await.expect("request")
}

#[tokio::test]
async fn github_actions_id_tokens_are_exchanged_at_entra_for_the_federated_principal() {
    let env = start_world(&world()).await;
    let response = github_token(&env, &var(&env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    let id_token = body["value"].as_str().expect("value holds the JWT").to_string();
    let c = claims(&id_token);
    assert_eq!(c["iss"], "https://token.actions.githubusercontent.com");
    assert_eq!(c["sub"], "repo:contoso/fleet:ref:refs/heads/main");
    assert_eq!(c["aud"], "api://AzureADTokenExchange");
    let (status, answer) = exchange(&env, GITHUB_CLIENT, &id_token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(claims(answer["access_token"].as_str().unwrap_or_default())["appidacr"], "2");
    // The same assertion presented for a principal without that federated credential fails.
    let (status, answer) = exchange(&env, PIPELINES_CLIENT, &id_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error_description"].as_str().unwrap_or_default().starts_with("AADSTS70021"), "{answer}");
    // Without the request token, or with a made-up one, the service refuses.
    assert_eq!(github_token(&env, "made-up").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn azure_pipelines_oidc_tokens_are_issued_per_service_connection() {
    let env = start_world(&world()).await;
    let url = var(&env, "SYSTEM_OIDCREQUESTURI");
    let connection = var(&env, "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID");
    let access = var(&env, "SYSTEM_ACCESSTOKEN");
    let request = |connection: String, token: String| {
        env.client
            .post(format!("{url}?api-version=7.1&serviceConnectionId={connection}"))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .send()
    };
    let response = request(connection.clone(), access.clone()).await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    let id_token = body["oidcToken"].as_str().expect("oidcToken").to_string();
    assert_eq!(claims(&id_token)["sub"], "sc://contoso/fleet/acrlink");
    let (status, answer) = exchange(&env, PIPELINES_CLIENT, &id_token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let other = request("00000000-0000-0000-0000-000000000000".into(), access).await.expect("request");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let unauthorised = request(connection, "nope".into()).await.expect("request");
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_ci_tokens_are_refused_by_entra() {
    let text = world().replace("[sign_in]\n", "[sign_in]\nid_token_lifetime_seconds = 0\n");
    let env = start_world(&text).await;
    let body: Value = github_token(&env, &var(&env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN")).await.json().await.unwrap();
    let (status, answer) = exchange(&env, GITHUB_CLIENT, body["value"].as_str().unwrap_or_default()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error_description"].as_str().unwrap_or_default().starts_with("AADSTS700024"), "{answer}");
}

async fn imds(env: &Env, query: &str, metadata: bool) -> (StatusCode, Value) {
    let base = var(env, "ACRLINK_IMDS_ENDPOINT");
    let mut request = env.client.get(format!("{base}/metadata/identity/oauth2/token?api-version=2018-02-01&{query}"));
    if metadata {
        request = request.header("Metadata", "true");
    }
    let response = request.send().await.expect("request");
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn imds_issues_tokens_for_the_system_and_user_assigned_identities() {
    let env = start_world(&world()).await;
    let resource = "resource=https%3A%2F%2Fmanagement.azure.com%2F";
    let (status, body) = imds(&env, resource, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for key in ["expires_in", "expires_on", "not_before"] {
        assert!(body[key].is_string(), "IMDS sends {key} as a string: {body}");
    }
    assert_eq!(body["resource"], "https://management.azure.com/");
    let token = body["access_token"].as_str().unwrap_or_default();
    assert_eq!(claims(token)["oid"], VM_OBJECT);
    // The token works at ARM.
    let answer = env.get_as(token, "/subscriptions?api-version=2022-12-01").await;
    assert_eq!(answer.status, StatusCode::OK, "{answer}");

    let (status, body) = imds(&env, &format!("{resource}&client_id={UAMI_CLIENT}"), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap_or_default())["oid"], UAMI_OBJECT);

    let (status, body) = imds(&env, &format!("{resource}&client_id={GITHUB_CLIENT}"), true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an identity not on the machine: {body}");
    let (status, body) = imds(&env, resource, false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad_request_102");
}

#[tokio::test]
async fn imds_without_identities_answers_but_refuses() {
    let env = start().await;
    let (status, body) = imds(&env, "resource=https%3A%2F%2Fmanagement.azure.com%2F", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn app_service_endpoint_checks_its_header_and_has_no_expires_in() {
    let env = start_world(&world()).await;
    let endpoint = var(&env, "IDENTITY_ENDPOINT");
    let url = format!("{endpoint}?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com");
    let response = env.client.get(&url).header("X-IDENTITY-HEADER", var(&env, "IDENTITY_HEADER")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_on"].is_string() && body["expires_in"].is_null(), "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap_or_default())["oid"], VM_OBJECT);
    let response = env.client.get(&url).header("X-IDENTITY-HEADER", "guess").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn azure_arc_challenges_with_a_key_file_in_its_key_directory() {
    let env = start_world(&world()).await;
    let arc = env.emulator.arc_sign_in_env();
    let url =
        format!("{}?api-version=2020-06-01&resource=https%3A%2F%2Fmanagement.azure.com", arc["IDENTITY_ENDPOINT"]);
    assert_eq!(arc["IMDS_ENDPOINT"], env.base);
    // First request: 401 naming a fresh .key file in the key directory.
    let challenge = env.client.get(&url).header("Metadata", "true").send().await.unwrap();
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let header = challenge.headers()["www-authenticate"].to_str().unwrap().to_string();
    let file = std::path::PathBuf::from(header.strip_prefix("Basic realm=").expect("Basic realm=<file>"));
    assert_eq!(file.parent(), Some(std::path::Path::new(&arc["ACRLINK_ARC_KEY_DIRECTORY"])), "{header}");
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("key"));
    // Repeated with the file's content: an IMDS-style answer, numbers as strings.
    let key = std::fs::read_to_string(&file).unwrap();
    let response = env
        .client
        .get(&url)
        .header("Metadata", "true")
        .header("Authorization", format!("Basic {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_in"].is_string() && body["expires_on"].is_string(), "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap_or_default())["oid"], VM_OBJECT);
    // A guessed key, or no Metadata header, is refused.
    let guessed =
        env.client.get(&url).header("Metadata", "true").header("Authorization", "Basic guess").send().await.unwrap();
    assert_eq!(guessed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(env.client.get(&url).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_ready_line_keeps_its_keys_and_adds_the_sign_in_places() {
    let env = start_world(&world()).await;
    let info = env.emulator.ready_info();
    let ready = serde_json::to_value(&info).unwrap();
    let keys: Vec<&String> = ready.as_object().unwrap().keys().collect();
    assert!(!keys.iter().any(|k| k.as_str() == "sign_in_env"), "the ready line keeps its keys: {keys:?}");
    let env_keys: Vec<&String> = ready["env"].as_object().unwrap().keys().collect();
    assert!(!env_keys.iter().any(|k| k.starts_with("ACTIONS_") || k.starts_with("IDENTITY_")), "{env_keys:?}");
    let sign_in = &info.sign_in_env;
    for key in [
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "SYSTEM_OIDCREQUESTURI",
        "SYSTEM_ACCESSTOKEN",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "ACRLINK_IMDS_ENDPOINT",
    ] {
        assert!(sign_in.contains_key(key), "{key} missing from {sign_in:?}");
    }
}

#[tokio::test]
async fn a_managed_identity_must_name_a_principal_with_a_client_id() {
    let text = world()
        .replace(r#"managed_identities = ["vm-identity", "vm-user-assigned"]"#, r#"managed_identities = ["nobody"]"#);
    let error = acrlink_emulator::World::from_toml_str(&text).expect_err("unknown principal");
    assert!(error.to_string().contains("no principal is named \"nobody\""), "{error}");
}

/// The world's cloud sets the ARM audiences Entra issues and ARM accepts, the registries'
/// login-server suffix and the metadata document.
#[tokio::test]
async fn a_sovereign_world_speaks_its_clouds_audiences_and_suffixes() {
    for (cloud, arm, suffix, graph) in [
        (
            "AzureChinaCloud",
            "https://management.chinacloudapi.cn",
            "azurecr.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
        ("AzureUSGovernment", "https://management.usgovcloudapi.net", "azurecr.us", "https://graph.microsoft.us"),
    ] {
        let text = WORLD.replacen("[tenant]\n", &format!("[tenant]\ncloud = \"{cloud}\"\n"), 1);
        install_crypto();
        let world = acrlink_emulator::World::from_toml_str(&text).expect("world");
        let emulator = acrlink_emulator::Emulator::start(world, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = client_for(&emulator);
        let base = emulator.ready_info().arm_endpoint;
        let mut env = Env { emulator, client, base, token: String::new() };
        let secret_form = |scope: &'static str| {
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", ACRLINK_CLIENT),
                ("client_secret", "s3cret"),
                ("scope", scope),
            ]
        };
        let scope: &'static str = Box::leak(format!("{arm}/.default").into_boxed_str());
        let (status, body) = token_response(&env.client, &env.base, &secret_form(scope)).await;
        assert_eq!(status, StatusCode::OK, "{cloud}: {body}");
        let token = body["access_token"].as_str().unwrap_or_default().to_string();
        env.token = token.clone();
        let subscriptions = env.get_as(&token, "/subscriptions?api-version=2022-12-01").await;
        assert_eq!(subscriptions.status, StatusCode::OK, "{cloud}: {subscriptions}");
        // Public cloud's ARM is not a resource there.
        let (status, body) =
            token_response(&env.client, &env.base, &secret_form("https://management.azure.com/.default")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cloud}: {body}");
        let registry = env.get_as(&token, &format!("{}?api-version=2025-11-01", registry_scope())).await;
        assert_eq!(registry.status, StatusCode::OK, "{cloud}: {registry}");
        assert_eq!(registry.body["properties"]["loginServer"], format!("acrprod.{suffix}"));
        let metadata = env.get("/metadata/endpoints?api-version=2022-09-01").await;
        assert_eq!(metadata.body["name"], cloud);
        assert_eq!(metadata.body["suffixes"]["acrLoginServer"], suffix);
        // That cloud's Microsoft Graph takes tokens for its own Graph resource.
        let scope: &'static str = Box::leak(format!("{graph}/.default").into_boxed_str());
        let (status, body) = token_response(&env.client, &env.base, &secret_form(scope)).await;
        assert_eq!(status, StatusCode::OK, "{cloud}: {body}");
        let graph_token = body["access_token"].as_str().unwrap_or_default().to_string();
        let found = env.get_as(&graph_token, &format!("/v1.0/servicePrincipals(appId='{ACRLINK_CLIENT}')")).await;
        assert_eq!(found.status, StatusCode::OK, "{cloud}: {found}");
    }
}
