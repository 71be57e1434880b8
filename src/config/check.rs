//! Semantic checks of a structurally valid file: names Azure and Kubernetes would reject,
//! references that resolve to nothing, contradictions between bindings, fields that do not
//! apply to a binding's method, inline secrets. Builds the validated `model::Config`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::diagnostic::{Collector, Diagnostic, FieldPath, Segment, did_you_mean};
use super::model::*;
use super::names;
use super::raw::{self, PartialConfig, RawBinding};
use super::reach::{ClusterIndex, Exhausted};
use super::source::{Entry, Node, NodeValue, Position};

/// Finds the position of a field path in the parsed tree, falling back to the nearest parent
/// that exists (a defaulted field points at its table).
pub fn locate(root: &Node, path: &FieldPath, at_key: bool) -> Position {
    locate_with(root, path, at_key, |node, key| node.get(key))
}

/// `locate`, looking keys up with `get` (the checker's indexed lookup).
fn locate_with<'n>(
    root: &'n Node,
    path: &FieldPath,
    at_key: bool,
    get: impl Fn(&'n Node, &str) -> Option<&'n Entry>,
) -> Position {
    use super::diagnostic::Segment;
    let mut node = root;
    let mut position = root.position;
    let last = path.0.len().saturating_sub(1);
    for (i, segment) in path.0.iter().enumerate() {
        match segment {
            Segment::Key(key) => match get(node, key) {
                Some(entry) => {
                    position = if at_key && i == last { entry.key_position } else { entry.value.position };
                    // Tables in TOML have no single value span worth pointing at; use the key.
                    if matches!(entry.value.value, NodeValue::Table(_)) {
                        position = entry.key_position;
                    }
                    node = &entry.value;
                }
                None => return position,
            },
            Segment::Index(index) => match node.index(*index) {
                Some(item) => {
                    position = item.position;
                    node = item;
                }
                None => return position,
            },
        }
    }
    position
}

/// Finds table entries by key in constant time. `Node::get` scans its table, and the checker
/// looks up every registry, cluster and binding by path: with thousands of entries that scan
/// made validation quadratic (32,000 registries took 3.9 s, 82 % of it comparing keys). Small
/// tables are still scanned; a large one gets a hash map the first time it is searched.
#[derive(Default)]
struct KeyIndex<'n> {
    /// Keyed by the table node's address: the tree is borrowed, so it cannot move meanwhile.
    tables: RefCell<HashMap<*const Node, HashMap<&'n str, &'n Entry>>>,
}

/// Tables up to this many entries are scanned: building a map would cost more than it saves.
const SCANNED_TABLE_ENTRIES: usize = 16;

impl<'n> KeyIndex<'n> {
    fn get(&self, node: &'n Node, key: &str) -> Option<&'n Entry> {
        let NodeValue::Table(entries) = &node.value else { return None };
        if entries.len() <= SCANNED_TABLE_ENTRIES {
            return entries.iter().find(|e| e.key == key);
        }
        let mut tables = self.tables.borrow_mut();
        let table = tables.entry(std::ptr::from_ref(node)).or_insert_with(|| {
            let mut map = HashMap::with_capacity(entries.len());
            for entry in entries {
                // The first of two equal keys wins, as with `Node::get`.
                map.entry(entry.key.as_str()).or_insert(entry);
            }
            map
        });
        table.get(key).copied()
    }
}

struct Checker<'a> {
    root: &'a Node,
    keys: KeyIndex<'a>,
    diagnostics: Collector,
    /// `azure.subscription_id` is written but unusable (already reported): entries that rely
    /// on it are not reported again as having no subscription.
    default_subscription_broken: bool,
    too_costly_reported: bool,
    suggestion_comparisons: u64,
    /// The directory of the file: relative paths in it (`client_secret_file`) are read from
    /// there, as kubeconfig and compose paths are, not from wherever acrlink runs.
    base_dir: &'a Path,
}

/// Misspelt names compared with known ones for "did you mean" hints, per file.
const MAX_SUGGESTION_COMPARISONS: u64 = 1_000_000;

impl Checker<'_> {
    fn locate(&self, path: &FieldPath, at_key: bool) -> Position {
        locate_with(self.root, path, at_key, |node, key| self.keys.get(node, key))
    }

    /// Whether the file writes this field (even with a value the structure check rejected).
    fn written(&self, path: &FieldPath) -> bool {
        use super::diagnostic::Segment;
        let mut node = self.root;
        for segment in &path.0 {
            let next = match segment {
                Segment::Key(key) => self.keys.get(node, key).map(|e| &e.value),
                Segment::Index(index) => node.index(*index),
            };
            match next {
                Some(next) => node = next,
                None => return false,
            }
        }
        true
    }

    /// An error about `path`, placed at the key of another field (the one that requires it).
    fn error_located(&mut self, code: &'static str, path: FieldPath, at: &FieldPath, message: impl Into<String>) {
        let position = self.locate(at, true);
        self.diagnostics.push(Diagnostic::error(code, path, position, message));
    }

    fn error(&mut self, code: &'static str, path: FieldPath, message: impl Into<String>) {
        let position = self.locate(&path, false);
        self.diagnostics.push(Diagnostic::error(code, path, position, message));
    }

    fn error_at_key(&mut self, code: &'static str, path: FieldPath, message: impl Into<String>) {
        let position = self.locate(&path, true);
        self.diagnostics.push(Diagnostic::error(code, path, position, message));
    }

    fn warning(&mut self, code: &'static str, path: FieldPath, message: impl Into<String>) {
        let position = self.locate(&path, false);
        self.diagnostics.push(Diagnostic::warning(code, path, position, message));
    }

    /// The comparison budget ran out at `item`: one error for the file, after which selectors
    /// are no longer matched (and so not reported as matching nothing).
    fn too_costly(&mut self, item: FieldPath, entries: usize) {
        if std::mem::replace(&mut self.too_costly_reported, true) {
            return;
        }
        let position = self.locate(&item, false);
        self.diagnostics.push_always(Diagnostic::error(
            "too-costly",
            item,
            position,
            format!(
                "matching this file's selectors against its {entries} entries takes more than {} comparisons",
                super::reach::MAX_COMPARISONS
            ),
        ));
        self.hint("name clusters and registries, or reuse the same selectors: each distinct glob or label selector is compared with every entry once");
    }

    /// `did_you_mean` over the keys of `candidates`, while the suggestion budget lasts: with
    /// thousands of misspelt names against thousands of keys, suggestions would cost minutes.
    fn did_you_mean<'k, V>(&mut self, word: &str, candidates: &'k BTreeMap<String, V>) -> Option<&'k str> {
        self.suggestion_comparisons = self.suggestion_comparisons.saturating_add(candidates.len() as u64);
        if self.suggestion_comparisons > MAX_SUGGESTION_COMPARISONS {
            return None;
        }
        did_you_mean(word, candidates.keys().map(String::as_str))
    }

    fn hint(&mut self, hint: impl Into<String>) {
        self.diagnostics.hint(hint.into());
    }

    fn guid(&mut self, path: FieldPath, value: &str, what: &str) {
        if let Err(why) = names::guid(value) {
            self.error("invalid-guid", path, format!("{what} {value:?} is not a GUID"));
            self.hint(why);
        }
    }

    fn subscription(
        &mut self,
        own: Option<&str>,
        default: Option<&str>,
        path: &FieldPath,
        owner: &str,
    ) -> Option<String> {
        match own.or(default) {
            Some(id) => Some(id.to_string()),
            None if self.default_subscription_broken => None,
            None => {
                self.error_at_key("missing-subscription", path.clone(), format!("{owner} has no subscription"));
                self.hint(format!("set azure.subscription_id, or subscription_id in {path}"));
                None
            }
        }
    }

    fn labels<'l>(&mut self, labels: impl IntoIterator<Item = (&'l String, &'l String)>, path: &FieldPath) {
        for (key, value) in labels {
            if let Err(why) = names::label_key(key) {
                self.error_at_key("invalid-label", path.key(key), format!("invalid label key {key:?}"));
                self.hint(why);
            }
            if let Err(why) = names::label_value(value) {
                self.error("invalid-label", path.key(key), format!("invalid label value {value:?}"));
                self.hint(why);
            }
        }
    }
}

