//! The request ledger: how many calls each route got, by method, route template, subscription
//! and cluster, with the statuses answered. Admin calls are not counted.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    method: String,
    route: String,
    operation: String,
    subscription: Option<String>,
    cluster: Option<String>,
    registry: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    counts: HashMap<Key, BTreeMap<u16, u64>>,
}

/// Status recorded for a call whose connection was dropped on purpose.
pub const DROPPED: u16 = 0;

impl Ledger {
    pub fn record(&mut self, method: &str, route: &crate::route::Route, status: u16) {
        let key = Key {
            method: method.to_string(),
            route: route.template.to_string(),
            operation: route.operation.to_string(),
            subscription: route.subscription.as_deref().map(str::to_ascii_lowercase),
            cluster: route.cluster.clone(),
            registry: route.registry.as_deref().map(str::to_ascii_lowercase),
        };
        *self.counts.entry(key).or_default().entry(status).or_default() += 1;
    }

    pub fn reset(&mut self) {
        self.counts.clear();
    }

    pub fn snapshot(&self) -> LedgerSnapshot {
        let mut entries: Vec<LedgerEntry> = self
            .counts
            .iter()
            .map(|(key, statuses)| LedgerEntry {
                method: key.method.clone(),
                route: key.route.clone(),
                operation: key.operation.clone(),
                subscription: key.subscription.clone(),
                cluster: key.cluster.clone(),
                registry: key.registry.clone(),
                count: statuses.values().sum(),
                statuses: statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            })
            .collect();
        entries.sort_by(|a, b| {
            (&a.route, &a.method, &a.subscription, &a.cluster).cmp(&(&b.route, &b.method, &b.subscription, &b.cluster))
        });
        LedgerSnapshot { entries }
    }
}

/// A copy of the ledger at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    pub entries: Vec<LedgerEntry>,
}

/// Calls of one method on one route template (for one subscription and cluster, where the
/// route has them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub method: String,
    /// The route template, e.g. `/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}`.
    pub route: String,
    /// The swagger operation id, e.g. `RoleAssignments_Create`.
    pub operation: String,
    /// Lowercase subscription id, for routes under a subscription.
    pub subscription: Option<String>,
    /// Cluster name, for managedClusters routes (and the Kubernetes API of part 2).
    pub cluster: Option<String>,
    /// Login server, for registry data-plane routes (`/v2/`, `/oauth2/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    pub count: u64,
    /// Count per HTTP status answered (as a string key, `"0"` for dropped connections).
    pub statuses: BTreeMap<String, u64>,
}

impl LedgerSnapshot {
    /// Every counted call.
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|e| e.count).sum()
    }

    /// Calls with this method whose route template or operation id is `route` (ignoring case).
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.method.eq_ignore_ascii_case(method))
            .filter(|e| e.route.eq_ignore_ascii_case(route) || e.operation.eq_ignore_ascii_case(route))
            .map(|e| e.count)
            .sum()
    }

    /// Calls of one operation id, any method.
    pub fn count_operation(&self, operation: &str) -> u64 {
        self.entries.iter().filter(|e| e.operation.eq_ignore_ascii_case(operation)).map(|e| e.count).sum()
    }

    /// Calls answered with this status (0 = dropped connection).
    pub fn count_status(&self, status: u16) -> u64 {
        let key = status.to_string();
        self.entries.iter().filter_map(|e| e.statuses.get(&key)).sum()
    }

    /// Calls under one subscription.
    pub fn count_subscription(&self, subscription: &str) -> u64 {
        let sub = subscription.to_ascii_lowercase();
        self.entries.iter().filter(|e| e.subscription.as_deref() == Some(sub.as_str())).map(|e| e.count).sum()
    }

    /// Data-plane calls to one registry (by login server).
    pub fn count_registry(&self, login_server: &str) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.registry.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(login_server)))
            .map(|e| e.count)
            .sum()
    }

    /// Calls about one cluster (by name).
    pub fn count_cluster(&self, cluster: &str) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.cluster.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(cluster)))
            .map(|e| e.count)
            .sum()
    }
}
