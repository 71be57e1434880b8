//! Microsoft.Authorization at any scope: role assignments (list with every documented
//! `$filter` and its at/above/below semantics, get, create with all of ARM's outcomes,
//! delete) and role definitions (get, list by `roleName` or `type`).

use std::time::{Duration, Instant};

use super::{Ctx, resource_group_not_found, resource_not_found, subscription_not_found};
use crate::http::{Reply, arm_error, now_azure, page};
use crate::ids::{
    is_guid, is_valid_scope, normalize_scope, resource_group_of, scope_key, subscription_of, trailing_guid,
};
use crate::state::State;

#[derive(Debug, PartialEq)]
enum Filter {
    Everything,
    AtScope,
    PrincipalId(String),
    AssignedTo(String),
    AtScopeAssignedTo(String),
}

fn unquote(text: &str) -> String {
    text.trim().trim_matches('\'').trim_matches('"').to_ascii_lowercase()
}

fn assigned_to(term: &str) -> Option<String> {
    let lower = term.to_ascii_lowercase();
    let inner = lower.strip_prefix("assignedto(")?.strip_suffix(')')?;
    (!inner.contains(')')).then(|| unquote(inner))
}

fn parse_filter(text: Option<&str>) -> Option<Filter> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Some(Filter::Everything) };
    let lower = text.to_ascii_lowercase();
    if lower.replace(' ', "") == "atscope()" {
        return Some(Filter::AtScope);
    }
    if let Some(rest) = lower.strip_prefix("principalid eq ") {
        return Some(Filter::PrincipalId(unquote(rest)));
    }
    if let Some(id) = assigned_to(&lower) {
        return Some(Filter::AssignedTo(id));
    }
    let terms: Vec<&str> = lower.split(" and ").map(str::trim).collect();
    if let [a, b] = terms.as_slice() {
        let (scope_term, other) = if a.replace(' ', "") == "atscope()" { (a, b) } else { (b, a) };
        if scope_term.replace(' ', "") == "atscope()"
            && let Some(id) = assigned_to(other)
        {
            return Some(Filter::AtScopeAssignedTo(id));
        }
    }
    None
}

/// 404s for a scope whose subscription, resource group or (known) resource does not exist.
fn check_scope(state: &State, scope: &str) -> Result<(), Reply> {
    if let Some(sub) = subscription_of(scope) {
        if state.subscription(&sub).is_none() {
            return Err(subscription_not_found(&sub));
        }
        if let Some(rg) = resource_group_of(scope)
            && state.resource_group(&sub, &rg).is_none()
        {
            return Err(resource_group_not_found(&rg));
        }
    }
    let key = scope_key(scope);
    let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() == 8 {
        let rg = resource_group_of(scope).unwrap_or_default();
        let kind = format!("{}/{}", segments[5], segments[6]);
        let name = scope.rsplit('/').next().unwrap_or_default();
        let missing = match kind.as_str() {
            "microsoft.containerregistry/registries" => !state.registries.contains_key(&key),
            "microsoft.containerservice/managedclusters" => !state.clusters.contains_key(&key),
            _ => false,
        };
        if missing {
            let display = match kind.as_str() {
                "microsoft.containerregistry/registries" => "Microsoft.ContainerRegistry/registries",
                _ => "Microsoft.ContainerService/managedClusters",
            };
            return Err(resource_not_found(display, name, &rg));
        }
    }
    Ok(())
}

fn hex32(guid: &str) -> String {
    guid.replace('-', "")
}

pub(super) fn assignments(ctx: &Ctx<'_>, scope: &str, name: Option<&str>) -> Reply {
    let scope = normalize_scope(scope);
    if !is_valid_scope(&scope) {
        return arm_error(400, "InvalidScope", format!("The scope '{scope}' is not valid for role assignments."));
    }
    let mut state = ctx.shared.state();
    dispatch(ctx, &mut state, &scope, name).unwrap_or_else(|reply| reply)
}

fn dispatch(ctx: &Ctx<'_>, state: &mut State, scope: &str, name: Option<&str>) -> Result<Reply, Reply> {
    check_scope(state, scope)?;
    match (ctx.req.method.as_str(), name) {
        ("GET", None) => list(ctx, state, scope),
        ("GET", Some(name)) => get(ctx, state, scope, name),
        ("PUT", Some(name)) => put(ctx, state, scope, name),
        ("DELETE", Some(name)) => delete(ctx, state, scope, name),
        _ => Err(arm_error(405, "HttpMethodNotAllowed", "The HTTP method is not supported.")),
    }
}

