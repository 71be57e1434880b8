//! ARM's JSON shapes for the resources acrlink reads, and their conversion to the provider's
//! plain types. Unknown fields are ignored: ARM adds fields without notice.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::provider::{
    KubeletIdentity, LiveCluster, LiveRegistry, LiveRoleAssignment, PrivateEndpoint, RegistryAccess, RoleAssignmentMode,
};

#[derive(Debug, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(default, rename = "nextLink")]
    pub next_link: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ManagedCluster {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub properties: ManagedClusterProperties,
}

#[derive(Debug, Default, Deserialize)]
pub struct ManagedClusterProperties {
    #[serde(default, rename = "identityProfile")]
    pub identity_profile: Option<BTreeMap<String, UserAssignedIdentity>>,
}

#[derive(Debug, Deserialize)]
pub struct UserAssignedIdentity {
    #[serde(default, rename = "clientId")]
    pub client_id: Option<String>,
    #[serde(default, rename = "objectId")]
    pub object_id: Option<String>,
    #[serde(default, rename = "resourceId")]
    pub resource_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Registry {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub sku: Option<Sku>,
    #[serde(default)]
    pub properties: RegistryProperties,
}

#[derive(Debug, Deserialize)]
pub struct Sku {
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct RegistryPolicies {
    #[serde(default, rename = "azureADAuthenticationAsArmPolicy")]
    pub aad_as_arm: Option<Status>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NetworkRuleSet {
    #[serde(default, rename = "defaultAction")]
    pub default_action: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PrivateEndpointConnection {
    #[serde(default)]
    pub properties: PrivateEndpointConnectionProperties,
}

#[derive(Debug, Default, Deserialize)]
pub struct PrivateEndpointConnectionProperties {
    #[serde(default, rename = "privateEndpoint")]
    pub private_endpoint: Option<IdOnly>,
    #[serde(default, rename = "privateLinkServiceConnectionState")]
    pub state: Option<Status>,
}

#[derive(Debug, Default, Deserialize)]
pub struct IdOnly {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct RoleDefinition {
    pub id: String,
    #[serde(default)]
    pub properties: RoleDefinitionProperties,
}

#[derive(Debug, Default, Deserialize)]
pub struct RoleDefinitionProperties {
    #[serde(default, rename = "roleName")]
    pub role_name: String,
    #[serde(default)]
    pub permissions: Vec<RolePermission>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RolePermission {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default, rename = "notActions")]
    pub not_actions: Vec<String>,
    #[serde(default, rename = "dataActions")]
    pub data_actions: Vec<String>,
    #[serde(default, rename = "notDataActions")]
    pub not_data_actions: Vec<String>,
}

impl From<RoleDefinition> for crate::provider::RoleDefinition {
    fn from(definition: RoleDefinition) -> Self {
        crate::provider::RoleDefinition {
            id: definition.id,
            role_name: definition.properties.role_name,
            permissions: definition
                .properties
                .permissions
                .into_iter()
                .map(|p| crate::provider::Permission {
                    actions: p.actions,
                    not_actions: p.not_actions,
                    data_actions: p.data_actions,
                    not_data_actions: p.not_data_actions,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RegistryProperties {
    #[serde(default, rename = "loginServer")]
    pub login_server: Option<String>,
    #[serde(default, rename = "adminUserEnabled")]
    pub admin_user_enabled: Option<bool>,
    #[serde(default, rename = "roleAssignmentMode")]
    pub role_assignment_mode: Option<String>,
    #[serde(default)]
    pub policies: Option<RegistryPolicies>,
    #[serde(default, rename = "publicNetworkAccess")]
    pub public_network_access: Option<String>,
    #[serde(default, rename = "networkRuleSet")]
    pub network_rule_set: Option<NetworkRuleSet>,
    #[serde(default, rename = "privateEndpointConnections")]
    pub private_endpoint_connections: Option<Vec<PrivateEndpointConnection>>,
}

impl RegistryProperties {
    fn access(&mut self, sku: Option<Sku>) -> RegistryAccess {
        let is = |value: Option<&str>, expected: &str| value.is_some_and(|v| v.eq_ignore_ascii_case(expected));
        let arm = self.policies.as_ref().and_then(|p| p.aad_as_arm.as_ref()).and_then(|s| s.status.as_deref());
        let default_action = self.network_rule_set.as_ref().and_then(|n| n.default_action.as_deref());
        let private_endpoints = self
            .private_endpoint_connections
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|c| PrivateEndpoint {
                id: c.properties.private_endpoint.map(|e| e.id).unwrap_or_default(),
                approved: is(c.properties.state.as_ref().and_then(|s| s.status.as_deref()), "Approved"),
            })
            .collect();
        RegistryAccess {
            arm_tokens: !is(arm, "disabled"),
            public_network: !is(self.public_network_access.as_deref(), "Disabled"),
            default_deny: is(default_action, "Deny"),
            private_endpoints,
            sku: sku.map(|s| s.name),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RoleAssignment {
    pub id: String,
    pub name: String,
    pub properties: RoleAssignmentProperties,
}

#[derive(Debug, Deserialize)]
pub struct RoleAssignmentProperties {
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(rename = "roleDefinitionId")]
    pub role_definition_id: String,
    #[serde(rename = "principalId")]
    pub principal_id: String,
    #[serde(default, rename = "principalType")]
    pub principal_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default, rename = "createdOn")]
    pub created_on: Option<String>,
    #[serde(default, rename = "updatedOn")]
    pub updated_on: Option<String>,
}

/// Subscription and resource group from an ARM id, matched case-insensitively.
pub fn id_parts(id: &str) -> (String, String) {
    let segments: Vec<&str> = id.split('/').collect();
    let after = |name: &str| {
        segments
            .iter()
            .position(|s| s.eq_ignore_ascii_case(name))
            .and_then(|i| segments.get(i + 1))
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    (after("subscriptions"), after("resourceGroups"))
}

impl From<ManagedCluster> for LiveCluster {
    fn from(cluster: ManagedCluster) -> LiveCluster {
        let (subscription_id, resource_group) = id_parts(&cluster.id);
        let kubelet_identity = cluster.properties.identity_profile.and_then(|mut profile| {
            // AKS writes the key in lowercase; accept any case.
            let key = profile.keys().find(|k| k.eq_ignore_ascii_case("kubeletidentity")).cloned()?;
            let identity = profile.remove(&key)?;
            Some(KubeletIdentity {
                client_id: identity.client_id.unwrap_or_default(),
                object_id: identity.object_id?,
                resource_id: identity.resource_id.unwrap_or_default(),
            })
        });
        LiveCluster {
            id: cluster.id,
            name: cluster.name,
            subscription_id,
            resource_group,
            tags: cluster.tags.unwrap_or_default(),
            kubelet_identity,
        }
    }
}

impl From<Registry> for LiveRegistry {
    fn from(mut registry: Registry) -> LiveRegistry {
        let access = registry.properties.access(registry.sku.take());
        let (subscription_id, resource_group) = id_parts(&registry.id);
        let abac = registry
            .properties
            .role_assignment_mode
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("AbacRepositoryPermissions"));
        LiveRegistry {
            id: registry.id,
            name: registry.name,
            subscription_id,
            resource_group,
            login_server: registry.properties.login_server.unwrap_or_default(),
            role_assignment_mode: if abac { RoleAssignmentMode::Abac } else { RoleAssignmentMode::Legacy },
            admin_user_enabled: registry.properties.admin_user_enabled.unwrap_or(false),
            access,
        }
    }
}

impl From<RoleAssignment> for LiveRoleAssignment {
    fn from(assignment: RoleAssignment) -> LiveRoleAssignment {
        let scope = assignment.properties.scope.unwrap_or_else(|| {
            let marker = "/providers/Microsoft.Authorization/roleAssignments/";
            let lower = assignment.id.to_ascii_lowercase();
            lower.find(&marker.to_ascii_lowercase()).map(|i| assignment.id[..i].to_string()).unwrap_or_default()
        });
        LiveRoleAssignment {
            id: assignment.id,
            name: assignment.name,
            scope,
            role_definition_id: assignment.properties.role_definition_id,
            principal_id: assignment.properties.principal_id,
            principal_type: assignment.properties.principal_type,
            description: assignment.properties.description,
            condition: assignment.properties.condition,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubelet_identity_and_id_parts() {
        let json = serde_json::json!({
            "id": "/subscriptions/S1/resourcegroups/RG1/providers/Microsoft.ContainerService/managedClusters/aks1",
            "name": "aks1",
            "properties": {"identityProfile": {"kubeletidentity": {"clientId": "c", "objectId": "o", "resourceId": "r"}}}
        });
        let cluster: LiveCluster = serde_json::from_value::<ManagedCluster>(json).unwrap().into();
        assert_eq!((cluster.subscription_id.as_str(), cluster.resource_group.as_str()), ("S1", "RG1"));
        assert_eq!(cluster.kubelet_identity.unwrap().object_id, "o");
        let sp_cluster = serde_json::json!({"id": "/subscriptions/S/resourceGroups/R/providers/x/managedClusters/a", "name": "a",
            "properties": {"servicePrincipalProfile": {"clientId": "abc"}}});
        let cluster: LiveCluster = serde_json::from_value::<ManagedCluster>(sp_cluster).unwrap().into();
        assert_eq!(cluster.kubelet_identity, None);
    }
}

#[derive(Debug, Deserialize)]
pub struct ScopeMap {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub properties: ScopeMapProperties,
}

#[derive(Debug, Default, Deserialize)]
pub struct ScopeMapProperties {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub actions: Vec<String>,
}

impl From<ScopeMap> for super::super::LiveScopeMap {
    fn from(map: ScopeMap) -> Self {
        super::super::LiveScopeMap {
            id: map.id,
            name: map.name,
            description: map.properties.description,
            actions: map.properties.actions,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub properties: TokenProperties,
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenProperties {
    #[serde(default, rename = "scopeMapId")]
    pub scope_map_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub credentials: Option<TokenCredentials>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenCredentials {
    #[serde(default)]
    pub passwords: Vec<TokenPassword>,
}

/// A token password as ARM shows it; `value` only in a generateCredentials answer.
#[derive(Deserialize)]
pub struct TokenPassword {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "creationTime")]
    pub creation_time: Option<String>,
    #[serde(default)]
    pub expiry: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

impl std::fmt::Debug for TokenPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPassword").field("name", &self.name).field("expiry", &self.expiry).finish_non_exhaustive()
    }
}

impl From<Token> for super::super::LiveToken {
    fn from(token: Token) -> Self {
        let passwords = token
            .properties
            .credentials
            .map(|c| c.passwords)
            .unwrap_or_default()
            .into_iter()
            .map(|p| super::super::TokenPasswordInfo {
                name: p.name.unwrap_or_default(),
                creation_time: p.creation_time,
                expiry: p.expiry,
            })
            .collect();
        super::super::LiveToken {
            id: token.id,
            name: token.name,
            scope_map_id: token.properties.scope_map_id.unwrap_or_default(),
            enabled: token.properties.status.as_deref().is_none_or(|s| s.eq_ignore_ascii_case("enabled")),
            passwords,
        }
    }
}

/// `listCredentials` and `generateCredentials` answers.
#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub passwords: Vec<TokenPassword>,
}

#[derive(Debug, Deserialize)]
pub struct ClusterCredentials {
    #[serde(default)]
    pub kubeconfigs: Vec<NamedValue>,
}

#[derive(Deserialize)]
pub struct NamedValue {
    #[serde(default)]
    pub value: String,
}

impl std::fmt::Debug for NamedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NamedValue(<sensitive>)")
    }
}

/// One entry of Subscriptions_List: only its id is read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub subscription_id: String,
}
