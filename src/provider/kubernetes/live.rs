//! `Kubernetes` over the kube crate: one client per cluster, made once and reused. By default
//! a cluster is reached through AKS (`listClusterUserCredential`), so no local kubeconfig is
//! needed; on Entra-integrated clusters, whose kubeconfig names the kubelogin exec plugin,
//! acrlink gets the token for the AKS server application itself. `kube_context` uses the
//! local kubeconfig instead.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use azure_core::credentials::TokenCredential;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::{Mutex, OnceCell};

use super::cache::KubeconfigCache;
use super::{
    ClusterTarget, DOCKER_CONFIG_JSON_TYPE, KubeError, Kubernetes, LiveNamespace, LivePod, LiveSecret,
    LiveServiceAccount, ProbePod, PullOutcome, SecretWrite,
};
use crate::ownership::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, PATCHED_LABEL};
use crate::provider::Azure;
use crate::provider::azure::AzureClient;
use crate::provider::retry::{Failure, RetryPolicy, classify_status};
use crate::sensitive::Sensitive;

/// The AKS server application (the audience of Entra tokens for AKS's API servers).
pub const AKS_SERVER_APP_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
const FIELD_MANAGER: &str = "acrlink";

/// A cluster's client, the API server it talks to (named in errors), and on an
/// Entra-integrated cluster what makes a new client when the token runs out.
#[derive(Clone)]
struct Connected {
    client: kube::Client,
    server: String,
    entra: Option<Entra>,
    /// Reached through a kubeconfig kept from an earlier run (dropped if the server refuses).
    from_cache: bool,
}

/// An Entra-integrated cluster's access: the kubeconfig AKS returned (its user runs kubelogin;
/// it holds no secret) and when the token acrlink put in its place expires.
#[derive(Clone)]
struct Entra {
    kubeconfig: serde_json::Value,
    expires_on: time::OffsetDateTime,
}

/// A token is replaced this long before it expires, so no request of a long apply or verify
/// goes out with one about to run out (a token shorter-lived than this is fetched per request).
const REFRESH_AHEAD: time::Duration = time::Duration::minutes(5);

pub struct KubeClients {
    azure: Arc<AzureClient>,
    credential: Arc<dyn TokenCredential>,
    /// One client per cluster, made on first use.
    clients: Mutex<HashMap<String, Arc<OnceCell<Connected>>>>,
    retry: RetryPolicy,
    pub requests: std::sync::atomic::AtomicU64,
    cache: Option<KubeconfigCache>,
}

impl KubeClients {
    pub fn new(azure: Arc<AzureClient>, credential: Arc<dyn TokenCredential>, retry: RetryPolicy) -> KubeClients {
        KubeClients {
            azure,
            credential,
            clients: Mutex::new(HashMap::new()),
            retry,
            requests: std::sync::atomic::AtomicU64::new(0),
            cache: None,
        }
    }

    /// Keeps Entra-integrated clusters' kubeconfigs in `cache` between runs.
    pub fn with_cache(self, cache: KubeconfigCache) -> KubeClients {
        KubeClients { cache: Some(cache), ..self }
    }

    fn arm_endpoint(&self) -> &str {
        self.azure.arm.endpoint()
    }

    /// A kept kubeconfig the server refused: forgotten, and the cluster connected afresh.
    async fn forget(&self, cluster: &ClusterTarget) {
        if let Some(cache) = &self.cache {
            cache.forget(self.arm_endpoint(), &cluster.id);
        }
        self.clients.lock().await.remove(&cluster.id.to_ascii_lowercase());
    }

    async fn client(&self, cluster: &ClusterTarget) -> Result<Connected, KubeError> {
        let key = cluster.id.to_ascii_lowercase();
        let cell = self.clients.lock().await.entry(key.clone()).or_default().clone();
        let connected = cell.get_or_try_init(|| self.connect(cluster)).await?.clone();
        let Some(entra) = connected.entra.as_ref().filter(|e| e.expires_soon()) else { return Ok(connected) };
        let fresh = self.with_token(cluster, entra.kubeconfig.clone()).await?;
        let cell = Arc::new(OnceCell::new_with(Some(fresh.clone())));
        self.clients.lock().await.insert(key, cell);
        Ok(fresh)
    }

