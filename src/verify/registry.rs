//! The registry layer, from where acrlink runs: for each pull-secret check the Azure layer let
//! through, the credential in the cluster's managed Secret (read into memory, never shown) is
//! exchanged at the registry's token endpoint for `repository:<repo>:pull`. One Secret list per
//! (cluster, secret name); one exchange per distinct (registry, user, password, repository).
//! acrlink cannot act as a kubelet identity: managed-identity checks keep the Azure layer's
//! verdict.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;

use super::{Cause, Check, Fleet, Layer, Options, Pair};
use crate::config::model::{Config, Method};
use crate::kinds::dockerconfig;
use crate::methods::pull_secret::target;
use crate::provider::kubernetes::{ClusterTarget, KubeError, Kubernetes, LiveSecret};
use crate::provider::registry::{Exchange, RegistryError, RegistryTokens};
use crate::sensitive::fingerprint;

/// The repository asked for when a check stands for a pattern or a whole registry: the token
/// service grants by scope map or role, so any name the pattern admits answers for all of them.
const PROBE_REPOSITORY: &str = "acrlink-verify";

pub(crate) fn repository_for(pattern: Option<&str>) -> String {
    match pattern {
        None => PROBE_REPOSITORY.to_string(),
        Some(p) => match p.strip_suffix('*') {
            Some(prefix) => format!("{prefix}{PROBE_REPOSITORY}"),
            None => p.to_string(),
        },
    }
}

type Secrets = BTreeMap<(ClusterTarget, String), Result<Vec<LiveSecret>, String>>;

