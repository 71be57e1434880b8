//! The Kubernetes API server of every emulated AKS cluster, under
//! `/k8s/{subscription}/{resourceGroup}/{cluster}` where listCluster*Credential kubeconfigs
//! point: bearer-token authentication (the kubeconfig's static token, or an Entra token for
//! the AKS server application on AAD clusters), Azure RBAC on `azure_rbac` clusters, optional
//! RBAC denials, discovery and the core/v1 objects acrlink touches. The kubelet that runs
//! Pods is `crate::kubelet`.
//!
//! - `routes`: path → resource, verb, ledger names; `discovery`: version and API documents.
//! - `store`: objects, revisions, write history; `objects`: the verbs; `watch`: watches;
//!   `select`: label/field selectors; `proto`: kubectl's protobuf request bodies.
//! - `patch`, `apply`, `fields`: patch formats, server-side apply, managedFields.
//! - `validate`, `gojson`, `schema`, `pods`: admission; `status`: Status bodies; `table`:
//!   kubectl tables.

mod apply;
pub(crate) mod apps;
mod discovery;
mod explain;
mod fields;
mod gojson;
mod lifecycle;
mod objects;
mod omitempty;
mod patch;
mod pods;
mod proto;
pub(crate) mod resources;
pub(crate) mod routes;
mod schema;
mod select;
pub(crate) mod status;
pub(crate) mod store;
mod table;
mod validate;
pub(crate) mod watch;

use time::OffsetDateTime;

use crate::arm::static_token;
use crate::entra::verify;
use crate::http::{Reply, Req};
use crate::route::{Route, Target};
use crate::server::Shared;
use crate::state::{ClusterRec, cluster_id};
use routes::{KubePath, parse, verb};
use status::{forbidden, no_such_path, unauthorized};

/// The AKS AAD server application: Entra tokens for AAD clusters carry it as audience.
pub const AKS_SERVER_APP: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

/// Who the token says the caller is, or None (401).
fn authenticate(shared: &Shared, cluster: &ClusterRec, req: &Req) -> Option<String> {
    let header = req.header("authorization")?;
    let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))?.trim();
    let key = cluster.id.to_ascii_lowercase();
    if cluster.local_accounts {
        if !cluster.aad && token == static_token(&shared.signing_key, &key, "user") {
            return Some("clusterUser".into());
        }
        if token == static_token(&shared.signing_key, &key, "admin") {
            return Some("clusterAdmin".into());
        }
    }
    if cluster.aad {
        let claims = verify(&shared.signing_key, token)?;
        let audience = claims["aud"].as_str().unwrap_or_default();
        let fresh = claims["exp"].as_i64().is_some_and(|exp| exp > OffsetDateTime::now_utc().unix_timestamp());
        if fresh && (audience == AKS_SERVER_APP || audience == format!("spn:{AKS_SERVER_APP}")) {
            return claims["oid"].as_str().map(str::to_string);
        }
    }
    None
}

/// Azure RBAC for Kubernetes authorization (AAD clusters with `azure_rbac`): the caller's
/// role assignments at the cluster (or above, or at `<cluster>/namespaces/<ns>`) must grant
/// `Microsoft.ContainerService/managedClusters/<resource>/<read|write|delete>`, after the
/// propagation delay. Local accounts are cluster admins and skip it.
fn azure_rbac_allows(
    state: &crate::state::State,
    cluster_id: &str,
    object_id: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
) -> bool {
    let action = match verb {
        "get" | "list" | "watch" => "read",
        "delete" | "deletecollection" => "delete",
        _ => "write",
    };
    let data_action = format!("Microsoft.ContainerService/managedClusters/{resource}/{action}");
    let ids = state.identities_of(object_id);
    let propagation = std::time::Duration::from_secs_f64(state.settings.rbac_propagation_seconds.max(0.0));
    let namespace_scope = format!("{cluster_id}/namespaces/{namespace}");
    state
        .assignments
        .of_principals(&ids)
        .filter(|a| a.created_at.is_none_or(|t| t.elapsed() >= propagation))
        .filter(|a| {
            crate::ids::is_at_or_above(&a.scope, cluster_id)
                || (!namespace.is_empty() && crate::ids::is_at_or_above(&a.scope, &namespace_scope))
        })
        .filter_map(|a| state.roles.iter().find(|r| r.guid == a.role_guid))
        .any(|role| role.allows_data(&data_action))
}

