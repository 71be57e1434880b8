//! Microsoft.ContainerRegistry: registries (get, list, update, admin credentials), scope maps
//! and tokens (CRUD as long-running operations), token password generation, and the
//! operationStatuses URLs clients poll.

use serde_json::{Value, json};

use super::{Ctx, list_prefix, resource_group_not_found, resource_not_found, subscription_not_found, under};
use crate::http::{Reply, arm_error, now_azure, page};
use crate::route::{RegistryPart, Target};
use crate::state::{
    Child, Completion, Operation, PollStyle, Readable, RegistryRec, ScopeMapRec, State, TokenPassword, TokenRec,
    random_password, registry_id, world_mode,
};
use crate::world::{Lro, LroMode};

const NS: &str = "Microsoft.ContainerRegistry/registries";

fn action(suffix: &str) -> String {
    format!("{NS}/{suffix}")
}

/// `roleAssignmentMode` exists from api-version 2025-11-01 on; older versions do not show it.
fn shows_role_assignment_mode(version: &str) -> bool {
    version.get(..10).is_some_and(|date| date >= "2025-11-01")
}

pub(crate) fn registry_json(r: &RegistryRec, version: &str) -> Value {
    let mut properties = json!({
        "loginServer": r.login_server,
        "creationDate": r.creation_date,
        "provisioningState": "Succeeded",
        "adminUserEnabled": r.admin_user_enabled,
        "networkRuleSet": {"defaultAction": if r.deny_by_default { "Deny" } else { "Allow" }, "ipRules": []},
        "policies": {
            "quarantinePolicy": {"status": "disabled"},
            "trustPolicy": {"type": "Notary", "status": "disabled"},
            "retentionPolicy": {"days": 7, "lastUpdatedTime": r.creation_date, "status": "disabled"},
            "exportPolicy": {"status": "enabled"},
            "azureADAuthenticationAsArmPolicy": {"status": if r.aad_as_arm { "enabled" } else { "disabled" }},
        },
        "encryption": {"status": "disabled"},
        "status": Value::Null,
        "dataEndpointEnabled": false,
        "dataEndpointHostNames": [],
        "privateEndpointConnections": private_endpoint_connections(r),
        "publicNetworkAccess": if r.public_network { "Enabled" } else { "Disabled" },
        "networkRuleBypassOptions": "AzureServices",
        "networkRuleBypassAllowedForTasks": false,
        "zoneRedundancy": "Disabled",
        "anonymousPullEnabled": r.anonymous_pull,
    });
    if shows_role_assignment_mode(version) {
        properties["roleAssignmentMode"] = json!(r.role_assignment_mode.as_str());
    }
    json!({
        "id": r.id,
        "name": r.name,
        "type": NS,
        "location": r.location,
        "tags": r.tags,
        "sku": {"name": r.sku, "tier": r.sku},
        "properties": properties,
    })
}

/// `privateEndpointConnections` as ACR shows them (Registries_Get, 2025-11-01).
fn private_endpoint_connections(r: &RegistryRec) -> Value {
    let rg_id = format!("/subscriptions/{}/resourceGroups/{}", r.subscription, r.resource_group);
    r.private_endpoints
        .iter()
        .map(|(name, status)| {
            json!({
                "id": format!("{}/privateEndpointConnections/{name}-connection", r.id),
                "name": format!("{name}-connection"),
                "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
                "properties": {
                    "privateEndpoint": {"id": format!("{rg_id}/providers/Microsoft.Network/privateEndpoints/{name}")},
                    "privateLinkServiceConnectionState": {"status": status, "description": "", "actionsRequired": "None"},
                    "provisioningState": "Succeeded",
                },
            })
        })
        .collect()
}

fn credentials_json(r: &RegistryRec) -> Value {
    json!({
        "username": r.name,
        "passwords": [
            {"name": "password", "value": r.passwords[0]},
            {"name": "password2", "value": r.passwords[1]},
        ],
    })
}

