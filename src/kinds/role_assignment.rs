//! Role assignments (Azure RBAC grants that let a principal pull). Diff: desired against live,
//! pure; an existing grant (managed or not, direct or inherited) satisfies a binding; only
//! assignments acrlink marked are ever deleted. Apply: PUT with the deterministic name,
//! adopting an equal grant ARM reports as existing. Check: the assignment's version now.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::config::model::Owner;
use crate::model::{Address, Finding, Grantee, InPlace, Precondition, Reason, State, version_of};
use crate::observe::FleetCluster;
use crate::ownership::{self, description_owner};
use crate::plan::{Action, Change, Marks, Resource, Unchanged};
use crate::provider::{
    LiveRegistry, LiveRoleAssignment, RoleAssignmentMode, RoleAssignmentSpec, normalize_id, role_guid,
};
use std::time::{Duration, Instant};

use super::roles::{ACR_PULL, grants_pull, role_name};
use super::{ApplyContext, Diff, Done, Failed, Found};
use crate::apply::Status;
use crate::provider::{Azure, AzureError, Written};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAssignment {
    pub address: Address,
    pub cluster: String,
    pub registry: String,
    pub binding: String,
    pub role_name: &'static str,
    pub spec: RoleAssignmentSpec,
}

pub fn assignment_address(cluster: &str, registry: &str) -> Address {
    Address::role_assignment(cluster, registry)
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
pub fn covers(ancestor: &str, scope: &str) -> bool {
    let ancestor = normalize_id(ancestor);
    let scope = normalize_id(scope);
    ancestor.is_empty()
        || ancestor.starts_with("/providers/microsoft.management/managementgroups/")
        || scope == ancestor
        || scope.starts_with(&format!("{ancestor}/"))
}

/// The live assignments of one registry's list, indexed once: by id and by principal.
struct Grants<'a> {
    by_id: HashMap<String, &'a LiveRoleAssignment>,
    by_principal: HashMap<String, Vec<&'a LiveRoleAssignment>>,
}

impl<'a> Grants<'a> {
    fn new(assignments: &'a [LiveRoleAssignment]) -> Grants<'a> {
        let mut grants = Grants { by_id: HashMap::new(), by_principal: HashMap::new() };
        for assignment in assignments {
            grants.by_id.insert(normalize_id(&assignment.id), assignment);
            grants.by_principal.entry(assignment.principal_id.to_ascii_lowercase()).or_default().push(assignment);
        }
        grants
    }

    fn of(&self, principal: &str) -> &[&'a LiveRoleAssignment] {
        self.by_principal.get(&principal.to_ascii_lowercase()).map_or(&[], Vec::as_slice)
    }
}

/// What the diff of role assignments works with.
struct Context<'a> {
    owner: &'a Owner,
    /// Normalized ids of the assignments some binding wants: never pruned.
    wanted_ids: HashSet<String>,
    result: Diff,
}

pub fn diff(
    desired: &[DesiredAssignment],
    live: &BTreeMap<String, Vec<LiveRoleAssignment>>,
    registries: &BTreeMap<String, LiveRegistry>,
    clusters: &[FleetCluster],
    owner: &Owner,
) -> Diff {
    let index: HashMap<&str, Grants> = live.iter().map(|(key, list)| (key.as_str(), Grants::new(list))).collect();
    let mut context = Context { owner, wanted_ids: HashSet::new(), result: Diff::default() };
    for want in desired {
        let Some(grants) = index.get(want.registry.as_str()) else { continue };
        let mode = registries.get(&want.registry).map_or(RoleAssignmentMode::Legacy, |r| r.role_assignment_mode);
        context.wanted_ids.insert(normalize_id(&want.spec.id()));
        wanted_grant(want, grants, mode, &mut context);
    }
    prune(desired, live, registries, clusters, &mut context);
    let mut result = context.result;
    result.changes.sort_by(|a, b| (&a.address, a.action).cmp(&(&b.address, b.action)));
    result.unchanged.sort_by(|a, b| a.address.cmp(&b.address));
    result.warnings.sort_by(|a, b| (&a.subject, &a.message).cmp(&(&b.subject, &b.message)));
    result
}