    async fn connect(&self, cluster: &ClusterTarget) -> Result<Connected, KubeError> {
        let connect_error = |message: String| KubeError::Connect { cluster: cluster.key.clone(), message };
        if let Some(context) = &cluster.kube_context {
            let kubeconfig = Kubeconfig::read().map_err(|e| connect_error(format!("cannot read KUBECONFIG: {e}")))?;
            let options = KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
            return build(cluster, kubeconfig, &options, None).await;
        }
        if let Some(kept) = self.cache.as_ref().and_then(|c| c.load(self.arm_endpoint(), &cluster.id)) {
            let mut connected = self.with_token(cluster, kept).await?;
            connected.from_cache = true;
            return Ok(connected);
        }
        let text = self
            .azure
            .cluster_user_kubeconfig(&cluster.id)
            .await
            .map_err(|e| connect_error(format!("cannot get its credentials from AKS: {e}")))?;
        let value: serde_json::Value = serde_saphyr::from_str(text.expose())
            .map_err(|_| connect_error("the kubeconfig AKS returned is not YAML".into()))?;
        if uses_exec_plugin(&value) {
            if let Some(cache) = &self.cache {
                cache.store(self.arm_endpoint(), &cluster.id, &value);
            }
            return self.with_token(cluster, value).await;
        }
        let kubeconfig = serde_json::from_value(value)
            .map_err(|_| connect_error("the kubeconfig AKS returned is not a kubeconfig".into()))?;
        build(cluster, kubeconfig, &KubeConfigOptions::default(), None).await
    }

    /// A client for a kubeconfig whose users would run an exec plugin (kubelogin on
    /// Entra-integrated AKS): they get an Entra token for the AKS server application instead.
    async fn with_token(&self, cluster: &ClusterTarget, kubeconfig: serde_json::Value) -> Result<Connected, KubeError> {
        let connect_error = |message: String| KubeError::Connect { cluster: cluster.key.clone(), message };
        let token = self.credential.get_token(&[AKS_SERVER_APP_SCOPE], None).await.map_err(|e| {
            connect_error(format!("cannot get an Entra token for the AKS API: {}", first_line(&e.to_string())))
        })?;
        let mut with_token = kubeconfig.clone();
        replace_exec_with_token(&mut with_token, token.token.secret());
        let parsed = serde_json::from_value(with_token)
            .map_err(|_| connect_error("the kubeconfig AKS returned is not a kubeconfig".into()))?;
        let entra = Entra { kubeconfig, expires_on: token.expires_on };
        build(cluster, parsed, &KubeConfigOptions::default(), Some(entra)).await
    }

    /// Runs one API call with the shared retry policy (429 and 5xx, connection failures). When
    /// the cluster was reached through a kept kubeconfig and its server refuses the connection
    /// or the token, the kept one is forgotten and the call made once more through AKS.
    async fn call<T, F, Fut>(&self, cluster: &ClusterTarget, what: &str, run: F) -> Result<T, KubeError>
    where
        F: Fn(kube::Client) -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        match self.call_once(cluster, what, &run).await {
            Err((error, true)) if refused_access(&error) => {
                tracing::info!(cluster = %cluster.key, %error, "the kept kubeconfig no longer works; asking AKS again");
                self.forget(cluster).await;
                self.call_once(cluster, what, &run).await.map_err(|(error, _)| error)
            }
            result => result.map_err(|(error, _)| error),
        }
    }

    async fn call_once<T, F, Fut>(&self, cluster: &ClusterTarget, what: &str, run: &F) -> Result<T, (KubeError, bool)>
    where
        F: Fn(kube::Client) -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let Connected { client, server, from_cache, .. } = self.client(cluster).await.map_err(|e| (e, false))?;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // -vvv: every call and how it ended, never a body (Secrets travel in them).
            tracing::trace!(cluster = %cluster.key, server, what, attempt, "Kubernetes request");
            let error = match run(client.clone()).await {
                Ok(value) => {
                    tracing::trace!(cluster = %cluster.key, what, "Kubernetes response: ok");
                    return Ok(value);
                }
                Err(error) => error,
            };
            tracing::trace!(cluster = %cluster.key, what, error = %summary(&error), "Kubernetes response: error");
            // A kept kubeconfig whose server does not answer is not waited for: AKS says where
            // the server is now.
            let unreachable = matches!(error, kube::Error::HyperError(_) | kube::Error::Service(_));
            if from_cache && unreachable {
                return Err((map_error(error, &cluster.key), true));
            }
            let failure = match &error {
                kube::Error::Api(status) => classify_status(status.code, None),
                kube::Error::HyperError(_) | kube::Error::Service(_) => Failure::Transient,
                _ => Failure::Permanent,
            };
            match self.retry.delay(attempt, failure, started) {
                Some(wait) => {
                    tracing::info!(cluster = %cluster.key, what, wait_ms = wait.as_millis() as u64, "Kubernetes asked to retry");
                    tokio::time::sleep(wait).await;
                }
                None => {
                    let error = match map_error(error, &cluster.key) {
                        KubeError::Transport(message) => KubeError::Transport(format!("{server}: {message}")),
                        other => other,
                    };
                    return Err((error, from_cache));
                }
            }
        }
    }
}

