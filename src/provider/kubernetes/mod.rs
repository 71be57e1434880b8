//! What the engine may ask of a cluster's Kubernetes API: namespaces, pull Secrets, service
//! accounts and pods. Plain data types and one trait; `live` implements it with the kube crate.

pub mod cache;
pub mod live;

use std::collections::BTreeMap;
use std::future::Future;

use crate::sensitive::Sensitive;

/// How to reach one cluster: through AKS (`listClusterUserCredential`) or a local context.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ClusterTarget {
    /// The file's key for the cluster, for messages.
    pub key: String,
    /// ARM id of the managed cluster.
    pub id: String,
    /// A context of the local kubeconfig (`KUBECONFIG`) to use instead of AKS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveNamespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub terminating: bool,
}

#[derive(Debug, Clone)]
pub struct LiveSecret {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub type_: String,
    /// `immutable: true`: its data can only change by deleting and creating it again.
    pub immutable: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The `.dockerconfigjson` payload, when there is one.
    pub docker_config: Option<Sensitive<Vec<u8>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveServiceAccount {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub resource_version: String,
    /// Names in `imagePullSecrets`, in order; None when the field is absent.
    pub image_pull_secrets: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePod {
    pub namespace: String,
    pub name: String,
    pub service_account: String,
    pub image_pull_secrets: Vec<String>,
    pub phase: String,
}

/// A short-lived Pod that shows whether the kubelet pulls an image (`verify --probe pod`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePod {
    pub namespace: String,
    pub name: String,
    pub image: String,
    /// The service account whose imagePullSecrets admission copies; None: `default`.
    pub service_account: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `activeDeadlineSeconds`: the kubelet ends the Pod even if acrlink is gone.
    pub deadline_seconds: i64,
}

/// What a probe Pod's first container shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// Running or terminated: the image was pulled.
    Pulled,
    /// `ErrImagePull` / `ImagePullBackOff` (or the Pod failed), with the kubelet's message.
    Failed { reason: String, message: String },
    /// Neither within the time given.
    Pending,
}

/// A pull Secret to write: `kubernetes.io/dockerconfigjson`.
#[derive(Debug, Clone)]
pub struct SecretWrite {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub docker_config_json: Sensitive<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot connect to cluster {cluster}: {message}")]
    Connect { cluster: String, message: String },
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    /// A 403 whose cause is `NamespaceTerminating`: the namespace is being deleted; not a
    /// permissions problem.
    #[error("namespace {namespace} of {cluster} is being deleted; nothing can be created in it")]
    NamespaceTerminating { cluster: String, namespace: String },
    #[error("not found: {message}")]
    NotFound { message: String },
    /// A stale resourceVersion, a failed JSON-patch `test`, or an object that already exists.
    #[error("conflict: {message}")]
    Conflict { message: String },
    #[error("invalid: {message}")]
    Invalid { message: String },
    #[error("Kubernetes answered {code} {reason}: {message}")]
    Api { code: u16, reason: String, message: String },
    #[error("cannot reach the Kubernetes API: {0}")]
    Transport(String),
}

/// The cluster operations the engine needs; every call names its cluster.
pub trait Kubernetes: Send + Sync {
    fn namespaces(&self, cluster: &ClusterTarget)
    -> impl Future<Output = Result<Vec<LiveNamespace>, KubeError>> + Send;
    /// Every Secret of this name, in all namespaces (one request, not one per namespace).
    fn secrets_named(
        &self,
        cluster: &ClusterTarget,
        name: &str,
    ) -> impl Future<Output = Result<Vec<LiveSecret>, KubeError>> + Send;
    /// Every Secret carrying acrlink's managed-by label, in all namespaces.
    fn managed_secrets(
        &self,
        cluster: &ClusterTarget,
    ) -> impl Future<Output = Result<Vec<LiveSecret>, KubeError>> + Send;
    /// Every `kubernetes.io/dockerconfigjson` Secret, in all namespaces (one request; `import`).
    fn pull_secrets(&self, cluster: &ClusterTarget) -> impl Future<Output = Result<Vec<LiveSecret>, KubeError>> + Send;
    /// Every ServiceAccount, in all namespaces (one request; `import` reads their imagePullSecrets).
    fn service_accounts(
        &self,
        cluster: &ClusterTarget,
    ) -> impl Future<Output = Result<Vec<LiveServiceAccount>, KubeError>> + Send;
    /// Every ServiceAccount of this name, in all namespaces.
    fn service_accounts_named(
        &self,
        cluster: &ClusterTarget,
        name: &str,
    ) -> impl Future<Output = Result<Vec<LiveServiceAccount>, KubeError>> + Send;
    /// ServiceAccounts acrlink patched (they carry its label), in all namespaces.
    fn patched_service_accounts(
        &self,
        cluster: &ClusterTarget,
    ) -> impl Future<Output = Result<Vec<LiveServiceAccount>, KubeError>> + Send;
    fn pods(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
    ) -> impl Future<Output = Result<Vec<LivePod>, KubeError>> + Send;
    fn get_secret(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<LiveSecret>, KubeError>> + Send;
    fn get_service_account(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<LiveServiceAccount>, KubeError>> + Send;
    fn create_namespace(
        &self,
        cluster: &ClusterTarget,
        name: &str,
    ) -> impl Future<Output = Result<(), KubeError>> + Send;
    fn create_secret(
        &self,
        cluster: &ClusterTarget,
        secret: &SecretWrite,
    ) -> impl Future<Output = Result<(), KubeError>> + Send;
    /// Replaces the Secret if it is still at `resource_version`.
    fn replace_secret(
        &self,
        cluster: &ClusterTarget,
        secret: &SecretWrite,
        resource_version: &str,
    ) -> impl Future<Output = Result<(), KubeError>> + Send;
    /// Deletes the Secret if it is still the object with `uid`; gone already is success.
    fn delete_secret(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> impl Future<Output = Result<(), KubeError>> + Send;
    /// Applies a JSON patch (RFC 6902) to a ServiceAccount. A failed `test` op answers what
    /// a real kube-apiserver answers, 422 Invalid with a bare message: only the caller, which
    /// knows its patch carries `test` ops, can call that a conflict.
    fn patch_service_account(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> impl Future<Output = Result<(), KubeError>> + Send;
    /// Creates a probe Pod (`imagePullPolicy: Always`, `restartPolicy: Never`, no service
    /// account token, tiny requests).
    fn create_probe_pod(
        &self,
        cluster: &ClusterTarget,
        pod: &ProbePod,
    ) -> impl Future<Output = Result<(), KubeError>> + Send;
    /// WATCHES (one request, no polling) a Pod for up to `wait` until its image is pulled or,
    /// unless `pulled_only` (waiting out the kubelet's retries), a pull fails.
    fn watch_pull(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        wait: std::time::Duration,
        pulled_only: bool,
    ) -> impl Future<Output = Result<PullOutcome, KubeError>> + Send;
    /// Deletes a Pod at once (grace period 0); gone already is success.
    fn delete_pod(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), KubeError>> + Send;
    /// (namespace, name) of every Pod carrying these labels, in all namespaces.
    fn pods_labelled(
        &self,
        cluster: &ClusterTarget,
        selector: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, KubeError>> + Send;
}

/// Annotation on a managed Secret: per registry, the credential's kind, user, fingerprint and expiry.
pub const CREDENTIALS_ANNOTATION: &str = "acrlink.io/credentials";
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
