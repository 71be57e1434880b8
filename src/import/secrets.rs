//! `--pull-secrets`: the `kubernetes.io/dockerconfigjson` Secrets of the clusters in scope and
//! the ServiceAccounts naming them, read through AKS credentials as plan reads them (two lists
//! per cluster), and each registry's tokens and scope maps. A Secret's payload is opened only to
//! learn, per registry, which kind of credential it holds and under which user name (a registry
//! name, a token name or an application id, none of them secret); its password never leaves
//! `classify`, and nothing here keeps or writes one.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use super::layout::Keys;
use super::{ImportError, Live};
use crate::kinds::dockerconfig;
use crate::model::{CredentialKind, Finding};
use crate::observe::objects::kube_problem;
use crate::ownership;
use crate::provider::kubernetes::{CREDENTIALS_ANNOTATION, ClusterTarget, Kubernetes, LiveSecret, LiveServiceAccount};
use crate::provider::{Azure, LiveScopeMap, LiveToken};

/// How many clusters are read at once (as plan reads them).
const CLUSTER_CONCURRENCY: usize = 16;

/// What one cluster holds: its pull Secrets, told apart, and who names them.
#[derive(Debug, Clone, Default)]
pub struct ClusterSecrets {
    pub secrets: Vec<FoundSecret>,
}

/// One registry credential in a Secret, without its password.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Held {
    Admin,
    /// An ACR token, by name.
    Token(String),
    /// An application (client) id.
    ServicePrincipal(String),
    /// An Entra refresh token (`az acr login --expose-token`, user 00000000-…): expires within hours.
    EntraToken,
    /// A user of a registry that is not in scope (or not in Azure), by name.
    User(String),
}

/// One entry of a Secret's `auths`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FoundEntry {
    pub login_server: String,
    /// The registry in scope with this login server, by index into `Live::registries`.
    pub registry: Option<usize>,
    pub held: Held,
}

/// A pull Secret of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FoundSecret {
    pub cluster: usize,
    pub namespace: String,
    pub name: String,
    /// The acrlink owner that made it, or None for a Secret made outside acrlink.
    pub owner: Option<String>,
    pub entries: Vec<FoundEntry>,
    /// ServiceAccounts of its namespace whose `imagePullSecrets` name it.
    pub service_accounts: Vec<String>,
}

/// Everything `--pull-secrets` reads.
#[derive(Debug, Clone, Default)]
pub struct SecretsLive {
    pub secrets: Vec<FoundSecret>,
    /// By registry index.
    pub tokens: BTreeMap<usize, Vec<LiveToken>>,
    pub scope_maps: BTreeMap<usize, Vec<LiveScopeMap>>,
    /// Clusters whose Secrets could not be read, with why: as plan does for clusters no
    /// binding targets, they are reported, not fatal (an Azure RBAC cluster may refuse lists).
    pub unreadable: Vec<Finding>,
}