/// Reads the Secrets every pull-secret pair needs, one list per (cluster, name).
async fn secrets<K: Kubernetes>(config: &Config, pairs: &[Pair<'_>], kube: &K, parallelism: usize) -> Secrets {
    let mut wanted = BTreeSet::new();
    for pair in pairs {
        if let Method::PullSecret(pull) = &pair.binding.method {
            wanted.insert((target(config, pair.cluster), pull.secret_name.clone()));
        }
    }
    let mut found = Secrets::new();
    let wanted: Vec<_> = wanted.into_iter().collect();
    for chunk in wanted.chunks(parallelism.max(1)) {
        let reads = chunk.iter().map(|(cluster, name)| async move {
            let read = kube.secrets_named(cluster, name).await.map_err(|e: KubeError| e.to_string());
            ((cluster.clone(), name.clone()), read)
        });
        found.extend(join_all(reads).await);
    }
    found
}

/// Runs the layer over the Azure layer's checks (each with the index of its pair).
pub(crate) async fn run<K: Kubernetes, R: RegistryTokens>(
    config: &Config,
    fleet: &Fleet,
    pairs: &[Pair<'_>],
    checks: Vec<(usize, Check)>,
    kube: &K,
    registries: &R,
    options: &Options,
) -> Vec<(usize, Check)> {
    let secrets = secrets(config, pairs, kube, options.parallelism).await;
    let mut expanded = Vec::new();
    for (index, check) in checks {
        let pair = &pairs[index];
        match &pair.binding.method {
            // The Azure layer's verdict stands (its `layer` says so).
            Method::ManagedIdentity => expanded.push((index, check)),
            Method::PullSecret(pull) => {
                let listed = secrets.get(&(target(config, pair.cluster), pull.secret_name.clone()));
                for check in per_namespace(check, listed, &pull.secret_name) {
                    expanded.push((index, check));
                }
            }
        }
    }
    exchange_all(fleet, expanded, &secrets, config, pairs, registries, options.parallelism).await
}

/// A check per namespace: listed namespaces are checked as they are; a binding over all (or
/// selected) namespaces is checked wherever its Secret is.
fn per_namespace(check: Check, listed: Option<&Result<Vec<LiveSecret>, String>>, name: &str) -> Vec<Check> {
    if check.namespace.is_some() || !check.open() {
        return vec![check];
    }
    let namespaces: Vec<String> = match listed {
        Some(Ok(secrets)) => secrets.iter().map(|s| s.namespace.clone()).collect(),
        _ => Vec::new(),
    };
    if namespaces.is_empty() {
        let mut check = check;
        if !matches!(listed, Some(Err(_))) {
            check.fail(
                Layer::Registry,
                Cause::Credential,
                format!("no Secret {name} exists in any namespace of cluster {}", check.cluster),
                "run `acrlink apply`: it writes the pull Secrets".into(),
            );
        }
        return vec![check];
    }
    namespaces.into_iter().map(|namespace| Check { namespace: Some(namespace), ..check.clone() }).collect()
}

/// Identifies one exchange: (login server, user, credential fingerprint, repository).
type Key = (String, String, String, String);
/// Why a check could not even ask: (cause, message, hint).
type Unasked = (Cause, String, String);
/// A check, with the index of its pair and what it asks of the registry (None: nothing).
type Pending = (usize, Check, Option<Result<Key, Unasked>>);

/// What one check exchanges: (login server, user, password) and the repository.
struct Ask {
    login_server: String,
    username: String,
    password: crate::sensitive::Sensitive<String>,
    repository: String,
}

impl Ask {
    fn key(&self) -> Key {
        (
            self.login_server.to_ascii_lowercase(),
            self.username.clone(),
            fingerprint(&self.login_server, &self.username, &self.password),
            self.repository.clone(),
        )
    }
}

/// The credential a check's Secret holds for its registry, or why there is none.
fn ask(check: &Check, fleet: &Fleet, secrets: &Secrets, config: &Config, pair: &Pair<'_>) -> Result<Ask, Unasked> {
    let Method::PullSecret(pull) = &pair.binding.method else {
        return Err((Cause::Credential, String::new(), String::new()));
    };
    let apply = "run `acrlink apply`: it writes the pull Secrets".to_string();
    let namespace = check.namespace.clone().unwrap_or_default();
    let listed = secrets.get(&(target(config, pair.cluster), pull.secret_name.clone()));
    let secret = match listed {
        Some(Ok(list)) => list.iter().find(|s| s.namespace == namespace),
        Some(Err(error)) => {
            return Err((
                Cause::Unreachable,
                format!("cannot read cluster {}: {error}", check.cluster),
                "check that acrlink may read Secrets there (az aks get-credentials; kubectl auth can-i list secrets)"
                    .into(),
            ));
        }
        None => None,
    };
    let name = &pull.secret_name;
    let Some(secret) = secret else {
        return Err((Cause::Credential, format!("Secret {namespace}/{name} does not exist"), apply));
    };
    let login = fleet.inventory.registries.get(&check.registry).map(|r| r.login_server.clone()).unwrap_or_default();
    let entries = secret.docker_config.as_ref().map(dockerconfig::parse).unwrap_or_default();
    let Some(credential) = entries.into_iter().find(|(server, _)| server.eq_ignore_ascii_case(&login)).map(|(_, c)| c)
    else {
        return Err((Cause::Credential, format!("Secret {namespace}/{name} holds no credential for {login}"), apply));
    };
    Ok(Ask {
        login_server: login,
        username: credential.username,
        password: credential.password,
        repository: repository_for(check.repository.as_deref()),
    })
}

async fn exchange_all<R: RegistryTokens>(
    fleet: &Fleet,
    checks: Vec<(usize, Check)>,
    secrets: &Secrets,
    config: &Config,
    pairs: &[Pair<'_>],
    registries: &R,
    parallelism: usize,
) -> Vec<(usize, Check)> {
    let mut asks = BTreeMap::new();
    let mut outcome: Vec<Pending> = Vec::new();
    for (index, check) in checks {
        let pending = check.method == super::BindingMethod::PullSecret && check.open();
        let asked = pending.then(|| ask(&check, fleet, secrets, config, &pairs[index]));
        let asked = asked.map(|a| {
            a.map(|ask| {
                let key = ask.key();
                asks.entry(key.clone()).or_insert(ask);
                key
            })
        });
        outcome.push((index, check, asked));
    }
    let asks: Vec<_> = asks.into_iter().collect();
    let mut answers = BTreeMap::new();
    for chunk in asks.chunks(parallelism.max(1)) {
        let exchanges = chunk.iter().map(|(key, ask)| async move {
            let answer = registries.pull_token(&ask.login_server, &ask.username, &ask.password, &ask.repository).await;
            (key.clone(), answer)
        });
        answers.extend(join_all(exchanges).await);
    }
    outcome
        .into_iter()
        .map(|(index, mut check, asked)| {
            match asked {
                None => {}
                Some(Err((cause, message, hint))) => check.fail(Layer::Registry, cause, message, hint),
                Some(Ok(key)) => judge(&mut check, &key.3, answers.get(&key)),
            }
            (index, check)
        })
        .collect()
}

fn judge(check: &mut Check, repository: &str, answer: Option<&Result<Exchange, RegistryError>>) {
    let apply = "run `acrlink apply`: it renews the credential and rewrites the pull Secrets".to_string();
    let registry = check.registry.clone();
    match answer {
        Some(Ok(Exchange::Granted)) => {
            check.ok(Layer::Registry, format!("the Secret's credential gets a pull token for {repository} from {registry}"))
        }
        Some(Ok(Exchange::Narrow)) => check.fail(
            Layer::Registry,
            Cause::Credential,
            format!("the Secret's credential is accepted by {registry} but may not pull {repository}: too narrow"),
            format!("widen the credential's scope to {repository}: add it to `repositories` of binding {:?} and run `acrlink apply`", check.binding),
        ),
        Some(Ok(Exchange::Refused { status })) => check.fail(
            Layer::Registry,
            Cause::Credential,
            format!("{registry} refused the Secret's credential ({status}): it is wrong, rotated, disabled or expired"),
            apply,
        ),
        Some(Err(error)) => check.fail(
            Layer::Registry,
            Cause::Unreachable,
            error.to_string(),
            "check the network path from here to the registry, then run verify again".into(),
        ),
        None => {}
    }
}
