//! An in-memory `Azure` for unit tests of the engine's stages: the same contract as ARM
//! (deterministic lists, 409 on a duplicate triple, scripted failures), no network.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    AdminCredentials, Azure, AzureError, GeneratedPassword, LiveCluster, LiveRegistry, LiveRoleAssignment,
    LiveScopeMap, LiveToken, RoleAssignmentSpec, TokenPasswordInfo, Written, normalize_id, role_guid,
};
use crate::sensitive::Sensitive;

#[derive(Default)]
pub struct FakeAzure {
    pub clusters: Vec<LiveCluster>,
    pub registries: Vec<LiveRegistry>,
    pub assignments: Mutex<Vec<LiveRoleAssignment>>,
    /// Errors returned by the next create calls, in order.
    pub create_failures: Mutex<Vec<AzureError>>,
    pub calls: AtomicUsize,
    /// Admin password per registry id (lowercase).
    pub admin_passwords: Mutex<BTreeMap<String, String>>,
    /// Scope maps and tokens per registry id (lowercase).
    pub scope_maps: Mutex<BTreeMap<String, Vec<LiveScopeMap>>>,
    pub tokens: Mutex<BTreeMap<String, Vec<LiveToken>>>,
    /// Current value per token id and slot, as the registry would accept it.
    pub token_passwords: Mutex<BTreeMap<(String, String), String>>,
    pub generated: AtomicUsize,
    /// Returned once by the next registry list, in place of the list.
    pub list_failure: Mutex<Option<AzureError>>,
    /// Whether reads go through (fake) Resource Graph, one call for all subscriptions.
    pub graph: bool,
    /// Service principals' object ids by client id (fake Microsoft Graph).
    pub service_principals: BTreeMap<String, String>,
    /// Graph refuses directory reads, as it does an identity without directory read permission.
    pub graph_denied: bool,
    /// Role definitions by GUID (lowercase).
    pub role_definitions: Mutex<BTreeMap<String, super::RoleDefinition>>,
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

    async fn service_principal_object_id(&self, client_id: &str) -> Result<Option<String>, AzureError> {
        self.call();
        if self.graph_denied {
            return Err(AzureError::Api {
                status: 403,
                code: "Authorization_RequestDenied".into(),
                message: "Insufficient privileges to complete the operation.".into(),
            });
        }
        Ok(self.service_principals.get(&client_id.to_ascii_lowercase()).cloned())
    }

    fn reads_via_graph(&self, _subscriptions: usize) -> bool {
        self.graph
    }

    async fn list_clusters_in(&self, subscriptions: &[String]) -> Result<Vec<LiveCluster>, AzureError> {
        self.call();
        let wanted = |s: &str| subscriptions.iter().any(|w| w.eq_ignore_ascii_case(s));
        Ok(self.clusters.iter().filter(|c| wanted(&c.subscription_id)).cloned().collect())
    }

    async fn list_registries_in(&self, subscriptions: &[String]) -> Result<Vec<LiveRegistry>, AzureError> {
        self.call();
        let wanted = |s: &str| subscriptions.iter().any(|w| w.eq_ignore_ascii_case(s));
        Ok(self.registries.iter().filter(|r| wanted(&r.subscription_id)).cloned().collect())
    }

