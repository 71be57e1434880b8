//! Names acrlink gives the ACR objects it owns and the addresses of pull-secret resources.
//! Token and scope-map names start with `acrlink-` (that prefix is how ownership is known:
//! ACR tokens carry no description) and end with a hash, so two clusters or bindings whose
//! names differ only in characters ACR refuses still get distinct names.

use sha2::{Digest, Sha256};

use crate::model::Address;
use crate::provider::normalize_id;

use crate::config::model::Owner;
use crate::ownership::acr_prefix;

/// The scope map every registry has for reading all repositories.
pub const ALL_REPOSITORIES_SCOPE_MAP: &str = "_repositories_pull";

fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// ACR names: 5–50 of letters, digits and '-'.
fn stem(text: &str, max: usize) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let trimmed: String = cleaned.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-");
    trimmed.chars().take(max).collect::<String>().trim_end_matches('-').to_string()
}

pub fn token_name(owner: &Owner, cluster_key: &str, cluster_id: &str, binding: &str, registry: &str) -> String {
    let hash = short_hash(&format!("{}|{binding}|{registry}", normalize_id(cluster_id)));
    format!("{}{}-{hash}", acr_prefix(owner), stem(cluster_key, 27))
}

pub fn scope_map_name(owner: &Owner, binding: &str, registry: &str) -> String {
    let hash = short_hash(&format!("{binding}|{registry}"));
    format!("{}{}-{hash}", acr_prefix(owner), stem(binding, 27))
}

/// Scope-map actions that read the given repository patterns ("team/*" is a prefix).
pub fn read_actions(repositories: &[String]) -> Vec<String> {
    let mut actions: Vec<String> = repositories
        .iter()
        .flat_map(|r| [format!("repositories/{r}/content/read"), format!("repositories/{r}/metadata/read")])
        .collect();
    actions.sort();
    actions.dedup();
    actions
}

pub fn secret_address(cluster: &str, namespace: &str, name: &str) -> Address {
    Address::secret(cluster, namespace, name)
}

pub fn service_account_address(cluster: &str, namespace: &str, name: &str) -> Address {
    Address::service_account(cluster, namespace, name)
}

pub fn namespace_address(cluster: &str, namespace: &str) -> Address {
    Address::namespace(cluster, namespace)
}

pub fn token_address(registry: &str, name: &str) -> Address {
    Address::token(registry, name)
}

pub fn scope_map_address(registry: &str, name: &str) -> Address {
    Address::scope_map(registry, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_acr_valid_distinct_and_stable() {
        let owner = Owner::default();
        let prefix = acr_prefix(&owner);
        let a = token_name(&owner, "AKS_prod.01", "/subscriptions/S/x", "b", "acr");
        assert!(a.starts_with(&format!("{prefix}aks-prod-01-")), "{a}");
        assert!(a.len() <= 50 && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(a, token_name(&owner, "AKS_prod.01", "/subscriptions/s/X", "b", "acr"));
        assert_ne!(a, token_name(&owner, "AKS_prod.01", "/subscriptions/s/x", "b2", "acr"));
        let theirs = token_name(&Owner::named("payments"), "AKS_prod.01", "/subscriptions/S/x", "b", "acr");
        assert!(!theirs.starts_with(&prefix), "{theirs} vs {prefix}");
        let long = token_name(&owner, &"x".repeat(200), "id", "b", "r");
        assert!(long.len() <= 50, "{long}");
        let map = scope_map_name(&owner, "bindings[3]", "acr");
        assert!(map.starts_with(&format!("{prefix}bindings-3-")), "{map}");
        assert_eq!(
            read_actions(&["team/*".into()]),
            vec!["repositories/team/*/content/read", "repositories/team/*/metadata/read"]
        );
    }
}
