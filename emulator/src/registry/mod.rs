//! Each registry's data plane (Docker registry v2 token auth as ACR does it), reached by the
//! `Host` header (`<name>.azurecr.io`, with the login servers in the TLS certificate) or by
//! the path prefix `/acr/{loginServer}/...` for clients that only know the emulator's
//! address: the `/v2/` challenge, `/oauth2/exchange` (Entra token → ACR refresh token),
//! `/oauth2/token` (basic auth, refresh token, anonymous → access token listing only what was
//! granted), and manifests and tags of the world's repositories.
//!
//! - `access`: credentials and RBAC; `image`: image references (used by the kubelet).

pub(crate) mod access;
pub(crate) mod image;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::entra::{sign, verify};
use crate::http::{Reply, Req};
use crate::server::Shared;
use crate::state::{RegistryRec, State};
use access::{Who, may};

/// The audience of Entra tokens for ACR itself (accepted even when ARM tokens are not).
pub const ACR_AUDIENCE: &str = "https://containerregistry.azure.net";
const REFRESH_LIFETIME: i64 = 3 * 3600;

/// Where a data-plane request goes: the registry's login server, the path below it, and
/// the base URL clients must use for it (for the challenge's realm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub login_server: String,
    pub rest: Vec<String>,
    pub base: String,
}

/// Finds the registry a request is for, by Host header or `/acr/{loginServer}` prefix.
pub(crate) fn locate(state: &State, host: Option<&str>, segments: &[String], emulator_base: &str) -> Option<Located> {
    let known = |name: &str| {
        state.registries.values().find(|r| r.login_server.eq_ignore_ascii_case(name)).map(|r| r.login_server.clone())
    };
    if let Some(host) = host {
        let bare =
            host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(h, _)| h);
        if let Some(login_server) = known(bare) {
            return Some(Located { base: format!("https://{host}"), login_server, rest: segments.to_vec() });
        }
    }
    if segments.len() >= 2 && segments[0] == "acr" {
        let login_server = known(&segments[1])?;
        return Some(Located {
            base: format!("{emulator_base}/acr/{login_server}"),
            login_server,
            rest: segments[2..].to_vec(),
        });
    }
    None
}

/// (route template, operation id) for the ledger, after the data plane's swagger.
pub(crate) fn ledger_names(method: &str, rest: &[String]) -> (&'static str, &'static str) {
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method, r.as_slice()) {
        (_, ["v2"]) => ("/acr/{loginServer}/v2/", "V2Support_Check"),
        (_, ["oauth2", "exchange"]) => {
            ("/acr/{loginServer}/oauth2/exchange", "Authentication_ExchangeAadAccessTokenForAcrRefreshToken")
        }
        ("POST", ["oauth2", "token"]) => {
            ("/acr/{loginServer}/oauth2/token", "Authentication_ExchangeAcrRefreshTokenForAcrAccessToken")
        }
        (_, ["oauth2", "token"]) => ("/acr/{loginServer}/oauth2/token", "Authentication_GetAcrAccessToken"),
        (_, ["v2", .., "manifests", _]) => ("/acr/{loginServer}/v2/{name}/manifests/{reference}", "Manifests_Get"),
        (_, ["v2", .., "tags", "list"]) => ("/acr/{loginServer}/v2/{name}/tags/list", "Tags_List"),
        _ => ("/acr/{loginServer}/{path}", "Registry_Unknown"),
    }
}

fn docker_error(status: u16, code: &str, message: &str, detail: Value) -> Reply {
    Reply::json(status, &json!({"errors": [{"code": code, "message": message, "detail": detail}]}))
        .with_header("Docker-Distribution-Api-Version", "registry/2.0")
}

/// A fault as the registry answers it.
pub(crate) fn fault_reply(status: u16, retry_after: Option<u64>) -> Reply {
    match retry_after {
        Some(seconds) => docker_error(429, "TOOMANYREQUESTS", "too many requests", Value::Null)
            .with_header("Retry-After", seconds.to_string()),
        None => docker_error(status, "UNKNOWN", "unknown error", Value::Null),
    }
}

