//! The Azure provider: the `Azure` trait over ARM (AKS clusters, ACR registries, role
//! assignments), with ARM's outcomes mapped to typed errors the engine can act on.

pub mod arm;
pub mod auth;
pub mod directory;
pub mod graph;
pub mod wire;

use reqwest::Method;

use base64::Engine as _;

use super::{
    AdminCredentials, Azure, AzureError, GeneratedPassword, LiveCluster, LiveRegistry, LiveRoleAssignment,
    LiveScopeMap, LiveToken, ReadVia, RoleAssignmentSpec, RoleDefinition, Written,
};
use crate::sensitive::Sensitive;
use arm::ArmClient;

pub const AKS_API_VERSION: &str = "2025-10-01";
pub const ACR_API_VERSION: &str = "2025-11-01";
pub const AUTHORIZATION_API_VERSION: &str = "2022-04-01";
pub const SUBSCRIPTIONS_API_VERSION: &str = "2022-12-01";

pub struct AzureClient {
    pub arm: ArmClient,
    read_via: ReadVia,
    /// Microsoft Graph, for service principals' object ids.
    graph: Option<ArmClient>,
}

impl AzureClient {
    pub fn new(arm: ArmClient) -> AzureClient {
        AzureClient { arm, read_via: ReadVia::default(), graph: None }
    }

    /// Looks service principals up through `graph` (Microsoft Graph, with its own audience).
    pub fn with_graph(self, graph: ArmClient) -> AzureClient {
        AzureClient { graph: Some(graph), ..self }
    }

    /// The ids of the subscriptions the signed-in identity can see (Subscriptions_List), for
    /// `acrlink import` without `--subscription`.
    pub async fn list_subscriptions(&self) -> Result<Vec<String>, AzureError> {
        let url = self.arm.url(&format!("/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"));
        let subscriptions: Vec<wire::Subscription> = self.arm.list(&url).await?;
        Ok(subscriptions.into_iter().map(|s| s.subscription_id).collect())
    }

    /// Reads clusters and registries of many subscriptions through Resource Graph as `read_via` says.
    pub fn reading_via(self, read_via: ReadVia) -> AzureClient {
        AzureClient { read_via, ..self }
    }
}

/// Path segments that come from the file or from ARM are escaped, so a strange name cannot
/// change the request's meaning.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'(' | b')' | b'~' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

