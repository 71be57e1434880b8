//! The tenant's role assignments, by name (the order every list answers in) with two indexes:
//! by scope key, so lists at a scope read only the assignments at, above or below it, and by
//! principal, so a caller's grants do not cost a scan of the whole tenant.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ids::scope_key;
use crate::state::AssignmentRec;

#[derive(Default)]
pub(crate) struct Assignments {
    by_name: BTreeMap<String, AssignmentRec>,
    /// Scope key → names of the assignments made exactly there.
    by_scope: BTreeMap<String, BTreeSet<String>>,
    /// Principal object id (lowercase) → names of its assignments.
    by_principal: HashMap<String, BTreeSet<String>>,
}

/// The scope keys at and above `key`: `/`, `/subscriptions`, `/subscriptions/s`, ..., `key`.
fn at_and_above(key: &str) -> Vec<&str> {
    let mut keys = vec!["/"];
    keys.extend(key.match_indices('/').skip(1).map(|(i, _)| &key[..i]));
    if key != "/" {
        keys.push(key);
    }
    keys
}

impl Assignments {
    pub fn get(&self, name: &str) -> Option<&AssignmentRec> {
        self.by_name.get(name)
    }

    /// For changes that keep scope, principal and name (description, condition, times).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut AssignmentRec> {
        self.by_name.get_mut(name)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Every assignment, by name.
    pub fn values(&self) -> impl Iterator<Item = &AssignmentRec> {
        self.by_name.values()
    }

    /// Every assignment counts on the data plane at once (world loading).
    pub fn mark_propagated(&mut self) {
        for a in self.by_name.values_mut() {
            a.created_at = None;
        }
    }

    /// Adds (or replaces) the assignment under `name`.
    pub fn insert(&mut self, name: String, record: AssignmentRec) {
        self.remove(&name);
        self.by_scope.entry(scope_key(&record.scope)).or_default().insert(name.clone());
        self.by_principal.entry(record.principal_id.clone()).or_default().insert(name.clone());
        self.by_name.insert(name, record);
    }

    pub fn remove(&mut self, name: &str) -> Option<AssignmentRec> {
        let removed = self.by_name.remove(name)?;
        let key = scope_key(&removed.scope);
        if let Some(names) = self.by_scope.get_mut(&key) {
            names.remove(name);
            if names.is_empty() {
                self.by_scope.remove(&key);
            }
        }
        if let Some(names) = self.by_principal.get_mut(&removed.principal_id) {
            names.remove(name);
            if names.is_empty() {
                self.by_principal.remove(&removed.principal_id);
            }
        }
        Some(removed)
    }

    fn named<'a>(&'a self, names: impl IntoIterator<Item = &'a String>) -> impl Iterator<Item = &'a AssignmentRec> {
        names.into_iter().filter_map(|n| self.by_name.get(n))
    }

    /// The assignments made exactly at a scope.
    pub fn at(&self, scope: &str) -> impl Iterator<Item = &AssignmentRec> {
        self.named(self.by_scope.get(&scope_key(scope)).into_iter().flatten())
    }

    /// Names of the assignments strictly below a scope key.
    fn names_below(&self, key: &str) -> impl Iterator<Item = &String> {
        let prefix = if key == "/" { "/".to_string() } else { format!("{key}/") };
        self.by_scope
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter(move |(k, _)| k.as_str() != key)
            .flat_map(|(_, names)| names)
    }

    fn names_at_or_above(&self, key: &str) -> impl Iterator<Item = &String> {
        at_and_above(key).into_iter().filter_map(|k| self.by_scope.get(k)).flatten()
    }

    /// The assignments at or above a scope, by name.
    pub fn at_or_above(&self, scope: &str) -> Vec<&AssignmentRec> {
        let key = scope_key(scope);
        let names: BTreeSet<&String> = self.names_at_or_above(&key).collect();
        self.named(names).collect()
    }

    /// The assignments at, above or below a scope, by name.
    pub fn related(&self, scope: &str) -> Vec<&AssignmentRec> {
        let key = scope_key(scope);
        let names: BTreeSet<&String> = self.names_at_or_above(&key).chain(self.names_below(&key)).collect();
        self.named(names).collect()
    }