fn challenge(located: &Located, scope: Option<&str>, insufficient: bool) -> Reply {
    let mut header = format!("Bearer realm=\"{}/oauth2/token\",service=\"{}\"", located.base, located.login_server);
    let mut detail = Value::Null;
    if let Some(scope) = scope {
        header.push_str(&format!(",scope=\"{scope}\""));
        let mut parts = scope.splitn(3, ':');
        let (kind, name, action) =
            (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        detail = json!([{"Type": kind, "Name": name, "Action": action}]);
    }
    if insufficient {
        header.push_str(",error=\"insufficient_scope\"");
    }
    docker_error(401, "UNAUTHORIZED", "authentication required", detail).with_header("WWW-Authenticate", header)
}

fn form(req: &Req) -> Vec<(String, String)> {
    let mut pairs = req.query.clone();
    if req.method == "POST" {
        pairs.extend(form_urlencoded::parse(&req.body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }
    pairs
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn basic_credentials(req: &Req) -> Option<(String, String)> {
    let header = req.header("authorization")?;
    let encoded = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    decoded.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))
}

fn bearer(req: &Req) -> Option<&str> {
    let header = req.header("authorization")?;
    header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim)
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn registry_claims(registry: &RegistryRec, subject: &str, lifetime: i64) -> Value {
    let now = unix_now();
    json!({
        "jti": uuid::Uuid::new_v4().to_string(), "sub": subject, "nbf": now - 5, "iat": now - 5, "exp": now + lifetime,
        "iss": "Azure Container Registry", "aud": registry.login_server, "version": "1.0",
        "rid": crate::ids::derived_guid(&registry.id.to_ascii_lowercase()).replace('-', ""),
    })
}

pub(crate) fn handle(shared: &Shared, req: &Req, located: &Located) -> Reply {
    let state = shared.state();
    let Some(registry) = state.registries.values().find(|r| r.login_server == located.login_server) else {
        return docker_error(404, "NOT_FOUND", "registry not found", Value::Null);
    };
    let rest: Vec<&str> = located.rest.iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["v2"] => v2_check(shared, &state, registry, req, located),
        ["oauth2", "exchange"] => exchange(shared, &state, registry, req),
        ["oauth2", "token"] => token(shared, &state, registry, req),
        ["v2", name @ .., "manifests", reference] if !name.is_empty() => {
            manifest(shared, &state, registry, req, located, &name.join("/"), reference)
        }
        ["v2", name @ .., "tags", "list"] if !name.is_empty() => {
            tags(shared, &state, registry, req, located, &name.join("/"))
        }
        _ => docker_error(404, "NOT_FOUND", "the requested resource was not found", Value::Null),
    }
}

/// The caller of a `/v2/...` call: a Bearer access token's grants or Basic credentials.
enum Caller {
    Access(Value),
    Basic(Who),
    Nobody,
    Rejected,
}

fn caller(shared: &Shared, state: &State, registry: &RegistryRec, req: &Req) -> Caller {
    if let Some(token) = bearer(req) {
        return match verify(&shared.signing_key, token) {
            Some(claims)
                if claims["aud"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(&registry.login_server))
                    && claims["exp"].as_i64().is_some_and(|e| e > unix_now())
                    && claims.get("access").is_some() =>
            {
                Caller::Access(claims["access"].clone())
            }
            _ => Caller::Rejected,
        };
    }
    match basic_credentials(req) {
        Some((user, password)) => match access::basic(state, &shared.signing_key, registry, &user, &password) {
            Some(who) => Caller::Basic(who),
            None => Caller::Rejected,
        },
        None => Caller::Nobody,
    }
}

fn caller_may(state: &State, registry: &RegistryRec, caller: &Caller, repository: &str, action: &str) -> bool {
    match caller {
        Caller::Access(access) => access.as_array().into_iter().flatten().any(|a| {
            a["type"] == "repository"
                && a["name"] == repository
                && a["actions"].as_array().is_some_and(|acts| acts.iter().any(|x| x == action || x == "*"))
        }),
        Caller::Basic(who) => may(state, registry, who, repository, action),
        Caller::Nobody => may(state, registry, &Who::Anonymous, repository, action),
        Caller::Rejected => false,
    }
}

fn v2_check(shared: &Shared, state: &State, registry: &RegistryRec, req: &Req, located: &Located) -> Reply {
    match caller(shared, state, registry, req) {
        Caller::Access(_) | Caller::Basic(_) => {
            Reply::json(200, &json!({})).with_header("Docker-Distribution-Api-Version", "registry/2.0")
        }
        _ => challenge(located, None, false),
    }
}

fn exchange(shared: &Shared, state: &State, registry: &RegistryRec, req: &Req) -> Reply {
    if req.method != "POST" {
        return docker_error(405, "UNSUPPORTED", "The operation is unsupported.", Value::Null);
    }
    let pairs = form(req);
    let grant = field(&pairs, "grant_type").unwrap_or_default();
    if !matches!(grant, "access_token" | "access_token_refresh_token" | "refresh_token") {
        return docker_error(400, "UNSUPPORTED", &format!("grant type '{grant}' is not supported"), Value::Null);
    }
    if !field(&pairs, "service").is_some_and(|s| s.eq_ignore_ascii_case(&registry.login_server)) {
        return docker_error(400, "INVALID_PARAMETER", "the service parameter must name this registry", Value::Null);
    }
    let unauthorized = || docker_error(401, "UNAUTHORIZED", "authentication required", Value::Null);
    let (subject, appid) = if grant == "refresh_token" {
        match field(&pairs, "refresh_token").and_then(|t| access::refresh_token(&shared.signing_key, registry, t)) {
            Some(subject) => (subject, Value::Null),
            None => return unauthorized(),
        }
    } else {
        let Some(claims) = field(&pairs, "access_token").and_then(|t| verify(&shared.signing_key, t)) else {
            return unauthorized();
        };
        let audience = claims["aud"].as_str().unwrap_or_default().trim_end_matches('/');
        let arm =
            shared.cloud.profile().arm_audiences.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(audience));
        let audience_ok = audience.eq_ignore_ascii_case(ACR_AUDIENCE) || (arm && registry.aad_as_arm);
        let tenant_ok = claims["tid"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(&state.tenant_id))
            && field(&pairs, "tenant").is_none_or(|t| t.eq_ignore_ascii_case(&state.tenant_id));
        let fresh = claims["exp"].as_i64().is_some_and(|e| e > unix_now());
        if !(audience_ok && tenant_ok && fresh) {
            return unauthorized();
        }
        (claims["oid"].as_str().unwrap_or_default().to_string(), claims["appid"].clone())
    };
    let mut claims = registry_claims(registry, &subject, REFRESH_LIFETIME);
    claims["grant_type"] = json!("refresh_token");
    claims["tenant"] = json!(state.tenant_id);
    claims["appid"] = appid;
    let actions: Vec<&str> = ["pull", "push", "delete"]
        .into_iter()
        .filter(|a| access::principal_may(state, registry, &subject, "*", a) || registry.anonymous_pull && *a == "pull")
        .collect();
    claims["permissions"] = json!({"actions": actions, "notActions": []});
    claims["roles"] = json!([]);
    Reply::json(200, &json!({"refresh_token": sign(&shared.signing_key, &claims)}))
}

