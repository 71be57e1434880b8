//! Signing in without a secret: the CI token services (GitHub Actions' ID-token endpoint,
//! Azure Pipelines' OIDC endpoint), whose ID tokens Entra's token endpoint accepts as
//! federated client assertions, and the managed-identity endpoints (IMDS, App Service, Azure
//! Arc).
//!
//! Their request secrets (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`, `SYSTEM_ACCESSTOKEN`,
//! `IDENTITY_HEADER`) are signed with the emulator's key, so no state holds them.

use std::collections::BTreeMap;

use ring::hmac;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::http::{Reply, Req};
use crate::server::Shared;

/// The audience Entra expects in federated assertions.
pub(crate) const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Paths of the services on the emulator's host.
pub(crate) const GITHUB_PATH: &str = "/actions/idtoken";
pub(crate) const PIPELINES_PATH: &str = "/pipelines/oidctoken";
pub(crate) const APP_SERVICE_PATH: &str = "/msi/token";
pub(crate) const ARC_PATH: &str = "/azcmagent/metadata/identity/oauth2/token";

/// Which secret a request carries.
#[derive(Clone, Copy)]
enum Purpose {
    ActionsRequest,
    PipelinesAccess,
    IdentityHeader,
    ArcKey,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Purpose::ActionsRequest => "actions-id-token-request",
            Purpose::PipelinesAccess => "azure-pipelines-system-access-token",
            Purpose::IdentityHeader => "app-service-identity-header",
            Purpose::ArcKey => "azure-arc-challenge-key",
        }
    }
}

fn secret(key: &hmac::Key, purpose: Purpose) -> String {
    crate::entra::sign(key, &json!({"purpose": purpose.name(), "iss": "acrlink-emulator"}))
}

