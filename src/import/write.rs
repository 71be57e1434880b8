//! The imported file as text: the file's own entry types (`config::raw`) serialized, under a header
//! saying when, from where and by what it was imported, and a comment listing what the file
//! cannot express. TOML and YAML share the comment syntax, so both carry the same header.

use std::collections::BTreeMap;

use super::grants::{Grants, Unexpressed};
use super::layout::{Binding, Keys};
use super::{Live, Scope};
use crate::config::raw::{Cloud, RawAzure, RawBinding, RawCluster, RawRegistry};

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

/// Everything the file is made of.
pub struct Imported<'a> {
    pub live: &'a Live,
    pub keys: &'a Keys,
    pub grants: &'a Grants,
    pub bindings: &'a [Binding],
}

/// The file's text.
pub fn file(imported: &Imported<'_>, header: &Header<'_>, format: Format) -> Result<String, WriteError> {
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

fn raw_config(imported: &Imported<'_>) -> File {
    let Imported { live, keys, grants, bindings } = imported;
    let subscription = default_subscription(imported);
    let other =
        |id: &str| (!id.eq_ignore_ascii_case(subscription.as_deref().unwrap_or_default())).then(|| id.to_string());
    let mut registries = BTreeMap::new();
    let mut clusters = BTreeMap::new();
    for pair in &grants.pairs {
        let registry = &live.registries[pair.registry];
        let key = &keys.registries[pair.registry];
        registries.entry(key.clone()).or_insert_with(|| RawRegistry {
            name: (key != &registry.name).then(|| registry.name.clone()),
            resource_group: registry.resource_group.clone(),
            subscription_id: other(&registry.subscription_id),
        });
        let cluster = &live.clusters[pair.cluster];
        let key = &keys.clusters[pair.cluster];
        clusters.entry(key.clone()).or_insert_with(|| RawCluster {
            name: (key != &cluster.name).then(|| cluster.name.clone()),
            resource_group: cluster.resource_group.clone(),
            subscription_id: other(&cluster.subscription_id),
            labels: BTreeMap::new(),
            kube_context: None,
        });
    }
    File {
        version: 1,
        owner: (!grants.owner.is_default()).then(|| grants.owner.name().to_string()),
        azure: RawAzure { cloud: Cloud::AzureCloud, tenant_id: None, subscription_id: subscription },
        registries,
        clusters,
        bindings: bindings.iter().map(raw_binding).collect(),
    }
}

/// The subscription most bound clusters and registries are in (the smaller id among equals).
fn default_subscription(imported: &Imported<'_>) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for pair in &imported.grants.pairs {
        for id in [
            &imported.live.registries[pair.registry].subscription_id,
            &imported.live.clusters[pair.cluster].subscription_id,
        ] {
            *counts.entry(id.to_ascii_lowercase()).or_default() += 1;
        }
    }
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0))).map(|(id, _)| id)
}

fn raw_binding(binding: &Binding) -> RawBinding {
    RawBinding {
        name: Some(binding.name.clone()),
        clusters: binding.clusters.clone(),
        registries: binding.registries.clone(),
        method: None,
        repositories: (!binding.repositories.is_empty()).then(|| binding.repositories.clone()),
        credential: None,
        namespaces: None,
        exclude_namespaces: None,
        namespace_selector: None,
        secret_name: None,
        service_accounts: None,
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
fn comments(imported: &Imported<'_>, header: &Header<'_>, format: Format) -> String {
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
        Unexpressed::PlanWould { address, action, reason } => {
            format!("{address}: acrlink plan would {action} it: {reason}")
        }
    }
}
