//! Azure Resource Graph: `POST /providers/Microsoft.ResourceGraph/resources`, one KQL query
//! (the subset in `kql`) over two tables built from the emulator's own state:
//! `resources` (managed clusters and registries, with the same `properties` ARM answers) and
//! `authorizationresources` (role assignments). Rows are those the caller may read, in the
//! subscriptions asked for (every subscription the caller can see when none are given).
//!
//! Answers `{totalRecords, count, data, facets: [], resultTruncated, $skipToken?}` with
//! `objectArray` data; pages with `options.$top` (default 100, at most 1000), `$skip` and
//! `$skipToken` (an opaque offset, given while the result has an `id` column); and spends the
//! per-user quota (15 queries per 5 s) shown in `x-ms-user-quota-remaining` and
//! `x-ms-user-quota-resets-after`. Only the returned page's rows are rendered.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::kql::{self, Query, QueryError, Table, walk};
use super::{Ctx, list_prefix, under};
use crate::http::{Reply, now_azure};
use crate::ids::{resource_group_of, scope_key, subscription_of};
use crate::state::{AssignmentRec, ClusterRec, Readable, RegistryRec, State};
use crate::throttle::QueryQuota;

const CLUSTER_TYPE: &str = "microsoft.containerservice/managedclusters";
const REGISTRY_TYPE: &str = "microsoft.containerregistry/registries";
const ASSIGNMENT_TYPE: &str = "microsoft.authorization/roleassignments";
/// The registry api-version whose `properties` Resource Graph shows (with `roleAssignmentMode`).
const REGISTRY_VERSION: &str = "2025-11-01";
const MAX_SUBSCRIPTIONS: usize = 1000;
const MAX_TOP: usize = 1000;
const DEFAULT_TOP: usize = 100;

/// Resource Graph's 400: `BadRequest` with `InvalidQuery` and one more detail saying what.
fn bad_request(detail: Value) -> Reply {
    Reply::json(
        400,
        &json!({"error": {
            "code": "BadRequest",
            "message": format!(
                "Please provide below info when asking for support: timestamp = {}, correlationId = {}.",
                now_azure(),
                uuid::Uuid::new_v4()
            ),
            "details": [
                {"code": "InvalidQuery", "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying."},
                detail,
            ],
        }}),
    )
}

fn invalid_request(code: &str, message: impl Into<String>) -> Reply {
    bad_request(json!({"code": code, "message": message.into()}))
}

fn query_error(text: &str, error: QueryError) -> Reply {
    match error {
        QueryError::Parse { position, token } => {
            let before: Vec<char> = text.chars().take(position).collect();
            let line = before.iter().filter(|c| **c == '\n').count() + 1;
            let column = before.iter().rev().take_while(|c| **c != '\n').count();
            bad_request(json!({
                "code": "ParserFailure", "message": "ParserFailure",
                "line": line, "characterPositionInLine": column, "token": token,
            }))
        }
        QueryError::Unsupported { token } => bad_request(json!({
            "code": "InvalidQueryLanguage", "message": "InvalidQueryLanguage",
            "line": -1, "characterPositionInLine": -1, "token": token,
        })),
        QueryError::Unresolved { operator, name } => bad_request(json!({
            "code": "FailedToResolveScalarExpression",
            "message": format!("'{operator}' operator: Failed to resolve scalar expression named '{name}'"),
        })),
    }
}

/// Which role assignments relative to the subscriptions `authorizationresources` shows
/// (`options.authorizationScopeFilter`: AtScopeAndBelow, the default, AtScopeAndAbove, ...).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ScopeFilter {
    AndBelow,
    AndAbove,
    Exact,
    AboveAndBelow,
}

struct Request {
    query: Query,
    subscriptions: Option<Vec<String>>,
    top: usize,
    offset: usize,
    scope_filter: ScopeFilter,
}

fn number(options: &Value, name: &str, range: std::ops::RangeInclusive<usize>) -> Result<Option<usize>, Reply> {
    match &options[name] {
        Value::Null => Ok(None),
        v => v.as_u64().map(|n| n as usize).filter(|n| range.contains(n)).map(Some).ok_or_else(|| {
            invalid_request(
                "InvalidQueryOptions",
                format!("The value of '{name}' must be an integer from {} to {}.", range.start(), range.end()),
            )
        }),
    }
}