/// One grant a binding wants: in place, satisfied by another, updated, blocked or created.
fn wanted_grant(want: &DesiredAssignment, grants: &Grants<'_>, mode: RoleAssignmentMode, context: &mut Context<'_>) {
    if let Some(existing) = grants.by_id.get(&normalize_id(&want.spec.id())) {
        return same_name(want, existing, context);
    }
    let mine = grants.of(&want.spec.principal_id);
    // Any equal-or-stronger grant at the registry or above satisfies the binding. A
    // conditioned grant only counts when the binding asks for the same condition.
    let satisfying = mine.iter().find(|a| {
        covers(&a.scope, &want.spec.scope)
            && grants_pull(&role_guid(&a.role_definition_id), mode)
            && (a.condition.is_none() || a.condition == want.spec.condition)
    });
    if let Some(existing) = satisfying {
        return satisfied(want, existing, context);
    }
    // ARM keeps one assignment per (principal, role, scope) whatever its condition: a
    // create would only earn a 409 for the one with the other condition.
    let same_grant = mine.iter().find(|a| {
        normalize_id(&a.scope) == normalize_id(&want.spec.scope)
            && role_guid(&a.role_definition_id) == role_guid(&want.spec.role_definition_id)
    });
    if let Some(existing) = same_grant {
        return other_condition(want, existing, context);
    }
    if mode == RoleAssignmentMode::Abac
        && let Some(ineffective) = mine.iter().find(|a| role_guid(&a.role_definition_id) == ACR_PULL)
    {
        context.result.warnings.push(Finding {
            subject: want.address.to_string(),
            message: format!(
                "AcrPull ({}) on registry {} is ineffective: the registry uses ABAC repository permissions",
                ineffective.name, want.registry
            ),
            hint: Some(
                "acrlink grants Container Registry Repository Reader instead; remove the AcrPull grant when convenient"
                    .into(),
            ),
        });
    }
    let reason = Reason::GrantMissing {
        binding: want.binding.clone(),
        cluster: want.cluster.clone(),
        registry: want.registry.clone(),
    };
    let create = change(want, Action::Create, reason, Precondition::Absent);
    context.result.changes.push(create.states(None, Some(wanted_state(want))));
}

/// An assignment already has the deterministic name: in place, or its condition differs.
fn same_name(want: &DesiredAssignment, existing: &LiveRoleAssignment, context: &mut Context<'_>) {
    if existing.condition == want.spec.condition && is_managed(existing) && !is_owned(existing, context.owner) {
        return join(want, existing, context);
    }
    if existing.condition == want.spec.condition {
        // The deterministic name is Bicep's guid(): a template or a person may have used it too.
        let reason = if is_managed(existing) {
            InPlace::GrantedByAcrlink
        } else {
            let role = role_name(&role_guid(&existing.role_definition_id)).to_string();
            InPlace::GrantedOutside { role, name: existing.name.clone() }
        };
        context.result.unchanged.push(Unchanged { address: want.address.clone(), reason });
    } else if is_owned(existing, context.owner) {
        // The owners recorded on it stay (a shared grant keeps the others' marks).
        let mut in_place = want.clone();
        in_place.spec.description = existing.description.clone().unwrap_or_default();
        let precondition = expect_assignment(existing);
        let update = change(&in_place, Action::Update, Reason::ConditionDiffers, precondition);
        context.result.changes.push(update.shifting(live_state(existing), wanted_state(&in_place)));
    } else {
        context.result.warnings.push(Finding {
            subject: want.address.to_string(),
            message: format!(
                "granted with another repository condition by a different acrlink owner ({}); left as it is",
                existing.description.as_deref().and_then(description_owner).unwrap_or_default()
            ),
            hint: Some("one owner should manage this cluster-registry pair".into()),
        });
    }
}

