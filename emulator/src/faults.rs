//! Live fault injection: latency with jitter and one-shot rules (429, 5xx, dropped connection)
//! for the next N calls of a route.

use std::time::Duration;

use rand::Rng;

use crate::world::{FaultKind, FaultRule, Faults};

/// A fault that fires for one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fire {
    Throttle { retry_after_seconds: u64 },
    ServerError { status: u16 },
    Drop,
}

pub(crate) struct FaultState {
    pub faults: Faults,
}

impl FaultState {
    pub fn new(faults: Faults) -> FaultState {
        FaultState { faults }
    }

    /// The delay to add to this call.
    pub fn latency(&self) -> Duration {
        let jitter = if self.faults.jitter_ms > 0 { rand::rng().random_range(0..=self.faults.jitter_ms) } else { 0 };
        Duration::from_millis(self.faults.latency_ms + jitter)
    }

    /// Spends one count of the first rule matching this call, if any.
    pub fn take(&mut self, method: &str, route: &str, operation: &str, target: Option<&str>) -> Option<Fire> {
        let rule = self
            .faults
            .rules
            .iter_mut()
            .find(|rule| rule.count > 0 && matches(rule, method, route, operation, target))?;
        rule.count -= 1;
        let fire = match rule.kind {
            FaultKind::Throttle => Fire::Throttle { retry_after_seconds: rule.retry_after_seconds.unwrap_or(1) },
            FaultKind::ServerError => Fire::ServerError { status: rule.status.unwrap_or(500) },
            FaultKind::Drop => Fire::Drop,
        };
        self.faults.rules.retain(|rule| rule.count > 0);
        Some(fire)
    }
}

/// A rule's route may end in `@<cluster name or login server>` to hit one cluster's API or
/// one registry's data plane only (`readCoreV1NamespacedSecret@aks-prod-1`).
fn matches(rule: &FaultRule, method: &str, route: &str, operation: &str, target: Option<&str>) -> bool {
    let method_ok = rule.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method));
    let (wanted, only) = match rule.route.rsplit_once('@') {
        Some((r, t)) if !r.is_empty() => (r, Some(t)),
        _ => (rule.route.as_str(), None),
    };
    let target_ok = only.is_none_or(|t| target.is_some_and(|x| x.eq_ignore_ascii_case(t)));
    let route_ok = wanted == "*" || wanted.eq_ignore_ascii_case(route) || wanted.eq_ignore_ascii_case(operation);
    method_ok && route_ok && target_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(route: &str, method: Option<&str>, kind: FaultKind, count: u32) -> FaultRule {
        FaultRule {
            route: route.into(),
            method: method.map(str::to_string),
            kind,
            count,
            status: None,
            retry_after_seconds: None,
        }
    }

    #[test]
    fn rules_fire_n_times_then_vanish() {
        let mut state = FaultState::new(Faults {
            rules: vec![rule("RoleAssignments_Create", None, FaultKind::Throttle, 2)],
            ..Faults::default()
        });
        assert_eq!(state.take("GET", "/x", "Other", None), None);
        assert!(matches!(state.take("PUT", "/r", "roleassignments_create", None), Some(Fire::Throttle { .. })));
        assert!(state.take("PUT", "/r", "RoleAssignments_Create", None).is_some());
        assert_eq!(state.take("PUT", "/r", "RoleAssignments_Create", None), None);
        assert!(state.faults.rules.is_empty());
    }

    #[test]
    fn method_filter_and_wildcard() {
        let mut state =
            FaultState::new(Faults { rules: vec![rule("*", Some("DELETE"), FaultKind::Drop, 1)], ..Faults::default() });
        assert_eq!(state.take("GET", "/x", "A", None), None);
        assert_eq!(state.take("DELETE", "/x", "A", None), Some(Fire::Drop));
    }

    #[test]
    fn rules_can_name_one_cluster() {
        let mut state = FaultState::new(Faults {
            rules: vec![rule("readCoreV1NamespacedSecret@aks-2", None, FaultKind::Drop, 1)],
            ..Faults::default()
        });
        assert_eq!(state.take("GET", "/k8s", "readCoreV1NamespacedSecret", Some("aks-1")), None);
        assert_eq!(state.take("GET", "/k8s", "readCoreV1NamespacedSecret", None), None);
        assert_eq!(state.take("GET", "/k8s", "readCoreV1NamespacedSecret", Some("AKS-2")), Some(Fire::Drop));
    }
}
