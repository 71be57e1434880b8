//! A minimal Microsoft Graph (`/v1.0`): the directory reads az CLI makes to resolve
//! `--assignee` and to name principals in `az role assignment list`. It answers from the
//! emulator's directory (world principals, cluster identities) with Graph's own envelopes
//! (`@odata.context`, `value`, the `error.innerError` shape), not ARM's.

use std::time::Instant;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::entra::{is_graph_audience, verify};
use crate::http::{Reply, Req, next_link};
use crate::server::Shared;
use crate::state::{DirectoryObject, State};

const CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata";
/// Graph's default page size for `servicePrincipals`.
const PAGE: usize = 100;
/// `directoryObjects/getByIds` takes at most this many ids.
const MAX_IDS: usize = 1000;

/// Graph's error body: `{"error":{"code","message","innerError":{date, request-id, ...}}}`.
fn graph_error(req: &Req, status: u16, code: &str, message: impl Into<String>) -> Reply {
    let date = OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = req.header("client-request-id").map(str::to_string).unwrap_or_else(|| request_id.clone());
    Reply::json(
        status,
        &json!({"error": {
            "code": code,
            "message": message.into(),
            "innerError": {"date": date, "request-id": request_id, "client-request-id": client_request_id},
        }}),
    )
}

pub(crate) fn handle(shared: &Shared, req: &Req, rest: &[String]) -> Reply {
    if let Err(reply) = authenticate(shared, req) {
        return reply;
    }
    let state = shared.state();
    let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
    let parts: Vec<&str> = lower.iter().map(String::as_str).collect();
    match (parts.as_slice(), req.method.as_str()) {
        (["serviceprincipals"], "GET") => list_service_principals(&state, req),
        ([one], "GET") if one.starts_with("serviceprincipals(") => by_app_id(&state, req, &rest[0]),
        (["serviceprincipals", _], "GET") => {
            match service_principals(&state).into_iter().find(|d| d.object_id.eq_ignore_ascii_case(&rest[1])) {
                Some(d) => entity(&state, d),
                None => not_found(req, &rest[1]),
            }
        }
        (["directoryobjects", "getbyids"], "POST") => get_by_ids(&state, req),
        _ => graph_error(
            req,
            400,
            "BadRequest",
            format!("Resource not found for the segment '{}'.", rest.first().map(String::as_str).unwrap_or("")),
        ),
    }
}