fn skip_token(options: &Value) -> Result<Option<usize>, Reply> {
    let Some(token) = options["$skipToken"].as_str() else { return Ok(None) };
    let offset = STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v["$skip"].as_u64());
    offset
        .map(|n| Some(n as usize))
        .ok_or_else(|| invalid_request("InvalidSkipToken", format!("The skip token '{token}' is not valid.")))
}

fn scope_filter(options: &Value) -> Result<ScopeFilter, Reply> {
    Ok(match options["authorizationScopeFilter"].as_str() {
        None => ScopeFilter::AndBelow,
        Some(f) if f.eq_ignore_ascii_case("AtScopeAndBelow") => ScopeFilter::AndBelow,
        Some(f) if f.eq_ignore_ascii_case("AtScopeAndAbove") => ScopeFilter::AndAbove,
        Some(f) if f.eq_ignore_ascii_case("AtScopeExact") => ScopeFilter::Exact,
        Some(f) if f.eq_ignore_ascii_case("AtScopeAboveAndBelow") => ScopeFilter::AboveAndBelow,
        Some(f) => {
            return Err(invalid_request("InvalidQueryOptions", format!("'{f}' is not an authorizationScopeFilter.")));
        }
    })
}

fn subscriptions(body: &Value) -> Result<Option<Vec<String>>, Reply> {
    if !body["managementGroups"].is_null() {
        return Err(invalid_request(
            "UnsupportedScope",
            "Management groups are not emulated: query with 'subscriptions' or at tenant scope.",
        ));
    }
    let Some(list) = body["subscriptions"].as_array() else { return Ok(None) };
    if list.len() > MAX_SUBSCRIPTIONS {
        return Err(invalid_request(
            "TooManySubscriptions",
            format!("A query may name at most {MAX_SUBSCRIPTIONS} subscriptions; {} were given.", list.len()),
        ));
    }
    let ids: Option<Vec<String>> = list.iter().map(|s| s.as_str().map(str::to_ascii_lowercase)).collect();
    ids.map(Some).ok_or_else(|| invalid_request("InvalidRequestContent", "'subscriptions' must be a list of ids."))
}

fn request(ctx: &Ctx<'_>) -> Result<Request, Reply> {
    let body = ctx.req.json_body().map_err(|e| {
        invalid_request("InvalidRequestContent", format!("The request content could not be deserialized: '{e}'."))
    })?;
    let Some(text) = body["query"].as_str().map(str::to_string) else {
        return Err(invalid_request(
            "InvalidRequestContent",
            "The request content is missing the required property 'query'.",
        ));
    };
    let options = &body["options"];
    match options["resultFormat"].as_str() {
        None => {}
        Some(f) if f.eq_ignore_ascii_case("objectArray") => {}
        Some(f) => {
            return Err(invalid_request(
                "UnsupportedResultFormat",
                format!("resultFormat '{f}' is not emulated; send 'objectArray'."),
            ));
        }
    }
    let query = kql::parse(&text).map_err(|e| query_error(&text, e))?;
    let top = number(options, "$top", 1..=MAX_TOP)?.unwrap_or(DEFAULT_TOP);
    let skip = number(options, "$skip", 0..=usize::MAX)?;
    let offset = skip.or(skip_token(options)?).unwrap_or(0);
    let scope_filter = scope_filter(options)?;
    Ok(Request { query, subscriptions: subscriptions(&body)?, top, offset, scope_filter })
}

