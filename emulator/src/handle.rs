//! `StateHandle`: changes live state behind the clients' back (delete a role assignment, rotate
//! a password, add a principal, mint a token), for tests, the demo and the admin endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::entra::{access_token_claims, sign};
use crate::error::EmulatorError;
use crate::ids::{is_guid, is_valid_scope, scope_key};
use crate::server::Shared;
use crate::state::views::{
    ClusterView, NewPrincipal, NewRoleAssignment, PrincipalView, RegistryPatch, RegistryView, RoleAssignmentView,
};
use crate::state::{AssignmentRec, DirectoryObject, RegistryRec, State, random_password, world_mode};
use crate::world::Settings;

/// A handle on the emulator's live state. Cheap to clone; every call takes the state lock
/// briefly and never waits on the network.
#[derive(Clone)]
pub struct StateHandle {
    pub(crate) shared: Arc<Shared>,
}

fn view(state: &State, a: &AssignmentRec) -> RoleAssignmentView {
    let json = state.assignment_json(a);
    RoleAssignmentView {
        id: json["id"].as_str().unwrap_or_default().to_string(),
        name: a.name.clone(),
        scope: a.scope.clone(),
        role_definition_id: state.role_definition_id(&a.scope, &a.role_guid),
        principal_id: a.principal_id.clone(),
        principal_type: a.principal_type.clone(),
        description: a.description.clone(),
        condition: a.condition.clone(),
    }
}

fn registry_view(r: &RegistryRec) -> RegistryView {
    RegistryView {
        id: r.id.clone(),
        name: r.name.clone(),
        login_server: r.login_server.clone(),
        admin_user_enabled: r.admin_user_enabled,
        role_assignment_mode: r.role_assignment_mode.as_str().to_string(),
        passwords: r.passwords.clone(),
        repositories: r.repositories.clone(),
    }
}

fn state_error(message: impl Into<String>) -> EmulatorError {
    EmulatorError::State(message.into())
}

impl StateHandle {
    /// Every role assignment in the tenant.
    pub fn role_assignments(&self) -> Vec<RoleAssignmentView> {
        let state = self.shared.state();
        state.assignments.values().map(|a| view(&state, a)).collect()
    }

    /// Creates an assignment without ARM's checks (as another tool or person would have).
    pub fn create_role_assignment(&self, new: NewRoleAssignment) -> Result<RoleAssignmentView, EmulatorError> {
        let mut state = self.shared.state();
        if !is_valid_scope(&new.scope) {
            return Err(state_error(format!("{:?} is not an ARM scope", new.scope)));
        }
        if let Some(name) = &new.name
            && !is_guid(name)
        {
            return Err(state_error(format!("role assignment name {name:?} is not a GUID")));
        }
        if !is_guid(&new.principal_id) {
            return Err(state_error(format!("principal id {:?} is not a GUID", new.principal_id)));
        }
        let role = state
            .role(&new.role)
            .map(|r| r.guid.clone())
            .ok_or_else(|| state_error(format!("unknown role {:?}", new.role)))?;
        let created = state.insert_assignment(
            new.name.as_deref(),
            &new.scope,
            &role,
            &new.principal_id,
            new.principal_type.as_deref(),
            new.description,
            None,
            None,
            None,
        );
        Ok(view(&state, &created))
    }

    /// Deletes an assignment by name or full id; returns what was deleted.
    pub fn delete_role_assignment(&self, name_or_id: &str) -> Option<RoleAssignmentView> {
        let name = name_or_id.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
        let mut state = self.shared.state();
        let removed = state.assignments.remove(&name)?;
        state.deleted.insert(
            name,
            (Instant::now(), scope_key(&removed.scope), removed.principal_id.clone(), removed.role_guid.clone()),
        );
        Some(view(&state, &removed))
    }