/// Graph accepts only tokens for its own audience; other tokens are 401 as Graph words it.
fn authenticate(shared: &Shared, req: &Req) -> Result<(), Reply> {
    let invalid = |message: &str| graph_error(req, 401, "InvalidAuthenticationToken", message);
    let token = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .ok_or_else(|| invalid("Access token is empty."))?;
    let claims =
        verify(&shared.signing_key, token.trim()).ok_or_else(|| invalid("Access token validation failure."))?;
    if claims["exp"].as_i64().unwrap_or(0) <= OffsetDateTime::now_utc().unix_timestamp() {
        return Err(invalid("Lifetime validation failed, the token is expired."));
    }
    let audience = claims["aud"].as_str().unwrap_or_default();
    if !is_graph_audience(shared.cloud, audience, &[&req.base_url, &shared.endpoint]) {
        return Err(invalid("Access token validation failure. Invalid audience."));
    }
    let state = shared.state();
    if claims["tid"].as_str() != Some(state.tenant_id.as_str()) {
        return Err(invalid("Access token validation failure. Invalid issuer."));
    }
    let caller = claims["oid"].as_str().unwrap_or_default().to_ascii_lowercase();
    if state.directory.get(&caller).is_some_and(|d| d.no_directory_read) {
        return Err(graph_error(
            req,
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    Ok(())
}

fn not_found(req: &Req, id: &str) -> Reply {
    graph_error(
        req,
        404,
        "Request_ResourceNotFound",
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

/// Directory objects that are service principals (apps and managed identities), visible now.
fn service_principals(state: &State) -> Vec<&DirectoryObject> {
    let now = Instant::now();
    let mut found: Vec<&DirectoryObject> = state
        .directory
        .values()
        .filter(|d| d.visible_at <= now)
        .filter(|d| d.kind.eq_ignore_ascii_case("ServicePrincipal"))
        .collect();
    found.sort_by(|a, b| a.object_id.cmp(&b.object_id));
    found
}

/// The ARM id of a cluster identity (kubelet or control plane): those are managed identities.
fn managed_identity_resource(state: &State, object_id: &str) -> Option<String> {
    state.clusters.values().find_map(|c| {
        [c.kubelet.as_ref(), c.control_plane.as_ref()]
            .into_iter()
            .flatten()
            .find(|i| i.object_id.eq_ignore_ascii_case(object_id))
            .map(|i| i.resource_id.clone())
    })
}

fn service_principal_names(state: &State, d: &DirectoryObject) -> Vec<String> {
    let mut names: Vec<String> = d.client_id.iter().cloned().collect();
    names.extend(managed_identity_resource(state, &d.object_id));
    names
}

/// A directory object as Graph shows it, with its `@odata.type`.
fn object_json(state: &State, d: &DirectoryObject) -> Value {
    match d.kind.to_ascii_lowercase().as_str() {
        "user" => json!({
            "@odata.type": "#microsoft.graph.user",
            "id": d.object_id,
            "displayName": d.name,
            "userPrincipalName": user_principal_name(state, d),
            "mail": Value::Null,
        }),
        "group" => json!({
            "@odata.type": "#microsoft.graph.group",
            "id": d.object_id,
            "displayName": d.name,
            "securityEnabled": true,
            "mailEnabled": false,
            "mailNickname": d.name,
        }),
        _ => service_principal_json(state, d),
    }
}

fn user_principal_name(state: &State, d: &DirectoryObject) -> String {
    if d.name.contains('@') {
        return d.name.clone();
    }
    let domain = state.tenant_domain.clone().unwrap_or_else(|| format!("{}.onmicrosoft.com", &state.tenant_id[..8]));
    format!("{}@{domain}", d.name)
}

fn service_principal_json(state: &State, d: &DirectoryObject) -> Value {
    let resource = managed_identity_resource(state, &d.object_id);
    let (kind, alternative) = match &resource {
        Some(id) => ("ManagedIdentity", vec!["isExplicit=True".to_string(), id.clone()]),
        None => ("Application", Vec::new()),
    };
    json!({
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": d.object_id,
        "accountEnabled": true,
        "alternativeNames": alternative,
        "appDisplayName": if resource.is_some() { Value::Null } else { json!(d.name) },
        "appId": d.client_id,
        "appOwnerOrganizationId": if resource.is_some() { Value::Null } else { json!(state.tenant_id) },
        "displayName": d.name,
        "servicePrincipalNames": service_principal_names(state, d),
        "servicePrincipalType": kind,
        "tags": [],
    })
}

fn entity(state: &State, d: &DirectoryObject) -> Reply {
    let mut body = service_principal_json(state, d);
    if let Some(map) = body.as_object_mut() {
        map.remove("@odata.type");
        map.insert("@odata.context".into(), json!(format!("{CONTEXT}#servicePrincipals/$entity")));
    }
    Reply::json(200, &body)
}

/// `servicePrincipals(appId='…')`.
fn by_app_id(state: &State, req: &Req, segment: &str) -> Reply {
    let inner = segment.split_once('(').map(|(_, r)| r.trim_end_matches(')')).unwrap_or_default();
    let Some(app_id) = inner
        .split_once('=')
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("appId"))
        .map(|(_, v)| v.trim().trim_matches('\'').to_string())
    else {
        return graph_error(req, 400, "BadRequest", format!("Invalid key segment '{segment}'."));
    };
    match service_principals(state)
        .into_iter()
        .find(|d| d.client_id.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(&app_id)))
    {
        Some(d) => entity(state, d),
        None => not_found(req, &format!("appId='{app_id}'")),
    }
}

/// The `$filter` forms az CLI sends for service principals.
#[derive(Debug, PartialEq, Eq)]
enum SpFilter {
    All,
    Name(String),
    AppId(String),
    DisplayName(String),
}

fn quoted(text: &str) -> Option<String> {
    let text = text.trim();
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn parse_filter(filter: Option<&str>) -> Option<SpFilter> {
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else { return Some(SpFilter::All) };
    let lower = filter.to_ascii_lowercase();
    if lower.starts_with("serviceprincipalnames/any(") {
        // `servicePrincipalNames/any(c:c eq 'X')`, any lambda variable name.
        let body = filter.split_once('(')?.1.strip_suffix(')')?;
        let (var, predicate) = body.split_once(':')?;
        let value = predicate.trim().strip_prefix(var.trim())?.trim_start().strip_prefix("eq")?;
        return quoted(value).map(SpFilter::Name);
    }
    let (field, value) = filter.split_once(" eq ")?;
    let value = quoted(value)?;
    match field.trim().to_ascii_lowercase().as_str() {
        "appid" => Some(SpFilter::AppId(value)),
        "displayname" => Some(SpFilter::DisplayName(value)),
        _ => None,
    }
}

fn list_service_principals(state: &State, req: &Req) -> Reply {
    let Some(filter) = parse_filter(req.query("$filter")) else {
        return graph_error(req, 400, "Request_UnsupportedQuery", "Unsupported Query.");
    };
    let matches = |d: &DirectoryObject| match &filter {
        SpFilter::All => true,
        SpFilter::Name(n) => service_principal_names(state, d).iter().any(|x| x.eq_ignore_ascii_case(n)),
        SpFilter::AppId(a) => d.client_id.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(a)),
        SpFilter::DisplayName(n) => d.name == *n,
    };
    let found: Vec<Value> = service_principals(state)
        .into_iter()
        .filter(|d| matches(d))
        .map(|d| {
            let mut v = service_principal_json(state, d);
            if let Some(map) = v.as_object_mut() {
                map.remove("@odata.type");
            }
            v
        })
        .collect();
    let offset = req.query("$skiptoken").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
    let page_size = req.query("$top").and_then(|t| t.parse::<usize>().ok()).unwrap_or(PAGE).clamp(1, 999);
    let total = found.len();
    let page: Vec<Value> = found.into_iter().skip(offset).take(page_size).collect();
    let next = offset + page.len();
    let mut body = json!({"@odata.context": format!("{CONTEXT}#servicePrincipals"), "value": page});
    if next < total {
        body["@odata.nextLink"] = json!(next_link(req, next));
    }
    Reply::json(200, &body)
}

/// `POST directoryObjects/getByIds` `{"ids":[…],"types":[…]?}`: known ids, unknown ones left out.
fn get_by_ids(state: &State, req: &Req) -> Reply {
    let body = match req.json_body() {
        Ok(Value::Object(map)) => map,
        _ => {
            return graph_error(
                req,
                400,
                "BadRequest",
                "Write requests (excluding DELETE) must contain the Content-Type header declaration.",
            );
        }
    };
    let Some(ids) = body.get("ids").and_then(Value::as_array) else {
        return graph_error(req, 400, "Request_BadRequest", "The 'ids' parameter is required.");
    };
    if ids.len() > MAX_IDS {
        return graph_error(
            req,
            400,
            "Request_BadRequest",
            format!("The number of ids in the request exceeds the maximum of {MAX_IDS}."),
        );
    }
    let types: Vec<String> = body
        .get("types")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect())
        .unwrap_or_default();
    let now = Instant::now();
    let found: Vec<Value> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|id| state.visible(id, now))
        .map(|d| object_json(state, d))
        .filter(|v| {
            let kind = v["@odata.type"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("#microsoft.graph.")
                .to_ascii_lowercase();
            types.is_empty() || types.contains(&kind)
        })
        .collect();
    Reply::json(200, &json!({"@odata.context": format!("{CONTEXT}#directoryObjects"), "value": found}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_az_cli_sends() {
        assert_eq!(parse_filter(Some("servicePrincipalNames/any(c:c eq 'abc')")), Some(SpFilter::Name("abc".into())));
        assert_eq!(parse_filter(Some("servicePrincipalNames/any(x: x eq 'a''b')")), Some(SpFilter::Name("a'b".into())));
        assert_eq!(parse_filter(Some("appId eq 'abc'")), Some(SpFilter::AppId("abc".into())));
        assert_eq!(parse_filter(None), Some(SpFilter::All));
        assert_eq!(parse_filter(Some("startswith(displayName,'a')")), None);
    }
}
