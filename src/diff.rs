//! Compares desired role assignments with the live ones and decides the changes, each with its
//! reason and precondition. Pure: no I/O. An existing grant (managed or not, direct or
//! inherited) satisfies a binding; only assignments acrlink marked are ever deleted.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::model::Owner;
use crate::model::{Address, Finding, Grantee, Precondition, version_of};
use crate::observe::FleetCluster;
use crate::ownership::{self, description_owner};
use crate::plan::{Action, Change, Resource, Unchanged};
use crate::provider::{LiveRegistry, LiveRoleAssignment, RoleAssignmentMode, normalize_id, role_guid};
use crate::resolve::{ACR_PULL, DesiredAssignment, grants_pull, role_name};

#[derive(Debug, Default)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub unchanged: Vec<Unchanged>,
    pub warnings: Vec<Finding>,
}

/// Made by acrlink, for any owner.
pub fn is_managed(assignment: &LiveRoleAssignment) -> bool {
    ownership::assignment_is_managed(assignment.description.as_deref())
}

/// Made by acrlink for this owner: the only assignments this run may change or delete.
pub fn is_owned(assignment: &LiveRoleAssignment, owner: &Owner) -> bool {
    ownership::assignment_is_owned(assignment.description.as_deref(), owner)
}

/// What a saved plan expects of a live assignment: its principal, role and condition.
pub fn assignment_version(assignment: &LiveRoleAssignment) -> String {
    version_of(&[
        &assignment.principal_id.to_ascii_lowercase(),
        &role_guid(&assignment.role_definition_id),
        assignment.condition.as_deref().unwrap_or_default(),
    ])
}

fn expect_assignment(assignment: &LiveRoleAssignment) -> Precondition {
    Precondition::Arm { id: assignment.id.clone(), version: assignment_version(assignment) }
}

/// Whether `ancestor` is `scope` or one of its parents (subscription, resource group, "/").
/// Assignments are listed per registry scope, so a management-group assignment in that list
/// is one of the registry's ancestors even though its id does not show the nesting.
fn covers(ancestor: &str, scope: &str) -> bool {
    let ancestor = normalize_id(ancestor);
    let scope = normalize_id(scope);
    ancestor.is_empty()
        || ancestor.starts_with("/providers/microsoft.management/managementgroups/")
        || scope == ancestor
        || scope.starts_with(&format!("{ancestor}/"))
}

