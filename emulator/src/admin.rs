//! The admin endpoint under the reserved path `/_emulator/`: the ledger, faults, settings and
//! live-state changes, as plain JSON with no authentication (loopback only). Never counted in
//! the ledger and never subject to faults.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::handle::StateHandle;
use crate::http::{Reply, Req};
use crate::server::Shared;
use crate::state::views::{NewPrincipal, NewRoleAssignment, RegistryPatch};
use crate::world::{FaultRule, Faults, Settings};

fn error(status: u16, message: impl Into<String>) -> Reply {
    Reply::json(status, &json!({"error": message.into()}))
}

fn body<T: DeserializeOwned>(req: &Req) -> Result<T, Reply> {
    serde_json::from_slice(&req.body).map_err(|e| error(400, format!("invalid request body: {e}")))
}

fn to_json<T: serde::Serialize>(status: u16, value: &T) -> Reply {
    Reply::json(status, &serde_json::to_value(value).unwrap_or(Value::Null))
}

pub(crate) fn handle(shared: &Arc<Shared>, req: &Req) -> Reply {
    respond(shared, req).unwrap_or_else(|reply| reply)
}

fn respond(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Reply> {
    let handle = StateHandle { shared: shared.clone() };
    let path: Vec<&str> = req.segments.iter().skip(1).map(String::as_str).collect();
    match (req.method.as_str(), path.as_slice()) {
        ("GET", [] | ["health"]) => Ok(health()),
        (_, ["ledger" | "faults" | "settings", ..]) => controls(shared, &handle, req, &path),
        (_, ["clusters", ..]) => clusters(&handle, req, &path),
        _ => directory(&handle, req, &path),
    }
}

fn health() -> Reply {
    Reply::json(
        200,
        &json!({
            "status": "ok",
            "endpoints": [
                "GET /_emulator/ledger", "DELETE /_emulator/ledger",
                "GET|PUT|DELETE /_emulator/faults", "POST /_emulator/faults/rules",
                "GET|PUT /_emulator/settings",
                "GET|POST /_emulator/role-assignments", "DELETE /_emulator/role-assignments/{name}",
                "GET|POST /_emulator/principals",
                "GET /_emulator/registries", "PATCH /_emulator/registries/{name}",
                "POST /_emulator/registries/{name}/regenerate-credential",
                "GET /_emulator/clusters", "PATCH /_emulator/clusters/{name}", "GET /_emulator/clusters/{name}/objects/{resource}", "GET /_emulator/clusters/{name}/kubeconfig", "POST /_emulator/tokens",
            ],
        }),
    )
}

/// The ledger, faults and settings.
fn controls(shared: &Arc<Shared>, handle: &StateHandle, req: &Req, path: &[&str]) -> Result<Reply, Reply> {
    let reply = match (req.method.as_str(), path) {
        ("GET", ["ledger"]) => {
            let snapshot = shared.ledger().snapshot();
            Reply::json(200, &json!({"total": snapshot.total(), "entries": snapshot.entries}))
        }
        ("DELETE", ["ledger"]) => {
            shared.ledger().reset();
            Reply::empty(204)
        }
        ("GET", ["faults"]) => to_json(200, &shared.faults().faults),
        ("PUT", ["faults"]) => {
            let faults: Faults = body(req)?;
            shared.faults().faults = faults;
            to_json(200, &shared.faults().faults)
        }
        ("DELETE", ["faults"]) => {
            shared.faults().faults = Faults::default();
            Reply::empty(204)
        }
        ("POST", ["faults", "rules"]) => {
            let rule: FaultRule = body(req)?;
            shared.faults().faults.rules.push(rule);
            to_json(200, &shared.faults().faults)
        }
        ("GET", ["settings"]) => to_json(200, &handle.settings()),
        ("PUT", ["settings"]) => {
            let settings: Settings = body(req)?;
            handle.set_settings(settings);
            to_json(200, &handle.settings())
        }
        _ => not_found(req),
    };
    Ok(reply)
}

/// Role assignments, principals, registries and tokens.
fn directory(handle: &StateHandle, req: &Req, path: &[&str]) -> Result<Reply, Reply> {
    let reply = match (req.method.as_str(), path) {
        ("GET", ["role-assignments"]) => to_json(200, &handle.role_assignments()),
        ("POST", ["role-assignments"]) => {
            let new: NewRoleAssignment = body(req)?;
            to_json(201, &handle.create_role_assignment(new).map_err(|e| error(400, e.to_string()))?)
        }
        ("DELETE", ["role-assignments", name]) => match handle.delete_role_assignment(name) {
            Some(removed) => to_json(200, &removed),
            None => error(404, format!("no role assignment named {name}")),
        },
        ("GET", ["principals"]) => to_json(200, &handle.principals()),
        ("POST", ["principals"]) => {
            let new: NewPrincipal = body(req)?;
            to_json(201, &handle.create_principal(new).map_err(|e| error(400, e.to_string()))?)
        }
        ("GET", ["registries"]) => to_json(200, &handle.registries()),
        ("PATCH", ["registries", name]) => {
            let patch: RegistryPatch = body(req)?;
            to_json(200, &handle.update_registry(name, patch).map_err(|e| error(404, e.to_string()))?)
        }
        ("POST", ["registries", name, "regenerate-credential"]) => {
            let which: Value = body(req)?;
            let which = which["name"].as_str().unwrap_or("password").to_string();
            handle.regenerate_registry_password(name, &which).map_err(|e| error(400, e.to_string()))?;
            to_json(200, &handle.registry(name))
        }
        ("POST", ["tokens"]) => {
            let request: Value = body(req)?;
            let client_id = request["client_id"].as_str().unwrap_or_default();
            let audience = request["audience"].as_str().unwrap_or("https://management.azure.com");
            let lifetime = request["lifetime_seconds"].as_i64().unwrap_or(3599);
            let token = handle.mint_token(client_id, audience, lifetime).map_err(|e| error(400, e.to_string()))?;
            Reply::json(200, &json!({"access_token": token}))
        }
        _ => not_found(req),
    };
    Ok(reply)
}

fn clusters(handle: &StateHandle, req: &Req, path: &[&str]) -> Result<Reply, Reply> {
    let reply = match (req.method.as_str(), path) {
        ("GET", ["clusters"]) => to_json(200, &handle.clusters()),
        ("GET", ["clusters", name, "kubeconfig"]) => {
            let admin = req.query("admin").is_some_and(|a| a == "true");
            let config = handle.kubeconfig(name, admin).map_err(|e| error(404, e.to_string()))?;
            Reply {
                status: 200,
                body: Some(config.into_bytes()),
                content_type: "application/yaml",
                headers: Vec::new(),
            }
        }
        ("GET", ["clusters", name, "objects", resource]) => {
            let objects =
                handle.kube_objects(name, resource, req.query("namespace")).map_err(|e| error(404, e.to_string()))?;
            Reply::json(200, &json!(objects))
        }
        ("PATCH", ["clusters", name]) => {
            let patch: Value = body(req)?;
            let denials: Vec<String> = serde_json::from_value(patch["kube_denials"].clone())
                .map_err(|e| error(400, format!("kube_denials must be a list of strings: {e}")))?;
            handle.set_kube_denials(name, denials).map_err(|e| error(404, e.to_string()))?;
            to_json(200, &handle.clusters())
        }
        _ => not_found(req),
    };
    Ok(reply)
}

fn not_found(req: &Req) -> Reply {
    error(404, format!("no admin endpoint {} {}", req.method, req.path))
}