/// Reads every cluster's pull Secrets and ServiceAccounts, and every registry's tokens and
/// scope maps. An unreadable registry fails the import (a file missing its tokens' bindings
/// would have plan prune them); an unreadable cluster is reported in the file.
pub async fn read<A: Azure, K: Kubernetes>(
    live: &Live,
    keys: &Keys,
    azure: &A,
    kube: &K,
) -> Result<SecretsLive, ImportError> {
    let targets =
        live.clusters.iter().zip(&keys.clusters).enumerate().map(|(i, (cluster, key))| {
            (i, ClusterTarget { key: key.clone(), id: cluster.id.clone(), kube_context: None })
        });
    let read = futures::stream::iter(targets.map(|(i, target)| async move {
        // Both answers, then the first failure in a fixed order: the file names one reason, the
        // same on every run, whichever list failed first.
        let (secrets, accounts) = futures::join!(kube.pull_secrets(&target), kube.service_accounts(&target));
        (i, target, secrets.and_then(|secrets| Ok((secrets, accounts?))))
    }))
    .buffer_unordered(CLUSTER_CONCURRENCY)
    .collect::<Vec<_>>();
    let registries = futures::future::join_all(live.registries.iter().enumerate().map(|(j, registry)| async move {
        let (tokens, maps) = futures::join!(azure.list_tokens(&registry.id), azure.list_scope_maps(&registry.id));
        (j, tokens, maps)
    }));
    let (clusters, registries) = futures::join!(read, registries);
    let mut problems: Vec<Finding> = Vec::new();
    let mut found = SecretsLive::default();
    for (i, target, listed) in clusters {
        match listed {
            Ok((secrets, accounts)) => found.secrets.extend(classify(live, i, &secrets, &accounts)),
            Err(e) => found.unreadable.push(kube_problem(&target, &e)),
        }
    }
    found.unreadable.sort();
    for (j, tokens, maps) in registries {
        let what = |kind: &str| format!("{kind} of registry {}", keys.registries[j]);
        match (tokens, maps) {
            (Ok(tokens), Ok(maps)) => {
                found.tokens.insert(j, tokens);
                found.scope_maps.insert(j, maps);
            }
            (Err(e), _) => problems.push(Finding {
                subject: what("tokens"),
                message: format!("cannot read {}: {e}", what("tokens")),
                hint: None,
            }),
            (_, Err(e)) => problems.push(Finding {
                subject: what("scope maps"),
                message: format!("cannot read {}: {e}", what("scope maps")),
                hint: None,
            }),
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(ImportError::Incomplete(problems));
    }
    found.secrets.sort();
    Ok(found)
}

/// Each Secret's registries and credential kinds, and the ServiceAccounts naming it.
fn classify(live: &Live, cluster: usize, secrets: &[LiveSecret], accounts: &[LiveServiceAccount]) -> Vec<FoundSecret> {
    let by_login: BTreeMap<String, usize> =
        live.registries.iter().enumerate().map(|(j, r)| (r.login_server.to_ascii_lowercase(), j)).collect();
    let mut naming: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
    for account in accounts {
        for secret in account.image_pull_secrets.iter().flatten() {
            naming.entry((&account.namespace, secret)).or_default().insert(account.name.clone());
        }
    }
    secrets
        .iter()
        .map(|secret| {
            let managed =
                secret.labels.get(ownership::MANAGED_BY_LABEL).is_some_and(|v| v == ownership::MANAGED_BY_VALUE);
            let owner =
                managed.then(|| secret.labels.get(ownership::OWNER_LABEL).cloned().unwrap_or_else(|| "default".into()));
            let notes = dockerconfig::parse_notes(secret.annotations.get(CREDENTIALS_ANNOTATION));
            let users: BTreeMap<String, String> = secret
                .docker_config
                .as_ref()
                .map(|payload| dockerconfig::parse(payload).into_iter().map(|(login, c)| (login, c.username)).collect())
                .unwrap_or_default();
            let entries = users
                .into_iter()
                .map(|(login, user)| {
                    let registry = by_login.get(&login).copied();
                    let note = notes.get(&login).filter(|_| managed);
                    let held = held(note, &user, registry.map(|j| live.registries[j].name.as_str()));
                    FoundEntry { login_server: login, registry, held }
                })
                .collect();
            let service_accounts = naming
                .get(&(secret.namespace.as_str(), secret.name.as_str()))
                .map(|names| names.iter().cloned().collect())
                .unwrap_or_default();
            FoundSecret {
                cluster,
                namespace: secret.namespace.clone(),
                name: secret.name.clone(),
                owner,
                entries,
                service_accounts,
            }
        })
        .collect()
}

/// The kind of credential a user name stands for: acrlink's note when it made the Secret, else
/// ACR's conventions (the admin user is the registry's name; a service principal signs in with
/// its application id; Entra tokens with the null GUID; anything else is a token's name).
fn held(note: Option<&dockerconfig::CredentialNote>, user: &str, registry_name: Option<&str>) -> Held {
    const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
    match note.map(|n| (n.kind, n.token.clone())) {
        Some((CredentialKind::Admin, _)) => return Held::Admin,
        Some((CredentialKind::RegistryToken, token)) => return Held::Token(token.unwrap_or_else(|| user.to_string())),
        Some((CredentialKind::ServicePrincipal, _)) => return Held::ServicePrincipal(user.to_string()),
        None => {}
    }
    let Some(registry_name) = registry_name else { return Held::User(user.to_string()) };
    if registry_name.eq_ignore_ascii_case(user) {
        Held::Admin
    } else if user == NULL_GUID {
        Held::EntraToken
    } else if crate::config::names::guid(user).is_ok() {
        Held::ServicePrincipal(user.to_string())
    } else {
        Held::Token(user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_kinds_follow_acrlink_notes_then_acr_conventions() {
        let note = dockerconfig::CredentialNote::new(CredentialKind::Admin, "anyone", "f".into());
        assert_eq!(held(Some(&note), "anyone", Some("acr1")), Held::Admin);
        assert_eq!(held(None, "ACR1", Some("acr1")), Held::Admin);
        let app = "6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11";
        assert_eq!(held(None, app, Some("acr1")), Held::ServicePrincipal(app.into()));
        assert_eq!(held(None, "00000000-0000-0000-0000-000000000000", Some("acr1")), Held::EntraToken);
        assert_eq!(held(None, "ci-pull", Some("acr1")), Held::Token("ci-pull".into()));
        assert_eq!(held(None, "bot", None), Held::User("bot".into()));
    }
}
