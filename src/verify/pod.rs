//! The pod layer (`--probe pod`): on each cluster a short-lived probe Pod per registry (and per
//! namespace, under the bound service account, for pull-secret bindings) that the kubelet
//! really pulls. Each probe costs a constant number of Kubernetes requests: create, one watch
//! (a second only to wait out role propagation), delete. Probe Pods are labelled as acrlink's
//! and always deleted, also when the run is stopped; those of an earlier killed run are
//! deleted first.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::{Cause, Check, Fleet, Layer, Options, Pair, Verdict};
use crate::config::model::{Config, Method};
use crate::methods::pull_secret::target;
use crate::ownership::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::provider::kubernetes::{ClusterTarget, Kubernetes, ProbePod, PullOutcome};

/// The name prefix and label value of every probe Pod.
pub const PROBE_NAME: &str = "acrlink-verify";
pub const PROBE_LABEL: &str = "acrlink.io/probe";

fn selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{PROBE_LABEL}={PROBE_NAME}")
}

/// The repository an image names (`host/repo/path:tag` or `@sha256:...` → `repo/path`).
pub(crate) fn image_repository(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let path = without_digest.split_once('/').map_or(without_digest, |(_, rest)| rest);
    match path.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository.to_string(),
        _ => path.to_string(),
    }
}

/// The image probing `login_server`: `--image` when it is on that registry or names no
/// registry (it is then looked up on each), else the registry's `verify.image` in the file.
pub(crate) fn image_for(login_server: &str, flag: Option<&str>, file: Option<&str>) -> Option<String> {
    let qualify = |image: &str| {
        // As Docker reads references: the first segment is a host only when more follow and
        // it has a dot or a port.
        match image.split_once('/') {
            Some((first, _)) if first.contains('.') || first.contains(':') => {
                first.eq_ignore_ascii_case(login_server).then(|| image.to_string())
            }
            _ => Some(format!("{login_server}/{image}")),
        }
    };
    flag.and_then(qualify).or_else(|| file.and_then(qualify))
}

/// Whether a check's repository (pattern) stands for the image's repository.
fn answers(check: &Check, repository: &str) -> bool {
    match check.repository.as_deref() {
        None => true,
        Some(pattern) => match pattern.strip_suffix('*') {
            Some(prefix) => repository.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase()),
            None => pattern.eq_ignore_ascii_case(repository),
        },
    }
}

/// One probe Pod and the checks it answers (indices into the run's checks).
struct Probe {
    cluster: ClusterTarget,
    pod: ProbePod,
    checks: Vec<usize>,
}

/// What a probe found.
struct Found {
    outcome: PullOutcome,
    /// The pull failed at first and succeeded later, after `late` (role propagation).
    late: Option<Duration>,
    stopped: bool,
}