/// One line about a failed call for the log; serde's errors quote what they could not read,
/// which may be Secret data, so theirs are withheld.
fn summary(error: &kube::Error) -> String {
    match error {
        kube::Error::SerdeError(_) => "unexpected answer (details withheld: it may hold Secret data)".into(),
        other => first_line(&other.to_string()),
    }
}

/// A server that does not take the connection or the token: a kept kubeconfig gone stale.
fn refused_access(error: &KubeError) -> bool {
    matches!(error, KubeError::Transport(_) | KubeError::Api { code: 401, .. })
}

impl Entra {
    fn expires_soon(&self) -> bool {
        time::OffsetDateTime::now_utc() >= self.expires_on - REFRESH_AHEAD
    }
}

/// A client for `kubeconfig`, and the server it names.
async fn build(
    cluster: &ClusterTarget,
    kubeconfig: Kubeconfig,
    options: &KubeConfigOptions,
    entra: Option<Entra>,
) -> Result<Connected, KubeError> {
    let connect_error = |message: String| KubeError::Connect { cluster: cluster.key.clone(), message };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, options)
        .await
        .map_err(|e| connect_error(format!("unusable kubeconfig: {e}")))?;
    let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
    let client = kube::Client::try_from(config).map_err(|e| connect_error(format!("cannot build a client: {e}")))?;
    Ok(Connected { client, server, entra, from_cache: false })
}

fn uses_exec_plugin(kubeconfig: &serde_json::Value) -> bool {
    kubeconfig["users"]
        .as_array()
        .is_some_and(|users| users.iter().any(|u| u["user"].get("exec").is_some_and(|e| !e.is_null())))
}