/// `structural` holds what the structure check reported, so that a value it rejected is not
/// reported again through its consequences (a missing subscription, a selector that matches
/// nothing because a cluster's labels were unreadable, ...).
pub fn check(
    mut raw: PartialConfig,
    root: &Node,
    path: &Path,
    structural: &[Diagnostic],
) -> (Option<Config>, Vec<Diagnostic>) {
    let top = FieldPath::root();
    let azure_raw = raw.azure.take().unwrap_or_default();
    let mut c = Checker {
        root,
        keys: KeyIndex::default(),
        diagnostics: Collector::default(),
        default_subscription_broken: false,
        too_costly_reported: false,
        suggestion_comparisons: 0,
        base_dir: path.parent().unwrap_or(Path::new("")),
    };
    let azure_is_table = root.get("azure").is_none_or(|e| matches!(e.value.value, super::source::NodeValue::Table(_)));
    c.default_subscription_broken =
        (!azure_is_table || c.written(&top.key("azure").key("subscription_id"))) && azure_raw.subscription_id.is_none();
    check_version_and_owner(&mut c, &raw);
    let default_subscription = azure_raw.subscription_id.as_deref();
    check_azure(&mut c, &azure_raw);

    let registries = check_registries(&mut c, &raw, default_subscription);
    let clusters = check_clusters(&mut c, &mut raw, default_subscription);
    let cluster_sets = check_cluster_sets(&mut c, &raw, default_subscription);
    let under = |first: &str| {
        structural.iter().any(|d| matches!(d.path.0.first(), Some(super::diagnostic::Segment::Key(k)) if k == first))
    };
    // Each raw binding is dropped once checked: a fleet's file has one per cluster.
    let raw_bindings = std::mem::take(&mut raw.bindings);
    let names: Vec<Option<String>> = raw_bindings.iter().map(|b| b.as_ref().and_then(|b| b.name.clone())).collect();
    let index = ClusterIndex::new(&clusters);
    let defined = Defined {
        raw: &raw,
        registries: &registries,
        clusters: &index,
        sets: &cluster_sets,
        clusters_incomplete: under("clusters") || under("cluster_sets"),
        registries_incomplete: under("registries"),
    };
    // Bindings the structure check rejected part of, found once rather than per binding.
    let broken: BTreeSet<usize> = structural
        .iter()
        .filter_map(|d| match d.path.0.as_slice() {
            [Segment::Key(k), Segment::Index(i), ..] if k == "bindings" => Some(*i),
            _ => None,
        })
        .collect();
    let bindings: Vec<Option<Binding>> = raw_bindings
        .into_iter()
        .enumerate()
        .map(|(i, b)| b.and_then(|b| check_binding(&mut c, &defined, i, &b, broken.contains(&i))))
        .collect();
    check_binding_names(&mut c, &names);
    check_secret_sources(&mut c, &bindings);
    if check_fan_out(&mut c, &bindings, &registries, &index) {
        check_overlaps(&mut c, &bindings, &index);
    }
    let bindings: Option<Vec<Binding>> = bindings.into_iter().collect();

    let has_errors = c.diagnostics.errors() > 0;
    let config = match (has_errors, bindings) {
        (false, Some(bindings)) => Some(Config {
            path: path.to_path_buf(),
            owner: raw.owner.as_deref().map(Owner::named).unwrap_or_default(),
            cloud: azure_raw.cloud,
            tenant_id: azure_raw.tenant_id.clone(),
            registries,
            clusters,
            cluster_sets,
            bindings,
        }),
        _ => None,
    };
    (config, c.diagnostics.into_vec())
}

fn check_version_and_owner(c: &mut Checker<'_>, raw: &PartialConfig) {
    let top = FieldPath::root();
    if let Some(version) = raw.version.filter(|v| *v != 1) {
        c.error(
            "unsupported-version",
            top.key("version"),
            format!("unsupported version {version}: this acrlink reads version 1"),
        );
        c.hint("set version = 1, or upgrade acrlink");
    }
    if let Some(owner) = &raw.owner {
        let valid = owner.len() <= 30
            && owner.starts_with(|c: char| c.is_ascii_lowercase())
            && owner.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            c.error("invalid-owner", top.key("owner"), format!("invalid owner {owner:?}"));
            c.hint("1-30 lowercase letters, digits and '-', starting with a letter (it goes into Kubernetes labels and ACR names)");
        }
    }
}

/// The tenant and default subscription are GUIDs.
fn check_azure(c: &mut Checker<'_>, azure_raw: &raw::RawAzure) {
    let azure = FieldPath::root().key("azure");
    if let Some(tenant) = &azure_raw.tenant_id {
        c.guid(azure.key("tenant_id"), tenant, "tenant_id");
    }
    if let Some(subscription) = &azure_raw.subscription_id {
        c.guid(azure.key("subscription_id"), subscription, "subscription_id");
    }
}

