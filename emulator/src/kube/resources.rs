//! The resource types the emulated API server serves (core/v1 and apps/v1): names, kinds, scope,
//! verbs and the field selectors each accepts, as discovery and the real server report them.

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResourceType {
    /// The API group: empty for core/v1, `apps` for apps/v1.
    pub group: &'static str,
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
        group: "",
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
        group: "",
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
        group: "",
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
        group: "",
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
        group: "",
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
        group: "",
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
    ResourceType {
        group: "apps",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        short_names: &["deploy"],
        verbs: ALL_VERBS,
        field_labels: &[],
        operation: "Deployment",
    },
    ResourceType {
        group: "apps",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        short_names: &["rs"],
        verbs: ALL_VERBS,
        field_labels: &[],
        operation: "ReplicaSet",
    },
];

impl ResourceType {
    /// `v1` or `apps/v1`, as objects carry it.
    pub fn api_version(&self) -> &'static str {
        if self.group.is_empty() { "v1" } else { "apps/v1" }
    }

    /// The OpenAPI operation-id group part: `CoreV1` or `AppsV1`.
    pub fn operation_group(&self) -> &'static str {
        if self.group.is_empty() { "CoreV1" } else { "AppsV1" }
    }

    /// The path prefix: `/api/v1` or `/apis/apps/v1`.
    pub fn path_prefix(&self) -> &'static str {
        if self.group.is_empty() { "/api/v1" } else { "/apis/apps/v1" }
    }
}

pub(crate) fn by_plural(plural: &str) -> Option<&'static ResourceType> {
    RESOURCES.iter().find(|r| r.plural == plural)
}

pub(crate) const NAMESPACES: &ResourceType = &RESOURCES[0];
pub(crate) const SECRETS: &ResourceType = &RESOURCES[1];
pub(crate) const SERVICE_ACCOUNTS: &ResourceType = &RESOURCES[2];
pub(crate) const PODS: &ResourceType = &RESOURCES[3];
pub(crate) const CONFIG_MAPS: &ResourceType = &RESOURCES[4];
pub(crate) const EVENTS: &ResourceType = &RESOURCES[5];
pub(crate) const DEPLOYMENTS: &ResourceType = &RESOURCES[6];
pub(crate) const REPLICA_SETS: &ResourceType = &RESOURCES[7];