    pub fn principals(&self) -> Vec<PrincipalView> {
        let state = self.shared.state();
        let now = Instant::now();
        let mut list: Vec<PrincipalView> = state
            .directory
            .values()
            .map(|d| PrincipalView {
                name: d.name.clone(),
                kind: d.kind.clone(),
                object_id: d.object_id.clone(),
                client_id: d.client_id.clone(),
                visible: d.visible_at <= now,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Adds a principal to the directory; it stays invisible for `invisible_seconds` (default:
    /// the `principal_invisible_seconds` fault), like a freshly created identity in Entra.
    pub fn create_principal(&self, new: NewPrincipal) -> Result<PrincipalView, EmulatorError> {
        let delay = new.invisible_seconds.unwrap_or_else(|| self.shared.faults().faults.principal_invisible_seconds);
        let object_id = new.object_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()).to_ascii_lowercase();
        if !is_guid(&object_id) {
            return Err(state_error(format!("object id {object_id:?} is not a GUID")));
        }
        if let Some(client) = &new.client_id
            && !is_guid(client)
        {
            return Err(state_error(format!("client id {client:?} is not a GUID")));
        }
        let mut state = self.shared.state();
        if state.directory.contains_key(&object_id) {
            return Err(state_error(format!("a principal with object id {object_id} already exists")));
        }
        let client_id = new.client_id.as_deref().map(str::to_ascii_lowercase);
        if let Some(client) = &client_id {
            if state.clients.contains_key(client) {
                return Err(state_error(format!("a principal with client id {client} already exists")));
            }
            state.clients.insert(client.clone(), object_id.clone());
        }
        let kind = new.kind.clone().unwrap_or_else(|| "ServicePrincipal".into());
        state.directory.insert(
            object_id.clone(),
            DirectoryObject {
                object_id: object_id.clone(),
                client_id: client_id.clone(),
                name: new.name.clone(),
                kind: kind.clone(),
                secrets: new.secret.into_iter().map(|s| (s, None)).collect(),
                federated: Vec::new(),
                groups: Vec::new(),
                visible_at: Instant::now() + Duration::from_secs_f64(delay.max(0.0)),
                no_directory_read: false,
            },
        );
        Ok(PrincipalView { name: new.name, kind, object_id, client_id, visible: delay <= 0.0 })
    }

    pub fn registries(&self) -> Vec<RegistryView> {
        self.shared.state().registries.values().map(registry_view).collect()
    }

    pub fn registry(&self, name: &str) -> Option<RegistryView> {
        self.shared.state().registry_by_name(name).map(registry_view)
    }

    pub fn update_registry(&self, name: &str, patch: RegistryPatch) -> Result<RegistryView, EmulatorError> {
        let mut state = self.shared.state();
        let registry =
            state.registry_by_name_mut(name).ok_or_else(|| state_error(format!("no registry named {name:?}")))?;
        if let Some(mode) = &patch.role_assignment_mode {
            registry.role_assignment_mode =
                world_mode(mode).ok_or_else(|| state_error(format!("unknown role assignment mode {mode:?}")))?;
        }
        if let Some(enabled) = patch.admin_user_enabled {
            registry.admin_user_enabled = enabled;
        }
        Ok(registry_view(registry))
    }

    /// Rotates the admin user's `password` or `password2`; returns the new value.
    pub fn regenerate_registry_password(&self, registry: &str, which: &str) -> Result<String, EmulatorError> {
        let mut state = self.shared.state();
        let r = state
            .registry_by_name_mut(registry)
            .ok_or_else(|| state_error(format!("no registry named {registry:?}")))?;
        let slot = match which {
            "password" => 0,
            "password2" => 1,
            other => return Err(state_error(format!("{other:?} is neither \"password\" nor \"password2\""))),
        };
        r.passwords[slot] = random_password();
        Ok(r.passwords[slot].clone())
    }

    pub fn clusters(&self) -> Vec<ClusterView> {
        self.shared
            .state()
            .clusters
            .values()
            .map(|c| ClusterView {
                id: c.id.clone(),
                name: c.name.clone(),
                subscription: c.subscription.clone(),
                resource_group: c.resource_group.clone(),
                kubelet_object_id: c.kubelet.as_ref().map(|k| k.object_id.clone()),
                kubelet_client_id: c.kubelet.as_ref().map(|k| k.client_id.clone()),
                local_accounts: c.local_accounts,
                aad: c.aad,
            })
            .collect()
    }

    /// A signed access token for a principal, e.g. one already expired (negative lifetime) or
    /// for another audience, to exercise ARM's 401 answers.
    pub fn mint_token(&self, client_id: &str, audience: &str, lifetime_seconds: i64) -> Result<String, EmulatorError> {
        let state = self.shared.state();
        let object_id = state
            .clients
            .get(&client_id.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| state_error(format!("no principal with client id {client_id}")))?;
        let claims = access_token_claims(
            &state.tenant_id,
            &object_id,
            &client_id.to_ascii_lowercase(),
            audience,
            lifetime_seconds,
            "1",
        );
        Ok(sign(&self.shared.signing_key, &claims))
    }

    pub fn settings(&self) -> Settings {
        self.shared.state().settings.clone()
    }

    /// Replaces the emulator settings (page size, token lifetime, throttling, LROs, ...);
    /// throttle buckets start full again.
    pub fn set_settings(&self, settings: Settings) {
        self.shared.throttle().reset(settings.throttle.clone());
        self.shared.state().settings = settings;
    }

    /// The kubeconfig YAML of a cluster (by name or id), as listClusterUserCredential (or,
    /// with `admin`, listClusterAdminCredential) returns it, without the ARM round trip.
    pub fn kubeconfig(&self, cluster: &str, admin: bool) -> Result<String, EmulatorError> {
        let state = self.shared.state();
        let rec = state
            .clusters
            .values()
            .find(|c| c.name.eq_ignore_ascii_case(cluster) || c.id.eq_ignore_ascii_case(cluster))
            .ok_or_else(|| state_error(format!("no cluster {cluster}")))?;
        if admin && !rec.local_accounts {
            return Err(state_error(format!("cluster {cluster} has local accounts disabled")));
        }
        Ok(crate::arm::kubeconfig(&self.shared, &state, rec, admin, None))
    }

    /// Replaces a cluster's Kubernetes RBAC denials (`*`, `secrets`, `patch:serviceaccounts`);
    /// an empty list lets everything through again.
    pub fn set_kube_denials(&self, cluster: &str, denials: Vec<String>) -> Result<(), EmulatorError> {
        let mut state = self.shared.state();
        let rec = state
            .clusters
            .values_mut()
            .find(|c| c.name.eq_ignore_ascii_case(cluster) || c.id.eq_ignore_ascii_case(cluster))
            .ok_or_else(|| state_error(format!("no cluster {cluster}")))?;
        rec.kube_denials = denials;
        Ok(())
    }

    /// The Kubernetes objects of one type (`secrets`, `serviceaccounts`, `pods`, `events`,
    /// `namespaces`, `configmaps`) in a cluster (by name or id), in one namespace or all, as
    /// the API would return them. Empty for a cluster whose API nobody has used yet.
    pub fn kube_objects(
        &self,
        cluster: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, EmulatorError> {
        let res = crate::kube::resources::by_plural(resource)
            .ok_or_else(|| state_error(format!("the emulated API server has no resource {resource:?}")))?;
        let state = self.shared.state();
        let key = state
            .clusters
            .values()
            .find(|c| c.name.eq_ignore_ascii_case(cluster) || c.id.eq_ignore_ascii_case(cluster))
            .map(|c| c.id.to_ascii_lowercase())
            .ok_or_else(|| state_error(format!("no cluster {cluster}")))?;
        let Some(store) = state.kube.get(&key) else { return Ok(Vec::new()) };
        Ok(store
            .list(res, namespace)
            .into_iter()
            .map(|o| {
                let mut o = o.clone();
                o["kind"] = serde_json::json!(res.kind);
                o["apiVersion"] = serde_json::json!("v1");
                o
            })
            .collect())
    }

    pub fn set_page_size(&self, page_size: usize) {
        self.shared.state().settings.page_size = page_size.max(1);
    }
}