fn check_registries(
    c: &mut Checker<'_>,
    raw: &PartialConfig,
    default_subscription: Option<&str>,
) -> BTreeMap<String, Registry> {
    let mut result = BTreeMap::new();
    let mut seen: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for (key, registry) in &raw.registries {
        let Some(registry) = registry else { continue };
        let path = FieldPath::root().key("registries").key(key);
        // A `name` the structure check rejected leaves the entry unusable, not named by its key.
        let name_broken = registry.name.is_none() && c.written(&path.key("name"));
        let name = registry.name.clone().unwrap_or_else(|| key.clone());
        if !name_broken && let Err(why) = names::registry_name(&name) {
            match &registry.name {
                Some(_) => {
                    c.error("invalid-name", path.key("name"), format!("invalid registry name {name:?}"));
                    c.hint(why);
                }
                None => {
                    c.error_at_key(
                        "invalid-name",
                        path.clone(),
                        format!("invalid registry name {name:?} (the table key)"),
                    );
                    c.hint(format!("{why}; if the key is only a local alias, set `name` to the Azure name"));
                }
            };
        }
        if let Err(why) = names::resource_group_name(&registry.resource_group) {
            c.error(
                "invalid-name",
                path.key("resource_group"),
                format!("invalid resource group name {:?}", registry.resource_group),
            );
            c.hint(why);
        }
        if let Some(own) = &registry.subscription_id {
            c.guid(path.key("subscription_id"), own, "subscription_id");
        }
        let Some(subscription_id) = c.subscription(
            registry.subscription_id.as_deref(),
            default_subscription,
            &path,
            &format!("registry `{key}`"),
        ) else {
            continue;
        };
        if name_broken {
            continue;
        }
        // Registry names are globally unique in Azure: the same name twice is the same registry.
        let identity = (name.to_ascii_lowercase(), String::new(), String::new());
        if let Some(first) = seen.insert(identity, key.clone()) {
            c.error_at_key(
                "duplicate-registry",
                path.clone(),
                format!("registry `{key}` is the same Azure registry {name:?} as `{first}`"),
            );
            c.hint("registry names are unique across Azure; keep one entry");
        }
        let verify_image = registry.verify.as_ref().map(|v| v.image.clone());
        if let Some(image) = &verify_image
            && (image.is_empty() || image.chars().any(char::is_whitespace))
        {
            c.error("invalid-image", path.key("verify").key("image"), format!("invalid probe image {image:?}"));
            c.hint("an image reference such as \"base/nginx:1.27\" or \"base/nginx@sha256:...\"");
        }
        result.insert(
            key.clone(),
            Registry {
                key: key.clone(),
                name,
                subscription_id,
                resource_group: registry.resource_group.clone(),
                verify_image,
            },
        );
    }
    result
}

fn check_clusters(
    c: &mut Checker<'_>,
    raw: &mut PartialConfig,
    default_subscription: Option<&str>,
) -> BTreeMap<String, Cluster> {
    let mut result = BTreeMap::new();
    // The same AKS cluster under two keys, found by a hash of its identity: a map keyed by the
    // identity's three strings held as much memory as the clusters themselves.
    let mut seen: HashMap<u64, Vec<&str>> = HashMap::new();
    for (key, slot) in &mut raw.clusters {
        // Moved into the model (only the key stays, for references): a fleet is held once.
        let Some(cluster) = slot.take() else { continue };
        let raw::RawCluster { name: given_name, resource_group, subscription_id, labels, kube_context } = *cluster;
        let path = FieldPath::root().key("clusters").key(key);
        let name_broken = given_name.is_none() && c.written(&path.key("name"));
        let name = given_name.clone().unwrap_or_else(|| key.clone());
        if !name_broken && let Err(why) = names::cluster_name(&name) {
            match &given_name {
                Some(_) => {
                    c.error("invalid-name", path.key("name"), format!("invalid AKS cluster name {name:?}"));
                    c.hint(why);
                }
                None => {
                    c.error_at_key(
                        "invalid-name",
                        path.clone(),
                        format!("invalid AKS cluster name {name:?} (the table key)"),
                    );
                    c.hint(format!("{why}; if the key is only a local alias, set `name` to the Azure name"));
                }
            };
        }
        if let Err(why) = names::resource_group_name(&resource_group) {
            c.error(
                "invalid-name",
                path.key("resource_group"),
                format!("invalid resource group name {resource_group:?}"),
            );
            c.hint(why);
        }
        if let Some(own) = &subscription_id {
            c.guid(path.key("subscription_id"), own, "subscription_id");
        }
        c.labels(&labels, &path.key("labels"));
        if kube_context.as_deref().is_some_and(|k| k.trim().is_empty()) {
            c.error("empty-value", path.key("kube_context"), "kube_context must not be empty");
        }
        let Some(subscription_id) =
            c.subscription(subscription_id.as_deref(), default_subscription, &path, &format!("cluster `{key}`"))
        else {
            continue;
        };
        if name_broken {
            continue;
        }
        let same = seen.entry(cluster_identity(&subscription_id, &resource_group, &name)).or_default();
        // The latest one, as the message always named.
        let first = same.iter().rev().copied().find(|k| {
            result.get(*k).is_some_and(|c: &Cluster| {
                c.subscription_id.eq_ignore_ascii_case(&subscription_id)
                    && c.resource_group.eq_ignore_ascii_case(&resource_group)
                    && c.name.eq_ignore_ascii_case(&name)
            })
        });
        same.push(key);
        if let Some(first) = first {
            c.error_at_key(
                "duplicate-cluster",
                path.clone(),
                format!("cluster `{key}` is the same AKS cluster as `{first}`"),
            );
            c.hint("keep one entry; give it every label it needs");
        }
        result.insert(
            key.clone(),
            Cluster { key: key.clone(), name, subscription_id, resource_group, labels, kube_context },
        );
    }
    result
}

/// A hash of a cluster's Azure identity, as Azure compares it (case-insensitively).
fn cluster_identity(subscription_id: &str, resource_group: &str, name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for part in [subscription_id, resource_group, name] {
        for byte in part.bytes() {
            byte.to_ascii_lowercase().hash(&mut hasher);
        }
        0xffu8.hash(&mut hasher);
    }
    hasher.finish()
}

fn check_cluster_sets(c: &mut Checker<'_>, raw: &PartialConfig, default_subscription: Option<&str>) -> Vec<ClusterSet> {
    let mut result = Vec::new();
    let mut names_seen = BTreeSet::new();
    for (i, set) in raw.cluster_sets.iter().enumerate() {
        let Some(set) = set else { continue };
        let path = FieldPath::root().key("cluster_sets").index(i);
        let name = set.name.clone().unwrap_or_else(|| format!("cluster_sets[{i}]"));
        if !names_seen.insert(name.clone()) {
            c.error("duplicate-name", path.key("name"), format!("two cluster sets are named {name:?}"));
            c.hint("cluster set names must be unique; rename one");
        }
        if let Some(own) = &set.subscription_id {
            c.guid(path.key("subscription_id"), own, "subscription_id");
        }
        if let Some(rg) = &set.resource_group
            && let Err(why) = names::resource_group_name(rg)
        {
            c.error("invalid-name", path.key("resource_group"), format!("invalid resource group name {rg:?}"));
            c.hint(why);
        }
        c.labels(&set.labels, &path.key("labels"));
        let Some(subscription_id) = c.subscription(
            set.subscription_id.as_deref(),
            default_subscription,
            &path,
            &format!("cluster set {name:?}"),
        ) else {
            continue;
        };
        if set.tags.is_empty() && set.resource_group.is_none() {
            c.warning(
                "broad-cluster-set",
                path.clone(),
                format!("cluster set {name:?} takes every AKS cluster in subscription {subscription_id}"),
            );
            c.hint("add tags = { ... } or resource_group to narrow it");
        }
        result.push(ClusterSet {
            name,
            subscription_id,
            resource_group: set.resource_group.clone(),
            tags: set.tags.clone(),
            labels: set.labels.clone(),
        });
    }
    result
}

