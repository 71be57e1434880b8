//! How the imported file names and groups things: a key per cluster and registry (its Azure
//! name, made unique in id order), and one binding per set of clusters that pull from the same
//! registries with the same repositories, each list written as "*", a glob or keys, whichever is
//! shortest and selects exactly the same. Pure and deterministic.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::Live;
use super::grants::Pair;
use super::secret_bindings::SecretBinding;
use crate::model::CredentialKind;

/// File keys, parallel to `Live::clusters` and `Live::registries`.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub clusters: Vec<String>,
    pub registries: Vec<String>,
}

/// Azure names as keys; a name met again (another resource group or subscription) gets "-2", "-3"….
pub fn keys(live: &Live) -> Keys {
    Keys {
        clusters: unique(live.clusters.iter().map(|c| c.name.as_str())),
        registries: unique(live.registries.iter().map(|r| r.name.as_str())),
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut taken = HashSet::new();
    names
        .map(|name| {
            let mut key = name.to_string();
            let mut n = 1;
            while !taken.insert(key.to_ascii_lowercase()) {
                n += 1;
                key = format!("{name}-{n}");
            }
            key
        })
        .collect()
}

/// One binding of the imported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub clusters: Vec<String>,
    pub registries: Vec<String>,
    pub repositories: Vec<String>,
    /// None for a managed-identity binding.
    pub pull_secret: Option<PullSecretFields>,
}

/// What a pull-secret binding adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSecretFields {
    pub credential: CredentialKind,
    pub secret_name: String,
    pub namespaces: Vec<String>,
    pub service_accounts: Vec<String>,
}

/// The keys of every cluster and registry the file names, for selectors that must be exact
/// among them all.
pub struct FileKeys<'a> {
    pub clusters: BTreeSet<&'a str>,
    pub registries: BTreeSet<&'a str>,
}

impl<'a> FileKeys<'a> {
    pub fn new(keys: &'a Keys, pairs: &[Pair], secrets: &[SecretBinding]) -> FileKeys<'a> {
        let clusters = pairs.iter().map(|p| p.cluster).chain(secrets.iter().flat_map(|b| b.clusters.iter().copied()));
        let registries =
            pairs.iter().map(|p| p.registry).chain(secrets.iter().flat_map(|b| b.registries.iter().copied()));
        FileKeys {
            clusters: clusters.map(|i| keys.clusters[i].as_str()).collect(),
            registries: registries.map(|j| keys.registries[j].as_str()).collect(),
        }
    }
}

/// Pull-secret bindings with their selectors.
pub fn secret_bindings(keys: &Keys, bindings: &[SecretBinding], file: &FileKeys<'_>) -> Vec<Binding> {
    bindings
        .iter()
        .map(|b| {
            let clusters: BTreeSet<&str> = b.clusters.iter().map(|&i| keys.clusters[i].as_str()).collect();
            let registries: BTreeSet<&str> = b.registries.iter().map(|&j| keys.registries[j].as_str()).collect();
            Binding {
                name: b.name.clone().unwrap_or_default(),
                clusters: shortest(&clusters, &file.clusters),
                registries: shortest(&registries, &file.registries),
                repositories: b.repositories.clone(),
                pull_secret: Some(PullSecretFields {
                    credential: b.credential,
                    secret_name: b.secret_name.clone(),
                    namespaces: b.namespaces.iter().cloned().collect(),
                    service_accounts: b.service_accounts.iter().cloned().collect(),
                }),
            }
        })
        .collect()
}

/// Pairs grouped into bindings: clusters with the same registries (and repositories) share one.
pub fn bindings(keys: &Keys, pairs: &[Pair], file: &FileKeys<'_>, names: &mut HashSet<String>) -> Vec<Binding> {
    // Per cluster: its registries, by the repositories they are read with.
    let mut profiles: BTreeMap<&str, BTreeMap<&[String], BTreeSet<&str>>> = BTreeMap::new();
    for pair in pairs {
        let cluster = keys.clusters[pair.cluster].as_str();
        let registry = keys.registries[pair.registry].as_str();
        profiles.entry(cluster).or_default().entry(pair.repositories.as_slice()).or_default().insert(registry);
    }
    let mut groups: BTreeMap<(BTreeSet<&str>, &[String]), BTreeSet<&str>> = BTreeMap::new();
    for (cluster, by_repositories) in &profiles {
        for (repositories, registries) in by_repositories {
            groups.entry((registries.clone(), repositories)).or_default().insert(cluster);
        }
    }
    groups
        .into_iter()
        .map(|((registries, repositories), clusters)| Binding {
            name: binding_name(&registries, names),
            clusters: shortest(&clusters, &file.clusters),
            registries: shortest(&registries, &file.registries),
            repositories: repositories.to_vec(),
            pull_secret: None,
        })
        .collect()
}

/// "pull-REGISTRY" (or the first and how many more), unique in the file.
fn binding_name(registries: &BTreeSet<&str>, taken: &mut HashSet<String>) -> String {
    let mut listed = registries.iter();
    let base = match (listed.next(), registries.len()) {
        (Some(first), 1) => format!("pull-{first}"),
        (Some(first), 2) => format!("pull-{first}-and-{}", listed.next().unwrap_or(first)),
        (Some(first), n) => format!("pull-{first}-and-{}-more", n - 1),
        (None, _) => "pull".to_string(),
    };
    let mut name = base.clone();
    let mut n = 1;
    while !taken.insert(name.clone()) {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

/// The shortest selector list that picks exactly `chosen` among `all`: "*", a prefix glob, or the keys.
pub fn shortest(chosen: &BTreeSet<&str>, all: &BTreeSet<&str>) -> Vec<String> {
    if chosen == all {
        return vec!["*".into()];
    }
    let keys: Vec<String> = chosen.iter().map(|k| (*k).to_string()).collect();
    let prefix = common_prefix(chosen);
    let glob_exact = !prefix.is_empty() && all.iter().filter(|k| k.starts_with(prefix)).count() == chosen.len();
    // A key list costs its quotes and separators too.
    let listed: usize = keys.iter().map(|k| k.len() + 4).sum();
    if chosen.len() > 1 && glob_exact && prefix.len() + 3 < listed {
        return vec![format!("{prefix}*")];
    }
    keys
}

fn common_prefix<'a>(keys: &BTreeSet<&'a str>) -> &'a str {
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else { return "" };
    // Sorted: the first and last keys share the prefix every key shares.
    let length = first.bytes().zip(last.bytes()).take_while(|(a, b)| a == b).count();
    &first[..length]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
        items.iter().copied().collect()
    }

