//! The resource types the emulated API server serves (core/v1 only): names, kinds, scope,
//! verbs and the field selectors each accepts, as discovery and the real server report them.

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResourceType {
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Field selector labels besides `metadata.name` and `metadata.namespace`.
    pub field_labels: &'static [&'static str],
    /// OpenAPI operation-id stem, e.g. `Secret` in `readCoreV1NamespacedSecret`.
    pub operation: &'static str,
}

const ALL_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

pub(crate) const RESOURCES: &[ResourceType] = &[
    ResourceType {
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        verbs: &["create", "delete", "get", "list", "patch", "update", "watch"],
        field_labels: &["status.phase"],
        operation: "Namespace",
    },
    ResourceType {
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        namespaced: true,
        short_names: &[],
        verbs: ALL_VERBS,
        field_labels: &["type"],
        operation: "Secret",
    },
    ResourceType {
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        namespaced: true,
        short_names: &["sa"],
        verbs: ALL_VERBS,
        field_labels: &[],
        operation: "ServiceAccount",
    },
    ResourceType {
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        verbs: ALL_VERBS,
        field_labels: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        operation: "Pod",
    },
    ResourceType {
        plural: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        verbs: ALL_VERBS,
        field_labels: &[],
        operation: "ConfigMap",
    },
    ResourceType {
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        verbs: ALL_VERBS,
        field_labels: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        operation: "Event",
    },
];

pub(crate) fn by_plural(plural: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.plural == plural)
}

pub(crate) const NAMESPACES: &ResourceType = &RESOURCES[0];
pub(crate) const SECRETS: &ResourceType = &RESOURCES[1];
pub(crate) const SERVICE_ACCOUNTS: &ResourceType = &RESOURCES[2];
pub(crate) const PODS: &ResourceType = &RESOURCES[3];
pub(crate) const CONFIG_MAPS: &ResourceType = &RESOURCES[4];
pub(crate) const EVENTS: &ResourceType = &RESOURCES[5];