/// The probes to run, and for each check no probe answers, why.
fn probes(
    config: &Config,
    fleet: &Fleet,
    pairs: &[Pair<'_>],
    checks: &[(usize, Check)],
    options: &Options,
) -> (Vec<Probe>, Vec<(usize, String)>) {
    let mut probes: BTreeMap<(ClusterTarget, String, String), Probe> = BTreeMap::new();
    let mut unprobed = Vec::new();
    for (position, (index, check)) in checks.iter().enumerate() {
        let pair = &pairs[*index];
        let registry = &config.registries[&pair.registry];
        let Some(login) = fleet.inventory.registries.get(&pair.registry).map(|r| &r.login_server) else { continue };
        let Some(image) = image_for(login, options.image.as_deref(), registry.verify_image.as_deref()) else {
            let why = format!(
                "no pod probe: registry {} has no probe image (set verify.image on it in the file, or pass --image)",
                pair.registry
            );
            unprobed.push((position, why));
            continue;
        };
        if !answers(check, &image_repository(&image)) {
            let pattern = check.repository.clone().unwrap_or_default();
            unprobed.push((position, format!("no pod probe: the probe image {image} is not in {pattern}")));
            continue;
        }
        let (namespace, service_account) = match &pair.binding.method {
            Method::ManagedIdentity => ("default".to_string(), None),
            Method::PullSecret(pull) => {
                (check.namespace.clone().unwrap_or_else(|| "default".into()), pull.service_accounts.first().cloned())
            }
        };
        let cluster = target(config, pair.cluster);
        let key = (cluster.clone(), pair.registry.clone(), namespace.clone());
        let probe = probes.entry(key).or_insert_with(|| Probe {
            cluster,
            pod: ProbePod {
                name: format!("{PROBE_NAME}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
                namespace,
                image,
                service_account,
                labels: BTreeMap::from([
                    (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
                    (PROBE_LABEL.to_string(), PROBE_NAME.to_string()),
                    ("acrlink.io/registry".to_string(), pair.registry.clone()),
                ]),
                deadline_seconds: i64::try_from(options.timeout.as_secs()).unwrap_or(i64::MAX).saturating_add(60),
            },
            checks: Vec::new(),
        });
        probe.checks.push(position);
    }
    (probes.into_values().collect(), unprobed)
}

/// Deletes the probe Pods an earlier run left behind (killed before it could), per cluster.
async fn clean_leftovers<K: Kubernetes>(kube: &K, clusters: &[ClusterTarget]) {
    let cleanups = clusters.iter().map(|cluster| async move {
        let Ok(leftovers) = kube.pods_labelled(cluster, &selector()).await else { return };
        for (namespace, name) in leftovers {
            tracing::info!(cluster = %cluster.key, namespace, name, "deleting a probe pod an earlier verify left behind");
            if let Err(error) = kube.delete_pod(cluster, &namespace, &name).await {
                tracing::warn!(cluster = %cluster.key, %error, "cannot delete probe pod {namespace}/{name}");
            }
        }
    });
    join_all(cleanups).await;
}

/// Waits until `stop` is set (the run was interrupted); a local flag, not a Kubernetes poll.
async fn stopped(options: &Options) {
    while !options.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates the probe, watches it, and deletes it whatever happened.
async fn run_probe<K: Kubernetes>(kube: &K, probe: &Probe, azure_ok: bool, options: &Options) -> Result<Found, String> {
    let (cluster, pod) = (&probe.cluster, &probe.pod);
    if options.stop.load(Ordering::SeqCst) {
        return Ok(Found { outcome: PullOutcome::Pending, late: None, stopped: true });
    }
    kube.create_probe_pod(cluster, pod).await.map_err(|e| e.to_string())?;
    let watched = async {
        let started = Instant::now();
        let first = kube.watch_pull(cluster, &pod.namespace, &pod.name, options.timeout, false).await?;
        // A refusal although the grant is there: the kubelet retries; wait for it.
        if azure_ok && matches!(&first, PullOutcome::Failed { message, .. } if refused(message)) {
            let left = options.timeout.saturating_sub(started.elapsed());
            let second = kube.watch_pull(cluster, &pod.namespace, &pod.name, left, true).await?;
            if second == PullOutcome::Pulled {
                return Ok(Found { outcome: second, late: Some(started.elapsed()), stopped: false });
            }
        }
        Ok::<_, crate::provider::kubernetes::KubeError>(Found { outcome: first, late: None, stopped: false })
    };
    let found = tokio::select! {
        found = watched => found.map_err(|e| e.to_string()),
        () = stopped(options) => Ok(Found { outcome: PullOutcome::Pending, late: None, stopped: true }),
    };
    if let Err(error) = kube.delete_pod(cluster, &pod.namespace, &pod.name).await {
        tracing::warn!(cluster = %cluster.key, %error, "cannot delete probe pod {}/{}", pod.namespace, pod.name);
    }
    found
}

/// The kubelet was refused a token (not the network, not a missing image).
fn refused(message: &str) -> bool {
    message.contains("401 Unauthorized") || message.contains("failed to authorize")
}

fn network_refused(message: &str) -> bool {
    message.contains("403 Forbidden") && !message.contains("oauth2/token")
}

fn not_found(message: &str) -> bool {
    message.contains("code = NotFound") || message.ends_with(": not found")
}

/// Runs the layer over the earlier layers' checks.
pub(crate) async fn run<K: Kubernetes>(
    config: &Config,
    fleet: &Fleet,
    pairs: &[Pair<'_>],
    mut checks: Vec<(usize, Check)>,
    kube: &K,
    options: &Options,
) -> Vec<(usize, Check)> {
    let (probes, unprobed) = probes(config, fleet, pairs, &checks, options);
    let mut clusters: Vec<ClusterTarget> = probes.iter().map(|p| p.cluster.clone()).collect();
    clusters.sort();
    clusters.dedup();
    clean_leftovers(kube, &clusters).await;
    let mut results = Vec::new();
    for chunk in probes.chunks(options.parallelism.max(1)) {
        let runs = chunk.iter().map(|probe| {
            let azure_ok = probe.checks.iter().all(|&i| checks[i].1.verdict != Verdict::Fail);
            async move { run_probe(kube, probe, azure_ok, options).await }
        });
        results.extend(chunk.iter().zip(join_all(runs).await));
    }
    for (probe, found) in results {
        for &position in &probe.checks {
            judge(&mut checks[position].1, &probe.pod, &found);
        }
    }
    for (position, why) in unprobed {
        checks[position].1.notes.push(why);
    }
    checks
}

fn judge(check: &mut Check, pod: &ProbePod, found: &Result<Found, String>) {
    let image = &pod.image;
    let found = match found {
        Ok(found) => found,
        Err(error) => {
            return check.fail(
                Layer::Pod,
                Cause::Unreachable,
                format!("cannot run a probe pod on cluster {}: {error}", check.cluster),
                "check that acrlink may create, watch and delete pods in the namespace (kubectl auth can-i create pods)".into(),
            );
        }
    };
    if found.stopped {
        return check.skip(Layer::Pod, "verify was interrupted before the probe pod pulled".into(), None);
    }
    match &found.outcome {
        PullOutcome::Pulled => {
            check.ok(Layer::Pod, format!("the kubelet pulled {image}"));
            if let Some(after) = found.late {
                check.notes.push(format!(
                    "not yet propagated at first: the kubelet was refused, then pulled after {} s",
                    after.as_secs()
                ));
            }
        }
        PullOutcome::Pending => check.fail(
            Layer::Pod,
            Cause::Unreachable,
            format!("the probe pod did not pull {image} within the timeout"),
            "raise --timeout, or look at the pod's events: the node may not be ready".into(),
        ),
        PullOutcome::Failed { reason, message } => failed(check, image, reason, message),
    }
}

fn failed(check: &mut Check, image: &str, reason: &str, message: &str) {
    let said = format!("the kubelet could not pull {image} ({reason}): {message}");
    if not_found(message) {
        return check.fail(
            Layer::Pod,
            Cause::ImageNotFound,
            said,
            format!("set verify.image of registry {} (or --image) to an image that exists", check.registry),
        );
    }
    if network_refused(message) {
        return check.fail(
            Layer::Pod,
            Cause::Network,
            said,
            "open the registry's network to the cluster: approve a private endpoint in its virtual network, or allow its egress".into(),
        );
    }
    match (check.verdict, check.cause, check.hint.clone()) {
        // The Azure or registry layer already knew why: keep its cause and hint.
        (Verdict::Fail, Some(cause), Some(hint)) => check.fail(Layer::Pod, cause, said, hint),
        _ if refused(message) => check.fail(
            Layer::Pod,
            Cause::Propagation,
            format!("{said}; the grant exists but has not reached the registry yet"),
            "role assignments take up to 30 minutes to propagate: run verify again later, or with a longer --timeout"
                .into(),
        ),
        _ => check.fail(Layer::Pod, Cause::Unreachable, said, "look at the probe pod's events".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_name_their_repository_and_registry() {
        assert_eq!(image_repository("acr.azurecr.io/base/nginx:1.27"), "base/nginx");
        assert_eq!(image_repository("acr.azurecr.io/base/nginx@sha256:abc"), "base/nginx");
        assert_eq!(image_repository("localhost:5000/app"), "app");
        let login = "acr.azurecr.io";
        assert_eq!(image_for(login, Some("base/nginx:1"), None).as_deref(), Some("acr.azurecr.io/base/nginx:1"));
        assert_eq!(image_for(login, Some("other.azurecr.io/x:1"), Some("y:2")).as_deref(), Some("acr.azurecr.io/y:2"));
        assert_eq!(image_for(login, None, None), None);
    }
}