fn scope_map_json(r: &RegistryRec, m: &ScopeMapRec) -> Value {
    let mut properties = json!({
        "creationDate": m.creation_date,
        "type": if m.system { "SystemDefined" } else { "UserDefined" },
        "actions": m.actions,
        "provisioningState": m.provisioning_state,
    });
    if let Some(description) = &m.description {
        properties["description"] = json!(description);
    }
    json!({
        "id": format!("{}/scopeMaps/{}", r.id, m.name),
        "name": m.name,
        "type": format!("{NS}/scopeMaps"),
        "properties": properties,
    })
}

fn token_json(r: &RegistryRec, t: &TokenRec) -> Value {
    let mut properties = json!({
        "creationDate": t.creation_date,
        "scopeMapId": t.scope_map_id,
        "provisioningState": t.provisioning_state,
        "status": t.status,
    });
    if !t.passwords.is_empty() {
        // Password values are never shown again after generateCredentials.
        let passwords: Vec<Value> = t
            .passwords
            .iter()
            .map(|p| {
                let mut entry = json!({"creationTime": p.creation_time, "name": p.name});
                if let Some(expiry) = &p.expiry {
                    entry["expiry"] = json!(expiry);
                }
                entry
            })
            .collect();
        properties["credentials"] = json!({"passwords": passwords, "certificates": []});
    }
    json!({
        "id": format!("{}/tokens/{}", r.id, t.name),
        "name": t.name,
        "type": format!("{NS}/tokens"),
        "properties": properties,
    })
}

pub(super) fn handle(ctx: &Ctx<'_>, target: &Target) -> Reply {
    let mut state = ctx.shared.state();
    let result = match target {
        Target::Registries { subscription, resource_group } => {
            list(ctx, &state, subscription, resource_group.as_deref())
        }
        Target::Registry { subscription, resource_group, name, part } => {
            registry(ctx, &mut state, subscription, resource_group, name, part)
        }
        _ => Err(arm_error(404, "NotFound", "Not found.")),
    };
    result.unwrap_or_else(|reply| reply)
}

fn list(ctx: &Ctx<'_>, state: &State, subscription: &str, resource_group: Option<&str>) -> Result<Reply, Reply> {
    let read = action("read");
    let (sub, grants) = ctx.list_scope(state, subscription, resource_group, &read)?;
    let prefix = list_prefix(&sub.id, resource_group);
    let readable = Readable::new(&grants, prefix.trim_end_matches('/'), &read);
    let items = under(&state.registries, &prefix).filter(|(key, _)| readable.allows(key));
    ctx.page(state, items, |(_, r)| registry_json(r, ctx.version))
}

fn admin_disabled(r: &RegistryRec) -> Reply {
    arm_error(
        400,
        "UnAuthorizedForCredentialOperations",
        format!(
            "Cannot perform credential operations for {} as admin user is disabled. Kindly enable admin user as per docs: https://docs.microsoft.com/azure/container-registry/container-registry-authentication#admin-account",
            r.id
        ),
    )
}

fn bad_request(message: impl Into<String>) -> Reply {
    arm_error(400, "BadRequest", message)
}

/// The RBAC action a registry call needs.
fn permission_for(part: &RegistryPart, method: &str) -> String {
    match (part, method) {
        (RegistryPart::Itself, "GET") => action("read"),
        (RegistryPart::Itself, _) => action("write"),
        (RegistryPart::ListCredentials, _) => action("listCredentials/action"),
        (RegistryPart::RegenerateCredential, _) => action("regenerateCredential/action"),
        (RegistryPart::GenerateCredentials, _) => action("generateCredentials/action"),
        (RegistryPart::ScopeMaps(_), "GET") => action("scopeMaps/read"),
        (RegistryPart::ScopeMaps(_), "DELETE") => action("scopeMaps/delete"),
        (RegistryPart::ScopeMaps(_), _) => action("scopeMaps/write"),
        (RegistryPart::Tokens(_), "GET") => action("tokens/read"),
        (RegistryPart::Tokens(_), "DELETE") => action("tokens/delete"),
        (RegistryPart::Tokens(_), _) => action("tokens/write"),
        (RegistryPart::Operation(_), _) => action("operationStatuses/read"),
    }
}