pub fn diff(
    desired: &[DesiredAssignment],
    live: &BTreeMap<String, Vec<LiveRoleAssignment>>,
    registries: &BTreeMap<String, LiveRegistry>,
    clusters: &[FleetCluster],
    owner: &Owner,
) -> Diff {
    let mut result = Diff::default();
    let mut wanted_ids: BTreeSet<String> = BTreeSet::new();

    for want in desired {
        let Some(assignments) = live.get(&want.registry) else { continue };
        let id = want.spec.id();
        wanted_ids.insert(normalize_id(&id));
        let same_principal = |a: &&LiveRoleAssignment| a.principal_id.eq_ignore_ascii_case(&want.spec.principal_id);
        let mode = registries.get(&want.registry).map_or(RoleAssignmentMode::Legacy, |r| r.role_assignment_mode);

        if let Some(existing) = assignments.iter().find(|a| normalize_id(&a.id) == normalize_id(&id)) {
            let drifted = existing.condition != want.spec.condition
                || existing.description.as_deref() != Some(&want.spec.description);
            if drifted && existing.condition != want.spec.condition && !is_owned(existing, owner) {
                result.warnings.push(Finding {
                    subject: want.address.to_string(),
                    message: format!(
                        "granted with another repository condition by a different acrlink owner ({}); left as it is",
                        existing.description.as_deref().and_then(description_owner).unwrap_or_default()
                    ),
                    hint: Some("one owner should manage this cluster-registry pair".into()),
                });
                continue;
            }
            if drifted && existing.condition != want.spec.condition {
                result.changes.push(change(
                    want,
                    Action::Update,
                    "its repository condition differs from the binding's",
                    expect_assignment(existing),
                ));
            } else {
                result.unchanged.push(Unchanged { address: want.address.clone(), reason: "granted by acrlink".into() });
            }
            continue;
        }
        // Any equal-or-stronger grant at the registry or above satisfies the binding. A
        // conditioned grant only counts when the binding asks for the same condition.
        let satisfying = assignments.iter().filter(same_principal).find(|a| {
            covers(&a.scope, &want.spec.scope)
                && grants_pull(&role_guid(&a.role_definition_id), mode)
                && (a.condition.is_none() || a.condition == want.spec.condition)
        });
        if let Some(existing) = satisfying {
            let inherited = normalize_id(&existing.scope) != normalize_id(&want.spec.scope);
            let how = match (is_managed(existing), inherited) {
                (_, true) => format!(
                    "inherited from {} ({})",
                    existing.scope,
                    role_name(&role_guid(&existing.role_definition_id))
                ),
                (true, false) => format!("granted by acrlink under another name ({})", existing.name),
                (false, false) => format!(
                    "already granted outside acrlink ({} as {}; az aks update --attach-acr or by hand)",
                    role_name(&role_guid(&existing.role_definition_id)),
                    existing.name
                ),
            };
            if is_owned(existing, owner) && !inherited {
                wanted_ids.insert(normalize_id(&existing.id));
            }
            result.unchanged.push(Unchanged { address: want.address.clone(), reason: how });
            continue;
        }
        // ARM keeps one assignment per (principal, role, scope) whatever its condition: a
        // create would only earn a 409 for the one with the other condition.
        let same_grant = assignments.iter().filter(same_principal).find(|a| {
            normalize_id(&a.scope) == normalize_id(&want.spec.scope)
                && role_guid(&a.role_definition_id) == role_guid(&want.spec.role_definition_id)
        });
        if let Some(existing) = same_grant {
            if is_owned(existing, owner) {
                wanted_ids.insert(normalize_id(&existing.id));
                let mut in_place = want.clone();
                in_place.spec.name = existing.name.clone();
                result.changes.push(change(
                    &in_place,
                    Action::Update,
                    "its repository condition differs from the binding's",
                    expect_assignment(existing),
                ));
            } else {
                result.warnings.push(Finding {
                    subject: want.address.to_string(),
                    message: format!(
                        "not granted: {} is already assigned outside acrlink as {} with a narrower repository condition, and ARM allows only one such assignment",
                        role_name(&role_guid(&existing.role_definition_id)),
                        existing.name
                    ),
                    hint: Some(format!(
                        "align the binding's repositories with that assignment, or delete it (az role assignment delete --ids {}) and plan again",
                        existing.id
                    )),
                });
            }
            continue;
        }
        if mode == RoleAssignmentMode::Abac
            && let Some(ineffective) =
                assignments.iter().filter(same_principal).find(|a| role_guid(&a.role_definition_id) == ACR_PULL)
        {
            result.warnings.push(Finding {
                    subject: want.address.to_string(),
                    message: format!(
                        "AcrPull ({}) on registry {} is ineffective: the registry uses ABAC repository permissions",
                        ineffective.name, want.registry
                    ),
                    hint: Some("acrlink grants Container Registry Repository Reader instead; remove the AcrPull grant when convenient".into()),
                });
        }
        let reason =
            format!("binding {:?} wants {} pull {} and no grant exists", want.binding, want.cluster, want.registry);
        result.changes.push(change(want, Action::Create, &reason, Precondition::Absent));
    }

    // Prune: acrlink's own assignments, directly on a registry, that nothing wants any more.
    let principals: BTreeMap<String, &FleetCluster> = clusters
        .iter()
        .filter_map(|c| c.live.kubelet_identity.as_ref().map(|k| (k.object_id.to_ascii_lowercase(), c)))
        .collect();
    for (registry_key, assignments) in live {
        let Some(registry) = registries.get(registry_key) else { continue };
        for assignment in assignments {
            let on_registry = normalize_id(&assignment.scope) == normalize_id(&registry.id);
            if !on_registry || !is_owned(assignment, owner) || wanted_ids.contains(&normalize_id(&assignment.id)) {
                continue;
            }
            let owner = principals.get(&assignment.principal_id.to_ascii_lowercase());
            let grantee = owner.map_or_else(
                || Grantee::Principal(assignment.principal_id.clone()),
                |c| Grantee::Cluster(c.key.clone()),
            );
            let cluster_key = grantee.to_string();
            let recorded_cluster = assignment.description.as_deref().and_then(ownership::described_cluster);
            let reason = match (owner, &recorded_cluster) {
                (Some(_), _) => "managed by acrlink and no binding wants it any more".to_string(),
                (None, Some(cluster_id))
                    if clusters.iter().any(|c| normalize_id(&c.live.id) == normalize_id(cluster_id)) =>
                {
                    result.warnings.push(Finding {
                        subject: address_of(&grantee, registry_key, None).to_string(),
                        message: format!(
                            "orphaned grant: the kubelet identity {} of {cluster_id} was replaced",
                            assignment.principal_id
                        ),
                        hint: None,
                    });
                    "orphan: the cluster's kubelet identity was replaced".to_string()
                }
                _ => {
                    result.warnings.push(Finding {
                        subject: address_of(&grantee, registry_key, None).to_string(),
                        message: format!(
                            "orphaned grant to {} on registry {registry_key}: its cluster is not in the fleet any more",
                            assignment.principal_id
                        ),
                        hint: None,
                    });
                    "orphan: managed by acrlink, its cluster is gone or no longer bound".to_string()
                }
            };
            let role_guid_value = role_guid(&assignment.role_definition_id);
            // When a registry switches mode, the grant of the old role goes while one of the new
            // role arrives for the same pair: the role in the address keeps both apart.
            let mut address = address_of(&grantee, registry_key, None);
            if desired.iter().any(|d| d.address == address) {
                address = address_of(&grantee, registry_key, Some(role_name(&role_guid_value)));
            }
            result.changes.push(Change {
                address,
                action: Action::Delete,
                reason,
                precondition: expect_assignment(assignment),
                depends_on: Vec::new(),
                resource: Resource::RoleAssignment {
                    role_name: role_name(&role_guid_value).to_string(),
                    cluster: cluster_key.clone(),
                    registry: registry_key.clone(),
                    spec: crate::provider::RoleAssignmentSpec {
                        scope: assignment.scope.clone(),
                        name: assignment.name.clone(),
                        role_definition_id: assignment.role_definition_id.clone(),
                        principal_id: assignment.principal_id.clone(),
                        principal_type: assignment.principal_type.clone().unwrap_or_else(|| "ServicePrincipal".into()),
                        description: assignment.description.clone().unwrap_or_default(),
                        condition: assignment.condition.clone(),
                    },
                },
            });
        }
    }
    result.changes.sort_by(|a, b| (&a.address, a.action).cmp(&(&b.address, b.action)));
    result.unchanged.sort_by(|a, b| a.address.cmp(&b.address));
    result.warnings.sort_by(|a, b| (&a.subject, &a.message).cmp(&(&b.subject, &b.message)));
    result
}