/// What the file defines, for resolving a binding's references.
struct Defined<'a> {
    raw: &'a PartialConfig,
    registries: &'a BTreeMap<String, Registry>,
    clusters: &'a ClusterIndex<'a>,
    sets: &'a [ClusterSet],
    /// Some cluster or cluster set could not be read: a selector that matches nothing may
    /// match it, so that is not reported.
    clusters_incomplete: bool,
    registries_incomplete: bool,
}

/// Whether a selector can match any cluster the file defines or could discover.
fn selector_can_match(
    selector: &ClusterSelector,
    clusters: &ClusterIndex<'_>,
    sets: &[ClusterSet],
) -> Result<bool, Exhausted> {
    let discovered_match = match selector {
        ClusterSelector::All | ClusterSelector::Glob { .. } => !sets.is_empty(),
        ClusterSelector::Name(_) => false,
        ClusterSelector::Labels(labels) => sets.iter().any(|s| labels.matches(&s.labels)),
    };
    Ok(discovered_match || !clusters.resolve(selector)?.is_empty())
}

/// Parses the binding's cluster selectors; a selector that can match no cluster is an error.
fn check_cluster_selectors(
    c: &mut Checker<'_>,
    defined: &Defined<'_>,
    path: &FieldPath,
    binding: &RawBinding,
) -> Vec<ClusterSelector> {
    let raw = defined.raw;
    // Sized exactly: a fleet's file has a binding per cluster, mostly naming one.
    let mut selectors = Vec::with_capacity(binding.clusters.len());
    for (i, text) in binding.clusters.iter().enumerate() {
        // Built only for a diagnostic: most selectors have none, and a fleet has thousands.
        let item = || path.key("clusters").index(i);
        let parsed = match defined.clusters.parse(text) {
            Ok(parsed) => parsed,
            Err(Exhausted) => {
                c.too_costly(item(), defined.clusters.len());
                continue;
            }
        };
        match parsed {
            Err(why) => {
                c.error("invalid-selector", item(), format!("invalid cluster selector {text:?}: {why}"));
                c.hint("a selector is a cluster key, a glob (\"tiu-*\"), labels (\"env=prod,wave!=canary\") or \"*\"");
            }
            Ok(selector) => {
                let can_match = match &selector {
                    // A cluster whose own entry is broken is still defined; its error is reported there.
                    ClusterSelector::Name(n) => Ok(raw.clusters.contains_key(n)),
                    _ if defined.clusters_incomplete => Ok(true),
                    _ => selector_can_match(&selector, defined.clusters, defined.sets),
                };
                match can_match {
                    Ok(true) => {}
                    Ok(false) => undefined_cluster(c, raw, item(), &selector),
                    Err(Exhausted) => c.too_costly(item(), defined.clusters.len()),
                }
                selectors.push(selector);
            }
        }
    }
    selectors
}

fn undefined_cluster(c: &mut Checker<'_>, raw: &PartialConfig, item: FieldPath, selector: &ClusterSelector) {
    let what = match selector {
        ClusterSelector::Name(n) => format!("cluster `{n}` is not defined"),
        other => {
            format!("selector {:?} matches no cluster defined in [clusters] or [[cluster_sets]]", other.to_string())
        }
    };
    c.error("undefined-cluster", item, what);
    let hint = match selector {
        ClusterSelector::Name(n) => match c.did_you_mean(n, &raw.clusters) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "define it under [clusters.NAME], or use a label selector such as \"env=prod\"".into(),
        },
        _ => "check the labels of [clusters.*] and [[cluster_sets]]".into(),
    };
    c.hint(hint);
}

/// Resolves the binding's registry names and globs to registry keys, sorted, each once.
fn check_registry_references(
    c: &mut Checker<'_>,
    defined: &Defined<'_>,
    path: &FieldPath,
    binding: &RawBinding,
) -> Vec<String> {
    let raw = defined.raw;
    let mut registry_keys = Vec::with_capacity(binding.registries.len());
    for (i, text) in binding.registries.iter().enumerate() {
        let item = || path.key("registries").index(i);
        if text.contains(['*', '?', '[']) {
            registry_keys.extend(registry_glob(c, defined, item(), text));
        } else if raw.registries.contains_key(text) {
            if defined.registries.contains_key(text) {
                registry_keys.push(text.clone());
            }
        } else {
            c.error("undefined-registry", item(), format!("registry `{text}` is not defined"));
            let hint = match c.did_you_mean(text, &raw.registries) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "define it under [registries.NAME]".into(),
            };
            c.hint(hint);
        }
    }
    registry_keys.sort();
    registry_keys.dedup();
    registry_keys
}

/// The registry keys a glob matches; one that matches none is an error.
fn registry_glob(c: &mut Checker<'_>, defined: &Defined<'_>, item: FieldPath, text: &str) -> Vec<String> {
    let raw = defined.raw;
    let matcher = match defined.clusters.registry_glob(text, raw.registries.len()) {
        Err(Exhausted) => {
            c.too_costly(item, raw.registries.len());
            return Vec::new();
        }
        Ok(Err(e)) => {
            c.error("invalid-selector", item, format!("invalid registry glob {text:?}: {}", e.kind()));
            return Vec::new();
        }
        Ok(Ok(matcher)) => matcher,
    };
    let matched: Vec<String> = defined.registries.keys().filter(|k| matcher.is_match(k.as_str())).cloned().collect();
    let matches_broken = raw.registries.keys().any(|k| matcher.is_match(k.as_str()));
    if matched.is_empty() && !matches_broken && !defined.registries_incomplete {
        c.error("undefined-registry", item, format!("registry glob {text:?} matches no registry in [registries]"));
        c.hint(if raw.registries.is_empty() {
            "define registries under [registries.NAME]".to_string()
        } else {
            format!("the registries are: {}", listed(raw.registries.keys().map(String::as_str)))
        });
    }
    matched
}

/// Names for a hint: all of them when few, else the first ones and how many more.
fn listed<'k>(names: impl ExactSizeIterator<Item = &'k str>) -> String {
    const SHOWN: usize = 20;
    let total = names.len();
    let shown: Vec<&str> = names.take(SHOWN).collect();
    if total > SHOWN { format!("{}, ... and {} more", shown.join(", "), total - SHOWN) } else { shown.join(", ") }
}