/// Whether a denial rule (`*`, `secrets`, `patch:serviceaccounts`, `*:pods`) covers a request.
fn denied(rules: &[String], verb: &str, resource: &str) -> bool {
    rules.iter().any(|rule| match rule.split_once(':') {
        Some((v, r)) => (v == "*" || v == verb) && (r == "*" || r == resource),
        None => rule == "*" || rule == resource,
    })
}

/// Whether a request asks for a watch (answered by `watch` instead of `handle`).
pub(crate) fn is_watch(req: &Req) -> bool {
    req.method == "GET" && req.query.iter().any(|(k, v)| k == "watch" && (v == "true" || v == "1"))
}

/// A watch: the streaming body, or the Status answer when it cannot start.
pub(crate) fn watch(shared: &Shared, req: &Req, route: &Route) -> Result<watch::WatchBody, Reply> {
    serve(shared, req, route, true).map(|answer| match answer {
        Answer::Stream(body) => Ok(body),
        Answer::Reply(reply) => Err(reply),
    })?
}

pub(crate) fn handle(shared: &Shared, req: &Req, route: &Route) -> Reply {
    match serve(shared, req, route, false) {
        Ok(Answer::Reply(reply)) | Err(reply) => reply,
        Ok(Answer::Stream(_)) => no_such_path().reply(),
    }
}

enum Answer {
    Reply(Reply),
    Stream(watch::WatchBody),
}

fn serve(shared: &Shared, req: &Req, route: &Route, watching: bool) -> Result<Answer, Reply> {
    let Target::Kube { subscription, resource_group, cluster, .. } = &route.target else {
        return Err(no_such_path().reply());
    };
    let key = cluster_id(&subscription.to_ascii_lowercase(), resource_group, cluster).to_ascii_lowercase();
    let mut state = shared.state();
    let Some(rec) = state.clusters.get(&key) else { return Err(no_such_path().reply()) };
    let Some(user) = authenticate(shared, rec, req) else { return Err(unauthorized().reply()) };
    let version = rec.kubernetes_version.clone();
    let entra_user = user != "clusterUser" && user != "clusterAdmin";
    let azure_rbac = rec.aad && rec.azure_rbac;
    let cluster_rec_id = rec.id.clone();
    let controller_delay = std::time::Duration::from_millis(state.settings.namespace_controller_delay_ms);
    let deny = rec.kube_denials.clone();
    let rest: Vec<&str> = req.segments.iter().skip(4).map(String::as_str).collect();
    let reply = match parse(&rest) {
        KubePath::Discovery(which) => {
            let address = req.base_url.trim_start_matches("https://").to_string();
            discovery::answer(&which, &version, &address, req.header("accept").unwrap_or_default())
        }
        KubePath::Unknown => no_such_path().reply(),
        KubePath::Resource { res, namespace, name, subresource } => {
            let watch = req.query.iter().any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
            let verb = verb(&req.method, !name.is_empty(), watch);
            if denied(&deny, verb, res.plural) {
                return Err(forbidden(&user, verb, res.plural, &namespace, &name).reply());
            }
            if entra_user
                && azure_rbac
                && !azure_rbac_allows(&state, &cluster_rec_id, &user, verb, res.plural, &namespace)
            {
                let mut failure = forbidden(&user, verb, res.plural, &namespace, &name);
                failure.message.push_str(
                    ": User does not have access to the resource in Azure. Update role assignment to allow access.",
                );
                return Err(failure.reply());
            }
            let ca = shared.ca_pem.clone();
            let store = state.kube.entry(key).or_insert_with(|| store::Store::new(&ca));
            let call = objects::Call {
                req,
                res,
                namespace: &namespace,
                name: &name,
                subresource: subresource.as_deref(),
                controller_delay,
            };
            if watching {
                return watch::start(store, &call).map(Answer::Stream).map_err(|f| f.reply());
            }
            objects::serve(store, &call).unwrap_or_else(|failure| failure.reply())
        }
    };
    Ok(Answer::Reply(reply))
}

#[cfg(test)]
mod tests {
    use super::denied;

    #[test]
    fn denial_rules() {
        let rules = vec!["patch:serviceaccounts".to_string(), "secrets".to_string()];
        assert!(denied(&rules, "patch", "serviceaccounts"));
        assert!(!denied(&rules, "get", "serviceaccounts"));
        assert!(denied(&rules, "list", "secrets"));
        assert!(denied(&["*".to_string()], "get", "pods"));
    }
}
