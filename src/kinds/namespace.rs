//! Namespaces a binding creates (`create_namespaces = true`). acrlink only ever creates them;
//! it never deletes a namespace.

use std::collections::{BTreeMap, BTreeSet};

use super::{Diff, Done, Failed, Found, Inputs};
use crate::model::{Address, Precondition, Reason};
use crate::plan::{Action, Change, Resource};
use crate::provider::kubernetes::{ClusterTarget, KubeError, Kubernetes};

pub(super) fn diff(inputs: &Inputs<'_>, out: &mut Diff) {
    for (cluster, namespace) in &inputs.desired.namespaces {
        out.changes.push(Change {
            address: Address::namespace(&cluster.key, namespace),
            action: Action::Create,
            reason: Reason::NamespaceMissing,
            precondition: Precondition::Absent,
            depends_on: Vec::new(),
            before: None,
            after: None,
            resource: Resource::Namespace { cluster: cluster.clone(), name: namespace.clone() },
        });
    }
}

pub(super) async fn apply<K: Kubernetes>(cluster: &ClusterTarget, name: &str, kube: &K) -> Result<Done, Failed> {
    let message = match kube.create_namespace(cluster, name).await {
        Ok(()) => format!("created namespace {name} in {}", cluster.key),
        Err(KubeError::Conflict { .. }) => format!("namespace {name} already exists in {}", cluster.key),
        Err(error) => return Err(error.into()),
    };
    Ok(Done::as_planned(Action::Create, message))
}

pub(super) fn found(
    lists: &BTreeMap<ClusterTarget, Result<BTreeSet<String>, String>>,
    cluster: &ClusterTarget,
    name: &str,
) -> Result<Found, String> {
    let names = lists.get(cluster).ok_or("it was not read")?.as_ref().map_err(Clone::clone)?;
    Ok(if names.contains(name) { Found::Present } else { Found::Absent })
}
