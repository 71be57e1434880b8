//! `acrlink verify`: can each bound cluster pull what the file says it may, and if not, why?
//! One verdict per (cluster, registry, repository[, namespace]) from up to three layers: the
//! Azure layer (`azure`: identities, effective grants decided from role definitions, ABAC
//! conditions, registry policies and network settings; no cluster access), the registry layer
//! (`registry`: pull-secret credentials exchanged at the registry's token endpoint) and the pod
//! layer (`pod`: a probe pod the kubelet really pulls, deleted afterwards). Writes nothing but
//! its probe pods; renders nothing (`render::verify`).

pub mod azure;
pub mod pod;
pub mod registry;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::model::{Binding, ClusterSelector, Config, CredentialSource, Method, Namespaces};
use crate::methods::managed_identity::select_clusters;
use crate::model::Finding;
use crate::observe::{self, FleetCluster, Inventory};
use crate::provider::kubernetes::Kubernetes;
use crate::provider::registry::RegistryTokens;
use crate::provider::{Azure, LiveRoleAssignment};

/// The version of the JSON report (`schemas/verify.schema.json`).
pub const VERIFY_FORMAT_VERSION: u32 = 1;

/// How deep verify looks: each layer includes those above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// Azure only: identities, grants, registry policies and network settings.
    Azure,
    /// Also pull-secret credentials, exchanged at each registry's token endpoint.
    Registry,
    /// Also a probe pod per cluster and registry (and namespace) that the kubelet pulls.
    Pod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    Fail,
    Skipped,
}

/// Why a cluster cannot pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The cluster has no kubelet identity, or it is not the grants' principal.
    Identity,
    /// No role assignment whose role definition carries pull covers the registry.
    Rbac,
    /// Grants exist, but their ABAC conditions leave the repository out.
    AbacCondition,
    /// A registry setting refuses the credential (ARM-audience tokens, admin user).
    RegistryPolicy,
    /// The registry's network is closed to the cluster.
    Network,
    /// The pull Secret's credentials are missing, dead or too narrow.
    Credential,
    /// The grant exists but has not propagated yet.
    Propagation,
    /// The registry has no such repository or tag.
    ImageNotFound,
    /// A cluster or registry could not be reached to check.
    Unreachable,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Identity => "identity",
            Cause::Rbac => "rbac",
            Cause::AbacCondition => "abac-condition",
            Cause::RegistryPolicy => "registry-policy",
            Cause::Network => "network",
            Cause::Credential => "credential",
            Cause::Propagation => "propagation",
            Cause::ImageNotFound => "image-not-found",
            Cause::Unreachable => "unreachable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BindingMethod {
    ManagedIdentity,
    PullSecret,
}

/// One verdict: whether `cluster` can pull `repository` (all of them when absent) from
/// `registry` (in `namespace`, for pull-secret bindings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Check {
    pub cluster: String,
    pub registry: String,
    /// A repository or pattern the binding names; absent: the whole registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// For pull-secret bindings: the namespace whose Secret was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub binding: String,
    pub method: BindingMethod,
    pub verdict: Verdict,
    /// The deepest layer that decided the verdict.
    pub layer: Layer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// What was found, in a sentence.
    pub message: String,
    /// What to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What else is worth knowing (private endpoints, layers not run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Check {
    fn decide(&mut self, layer: Layer, verdict: Verdict, cause: Option<Cause>, message: String, hint: Option<String>) {
        self.layer = layer;
        self.verdict = verdict;
        self.cause = cause;
        self.message = message;
        self.hint = hint;
    }

    pub(crate) fn fail(&mut self, layer: Layer, cause: Cause, message: String, hint: String) {
        self.decide(layer, Verdict::Fail, Some(cause), message, Some(hint));
    }

    pub(crate) fn ok(&mut self, layer: Layer, message: String) {
        self.decide(layer, Verdict::Ok, None, message, None);
    }

    pub(crate) fn skip(&mut self, layer: Layer, message: String, hint: Option<String>) {
        self.decide(layer, Verdict::Skipped, None, message, hint);
    }

    pub fn failed(&self) -> bool {
        self.verdict == Verdict::Fail
    }

    /// Whether a deeper layer has something to check: the Azure layer found nothing wrong.
    pub(crate) fn open(&self) -> bool {
        self.verdict == Verdict::Ok || (self.verdict == Verdict::Skipped && self.layer == Layer::Azure)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    pub ok: usize,
    pub fail: usize,
    pub skipped: usize,
}

/// Everything verify found. Exit 0 when nothing failed and there are no errors, 2 when a check
/// failed, 1 on errors (the fleet could not be read).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub format_version: u32,
    pub acrlink_version: String,
    pub config_path: String,
    /// The deepest layer asked for (`--probe`).
    pub probe: Layer,
    pub summary: Summary,
    /// Sorted by cluster, registry, repository, namespace.
    pub checks: Vec<Check>,
    /// Problems that kept verify from checking (unreadable fleet, missing resources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Finding>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Options {
    pub probe: Layer,
    /// Only clusters this selects (`--clusters`).
    pub clusters: Option<ClusterSelector>,
    pub parallelism: usize,
    /// How long the pod layer waits for a pull, role-propagation retries included.
    pub timeout: std::time::Duration,
    /// The probe image (`--image`): on one registry, or a repository:tag looked up on each.
    pub image: Option<String>,
    /// Set on Ctrl-C or SIGTERM: probes stop and their pods are deleted.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// One (binding, cluster, registry) the file asks for, with its repositories.
pub(crate) struct Pair<'a> {
    pub binding: &'a Binding,
    pub cluster: &'a FleetCluster,
    pub registry: String,
}