/// `broken`: the structure check already rejected part of this binding. Its other fields are
/// still checked, but nothing is concluded from the rejected ones, and it takes no part in
/// the duplicate and contradiction checks.
fn check_binding(
    c: &mut Checker<'_>,
    defined: &Defined<'_>,
    index: usize,
    binding: &RawBinding,
    broken: bool,
) -> Option<Binding> {
    let path = FieldPath::root().key("bindings").index(index);
    let name = binding.name.clone().unwrap_or_else(|| format!("bindings[{index}]"));
    let errors_before = c.diagnostics.errors();

    let selectors = check_cluster_selectors(c, defined, &path, binding);
    let registry_keys = check_registry_references(c, defined, &path, binding);

    let repositories = binding.repositories.clone().unwrap_or_default();
    for (i, pattern) in repositories.iter().enumerate() {
        if let Err(why) = repository_pattern(pattern) {
            c.error(
                "invalid-repository",
                path.key("repositories").index(i),
                format!("invalid repository pattern {pattern:?}"),
            );
            c.hint(why);
        }
    }
    if binding.repositories.as_ref().is_some_and(Vec::is_empty) {
        c.error("empty-list", path.key("repositories"), "`repositories` is empty: nothing could be pulled");
        c.hint("list repository patterns such as \"team/*\", or remove the field for the whole registry");
    }

    // An unknown method was reported by the structure check; which fields apply is unknown.
    if binding.method.is_none() && c.written(&path.key("method")) {
        return None;
    }
    let method = match binding.method.unwrap_or_default() {
        raw::Method::ManagedIdentity => {
            for (field, present) in binding.pull_secret_fields() {
                if present {
                    c.error_at_key(
                        "field-not-for-method",
                        path.key(field),
                        format!("`{field}` applies only to method = \"pull-secret\""),
                    );
                    c.hint("remove it, or set method = \"pull-secret\" on this binding");
                }
            }
            Method::ManagedIdentity
        }
        raw::Method::PullSecret => check_pull_secret(c, &path, binding).map(Method::PullSecret)?,
    };

    let has_new_errors = c.diagnostics.errors() > errors_before;
    if has_new_errors || broken {
        return None;
    }
    Some(Binding { name, clusters: selectors, registries: registry_keys, repositories, method })
}

fn check_pull_secret(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding) -> Option<PullSecret> {
    let credential_known = !rejected(c, path, "credential", binding.credential.is_some());
    let credential_kind = binding.credential.unwrap_or(Credential::RegistryToken);
    let credential = match credential_kind {
        Credential::Admin => CredentialSource::Admin,
        Credential::RegistryToken => CredentialSource::RegistryToken,
        Credential::ServicePrincipal => CredentialSource::ServicePrincipal {
            client_id: service_principal_client_id(c, path, binding),
            secret: service_principal_secret(c, path, binding),
            principal_object_id: binding.principal_object_id.clone().inspect(|id| {
                c.guid(path.key("principal_object_id"), id, "principal_object_id");
            }),
        },
    };
    if credential_known {
        fields_not_for_credential(c, path, binding, credential_kind);
    }
    let (token_ttl_seconds, rotate_before_seconds) =
        token_lifetime(c, path, binding, credential_known && credential_kind == Credential::RegistryToken);
    let namespaces_rejected = rejected(c, path, "namespaces", binding.namespaces.is_some())
        || rejected(c, path, "namespace_selector", binding.namespace_selector.is_some());
    let namespaces = pull_secret_namespaces(c, path, binding, namespaces_rejected);
    excluded_namespaces(c, path, binding, &namespaces, namespaces_rejected);
    if binding.create_namespaces == Some(true) && !namespaces_rejected && !matches!(namespaces, Namespaces::Listed(_)) {
        c.error_at_key(
            "conflicting-fields",
            path.key("create_namespaces"),
            "create_namespaces needs namespaces listed by name",
        );
        c.hint("list the namespaces to create, or remove create_namespaces");
    }
    let secret_name = secret_name(c, path, binding);
    let service_accounts = service_accounts(c, path, binding);
    Some(PullSecret {
        credential,
        namespaces,
        secret_name,
        service_accounts,
        token_ttl_seconds,
        rotate_before_seconds,
        adopt: binding.adopt.unwrap_or(false),
        create_namespaces: binding.create_namespaces.unwrap_or(false),
    })
}

/// A field the structure check rejected: written, but unreadable.
fn rejected(c: &Checker<'_>, path: &FieldPath, field: &str, parsed: bool) -> bool {
    !parsed && c.written(&path.key(field))
}

fn credential_name(kind: Credential) -> &'static str {
    match kind {
        Credential::Admin => "admin",
        Credential::RegistryToken => "registry-token",
        Credential::ServicePrincipal => "service-principal",
    }
}

/// `client_id` of a service-principal credential; a missing one is asked for at `credential`.
fn service_principal_client_id(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding) -> String {
    match &binding.client_id {
        Some(id) => {
            c.guid(path.key("client_id"), id, "client_id");
            id.clone()
        }
        None if rejected(c, path, "client_id", false) => String::new(),
        None => {
            c.error_located(
                "missing-field",
                path.key("client_id"),
                &path.key("credential"),
                "credential = \"service-principal\" needs `client_id`",
            );
            c.hint("add client_id = \"<application (client) id>\"");
            String::new()
        }
    }
}

/// Where a service principal's secret is read: exactly one of client_secret_env and _file.
fn service_principal_secret(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding) -> SecretReference {
    match (&binding.client_secret_env, &binding.client_secret_file) {
        (Some(var), None) => {
            if let Err(why) = names::env_var(var) {
                c.error(
                    "invalid-name",
                    path.key("client_secret_env"),
                    format!("invalid environment variable name {var:?}"),
                );
                c.hint(why);
            }
            SecretReference::Environment(var.clone())
        }
        (None, Some(file)) => {
            if file.trim().is_empty() {
                c.error("empty-value", path.key("client_secret_file"), "client_secret_file must not be empty");
            }
            SecretReference::File(c.base_dir.join(file))
        }
        (Some(_), Some(_)) => {
            c.error_at_key(
                "conflicting-fields",
                path.key("client_secret_file"),
                "give either client_secret_env or client_secret_file, not both",
            );
            c.hint("keep the one the secret is really read from");
            SecretReference::Environment(String::new())
        }
        (None, None)
            if rejected(c, path, "client_secret_env", false) || rejected(c, path, "client_secret_file", false) =>
        {
            SecretReference::Environment(String::new())
        }
        (None, None) => {
            c.error_located(
                "missing-field",
                path.key("client_secret_env"),
                &path.key("credential"),
                "credential = \"service-principal\" needs client_secret_env or client_secret_file",
            );
            c.hint("the secret itself never goes in this file: client_secret_env = \"ACR_SP_SECRET\"");
            SecretReference::Environment(String::new())
        }
    }
}