/// Registries_Update: the properties the emulator models.
fn patch_registry(registry: &mut RegistryRec, body: &Value) -> Result<(), Reply> {
    if let Some(enabled) = body["properties"]["adminUserEnabled"].as_bool() {
        registry.admin_user_enabled = enabled;
    }
    if let Some(mode) = body["properties"]["roleAssignmentMode"].as_str() {
        registry.role_assignment_mode = world_mode(mode)
            .ok_or_else(|| bad_request(format!("The value '{mode}' of roleAssignmentMode is invalid.")))?;
    }
    if let Some(anonymous) = body["properties"]["anonymousPullEnabled"].as_bool() {
        registry.anonymous_pull = anonymous;
    }
    if let Some(tags) = body["tags"].as_object() {
        registry.tags = tags.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
    }
    if let Some(sku) = body["sku"]["name"].as_str() {
        registry.sku = sku.to_string();
    }
    Ok(())
}

/// Registries_GenerateCredentials: new passwords for a token, shown once (202 + Location
/// in async mode, whose final answer carries them).
fn generate_credentials(
    ctx: &Ctx<'_>,
    state: &mut State,
    key: &str,
    name: &str,
    resource_group: &str,
    body: &Value,
) -> Result<Reply, Reply> {
    let lro = state.settings.lro.clone();
    let token_id = body["tokenId"].as_str().unwrap_or_default().to_string();
    let token_key =
        token_id.to_ascii_lowercase().strip_prefix(&format!("{key}/tokens/")).map(str::to_string).ok_or_else(|| {
            bad_request(format!("The tokenId '{token_id}' does not refer to a token of registry '{name}'."))
        })?;
    let expiry = body["expiry"].as_str().map(str::to_string);
    let which: Vec<&str> = match body["name"].as_str() {
        None => vec!["password1", "password2"],
        Some(n @ ("password1" | "password2")) => vec![n],
        Some(other) => {
            return Err(bad_request(format!(
                "The value '{other}' of parameter 'name' is invalid. Allowed values are 'password1' and 'password2'."
            )));
        }
    };
    let registry = state.registries.get_mut(key).ok_or_else(|| resource_not_found(NS, name, resource_group))?;
    let token = registry
        .tokens
        .get_mut(&token_key)
        .ok_or_else(|| resource_not_found(&format!("{NS}/tokens"), &token_key, resource_group))?;
    let now = now_azure();
    let mut shown = Vec::new();
    for password_name in which {
        let password = TokenPassword {
            name: password_name.into(),
            value: random_password(),
            creation_time: now.clone(),
            expiry: expiry.clone(),
        };
        let mut entry = json!({"creationTime": password.creation_time, "name": password.name, "value": password.value});
        if let Some(expiry) = &password.expiry {
            entry["expiry"] = json!(expiry);
        }
        shown.push(entry);
        token.passwords.retain(|p| p.name != password.name);
        token.passwords.push(password);
    }
    token.passwords.sort_by(|a, b| a.name.cmp(&b.name));
    let result = json!({"username": token.name, "passwords": shown});
    match lro.mode {
        LroMode::Sync => Ok(Reply::json(200, &result)),
        LroMode::Async => {
            let resource_url = format!("{}{}", ctx.req.base_url, state.registries[key].id);
            let url = start_operation(
                ctx,
                state,
                &resource_url,
                "registries",
                PollStyle::Location,
                Completion::Final { status: 200, body: Some(result) },
            );
            Ok(accepted(url, lro.retry_after_seconds))
        }
    }
}

