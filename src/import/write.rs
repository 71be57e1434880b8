//! The imported file as text: the file's own entry types (`config::raw`) serialized, under a header
//! saying when, from where and by what it was imported, and a comment listing what the file
//! cannot express. TOML and YAML share the comment syntax, so both carry the same header.

use std::collections::BTreeMap;

use super::grants::{SecretWhy, Unexpressed};
use super::layout::Binding;
use super::{Outcome, Scope};
use crate::config::model::DEFAULT_SECRET_NAME;
use crate::config::raw::{Cloud, Credential, Method, RawAzure, RawBinding, RawCluster, RawRegistry};
use crate::model::CredentialKind;

/// The file format `--format` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

/// Where and when: the header's facts, given by the caller (the clock is the CLI's).
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// `acrlink --version`'s text.
    pub version: &'a str,
    /// RFC 3339, UTC.
    pub imported_at: &'a str,
    pub scope: &'a Scope,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the imported file as {format}: {message}")]
pub struct WriteError {
    format: &'static str,
    message: String,
}

/// The file's text.
pub fn file(imported: &Outcome, header: &Header<'_>, format: Format) -> Result<String, WriteError> {
    let raw = raw_config(imported);
    let body = match format {
        Format::Toml => toml::to_string(&raw).map_err(|e| WriteError { format: "TOML", message: e.to_string() })?,
        Format::Yaml => {
            serde_saphyr::to_string(&raw).map_err(|e| WriteError { format: "YAML", message: e.to_string() })?
        }
    };
    Ok(format!("{}\n{body}", comments(imported, header, format)))
}

/// The file's top level in the file's own order, leaving out what it does not use (the file's
/// `RawConfig` writes every list, `cluster_sets = []` included).
#[derive(serde::Serialize)]
struct File {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    azure: RawAzure,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    registries: BTreeMap<String, RawRegistry>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    clusters: BTreeMap<String, RawCluster>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bindings: Vec<RawBinding>,
}

fn raw_config(imported: &Outcome) -> File {
    let Outcome { live, keys, grants, bindings, .. } = imported;
    let subscription = default_subscription(imported);
    let other =
        |id: &str| (!id.eq_ignore_ascii_case(subscription.as_deref().unwrap_or_default())).then(|| id.to_string());
    let registries = imported
        .registries
        .iter()
        .map(|&j| {
            let (registry, key) = (&live.registries[j], &keys.registries[j]);
            let raw = RawRegistry {
                name: (key != &registry.name).then(|| registry.name.clone()),
                resource_group: registry.resource_group.clone(),
                subscription_id: other(&registry.subscription_id),
                // No probe image is known from live state; verify --image supplies one.
                verify: None,
            };
            (key.clone(), raw)
        })
        .collect();
    let clusters = imported
        .clusters
        .iter()
        .map(|&i| {
            let (cluster, key) = (&live.clusters[i], &keys.clusters[i]);
            let raw = RawCluster {
                name: (key != &cluster.name).then(|| cluster.name.clone()),
                resource_group: cluster.resource_group.clone(),
                subscription_id: other(&cluster.subscription_id),
                labels: Default::default(),
                kube_context: None,
            };
            (key.clone(), raw)
        })
        .collect();
    File {
        version: 1,
        owner: (!grants.owner.is_default()).then(|| grants.owner.name().to_string()),
        azure: RawAzure { cloud: Cloud::AzureCloud, tenant_id: None, subscription_id: subscription },
        registries,
        clusters,
        bindings: bindings.iter().map(raw_binding).collect(),
    }
}

/// The subscription most of the file's clusters and registries are in (the smaller id among equals).
fn default_subscription(imported: &Outcome) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let registries = imported.registries.iter().map(|&j| &imported.live.registries[j].subscription_id);
    let clusters = imported.clusters.iter().map(|&i| &imported.live.clusters[i].subscription_id);
    for id in registries.chain(clusters) {
        *counts.entry(id.to_ascii_lowercase()).or_default() += 1;
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0))).map(|(id, _)| id)
}

fn raw_binding(binding: &Binding) -> RawBinding {
    let pull = binding.pull_secret.as_ref();
    let listed = |items: &[String]| (!items.is_empty()).then(|| items.to_vec());
    RawBinding {
        name: Some(binding.name.clone()),
        clusters: binding.clusters.clone(),
        registries: binding.registries.clone(),
        method: pull.map(|_| Method::PullSecret),
        repositories: listed(&binding.repositories),
        credential: pull.map(|p| match p.credential {
            CredentialKind::Admin => Credential::Admin,
            CredentialKind::RegistryToken => Credential::RegistryToken,
            CredentialKind::ServicePrincipal => Credential::ServicePrincipal,
        }),
        namespaces: pull.map(|p| p.namespaces.clone()),
        exclude_namespaces: None,
        namespace_selector: None,
        secret_name: pull.filter(|p| p.secret_name != DEFAULT_SECRET_NAME).map(|p| p.secret_name.clone()),
        service_accounts: pull.and_then(|p| listed(&p.service_accounts)),
        token_ttl: None,
        rotate_before: None,
        adopt: None,
        create_namespaces: None,
        client_id: None,
        client_secret_env: None,
        client_secret_file: None,
        principal_object_id: None,
    }
}

