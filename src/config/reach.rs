//! Which of the file's clusters each binding's selectors reach, found through indexes rather
//! than by comparing every selector with every cluster, within a fixed budget of comparisons
//! so that no file (however hostile) can make validation run for minutes.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::model::{Cluster, ClusterSelector, LabelSelector};
use super::selector::Requirement;

/// Selector-to-cluster comparisons allowed for one file: about a second of work. A fleet of
/// 50,000 clusters with a few dozen distinct label selectors needs a tenth of it.
pub const MAX_COMPARISONS: u64 = 10_000_000;

/// The comparison budget ran out: the file asks for more matching than validation will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

/// Cluster numbers: positions in the file's clusters sorted by key.
pub type Members = Rc<[u32]>;

/// For one label key: the clusters that have it, and those with each of its values.
type LabelPostings<'a> = (Vec<u32>, HashMap<&'a str, Vec<u32>>);

pub struct ClusterIndex<'a> {
    clusters: Vec<&'a Cluster>,
    by_key: HashMap<&'a str, u32>,
    /// Label key → (clusters with that key, clusters by value).
    by_label: HashMap<&'a str, LabelPostings<'a>>,
    all: Members,
    /// Members of each glob or label selector met so far, by its text: bindings often repeat one.
    cache: RefCell<HashMap<String, Members>>,
    /// Globs parsed so far, by their text: compiling a glob costs far more than a lookup.
    parsed: RefCell<HashMap<String, Result<ClusterSelector, String>>>,
    comparisons: Cell<u64>,
}

/// What compiling one glob costs, in comparisons: tens of microseconds, and about 13 KB held
/// for as long as the file's model lives. So at most 200 distinct globs are compiled per file
/// (a hostile file of 20,000 globs cheap to match held 270 MB of them); label selectors have no
/// such cost.
const GLOB_COMPILE_COST: usize = 50_000;

impl<'a> ClusterIndex<'a> {
    pub fn new(clusters: &'a BTreeMap<String, Cluster>) -> Self {
        let clusters: Vec<&Cluster> = clusters.values().collect();
        let mut by_key = HashMap::with_capacity(clusters.len());
        let mut by_label: HashMap<&str, LabelPostings<'_>> = HashMap::new();
        for (i, cluster) in (0u32..).zip(&clusters) {
            by_key.insert(cluster.key.as_str(), i);
            for (key, value) in &cluster.labels {
                let (with_key, by_value) = by_label.entry(key.as_str()).or_default();
                with_key.push(i);
                by_value.entry(value.as_str()).or_default().push(i);
            }
        }
        let all = (0..u32::try_from(clusters.len()).unwrap_or(u32::MAX)).collect();
        ClusterIndex {
            clusters,
            by_key,
            by_label,
            all,
            cache: RefCell::default(),
            parsed: RefCell::default(),
            comparisons: Cell::new(0),
        }
    }

    pub fn cluster(&self, number: u32) -> &'a Cluster {
        self.clusters[number as usize]
    }

    /// Counts `n` comparisons against the budget.
    pub fn charge(&self, n: usize) -> Result<(), Exhausted> {
        let total = self.comparisons.get().saturating_add(n as u64);
        self.comparisons.set(total);
        if total > MAX_COMPARISONS { Err(Exhausted) } else { Ok(()) }
    }

    /// The clusters in the file.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// `ClusterSelector::parse`, once per distinct glob (the costly kind to parse), each new
    /// glob charged to the budget.
    pub fn parse(&self, text: &str) -> Result<Result<ClusterSelector, String>, Exhausted> {
        if !text.contains(['*', '?', '[']) {
            return Ok(ClusterSelector::parse(text));
        }
        if let Some(parsed) = self.parsed.borrow().get(text) {
            return Ok(parsed.clone());
        }
        self.charge(GLOB_COMPILE_COST)?;
        let parsed = ClusterSelector::parse(text);
        self.parsed.borrow_mut().insert(text.to_string(), parsed.clone());
        Ok(parsed)
    }

    /// A registry glob compiled and compared with `keys` registry keys, charged to the budget.
    pub fn registry_glob(
        &self,
        text: &str,
        keys: usize,
    ) -> Result<Result<globset::GlobMatcher, globset::Error>, Exhausted> {
        self.charge(GLOB_COMPILE_COST.saturating_add(keys))?;
        Ok(globset::Glob::new(text).map(|g| g.compile_matcher()))
    }

    /// The clusters `selector` matches, in key order.
    pub fn resolve(&self, selector: &ClusterSelector) -> Result<Members, Exhausted> {
        match selector {
            ClusterSelector::All => Ok(Rc::clone(&self.all)),
            ClusterSelector::Name(name) => {
                Ok(self.by_key.get(name.as_str()).map_or_else(|| Rc::from([]), |&i| Rc::from([i])))
            }
            ClusterSelector::Glob { .. } | ClusterSelector::Labels(_) => {
                let text = selector.to_string();
                if let Some(members) = self.cache.borrow().get(&text) {
                    return Ok(Rc::clone(members));
                }
                let candidates = match selector {
                    ClusterSelector::Labels(labels) => self.candidates(labels),
                    ClusterSelector::Glob { pattern, .. } => self.with_prefix(literal_prefix(pattern)),
                    _ => &self.all,
                };
                self.charge(candidates.len())?;
                let members: Members = candidates
                    .iter()
                    .copied()
                    .filter(|&i| {
                        let cluster = self.cluster(i);
                        selector.matches(&cluster.key, &cluster.labels)
                    })
                    .collect();
                self.cache.borrow_mut().insert(text, Rc::clone(&members));
                Ok(members)
            }
        }
    }

    /// The clusters whose key starts with `prefix`: a run of the clusters sorted by key.
    fn with_prefix(&self, prefix: &str) -> &[u32] {
        let start = self.clusters.partition_point(|c| c.key.as_str() < prefix);
        let length = self.clusters[start..].partition_point(|c| c.key.starts_with(prefix));
        &self.all[start..start + length]
    }

    /// Only clusters that carry every label a selector requires can match it: the shortest of
    /// those lists is all that needs comparing.
    fn candidates(&self, selector: &LabelSelector) -> &[u32] {
        selector
            .requirements
            .iter()
            .filter_map(|requirement| match requirement {
                Requirement::Equals(key, value) => Some(
                    self.by_label
                        .get(key.as_str())
                        .and_then(|(_, by_value)| by_value.get(value.as_str()))
                        .map_or(&[][..], Vec::as_slice),
                ),
                Requirement::Exists(key) => {
                    Some(self.by_label.get(key.as_str()).map_or(&[][..], |(with_key, _)| with_key.as_slice()))
                }
                Requirement::NotEquals(..) | Requirement::NotExists(_) => None,
            })
            .min_by_key(|list| list.len())
            .unwrap_or(&self.all)
    }

    /// The clusters any of `selectors` matches, in key order, each once.
    pub fn members(&self, selectors: &[ClusterSelector]) -> Result<Members, Exhausted> {
        if let [selector] = selectors {
            return self.resolve(selector);
        }
        let mut union = Vec::new();
        for selector in selectors {
            let members = self.resolve(selector)?;
            self.charge(members.len())?;
            union.extend_from_slice(&members);
        }
        union.sort_unstable();
        union.dedup();
        Ok(union.into())
    }
}