fn is_secret(key: &hmac::Key, purpose: Purpose, presented: &str) -> bool {
    crate::entra::verify(key, presented).is_some_and(|claims| claims["purpose"] == purpose.name())
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The variables each sign-in place would give a process, pointing at this emulator: GitHub
/// Actions', Azure Pipelines' (plus the AzureCLI task's service-connection id), App Service's,
/// and `ACRLINK_IMDS_ENDPOINT`, the address override for IMDS.
pub(crate) fn environment(shared: &Shared) -> BTreeMap<String, String> {
    let base = &shared.endpoint;
    let key = &shared.signing_key;
    let mut env = BTreeMap::new();
    env.insert("ACTIONS_ID_TOKEN_REQUEST_URL".into(), format!("{base}{GITHUB_PATH}?api-version=2.0"));
    env.insert("ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(), secret(key, Purpose::ActionsRequest));
    env.insert("SYSTEM_OIDCREQUESTURI".into(), format!("{base}{PIPELINES_PATH}"));
    env.insert("SYSTEM_ACCESSTOKEN".into(), secret(key, Purpose::PipelinesAccess));
    env.insert(
        "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID".into(),
        shared.sign_in.pipelines_service_connection_id.clone(),
    );
    env.insert("IDENTITY_ENDPOINT".into(), format!("{base}{APP_SERVICE_PATH}"));
    env.insert("IDENTITY_HEADER".into(), secret(key, Purpose::IdentityHeader));
    env.insert("ACRLINK_IMDS_ENDPOINT".into(), base.clone());
    env
}

/// An Azure Arc-enabled server's variables (the agent sets IDENTITY_ENDPOINT and IMDS_ENDPOINT
/// for every process), and ACRLINK_ARC_KEY_DIRECTORY: acrlink's setting for where the agent's
/// challenge keys are, here this emulator's own directory instead of /var/opt/azcmagent/tokens.
pub(crate) fn arc_environment(shared: &Shared) -> BTreeMap<String, String> {
    let base = &shared.endpoint;
    let mut env = BTreeMap::new();
    env.insert("IDENTITY_ENDPOINT".into(), format!("{base}{ARC_PATH}"));
    env.insert("IMDS_ENDPOINT".into(), base.clone());
    env.insert("ACRLINK_ARC_KEY_DIRECTORY".into(), shared.arc_key_directory.display().to_string());
    env
}

fn bearer(req: &Req) -> Option<&str> {
    req.header("authorization").and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
}

fn id_token(shared: &Shared, issuer: &str, subject: &str, audience: &str, extra: Value) -> String {
    let now = unix_now();
    let mut claims = json!({
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now - 5,
        "exp": now + shared.sign_in.id_token_lifetime_seconds as i64,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    crate::entra::sign(&shared.signing_key, &claims)
}

/// `GET {ACTIONS_ID_TOKEN_REQUEST_URL}&audience=...` with `Authorization: Bearer
/// {ACTIONS_ID_TOKEN_REQUEST_TOKEN}` → `{"value": "<JWT>"}`, as GitHub's runner service does.
pub(crate) fn github(shared: &Shared, req: &Req) -> Reply {
    if req.method != "GET" {
        return Reply::json(
            405,
            &json!({"message": format!("The requested resource does not support http method '{}'.", req.method)}),
        );
    }
    if !bearer(req).is_some_and(|t| is_secret(&shared.signing_key, Purpose::ActionsRequest, t)) {
        return Reply::json(
            401,
            &json!({"message": "Unauthorized: the ID token request token is missing or invalid."}),
        );
    }
    let sign_in = &shared.sign_in;
    // GitHub's default audience is the repository owner's URL.
    let owner = sign_in.github_subject.strip_prefix("repo:").and_then(|s| s.split('/').next()).unwrap_or("contoso");
    let default_audience = format!("https://github.com/{owner}");
    let audience = req.query("audience").unwrap_or(&default_audience);
    let repository =
        sign_in.github_subject.strip_prefix("repo:").and_then(|s| s.split(':').next()).unwrap_or_default().to_string();
    let token = id_token(
        shared,
        &sign_in.github_issuer,
        &sign_in.github_subject,
        audience,
        json!({"repository": repository, "repository_owner": owner, "event_name": "push", "run_id": "1"}),
    );
    Reply::json(200, &json!({"count": 1, "value": token}))
}

/// `POST {SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=...` with
/// `Authorization: Bearer {SYSTEM_ACCESSTOKEN}` → `{"oidcToken": "<JWT>"}`.
pub(crate) fn pipelines(shared: &Shared, req: &Req) -> Reply {
    if req.method != "POST" {
        return Reply::json(405, &json!({"message": "The requested resource does not support http method 'GET'."}));
    }
    if !bearer(req).is_some_and(|t| is_secret(&shared.signing_key, Purpose::PipelinesAccess, t)) {
        return Reply::json(401, &json!({"message": "TF400813: The user is not authorized to access this resource."}));
    }
    if req.query("api-version").is_none() {
        return Reply::json(
            400,
            &json!({"message": "VS800075: The project or api-version is missing.", "typeKey": "VssInvalidPreviewVersionException"}),
        );
    }
    let sign_in = &shared.sign_in;
    let connection = req.query("serviceConnectionId").unwrap_or_default();
    if !connection.eq_ignore_ascii_case(&sign_in.pipelines_service_connection_id) {
        return Reply::json(
            404,
            &json!({"message": format!("Service connection with id '{connection}' was not found or is not authorized for this pipeline."), "typeKey": "ServiceEndpointNotFoundException"}),
        );
    }
    let token =
        id_token(shared, &sign_in.pipelines_issuer, &sign_in.pipelines_subject, TOKEN_EXCHANGE_AUDIENCE, json!({}));
    Reply::json(200, &json!({"oidcToken": token}))
}

/// One of the machine's managed identities: (object id, client id).
fn managed_identity(shared: &Shared, client_id: Option<&str>) -> Result<(String, String), &'static str> {
    let state = shared.state();
    let mut candidates = shared.sign_in.managed_identities.iter().filter_map(|name| {
        state
            .directory
            .values()
            .find(|d| d.name.eq_ignore_ascii_case(name))
            .and_then(|d| Some((d.object_id.clone(), d.client_id.clone()?)))
    });
    match client_id {
        None => candidates.next().ok_or("No managed identity is assigned to this resource."),
        Some(wanted) => candidates
            .find(|(_, c)| c.eq_ignore_ascii_case(wanted))
            .ok_or("The requested identity has not been assigned to this resource."),
    }
}

/// The access token for `resource`, as (token, lifetime seconds, client id), or an error text.
fn managed_token(shared: &Shared, req: &Req, resource: &str) -> Result<(String, i64, String), (u16, Value)> {
    let client_id = req.query("client_id");
    let (object_id, client_id) = managed_identity(shared, client_id)
        .map_err(|message| (400, json!({"error": "invalid_request", "error_description": message})))?;
    if !crate::entra::is_known_resource(shared.cloud, resource, &[&req.base_url, &shared.endpoint]) {
        return Err((
            400,
            json!({"error": "invalid_resource", "error_description": format!("AADSTS500011: The resource principal named {resource} was not found in the tenant.")}),
        ));
    }
    let (tenant, lifetime) = {
        let state = shared.state();
        (state.tenant_id.clone(), state.settings.token_lifetime_seconds as i64)
    };
    let audience = resource.to_string();
    let claims = crate::entra::access_token_claims(&tenant, &object_id, &client_id, &audience, lifetime, "2");
    Ok((crate::entra::sign(&shared.signing_key, &claims), lifetime, client_id))
}

/// IMDS and Arc's identity service answer only a GET with `Metadata: true` (what keeps a
/// server-side request forgery from reaching them), and word the refusals alike.
fn refuse_without_metadata(req: &Req) -> Option<Reply> {
    if req.method != "GET" {
        return Some(Reply::json(405, &json!({"error": "method_not_allowed", "error_description": "GET only"})));
    }
    if req.header("metadata") != Some("true") {
        return Some(Reply::json(
            400,
            &json!({"error": "bad_request_102", "error_description": "Required metadata header not specified"}),
        ));
    }
    None
}

/// IMDS: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` with
/// `Metadata: true` (optional `client_id`). Every value of the answer is a string.
pub(crate) fn imds(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = refuse_without_metadata(req) {
        return refused;
    }
    if req.query("api-version").is_none() {
        return Reply::json(
            400,
            &json!({"error": "bad_request_100", "error_description": "Required query variable 'api-version' is missing"}),
        );
    }
    let Some(resource) = req.query("resource").map(str::to_string) else {
        return Reply::json(
            400,
            &json!({"error": "invalid_request", "error_description": "Required query variable 'resource' is missing"}),
        );
    };
    imds_style_token(shared, req, &resource, |answer, lifetime| {
        answer.insert("refresh_token".into(), json!(""));
        answer.insert("ext_expires_in".into(), json!(lifetime.to_string()));
    })
}

/// The token answer IMDS and Arc share (every value a string); `extend` adds what only one of
/// them sends.
fn imds_style_token(
    shared: &Shared,
    req: &Req,
    resource: &str,
    extend: impl FnOnce(&mut serde_json::Map<String, Value>, i64),
) -> Reply {
    match managed_token(shared, req, resource) {
        Ok((token, lifetime, client_id)) => {
            let now = unix_now();
            let mut answer = serde_json::Map::new();
            for (key, value) in [
                ("access_token", token),
                ("expires_in", lifetime.to_string()),
                ("expires_on", (now + lifetime).to_string()),
                ("not_before", now.to_string()),
                ("resource", resource.to_string()),
                ("token_type", "Bearer".to_string()),
                ("client_id", client_id),
            ] {
                answer.insert(key.into(), Value::String(value));
            }
            extend(&mut answer, lifetime);
            Reply::json(200, &Value::Object(answer))
        }
        Err((status, body)) => Reply::json(status, &body),
    }
}

/// App Service / Functions / Container Apps: `GET {IDENTITY_ENDPOINT}?resource=...&api-version=2019-08-01`
/// with `X-IDENTITY-HEADER: {IDENTITY_HEADER}`. The answer has `expires_on`, no `expires_in`.
pub(crate) fn app_service(shared: &Shared, req: &Req) -> Reply {
    let header = req.header("x-identity-header").unwrap_or_default();
    if !is_secret(&shared.signing_key, Purpose::IdentityHeader, header) {
        return Reply::json(
            401,
            &json!({"statusCode": 401, "message": "Unauthorized: the X-IDENTITY-HEADER is missing or wrong."}),
        );
    }
    let Some(resource) = req.query("resource").map(str::to_string) else {
        return Reply::json(400, &json!({"statusCode": 400, "message": "The resource parameter is missing."}));
    };
    match managed_token(shared, req, &resource) {
        Ok((token, lifetime, client_id)) => Reply::json(
            200,
            &json!({
                "access_token": token,
                "expires_on": (unix_now() + lifetime).to_string(),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": client_id,
            }),
        ),
        Err((_, body)) => Reply::json(
            500,
            &json!({"statusCode": 500, "message": body["error_description"].as_str().unwrap_or("error"), "correlationId": uuid::Uuid::new_v4().to_string()}),
        ),
    }
}

/// Azure Arc's identity service: `GET {IDENTITY_ENDPOINT}?api-version=2020-06-01&resource=...`
/// with `Metadata: true`. Without `Authorization`, it writes a fresh key file into its key
/// directory and answers 401 `WWW-Authenticate: Basic realm=<that file>`; with
/// `Authorization: Basic <the file's content>`, an IMDS-style token (values as strings).
pub(crate) fn arc(shared: &Shared, req: &Req) -> Reply {
    if let Some(refused) = refuse_without_metadata(req) {
        return refused;
    }
    let Some(resource) = req.query("resource").map(str::to_string).filter(|_| req.query("api-version").is_some())
    else {
        return Reply::json(
            400,
            &json!({"error": "invalid_request", "error_description": "Required query variables 'api-version' and 'resource'"}),
        );
    };
    let presented = req.header("authorization").and_then(|h| h.strip_prefix("Basic "));
    match presented {
        None => arc_challenge(shared),
        Some(key) if is_secret(&shared.signing_key, Purpose::ArcKey, key.trim()) => {
            imds_style_token(shared, req, &resource, |_, _| {})
        }
        Some(_) => Reply::json(401, &json!({"error": "unauthorized", "error_description": "Invalid secret key"})),
    }
}

/// A fresh key file in the key directory and the 401 that names it.
fn arc_challenge(shared: &Shared) -> Reply {
    let file = shared.arc_key_directory.join(format!("{}.key", uuid::Uuid::new_v4().simple()));
    if let Err(e) = std::fs::write(&file, secret(&shared.signing_key, Purpose::ArcKey)) {
        return Reply::json(
            500,
            &json!({"error": "internal_error", "error_description": format!("cannot write the key: {e}")}),
        );
    }
    Reply::json(401, &json!({"error": "unauthorized", "error_description": "Authorization header is required"}))
        .with_header("WWW-Authenticate", format!("Basic realm={}", file.display()))
}
