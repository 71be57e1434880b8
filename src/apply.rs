//! Executes a plan's changes against Azure, concurrently and in dependency order, and reports
//! every outcome. Copes with what Azure really does: RoleAssignmentExists is adopted,
//! PrincipalNotFound is retried within a budget, AuthorizationFailed stops that branch with the
//! permission that is missing. Never reads the config: only the plan.

use std::time::{Duration, Instant};

use serde::Serialize;

use std::collections::BTreeMap;

use crate::config::model::{Owner, SecretReference};
use crate::graph::{ResourceGraph, WalkResult};
use crate::model::Address;
use crate::plan::{Action, Change, Plan, Resource};
use crate::provider::kubernetes::Kubernetes;
use crate::provider::{Azure, AzureError, LiveRoleAssignment, RoleAssignmentSpec, normalize_id, role_guid};
use crate::pullsecret;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// How long to keep retrying PrincipalNotFound (directory replication lag).
    pub principal_wait: Duration,
    /// Where each service principal's client secret is read (from the file, never the plan).
    pub secret_sources: BTreeMap<String, SecretReference>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 10,
            principal_wait: crate::settings::Settings::default().principal_wait,
            secret_sources: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Updated,
    Replaced,
    Deleted,
    /// An identical grant existed under another name; nothing was written.
    Adopted,
    /// Already gone when deleted.
    AlreadyGone,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub address: Address,
    pub action: Action,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub outcomes: Vec<Outcome>,
}

impl ApplyReport {
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.status == Status::Failed).count()
    }
    pub fn skipped(&self) -> usize {
        self.outcomes.iter().filter(|o| o.status == Status::Skipped).count()
    }
    pub fn succeeded(&self) -> usize {
        self.outcomes.len() - self.failed() - self.skipped()
    }
}

fn authorization_hint(action: &str, scope: &str) -> String {
    format!(
        "the identity running acrlink needs {action} at {scope}: grant it Owner, User Access Administrator or Role Based Access Control Administrator there"
    )
}

