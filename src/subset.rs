//! Subset runs (`--target ADDRESS`, `--cluster SELECTOR` on plan, apply and drift): the plan
//! of the whole file, restricted to the changes selected and the changes they depend on (a
//! Secret needs its principal's grant and its token's new password first), as Terraform's
//! `-target` does. The whole fleet is still read, so nothing outside the subset is mistaken
//! for an orphan; only what is applied and shown is narrowed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::selector::ClusterSelector;
use crate::model::{Address, Finding};
use crate::observe::Inventory;
use crate::plan::Plan;

/// What a subset run selects; empty selects everything.
#[derive(Debug, Default)]
pub struct Subset {
    targets: Vec<(String, globset::GlobMatcher)>,
    clusters: Vec<ClusterSelector>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubsetError {
    #[error("invalid --target {pattern:?}: {why}")]
    Target { pattern: String, why: String },
    #[error("invalid --cluster {selector:?}: {why}")]
    Cluster { selector: String, why: String },
}

impl Subset {
    /// `targets` are addresses or globs over them (`role_assignment[aks-dev-*/*]`); `clusters`
    /// use the bindings' selector language (a key, a glob or labels such as `env=dev`).
    pub fn new(targets: &[String], clusters: &[String]) -> Result<Subset, SubsetError> {
        let targets = targets
            .iter()
            .map(|pattern| {
                // `[` and `]` belong to every address: literal here, not a character class.
                let literal = pattern.replace('[', "\\[").replace(']', "\\]");
                globset::GlobBuilder::new(&literal)
                    .literal_separator(false)
                    .build()
                    .map(|glob| (pattern.clone(), glob.compile_matcher()))
                    .map_err(|e| SubsetError::Target { pattern: pattern.clone(), why: e.kind().to_string() })
            })
            .collect::<Result<_, _>>()?;
        let clusters = clusters
            .iter()
            .map(|text| {
                ClusterSelector::parse(text).map_err(|why| SubsetError::Cluster { selector: text.clone(), why })
            })
            .collect::<Result<_, _>>()?;
        Ok(Subset { targets, clusters })
    }

    pub fn is_everything(&self) -> bool {
        self.targets.is_empty() && self.clusters.is_empty()
    }

    /// The plan narrowed to the selected changes and everything they depend on, with a warning
    /// saying it is partial and one per target that selects nothing.
    pub fn restrict(&self, mut plan: Plan, inventory: &Inventory) -> Plan {
        if self.is_everything() {
            return plan;
        }
        let labels: HashMap<&str, &BTreeMap<String, String>> =
            inventory.clusters.iter().map(|c| (c.key.as_str(), &c.labels)).collect();
        let total = plan.changes.len();
        let selected = self.with_dependencies(&plan, &labels);
        plan.changes.retain(|c| selected.contains(&c.address));
        plan.unchanged.retain(|u| self.selects(&u.address, &labels));
        plan.summary = Plan::summarize(&plan.changes);
        for (pattern, matcher) in &self.targets {
            let addresses = plan.changes.iter().map(|c| &c.address).chain(plan.unchanged.iter().map(|u| &u.address));
            if !addresses.map(ToString::to_string).any(|a| matcher.is_match(&a)) {
                plan.warnings.push(Finding {
                    subject: format!("--target {pattern}"),
                    message: "selects no resource of this plan".into(),
                    hint: Some("`acrlink plan --show-unchanged` lists every address".into()),
                });
            }
        }
        plan.warnings.push(Finding {
            subject: "subset".into(),
            message: format!(
                "this plan covers only what --target/--cluster select and what that depends on: {} of {total} change(s)",
                plan.changes.len()
            ),
            hint: Some("run without --target and --cluster to see and apply the rest".into()),
        });
        plan
    }

    /// Selected changes plus, transitively, the changes they depend on.
    fn with_dependencies(&self, plan: &Plan, labels: &HashMap<&str, &BTreeMap<String, String>>) -> BTreeSet<Address> {
        let by_address: HashMap<&Address, &Vec<Address>> =
            plan.changes.iter().map(|c| (&c.address, &c.depends_on)).collect();
        let mut selected = BTreeSet::new();
        let mut pending: Vec<&Address> =
            plan.changes.iter().map(|c| &c.address).filter(|a| self.selects(a, labels)).collect();
        while let Some(address) = pending.pop() {
            if !selected.insert(address.clone()) {
                continue;
            }
            if let Some(needs) = by_address.get(address) {
                pending.extend(needs.iter().filter(|n| by_address.contains_key(n)));
            }
        }
        selected
    }

    /// Whether the address itself is selected: every target (if any) and cluster selector
    /// (if any) agree; an object of no cluster (a token, a scope map, a service principal's
    /// grant) is selected by --cluster only as something a selected change depends on.
    fn selects(&self, address: &Address, labels: &HashMap<&str, &BTreeMap<String, String>>) -> bool {
        let text = address.to_string();
        let targeted = self.targets.is_empty() || self.targets.iter().any(|(_, m)| m.is_match(&text));
        let clustered = self.clusters.is_empty()
            || address.cluster().is_some_and(|cluster| {
                let none = BTreeMap::new();
                let labels = labels.get(cluster).copied().unwrap_or(&none);
                self.clusters.iter().any(|s| s.matches(cluster, labels))
            });
        targeted && clustered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_globs_over_addresses_whose_brackets_are_literal() {
        let subset = Subset::new(&["role_assignment[aks-dev-*/*]".into()], &[]).unwrap();
        let none = HashMap::new();
        assert!(subset.selects(&Address::role_assignment("aks-dev-01", "acr"), &none));
        assert!(!subset.selects(&Address::role_assignment("aks-stg-01", "acr"), &none));
        assert!(!subset.selects(&Address::secret("aks-dev-01", "default", "x"), &none));
        assert!(Subset::new(&["secret[{a".into()], &[]).is_err());
        assert!(Subset::new(&[], &["".into()]).is_err(), "an empty selector");
    }
}