fn registry(
    ctx: &Ctx<'_>,
    state: &mut State,
    subscription: &str,
    resource_group: &str,
    name: &str,
    part: &RegistryPart,
) -> Result<Reply, Reply> {
    let sub = state.subscription(subscription).ok_or_else(|| subscription_not_found(subscription))?.id.clone();
    let id = registry_id(&sub, resource_group, name);
    let method = ctx.req.method.as_str();
    let permission = permission_for(part, method);
    ctx.authorize(state, &id, &permission)?;
    if state.resource_group(&sub, resource_group).is_none() {
        return Err(resource_group_not_found(resource_group));
    }
    let key = id.to_ascii_lowercase();
    if !state.registries.contains_key(&key) {
        return Err(resource_not_found(NS, name, resource_group));
    }
    let body = ctx
        .req
        .json_body()
        .map_err(|e| bad_request(format!("The request content was invalid and could not be deserialized: '{e}'.")))?;
    let page_size = state.settings.page_size;

    match part {
        RegistryPart::Itself => {
            let registry =
                state.registries.get_mut(&key).ok_or_else(|| resource_not_found(NS, name, resource_group))?;
            if method == "PATCH" {
                patch_registry(registry, &body)?;
            }
            Ok(Reply::json(200, &registry_json(registry, ctx.version)))
        }
        RegistryPart::ListCredentials => {
            let registry = &state.registries[&key];
            if !registry.admin_user_enabled {
                return Err(admin_disabled(registry));
            }
            Ok(Reply::json(200, &credentials_json(registry)))
        }
        RegistryPart::RegenerateCredential => {
            let registry =
                state.registries.get_mut(&key).ok_or_else(|| resource_not_found(NS, name, resource_group))?;
            if !registry.admin_user_enabled {
                return Err(admin_disabled(registry));
            }
            match body["name"].as_str() {
                Some("password") => registry.passwords[0] = random_password(),
                Some("password2") => registry.passwords[1] = random_password(),
                other => {
                    return Err(bad_request(format!(
                        "The value '{}' of parameter 'name' is invalid. Allowed values are 'password' and 'password2'.",
                        other.unwrap_or_default()
                    )));
                }
            }
            Ok(Reply::json(200, &credentials_json(registry)))
        }
        RegistryPart::GenerateCredentials => generate_credentials(ctx, state, &key, name, resource_group, &body),
        RegistryPart::ScopeMaps(None) => {
            let registry = &state.registries[&key];
            let items = registry.scope_maps.values().map(|m| scope_map_json(registry, m)).collect();
            page(ctx.req, items, page_size).map(|body| Reply::json(200, &body))
        }
        RegistryPart::Tokens(None) => {
            let registry = &state.registries[&key];
            let items = registry.tokens.values().map(|t| token_json(registry, t)).collect();
            page(ctx.req, items, page_size).map(|body| Reply::json(200, &body))
        }
        RegistryPart::ScopeMaps(Some(map_name)) => scope_map(ctx, state, &key, map_name, resource_group, &body),
        RegistryPart::Tokens(Some(token_name)) => token(ctx, state, &key, token_name, resource_group, &body),
        RegistryPart::Operation(operation) => poll(ctx, state, operation),
    }
}

/// 202 Accepted for a long-running operation polled at `Location`.
fn accepted(location: String, retry_after_seconds: impl ToString) -> Reply {
    Reply::empty(202).with_header("Location", location).with_header("Retry-After", retry_after_seconds.to_string())
}

/// Registers a pending operation and returns the absolute URL to poll it at.
fn start_operation(
    ctx: &Ctx<'_>,
    state: &mut State,
    resource_url: &str,
    prefix: &str,
    style: PollStyle,
    completion: Completion,
) -> String {
    let id = format!("{prefix}-{}", uuid::Uuid::new_v4());
    let polls = state.settings.lro.polls;
    state.operations.insert(id.clone(), Operation { style, polls_left: polls, started: now_azure(), completion });
    format!("{resource_url}/operationStatuses/{id}?api-version={}", ctx.version)
}