fn list(ctx: &Ctx<'_>, state: &State, scope: &str) -> Result<Reply, Reply> {
    ctx.authorize(state, scope, "Microsoft.Authorization/roleAssignments/read")?;
    let filter = parse_filter(ctx.req.query("$filter")).ok_or_else(|| {
        arm_error(
            400,
            "InvalidFilterParameter",
            format!(
                "The filter '{}' is not supported. Supported filters are atScope(), principalId eq '{{id}}', assignedTo('{{id}}') and atScope() and assignedTo('{{id}}').",
                ctx.req.query("$filter").unwrap_or_default()
            ),
        )
    })?;
    let candidates = match &filter {
        Filter::AtScope | Filter::AtScopeAssignedTo(_) => state.assignments.at_or_above(scope),
        Filter::Everything | Filter::PrincipalId(_) | Filter::AssignedTo(_) => state.assignments.related(scope),
    };
    let principals = match &filter {
        Filter::Everything | Filter::AtScope => None,
        Filter::PrincipalId(p) => Some(vec![p.clone()]),
        Filter::AssignedTo(p) | Filter::AtScopeAssignedTo(p) => Some(state.identities_of(p)),
    };
    let items = candidates.into_iter().filter(|a| principals.as_ref().is_none_or(|ids| ids.contains(&a.principal_id)));
    ctx.page(state, items, |a| state.assignment_json(a))
}

fn invalid_name(name: &str) -> Reply {
    arm_error(
        400,
        "InvalidRoleAssignmentId",
        format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
    )
}

fn not_found(name: &str) -> Reply {
    arm_error(404, "RoleAssignmentNotFound", format!("The role assignment '{name}' is not found."))
}

fn get(ctx: &Ctx<'_>, state: &State, scope: &str, name: &str) -> Result<Reply, Reply> {
    if !is_guid(name) {
        return Err(invalid_name(name));
    }
    ctx.authorize(state, scope, "Microsoft.Authorization/roleAssignments/read")?;
    let found = state.assignments.get(&name.to_ascii_lowercase()).filter(|a| scope_key(&a.scope) == scope_key(scope));
    found.map(|a| Reply::json(200, &state.assignment_json(a))).ok_or_else(|| not_found(name))
}

/// What a role-assignment PUT asks for, checked against the role definitions.
struct Requested {
    role_guid: String,
    principal_id: String,
    principal_type: Option<String>,
    description: Option<String>,
    condition: Option<String>,
    condition_version: Option<String>,
}