/// Fields written for a credential the binding does not use (the credential is known).
fn fields_not_for_credential(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding, kind: Credential) {
    let name = credential_name(kind);
    let not_for = |c: &mut Checker<'_>, field: &str, wanted: &str| {
        c.error_at_key(
            "field-not-for-credential",
            path.key(field),
            format!("`{field}` applies only to credential = \"{wanted}\", not \"{name}\""),
        );
        c.hint(format!("remove it, or set credential = \"{wanted}\""));
    };
    if kind != Credential::ServicePrincipal {
        for (field, present) in [
            ("client_id", binding.client_id.is_some()),
            ("client_secret_env", binding.client_secret_env.is_some()),
            ("client_secret_file", binding.client_secret_file.is_some()),
            ("principal_object_id", binding.principal_object_id.is_some()),
        ] {
            if present {
                not_for(c, field, "service-principal");
            }
        }
    }
    if kind != Credential::RegistryToken {
        for (field, present) in
            [("token_ttl", binding.token_ttl.is_some()), ("rotate_before", binding.rotate_before.is_some())]
        {
            if present {
                not_for(c, field, "registry-token");
            }
        }
        if binding.repositories.is_some() {
            c.error_at_key(
                "field-not-for-credential",
                path.key("repositories"),
                format!("credential \"{name}\" cannot be limited to repositories; it reads the whole registry"),
            );
            c.hint("use credential = \"registry-token\" to scope a pull secret to repositories");
        }
    }
}

/// `token_ttl` and `rotate_before` in seconds (defaults when unreadable). `is_token`: the
/// credential is known to be a registry token, the only one that expires, so the only one
/// whose rotation must come before its expiry.
fn token_lifetime(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding, is_token: bool) -> (u64, u64) {
    let token_ttl = duration(c, path, "token_ttl", binding.token_ttl.as_deref(), DEFAULT_TOKEN_TTL_SECONDS);
    let rotate_before =
        duration(c, path, "rotate_before", binding.rotate_before.as_deref(), DEFAULT_ROTATE_BEFORE_SECONDS);
    // Compare only durations that could be read.
    if is_token
        && let (Some(ttl), Some(rotate)) = (token_ttl, rotate_before)
        && rotate >= ttl
        && !rejected(c, path, "token_ttl", binding.token_ttl.is_some())
        && !rejected(c, path, "rotate_before", binding.rotate_before.is_some())
    {
        rotation_after_expiry(c, path, binding);
    }
    (token_ttl.unwrap_or(DEFAULT_TOKEN_TTL_SECONDS), rotate_before.unwrap_or(DEFAULT_ROTATE_BEFORE_SECONDS))
}

fn rotation_after_expiry(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding) {
    let shown = |text: Option<&str>, default: &str| match text {
        Some(t) => format!("{t:?}"),
        None => format!("{default:?} (the default)"),
    };
    let field = if binding.rotate_before.is_some() { "rotate_before" } else { "token_ttl" };
    c.error(
        "invalid-duration",
        path.key(field),
        format!(
            "rotate_before {} must be shorter than token_ttl {}, or every run would rotate",
            shown(binding.rotate_before.as_deref(), "30d"),
            shown(binding.token_ttl.as_deref(), "90d"),
        ),
    );
    c.hint("for example token_ttl = \"90d\" with rotate_before = \"30d\"");
}

/// The namespaces a pull secret goes to: listed, all ("*") or by selector, exactly one way.
fn pull_secret_namespaces(
    c: &mut Checker<'_>,
    path: &FieldPath,
    binding: &RawBinding,
    namespaces_rejected: bool,
) -> Namespaces {
    match (&binding.namespaces, &binding.namespace_selector) {
        (Some(_), Some(_)) => {
            c.error_at_key(
                "conflicting-fields",
                path.key("namespace_selector"),
                "give either namespaces or namespace_selector, not both",
            );
            c.hint("namespaces lists names; namespace_selector picks namespaces by label");
            Namespaces::Listed(Vec::new())
        }
        (None, None) if namespaces_rejected => Namespaces::Listed(Vec::new()),
        (None, None) => {
            let at = if c.written(&path.key("method")) { path.key("method") } else { path.clone() };
            c.error_located(
                "missing-field",
                path.key("namespaces"),
                &at,
                "a pull-secret binding needs `namespaces` or `namespace_selector`",
            );
            c.hint("for example namespaces = [\"default\"], or namespaces = [\"*\"] for all of them");
            Namespaces::Listed(Vec::new())
        }
        (None, Some(selector)) => match LabelSelector::parse(selector) {
            Ok(s) => Namespaces::Selector(s),
            Err(why) => {
                c.error(
                    "invalid-selector",
                    path.key("namespace_selector"),
                    format!("invalid namespace selector: {why}"),
                );
                Namespaces::Listed(Vec::new())
            }
        },
        (Some(list), None) => listed_namespaces(c, path, binding, list),
    }
}

/// `namespaces = [...]`: valid names, each once, and "*" alone.
fn listed_namespaces(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding, list: &[String]) -> Namespaces {
    if list.is_empty() {
        c.error("empty-list", path.key("namespaces"), "`namespaces` is empty");
        c.hint("list namespaces, or use [\"*\"] for all of them");
    }
    let mut seen = BTreeSet::new();
    for (i, ns) in list.iter().enumerate() {
        if ns != "*"
            && let Err(why) = names::dns1123_label(ns)
        {
            c.error("invalid-name", path.key("namespaces").index(i), format!("invalid namespace name {ns:?}"));
            c.hint(why);
        }
        if !seen.insert(ns) {
            c.warning("duplicate-entry", path.key("namespaces").index(i), format!("namespace {ns:?} is listed twice"));
        }
    }
    if !list.iter().any(|n| n == "*") {
        return Namespaces::Listed(list.to_vec());
    }
    if list.len() > 1 {
        c.error(
            "conflicting-fields",
            path.key("namespaces"),
            "\"*\" already means every namespace; list no others beside it",
        );
        c.hint("to leave some out, use exclude_namespaces");
    }
    Namespaces::All { exclude: binding.exclude_namespaces.clone().unwrap_or_default() }
}

/// `exclude_namespaces`: valid names, and only beside namespaces = ["*"].
fn excluded_namespaces(
    c: &mut Checker<'_>,
    path: &FieldPath,
    binding: &RawBinding,
    namespaces: &Namespaces,
    namespaces_rejected: bool,
) {
    let Some(excluded) = &binding.exclude_namespaces else { return };
    if !namespaces_rejected && !matches!(namespaces, Namespaces::All { .. }) {
        c.error_at_key(
            "conflicting-fields",
            path.key("exclude_namespaces"),
            "exclude_namespaces applies only with namespaces = [\"*\"]",
        );
        c.hint("use namespaces = [\"*\"] with it, or remove it");
    }
    for (i, ns) in excluded.iter().enumerate() {
        if let Err(why) = names::dns1123_label(ns) {
            c.error("invalid-name", path.key("exclude_namespaces").index(i), format!("invalid namespace name {ns:?}"));
            c.hint(why);
        }
    }
}