impl Azure for AzureClient {
    async fn list_clusters(
        &self,
        subscription_id: &str,
        resource_group: Option<&str>,
    ) -> Result<Vec<LiveCluster>, AzureError> {
        let path = match resource_group {
            Some(rg) => format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters?api-version={AKS_API_VERSION}",
                segment(subscription_id),
                segment(rg)
            ),
            None => format!(
                "/subscriptions/{}/providers/Microsoft.ContainerService/managedClusters?api-version={AKS_API_VERSION}",
                segment(subscription_id)
            ),
        };
        let clusters: Vec<wire::ManagedCluster> = self.arm.list(&self.arm.url(&path)).await?;
        Ok(clusters.into_iter().map(LiveCluster::from).collect())
    }

    async fn get_cluster(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<LiveCluster>, AzureError> {
        let path = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}?api-version={AKS_API_VERSION}",
            segment(subscription_id),
            segment(resource_group),
            segment(name)
        );
        Ok(self.arm.get::<wire::ManagedCluster>(&self.arm.url(&path)).await?.map(LiveCluster::from))
    }

    async fn service_principal_object_id(&self, client_id: &str) -> Result<Option<String>, AzureError> {
        let graph = self.graph.as_ref().ok_or_else(|| AzureError::Decode("no Microsoft Graph endpoint".into()))?;
        directory::service_principal_id(graph, client_id).await
    }

    fn reads_via_graph(&self, subscriptions: usize) -> bool {
        self.read_via.uses_graph(subscriptions)
    }

    async fn list_clusters_in(&self, subscriptions: &[String]) -> Result<Vec<LiveCluster>, AzureError> {
        let rows = graph::rows(&self.arm, subscriptions, graph::CLUSTERS).await?;
        rows.into_iter()
            .map(|row| serde_json::from_value::<wire::ManagedCluster>(row).map(LiveCluster::from))
            .collect::<Result<_, _>>()
            .map_err(|e| AzureError::Decode(format!("a Resource Graph cluster row: {e}")))
    }

    async fn list_registries_in(&self, subscriptions: &[String]) -> Result<Vec<LiveRegistry>, AzureError> {
        let rows = graph::rows(&self.arm, subscriptions, graph::REGISTRIES).await?;
        rows.into_iter()
            .map(|row| serde_json::from_value::<wire::Registry>(row).map(LiveRegistry::from))
            .collect::<Result<_, _>>()
            .map_err(|e| AzureError::Decode(format!("a Resource Graph registry row: {e}")))
    }

    async fn list_registries(&self, subscription_id: &str) -> Result<Vec<LiveRegistry>, AzureError> {
        let path = format!(
            "/subscriptions/{}/providers/Microsoft.ContainerRegistry/registries?api-version={ACR_API_VERSION}",
            segment(subscription_id)
        );
        let registries: Vec<wire::Registry> = self.arm.list(&self.arm.url(&path)).await?;
        Ok(registries.into_iter().map(LiveRegistry::from).collect())
    }

    async fn get_registry(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<LiveRegistry>, AzureError> {
        let path = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{}?api-version={ACR_API_VERSION}",
            segment(subscription_id),
            segment(resource_group),
            segment(name)
        );
        Ok(self.arm.get::<wire::Registry>(&self.arm.url(&path)).await?.map(LiveRegistry::from))
    }

    async fn list_role_assignments(&self, scope: &str) -> Result<Vec<LiveRoleAssignment>, AzureError> {
        // No $filter: everything at, above and below the registry, so inherited grants count.
        let path = format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments?api-version={AUTHORIZATION_API_VERSION}"
        );
        let assignments: Vec<wire::RoleAssignment> = self.arm.list(&self.arm.url(&path)).await?;
        Ok(assignments.into_iter().map(LiveRoleAssignment::from).collect())
    }

    async fn get_role_assignment(&self, id: &str) -> Result<Option<LiveRoleAssignment>, AzureError> {
        let url = self.arm.url(&format!("{id}?api-version={AUTHORIZATION_API_VERSION}"));
        Ok(self.arm.get::<wire::RoleAssignment>(&url).await?.map(LiveRoleAssignment::from))
    }

    async fn get_role_definition(&self, id: &str) -> Result<Option<RoleDefinition>, AzureError> {
        let url = self.arm.url(&format!("{id}?api-version={AUTHORIZATION_API_VERSION}"));
        Ok(self.arm.get::<wire::RoleDefinition>(&url).await?.map(RoleDefinition::from))
    }

    async fn create_role_assignment(&self, spec: &RoleAssignmentSpec) -> Result<Written, AzureError> {
        let url = self.arm.url(&format!("{}?api-version={AUTHORIZATION_API_VERSION}", spec.id()));
        let mut properties = serde_json::json!({
            "roleDefinitionId": spec.role_definition_id,
            "principalId": spec.principal_id,
            "principalType": spec.principal_type,
            "description": spec.description,
        });
        if let Some(condition) = &spec.condition {
            properties["condition"] = condition.clone().into();
            properties["conditionVersion"] = "2.0".into();
        }
        let body = serde_json::json!({ "properties": properties });
        let answer = self.arm.send(Method::PUT, &url, Some(&body)).await?;
        match answer.status.as_u16() {
            201 => Ok(Written::Created),
            200 => {
                let properties = answer.json::<wire::RoleAssignment>()?.properties;
                let changed = properties.updated_on.is_some() && properties.updated_on != properties.created_on;
                Ok(if changed { Written::Updated } else { Written::Unchanged })
            }
            status => {
                let (code, message) = answer.error();
                Err(match (status, code.as_str()) {
                    (409, "RoleAssignmentExists") => {
                        AzureError::RoleAssignmentExists { existing_id: existing_id(&message) }
                    }
                    (400, "PrincipalNotFound") => {
                        AzureError::PrincipalNotFound { principal_id: spec.principal_id.clone() }
                    }
                    (403, "AuthorizationFailed" | "LinkedAuthorizationFailed") => AzureError::AuthorizationFailed {
                        action: "Microsoft.Authorization/roleAssignments/write".into(),
                        scope: spec.scope.clone(),
                        message,
                    },
                    _ => answer.into_error(),
                })
            }
        }
    }

    async fn cluster_user_kubeconfig(&self, cluster_id: &str) -> Result<Sensitive<String>, AzureError> {
        let url = self.arm.url(&format!("{cluster_id}/listClusterUserCredential?api-version={AKS_API_VERSION}"));
        let answer = self.arm.send(Method::POST, &url, None).await?;
        if answer.status.as_u16() != 200 {
            return Err(registry_error(
                answer,
                "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
                cluster_id,
            ));
        }
        let credentials: wire::ClusterCredentials = answer.json_sensitive("listClusterUserCredential's answer")?;
        let encoded = credentials
            .kubeconfigs
            .into_iter()
            .next()
            .ok_or_else(|| AzureError::Decode("listClusterUserCredential returned no kubeconfig".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.value.trim())
            .map_err(|_| AzureError::Decode("the cluster's kubeconfig is not base64".into()))?;
        String::from_utf8(bytes)
            .map(Sensitive::new)
            .map_err(|_| AzureError::Decode("the cluster's kubeconfig is not UTF-8".into()))
    }

    async fn registry_admin_credentials(&self, registry_id: &str) -> Result<AdminCredentials, AzureError> {
        let url = self.arm.url(&format!("{registry_id}/listCredentials?api-version={ACR_API_VERSION}"));
        let answer = self.arm.send(Method::POST, &url, None).await?;
        if answer.status.as_u16() != 200 {
            return Err(registry_error(
                answer,
                "Microsoft.ContainerRegistry/registries/listCredentials/action",
                registry_id,
            ));
        }
        let credentials: wire::Credentials = answer.json_sensitive("the credentials answer")?;
        let password = credentials
            .passwords
            .into_iter()
            .find_map(|p| p.value)
            .ok_or_else(|| AzureError::Decode("listCredentials returned no password".into()))?;
        Ok(AdminCredentials { username: credentials.username.unwrap_or_default(), password: Sensitive::new(password) })
    }

    async fn list_scope_maps(&self, registry_id: &str) -> Result<Vec<LiveScopeMap>, AzureError> {
        let maps: Vec<wire::ScopeMap> = self.arm.list(&self.registry_child(registry_id, "scopeMaps", None)).await?;
        Ok(maps.into_iter().map(LiveScopeMap::from).collect())
    }

    async fn put_scope_map(
        &self,
        registry_id: &str,
        name: &str,
        description: &str,
        actions: &[String],
    ) -> Result<(), AzureError> {
        let body = serde_json::json!({"properties": {"description": description, "actions": actions}});
        let url = self.registry_child(registry_id, "scopeMaps", Some(name));
        let answer = self.arm.send_lro(Method::PUT, &url, Some(&body)).await?;
        match answer.status.as_u16() {
            200 | 201 => Ok(()),
            _ => Err(registry_error(answer, "Microsoft.ContainerRegistry/registries/scopeMaps/write", registry_id)),
        }
    }

    async fn delete_scope_map(&self, registry_id: &str, name: &str) -> Result<(), AzureError> {
        self.expect_done(Method::DELETE, &self.registry_child(registry_id, "scopeMaps", Some(name)), None).await
    }

    async fn list_tokens(&self, registry_id: &str) -> Result<Vec<LiveToken>, AzureError> {
        let tokens: Vec<wire::Token> = self.arm.list(&self.registry_child(registry_id, "tokens", None)).await?;
        Ok(tokens.into_iter().map(LiveToken::from).collect())
    }

    async fn get_token(&self, registry_id: &str, name: &str) -> Result<Option<LiveToken>, AzureError> {
        let url = self.registry_child(registry_id, "tokens", Some(name));
        Ok(self.arm.get::<wire::Token>(&url).await?.map(LiveToken::from))
    }

    async fn put_token(&self, registry_id: &str, name: &str, scope_map_id: &str) -> Result<(), AzureError> {
        let body = serde_json::json!({"properties": {"scopeMapId": scope_map_id, "status": "enabled"}});
        let url = self.registry_child(registry_id, "tokens", Some(name));
        let answer = self.arm.send_lro(Method::PUT, &url, Some(&body)).await?;
        match answer.status.as_u16() {
            200 | 201 => Ok(()),
            _ => Err(registry_error(answer, "Microsoft.ContainerRegistry/registries/tokens/write", registry_id)),
        }
    }

    async fn update_token(&self, registry_id: &str, name: &str, scope_map_id: &str) -> Result<(), AzureError> {
        let body = serde_json::json!({"properties": {"scopeMapId": scope_map_id, "status": "enabled"}});
        let url = self.registry_child(registry_id, "tokens", Some(name));
        let answer = self.arm.send_lro(Method::PATCH, &url, Some(&body)).await?;
        match answer.status.as_u16() {
            200..=202 => Ok(()),
            _ => Err(registry_error(answer, "Microsoft.ContainerRegistry/registries/tokens/write", registry_id)),
        }
    }

    async fn delete_token(&self, registry_id: &str, name: &str) -> Result<(), AzureError> {
        self.expect_done(Method::DELETE, &self.registry_child(registry_id, "tokens", Some(name)), None).await
    }

    async fn generate_token_password(
        &self,
        registry_id: &str,
        token_name: &str,
        slot: &str,
        expiry: &str,
    ) -> Result<GeneratedPassword, AzureError> {
        let url = self.arm.url(&format!("{registry_id}/generateCredentials?api-version={ACR_API_VERSION}"));
        let body = serde_json::json!({"tokenId": format!("{registry_id}/tokens/{token_name}"), "name": slot, "expiry": expiry});
        let answer = self.arm.send_lro(Method::POST, &url, Some(&body)).await?;
        if answer.status.as_u16() != 200 {
            return Err(registry_error(
                answer,
                "Microsoft.ContainerRegistry/registries/generateCredentials/action",
                registry_id,
            ));
        }
        let credentials: wire::Credentials = answer.json_sensitive("the credentials answer")?;
        let generated = credentials
            .passwords
            .into_iter()
            .find(|p| p.name.as_deref() == Some(slot) && p.value.is_some())
            .ok_or_else(|| AzureError::Decode(format!("generateCredentials returned no {slot}")))?;
        Ok(GeneratedPassword {
            username: credentials.username.unwrap_or_else(|| token_name.to_string()),
            slot: slot.to_string(),
            password: Sensitive::new(generated.value.unwrap_or_default()),
            creation_time: generated.creation_time,
            expiry: generated.expiry,
        })
    }

    async fn delete_role_assignment(&self, id: &str) -> Result<(), AzureError> {
        let url = self.arm.url(&format!("{id}?api-version={AUTHORIZATION_API_VERSION}"));
        let answer = self.arm.send(Method::DELETE, &url, None).await?;
        match answer.status.as_u16() {
            200 | 204 | 404 => Ok(()),
            403 => {
                let (_, message) = answer.error();
                let scope = id.split("/providers/Microsoft.Authorization/").next().unwrap_or(id).to_string();
                Err(AzureError::AuthorizationFailed {
                    action: "Microsoft.Authorization/roleAssignments/delete".into(),
                    scope,
                    message,
                })
            }
            _ => Err(answer.into_error()),
        }
    }
}