fn requested(ctx: &Ctx<'_>, state: &State) -> Result<Requested, Reply> {
    let body = ctx.req.json_body().map_err(|e| {
        arm_error(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })?;
    let properties = &body["properties"];
    let required = |field: &str| {
        properties[field].as_str().map(str::to_string).ok_or_else(|| {
            arm_error(
                400,
                "InvalidRequestContent",
                format!("The request content is missing the required property 'properties.{field}'."),
            )
        })
    };
    let role_definition_id = required("roleDefinitionId")?;
    let principal_id = required("principalId")?;
    let role_guid =
        trailing_guid(&role_definition_id).filter(|g| state.roles.iter().any(|r| r.guid == *g)).ok_or_else(|| {
            arm_error(
                400,
                "RoleDefinitionDoesNotExist",
                format!(
                    "The specified role definition with ID '{}' does not exist.",
                    role_definition_id.rsplit('/').next().unwrap_or_default()
                ),
            )
        })?;
    if !is_guid(&principal_id) {
        return Err(arm_error(400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment."));
    }
    let text = |field: &str| properties[field].as_str().map(str::to_string);
    let condition_version = text("conditionVersion");
    if condition_version.as_deref().is_some_and(|v| v != "2.0") {
        return Err(arm_error(
            400,
            "InvalidConditionVersion",
            "Currently the only accepted value for conditionVersion is '2.0'.",
        ));
    }
    Ok(Requested {
        role_guid,
        principal_id: principal_id.to_ascii_lowercase(),
        principal_type: text("principalType"),
        description: text("description"),
        condition: text("condition"),
        condition_version,
    })
}

fn update_not_permitted() -> Reply {
    arm_error(
        400,
        "RoleAssignmentUpdateNotPermitted",
        "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
    )
}

fn put(ctx: &Ctx<'_>, state: &mut State, scope: &str, name: &str) -> Result<Reply, Reply> {
    if !is_guid(name) {
        return Err(invalid_name(name));
    }
    let name = name.to_ascii_lowercase();
    let wanted = requested(ctx, state)?;
    ctx.authorize(state, scope, "Microsoft.Authorization/roleAssignments/write")?;
    if state.assignments.contains_key(&name) {
        return update(ctx, state, scope, &name, wanted);
    }
    let key = scope_key(scope);
    let now = Instant::now();
    let block = Duration::from_secs(state.settings.deleted_name_reuse_block_seconds);
    if let Some((when, old_scope, old_principal, old_role)) = state.deleted.get(&name)
        && now.duration_since(*when) < block
        && (*old_scope != key || *old_principal != wanted.principal_id || *old_role != wanted.role_guid)
    {
        return Err(update_not_permitted());
    }
    let directory_kind = principal_kind(state, &wanted, now)?;
    check_room(state, scope, &wanted)?;
    let created = state.insert_assignment(
        Some(&name),
        scope,
        &wanted.role_guid,
        &wanted.principal_id,
        wanted.principal_type.as_deref().or(directory_kind.as_deref()),
        wanted.description,
        wanted.condition,
        wanted.condition_version,
        Some(ctx.caller.object_id.clone()),
    );
    state.deleted.remove(&name);
    Ok(Reply::json(201, &state.assignment_json(&created)))
}

/// A PUT on an existing name: 200, changing only description and condition.
fn update(ctx: &Ctx<'_>, state: &mut State, scope: &str, name: &str, wanted: Requested) -> Result<Reply, Reply> {
    let key = scope_key(scope);
    let Some(existing) = state.assignments.get_mut(name) else { return Err(not_found(name)) };
    if scope_key(&existing.scope) != key
        || existing.principal_id != wanted.principal_id
        || existing.role_guid != wanted.role_guid
    {
        return Err(update_not_permitted());
    }
    let condition_version = wanted.condition_version.or_else(|| wanted.condition.as_ref().map(|_| "2.0".to_string()));
    if existing.description != wanted.description
        || existing.condition != wanted.condition
        || existing.condition_version != condition_version
    {
        existing.description = wanted.description;
        existing.condition = wanted.condition;
        existing.condition_version = condition_version;
        existing.updated_on = now_azure();
        existing.updated_by = Some(ctx.caller.object_id.clone());
    }
    let existing = existing.clone();
    Ok(Reply::json(200, &state.assignment_json(&existing)))
}

/// The principal's kind as the directory shows it now; without a `principalType` the
/// principal must be visible, and a given type must match.
fn principal_kind(state: &State, wanted: &Requested, now: Instant) -> Result<Option<String>, Reply> {
    let directory_entry = state.visible(&wanted.principal_id, now).map(|d| d.kind.clone());
    match (&wanted.principal_type, &directory_entry) {
        (None, None) => Err(arm_error(
            400,
            "PrincipalNotFound",
            format!(
                "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                hex32(&wanted.principal_id),
                state.tenant_id
            ),
        )),
        (Some(given), Some(actual)) if !given.eq_ignore_ascii_case(actual) => Err(arm_error(
            400,
            "UnmatchedPrincipalType",
            format!(
                "The PrincipalId '{}' has type '{actual}' , which is different from specified PrincipalType '{given}'.",
                hex32(&wanted.principal_id)
            ),
        )),
        _ => Ok(directory_entry),
    }
}

/// 409 when the same grant exists under another name; 400 when the subscription is full.
fn check_room(state: &State, scope: &str, wanted: &Requested) -> Result<(), Reply> {
    if let Some(conflict) =
        state.assignments.at(scope).find(|a| a.principal_id == wanted.principal_id && a.role_guid == wanted.role_guid)
    {
        return Err(arm_error(
            409,
            "RoleAssignmentExists",
            format!(
                "The role assignment already exists. The ID of the existing role assignment is {}.",
                hex32(&conflict.name)
            ),
        ));
    }
    if let Some(sub) = subscription_of(scope) {
        let limit = state.settings.role_assignment_limit;
        if state.assignments_in_subscription(&sub) >= limit {
            return Err(arm_error(
                400,
                "RoleAssignmentLimitExceeded",
                format!(
                    "No more role assignments can be created for subscription '{sub}': the limit of {limit} has been reached."
                ),
            ));
        }
    }
    Ok(())
}

fn delete(ctx: &Ctx<'_>, state: &mut State, scope: &str, name: &str) -> Result<Reply, Reply> {
    if !is_guid(name) {
        return Err(invalid_name(name));
    }
    ctx.authorize(state, scope, "Microsoft.Authorization/roleAssignments/delete")?;
    let key = name.to_ascii_lowercase();
    let here = state.assignments.get(&key).is_some_and(|a| scope_key(&a.scope) == scope_key(scope));
    if !here {
        return Ok(Reply::empty(204));
    }
    let Some(removed) = state.assignments.remove(&key) else { return Ok(Reply::empty(204)) };
    state.deleted.insert(
        key,
        (Instant::now(), scope_key(&removed.scope), removed.principal_id.clone(), removed.role_guid.clone()),
    );
    Ok(Reply::json(200, &state.assignment_json(&removed)))
}

pub(super) fn definitions(ctx: &Ctx<'_>, scope: &str, id: Option<&str>) -> Reply {
    let scope = normalize_scope(scope);
    let state = ctx.shared.state();
    if let Some(sub) = subscription_of(&scope)
        && state.subscription(&sub).is_none()
    {
        return subscription_not_found(&sub);
    }
    if let Some(id) = id {
        let role = trailing_guid(id).and_then(|guid| state.roles.iter().find(|r| r.guid == guid));
        return match role {
            Some(role) => Reply::json(200, &state.role_definition_json(role, &scope)),
            None => arm_error(
                404,
                "RoleDefinitionDoesNotExist",
                format!("The specified role definition with ID '{id}' does not exist."),
            ),
        };
    }
    let filter = ctx.req.query("$filter").map(str::trim).unwrap_or_default().to_string();
    let lower = filter.to_ascii_lowercase();
    let predicate: Box<dyn Fn(&crate::roles::RoleDef) -> bool> = if filter.is_empty()
        || lower.replace(' ', "") == "atscopeandbelow()"
    {
        Box::new(|_| true)
    } else if let Some(rest) = lower.strip_prefix("rolename eq ") {
        let wanted = unquote(rest);
        Box::new(move |r| r.name.to_ascii_lowercase() == wanted)
    } else if let Some(rest) = lower.strip_prefix("type eq ") {
        let built_in = match unquote(rest).as_str() {
            "builtinrole" => true,
            "customrole" => false,
            _ => return arm_error(400, "InvalidFilterParameter", format!("The filter '{filter}' is not supported.")),
        };
        Box::new(move |r| r.built_in == built_in)
    } else {
        return arm_error(400, "InvalidFilterParameter", format!("The filter '{filter}' is not supported."));
    };
    let items = state.roles.iter().filter(|r| predicate(r)).map(|r| state.role_definition_json(r, &scope)).collect();
    page(ctx.req, items, ctx.page_size(&state)).map(|body| Reply::json(200, &body)).unwrap_or_else(|reply| reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(parse_filter(None), Some(Filter::Everything));
        assert_eq!(parse_filter(Some("atScope()")), Some(Filter::AtScope));
        assert_eq!(parse_filter(Some("principalId eq 'ABC'")), Some(Filter::PrincipalId("abc".into())));
        assert_eq!(parse_filter(Some("assignedTo('x')")), Some(Filter::AssignedTo("x".into())));
        assert_eq!(parse_filter(Some("atScope() and assignedTo('x')")), Some(Filter::AtScopeAssignedTo("x".into())));
        assert_eq!(parse_filter(Some("assignedTo('x') and atScope()")), Some(Filter::AtScopeAssignedTo("x".into())));
        assert_eq!(parse_filter(Some("roleDefinitionId eq 'x'")), None);
        assert_eq!(parse_filter(Some("atScope() and principalId eq 'x'")), None);
    }
}