/// Users that would run an exec plugin (kubelogin on Entra-integrated AKS) get a bearer token.
fn replace_exec_with_token(kubeconfig: &mut serde_json::Value, token: &str) {
    if let Some(users) = kubeconfig["users"].as_array_mut() {
        for user in users {
            if user["user"].get("exec").is_some_and(|e| !e.is_null()) {
                user["user"] = serde_json::json!({ "token": token });
            }
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// The namespace a 403 is about when its cause says the namespace is being deleted.
fn terminating_namespace(status: &kube::core::Status) -> Option<String> {
    let details = status.details.as_ref()?;
    let cause = details.causes.iter().find(|c| c.reason == "NamespaceTerminating")?;
    // "namespace <ns> is being terminated"
    let namespace = cause.message.strip_prefix("namespace ")?.split(' ').next()?;
    Some(namespace.to_string())
}

/// Kubernetes errors classified by status code, reason and causes, never by message text.
fn map_error(error: kube::Error, cluster: &str) -> KubeError {
    match error {
        kube::Error::Api(status) => {
            let message = status.message.clone();
            if let Some(namespace) = terminating_namespace(&status) {
                return KubeError::NamespaceTerminating { cluster: cluster.to_string(), namespace };
            }
            match (status.code, status.reason.as_str()) {
                (403, _) => KubeError::Forbidden { message },
                (404, _) => KubeError::NotFound { message },
                (409, _) => KubeError::Conflict { message },
                // Also a failed JSON-patch `test`: the real server says only "the server rejected
                // our request due to an error in our request"; the caller knows its patch.
                (422, _) => KubeError::Invalid { message },
                (code, reason) => KubeError::Api { code, reason: reason.to_string(), message },
            }
        }
        // serde quotes the value it could not read, and Secret lists carry Secret data.
        kube::Error::SerdeError(_) => KubeError::Transport(
            "unexpected answer from the Kubernetes API (details withheld: it may hold Secret data)".into(),
        ),
        other => KubeError::Transport(first_line(&other.to_string())),
    }
}

fn string_map(map: Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default()
}

/// kubectl's last-applied copy of a Secret holds its data in clear text: never kept.
fn without_last_applied(mut annotations: BTreeMap<String, String>) -> BTreeMap<String, String> {
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    annotations
}

fn live_secret(secret: Secret) -> LiveSecret {
    let docker_config = secret
        .data
        .as_ref()
        .and_then(|data| data.get(".dockerconfigjson"))
        .map(|bytes| Sensitive::new(bytes.0.clone()));
    LiveSecret {
        namespace: secret.metadata.namespace.unwrap_or_default(),
        name: secret.metadata.name.unwrap_or_default(),
        uid: secret.metadata.uid.unwrap_or_default(),
        resource_version: secret.metadata.resource_version.unwrap_or_default(),
        type_: secret.type_.unwrap_or_else(|| "Opaque".into()),
        immutable: secret.immutable.unwrap_or(false),
        labels: string_map(secret.metadata.labels),
        annotations: without_last_applied(string_map(secret.metadata.annotations)),
        docker_config,
    }
}

fn live_service_account(account: ServiceAccount) -> LiveServiceAccount {
    LiveServiceAccount {
        uid: account.metadata.uid.clone().unwrap_or_default(),
        namespace: account.metadata.namespace.unwrap_or_default(),
        name: account.metadata.name.unwrap_or_default(),
        resource_version: account.metadata.resource_version.unwrap_or_default(),
        image_pull_secrets: account.image_pull_secrets.map(|list| list.into_iter().map(|r| r.name).collect()),
        labels: string_map(account.metadata.labels),
        annotations: string_map(account.metadata.annotations),
    }
}

fn secret_object(secret: &SecretWrite, resource_version: Option<&str>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret.name.clone()),
            namespace: Some(secret.namespace.clone()),
            labels: Some(secret.labels.clone()),
            annotations: Some(secret.annotations.clone()),
            resource_version: resource_version.map(str::to_string),
            ..ObjectMeta::default()
        },
        type_: Some(DOCKER_CONFIG_JSON_TYPE.into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(secret.docker_config_json.expose().as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

fn post_params() -> PostParams {
    PostParams { field_manager: Some(FIELD_MANAGER.into()), ..PostParams::default() }
}

fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
}

impl Kubernetes for KubeClients {
    async fn namespaces(&self, cluster: &ClusterTarget) -> Result<Vec<LiveNamespace>, KubeError> {
        let list =
            self.call(cluster, "list namespaces", |c| async move {
                Api::<Namespace>::all(c).list(&ListParams::default()).await
            })
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|ns| LiveNamespace {
                terminating: ns.metadata.deletion_timestamp.is_some()
                    || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating"),
                name: ns.metadata.name.unwrap_or_default(),
                labels: string_map(ns.metadata.labels),
            })
            .collect())
    }

    async fn secrets_named(&self, cluster: &ClusterTarget, name: &str) -> Result<Vec<LiveSecret>, KubeError> {
        let params = ListParams::default().fields(&format!("metadata.name={name}"));
        let list = self
            .call(cluster, "list secrets", |c| {
                let params = params.clone();
                async move { Api::<Secret>::all(c).list(&params).await }
            })
            .await?;
        Ok(list.items.into_iter().map(live_secret).collect())
    }

    async fn managed_secrets(&self, cluster: &ClusterTarget) -> Result<Vec<LiveSecret>, KubeError> {
        let params = ListParams::default().labels(&managed_selector());
        let list = self
            .call(cluster, "list managed secrets", |c| {
                let params = params.clone();
                async move { Api::<Secret>::all(c).list(&params).await }
            })
            .await?;
        Ok(list.items.into_iter().map(live_secret).collect())
    }

    async fn pull_secrets(&self, cluster: &ClusterTarget) -> Result<Vec<LiveSecret>, KubeError> {
        let params = ListParams::default().fields(&format!("type={DOCKER_CONFIG_JSON_TYPE}"));
        let list = self
            .call(cluster, "list pull secrets", |c| {
                let params = params.clone();
                async move { Api::<Secret>::all(c).list(&params).await }
            })
            .await?;
        Ok(list.items.into_iter().map(live_secret).collect())
    }

    async fn service_accounts(&self, cluster: &ClusterTarget) -> Result<Vec<LiveServiceAccount>, KubeError> {
        let list = self
            .call(cluster, "list service accounts", |c| async move {
                Api::<ServiceAccount>::all(c).list(&ListParams::default()).await
            })
            .await?;
        Ok(list.items.into_iter().map(live_service_account).collect())
    }

    async fn service_accounts_named(
        &self,
        cluster: &ClusterTarget,
        name: &str,
    ) -> Result<Vec<LiveServiceAccount>, KubeError> {
        let params = ListParams::default().fields(&format!("metadata.name={name}"));
        let list = self
            .call(cluster, "list service accounts", |c| {
                let params = params.clone();
                async move { Api::<ServiceAccount>::all(c).list(&params).await }
            })
            .await?;
        Ok(list.items.into_iter().map(live_service_account).collect())
    }

    async fn patched_service_accounts(&self, cluster: &ClusterTarget) -> Result<Vec<LiveServiceAccount>, KubeError> {
        let params = ListParams::default().labels(&format!("{PATCHED_LABEL}=true"));
        let list = self
            .call(cluster, "list patched service accounts", |c| {
                let params = params.clone();
                async move { Api::<ServiceAccount>::all(c).list(&params).await }
            })
            .await?;
        Ok(list.items.into_iter().map(live_service_account).collect())
    }

    async fn pods(&self, cluster: &ClusterTarget, namespace: &str) -> Result<Vec<LivePod>, KubeError> {
        let list = self
            .call(cluster, "list pods", |c| async move {
                Api::<Pod>::namespaced(c, namespace).list(&ListParams::default()).await
            })
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|pod| {
                let spec = pod.spec.unwrap_or_default();
                LivePod {
                    namespace: pod.metadata.namespace.unwrap_or_default(),
                    name: pod.metadata.name.unwrap_or_default(),
                    service_account: spec.service_account_name.unwrap_or_else(|| "default".into()),
                    image_pull_secrets: spec
                        .image_pull_secrets
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| r.name)
                        .collect(),
                    phase: pod.status.and_then(|s| s.phase).unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn get_secret(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LiveSecret>, KubeError> {
        let found = self
            .call(cluster, "get secret", |c| async move { Api::<Secret>::namespaced(c, namespace).get_opt(name).await })
            .await?;
        Ok(found.map(live_secret))
    }

    async fn get_service_account(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
    ) -> Result<Option<LiveServiceAccount>, KubeError> {
        let found = self
            .call(cluster, "get service account", |c| async move {
                Api::<ServiceAccount>::namespaced(c, namespace).get_opt(name).await
            })
            .await?;
        Ok(found.map(live_service_account))
    }

    async fn create_namespace(&self, cluster: &ClusterTarget, name: &str) -> Result<(), KubeError> {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let params = post_params();
        self.call(cluster, "create namespace", |c| {
            let (namespace, params) = (namespace.clone(), params.clone());
            async move { Api::<Namespace>::all(c).create(&params, &namespace).await }
        })
        .await
        .map(|_| ())
    }

    async fn create_secret(&self, cluster: &ClusterTarget, secret: &SecretWrite) -> Result<(), KubeError> {
        let object = secret_object(secret, None);
        let params = post_params();
        self.call(cluster, "create secret", |c| {
            let (object, params) = (object.clone(), params.clone());
            async move { Api::<Secret>::namespaced(c, &secret.namespace).create(&params, &object).await }
        })
        .await
        .map(|_| ())
    }

    async fn replace_secret(
        &self,
        cluster: &ClusterTarget,
        secret: &SecretWrite,
        resource_version: &str,
    ) -> Result<(), KubeError> {
        let object = secret_object(secret, Some(resource_version));
        let params = post_params();
        self.call(cluster, "replace secret", |c| {
            let (object, params) = (object.clone(), params.clone());
            async move { Api::<Secret>::namespaced(c, &secret.namespace).replace(&secret.name, &params, &object).await }
        })
        .await
        .map(|_| ())
    }

    async fn delete_secret(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Result<(), KubeError> {
        let params = DeleteParams {
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..DeleteParams::default()
        };
        let result = self
            .call(cluster, "delete secret", |c| {
                let params = params.clone();
                async move { Api::<Secret>::namespaced(c, namespace).delete(name, &params).await }
            })
            .await;
        match result {
            Ok(_) | Err(KubeError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn create_probe_pod(&self, cluster: &ClusterTarget, pod: &ProbePod) -> Result<(), KubeError> {
        let object = probe_pod_object(pod)?;
        let params = post_params();
        self.call(cluster, "create probe pod", |c| {
            let (object, params) = (object.clone(), params.clone());
            async move { Api::<Pod>::namespaced(c, &pod.namespace).create(&params, &object).await }
        })
        .await
        .map(|_| ())
    }

    async fn watch_pull(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        wait: std::time::Duration,
        pulled_only: bool,
    ) -> Result<PullOutcome, KubeError> {
        use futures::StreamExt as _;
        let seconds = u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX);
        let params = WatchParams::default().fields(&format!("metadata.name={name}")).timeout(seconds);
        let stream = self
            .call(cluster, "watch probe pod", |c| {
                let params = params.clone();
                async move { Api::<Pod>::namespaced(c, namespace).watch(&params, "0").await }
            })
            .await?;
        let mut stream = std::pin::pin!(stream);
        let deadline = tokio::time::sleep(wait);
        let mut deadline = std::pin::pin!(deadline);
        loop {
            let event = tokio::select! {
                () = &mut deadline => return Ok(PullOutcome::Pending),
                event = stream.next() => event,
            };
            match event {
                None => return Ok(PullOutcome::Pending),
                Some(Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod))) => {
                    if let Some(outcome) = pull_outcome(&pod, pulled_only) {
                        return Ok(outcome);
                    }
                }
                Some(Ok(WatchEvent::Deleted(_))) => {
                    return Ok(PullOutcome::Failed {
                        reason: "Deleted".into(),
                        message: "the probe pod was deleted by someone else".into(),
                    });
                }
                Some(Ok(WatchEvent::Bookmark(_))) => {}
                Some(Ok(WatchEvent::Error(status))) => {
                    return Err(KubeError::Api { code: status.code, reason: status.reason, message: status.message });
                }
                Some(Err(error)) => return Err(map_error(error, &cluster.key)),
            }
        }
    }

    async fn delete_pod(&self, cluster: &ClusterTarget, namespace: &str, name: &str) -> Result<(), KubeError> {
        let params = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        let result = self
            .call(cluster, "delete probe pod", |c| {
                let params = params.clone();
                async move { Api::<Pod>::namespaced(c, namespace).delete(name, &params).await }
            })
            .await;
        match result {
            Ok(_) | Err(KubeError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn pods_labelled(&self, cluster: &ClusterTarget, selector: &str) -> Result<Vec<(String, String)>, KubeError> {
        let params = ListParams::default().labels(selector);
        let list = self
            .call(cluster, "list probe pods", |c| {
                let params = params.clone();
                async move { Api::<Pod>::all(c).list(&params).await }
            })
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|p| (p.metadata.namespace.unwrap_or_default(), p.metadata.name.unwrap_or_default()))
            .collect())
    }

    async fn patch_service_account(
        &self,
        cluster: &ClusterTarget,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<(), KubeError> {
        let body = serde_json::to_vec(patch).map_err(|e| KubeError::Invalid { message: e.to_string() })?;
        let path = format!(
            "/api/v1/namespaces/{}/serviceaccounts/{}?fieldManager={FIELD_MANAGER}",
            path_segment(namespace),
            path_segment(name)
        );
        self.call(cluster, "patch service account", |c| {
            let request = http::Request::patch(&path)
                .header(http::header::CONTENT_TYPE, "application/json-patch+json")
                .header(http::header::ACCEPT, "application/json")
                .body(body.clone());
            async move {
                let request =
                    request.map_err(|e| kube::Error::BuildRequest(kube::core::request::Error::BuildRequest(e)))?;
                c.request::<serde_json::Value>(request).await
            }
        })
        .await
        .map(|_| ())
    }
}

/// The probe Pod as the API takes it: pulls every time, runs once, carries no service-account
/// token, asks for almost nothing, and ends itself after its deadline even if acrlink is gone.
fn probe_pod_object(pod: &ProbePod) -> Result<Pod, KubeError> {
    let mut spec = serde_json::json!({
        "restartPolicy": "Never",
        "activeDeadlineSeconds": pod.deadline_seconds,
        "automountServiceAccountToken": false,
        "terminationGracePeriodSeconds": 0,
        "containers": [{
            "name": "probe",
            "image": pod.image,
            "imagePullPolicy": "Always",
            "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}, "limits": {"cpu": "10m", "memory": "16Mi"}},
        }],
    });
    if let Some(account) = &pod.service_account {
        spec["serviceAccountName"] = account.clone().into();
    }
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels},
        "spec": spec,
    });
    serde_json::from_value(object).map_err(|e| KubeError::Invalid { message: e.to_string() })
}

/// What a watched probe Pod shows: pulled (running or terminated), a failed pull (unless only
/// a pull is waited for), or nothing yet.
fn pull_outcome(pod: &Pod, pulled_only: bool) -> Option<PullOutcome> {
    let status = pod.status.as_ref()?;
    let state = status.container_statuses.as_ref().and_then(|s| s.first()).and_then(|s| s.state.as_ref());
    if state.is_some_and(|s| s.running.is_some() || s.terminated.is_some()) {
        return Some(PullOutcome::Pulled);
    }
    if pulled_only {
        return None;
    }
    if status.phase.as_deref() == Some("Failed") {
        return Some(PullOutcome::Failed {
            reason: status.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: status.message.clone().unwrap_or_default(),
        });
    }
    let waiting = state.and_then(|s| s.waiting.as_ref())?;
    let reason = waiting.reason.clone().unwrap_or_default();
    matches!(reason.as_str(), "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName")
        .then(|| PullOutcome::Failed { reason, message: waiting.message.clone().unwrap_or_default() })
}

/// Namespace and object names are DNS labels, but a name read from elsewhere is escaped anyway.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_in_a_namespace_being_deleted_is_told_apart_from_missing_rights() {
        // The body a real kube-apiserver (v1.28) answers; the cause is what tells it apart.
        let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets \"p\" is forbidden: unable to create new content in namespace dying because it is being terminated","reason":"Forbidden","details":{"name":"p","kind":"secrets","causes":[{"reason":"NamespaceTerminating","message":"namespace dying is being terminated","field":"metadata.namespace"}]},"code":403}"#;
        let status: kube::core::Status = serde_json::from_str(body).unwrap();
        let error = map_error(kube::Error::Api(Box::new(status)), "aks1");
        assert!(
            matches!(&error, KubeError::NamespaceTerminating { namespace, .. } if namespace == "dying"),
            "{error:?}"
        );
        let denied = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets is forbidden: User \"x\" cannot create resource \"secrets\"","reason":"Forbidden","details":{"kind":"secrets"},"code":403}"#;
        let status: kube::core::Status = serde_json::from_str(denied).unwrap();
        assert!(matches!(map_error(kube::Error::Api(Box::new(status)), "aks1"), KubeError::Forbidden { .. }));
    }

    const AAD_KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: aks1
  cluster:
    server: https://aks1-dns.hcp.westeurope.azmk8s.io:443
contexts:
- name: aks1
  context:
    cluster: aks1
    user: clusterUser_rg_aks1
current-context: aks1
users:
- name: clusterUser_rg_aks1
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --login, devicecode, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]
"#;

    #[test]
    fn entra_clusters_get_a_token_instead_of_kubelogin() {
        let mut value: serde_json::Value = serde_saphyr::from_str(AAD_KUBECONFIG).unwrap();
        assert!(uses_exec_plugin(&value));
        replace_exec_with_token(&mut value, "entra-token");
        assert!(!uses_exec_plugin(&value));
        let kubeconfig: Kubeconfig = serde_json::from_value(value).unwrap();
        let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.exec.is_none() && user.token.is_some());
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }
}