/// Another acrlink owner made the grant this file wants: this owner is recorded on it too
/// (never replacing the others), so whichever stops wanting it first leaves it to the rest.
fn join(want: &DesiredAssignment, existing: &LiveRoleAssignment, context: &mut Context<'_>) {
    let description = existing.description.clone().unwrap_or_default();
    let owners = ownership::description_owners(&description).unwrap_or_default();
    let mut shared = want.clone();
    shared.spec.description = ownership::with_owner(&description, context.owner);
    let mut change = change(&shared, Action::Update, Reason::GrantShared { owners }, expect_assignment(existing));
    if let Resource::RoleAssignment { marks, .. } = &mut change.resource {
        *marks = Marks::Join;
    }
    context.result.changes.push(change.shifting(live_state(existing), wanted_state(&shared)));
}

/// Another grant (by hand, inherited, or acrlink's under another name) already does it.
fn satisfied(want: &DesiredAssignment, existing: &LiveRoleAssignment, context: &mut Context<'_>) {
    let inherited = normalize_id(&existing.scope) != normalize_id(&want.spec.scope);
    let role = role_name(&role_guid(&existing.role_definition_id)).to_string();
    let how = match (is_managed(existing), inherited) {
        (_, true) => InPlace::Inherited { scope: existing.scope.clone(), role },
        (true, false) => InPlace::GrantedUnderAnotherName { name: existing.name.clone() },
        (false, false) => InPlace::GrantedOutside { role, name: existing.name.clone() },
    };
    if is_owned(existing, context.owner) && !inherited {
        context.wanted_ids.insert(normalize_id(&existing.id));
    }
    context.result.unchanged.push(Unchanged { address: want.address.clone(), reason: how });
}

