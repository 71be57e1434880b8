//! Entra ID (v2.0 endpoint): the client-credentials token endpoint with client secrets and
//! federated client assertions, OpenID discovery, and the JWT-shaped access tokens ARM checks.
//! Tokens are HMAC-signed with a key born with the emulator, so forged ones are caught.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cloud::CloudName;
use crate::http::{Reply, Req};
use crate::server::Shared;
use crate::state::{DirectoryObject, State};

/// Resources the token endpoint issues tokens for (`<resource>/.default`) in every cloud,
/// besides the cloud's own ARM audiences and Microsoft Graph.
const KNOWN_RESOURCES: &[&str] = &[
    "https://containerregistry.azure.net",
    // Microsoft Graph's application id.
    "00000003-0000-0000-c000-000000000000",
    // The AKS AAD server application (kubelogin's --server-id).
    "6dae42f8-4368-4678-94ff-3960e28e3630",
];

/// Whether the token endpoint issues tokens for `resource`. Entra ignores trailing slashes on
/// the resource id, so `https://graph.microsoft.com//.default` (az CLI's form: the resource id
/// with its slash, plus `/.default`) names Microsoft Graph. The emulator's own base URL is the
/// Microsoft Graph resource id of the cloud its metadata document describes.
pub(crate) fn is_known_resource(cloud: CloudName, resource: &str, own: &[&str]) -> bool {
    let bare = resource.trim_end_matches('/');
    let profile = cloud.profile();
    KNOWN_RESOURCES
        .iter()
        .chain(profile.arm_audiences)
        .chain([&profile.graph_resource])
        .chain(own)
        .any(|r| r.trim_end_matches('/').eq_ignore_ascii_case(bare))
}

/// Whether a token's audience is this cloud's Microsoft Graph: its resource id (each cloud has
/// its own host), Graph's application id, or the emulator itself, which serves Graph for the
/// cloud its metadata describes.
pub(crate) fn is_graph_audience(cloud: CloudName, audience: &str, own: &[&str]) -> bool {
    let bare = audience.trim_end_matches('/');
    [cloud.profile().graph_resource, GRAPH_APP_ID]
        .iter()
        .chain(own)
        .any(|r| r.trim_end_matches('/').eq_ignore_ascii_case(bare))
}
/// Microsoft Graph's application id, the other form its audience takes.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub(crate) fn sign(key: &hmac::Key, claims: &Value) -> String {
    let header = json!({"typ": "JWT", "alg": "HS256", "kid": "acrlink-emulator"});
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{head}.{body}");
    let tag = hmac::sign(key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// The claims of a JWT without checking its signature (client assertions come from issuers
/// the emulator cannot reach).
pub(crate) fn decode_unverified(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let _header = parts.next()?;
    let body = parts.next()?;
    parts.next()?;
    let bytes = URL_SAFE_NO_PAD.decode(body.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The claims of a token this emulator signed, or None for anything else.
pub(crate) fn verify(key: &hmac::Key, token: &str) -> Option<Value> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    hmac::verify(key, signing_input.as_bytes(), &signature).ok()?;
    decode_unverified(token)
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims as Entra puts them in an app-only v1 access token for a resource.
pub(crate) fn access_token_claims(
    tenant: &str,
    object_id: &str,
    client_id: &str,
    audience: &str,
    lifetime_seconds: i64,
    appidacr: &str,
) -> Value {
    let now = unix_now();
    json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now - 5 * 60,
        "nbf": now - 5 * 60,
        "exp": now + lifetime_seconds,
        "aio": uuid::Uuid::new_v4().simple().to_string(),
        "appid": client_id,
        "appidacr": appidacr,
        "idp": format!("https://sts.windows.net/{tenant}/"),
        "idtyp": "app",
        "oid": object_id,
        "rh": "0.AAAA-emulator.",
        "sub": object_id,
        "tid": tenant,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
        "ver": "1.0",
    })
}

/// Entra's error answer: `{"error","error_description","error_codes",...}`.
fn entra_error(status: u16, error: &str, code: u32, description: &str) -> Reply {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    let timestamp = OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        timestamp.year(),
        u8::from(timestamp.month()),
        timestamp.day(),
        timestamp.hour(),
        timestamp.minute(),
        timestamp.second()
    );
    Reply::json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}"),
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
    .with_header("Cache-Control", "no-store, no-cache")
}