fn secret_name(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding) -> String {
    let secret_name = binding.secret_name.clone().unwrap_or_else(|| DEFAULT_SECRET_NAME.to_string());
    if let Err(why) = names::dns1123_subdomain(&secret_name) {
        c.error("invalid-name", path.key("secret_name"), format!("invalid Secret name {secret_name:?}"));
        c.hint(why);
    }
    secret_name
}

fn service_accounts(c: &mut Checker<'_>, path: &FieldPath, binding: &RawBinding) -> Vec<String> {
    let service_accounts = binding.service_accounts.clone().unwrap_or_default();
    for (i, sa) in service_accounts.iter().enumerate() {
        if let Err(why) = names::dns1123_subdomain(sa) {
            c.error(
                "invalid-name",
                path.key("service_accounts").index(i),
                format!("invalid service account name {sa:?}"),
            );
            c.hint(why);
        }
    }
    service_accounts
}

/// The duration in seconds: `default` when not written, None when unreadable (reported).
fn duration(c: &mut Checker<'_>, path: &FieldPath, field: &str, text: Option<&str>, default: u64) -> Option<u64> {
    match text.map(names::duration_seconds) {
        None => Some(default),
        Some(Ok(seconds)) => Some(seconds),
        Some(Err(why)) => {
            c.error("invalid-duration", path.key(field), format!("invalid duration {:?}", text.unwrap_or_default()));
            c.hint(why);
            None
        }
    }
}

/// ACR repository names: lowercase path components; a trailing `*` matches any suffix.
fn repository_pattern(pattern: &str) -> Result<(), String> {
    let body = pattern.strip_suffix('*').unwrap_or(pattern);
    let ok = !pattern.is_empty()
        && !body.contains('*')
        && body.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && !body.starts_with('/')
        && !body.contains("//");
    if ok {
        Ok(())
    } else {
        Err("a repository is lowercase letters, digits, '.', '_', '-' and '/', optionally ending in '*' (\"team/*\")"
            .into())
    }
}

fn check_binding_names(c: &mut Checker<'_>, names: &[Option<String>]) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let Some(name) = name else { continue };
        match seen.get(name.as_str()) {
            Some(first) => {
                let first = *first;
                c.error(
                    "duplicate-name",
                    FieldPath::root().key("bindings").index(i).key("name"),
                    format!("bindings[{first}] is already named {name:?}"),
                );
                c.hint("binding names must be unique; rename one");
            }
            None => {
                seen.insert(name.as_str(), i);
            }
        }
    }
}

/// Azure's limit on role assignments in one subscription.
pub const ROLE_ASSIGNMENTS_PER_SUBSCRIPTION: u64 = 5_000;
/// Tokens one registry can hold with the largest SKU (Premium; Basic holds 100, Standard 500).
pub const TOKENS_PER_REGISTRY: u64 = 50_000;
/// (cluster, registry) pairs one file may select: what the contradiction check, plan and
/// apply can list in memory and time (a pair costs about a hundred bytes in each).
pub const MAX_PAIRS: u64 = 1_000_000;
/// How far past an Azure limit a count becomes an error rather than a warning: a file that
/// needs ten times what Azure can hold is a mistake, not a fleet near its limits.
const HARD_LIMIT_FACTOR: u64 = 10;

/// A count of Azure objects the bindings need, with the binding that adds most to it.
#[derive(Default)]
struct Tally {
    total: u64,
    largest: Option<(usize, u64)>,
}

impl Tally {
    fn add(&mut self, binding: usize, count: u64) {
        self.total = self.total.saturating_add(count);
        if self.largest.is_none_or(|(_, most)| count > most) {
            self.largest = Some((binding, count));
        }
    }
}

/// Counts what the bindings ask of Azure from how many clusters each selects, before any
/// (cluster, registry) pair is listed: role assignments per subscription of the registries,
/// registry tokens per registry, and pairs in all. Warns past Azure's limits and rejects the
/// file far past them. Returns whether the pairs may be listed (no count is far past).
fn check_fan_out(
    c: &mut Checker<'_>,
    bindings: &[Option<Binding>],
    registries: &BTreeMap<String, Registry>,
    clusters: &ClusterIndex<'_>,
) -> bool {
    let mut assignments: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut tokens: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut pairs = Tally::default();
    for (i, binding) in bindings.iter().enumerate() {
        let Some(binding) = binding else { continue };
        let members = match clusters.members(&binding.clusters) {
            Ok(members) => members.len() as u64,
            Err(Exhausted) => {
                c.too_costly(FieldPath::root().key("bindings").index(i).key("clusters"), clusters.len());
                return false;
            }
        };
        pairs.add(i, members.saturating_mul(binding.registries.len() as u64));
        for registry in &binding.registries {
            match &binding.method {
                Method::ManagedIdentity => {
                    let Some(registry) = registries.get(registry) else { continue };
                    assignments.entry(registry.subscription_id.as_str()).or_default().add(i, members);
                }
                Method::PullSecret(ps) if ps.credential == CredentialSource::RegistryToken => {
                    tokens.entry(registry.as_str()).or_default().add(i, members);
                }
                Method::PullSecret(_) => {}
            }
        }
    }
    let mut within = true;
    for (subscription, tally) in &assignments {
        within &= past_limit(c, tally, ROLE_ASSIGNMENTS_PER_SUBSCRIPTION, "too-many-role-assignments", |n| {
            (
                format!(
                    "the managed-identity bindings grant up to {n} role assignments on registries in subscription {subscription}: Azure allows {ROLE_ASSIGNMENTS_PER_SUBSCRIPTION} per subscription"
                ),
                "narrow the bindings' clusters or registries, or spread the registries over more subscriptions (every role assignment in a subscription counts)",
            )
        });
    }
    for (registry, tally) in &tokens {
        within &= past_limit(c, tally, TOKENS_PER_REGISTRY, "too-many-tokens", |n| {
            (
                format!(
                    "the registry-token bindings create {n} tokens on registry `{registry}`: a registry holds at most {TOKENS_PER_REGISTRY} (Premium; Basic 100, Standard 500)"
                ),
                "narrow the bindings' clusters, or use credential = \"service-principal\" for large fleets",
            )
        });
    }
    if pairs.total > MAX_PAIRS
        && let Some((binding, count)) = pairs.largest
    {
        c.error(
            "too-many-pairs",
            FieldPath::root().key("bindings").index(binding),
            format!(
                "the bindings select {} (cluster, registry) pairs, {count} of them in bindings[{binding}]; acrlink handles at most {MAX_PAIRS} per file",
                pairs.total
            ),
        );
        c.hint("narrow the bindings' clusters or registries, or split the fleet into files with different `owner`s");
        within = false;
    }
    within
}

