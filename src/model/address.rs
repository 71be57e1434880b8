//! Typed addresses of everything a plan names. The printed form (`secret[cluster/ns/name]`) is
//! what users read and what saved plans store; the variants are what the engine decides on.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who a role assignment lets pull: a cluster of the file (by key), the service principal of a
/// pull-secret binding (by client id), or, for an orphaned grant, the principal it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grantee {
    Cluster(String),
    ServicePrincipal(String),
    Principal(String),
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::Cluster(key) => f.write_str(key),
            Grantee::ServicePrincipal(client_id) => write!(f, "sp:{client_id}"),
            Grantee::Principal(id) => write!(f, "principal:{id}"),
        }
    }
}

/// One node of the plan and the graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    Cluster(String),
    Registry(String),
    /// `role` tells apart two grants of one pair while a registry switches roles.
    RoleAssignment {
        grantee: Grantee,
        registry: String,
        role: Option<String>,
    },
    Namespace {
        cluster: String,
        name: String,
    },
    Secret {
        cluster: String,
        namespace: String,
        name: String,
    },
    ServiceAccount {
        cluster: String,
        namespace: String,
        name: String,
    },
    RegistryToken {
        registry: String,
        name: String,
    },
    ScopeMap {
        registry: String,
        name: String,
    },
}

/// Which kind of object an address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Cluster,
    Registry,
    RoleAssignment,
    Namespace,
    Secret,
    ServiceAccount,
    RegistryToken,
    ScopeMap,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Cluster,
        Kind::Registry,
        Kind::RoleAssignment,
        Kind::Namespace,
        Kind::Secret,
        Kind::ServiceAccount,
        Kind::RegistryToken,
        Kind::ScopeMap,
    ];

    /// The word before `[` in the printed address.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Cluster => "cluster",
            Kind::Registry => "registry",
            Kind::RoleAssignment => "role_assignment",
            Kind::Namespace => "namespace",
            Kind::Secret => "secret",
            Kind::ServiceAccount => "service_account",
            Kind::RegistryToken => "registry_token",
            Kind::ScopeMap => "scope_map",
        }
    }
}

impl Address {
    pub fn role_assignment(cluster: &str, registry: &str) -> Address {
        Address::RoleAssignment { grantee: Grantee::Cluster(cluster.into()), registry: registry.into(), role: None }
    }

    pub fn secret(cluster: &str, namespace: &str, name: &str) -> Address {
        Address::Secret { cluster: cluster.into(), namespace: namespace.into(), name: name.into() }
    }

    pub fn service_account(cluster: &str, namespace: &str, name: &str) -> Address {
        Address::ServiceAccount { cluster: cluster.into(), namespace: namespace.into(), name: name.into() }
    }

    pub fn namespace(cluster: &str, name: &str) -> Address {
        Address::Namespace { cluster: cluster.into(), name: name.into() }
    }

    pub fn token(registry: &str, name: &str) -> Address {
        Address::RegistryToken { registry: registry.into(), name: name.into() }
    }