fn tenant_matches(state: &State, tenant: &str) -> bool {
    state.tenant_id.eq_ignore_ascii_case(tenant)
        || state.tenant_domain.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(tenant))
}

fn missing(parameter: &str) -> Reply {
    entra_error(
        400,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn token(shared: &Shared, req: &Req, tenant: &str) -> Reply {
    issue(shared, req, tenant).unwrap_or_else(|reply| reply)
}

/// The form fields of a token request, and the client credentials of HTTP Basic
/// (client_secret_basic) if it came that way.
struct TokenForm {
    fields: Vec<(String, String)>,
    basic: Option<(String, String)>,
}

impl TokenForm {
    fn parse(req: &Req) -> TokenForm {
        let fields = form_urlencoded::parse(&req.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let basic = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(u, p)| (percent_form(u), percent_form(p))));
        TokenForm { fields, basic }
    }

    /// A non-empty field.
    fn field(&self, name: &str) -> Option<String> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    }
}

fn issue(shared: &Shared, req: &Req, tenant: &str) -> Result<Reply, Reply> {
    if req.method != "POST" {
        return Err(entra_error(
            400,
            "invalid_request",
            900561,
            &format!("The endpoint only accepts POST requests. Received a {} request.", req.method),
        ));
    }
    let form = TokenForm::parse(req);
    let state = shared.state();
    if !tenant_matches(&state, tenant) {
        return Err(entra_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    }
    let grant_type = form.field("grant_type").ok_or_else(|| missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(entra_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id = form
        .field("client_id")
        .or_else(|| form.basic.as_ref().map(|(u, _)| u.clone()))
        .ok_or_else(|| missing("client_id"))?;
    let principal = client_principal(&state, &client_id, tenant)?;
    let resource = requested_resource(shared, req, &form, tenant)?;
    let appidacr = authenticate_client(&form, principal, &client_id)?;
    let lifetime = state.settings.token_lifetime_seconds as i64;
    let claims = access_token_claims(
        &state.tenant_id,
        &principal.object_id,
        &client_id.to_ascii_lowercase(),
        &resource,
        lifetime,
        appidacr,
    );
    drop(state);
    let access_token = sign(&shared.signing_key, &claims);
    Ok(Reply::json(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }),
    )
    .with_header("Cache-Control", "no-store, no-cache"))
}

/// The application a client id names, if the directory shows it now.
fn client_principal<'a>(state: &'a State, client_id: &str, tenant: &str) -> Result<&'a DirectoryObject, Reply> {
    state
        .clients
        .get(&client_id.to_ascii_lowercase())
        .and_then(|oid| state.visible(oid, Instant::now()))
        .filter(|d| d.client_id.is_some())
        .ok_or_else(|| {
            entra_error(
                400,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            )
        })
}