/// `repository:team/app:pull,push` → (type, name, actions).
fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((kind.to_string(), name.to_string(), actions.split(',').map(str::to_string).collect()))
}

fn token(shared: &Shared, state: &State, registry: &RegistryRec, req: &Req) -> Reply {
    let pairs = form(req);
    let unauthorized = || docker_error(401, "UNAUTHORIZED", "authentication required", Value::Null);
    if field(&pairs, "service").is_some_and(|s| !s.eq_ignore_ascii_case(&registry.login_server)) {
        return docker_error(400, "INVALID_PARAMETER", "the service parameter must name this registry", Value::Null);
    }
    let who = match field(&pairs, "grant_type") {
        Some("refresh_token") => {
            match field(&pairs, "refresh_token").and_then(|t| access::refresh_token(&shared.signing_key, registry, t)) {
                Some(subject) => Who::Principal(subject),
                None => return unauthorized(),
            }
        }
        Some("password") => match (field(&pairs, "username"), field(&pairs, "password")) {
            (Some(u), Some(p)) => match access::basic(state, &shared.signing_key, registry, u, p) {
                Some(who) => who,
                None => return unauthorized(),
            },
            _ => return unauthorized(),
        },
        Some(other) if req.method == "POST" => {
            return docker_error(400, "UNSUPPORTED", &format!("grant type '{other}' is not supported"), Value::Null);
        }
        _ => match basic_credentials(req) {
            Some((u, p)) => match access::basic(state, &shared.signing_key, registry, &u, &p) {
                Some(who) => who,
                None => return unauthorized(),
            },
            None if registry.anonymous_pull => Who::Anonymous,
            None => return unauthorized(),
        },
    };
    let mut access = Vec::new();
    for scope in pairs.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ')) {
        let Some((kind, name, actions)) = parse_scope(scope) else { continue };
        if kind != "repository" {
            continue;
        }
        let granted: Vec<String> = actions
            .iter()
            .flat_map(
                |a| if a == "*" { vec!["pull".to_string(), "push".into(), "delete".into()] } else { vec![a.clone()] },
            )
            .filter(|a| matches!(a.as_str(), "pull" | "push" | "delete") && may(state, registry, &who, &name, a))
            .collect();
        if !granted.is_empty() {
            access.push(json!({"type": "repository", "name": name, "actions": granted}));
        }
    }
    let subject = match &who {
        Who::Admin => registry.name.clone(),
        Who::Principal(oid) => oid.clone(),
        Who::Token(_) => field(&pairs, "username")
            .map(str::to_string)
            .or_else(|| basic_credentials(req).map(|(u, _)| u))
            .unwrap_or_default(),
        Who::Anonymous => String::new(),
    };
    let lifetime = state.settings.token_lifetime_seconds as i64;
    let mut claims = registry_claims(registry, &subject, lifetime);
    claims["grant_type"] = json!("access_token");
    claims["access"] = json!(access);
    claims["roles"] = json!([]);
    Reply::json(200, &json!({"access_token": sign(&shared.signing_key, &claims)}))
}

