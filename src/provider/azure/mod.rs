//! The Azure provider: the `Azure` trait over ARM (AKS clusters, ACR registries, role
//! assignments), with ARM's outcomes mapped to typed errors the engine can act on.

pub mod arm;
pub mod auth;
pub mod wire;

use reqwest::Method;

use super::{Azure, AzureError, LiveCluster, LiveRegistry, LiveRoleAssignment, RoleAssignmentSpec};
use arm::ArmClient;

pub const AKS_API_VERSION: &str = "2025-10-01";
pub const ACR_API_VERSION: &str = "2025-11-01";
pub const AUTHORIZATION_API_VERSION: &str = "2022-04-01";

pub struct AzureClient {
    pub arm: ArmClient,
}

impl AzureClient {
    pub fn new(arm: ArmClient) -> AzureClient {
        AzureClient { arm }
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

    async fn create_role_assignment(&self, spec: &RoleAssignmentSpec) -> Result<LiveRoleAssignment, AzureError> {
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
            200 | 201 => Ok(answer.json::<wire::RoleAssignment>()?.into()),
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