/// The resource of the `<resource>/.default` scope, if the tenant knows it.
fn requested_resource(shared: &Shared, req: &Req, form: &TokenForm, tenant: &str) -> Result<String, Reply> {
    let scope = form.field("scope").ok_or_else(|| missing("scope"))?;
    let scope = scope.split_whitespace().next().unwrap_or_default().to_string();
    let Some(resource) = scope.strip_suffix("/.default") else {
        return Err(entra_error(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    if !is_known_resource(shared.cloud, resource, &[&req.base_url, &shared.endpoint]) {
        return Err(entra_error(
            400,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    Ok(resource.to_string())
}

/// Checks the client's secret or federated assertion; returns the token's `appidacr`
/// (1: secret, 2: assertion).
fn authenticate_client(form: &TokenForm, principal: &DirectoryObject, client_id: &str) -> Result<&'static str, Reply> {
    if let Some(secret) = form.field("client_secret").or_else(|| form.basic.as_ref().map(|(_, p)| p.clone())) {
        return check_secret(principal, &secret, client_id).map(|()| "1");
    }
    if let Some(assertion) = form.field("client_assertion") {
        if form.field("client_assertion_type").as_deref() != Some(ASSERTION_TYPE) {
            return Err(entra_error(
                400,
                "invalid_request",
                90014,
                &format!("The required field 'client_assertion_type' is missing or is not '{ASSERTION_TYPE}'."),
            ));
        }
        return check_assertion(principal, &assertion).map(|()| "2");
    }
    Err(entra_error(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ))
}

fn check_secret(principal: &DirectoryObject, secret: &str, client_id: &str) -> Result<(), Reply> {
    let current = OffsetDateTime::now_utc();
    let matching: Vec<_> = principal.secrets.iter().filter(|(value, _)| value == secret).collect();
    if matching.is_empty() {
        return Err(entra_error(
            401,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ));
    }
    if matching.iter().all(|(_, expiry)| expiry.is_some_and(|e| e <= current)) {
        return Err(entra_error(
            401,
            "invalid_client",
            7000222,
            &format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
        ));
    }
    Ok(())
}

/// A federated client assertion: in its time range, and matching one of the principal's
/// federated credentials on issuer, subject and audience (its signature is not checked).
fn check_assertion(principal: &DirectoryObject, assertion: &str) -> Result<(), Reply> {
    let Some(claims) = decode_unverified(assertion) else {
        return Err(entra_error(400, "invalid_request", 50027, "JWT token is invalid or malformed."));
    };
    let unix = unix_now();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let nbf = claims["nbf"].as_i64().unwrap_or(i64::MIN);
    if exp <= unix || nbf > unix + 300 {
        return Err(entra_error(
            400,
            "invalid_client",
            700024,
            &format!(
                "Client assertion is not within its valid time range. Current time: {unix}, assertion valid from {nbf}, expiry time of assertion {exp}."
            ),
        ));
    }
    let issuer = claims["iss"].as_str().unwrap_or_default();
    let subject = claims["sub"].as_str().unwrap_or_default();
    let audiences: Vec<String> = match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list.iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    let matched = principal.federated.iter().any(|f| {
        f.issuer == issuer && f.subject == subject && audiences.iter().any(|a| a.eq_ignore_ascii_case(&f.audience))
    });
    if !matched {
        return Err(entra_error(
            400,
            "invalid_request",
            70021,
            &format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{}'. https://docs.microsoft.com/azure/active-directory/develop/workload-identity-federation",
                audiences.join(",")
            ),
        ));
    }
    Ok(())
}

fn percent_form(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`, what MSAL-based clients read first.
pub(crate) fn openid_configuration(shared: &Shared, req: &Req, tenant: &str) -> Reply {
    let state = shared.state();
    if !tenant_matches(&state, tenant) && !["common", "organizations"].contains(&tenant) {
        return entra_error(400, "invalid_tenant", 90002, &format!("Tenant '{tenant}' not found."));
    }
    let base = &req.base_url;
    let tid = &state.tenant_id;
    Reply::json(
        200,
        &json!({
            "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{tid}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "ver"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }),
    )
}

/// `GET /common/discovery/instance`: MSAL's instance discovery, answered for our own host.
pub(crate) fn instance_discovery(req: &Req) -> Reply {
    let host = req.base_url.trim_start_matches("https://").to_string();
    Reply::json(
        200,
        &json!({
            "tenant_discovery_endpoint": format!("{}/common/v2.0/.well-known/openid-configuration", req.base_url),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys`. The emulator signs with a symmetric key it never
/// publishes, so the set is empty: nobody but the emulator validates its tokens.
pub(crate) fn keys() -> Reply {
    Reply::json(200, &json!({"keys": []}))
}