impl AzureClient {
    fn registry_child(&self, registry_id: &str, kind: &str, name: Option<&str>) -> String {
        let name = name.map(|n| format!("/{}", segment(n))).unwrap_or_default();
        self.arm.url(&format!("{registry_id}/{kind}{name}?api-version={ACR_API_VERSION}"))
    }

    async fn expect_done(&self, method: Method, url: &str, body: Option<&serde_json::Value>) -> Result<(), AzureError> {
        let answer = self.arm.send_lro(method, url, body).await?;
        match answer.status.as_u16() {
            200..=204 => Ok(()),
            404 => Ok(()),
            _ => Err(answer.into_error()),
        }
    }
}

/// Registry calls answer 403 for a missing permission; say which one.
fn registry_error(answer: arm::Answer, action: &str, scope: &str) -> AzureError {
    if answer.status.as_u16() == 403 {
        let (_, message) = answer.error();
        return AzureError::AuthorizationFailed { action: action.to_string(), scope: scope.to_string(), message };
    }
    answer.into_error()
}

/// "The ID of the existing role assignment is 0123…" (32 hex, no dashes) → a GUID, if present.
fn existing_id(message: &str) -> String {
    message
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|word| word.len() == 32)
        .map(|hex| format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_assignment_id_is_read_from_the_message() {
        let message = "The role assignment already exists. The ID of the existing role assignment is 0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e.";
        assert_eq!(existing_id(message), "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e");
        assert_eq!(existing_id("The role assignment already exists."), "");
        assert_eq!(segment("rg (prod)/x"), "rg%20(prod)%2Fx");
    }
}