/// The same role on the same scope exists with another condition: ours is updated in place,
/// anyone else's is reported.
fn other_condition(want: &DesiredAssignment, existing: &LiveRoleAssignment, context: &mut Context<'_>) {
    if is_owned(existing, context.owner) {
        context.wanted_ids.insert(normalize_id(&existing.id));
        let mut in_place = want.clone();
        in_place.spec.name = existing.name.clone();
        in_place.spec.description = existing.description.clone().unwrap_or_default();
        let precondition = expect_assignment(existing);
        let update = change(&in_place, Action::Update, Reason::ConditionDiffers, precondition);
        context.result.changes.push(update.shifting(live_state(existing), wanted_state(&in_place)));
        return;
    }
    context.result.warnings.push(Finding {
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

/// acrlink's own assignments, directly on a registry, that nothing wants any more.
fn prune(
    desired: &[DesiredAssignment],
    live: &BTreeMap<String, Vec<LiveRoleAssignment>>,
    registries: &BTreeMap<String, LiveRegistry>,
    clusters: &[FleetCluster],
    context: &mut Context<'_>,
) {
    let principals: HashMap<String, &FleetCluster> = clusters
        .iter()
        .filter_map(|c| c.live.kubelet_identity.as_ref().map(|k| (k.object_id.to_ascii_lowercase(), c)))
        .collect();
    let cluster_ids: HashSet<String> = clusters.iter().map(|c| normalize_id(&c.live.id)).collect();
    let desired_addresses: HashSet<&Address> = desired.iter().map(|d| &d.address).collect();
    for (registry_key, assignments) in live {
        let Some(registry) = registries.get(registry_key) else { continue };
        for assignment in assignments {
            let on_registry = normalize_id(&assignment.scope) == normalize_id(&registry.id);
            if !on_registry
                || !is_owned(assignment, context.owner)
                || context.wanted_ids.contains(&normalize_id(&assignment.id))
            {
                continue;
            }
            let grantee = grantee_of(assignment, &principals);
            let reason = prune_reason(assignment, &grantee, registry_key, &cluster_ids, &mut context.result);
            // When a registry switches mode, the grant of the old role goes while one of the new
            // role arrives for the same pair: the role in the address keeps both apart.
            let role = role_name(&role_guid(&assignment.role_definition_id));
            let mut address = address_of(&grantee, registry_key, None);
            if desired_addresses.contains(&address) {
                address = address_of(&grantee, registry_key, Some(role));
            }
            let others = ownership::other_owners(assignment.description.as_deref(), context.owner);
            let mut release = deletion(address, reason, assignment, &grantee, registry_key)
                .states(Some(live_state(assignment)), None);
            if !others.is_empty() {
                // Another owner's file still wants it: only this owner's mark goes.
                release.action = Action::Update;
                release.reason = Reason::GrantLeft { remaining: others };
                if let Resource::RoleAssignment { marks, spec, .. } = &mut release.resource {
                    *marks = Marks::Leave;
                    spec.description = ownership::without_owner(&spec.description, context.owner).unwrap_or_default();
                }
                let mut after = live_state(assignment);
                if let State::RoleAssignment { owners, .. } = &mut after {
                    owners.retain(|o| o != context.owner.name());
                }
                release = release.shifting(live_state(assignment), after);
            }
            context.result.changes.push(release);
        }
    }
}

/// Who an owned grant lets pull: a cluster of the fleet by its kubelet identity, the service
/// principal its description names, or else the bare principal (an orphan).
fn grantee_of(assignment: &LiveRoleAssignment, principals: &HashMap<String, &FleetCluster>) -> Grantee {
    if let Some(cluster) = principals.get(&assignment.principal_id.to_ascii_lowercase()) {
        return Grantee::Cluster(cluster.key.clone());
    }
    match assignment.description.as_deref().and_then(ownership::described_service_principal) {
        Some(client_id) => Grantee::ServicePrincipal(client_id.to_string()),
        None => Grantee::Principal(assignment.principal_id.clone()),
    }
}

/// Why an owned grant goes; an orphan is also a warning.
fn prune_reason(
    assignment: &LiveRoleAssignment,
    grantee: &Grantee,
    registry_key: &str,
    cluster_ids: &HashSet<String>,
    result: &mut Diff,
) -> Reason {
    if !matches!(grantee, Grantee::Principal(_)) {
        return Reason::GrantUnwanted;
    }
    let subject = address_of(grantee, registry_key, None).to_string();
    let recorded_cluster = assignment.description.as_deref().and_then(ownership::described_cluster);
    match recorded_cluster {
        Some(cluster_id) if cluster_ids.contains(&normalize_id(cluster_id)) => {
            result.warnings.push(Finding {
                subject,
                message: format!(
                    "orphaned grant: the kubelet identity {} of {cluster_id} was replaced",
                    assignment.principal_id
                ),
                hint: None,
            });
            Reason::OrphanIdentityReplaced
        }
        _ => {
            result.warnings.push(Finding {
                subject,
                message: format!(
                    "orphaned grant to {} on registry {registry_key}: its cluster is not in the fleet any more",
                    assignment.principal_id
                ),
                hint: None,
            });
            Reason::OrphanClusterGone
        }
    }
}

fn deletion(
    address: Address,
    reason: Reason,
    assignment: &LiveRoleAssignment,
    grantee: &Grantee,
    registry_key: &str,
) -> Change {
    Change {
        address,
        action: Action::Delete,
        reason,
        precondition: expect_assignment(assignment),
        depends_on: Vec::new(),
        before: None,
        after: None,
        resource: Resource::RoleAssignment {
            role_name: role_name(&role_guid(&assignment.role_definition_id)).to_string(),
            cluster: grantee.to_string(),
            registry: registry_key.to_string(),
            spec: crate::provider::RoleAssignmentSpec {
                scope: assignment.scope.clone(),
                name: assignment.name.clone(),
                role_definition_id: assignment.role_definition_id.clone(),
                principal_id: assignment.principal_id.clone(),
                principal_type: assignment.principal_type.clone().unwrap_or_else(|| "ServicePrincipal".into()),
                description: assignment.description.clone().unwrap_or_default(),
                condition: assignment.condition.clone(),
            },
            marks: Marks::Write,
        },
    }
}

/// A live grant as the plan shows it.
fn live_state(assignment: &LiveRoleAssignment) -> State {
    State::RoleAssignment {
        role: role_name(&role_guid(&assignment.role_definition_id)).to_string(),
        condition: assignment.condition.clone(),
        owners: assignment.description.as_deref().and_then(ownership::description_owners).unwrap_or_default(),
    }
}

/// The grant a change writes, in the same terms.
fn wanted_state(want: &DesiredAssignment) -> State {
    State::RoleAssignment {
        role: want.role_name.to_string(),
        condition: want.spec.condition.clone(),
        owners: ownership::description_owners(&want.spec.description).unwrap_or_default(),
    }
}

fn address_of(grantee: &Grantee, registry: &str, role: Option<&str>) -> Address {
    Address::RoleAssignment { grantee: grantee.clone(), registry: registry.to_string(), role: role.map(str::to_string) }
}

fn change(want: &DesiredAssignment, action: Action, reason: Reason, precondition: Precondition) -> Change {
    Change {
        address: want.address.clone(),
        action,
        reason,
        precondition,
        depends_on: Vec::new(),
        before: None,
        after: None,
        resource: Resource::RoleAssignment {
            role_name: want.role_name.to_string(),
            cluster: want.cluster.clone(),
            registry: want.registry.clone(),
            spec: want.spec.clone(),
            marks: Marks::Write,
        },
    }
}

fn authorization_hint(action: &str, scope: &str) -> String {
    format!(
        "the identity running acrlink needs {action} at {scope}: grant it Owner, User Access Administrator or Role Based Access Control Administrator there"
    )
}

fn failed(error: AzureError) -> Failed {
    let hint = match &error {
        AzureError::AuthorizationFailed { action, scope, .. } => Some(authorization_hint(action, scope)),
        AzureError::PrincipalNotFound { .. } => {
            Some("the kubelet identity is not visible in the directory yet; run apply again in a few minutes".into())
        }
        AzureError::RetriesExhausted { .. } => Some("Azure kept throttling or failing; run apply again later".into()),
        _ => None,
    };
    Failed { message: error.to_string(), hint }
}

/// The grant a role-assignment change writes or removes.
pub(super) struct Grant<'a> {
    pub role_name: &'a str,
    pub cluster: &'a str,
    pub registry: &'a str,
    pub spec: &'a RoleAssignmentSpec,
    pub marks: Marks,
}

pub(super) async fn apply<A: Azure>(
    change: &Change,
    grant: &Grant<'_>,
    azure: &A,
    context: &ApplyContext,
) -> Result<Done, Failed> {
    match (change.action, grant.marks) {
        (Action::Delete, _) | (_, Marks::Leave) => release(change, grant, azure, context).await,
        (_, Marks::Join) => join_live(&change.address, grant, azure, context).await,
        (Action::Create, Marks::Write) => create(&change.address, grant, azure, context).await,
        (action, Marks::Write) => put(action, &change.address, grant, azure, context).await,
    }
}

/// A grant planned absent: made only if it still is. One that appeared since the plan (another
/// run, maybe of another owner) is joined or adopted, never rewritten.
async fn create<A: Azure>(
    address: &Address,
    grant: &Grant<'_>,
    azure: &A,
    context: &ApplyContext,
) -> Result<Done, Failed> {
    match azure.get_role_assignment(&grant.spec.id()).await.map_err(failed)? {
        Some(live) if is_managed(&live) && !is_owned(&live, &context.owner) => {
            join_live(address, grant, azure, context).await
        }
        Some(live) => Ok(Done::new(Status::Adopted, format!("{} appeared since the plan; adopted", live.name))),
        None => put(Action::Create, address, grant, azure, context).await,
    }
}

/// PUTs the grant's spec for `action`, riding out directory replication lag (PrincipalNotFound).
async fn put<A: Azure>(
    action: Action,
    address: &Address,
    grant: &Grant<'_>,
    azure: &A,
    context: &ApplyContext,
) -> Result<Done, Failed> {
    let Grant { role_name, cluster, registry, spec, .. } = grant;
    let started = Instant::now();
    let mut wait = Duration::from_millis(500);
    loop {
        match azure.create_role_assignment(spec).await {
            Ok(Written::Updated) if action == Action::Create => return Err(raced(grant)),
            Ok(Written::Unchanged) if action == Action::Create => {
                return Ok(Done::new(
                    Status::Adopted,
                    "made the same moment by another run of this file; adopted".into(),
                ));
            }
            Ok(_) => {
                let (status, verb) =
                    if action == Action::Create { (Status::Created, "granted") } else { (Status::Updated, "updated") };
                return Ok(Done::new(status, format!("{verb} {role_name} to {cluster} on {registry}")));
            }
            Err(AzureError::RoleAssignmentExists { existing_id }) => return adopt(grant, azure, existing_id).await,
            Err(AzureError::PrincipalNotFound { .. }) if started.elapsed() + wait <= context.principal_wait => {
                tracing::info!(%address, wait_ms = wait.as_millis() as u64, "principal not visible yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(15));
            }
            Err(error) => return Err(failed(error)),
        }
    }
}

/// ARM answered 200 to a create and changed the grant: another run made it between this one's
/// read and write with another description, and this write replaced its owner mark, which
/// cannot be told back.
fn raced(grant: &Grant<'_>) -> Failed {
    Failed {
        message: format!(
            "{} to {} on {} was made by another run at the same moment; this write replaced its owner mark",
            grant.role_name, grant.cluster, grant.registry
        ),
        hint: Some("run the other file's apply again: it records its owner on the grant next to this one".into()),
    }
}

/// Records this owner on a grant another acrlink owner made, keeping every mark there.
/// A grant that went away before it could be joined is made afresh, with this owner's mark.
async fn join_live<A: Azure>(
    address: &Address,
    grant: &Grant<'_>,
    azure: &A,
    context: &ApplyContext,
) -> Result<Done, Failed> {
    let Some(live) = azure.get_role_assignment(&grant.spec.id()).await.map_err(failed)? else {
        let mut own = grant.spec.clone();
        own.description = ownership::with_owner(&grant.spec.description, &context.owner);
        let made = Grant { spec: &own, ..*grant };
        return put(Action::Create, address, &made, azure, context).await;
    };
    if !is_managed(&live) || is_owned(&live, &context.owner) {
        return Ok(Done::new(Status::Adopted, format!("{} already holds this grant; adopted", live.name)));
    }
    let description = ownership::with_owner(live.description.as_deref().unwrap_or_default(), &context.owner);
    azure.create_role_assignment(&spec_of(&live, description)).await.map_err(failed)?;
    let others = ownership::other_owners(live.description.as_deref(), &context.owner).join(", ");
    Ok(Done::new(
        Status::Updated,
        format!("shares {} to {} on {} with acrlink owner(s) {others}", grant.role_name, grant.cluster, grant.registry),
    ))
}

/// A grant this owner no longer wants: deleted when no other owner is recorded on it now,
/// otherwise only this owner's mark is removed.
async fn release<A: Azure>(
    change: &Change,
    grant: &Grant<'_>,
    azure: &A,
    context: &ApplyContext,
) -> Result<Done, Failed> {
    let Grant { role_name, cluster, registry, spec, .. } = grant;
    let id = change.precondition.arm_id().map_or_else(|| spec.id(), str::to_string);
    let Some(live) = azure.get_role_assignment(&id).await.map_err(failed)? else {
        return Ok(Done::new(Status::AlreadyGone, "already gone".into()));
    };
    let description = live.description.as_deref().unwrap_or_default();
    if !is_owned(&live, &context.owner) {
        return Ok(Done::new(Status::AlreadyGone, "no longer records this owner; left as it is".into()));
    }
    if let Some(remaining) = ownership::without_owner(description, &context.owner) {
        let others = ownership::other_owners(Some(description), &context.owner).join(", ");
        azure.create_role_assignment(&spec_of(&live, remaining)).await.map_err(failed)?;
        return Ok(Done::new(
            Status::Updated,
            format!("left {role_name} to {cluster} on {registry} to acrlink owner(s) {others}"),
        ));
    }
    match azure.delete_role_assignment(&live.id).await {
        Ok(()) => Ok(Done::new(Status::Deleted, format!("removed {role_name} from {cluster} on {registry}"))),
        Err(AzureError::NotFound { .. }) => Ok(Done::new(Status::AlreadyGone, "already gone".into())),
        Err(error) => Err(failed(error)),
    }
}

/// The live grant as a PUT body with another description: nothing else of it changes.
fn spec_of(live: &LiveRoleAssignment, description: String) -> RoleAssignmentSpec {
    RoleAssignmentSpec {
        scope: live.scope.clone(),
        name: live.name.clone(),
        role_definition_id: live.role_definition_id.clone(),
        principal_id: live.principal_id.clone(),
        principal_type: live.principal_type.clone().unwrap_or_else(|| "ServicePrincipal".into()),
        description,
        condition: live.condition.clone(),
    }
}

/// After a 409: ARM allows one assignment per (principal, role, scope) whatever its condition,
/// so the one that exists is adopted only if it grants at least what the binding asks.
async fn adopt<A: Azure>(grant: &Grant<'_>, azure: &A, existing_id: String) -> Result<Done, Failed> {
    let Grant { role_name, cluster, registry, spec, .. } = grant;
    match conflicting_grant(azure, spec, &existing_id).await {
        Ok(None) => {
            let existing = if existing_id.is_empty() { "another name".to_string() } else { existing_id };
            Ok(Done::new(Status::Adopted, format!("the same grant already exists as {existing}; adopted")))
        }
        Ok(Some(existing)) => Err(Failed {
            message: format!(
                "{role_name} is already assigned to {cluster} on {registry} as {} with a different repository condition; ARM allows only one such assignment",
                existing.name
            ),
            hint: Some(format!(
                "align the binding's repositories with that assignment, or delete it (az role assignment delete --ids {}) and apply again",
                existing.id
            )),
        }),
        Err(error) => Err(failed(error)),
    }
}

/// After a 409: the existing assignment of the same role, principal and scope whose condition
/// is narrower than (different from) the one wanted, if any.
async fn conflicting_grant<A: Azure>(
    azure: &A,
    spec: &RoleAssignmentSpec,
    existing_name: &str,
) -> Result<Option<LiveRoleAssignment>, AzureError> {
    let same_grant = |a: &LiveRoleAssignment| {
        normalize_id(&a.scope) == normalize_id(&spec.scope)
            && a.principal_id.eq_ignore_ascii_case(&spec.principal_id)
            && role_guid(&a.role_definition_id) == role_guid(&spec.role_definition_id)
    };
    let candidates = azure.list_role_assignments(&spec.scope).await?;
    let existing = candidates
        .into_iter()
        .filter(same_grant)
        .max_by_key(|a| existing_name.is_empty() || a.name.eq_ignore_ascii_case(existing_name));
    Ok(existing.filter(|a| a.condition.is_some() && a.condition != spec.condition))
}

/// What is live at a role-assignment change's target, for a saved plan's check.
pub(super) async fn found<A: Azure>(change: &Change, spec: &RoleAssignmentSpec, azure: &A) -> Result<Found, String> {
    let id = change.precondition.arm_id().map_or_else(|| spec.id(), str::to_string);
    let live = azure.get_role_assignment(&id).await.map_err(|e| e.to_string())?;
    Ok(live.map_or(Found::Absent, |a| Found::Arm { version: assignment_version(&a) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::roles::{REPOSITORY_READER, role_assignment_name};
    use crate::ownership::MANAGED_MARKER;
    use crate::provider::{KubeletIdentity, LiveCluster, RoleAssignmentSpec};

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
                access: Default::default(),
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
    fn a_hand_made_grant_that_happens_to_carry_the_deterministic_name_is_not_called_acrlinks() {
        let want = desired("aks1", "p1", ACR_PULL);
        let mut twin = live(ACR, &want.spec.name, "p1", ACR_PULL, false);
        twin.id = want.spec.id();
        let result = run(std::slice::from_ref(&want), vec![twin], RoleAssignmentMode::Legacy);
        assert!(result.changes.is_empty(), "{:?}", result.changes);
        assert!(
            matches!(&result.unchanged[0].reason, InPlace::GrantedOutside { role, .. } if role == "AcrPull"),
            "{:?}",
            result.unchanged
        );
    }

    #[test]
    fn a_management_group_grant_is_inherited() {
        let want = desired("aks1", "p1", ACR_PULL);
        let mg = "/providers/Microsoft.Management/managementGroups/platform";
        let result =
            run(std::slice::from_ref(&want), vec![live(mg, "x", "p1", ACR_PULL, false)], RoleAssignmentMode::Legacy);
        assert!(result.changes.is_empty(), "{:?}", result.changes);
        assert!(matches!(result.unchanged[0].reason, InPlace::Inherited { .. }), "{:?}", result.unchanged);
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
