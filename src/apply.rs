//! Executes a plan's changes, concurrently and in the order of the plan's graph, handing each to
//! its kind (`crate::kinds`), and reports every outcome; a failed change skips the changes that
//! depend on it. Never reads the config: only the plan.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;

use std::collections::BTreeMap;

use crate::config::model::{Owner, SecretReference};
use crate::graph::{ResourceGraph, WalkResult};
use crate::kinds;
use crate::model::Address;
use crate::plan::{Action, Change, Plan};
use crate::provider::Azure;
use crate::provider::kubernetes::Kubernetes;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// How long to keep retrying PrincipalNotFound (directory replication lag).
    pub principal_wait: Duration,
    /// Where each service principal's client secret is read (from the file, never the plan).
    pub secret_sources: BTreeMap<String, SecretReference>,
    /// Set (by a signal handler) to start no further change; those in flight finish.
    pub stop: Arc<AtomicBool>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 10,
            principal_wait: crate::settings::Settings::default().principal_wait,
            secret_sources: BTreeMap::new(),
            stop: Arc::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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
    /// Not started: the apply was interrupted first.
    NotStarted,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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
    pub fn not_started(&self) -> usize {
        self.outcomes.iter().filter(|o| o.status == Status::NotStarted).count()
    }
    /// Whether a signal stopped the apply before every change started.
    pub fn interrupted(&self) -> bool {
        self.not_started() > 0
    }
    pub fn succeeded(&self) -> usize {
        self.outcomes.len() - self.failed() - self.skipped() - self.not_started()
    }
}

async fn execute<A: Azure, K: Kubernetes>(
    change: &Change,
    azure: &A,
    kube: &K,
    context: &kinds::ApplyContext,
) -> std::result::Result<Outcome, Outcome> {
    let outcome = |status, message, hint| Outcome {
        address: change.address.clone(),
        action: change.action,
        status,
        message,
        hint,
    };
    match kinds::apply(change, azure, kube, context).await {
        Ok(done) => Ok(outcome(done.status, done.message, None)),
        Err(failed) => Err(outcome(Status::Failed, failed.message, failed.hint)),
    }
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
    let context = kinds::ApplyContext::new(owner, options.secret_sources.clone(), options.principal_wait);
    let context = &context;
    let graph = ResourceGraph::from_plan(plan, []);
    let results = graph
        .walk_until(&plan.changes, options.parallelism, &options.stop, |change| async move {
            let result = execute(change, azure, kube, context).await;
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
                WalkResult::NotStarted => Outcome {
                    address: change.address.clone(),
                    action: change.action,
                    status: Status::NotStarted,
                    message: "not started: the apply was interrupted".into(),
                    hint: None,
                },
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
