//! Turns bindings into the role assignments they require, against the observed fleet:
//! principal = the kubelet identity's objectId, scope = the registry, role = AcrPull (or
//! Container Registry Repository Reader on ABAC registries), name = a deterministic GUID.
//! Pure: no I/O.

use std::collections::BTreeMap;

use crate::config::model::{Binding, Config, Method};
use crate::kinds::role_assignment::{DesiredAssignment, assignment_address};
use crate::kinds::roles::{ACR_PULL, REPOSITORY_READER, pull_grant, repository_condition, role_name};
use crate::model::{Address, Finding};
use crate::observe::Inventory;
use crate::ownership;
use crate::provider::RoleAssignmentMode;

/// Clusters a binding selects from the observed fleet, by key.
pub fn select_clusters<'a>(binding: &Binding, inventory: &'a Inventory) -> Vec<&'a crate::observe::FleetCluster> {
    inventory.clusters.iter().filter(|c| binding.clusters.iter().any(|s| s.matches(&c.key, &c.labels))).collect()
}

pub fn resolve(config: &Config, inventory: &Inventory) -> (Vec<DesiredAssignment>, Vec<Finding>) {
    let mut desired: BTreeMap<Address, DesiredAssignment> = BTreeMap::new();
    let mut problems = Vec::new();
    for binding in &config.bindings {
        if binding.method != Method::ManagedIdentity {
            continue;
        }
        for cluster in select_clusters(binding, inventory) {
            let Some(kubelet) = &cluster.live.kubelet_identity else {
                let problem = Finding {
                    subject: format!("cluster {}", cluster.key),
                    message: format!(
                        "cluster {} has no kubelet managed identity (it uses a service principal), so binding {:?} cannot grant it AcrPull",
                        cluster.key, binding.name
                    ),
                    hint: Some("migrate the cluster to managed identity (az aks update --enable-managed-identity), or use method = \"pull-secret\"".into()),
                };
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
                continue;
            };
            for registry_key in &binding.registries {
                let Some(registry) = inventory.registries.get(registry_key) else { continue };
                let address = assignment_address(&cluster.key, registry_key);
                let (role_guid, condition) = match registry.role_assignment_mode {
                    RoleAssignmentMode::Abac if binding.repositories.is_empty() => (REPOSITORY_READER, None),
                    RoleAssignmentMode::Abac => (REPOSITORY_READER, Some(repository_condition(&binding.repositories))),
                    RoleAssignmentMode::Legacy if binding.repositories.is_empty() => (ACR_PULL, None),
                    RoleAssignmentMode::Legacy => {
                        problems.push(Finding {
                            subject: address.to_string(),
                            message: format!(
                                "binding {:?} limits repositories, but registry {registry_key} is not in ABAC mode, where AcrPull reads every repository",
                                binding.name
                            ),
                            hint: Some(format!("switch the registry to ABAC (az acr update -n {} --role-assignment-mode rbac-abac), or remove repositories", registry.name)),
                        });
                        continue;
                    }
                };
                let description = ownership::assignment_description(&config.owner, &binding.name, &cluster.live.id);
                let spec = pull_grant(registry, &kubelet.object_id, role_guid, description, condition);
                match desired.get(&address) {
                    Some(existing) if existing.spec.condition != spec.condition => problems.push(Finding {
                        subject: address.to_string(),
                        message: format!(
                            "bindings {:?} and {:?} grant cluster {} on registry {registry_key} with different repositories",
                            existing.binding, binding.name, cluster.key
                        ),
                        hint: Some("merge them into one binding".into()),
                    }),
                    Some(_) => {}
                    None => {
                        desired.insert(
                            address.clone(),
                            DesiredAssignment {
                                address,
                                cluster: cluster.key.clone(),
                                registry: registry_key.clone(),
                                binding: binding.name.clone(),
                                role_name: role_name(role_guid),
                                spec,
                            },
                        );
                    }
                }
            }
        }
    }
    (desired.into_values().collect(), problems)
}