/// The schema line, the header and the list of what was not imported.
fn comments(imported: &Outcome, header: &Header<'_>, format: Format) -> String {
    let mut lines = vec![
        match format {
            Format::Toml => "#:schema ./schemas/acrlink.schema.json".to_string(),
            Format::Yaml => "# yaml-language-server: $schema=./schemas/acrlink.schema.json".to_string(),
        },
        format!("# Imported by `acrlink import` (acrlink {}) at {}", header.version, header.imported_at),
        format!("# from {}.", scope_words(header.scope)),
        format!(
            "# {} cluster(s) and {} registr{} in scope; {} cluster-registry pair(s) bound.",
            imported.live.clusters.len(),
            imported.live.registries.len(),
            if imported.live.registries.len() == 1 { "y" } else { "ies" },
            imported.grants.pairs.len()
        ),
    ];
    if !imported.grants.unexpressed.is_empty() {
        lines.push("#".into());
        lines.push("# Not imported: acrlink cannot express these, and no binding below stands for them.".into());
        lines.extend(imported.grants.unexpressed.iter().map(|u| format!("# - {}", describe(u))));
    }
    lines.join("\n") + "\n"
}

fn scope_words(scope: &Scope) -> String {
    let mut words = format!("subscription(s) {}", listed(&scope.subscriptions));
    if !scope.resource_groups.is_empty() {
        words.push_str(&format!(", resource group(s) {}", listed(&scope.resource_groups)));
    }
    if !scope.tags.is_empty() {
        let tags: Vec<String> = scope.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        words.push_str(&format!(", clusters tagged {}", tags.join(", ")));
    }
    words
}

/// Up to five names, then how many more.
fn listed(items: &[String]) -> String {
    let mut sorted = items.to_vec();
    sorted.sort();
    match sorted.len() {
        0..=5 => sorted.join(", "),
        n => format!("{} and {} more", sorted[..5].join(", "), n - 5),
    }
}

/// One thing the file cannot express, in words (the file's comments and the CLI's warnings).
pub fn describe(unexpressed: &Unexpressed) -> String {
    match unexpressed {
        Unexpressed::NotAKubelet { id, role, principal, scope, registries } => format!(
            "{role} for principal {principal} at {scope} (lets it pull from {}): not the kubelet identity of a cluster in scope ({id})",
            registries.join(", ")
        ),
        Unexpressed::NoPull { id, role, cluster, registry, abac } => {
            let why = if *abac {
                "the registry uses ABAC repository permissions, where this role does not let pull"
            } else {
                "acrlink does not count this role as letting pull"
            };
            format!("{role} for cluster {cluster} on registry {registry}: {why} ({id})")
        }
        Unexpressed::OtherCondition { id, cluster, registry } => format!(
            "cluster {cluster} on registry {registry}: a repository condition acrlink did not write and cannot read back ({id})"
        ),
        Unexpressed::ConditionWithoutAbac { id, cluster, registry } => format!(
            "cluster {cluster} on registry {registry}: a repository condition on a registry not in ABAC mode ({id})"
        ),
        Unexpressed::Secret { cluster, namespace, name, holds, why } => {
            format!("Secret {namespace}/{name} in cluster {cluster}, holding {}: {}", holds.join(", "), secret_why(why))
        }
        Unexpressed::Unreadable { message, .. } => {
            format!("{message}: its pull Secrets are not in this file")
        }
        Unexpressed::PlanWould { address, action, reason } => {
            format!("{address}: acrlink plan would {action} it: {reason}")
        }
    }
}

fn secret_why(why: &SecretWhy) -> String {
    match why {
        SecretWhy::MadeOutside => {
            "made outside acrlink; a binding of its name would be blocked (adopt = true takes it over)".into()
        }
        SecretWhy::OtherOwner(owner) => format!("made by acrlink owner {owner}'s file"),
        SecretWhy::NotInScope => "a registry that is not in scope (or not an Azure registry)".into(),
        SecretWhy::ServicePrincipal => {
            "a service principal's; a binding must say where its secret is read (client_secret_env or client_secret_file)".into()
        }
        SecretWhy::EntraToken => "an Entra token (az acr login --expose-token), which expires within hours".into(),
        SecretWhy::TokenBindingUnknown => "a token whose binding acrlink cannot tell from its scope map".into(),
        SecretWhy::Uneven => "a token binding whose clusters differ in namespaces or registries".into(),
    }
}