/// A warning when `tally` is past `limit`, an error when far past; false when far past.
fn past_limit(
    c: &mut Checker<'_>,
    tally: &Tally,
    limit: u64,
    code: &'static str,
    describe: impl Fn(u64) -> (String, &'static str),
) -> bool {
    let Some((binding, count)) = tally.largest.filter(|_| tally.total > limit) else { return true };
    let (message, hint) = describe(tally.total);
    let message = format!("{message}; bindings[{binding}] alone selects {count}");
    let path = FieldPath::root().key("bindings").index(binding);
    let far = tally.total > limit.saturating_mul(HARD_LIMIT_FACTOR);
    if far {
        c.error(code, path, message);
    } else {
        c.warning(code, path, message);
    }
    c.hint(hint);
    !far
}

/// Duplicate and contradicting bindings, decided on the clusters the file names (discovered
/// clusters are checked again at plan time). Only bindings without errors take part.
fn check_overlaps(c: &mut Checker<'_>, bindings: &[Option<Binding>], clusters: &ClusterIndex<'_>) {
    let bindings_path = FieldPath::root().key("bindings");
    // Bindings by what they grant, so that a repeat is found by lookup, not by comparing
    // every pair of bindings. Two bindings are the same when their selectors print the same
    // (as `ClusterSelector`'s equality says) and the rest is equal, which the derived `Debug`
    // text of those plain values shows exactly.
    let mut first_with: HashMap<String, usize> = HashMap::new();
    for (i, binding) in bindings.iter().enumerate() {
        let Some(binding) = binding else { continue };
        let selectors: Vec<String> = binding.clusters.iter().map(ToString::to_string).collect();
        let grant = format!("{selectors:?} {:?} {:?} {:?}", binding.registries, binding.repositories, binding.method);
        let first = *first_with.entry(grant).or_insert(i);
        if first != i {
            c.error("duplicate-binding", bindings_path.index(i), format!("bindings[{i}] repeats bindings[{first}]"));
            c.hint("remove one of them");
        }
    }

    // Managed identity: one role assignment per (cluster, registry); its repository condition
    // must be the same in every binding that grants it.
    let mut identity_grants: BTreeMap<(&str, &str), (usize, &Vec<String>)> = BTreeMap::new();
    // Pull secrets: every (cluster, Secret name, registry) written with its namespaces, so that
    // overlapping namespaces ("*" overlaps every listed one it does not exclude) are compared.
    let mut secrets: BTreeMap<(&str, &str, &str), Vec<SecretWriter<'_>>> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for (i, binding) in bindings.iter().enumerate() {
        let Some(binding) = binding else { continue };
        // The fan-out check ran out of budget on no binding, or this would not run.
        let Ok(members) = clusters.members(&binding.clusters) else { return };
        for cluster in members.iter().map(|&n| clusters.cluster(n)) {
            for registry in &binding.registries {
                match &binding.method {
                    Method::ManagedIdentity => {
                        let key = (cluster.key.as_str(), registry.as_str());
                        match identity_grants.get(&key) {
                            Some((first, repos)) if *repos != &binding.repositories => {
                                let first = *first;
                                if !reported.insert(i) {
                                    continue;
                                }
                                let field = if binding.repositories.is_empty() {
                                    bindings_path.index(i)
                                } else {
                                    bindings_path.index(i).key("repositories")
                                };
                                c.error(
                                    "contradicting-bindings",
                                    field,
                                    format!("bindings[{i}] and bindings[{first}] both grant cluster `{}` on registry `{registry}` with different repositories", cluster.key),
                                );
                                c.hint("merge them into one binding with the union of repositories");
                            }
                            Some(_) => {}
                            None => {
                                identity_grants.insert(key, (i, &binding.repositories));
                            }
                        }
                    }
                    Method::PullSecret(ps) => {
                        let key = (cluster.key.as_str(), ps.secret_name.as_str(), registry.as_str());
                        let earlier = secrets.entry(key).or_default();
                        let clash = earlier.iter().find_map(|(first, other, other_repos)| {
                            let same_credential = other.credential == ps.credential
                                && (ps.credential.kind() != Credential::RegistryToken
                                    || **other_repos == binding.repositories);
                            if same_credential {
                                return None;
                            }
                            overlap(&other.namespaces, &ps.namespaces).map(|ns| (*first, ns))
                        });
                        earlier.push((i, ps, &binding.repositories));
                        let Some((first, namespace)) = clash else { continue };
                        if !reported.insert(i) {
                            continue;
                        }
                        let field = if c.written(&bindings_path.index(i).key("credential")) {
                            bindings_path.index(i).key("credential")
                        } else {
                            bindings_path.index(i)
                        };
                        c.error(
                            "contradicting-bindings",
                            field,
                            format!(
                                "Secret {namespace}/{} on cluster `{}` gets registry `{registry}` with different credentials from bindings[{first}] and bindings[{i}]",
                                ps.secret_name, cluster.key
                            ),
                        );
                        c.hint("use one credential per registry in a Secret, or a different secret_name");
                    }
                }
            }
        }
    }
}

/// One application, one place its secret is read: apply reads a service principal's secret by
/// client id, so two bindings naming different sources for it would leave which one wins to
/// the order of the file.
fn check_secret_sources(c: &mut Checker<'_>, bindings: &[Option<Binding>]) {
    let mut first_source: HashMap<&str, (usize, &SecretReference)> = HashMap::new();
    for (i, binding) in bindings.iter().enumerate() {
        let Some(Binding { method: Method::PullSecret(ps), .. }) = binding else { continue };
        let CredentialSource::ServicePrincipal { client_id, secret, .. } = &ps.credential else { continue };
        let &mut (first, source) = first_source.entry(client_id).or_insert((i, secret));
        if source == secret {
            continue;
        }
        let field = match secret {
            SecretReference::Environment(_) => "client_secret_env",
            SecretReference::File(_) => "client_secret_file",
        };
        c.error(
            "contradicting-bindings",
            FieldPath::root().key("bindings").index(i).key(field),
            format!("bindings[{i}] reads the secret of client {client_id} from another place than bindings[{first}]"),
        );
        c.hint("name the same client_secret_env or client_secret_file in every binding of one application");
    }
}

/// A binding that writes a Secret: its index, pull-secret settings and repositories.
type SecretWriter<'a> = (usize, &'a PullSecret, &'a Vec<String>);

/// A namespace two bindings' namespace choices certainly share, if any (selectors are only
/// known at plan time and are not compared here).
fn overlap(a: &Namespaces, b: &Namespaces) -> Option<String> {
    match (a, b) {
        (Namespaces::Listed(x), Namespaces::Listed(y)) => x.iter().find(|ns| y.contains(ns)).cloned(),
        (Namespaces::All { exclude }, Namespaces::Listed(listed))
        | (Namespaces::Listed(listed), Namespaces::All { exclude }) => {
            listed.iter().find(|ns| !exclude.contains(ns)).cloned()
        }
        (Namespaces::All { .. }, Namespaces::All { .. }) => Some("*".to_string()),
        _ => None,
    }
}
