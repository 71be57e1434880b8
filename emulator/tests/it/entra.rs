//! The Entra v2 token endpoint: client secrets, federated assertions, Entra's error bodies,
//! discovery, and real Azure SDK credentials getting tokens from it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn secret_form<'a>(client_id: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", "https://management.azure.com/.default"),
    ]
}

#[tokio::test]
async fn client_secret_yields_a_jwt_with_the_claims_arm_reads() {
    let env = start().await;
    let (status, body) = token_response(&env.client, &env.base, &secret_form(ACRLINK_CLIENT, "s3cret")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let claims = claims(body["access_token"].as_str().unwrap_or_default());
    assert_eq!(claims["oid"], ACRLINK_OBJECT);
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["aud"], "https://management.azure.com");
    assert_eq!(claims["appid"], ACRLINK_CLIENT);
    assert_eq!(claims["appidacr"], "1");
    let exp = claims["exp"].as_i64().expect("exp is a number");
    assert!((exp - unix_now() - 3599).abs() < 30, "exp {exp} is about an hour away");
}

#[tokio::test]
async fn tenant_domain_and_basic_auth_are_accepted() {
    let env = start().await;
    let response = env
        .client
        .post(format!("{}/contoso.onmicrosoft.com/oauth2/v2.0/token", env.base))
        .basic_auth(ACRLINK_CLIENT, Some("s3cret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "https://management.core.windows.net/.default")])
        .send()
        .await
        .expect("token request");
    let answer = answer(response).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer}");
    assert_eq!(
        claims(answer.body["access_token"].as_str().unwrap_or_default())["aud"],
        "https://management.core.windows.net"
    );
}

async fn expect_error(env: &Env, form: &[(&str, &str)], status: u16, error: &str, code: u64) {
    let (got, body) = token_response(&env.client, &env.base, form).await;
    assert_eq!(got.as_u16(), status, "{form:?}: {body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    assert!(description.contains("Trace ID:") && description.contains("Correlation ID:"), "{description}");
    for key in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
}

#[tokio::test]
async fn token_errors_are_the_ones_entra_sends() {
    let env = start().await;
    expect_error(&env, &secret_form(ACRLINK_CLIENT, "wrong"), 401, "invalid_client", 7000215).await;
    expect_error(&env, &secret_form(EXPIRED_CLIENT, "old-secret"), 401, "invalid_client", 7000222).await;
    expect_error(&env, &secret_form("99999999-9999-9999-9999-999999999999", "x"), 400, "unauthorized_client", 700016)
        .await;
    // A principal created moments ago is not replicated yet.
    expect_error(&env, &secret_form(NEWBIE_CLIENT, "newbie-secret"), 400, "unauthorized_client", 700016).await;
    expect_error(
        &env,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("scope", "https://management.azure.com/.default"),
        ],
        401,
        "invalid_client",
        7000218,
    )
    .await;
    expect_error(
        &env,
        &[
            ("grant_type", "password"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "s3cret"),
            ("scope", "https://management.azure.com/.default"),
        ],
        400,
        "unsupported_grant_type",
        70003,
    )
    .await;
    expect_error(
        &env,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "s3cret"),
            ("scope", "https://management.azure.com/user_impersonation"),
        ],
        400,
        "invalid_scope",
        1002012,
    )
    .await;
    expect_error(
        &env,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "s3cret"),
            ("scope", "https://unknown.example/.default"),
        ],
        400,
        "invalid_resource",
        500011,
    )
    .await;
    expect_error(
        &env,
        &[("grant_type", "client_credentials"), ("client_id", ACRLINK_CLIENT), ("client_secret", "s3cret")],
        400,
        "invalid_request",
        900144,
    )
    .await;

    let response = env
        .client
        .post(format!("{}/00000000-0000-0000-0000-0000000000ff/oauth2/v2.0/token", env.base))
        .form(&secret_form(ACRLINK_CLIENT, "s3cret"))
        .send()
        .await
        .expect("token request");
    let wrong_tenant = answer(response).await;
    assert_eq!(wrong_tenant.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_tenant.body["error_codes"], json!([90002]));
}

fn assertion(issuer: &str, subject: &str, audience: &str, exp_offset: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k8s"}"#);
    let now = unix_now();
    let body = URL_SAFE_NO_PAD.encode(
        json!({"iss": issuer, "sub": subject, "aud": [audience], "exp": now + exp_offset, "nbf": now - 10, "iat": now - 10})
            .to_string(),
    );
    format!("{header}.{body}.c2lnbmF0dXJl")
}

async fn assertion_request(env: &Env, assertion: &str, assertion_type: &str) -> (StatusCode, Value) {
    token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_assertion_type", assertion_type),
            ("client_assertion", assertion),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test]