/// A row of one of the tables, rendered only when needed.
#[derive(Clone, Copy)]
enum Row<'a> {
    Cluster(&'a ClusterRec),
    Registry(&'a RegistryRec),
    Assignment(&'a AssignmentRec),
}

fn assignment_id(a: &AssignmentRec) -> String {
    let scope = if a.scope == "/" { "" } else { a.scope.as_str() };
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", a.name)
}

impl Row<'_> {
    /// A top-level column that costs nothing to read; None for the ones that need the row.
    fn cheap(self, state: &State, column: &str) -> Option<Value> {
        let text = match (column, self) {
            ("id", Row::Cluster(c)) => super::aks::cluster_json_id(c),
            ("id", Row::Registry(r)) => r.id.clone(),
            ("id", Row::Assignment(a)) => assignment_id(a),
            ("name", Row::Cluster(c)) => c.name.clone(),
            ("name", Row::Registry(r)) => r.name.clone(),
            ("name", Row::Assignment(a)) => a.name.clone(),
            ("type", Row::Cluster(_)) => CLUSTER_TYPE.into(),
            ("type", Row::Registry(_)) => REGISTRY_TYPE.into(),
            ("type", Row::Assignment(_)) => ASSIGNMENT_TYPE.into(),
            ("subscriptionId", Row::Cluster(c)) => c.subscription.clone(),
            ("subscriptionId", Row::Registry(r)) => r.subscription.clone(),
            ("subscriptionId", Row::Assignment(a)) => subscription_of(&a.scope).unwrap_or_default(),
            ("resourceGroup", Row::Cluster(c)) => c.resource_group.to_ascii_lowercase(),
            ("resourceGroup", Row::Registry(r)) => r.resource_group.to_ascii_lowercase(),
            ("resourceGroup", Row::Assignment(a)) => {
                resource_group_of(&a.scope).unwrap_or_default().to_ascii_lowercase()
            }
            ("location", Row::Cluster(c)) => c.location.clone(),
            ("location", Row::Registry(r)) => r.location.clone(),
            ("location", Row::Assignment(_)) | ("managedBy", _) => String::new(),
            ("tenantId", _) => state.tenant_id.clone(),
            ("plan" | "zones" | "extendedLocation", _) => return Some(Value::Null),
            _ => return None,
        };
        Some(Value::String(text))
    }

    /// The whole row as Resource Graph shows it.
    fn render(self, state: &State) -> Value {
        let (mut arm, kind) = match self {
            Row::Cluster(c) => (super::aks::cluster_json(state, c), json!("Base")),
            Row::Registry(r) => (super::acr::registry_json(r, REGISTRY_VERSION), json!("")),
            Row::Assignment(a) => (state.assignment_json(a), json!("")),
        };
        let mut row = Map::new();
        for column in kql::RESOURCE_COLUMNS {
            let value = match *column {
                "kind" => kind.clone(),
                "sku" | "properties" | "tags" | "identity" => {
                    arm.as_object_mut().and_then(|m| m.remove(*column)).unwrap_or(Value::Null)
                }
                other => self.cheap(state, other).unwrap_or(Value::Null),
            };
            row.insert(column.to_string(), value);
        }
        Value::Object(row)
    }

    /// A path of the row; renders the row (counted in `rendered`) only for costly columns.
    fn path(self, state: &State, path: &[String], rendered: &mut u64) -> Value {
        if let Row::Assignment(a) = self
            && path.len() == 2
            && path[0] == "properties"
            && let Some(v) = assignment_property(a, &path[1])
        {
            return v;
        }
        if path.len() == 1
            && let Some(v) = self.cheap(state, &path[0])
        {
            return v;
        }
        *rendered += 1;
        walk(&self.render(state), path)
    }
}

fn assignment_property(a: &AssignmentRec, name: &str) -> Option<Value> {
    Some(match name {
        "scope" => json!(a.scope),
        "principalId" => json!(a.principal_id),
        "principalType" => json!(a.principal_type),
        _ => return None,
    })
}

/// The table's rows the caller may read, in the subscriptions asked for.
fn rows<'a>(ctx: &Ctx<'_>, state: &'a State, request: &Request) -> Vec<Row<'a>> {
    let grants = state.grants_of(&ctx.caller.object_id);
    let subscriptions: BTreeSet<String> = match &request.subscriptions {
        Some(list) => list.iter().filter(|s| state.subscription(s).is_some()).cloned().collect(),
        None => state.subscriptions.iter().map(|s| s.id.clone()).collect(),
    };
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for sub in &subscriptions {
        let scope = format!("/subscriptions/{sub}");
        let prefix = list_prefix(sub, None);
        match request.query.table {
            Table::Resources => {
                let clusters = Readable::new(&grants, &scope, "Microsoft.ContainerService/managedClusters/read");
                let registries = Readable::new(&grants, &scope, "Microsoft.ContainerRegistry/registries/read");
                rows.extend(
                    under(&state.clusters, &prefix).filter(|(k, _)| clusters.allows(k)).map(|(_, c)| Row::Cluster(c)),
                );
                rows.extend(
                    under(&state.registries, &prefix)
                        .filter(|(k, _)| registries.allows(k))
                        .map(|(_, r)| Row::Registry(r)),
                );
            }
            Table::AuthorizationResources => {
                let readable = Readable::new(&grants, &scope, "Microsoft.Authorization/roleAssignments/read");
                let found = match request.scope_filter {
                    ScopeFilter::AndBelow => state.assignments.at_or_below(&scope),
                    ScopeFilter::AndAbove => state.assignments.at_or_above(&scope),
                    ScopeFilter::Exact => state.assignments.at(&scope).collect(),
                    ScopeFilter::AboveAndBelow => state.assignments.related(&scope),
                };
                // Rows above the subscription show with a grant to read at it.
                let shown = |a: &AssignmentRec| {
                    let key = scope_key(&a.scope);
                    (key != scope && !key.starts_with(&prefix) && readable.allows(&scope)) || readable.allows(&key)
                };
                rows.extend(
                    found.into_iter().filter(|a| shown(a)).filter(|a| seen.insert(a.name.clone())).map(Row::Assignment),
                );
            }
        }
    }
    rows
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => kql::text_of(a).cmp(&kql::text_of(b)),
    }
}