fn address_of(grantee: &Grantee, registry: &str, role: Option<&str>) -> Address {
    Address::RoleAssignment { grantee: grantee.clone(), registry: registry.to_string(), role: role.map(str::to_string) }
}

fn change(want: &DesiredAssignment, action: Action, reason: &str, precondition: Precondition) -> Change {
    Change {
        address: want.address.clone(),
        action,
        reason: reason.to_string(),
        precondition,
        depends_on: Vec::new(),
        resource: Resource::RoleAssignment {
            role_name: want.role_name.to_string(),
            cluster: want.cluster.clone(),
            registry: want.registry.clone(),
            spec: want.spec.clone(),
        },
    }
}

/// Problems found while observing or resolving, as plan errors.
pub fn errors(problems: Vec<Finding>) -> Vec<Finding> {
    let mut findings = problems;
    findings.sort_by(|a, b| (&a.subject, &a.message).cmp(&(&b.subject, &b.message)));
    findings.dedup();
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::MANAGED_MARKER;
    use crate::provider::{KubeletIdentity, LiveCluster, RoleAssignmentSpec};
    use crate::resolve::{REPOSITORY_READER, assignment_address, role_assignment_name};

    const SUB: &str = "/subscriptions/s1";
    const RG: &str = "/subscriptions/s1/resourceGroups/rg";
    const ACR: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr1";

    fn registry(mode: RoleAssignmentMode) -> BTreeMap<String, LiveRegistry> {
        BTreeMap::from([(
            "acr1".to_string(),
            LiveRegistry {
                id: ACR.into(),
                name: "acr1".into(),
                subscription_id: "s1".into(),
                resource_group: "rg".into(),
                login_server: "acr1.azurecr.io".into(),
                role_assignment_mode: mode,
                admin_user_enabled: false,
            },
        )])
    }

    fn cluster(key: &str, object_id: &str) -> FleetCluster {
        FleetCluster {
            key: key.into(),
            labels: BTreeMap::new(),
            origin: String::new(),
            live: LiveCluster {
                id: format!("{RG}/providers/Microsoft.ContainerService/managedClusters/{key}"),
                name: key.into(),
                subscription_id: "s1".into(),
                resource_group: "rg".into(),
                tags: BTreeMap::new(),
                kubelet_identity: Some(KubeletIdentity {
                    client_id: "c".into(),
                    object_id: object_id.into(),
                    resource_id: String::new(),
                }),
            },
        }
    }

    fn desired(key: &str, principal: &str, role: &str) -> DesiredAssignment {
        DesiredAssignment {
            address: assignment_address(key, "acr1"),
            cluster: key.into(),
            registry: "acr1".into(),
            binding: "b".into(),
            role_name: role_name(role),
            spec: RoleAssignmentSpec {
                scope: ACR.into(),
                name: role_assignment_name(ACR, principal, role),
                role_definition_id: format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                principal_id: principal.into(),
                principal_type: "ServicePrincipal".into(),
                description: format!("{MANAGED_MARKER}: binding b lets cluster {key} pull"),
                condition: None,
            },
        }
    }

    fn live(scope: &str, name: &str, principal: &str, role: &str, managed: bool) -> LiveRoleAssignment {
        LiveRoleAssignment {
            id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            name: name.into(),
            scope: scope.into(),
            role_definition_id: format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            principal_id: principal.into(),
            principal_type: Some("ServicePrincipal".into()),
            description: managed.then(|| format!("{MANAGED_MARKER}: binding old lets cluster x pull")),
            condition: None,
        }
    }

    fn run(want: &[DesiredAssignment], existing: Vec<LiveRoleAssignment>, mode: RoleAssignmentMode) -> Diff {
        let live = BTreeMap::from([("acr1".to_string(), existing)]);
        diff(want, &live, &registry(mode), &[cluster("aks1", "p1"), cluster("aks2", "p2")], &Owner::default())
    }

    #[test]
    fn table() {
        struct Case {
            why: &'static str,
            existing: Vec<LiveRoleAssignment>,
            mode: RoleAssignmentMode,
            want_actions: Vec<Action>,
            unchanged: usize,
            warnings: usize,
        }
        let want = desired("aks1", "p1", ACR_PULL);
        let cases = vec![
            Case {
                why: "nothing exists: create",
                existing: vec![],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![Action::Create],
                unchanged: 0,
                warnings: 0,
            },
            Case {
                why: "our own assignment is there: nothing",
                existing: vec![live(ACR, &want.spec.name, "P1", ACR_PULL, true)],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![],
                unchanged: 1,
                warnings: 0,
            },
            Case {
                why: "attach-acr grant by hand satisfies it",
                existing: vec![live(ACR, "x", "p1", ACR_PULL, false)],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![],
                unchanged: 1,
                warnings: 0,
            },
            Case {
                why: "inherited from the resource group satisfies it",
                existing: vec![live(RG, "x", "p1", ACR_PULL, false)],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![],
                unchanged: 1,
                warnings: 0,
            },
            Case {
                why: "a grant to someone else does not",
                existing: vec![live(ACR, "x", "p9", ACR_PULL, false)],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![Action::Create],
                unchanged: 0,
                warnings: 0,
            },
            Case {
                why: "our grant nobody wants is deleted",
                existing: vec![live(ACR, "old", "p2", ACR_PULL, true)],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![Action::Create, Action::Delete],
                unchanged: 0,
                warnings: 0,
            },
            Case {
                why: "a foreign grant nobody wants is left alone",
                existing: vec![live(ACR, "old", "p2", ACR_PULL, false)],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![Action::Create],
                unchanged: 0,
                warnings: 0,
            },
            Case {
                why: "our grant to a vanished identity is an orphan, deleted",
                existing: vec![live(ACR, "old", "gone", ACR_PULL, true)],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![Action::Create, Action::Delete],
                unchanged: 0,
                warnings: 1,
            },
            Case {
                why: "inherited from a parent of our own, deleted only where we made it",
                existing: vec![live(SUB, "old", "p2", ACR_PULL, true)],
                mode: RoleAssignmentMode::Legacy,
                want_actions: vec![Action::Create],
                unchanged: 0,
                warnings: 0,
            },
        ];
        for case in cases {
            let result = run(std::slice::from_ref(&want), case.existing, case.mode);
            let actions: Vec<Action> = result.changes.iter().map(|c| c.action).collect();
            assert_eq!(actions, case.want_actions, "{}", case.why);
            assert_eq!(result.unchanged.len(), case.unchanged, "{}", case.why);
            assert_eq!(result.warnings.len(), case.warnings, "{}: {:?}", case.why, result.warnings);
        }
    }

    #[test]
    fn only_the_files_own_grants_are_pruned() {
        let want = desired("aks1", "p1", ACR_PULL);
        let mut theirs = live(ACR, "old", "p2", ACR_PULL, true);
        theirs.description = Some(format!("{MANAGED_MARKER} for payments: binding b lets cluster x pull"));
        let mut ours = live(ACR, "older", "p2", ACR_PULL, true);
        ours.description = Some(format!("{MANAGED_MARKER} for platform: binding b lets cluster x pull"));
        let live = BTreeMap::from([("acr1".to_string(), vec![theirs, ours])]);
        let clusters = [cluster("aks1", "p1"), cluster("aks2", "p2")];
        let result = diff(
            std::slice::from_ref(&want),
            &live,
            &registry(RoleAssignmentMode::Legacy),
            &clusters,
            &Owner::named("platform"),
        );
        let deleted: Vec<&str> = result
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .filter_map(|c| c.precondition.arm_id())
            .collect();
        assert_eq!(deleted.len(), 1, "{:?}", result.changes);
        assert!(deleted[0].ends_with("/older"), "{deleted:?}");
        assert_eq!(description_owner("Managed by acrlink: binding b"), Some("default".into()));
        assert_eq!(description_owner("Managed by acrlink for payments: binding b"), Some("payments".into()));
        assert_eq!(description_owner("made by hand"), None);
    }

    #[test]
    fn a_registry_switching_to_abac_swaps_roles_under_distinct_addresses() {
        let want = desired("aks1", "p1", REPOSITORY_READER);
        let result =
            run(std::slice::from_ref(&want), vec![live(ACR, "old", "p1", ACR_PULL, true)], RoleAssignmentMode::Abac);
        let texts: Vec<(String, Action)> = result.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
        let addresses: Vec<(&str, Action)> = texts.iter().map(|(a, action)| (a.as_str(), *action)).collect();
        assert_eq!(
            addresses,
            vec![
                ("role_assignment[aks1/acr1:AcrPull]", Action::Delete),
                ("role_assignment[aks1/acr1]", Action::Create)
            ]
        );
    }

    #[test]
    fn a_management_group_grant_is_inherited() {
        let want = desired("aks1", "p1", ACR_PULL);
        let mg = "/providers/Microsoft.Management/managementGroups/platform";
        let result =
            run(std::slice::from_ref(&want), vec![live(mg, "x", "p1", ACR_PULL, false)], RoleAssignmentMode::Legacy);
        assert!(result.changes.is_empty(), "{:?}", result.changes);
        assert!(result.unchanged[0].reason.contains("inherited"), "{:?}", result.unchanged);
    }

    #[test]
    fn owner_satisfies_a_legacy_registry_but_not_an_abac_one() {
        const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
        let legacy = run(
            &[desired("aks1", "p1", ACR_PULL)],
            vec![live(RG, "x", "p1", OWNER, false)],
            RoleAssignmentMode::Legacy,
        );
        assert!(legacy.changes.is_empty(), "{:?}", legacy.changes);
        let abac = run(
            &[desired("aks1", "p1", REPOSITORY_READER)],
            vec![live(RG, "x", "p1", OWNER, false)],
            RoleAssignmentMode::Abac,
        );
        assert_eq!(abac.changes.iter().map(|c| c.action).collect::<Vec<_>>(), vec![Action::Create]);
    }

    #[test]
    fn a_grant_with_another_repository_condition_is_updated_if_ours_and_reported_if_not() {
        let mut want = desired("aks1", "p1", REPOSITORY_READER);
        want.spec.condition = Some("wide".into());
        let narrow = |managed: bool| {
            let mut existing = live(ACR, "other-name", "p1", REPOSITORY_READER, managed);
            existing.condition = Some("narrow".into());
            existing
        };
        let ours = run(std::slice::from_ref(&want), vec![narrow(true)], RoleAssignmentMode::Abac);
        assert_eq!(ours.changes.len(), 1, "{:?}", ours.changes);
        assert_eq!(ours.changes[0].action, Action::Update);
        let Resource::RoleAssignment { spec, .. } = &ours.changes[0].resource else { panic!("a role assignment") };
        assert_eq!(spec.name, "other-name", "updated in place: ARM refuses a second one");
        assert_eq!(spec.condition.as_deref(), Some("wide"));

        let foreign = run(std::slice::from_ref(&want), vec![narrow(false)], RoleAssignmentMode::Abac);
        assert!(foreign.changes.is_empty(), "never touches a foreign grant: {:?}", foreign.changes);
        assert!(foreign.warnings[0].message.contains("not granted"), "{:?}", foreign.warnings);
        assert!(foreign.warnings[0].hint.as_deref().unwrap_or_default().contains("other-name"));
    }

    #[test]
    fn acr_pull_on_an_abac_registry_is_flagged_and_does_not_satisfy() {
        let want = desired("aks1", "p1", REPOSITORY_READER);
        let result = run(&[want], vec![live(ACR, "x", "p1", ACR_PULL, false)], RoleAssignmentMode::Abac);
        assert_eq!(result.changes.len(), 1);
        assert_eq!(result.changes[0].action, Action::Create);
        assert!(result.warnings[0].message.contains("ineffective"), "{:?}", result.warnings);
    }
}