/// What the Azure layer reads: the fleet and every role assignment at, above and below each
/// registry (the same reads as `plan`).
pub(crate) struct Fleet {
    pub inventory: Inventory,
    pub assignments: BTreeMap<String, Vec<LiveRoleAssignment>>,
}

async fn fleet<A: Azure>(config: &Config, azure: &A, errors: &mut Vec<Finding>) -> Fleet {
    let registries_then_assignments = async {
        let (registries, mut problems) = observe::registries(config, azure).await;
        let (assignments, more) = observe::role_assignments(&registries, azure).await;
        problems.extend(more);
        (registries, assignments, problems)
    };
    let ((clusters, problems), (registries, assignments, more)) =
        tokio::join!(observe::clusters(config, azure), registries_then_assignments);
    errors.extend(problems.into_iter().chain(more));
    Fleet { inventory: Inventory { clusters, registries, problems: Vec::new() }, assignments }
}

/// Every (binding, cluster, registry) of the file, among the clusters `selector` keeps.
fn pairs<'a>(config: &'a Config, inventory: &'a Inventory, selector: Option<&ClusterSelector>) -> Vec<Pair<'a>> {
    let mut pairs = Vec::new();
    for binding in &config.bindings {
        for cluster in select_clusters(binding, inventory) {
            if selector.is_some_and(|s| !s.matches(&cluster.key, &cluster.labels)) {
                continue;
            }
            for registry in &binding.registries {
                if inventory.registries.contains_key(registry) {
                    pairs.push(Pair { binding, cluster, registry: registry.clone() });
                }
            }
        }
    }
    pairs
}

/// The checks of one pair, undecided: one per repository (or the whole registry), and for
/// pull-secret bindings with listed namespaces one per namespace (others are found in the
/// cluster by the registry layer).
fn checks_of(pair: &Pair<'_>) -> Vec<Check> {
    let repositories: Vec<Option<String>> = if pair.binding.repositories.is_empty() {
        vec![None]
    } else {
        pair.binding.repositories.iter().cloned().map(Some).collect()
    };
    let (method, namespaces) = match &pair.binding.method {
        Method::ManagedIdentity => (BindingMethod::ManagedIdentity, vec![None]),
        Method::PullSecret(pull) => match &pull.namespaces {
            Namespaces::Listed(names) => (BindingMethod::PullSecret, names.iter().cloned().map(Some).collect()),
            Namespaces::All { .. } | Namespaces::Selector(_) => (BindingMethod::PullSecret, vec![None]),
        },
    };
    let mut checks = Vec::new();
    for repository in &repositories {
        for namespace in &namespaces {
            checks.push(Check {
                cluster: pair.cluster.key.clone(),
                registry: pair.registry.clone(),
                repository: repository.clone(),
                namespace: namespace.clone(),
                binding: pair.binding.name.clone(),
                method,
                verdict: Verdict::Skipped,
                layer: Layer::Azure,
                cause: None,
                message: String::new(),
                hint: None,
                notes: Vec::new(),
            });
        }
    }
    checks
}

pub(crate) fn credential_of(binding: &Binding) -> Option<&CredentialSource> {
    match &binding.method {
        Method::PullSecret(pull) => Some(&pull.credential),
        Method::ManagedIdentity => None,
    }
}

/// Runs the layers up to `options.probe` and reports.
pub async fn verify<A: Azure, K: Kubernetes, R: RegistryTokens>(
    config: &Config,
    azure: &A,
    kube: &K,
    registries: &R,
    options: &Options,
) -> Report {
    let mut errors = Vec::new();
    let fleet = fleet(config, azure, &mut errors).await;
    let pairs = pairs(config, &fleet.inventory, options.clusters.as_ref());
    let mut decided: Vec<(usize, Check)> = Vec::new();
    let roles = azure::role_definitions(&fleet, &pairs, azure, &mut errors).await;
    let tokens = azure::tokens(&fleet, &pairs, azure, &mut errors).await;
    let facts = azure::Facts { fleet: &fleet, roles: &roles, tokens: &tokens, owner: &config.owner };
    for (index, pair) in pairs.iter().enumerate() {
        for mut check in checks_of(pair) {
            azure::decide(&facts, pair, &mut check);
            decided.push((index, check));
        }
    }
    if options.probe >= Layer::Registry {
        decided = registry::run(config, &fleet, &pairs, decided, kube, registries, options).await;
    }
    if options.probe >= Layer::Pod {
        decided = pod::run(config, &fleet, &pairs, decided, kube, options).await;
    }
    report(config, options.probe, decided.into_iter().map(|(_, c)| c).collect(), errors)
}

fn report(config: &Config, probe: Layer, mut checks: Vec<Check>, mut errors: Vec<Finding>) -> Report {
    checks.sort_by(|a, b| {
        (&a.cluster, &a.registry, &a.repository, &a.namespace, &a.binding).cmp(&(
            &b.cluster,
            &b.registry,
            &b.repository,
            &b.namespace,
            &b.binding,
        ))
    });
    errors.sort();
    errors.dedup();
    let count = |verdict| checks.iter().filter(|c| c.verdict == verdict).count();
    let summary = Summary { ok: count(Verdict::Ok), fail: count(Verdict::Fail), skipped: count(Verdict::Skipped) };
    Report {
        format_version: VERIFY_FORMAT_VERSION,
        acrlink_version: env!("CARGO_PKG_VERSION").to_string(),
        config_path: config.path.display().to_string(),
        probe,
        summary,
        checks,
        errors,
    }
}