    #[test]
    fn selectors_are_the_shortest_exact_choice() {
        let all = set(&["aks-dev-01", "aks-dev-02", "aks-prod-01", "aks-stg-01"]);
        assert_eq!(shortest(&all, &all), vec!["*"]);
        assert_eq!(shortest(&set(&["aks-dev-01", "aks-dev-02"]), &all), vec!["aks-dev-0*"]);
        // A glob that would also pick another cluster is not exact: the keys are listed.
        assert_eq!(shortest(&set(&["aks-dev-01", "aks-prod-01"]), &all), vec!["aks-dev-01", "aks-prod-01"]);
        assert_eq!(shortest(&set(&["aks-stg-01"]), &all), vec!["aks-stg-01"]);
    }

    #[test]
    fn clusters_with_the_same_registries_share_a_binding() {
        let keys =
            Keys { clusters: vec!["a1".into(), "a2".into(), "b1".into()], registries: vec!["r1".into(), "r2".into()] };
        let pair = |cluster, registry, repositories: &[&str]| Pair {
            cluster,
            registry,
            repositories: repositories.iter().map(|r| (*r).to_string()).collect(),
        };
        let pairs =
            vec![pair(0, 0, &[]), pair(0, 1, &["team/*"]), pair(1, 0, &[]), pair(1, 1, &["team/*"]), pair(2, 0, &[])];
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let binding = |name: &str, clusters: &[&str], registries: &[&str], repositories: &[&str]| Binding {
            name: name.into(),
            clusters: strings(clusters),
            registries: strings(registries),
            repositories: strings(repositories),
            pull_secret: None,
        };
        let file = FileKeys::new(&keys, &pairs, &[]);
        assert_eq!(
            bindings(&keys, &pairs, &file, &mut HashSet::new()),
            vec![binding("pull-r1", &["*"], &["r1"], &[]), binding("pull-r2", &["a*"], &["r2"], &["team/*"])]
        );
    }

    #[test]
    fn names_met_again_get_a_number() {
        assert_eq!(unique(["aks", "AKS", "x", "aks"].into_iter()), vec!["aks", "AKS-2", "x", "aks-3"]);
    }
}