fn scope_map(
    ctx: &Ctx<'_>,
    state: &mut State,
    key: &str,
    map_name: &str,
    rg: &str,
    body: &Value,
) -> Result<Reply, Reply> {
    let lro = state.settings.lro.clone();
    let map_key = map_name.to_ascii_lowercase();
    let method = ctx.req.method.as_str();
    let registry = state.registries.get_mut(key).ok_or_else(|| resource_not_found(NS, map_name, rg))?;
    let existing_system = registry.scope_maps.get(&map_key).is_some_and(|m| m.system);
    match method {
        "GET" => registry
            .scope_maps
            .get(&map_key)
            .map(|m| Reply::json(200, &scope_map_json(registry, m)))
            .ok_or_else(|| resource_not_found(&format!("{NS}/scopeMaps"), map_name, rg)),
        "PUT" | "PATCH" => {
            if existing_system {
                return Err(bad_request(format!(
                    "The scope map '{map_name}' is system defined and cannot be modified."
                )));
            }
            let valid_name = (5..=50).contains(&map_name.len())
                && map_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_name || map_name.starts_with('_') {
                return Err(bad_request(format!(
                    "The scope map name '{map_name}' is invalid. It must be 5 to 50 characters of letters, digits, '-' and '_', and not start with '_'."
                )));
            }
            let actions: Option<Vec<String>> = body["properties"]["actions"]
                .as_array()
                .map(|list| list.iter().filter_map(|a| a.as_str().map(str::to_string)).collect());
            let description = body["properties"]["description"].as_str().map(str::to_string);
            if let Some(map) = registry.scope_maps.get_mut(&map_key) {
                if let Some(actions) = actions {
                    if actions.is_empty() {
                        return Err(bad_request("The scope map must have at least one action."));
                    }
                    map.actions = actions;
                }
                if description.is_some() {
                    map.description = description;
                }
                let map = &registry.scope_maps[&map_key];
                return Ok(Reply::json(200, &scope_map_json(registry, map)));
            }
            if method == "PATCH" {
                return Err(resource_not_found(&format!("{NS}/scopeMaps"), map_name, rg));
            }
            let actions = actions
                .filter(|a| !a.is_empty())
                .ok_or_else(|| bad_request("The 'properties.actions' field is required and must not be empty."))?;
            let asynchronous = lro.mode == LroMode::Async && lro.polls > 0;
            registry.scope_maps.insert(
                map_key.clone(),
                ScopeMapRec {
                    name: map_name.to_string(),
                    description,
                    actions,
                    system: false,
                    creation_date: now_azure(),
                    provisioning_state: if asynchronous { "Creating".into() } else { "Succeeded".into() },
                },
            );
            let json = scope_map_json(registry, &registry.scope_maps[&map_key]);
            let resource_url = format!("{}{}/scopeMaps/{map_name}", ctx.req.base_url, registry.id);
            if lro.mode == LroMode::Sync {
                return Ok(Reply::json(200, &json));
            }
            let url = start_operation(
                ctx,
                state,
                &resource_url,
                "scopemaps",
                PollStyle::AsyncOperation,
                Completion::Provisioned { registry: key.to_string(), child: Child::ScopeMap(map_key) },
            );
            Ok(Reply::json(201, &json)
                .with_header("Azure-AsyncOperation", url)
                .with_header("Retry-After", lro.retry_after_seconds.to_string()))
        }
        "DELETE" if existing_system => {
            Err(bad_request(format!("The scope map '{map_name}' is system defined and cannot be deleted.")))
        }
        "DELETE" => delete_scope_map(ctx, state, key, &map_key, &lro),
        _ => Err(arm_error(405, "HttpMethodNotAllowed", "The HTTP method is not supported.")),
    }
}

/// A token PUT's `status`, if given: `enabled` or `disabled`.
fn token_status(properties: &Value) -> Result<Option<String>, Reply> {
    let status = properties["status"].as_str().map(str::to_string);
    if let Some(s) = &status
        && s != "enabled"
        && s != "disabled"
    {
        return Err(bad_request(format!(
            "The token status '{s}' is invalid. Allowed values are 'enabled' and 'disabled'."
        )));
    }
    Ok(status)
}