/// Filters, sorts and cuts the rows as the query says.
fn evaluate<'a>(state: &State, query: &Query, rows: Vec<Row<'a>>, rendered: &mut u64) -> Vec<Row<'a>> {
    let mut kept: Vec<Row<'a>> = rows
        .into_iter()
        .filter(|row| query.filters.iter().all(|f| kql::holds(f, &mut |p| row.path(state, p, rendered))))
        .collect();
    if !query.order.is_empty() {
        let mut keyed: Vec<(Vec<Value>, Row<'a>)> = kept
            .into_iter()
            .map(|row| {
                let keys =
                    query.order.iter().map(|(e, _)| kql::eval(e, &mut |p| row.path(state, p, rendered))).collect();
                (keys, row)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            query
                .order
                .iter()
                .zip(a.iter().zip(b))
                .map(|((_, descending), (x, y))| if *descending { compare(y, x) } else { compare(x, y) })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
        kept = keyed.into_iter().map(|(_, row)| row).collect();
    }
    if let Some(limit) = query.limit {
        kept.truncate(limit);
    }
    kept
}

/// One row of the answer: every column, or the projected ones.
fn output(state: &State, query: &Query, row: Row<'_>, rendered: &mut u64) -> Value {
    match &query.columns {
        None => {
            *rendered += 1;
            row.render(state)
        }
        Some(columns) => {
            let mut full: Option<Value> = None;
            let mut out = Map::new();
            for (name, expr) in columns {
                let value = kql::eval(expr, &mut |p| match row.cheap(state, &p[0]).filter(|_| p.len() == 1) {
                    Some(v) => v,
                    None => walk(full.get_or_insert_with(|| row.render(state)), p),
                });
                out.insert(name.clone(), value);
            }
            *rendered += 1;
            Value::Object(out)
        }
    }
}

fn answer(ctx: &Ctx<'_>, state: &State, request: &Request) -> Reply {
    let mut rendered = 0u64;
    let rows = evaluate(state, &request.query, rows(ctx, state, request), &mut rendered);
    let total = rows.len();
    let page: Vec<Value> = rows
        .iter()
        .skip(request.offset)
        .take(request.top)
        .map(|row| output(state, &request.query, *row, &mut rendered))
        .collect();
    ctx.shared.rendered.fetch_add(rendered, std::sync::atomic::Ordering::Relaxed);
    let next = request.offset + page.len();
    let has_id = request.query.columns.as_ref().is_none_or(|c| c.iter().any(|(name, _)| name == "id"));
    let mut body = json!({
        "totalRecords": total,
        "count": page.len(),
        "data": page,
        "facets": [],
        "resultTruncated": if next < total && !has_id { "true" } else { "false" },
    });
    if next < total && has_id {
        body["$skipToken"] = json!(STANDARD.encode(json!({"$skip": next}).to_string()));
    }
    Reply::json(200, &body)
}

fn with_quota(reply: Reply, quota: &QueryQuota) -> Reply {
    let secs = quota.resets_after.as_secs() + u64::from(quota.resets_after.subsec_nanos() > 0);
    reply.with_header("x-ms-user-quota-remaining", quota.remaining.to_string()).with_header(
        "x-ms-user-quota-resets-after",
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
    )
}

pub(super) fn query(ctx: &Ctx<'_>) -> Reply {
    let quota = ctx.shared.throttle().take_query(&ctx.caller.object_id);
    if !quota.allowed {
        let secs = quota.resets_after.as_secs().max(1);
        let reply = Reply::json(
            429,
            &json!({"error": {
                "code": "RateLimiting",
                "message": "Client application has been throttled and should not attempt to repeat the request until an amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help.",
            }}),
        )
        .with_header("Retry-After", secs.to_string());
        return with_quota(reply, &quota);
    }
    let reply = match request(ctx) {
        Err(reply) => reply,
        Ok(request) => {
            let state = ctx.shared.state();
            answer(ctx, &state, &request)
        }
    };
    with_quota(reply, &quota)
}
