//! The per-cluster Kubernetes API under `/k8s/{subscription}/{resourceGroup}/{cluster}/...`,
//! where the kubeconfigs from listCluster*Credential point. Part 1 only reserves the routing:
//! known clusters answer 503 with a Kubernetes `Status` until part 2 serves the API here.

use serde_json::json;

use crate::http::Reply;
use crate::route::{Route, Target};
use crate::server::Shared;
use crate::state::cluster_id;

fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::json(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}

pub(crate) fn handle(shared: &Shared, _req: &crate::http::Req, route: &Route) -> Reply {
    let Target::Kube { subscription, resource_group, cluster, .. } = &route.target else {
        return status(404, "NotFound", "the server could not find the requested resource");
    };
    let key = cluster_id(&subscription.to_ascii_lowercase(), resource_group, cluster).to_ascii_lowercase();
    if !shared.state().clusters.contains_key(&key) {
        return status(404, "NotFound", "the server could not find the requested resource");
    }
    status(
        503,
        "ServiceUnavailable",
        "the emulated Kubernetes API server of this cluster is not available in this version of the emulator",
    )
}