/// A deterministic image manifest for a tag, and its digest.
fn manifest_of(registry: &RegistryRec, repository: &str, tag: &str) -> (Vec<u8>, String) {
    let seed = format!("{}/{repository}:{tag}", registry.login_server);
    let digest_of = |bytes: &[u8]| {
        let d = ring::digest::digest(&ring::digest::SHA256, bytes);
        format!("sha256:{}", d.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    let config = digest_of(format!("config:{seed}").as_bytes());
    let layer = digest_of(format!("layer:{seed}").as_bytes());
    let body = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1472, "digest": config},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3_623_807, "digest": layer}],
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let digest = digest_of(&bytes);
    (bytes, digest)
}

/// What a pull of `repository:reference` finds: the manifest, or which 404 it is.
pub(crate) enum Lookup {
    Found(Vec<u8>, String),
    NoRepository,
    NoManifest,
}

pub(crate) fn lookup(registry: &RegistryRec, repository: &str, reference: &str) -> Lookup {
    let Some(tags) = registry.repositories.get(repository) else { return Lookup::NoRepository };
    for tag in tags {
        let (bytes, digest) = manifest_of(registry, repository, tag);
        if tag == reference || digest == reference {
            return Lookup::Found(bytes, digest);
        }
    }
    Lookup::NoManifest
}

fn manifest(
    shared: &Shared,
    state: &State,
    registry: &RegistryRec,
    req: &Req,
    located: &Located,
    name: &str,
    reference: &str,
) -> Reply {
    let who = caller(shared, state, registry, req);
    if !caller_may(state, registry, &who, name, "pull") {
        let insufficient = matches!(who, Caller::Access(_));
        return challenge(located, Some(&format!("repository:{name}:pull")), insufficient);
    }
    match lookup(registry, name, reference) {
        Lookup::NoRepository => {
            docker_error(404, "NAME_UNKNOWN", "repository name not known to registry", json!({"name": name}))
        }
        Lookup::NoManifest => docker_error(
            404,
            "MANIFEST_UNKNOWN",
            &format!("manifest tagged by \"{reference}\" is not found"),
            json!({"Tag": reference}),
        ),
        Lookup::Found(bytes, digest) => {
            let length = bytes.len();
            let mut reply = Reply {
                status: 200,
                body: (req.method != "HEAD").then_some(bytes),
                content_type: "application/vnd.docker.distribution.manifest.v2+json",
                headers: Vec::new(),
            }
            .with_header("Docker-Content-Digest", digest)
            .with_header("Docker-Distribution-Api-Version", "registry/2.0");
            if req.method == "HEAD" {
                reply = reply.with_header("Content-Length", length.to_string());
            }
            reply
        }
    }
}

fn tags(shared: &Shared, state: &State, registry: &RegistryRec, req: &Req, located: &Located, name: &str) -> Reply {
    let who = caller(shared, state, registry, req);
    if !caller_may(state, registry, &who, name, "pull") {
        return challenge(located, Some(&format!("repository:{name}:pull")), matches!(who, Caller::Access(_)));
    }
    match registry.repositories.get(name) {
        Some(tags) => Reply::json(200, &json!({"name": name, "tags": tags})),
        None => docker_error(404, "NAME_UNKNOWN", "repository name not known to registry", json!({"name": name})),
    }
}