    async fn list_registries(&self, subscription_id: &str) -> Result<Vec<LiveRegistry>, AzureError> {
        self.call();
        if let Some(error) = lock(&self.list_failure).take() {
            return Err(error);
        }
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

    async fn get_role_definition(&self, id: &str) -> Result<Option<super::RoleDefinition>, AzureError> {
        self.call();
        Ok(lock(&self.role_definitions).get(&role_guid(id)).cloned())
    }

    async fn get_role_assignment(&self, id: &str) -> Result<Option<LiveRoleAssignment>, AzureError> {
        self.call();
        let assignments = self.assignments.lock().unwrap_or_else(|e| e.into_inner());
        Ok(assignments.iter().find(|a| normalize_id(&a.id) == normalize_id(id)).cloned())
    }

    async fn create_role_assignment(&self, spec: &RoleAssignmentSpec) -> Result<Written, AzureError> {
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
        let previous = assignments.iter().position(|a| normalize_id(&a.id) == normalize_id(&live.id));
        let written = match previous.map(|i| assignments.remove(i)) {
            None => Written::Created,
            Some(old) if old == live => Written::Unchanged,
            Some(_) => Written::Updated,
        };
        assignments.push(live);
        Ok(written)
    }

    async fn delete_role_assignment(&self, id: &str) -> Result<(), AzureError> {
        self.call();
        self.assignments.lock().unwrap_or_else(|e| e.into_inner()).retain(|a| normalize_id(&a.id) != normalize_id(id));
        Ok(())
    }

    async fn cluster_user_kubeconfig(&self, cluster_id: &str) -> Result<Sensitive<String>, AzureError> {
        self.call();
        Err(AzureError::NotFound { what: format!("kubeconfig of {cluster_id}") })
    }

    async fn registry_admin_credentials(&self, registry_id: &str) -> Result<AdminCredentials, AzureError> {
        self.call();
        let registry = self.registries.iter().find(|r| normalize_id(&r.id) == normalize_id(registry_id));
        let passwords = lock(&self.admin_passwords);
        match (registry, passwords.get(&normalize_id(registry_id))) {
            (Some(r), Some(password)) if r.admin_user_enabled => {
                Ok(AdminCredentials { username: r.name.clone(), password: Sensitive::new(password.clone()) })
            }
            _ => Err(AzureError::Api {
                status: 400,
                code: "AdminUserDisabled".into(),
                message: "The admin user is disabled.".into(),
            }),
        }
    }

    async fn list_scope_maps(&self, registry_id: &str) -> Result<Vec<LiveScopeMap>, AzureError> {
        self.call();
        Ok(lock(&self.scope_maps).get(&normalize_id(registry_id)).cloned().unwrap_or_default())
    }

    async fn put_scope_map(
        &self,
        registry_id: &str,
        name: &str,
        description: &str,
        actions: &[String],
    ) -> Result<(), AzureError> {
        self.call();
        let mut maps = lock(&self.scope_maps);
        let list = maps.entry(normalize_id(registry_id)).or_default();
        list.retain(|m| m.name != name);
        list.push(LiveScopeMap {
            id: format!("{registry_id}/scopeMaps/{name}"),
            name: name.into(),
            description: Some(description.into()),
            actions: actions.to_vec(),
        });
        Ok(())
    }

    async fn delete_scope_map(&self, registry_id: &str, name: &str) -> Result<(), AzureError> {
        self.call();
        lock(&self.scope_maps).entry(normalize_id(registry_id)).or_default().retain(|m| m.name != name);
        Ok(())
    }

    async fn list_tokens(&self, registry_id: &str) -> Result<Vec<LiveToken>, AzureError> {
        self.call();
        Ok(lock(&self.tokens).get(&normalize_id(registry_id)).cloned().unwrap_or_default())
    }

    async fn get_token(&self, registry_id: &str, name: &str) -> Result<Option<LiveToken>, AzureError> {
        self.call();
        let tokens = lock(&self.tokens);
        let list = tokens.get(&normalize_id(registry_id));
        Ok(list.and_then(|l| l.iter().find(|t| t.name.eq_ignore_ascii_case(name)).cloned()))
    }

    async fn put_token(&self, registry_id: &str, name: &str, scope_map_id: &str) -> Result<(), AzureError> {
        self.call();
        let mut tokens = lock(&self.tokens);
        let list = tokens.entry(normalize_id(registry_id)).or_default();
        let passwords = list.iter().find(|t| t.name == name).map(|t| t.passwords.clone()).unwrap_or_default();
        list.retain(|t| t.name != name);
        list.push(LiveToken {
            id: format!("{registry_id}/tokens/{name}"),
            name: name.into(),
            scope_map_id: scope_map_id.into(),
            enabled: true,
            passwords,
        });
        Ok(())
    }

    async fn update_token(&self, registry_id: &str, name: &str, scope_map_id: &str) -> Result<(), AzureError> {
        self.call();
        let mut tokens = lock(&self.tokens);
        let token = tokens
            .entry(normalize_id(registry_id))
            .or_default()
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| AzureError::NotFound { what: format!("token {name}") })?;
        token.scope_map_id = scope_map_id.into();
        token.enabled = true;
        Ok(())
    }

    async fn delete_token(&self, registry_id: &str, name: &str) -> Result<(), AzureError> {
        self.call();
        lock(&self.tokens).entry(normalize_id(registry_id)).or_default().retain(|t| t.name != name);
        Ok(())
    }

    async fn generate_token_password(
        &self,
        registry_id: &str,
        token_name: &str,
        slot: &str,
        expiry: &str,
    ) -> Result<GeneratedPassword, AzureError> {
        self.call();
        let n = self.generated.fetch_add(1, Ordering::Relaxed);
        let created = format!("2026-11-01T00:00:{:02}Z", n % 60);
        let mut tokens = lock(&self.tokens);
        let token = tokens
            .entry(normalize_id(registry_id))
            .or_default()
            .iter_mut()
            .find(|t| t.name == token_name)
            .ok_or_else(|| AzureError::NotFound { what: format!("token {token_name}") })?;
        token.passwords.retain(|p| p.name != slot);
        token.passwords.push(TokenPasswordInfo {
            name: slot.into(),
            creation_time: Some(created.clone()),
            expiry: Some(expiry.into()),
        });
        token.passwords.sort_by(|a, b| a.name.cmp(&b.name));
        let value = format!("generated-{token_name}-{slot}-{n}");
        lock(&self.token_passwords).insert((token.id.to_ascii_lowercase(), slot.to_string()), value.clone());
        Ok(GeneratedPassword {
            username: token_name.into(),
            slot: slot.into(),
            password: Sensitive::new(value),
            creation_time: Some(created),
            expiry: Some(expiry.into()),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
        access: Default::default(),
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