    /// The assignments at or below a scope, by name.
    pub fn at_or_below(&self, scope: &str) -> Vec<&AssignmentRec> {
        let key = scope_key(scope);
        let names: BTreeSet<&String> =
            self.by_scope.get(&key).into_iter().flatten().chain(self.names_below(&key)).collect();
        self.named(names).collect()
    }

    /// How many assignments are at or under a subscription.
    pub fn count_in_subscription(&self, sub: &str) -> usize {
        let key = scope_key(&format!("/subscriptions/{sub}"));
        self.by_scope.get(&key).map_or(0, BTreeSet::len) + self.names_below(&key).count()
    }

    /// The assignments of any of these principals (lowercase object ids).
    pub fn of_principals<'a>(&'a self, ids: &'a [String]) -> impl Iterator<Item = &'a AssignmentRec> {
        self.named(ids.iter().filter_map(|id| self.by_principal.get(id)).flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::is_at_or_above;

    fn record(name: &str, scope: &str, principal: &str) -> AssignmentRec {
        AssignmentRec {
            name: name.into(),
            scope: scope.into(),
            role_guid: "r".into(),
            principal_id: principal.into(),
            principal_type: "ServicePrincipal".into(),
            description: None,
            condition: None,
            condition_version: None,
            created_on: String::new(),
            updated_on: String::new(),
            created_by: None,
            updated_by: None,
            delegated_managed_identity_resource_id: None,
            created_at: None,
        }
    }

    const SCOPES: &[&str] = &[
        "/",
        "/providers/Microsoft.Management/managementGroups/mg",
        "/subscriptions/S1",
        "/subscriptions/s1/resourceGroups/RG",
        "/subscriptions/s1/resourceGroups/rg-2",
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/Acr",
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr2",
        "/subscriptions/s10",
        "/subscriptions/s2/resourceGroups/rg",
    ];

    /// The indexes answer what a scan with ARM's at/above/below tests answers, in name order.
    #[test]
    fn indexes_agree_with_a_scan() {
        let mut all = Assignments::default();
        for (i, scope) in SCOPES.iter().enumerate() {
            for p in 0..2 {
                let name = format!("{:02}-{p}", (i * 7 + p * 3) % 19);
                all.insert(name.clone(), record(&name, scope, &format!("p{p}")));
            }
        }
        all.insert("05-0".into(), record("05-0", SCOPES[4], "p1"));
        for scope in SCOPES.iter().copied().chain(["/subscriptions/s1/resourceGroups/other", "/subscriptions/S2"]) {
            let names = |v: Vec<&AssignmentRec>| v.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
            let scan = |keep: &dyn Fn(&str) -> bool| {
                all.values().filter(|a| keep(&a.scope)).map(|a| a.name.clone()).collect::<Vec<_>>()
            };
            assert_eq!(names(all.related(scope)), scan(&|a| is_at_or_above(a, scope) || is_at_or_above(scope, a)));
            assert_eq!(names(all.at_or_above(scope)), scan(&|a| is_at_or_above(a, scope)));
            assert_eq!(names(all.at_or_below(scope)), scan(&|a| is_at_or_above(scope, a)));
            assert_eq!(names(all.at(scope).collect()), scan(&|a| scope_key(a) == scope_key(scope)));
        }
        let in_s1 = all.values().filter(|a| crate::ids::subscription_of(&a.scope).as_deref() == Some("s1")).count();
        assert_eq!((all.count_in_subscription("S1"), in_s1 > 5), (in_s1, true), "s10 is another subscription");
        let p1: Vec<String> = vec!["p1".into()];
        assert_eq!(all.of_principals(&p1).count(), all.values().filter(|a| a.principal_id == "p1").count());
        let removed = all.remove("05-0").map(|a| a.scope);
        assert_eq!(removed.as_deref(), Some(SCOPES[4]));
        assert!(all.at(SCOPES[4]).all(|a| a.name != "05-0") && all.of_principals(&p1).all(|a| a.name != "05-0"));
    }

    #[test]
    fn scopes_at_and_above() {
        assert_eq!(at_and_above("/"), vec!["/"]);
        assert_eq!(
            at_and_above("/subscriptions/s/resourcegroups/rg"),
            vec![
                "/",
                "/subscriptions",
                "/subscriptions/s",
                "/subscriptions/s/resourcegroups",
                "/subscriptions/s/resourcegroups/rg"
            ]
        );
    }
}