    pub fn scope_map(registry: &str, name: &str) -> Address {
        Address::ScopeMap { registry: registry.into(), name: name.into() }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Address::Cluster(_) => Kind::Cluster,
            Address::Registry(_) => Kind::Registry,
            Address::RoleAssignment { .. } => Kind::RoleAssignment,
            Address::Namespace { .. } => Kind::Namespace,
            Address::Secret { .. } => Kind::Secret,
            Address::ServiceAccount { .. } => Kind::ServiceAccount,
            Address::RegistryToken { .. } => Kind::RegistryToken,
            Address::ScopeMap { .. } => Kind::ScopeMap,
        }
    }

    /// The node this object hangs off in the graph: its cluster or its registry.
    pub fn parent(&self) -> Option<Address> {
        match self {
            Address::Cluster(_) | Address::Registry(_) => None,
            Address::RoleAssignment { registry, .. }
            | Address::RegistryToken { registry, .. }
            | Address::ScopeMap { registry, .. } => Some(Address::Registry(registry.clone())),
            Address::Namespace { cluster, .. }
            | Address::Secret { cluster, .. }
            | Address::ServiceAccount { cluster, .. } => Some(Address::Cluster(cluster.clone())),
        }
    }

    /// The cluster an object lives in or lets pull: a namespace's, Secret's or service
    /// account's, a kubelet grant's; None for registry-side objects and other principals' grants.
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Address::Cluster(key) => Some(key),
            Address::Namespace { cluster, .. }
            | Address::Secret { cluster, .. }
            | Address::ServiceAccount { cluster, .. } => Some(cluster),
            _ => self.grant_cluster(),
        }
    }

    /// The cluster a role assignment lets pull, when that cluster is in the file.
    pub fn grant_cluster(&self) -> Option<&str> {
        match self {
            Address::RoleAssignment { grantee: Grantee::Cluster(key), .. } => Some(key),
            _ => None,
        }
    }

    fn parts(&self) -> Vec<&str> {
        match self {
            Address::Cluster(key) | Address::Registry(key) => vec![key],
            Address::RoleAssignment { .. } => Vec::new(),
            Address::Namespace { cluster, name } => vec![cluster, name],
            Address::Secret { cluster, namespace, name } | Address::ServiceAccount { cluster, namespace, name } => {
                vec![cluster, namespace, name]
            }
            Address::RegistryToken { registry, name } | Address::ScopeMap { registry, name } => vec![registry, name],
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.kind().prefix())?;
        match self {
            Address::RoleAssignment { grantee, registry, role } => {
                write!(f, "{grantee}/{registry}")?;
                if let Some(role) = role {
                    write!(f, ":{role}")?;
                }
            }
            _ => f.write_str(&self.parts().join("/"))?,
        }
        f.write_str("]")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an acrlink address (expected e.g. secret[cluster/namespace/name])")]
pub struct AddressError {
    pub text: String,
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Address, AddressError> {
        let error = || AddressError { text: text.to_string() };
        let (prefix, rest) = text.split_once('[').ok_or_else(error)?;
        let inner = rest.strip_suffix(']').ok_or_else(error)?;
        let kind = Kind::ALL.into_iter().find(|k| k.prefix() == prefix).ok_or_else(error)?;
        let parts: Vec<&str> = inner.split('/').collect();
        let owned = |i: usize| parts[i].to_string();
        let address = match (kind, parts.len()) {
            (Kind::Cluster, 1) => Address::Cluster(owned(0)),
            (Kind::Registry, 1) => Address::Registry(owned(0)),
            (Kind::RoleAssignment, 2) => {
                let grantee = if let Some(id) = parts[0].strip_prefix("principal:") {
                    Grantee::Principal(id.to_string())
                } else if let Some(client_id) = parts[0].strip_prefix("sp:") {
                    Grantee::ServicePrincipal(client_id.to_string())
                } else {
                    Grantee::Cluster(owned(0))
                };
                let (registry, role) = match parts[1].split_once(':') {
                    Some((registry, role)) => (registry.to_string(), Some(role.to_string())),
                    None => (owned(1), None),
                };
                Address::RoleAssignment { grantee, registry, role }
            }
            (Kind::Namespace, 2) => Address::Namespace { cluster: owned(0), name: owned(1) },
            (Kind::Secret, 3) => Address::Secret { cluster: owned(0), namespace: owned(1), name: owned(2) },
            (Kind::ServiceAccount, 3) => {
                Address::ServiceAccount { cluster: owned(0), namespace: owned(1), name: owned(2) }
            }
            (Kind::RegistryToken, 2) => Address::RegistryToken { registry: owned(0), name: owned(1) },
            (Kind::ScopeMap, 2) => Address::ScopeMap { registry: owned(0), name: owned(1) },
            _ => return Err(error()),
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(error());
        }
        Ok(address)
    }
}

/// Ordered as the printed form sorts, so every output keeps the order users already know.
impl Ord for Address {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

// Comparing with text needs the printed form; these serve tests and messages, not hot paths.
#[allow(clippy::cmp_owned)]
impl PartialEq<str> for Address {
    fn eq(&self, other: &str) -> bool {
        self.to_string() == other
    }
}

#[allow(clippy::cmp_owned)]
impl PartialEq<&str> for Address {
    fn eq(&self, other: &&str) -> bool {
        self.to_string() == *other
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Address {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Address".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "kind[parts], e.g. role_assignment[aks1/acr1] or secret[aks1/default/acr-pull]",
            "pattern": "^(cluster|registry|role_assignment|namespace|secret|service_account|registry_token|scope_map)\\[[^\\]]+\\]$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_printed_form() {
        let addresses = [
            Address::Cluster("aks1".into()),
            Address::Registry("acr1".into()),
            Address::role_assignment("aks1", "acr1"),
            Address::RoleAssignment {
                grantee: Grantee::Principal("00000000-0000-0000-0000-0000000000ff".into()),
                registry: "acr1".into(),
                role: Some("AcrPull".into()),
            },
            Address::RoleAssignment {
                grantee: Grantee::ServicePrincipal("11111111-2222-3333-4444-555555555555".into()),
                registry: "acr1".into(),
                role: None,
            },
            Address::namespace("aks1", "apps"),
            Address::secret("aks1", "apps", "acr-pull"),
            Address::service_account("aks1", "apps", "default"),
            Address::token("acr1", "acrlink-1a2b-aks1-0011"),
            Address::scope_map("acr1", "acrlink-1a2b-b-0011"),
        ];
        for address in addresses {
            let text = address.to_string();
            assert_eq!(text.parse::<Address>(), Ok(address.clone()), "{text}");
            let json = serde_json::to_string(&address).unwrap();
            assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), address);
        }
        assert_eq!(Address::secret("c", "n", "s").to_string(), "secret[c/n/s]");
        assert_eq!(
            "role_assignment[principal:p1/acr1:Container Registry Repository Reader]".parse::<Address>().unwrap(),
            Address::RoleAssignment {
                grantee: Grantee::Principal("p1".into()),
                registry: "acr1".into(),
                role: Some("Container Registry Repository Reader".into())
            }
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for text in ["", "secret", "secret[a/b]", "secret[a/b/c", "widget[a]", "secret[a//c]", "cluster[a/b]"] {
            assert!(text.parse::<Address>().is_err(), "{text}");
        }
    }

    #[test]
    fn order_is_the_printed_order() {
        let mut addresses = [
            Address::role_assignment("aks1", "acr1"),
            Address::RoleAssignment {
                grantee: Grantee::Cluster("aks1".into()),
                registry: "acr1".into(),
                role: Some("AcrPull".into()),
            },
            Address::secret("aks1", "a", "b"),
            Address::namespace("aks1", "a"),
        ];
        addresses.sort();
        let printed: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        let mut sorted = printed.clone();
        sorted.sort();
        assert_eq!(printed, sorted);
    }
}
