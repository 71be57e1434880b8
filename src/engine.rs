//! Runs the stages in order for a command: observe the fleet → resolve → graph → observe role
//! assignments → diff → plan. Owns no logic of its own beyond sequencing; every stage is
//! testable alone.

use sha2::{Digest, Sha256};

use crate::config::model::Config;
use crate::graph::ResourceGraph;
use crate::observe::{self, Inventory};
use crate::plan::{PLAN_FORMAT_VERSION, Plan};
use crate::provider::Azure;
use crate::{diff, resolve};

pub struct PlanRun {
    pub plan: Plan,
    pub graph: ResourceGraph,
    pub inventory: Inventory,
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

pub async fn plan<A: Azure>(config: &Config, config_digest: &str, azure: &A) -> PlanRun {
    let mut inventory = observe::inventory(config, azure).await;
    let (desired, resolve_problems) = resolve::resolve(config, &inventory);
    let graph = ResourceGraph::build(&desired, &inventory);
    let mut problems = std::mem::take(&mut inventory.problems);
    problems.extend(resolve_problems);
    if let Err(member) = graph.order() {
        problems.push(observe::Problem {
            subject: member.clone(),
            message: format!("the resources' dependencies form a cycle through {member}"),
            hint: None,
        });
    }
    let (live, observe_problems) = observe::role_assignments(&inventory.registries, azure).await;
    problems.extend(observe_problems);
    let mut diff = diff::diff(&desired, &live, &inventory.registries, &inventory.clusters);
    for binding in &config.bindings {
        if matches!(binding.method, crate::config::model::Method::PullSecret(_)) {
            diff.warnings.push(crate::plan::Finding {
                subject: format!("binding {}", binding.name),
                message: "pull-secret bindings are validated but not yet planned by this version of acrlink".into(),
                hint: Some("use method = \"managed-identity\" where the cluster and registry share a tenant".into()),
            });
        }
    }
    let plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        acrlink_version: env!("CARGO_PKG_VERSION").to_string(),
        config_path: config.path.display().to_string(),
        config_digest: config_digest.to_string(),
        summary: Plan::summarize(&diff.changes),
        changes: diff.changes,
        unchanged: diff.unchanged,
        warnings: diff.warnings,
        errors: diff::errors(problems),
    };
    PlanRun { plan, graph, inventory }
}