/// The passwords a token PUT asks for, each with a fresh value.
fn requested_passwords(properties: &Value) -> Vec<TokenPassword> {
    properties["credentials"]["passwords"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| {
                    p["name"].as_str().map(|n| TokenPassword {
                        name: n.to_string(),
                        value: random_password(),
                        creation_time: now_azure(),
                        expiry: p["expiry"].as_str().map(str::to_string),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn token(
    ctx: &Ctx<'_>,
    state: &mut State,
    key: &str,
    token_name: &str,
    rg: &str,
    body: &Value,
) -> Result<Reply, Reply> {
    let lro = state.settings.lro.clone();
    let token_key = token_name.to_ascii_lowercase();
    let method = ctx.req.method.as_str();
    let registry = state.registries.get_mut(key).ok_or_else(|| resource_not_found(NS, token_name, rg))?;
    match method {
        "GET" => registry
            .tokens
            .get(&token_key)
            .map(|t| Reply::json(200, &token_json(registry, t)))
            .ok_or_else(|| resource_not_found(&format!("{NS}/tokens"), token_name, rg)),
        "PUT" | "PATCH" => {
            let valid_name = (5..=50).contains(&token_name.len())
                && token_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid_name {
                return Err(bad_request(format!(
                    "The token name '{token_name}' is invalid. It must be 5 to 50 characters of letters, digits and '-'."
                )));
            }
            let properties = &body["properties"];
            let scope_map_id = properties["scopeMapId"].as_str().map(str::to_string);
            if let Some(map_id) = &scope_map_id {
                let map_key = map_id
                    .to_ascii_lowercase()
                    .strip_prefix(&format!("{key}/scopemaps/"))
                    .map(str::to_string)
                    .filter(|m| registry.scope_maps.contains_key(m));
                if map_key.is_none() {
                    return Err(bad_request(format!(
                        "The scope map '{map_id}' does not exist in registry '{}'.",
                        registry.name
                    )));
                }
            }
            let status = token_status(properties)?;
            let requested_passwords = requested_passwords(properties);
            if let Some(token) = registry.tokens.get_mut(&token_key) {
                if let Some(id) = scope_map_id {
                    token.scope_map_id = id;
                }
                if let Some(status) = status {
                    token.status = status;
                }
                if !requested_passwords.is_empty() {
                    token.passwords = requested_passwords;
                }
                let token = &registry.tokens[&token_key];
                return Ok(Reply::json(200, &token_json(registry, token)));
            }
            if method == "PATCH" {
                return Err(resource_not_found(&format!("{NS}/tokens"), token_name, rg));
            }
            let scope_map_id =
                scope_map_id.ok_or_else(|| bad_request("The 'properties.scopeMapId' field is required."))?;
            let asynchronous = lro.mode == LroMode::Async && lro.polls > 0;
            registry.tokens.insert(
                token_key.clone(),
                TokenRec {
                    name: token_name.to_string(),
                    scope_map_id,
                    status: status.unwrap_or_else(|| "enabled".into()),
                    creation_date: now_azure(),
                    provisioning_state: if asynchronous { "Creating".into() } else { "Succeeded".into() },
                    passwords: requested_passwords,
                },
            );
            let json = token_json(registry, &registry.tokens[&token_key]);
            let resource_url = format!("{}{}/tokens/{token_name}", ctx.req.base_url, registry.id);
            if lro.mode == LroMode::Sync {
                return Ok(Reply::json(200, &json));
            }
            let url = start_operation(
                ctx,
                state,
                &resource_url,
                "tokens",
                PollStyle::AsyncOperation,
                Completion::Provisioned { registry: key.to_string(), child: Child::Token(token_key) },
            );
            Ok(Reply::json(201, &json)
                .with_header("Azure-AsyncOperation", url)
                .with_header("Retry-After", lro.retry_after_seconds.to_string()))
        }
        "DELETE" => delete_token(ctx, state, key, &token_key, &lro),
        _ => Err(arm_error(405, "HttpMethodNotAllowed", "The HTTP method is not supported.")),
    }
}

/// ScopeMaps_Delete: 204 when absent; 200 at once (sync) or 202 + Location.
fn delete_scope_map(ctx: &Ctx<'_>, state: &mut State, key: &str, map_key: &str, lro: &Lro) -> Result<Reply, Reply> {
    let registry = state.registries.get_mut(key).ok_or_else(|| resource_not_found(NS, map_key, ""))?;
    let Some(map) = registry.scope_maps.get_mut(map_key) else { return Ok(Reply::empty(204)) };
    if lro.mode == LroMode::Sync {
        registry.scope_maps.remove(map_key);
        return Ok(Reply::empty(200));
    }
    map.provisioning_state = "Deleting".into();
    let resource_url = format!("{}{}/scopeMaps/{}", ctx.req.base_url, registry.id, map.name);
    let url = start_operation(
        ctx,
        state,
        &resource_url,
        "scopemaps",
        PollStyle::Location,
        Completion::Delete { registry: key.to_string(), child: Child::ScopeMap(map_key.to_string()) },
    );
    Ok(accepted(url, lro.retry_after_seconds))
}

/// Tokens_Delete: 204 when absent; 200 at once (sync) or 202 + Location.
fn delete_token(ctx: &Ctx<'_>, state: &mut State, key: &str, token_key: &str, lro: &Lro) -> Result<Reply, Reply> {
    let registry = state.registries.get_mut(key).ok_or_else(|| resource_not_found(NS, token_key, ""))?;
    let Some(token) = registry.tokens.get_mut(token_key) else { return Ok(Reply::empty(204)) };
    if lro.mode == LroMode::Sync {
        registry.tokens.remove(token_key);
        return Ok(Reply::empty(200));
    }
    token.provisioning_state = "Deleting".into();
    let resource_url = format!("{}{}/tokens/{}", ctx.req.base_url, registry.id, token.name);
    let url = start_operation(
        ctx,
        state,
        &resource_url,
        "tokens",
        PollStyle::Location,
        Completion::Delete { registry: key.to_string(), child: Child::Token(token_key.to_string()) },
    );
    Ok(accepted(url, lro.retry_after_seconds))
}

fn finish(state: &mut State, completion: &Completion) {
    match completion {
        Completion::Provisioned { registry, child } => {
            if let Some(r) = state.registries.get_mut(registry) {
                match child {
                    Child::ScopeMap(m) => {
                        if let Some(map) = r.scope_maps.get_mut(m) {
                            map.provisioning_state = "Succeeded".into();
                        }
                    }
                    Child::Token(t) => {
                        if let Some(token) = r.tokens.get_mut(t) {
                            token.provisioning_state = "Succeeded".into();
                        }
                    }
                }
            }
        }
        Completion::Delete { registry, child } => {
            if let Some(r) = state.registries.get_mut(registry) {
                match child {
                    Child::ScopeMap(m) => {
                        r.scope_maps.remove(m);
                    }
                    Child::Token(t) => {
                        r.tokens.remove(t);
                    }
                }
            }
        }
        Completion::Final { .. } | Completion::ClusterUpdated { .. } => {}
    }
}

fn poll(ctx: &Ctx<'_>, state: &mut State, operation: &str) -> Result<Reply, Reply> {
    let retry_after = state.settings.lro.retry_after_seconds.to_string();
    let op_key = operation.to_ascii_lowercase();
    let Some(op) = state.operations.get_mut(&op_key) else {
        return Err(arm_error(404, "OperationNotFound", format!("The operation '{operation}' was not found.")));
    };
    let in_progress = op.polls_left > 0;
    if in_progress {
        op.polls_left -= 1;
    }
    let started = op.started.clone();
    let style = op.style;
    if in_progress {
        return Ok(match style {
            PollStyle::AsyncOperation => Reply::json(
                200,
                &json!({"id": ctx.req.path, "name": operation, "status": "InProgress", "startTime": started}),
            )
            .with_header("Retry-After", retry_after),
            PollStyle::Location => Reply::empty(202)
                .with_header("Location", format!("{}{}?api-version={}", ctx.req.base_url, ctx.req.path, ctx.version))
                .with_header("Retry-After", retry_after),
        });
    }
    // Done: apply the effect once, keep answering with the final state.
    let completion = std::mem::replace(&mut op.completion, Completion::Final { status: 0, body: None });
    let reply = match (&style, &completion) {
        (PollStyle::Location, Completion::Final { status, body }) if *status != 0 => {
            let reply = match body {
                Some(body) => Reply::json(*status, body),
                None => Reply::empty(*status),
            };
            op.completion = Completion::Final { status: *status, body: body.clone() };
            reply
        }
        (PollStyle::Location, Completion::Final { .. }) => Reply::empty(204),
        (PollStyle::Location, _) => {
            op.completion = Completion::Final { status: 200, body: None };
            Reply::empty(200)
        }
        (PollStyle::AsyncOperation, _) => Reply::json(
            200,
            &json!({"id": ctx.req.path, "name": operation, "status": "Succeeded", "startTime": started, "endTime": now_azure()}),
        ),
    };
    finish(state, &completion);
    Ok(reply)
}