/// The part of a glob before its first special character: every key it matches starts with it
/// (globs are case-sensitive here), so a hostile file of distinct globs such as "aks-0042x*"
/// costs a lookup each instead of a comparison with every cluster.
fn literal_prefix(pattern: &str) -> &str {
    let end = pattern.find(['*', '?', '[', '{', '\\']).unwrap_or(pattern.len());
    &pattern[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> BTreeMap<String, Cluster> {
        (0..n)
            .map(|i| {
                let key = format!("aks{i:03}");
                let labels = [("env".to_string(), if i % 2 == 0 { "prod" } else { "dev" }.to_string())]
                    .into_iter()
                    .chain((i % 3 == 0).then(|| ("team".to_string(), "a".to_string())))
                    .collect();
                let cluster = Cluster {
                    key: key.clone(),
                    name: key.clone(),
                    subscription_id: String::new(),
                    resource_group: "rg".into(),
                    labels,
                    kube_context: None,
                };
                (key, cluster)
            })
            .collect()
    }

    #[test]
    fn indexed_matching_agrees_with_comparing_every_cluster() {
        let clusters = fleet(60);
        let index = ClusterIndex::new(&clusters);
        for text in ["*", "aks007", "nope", "aks01*", "env=prod", "env=prod,team", "!team", "env!=prod,team=a", "x=y"] {
            let selector = ClusterSelector::parse(text).unwrap();
            let want: Vec<u32> = (0u32..)
                .zip(clusters.values())
                .filter(|(_, c)| selector.matches(&c.key, &c.labels))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(&*index.resolve(&selector).unwrap(), want.as_slice(), "{text}");
        }
        let both = [ClusterSelector::parse("aks001").unwrap(), ClusterSelector::parse("env=dev").unwrap()];
        assert_eq!(index.members(&both).unwrap().len(), 30);
    }

    #[test]
    fn a_glob_compares_only_the_clusters_its_literal_prefix_admits() {
        let clusters = fleet(1000);
        let index = ClusterIndex::new(&clusters);
        // (glob, clusters compared: those whose key starts with the glob's literal part)
        for (text, compared) in
            [("aks01*", 10), ("aks00?", 10), ("aks1[0-2]?", 100), ("x*", 0), ("a*", 1000), ("*1", 1000)]
        {
            let selector = ClusterSelector::parse(text).unwrap();
            let before = index.comparisons.get();
            let members = index.resolve(&selector).unwrap();
            let all: Vec<u32> = (0u32..)
                .zip(clusters.values())
                .filter(|(_, c)| selector.matches(&c.key, &c.labels))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(&*members, all.as_slice(), "{text}");
            assert_eq!(index.comparisons.get() - before, compared, "{text}");
        }
    }

    #[test]
    fn the_comparison_budget_runs_out() {
        let clusters = fleet(1000);
        let index = ClusterIndex::new(&clusters);
        let runs = (0..).map(|i| index.resolve(&ClusterSelector::parse(&format!("*x{i}")).unwrap()));
        let exhausted = runs.take(20_000).position(|r| r.is_err());
        assert_eq!(exhausted, Some((MAX_COMPARISONS / 1000) as usize));
    }
}