async fn execute<A: Azure, K: Kubernetes>(
    change: &Change,
    azure: &A,
    kube: &K,
    context: &pullsecret::apply::Context,
    options: &ApplyOptions,
) -> std::result::Result<Outcome, Outcome> {
    let status = match change.action {
        Action::Create => Status::Created,
        Action::Update => Status::Updated,
        Action::Replace => Status::Replaced,
        Action::Delete => Status::Deleted,
    };
    let Resource::RoleAssignment { spec, role_name, cluster, registry } = &change.resource else {
        let outcome = |status, message, hint| Outcome {
            address: change.address.clone(),
            action: change.action,
            status,
            message,
            hint,
        };
        return match pullsecret::apply::execute(change, azure, kube, context).await {
            Ok(message) => Ok(outcome(status, message, None)),
            Err(failed) => Err(outcome(Status::Failed, failed.message, failed.hint)),
        };
    };
    let outcome = |status: Status, message: String, hint: Option<String>| Outcome {
        address: change.address.clone(),
        action: change.action,
        status,
        message,
        hint,
    };
    let failed = |error: AzureError| {
        let hint = match &error {
            AzureError::AuthorizationFailed { action, scope, .. } => Some(authorization_hint(action, scope)),
            AzureError::PrincipalNotFound { .. } => Some(
                "the kubelet identity is not visible in the directory yet; run apply again in a few minutes".into(),
            ),
            AzureError::RetriesExhausted { .. } => {
                Some("Azure kept throttling or failing; run apply again later".into())
            }
            _ => None,
        };
        outcome(Status::Failed, error.to_string(), hint)
    };
    match change.action {
        Action::Create | Action::Update | Action::Replace => {
            let started = Instant::now();
            let mut wait = Duration::from_millis(500);
            loop {
                match azure.create_role_assignment(spec).await {
                    Ok(_) => {
                        let (status, verb) = if change.action == Action::Create {
                            (Status::Created, "granted")
                        } else {
                            (Status::Updated, "updated")
                        };
                        return Ok(outcome(status, format!("{verb} {role_name} to {cluster} on {registry}"), None));
                    }
                    Err(AzureError::RoleAssignmentExists { existing_id }) => {
                        // ARM allows one assignment per (principal, role, scope) whatever its
                        // condition, so the one that exists is adopted only if it grants at
                        // least what the binding asks.
                        return match conflicting_grant(azure, spec, &existing_id).await {
                            Ok(None) => {
                                let existing =
                                    if existing_id.is_empty() { "another name".to_string() } else { existing_id };
                                Ok(outcome(
                                    Status::Adopted,
                                    format!("the same grant already exists as {existing}; adopted"),
                                    None,
                                ))
                            }
                            Ok(Some(existing)) => Err(outcome(
                                Status::Failed,
                                format!(
                                    "{role_name} is already assigned to {cluster} on {registry} as {} with a different repository condition; ARM allows only one such assignment",
                                    existing.name
                                ),
                                Some(format!(
                                    "align the binding's repositories with that assignment, or delete it (az role assignment delete --ids {}) and apply again",
                                    existing.id
                                )),
                            )),
                            Err(error) => Err(failed(error)),
                        };
                    }
                    Err(AzureError::PrincipalNotFound { .. }) if started.elapsed() + wait <= options.principal_wait => {
                        tracing::info!(address = %change.address, wait_ms = wait.as_millis() as u64, "principal not visible yet; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(15));
                    }
                    Err(error) => return Err(failed(error)),
                }
            }
        }
        Action::Delete => {
            let id = change.precondition.arm_id().map_or_else(|| spec.id(), str::to_string);
            match azure.delete_role_assignment(&id).await {
                Ok(()) => {
                    Ok(outcome(Status::Deleted, format!("removed {role_name} from {cluster} on {registry}"), None))
                }
                Err(AzureError::NotFound { .. }) => Ok(outcome(Status::AlreadyGone, "already gone".into(), None)),
                Err(error) => Err(failed(error)),
            }
        }
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

/// Applies every change; `progress` sees each outcome as it lands.
pub async fn apply<A: Azure, K: Kubernetes>(
    plan: &Plan,
    azure: &A,
    kube: &K,
    options: &ApplyOptions,
    progress: &(dyn Fn(&Outcome) + Sync),
) -> ApplyReport {
    let owner = if plan.owner == "default" { Owner::default() } else { Owner::named(&plan.owner) };
    let context = pullsecret::apply::Context::new(owner, options.secret_sources.clone());
    let context = &context;
    let graph = ResourceGraph::from_plan(plan, []);
    let results = graph
        .walk(&plan.changes, options.parallelism, |change| async move {
            let result = execute(change, azure, kube, context, options).await;
            match &result {
                Ok(o) | Err(o) => progress(o),
            }
            result
        })
        .await;
    let outcomes = match results {
        Ok(results) => results
            .into_iter()
            .zip(&plan.changes)
            .map(|(result, change)| match result {
                WalkResult::Succeeded(o) | WalkResult::Failed(o) => o,
                WalkResult::Skipped { because } => {
                    let message = match because {
                        Some(root) => format!("skipped because {root} failed"),
                        None => "skipped because a change it waits for did not finish".to_string(),
                    };
                    let skipped = Outcome {
                        address: change.address.clone(),
                        action: change.action,
                        status: Status::Skipped,
                        message,
                        hint: None,
                    };
                    progress(&skipped);
                    skipped
                }
            })
            .collect(),
        Err(cycle) => plan
            .changes
            .iter()
            .map(|change| Outcome {
                address: change.address.clone(),
                action: change.action,
                status: Status::Skipped,
                message: format!("the plan's dependencies form a cycle through {cycle}"),
                hint: None,
            })
            .collect(),
    };
    ApplyReport { outcomes }
}
