//! An in-memory `Azure` for unit tests of the engine's stages: the same contract as ARM
//! (deterministic lists, 409 on a duplicate triple, scripted failures), no network.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    Azure, AzureError, LiveCluster, LiveRegistry, LiveRoleAssignment, RoleAssignmentSpec, normalize_id, role_guid,
};

#[derive(Default)]
pub struct FakeAzure {
    pub clusters: Vec<LiveCluster>,
    pub registries: Vec<LiveRegistry>,
    pub assignments: Mutex<Vec<LiveRoleAssignment>>,
    /// Errors returned by the next create calls, in order.
    pub create_failures: Mutex<Vec<AzureError>>,
    pub calls: AtomicUsize,
}

impl FakeAzure {
    fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl Azure for FakeAzure {
    async fn list_clusters(
        &self,
        subscription_id: &str,
        resource_group: Option<&str>,
    ) -> Result<Vec<LiveCluster>, AzureError> {
        self.call();
        Ok(self
            .clusters
            .iter()
            .filter(|c| c.subscription_id.eq_ignore_ascii_case(subscription_id))
            .filter(|c| resource_group.is_none_or(|rg| c.resource_group.eq_ignore_ascii_case(rg)))
            .cloned()
            .collect())
    }

    async fn get_cluster(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<LiveCluster>, AzureError> {
        self.call();
        Ok(self
            .clusters
            .iter()
            .find(|c| {
                c.subscription_id.eq_ignore_ascii_case(subscription_id)
                    && c.resource_group.eq_ignore_ascii_case(resource_group)
                    && c.name.eq_ignore_ascii_case(name)
            })
            .cloned())
    }

    async fn list_registries(&self, subscription_id: &str) -> Result<Vec<LiveRegistry>, AzureError> {
        self.call();
        Ok(self
            .registries
            .iter()
            .filter(|r| r.subscription_id.eq_ignore_ascii_case(subscription_id))
            .cloned()
            .collect())
    }

    async fn get_registry(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<LiveRegistry>, AzureError> {
        self.call();
        Ok(self
            .registries
            .iter()
            .find(|r| {
                r.subscription_id.eq_ignore_ascii_case(subscription_id)
                    && r.resource_group.eq_ignore_ascii_case(resource_group)
                    && r.name.eq_ignore_ascii_case(name)
            })
            .cloned())
    }

    async fn list_role_assignments(&self, scope: &str) -> Result<Vec<LiveRoleAssignment>, AzureError> {
        self.call();
        let scope = normalize_id(scope);
        let assignments = self.assignments.lock().unwrap_or_else(|e| e.into_inner());
        Ok(assignments
            .iter()
            .filter(|a| {
                let other = normalize_id(&a.scope);
                scope == other || scope.starts_with(&format!("{other}/")) || other.starts_with(&format!("{scope}/"))
            })
            .cloned()
            .collect())
    }

    async fn get_role_assignment(&self, id: &str) -> Result<Option<LiveRoleAssignment>, AzureError> {
        self.call();
        let assignments = self.assignments.lock().unwrap_or_else(|e| e.into_inner());
        Ok(assignments.iter().find(|a| normalize_id(&a.id) == normalize_id(id)).cloned())
    }

    async fn create_role_assignment(&self, spec: &RoleAssignmentSpec) -> Result<LiveRoleAssignment, AzureError> {
        self.call();
        {
            let mut failures = self.create_failures.lock().unwrap_or_else(|e| e.into_inner());
            if !failures.is_empty() {
                return Err(failures.remove(0));
            }
        }
        let mut assignments = self.assignments.lock().unwrap_or_else(|e| e.into_inner());
        let same_triple = |a: &&LiveRoleAssignment| {
            normalize_id(&a.scope) == normalize_id(&spec.scope)
                && a.principal_id.eq_ignore_ascii_case(&spec.principal_id)
                && role_guid(&a.role_definition_id) == role_guid(&spec.role_definition_id)
        };
        if let Some(existing) = assignments.iter().find(same_triple)
            && !existing.name.eq_ignore_ascii_case(&spec.name)
        {
            return Err(AzureError::RoleAssignmentExists { existing_id: existing.name.clone() });
        }
        let live = LiveRoleAssignment {
            id: spec.id(),
            name: spec.name.clone(),
            scope: spec.scope.clone(),
            role_definition_id: spec.role_definition_id.clone(),
            principal_id: spec.principal_id.clone(),
            principal_type: Some(spec.principal_type.clone()),
            description: Some(spec.description.clone()),
            condition: spec.condition.clone(),
        };
        assignments.retain(|a| normalize_id(&a.id) != normalize_id(&live.id));
        assignments.push(live.clone());
        Ok(live)
    }

    async fn delete_role_assignment(&self, id: &str) -> Result<(), AzureError> {
        self.call();
        self.assignments.lock().unwrap_or_else(|e| e.into_inner()).retain(|a| normalize_id(&a.id) != normalize_id(id));
        Ok(())
    }
}

pub fn fleet_fixture() -> FakeAzure {
    use super::{KubeletIdentity, RoleAssignmentMode};
    let cluster = |name: &str, rg: &str, n: u8| LiveCluster {
        id: format!(
            "/subscriptions/1d6c45e0-bd9f-4771-bb67-36616452f239/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}"
        ),
        name: name.into(),
        subscription_id: "1d6c45e0-bd9f-4771-bb67-36616452f239".into(),
        resource_group: rg.into(),
        tags: BTreeMap::new(),
        kubelet_identity: Some(KubeletIdentity {
            client_id: format!("00000000-0000-0000-0000-0000000000c{n}"),
            object_id: format!("00000000-0000-0000-0000-0000000000a{n}"),
            resource_id: format!(
                "/subscriptions/1d6c45e0-bd9f-4771-bb67-36616452f239/resourcegroups/MC_{rg}_{name}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool"
            ),
        }),
    };
    let registry = |name: &str, mode| LiveRegistry {
        id: format!(
            "/subscriptions/1d6c45e0-bd9f-4771-bb67-36616452f239/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/{name}"
        ),
        name: name.into(),
        subscription_id: "1d6c45e0-bd9f-4771-bb67-36616452f239".into(),
        resource_group: "platform-rg".into(),
        login_server: format!("{name}.azurecr.io"),
        role_assignment_mode: mode,
        admin_user_enabled: false,
    };
    FakeAzure {
        clusters: vec![cluster("aks1", "dev-rg", 1), cluster("aks2", "dev-rg", 2)],
        registries: vec![
            registry("sharedacr", RoleAssignmentMode::Legacy),
            registry("abacacr", RoleAssignmentMode::Abac),
        ],
        ..FakeAzure::default()
    }
}