async fn federated_client_assertions_work_and_fail_like_entra() {
    let env = start().await;
    let good =
        assertion("https://issuer.example", "system:serviceaccount:ci:deployer", "api://AzureADTokenExchange", 600);
    let (status, body) = assertion_request(&env, &good, JWT_BEARER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap_or_default())["appidacr"], "2");

    let wrong_subject =
        assertion("https://issuer.example", "system:serviceaccount:other:sa", "api://AzureADTokenExchange", 600);
    let (status, body) = assertion_request(&env, &wrong_subject, JWT_BEARER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_codes"], json!([70021]), "{body}");
    assert!(body["error_description"].as_str().unwrap_or_default().contains("system:serviceaccount:other:sa"));

    let expired =
        assertion("https://issuer.example", "system:serviceaccount:ci:deployer", "api://AzureADTokenExchange", -60);
    let (status, body) = assertion_request(&env, &expired, JWT_BEARER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_codes"], json!([700024]), "{body}");

    let (status, body) = assertion_request(&env, &good, "urn:wrong").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = assertion_request(&env, "not-a-jwt", JWT_BEARER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_codes"], json!([50027]), "{body}");
}

#[tokio::test]
async fn openid_discovery_points_at_the_emulator() {
    let env = start().await;
    let answer =
        env.call(reqwest::Method::GET, &format!("/{TENANT}/v2.0/.well-known/openid-configuration"), None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["token_endpoint"], format!("{}/{TENANT}/oauth2/v2.0/token", env.base));
    assert!(answer.body["authorization_endpoint"].is_string());
    assert!(answer.body["issuer"].is_string());
    let instance = env.call(reqwest::Method::GET, "/common/discovery/instance?api-version=1.1", None, None).await;
    assert_eq!(instance.status, StatusCode::OK);
    assert!(instance.body["tenant_discovery_endpoint"].as_str().unwrap_or_default().starts_with(&env.base));
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_refused() {
    let env = start().await;
    let answer = env.call(reqwest::Method::GET, &format!("/{TENANT}/oauth2/v2.0/token"), None, None).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["error_codes"], json!([900561]));
}

/// The Azure SDK's own credential, configured in code (custom authority + trusted CA).
#[tokio::test]
async fn azure_identity_client_secret_credential_gets_a_token() {
    use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
    use azure_core::credentials::{Secret, TokenCredential};
    use azure_core::http::{ClientOptions, Transport};
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
    use std::sync::Arc;

    let env = start().await;
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = env.emulator.ready_info().authority_host;
    let options = ClientSecretCredentialOptions {
        client_options: ClientOptions {
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            transport: Some(Transport::new(Arc::new(client_for(&env.emulator)))),
            ..Default::default()
        },
    };
    let credential = ClientSecretCredential::new(TENANT, ACRLINK_CLIENT.into(), Secret::new("s3cret"), Some(options))
        .expect("credential");
    let token = credential.get_token(&["https://management.azure.com/.default"], None).await.expect("a token");
    let claims = claims(token.token.secret());
    assert_eq!(claims["oid"], ACRLINK_OBJECT);
    // The token works on ARM.
    let subscriptions = env.get_as(token.token.secret(), "/subscriptions?api-version=2022-12-01").await;
    assert_eq!(subscriptions.status, StatusCode::OK, "{subscriptions}");
}

const CHILD_MARKER: &str = "ACRLINK_EMULATOR_TEST_CHILD";

/// The same credential with no code changes at all: only the ready line's environment
/// (SSL_CERT_FILE, AZURE_AUTHORITY_HOST, ...). Runs in a child process because the
/// environment of this multi-threaded test process cannot be changed safely.
#[tokio::test]
async fn azure_identity_follows_the_ready_line_environment() {
    if std::env::var_os(CHILD_MARKER).is_some() {
        use azure_core::credentials::{Secret, TokenCredential};
        install_crypto();
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
        let credential = azure_identity::ClientSecretCredential::new(
            &var("AZURE_TENANT_ID"),
            var("AZURE_CLIENT_ID"),
            Secret::new(var("AZURE_CLIENT_SECRET")),
            None,
        )
        .expect("credential");
        let token = credential.get_token(&["https://management.azure.com/.default"], None).await.expect("a token");
        println!("CHILD-TOKEN-OK {}", claims(token.token.secret())["oid"]);
        return;
    }
    let env = start().await;
    let exe = std::env::current_exe().expect("the test binary");
    let env_vars = env.emulator.env();
    let output = tokio::process::Command::new(exe)
        .args([
            "--exact",
            "entra::azure_identity_follows_the_ready_line_environment",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env_vars.iter())
        .env(CHILD_MARKER, "1")
        .output()
        .await
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("CHILD-TOKEN-OK \"{ACRLINK_OBJECT}\"")),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(env.emulator.ledger().count("POST", "Token") >= 1);
}
