//! Runs the stages in order for a command, as one pass over every kind: observe the fleet
//! (clusters, registries, kubelet identities; role assignments per registry) → the binding
//! methods produce the desired resources → observe the objects pull secrets need (batched per
//! cluster and registry) → diff every kind → one plan → one graph. Owns no logic of its own
//! beyond sequencing; every stage is testable alone.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::config::model::Config;
use crate::graph::ResourceGraph;
use crate::kinds::{self, Desired};
use crate::methods::{managed_identity, pull_secret};
use crate::model::{Address, Finding};
use crate::observe::objects::{self, ClusterState, RegistryState};
use crate::observe::{self, Inventory};
use crate::plan::{PLAN_FORMAT_VERSION, Plan};
use crate::provider::kubernetes::{ClusterTarget, Kubernetes};
use crate::provider::{Azure, LiveRoleAssignment};

pub struct PlanRun {
    pub plan: Plan,
    pub graph: ResourceGraph,
    pub inventory: Inventory,
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Problems (errors) and warnings gathered by the stages before diff.
#[derive(Default)]
struct Findings {
    problems: Vec<Finding>,
    warnings: Vec<Finding>,
}

/// The fleet and its role assignments. Role assignments depend only on the registries, so they
/// are read while the (possibly paged, possibly large) cluster lists are still coming in.
async fn fleet<A: Azure>(
    config: &Config,
    azure: &A,
    findings: &mut Findings,
) -> (Inventory, BTreeMap<String, Vec<LiveRoleAssignment>>) {
    let registries_then_assignments = async {
        let (registries, mut problems) = observe::registries(config, azure).await;
        let (live, assignment_problems) = observe::role_assignments(&registries, azure).await;
        problems.extend(assignment_problems);
        (registries, live, problems)
    };
    let ((clusters, problems), (registries, live, registry_problems)) =
        tokio::join!(observe::clusters(config, azure), registries_then_assignments);
    findings.problems.extend(problems);
    findings.problems.extend(registry_problems);
    (Inventory { clusters, registries, problems: Vec::new() }, live)
}

/// What the pull-secret kinds read: Secrets, ServiceAccounts and namespaces per cluster, tokens,
/// scope maps and admin credentials per registry. Nothing is read when no binding needs it.
#[derive(Default)]
struct Objects {
    clusters: BTreeMap<ClusterTarget, ClusterState>,
    registries: BTreeMap<String, RegistryState>,
    /// Registries whose tokens and scope maps were read (pruning happens only there).
    token_registries: BTreeSet<String>,
}

/// What a plan reads of the clusters' and registries' own objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectReads {
    /// Only when the file has pull-secret bindings: a managed-identity fleet needs no
    /// Kubernetes access at all.
    WhenBound,
    /// Always: a removal must find every Secret, entry and token the owner made.
    Always,
}

async fn objects<A: Azure, K: Kubernetes>(
    config: &Config,
    inventory: &Inventory,
    (azure, kube): (&A, &K),
    reads: ObjectReads,
    findings: &mut Findings,
) -> Objects {
    if reads == ObjectReads::WhenBound && !pull_secret::has_bindings(config) {
        return Objects::default();
    }
    let (cluster_queries, registry_queries) = pull_secret::queries(config, inventory);
    let ((clusters, cluster_problems, cluster_warnings), (registries, registry_problems, registry_warnings)) = tokio::join!(
        objects::clusters(kube, &cluster_queries),
        objects::registries(azure, &inventory.registries, &registry_queries)
    );
    findings.problems.extend(cluster_problems.into_iter().chain(registry_problems));
    findings.warnings.extend(cluster_warnings.into_iter().chain(registry_warnings));
    let token_registries = registry_queries
        .iter()
        .filter(|(key, q)| q.tokens && registries.contains_key(*key))
        .map(|(key, _)| key.clone())
        .collect();
    Objects { clusters, registries, token_registries }
}

/// Every binding method's desired resources.
fn desired(
    config: &Config,
    inventory: &Inventory,
    objects: &Objects,
    principals: &BTreeMap<String, String>,
    findings: &mut Findings,
) -> Desired {
    let (mut assignments, problems) = managed_identity::resolve(config, inventory);
    findings.problems.extend(problems);
    let (mut desired, warnings, problems) = pull_secret::desired(config, inventory, &objects.clusters);
    findings.warnings.extend(warnings);
    findings.problems.extend(problems);
    assignments.extend(pull_secret::grants(config, inventory, principals).into_values());
    desired.assignments = assignments;
    desired
}

/// The object ids of the service principals whose bindings do not give one, from Microsoft
/// Graph, once each per run.
async fn principals<A: Azure>(config: &Config, azure: &A, findings: &mut Findings) -> BTreeMap<String, String> {
    let lookups = pull_secret::principals_to_look_up(config).into_iter().map(|client_id| async move {
        let found = azure.service_principal_object_id(&client_id).await;
        (client_id, found)
    });
    let mut ids = BTreeMap::new();
    for (client_id, found) in futures::future::join_all(lookups).await {
        match found {
            Ok(Some(object_id)) => {
                ids.insert(client_id, object_id);
            }
            Ok(None) => findings.problems.push(Finding {
                subject: format!("service principal {client_id}"),
                message: format!("application {client_id} has no service principal in the tenant"),
                hint: Some(format!("create it (az ad sp create --id {client_id}), or check client_id")),
            }),
            Err(error) => findings.problems.push(principal_lookup_failed(&client_id, &error)),
        }
    }
    ids
}

fn principal_lookup_failed(client_id: &str, error: &crate::provider::AzureError) -> Finding {
    let denied = matches!(error, crate::provider::AzureError::Api { status: 403, .. });
    let hint = if denied {
        format!(
            "the identity running acrlink may not read the directory: grant it Microsoft Graph Application.Read.All (or the Directory Readers role), or set principal_object_id on the binding (az ad sp show --id {client_id} --query id)"
        )
    } else {
        format!("or set principal_object_id on the binding (az ad sp show --id {client_id} --query id)")
    };
    Finding {
        subject: format!("service principal {client_id}"),
        message: format!("cannot look up the service principal of application {client_id} in Microsoft Graph: {error}"),
        hint: Some(hint),
    }
}

pub async fn plan<A: Azure, K: Kubernetes>(config: &Config, config_digest: &str, azure: &A, kube: &K) -> PlanRun {
    plan_with(config, config_digest, (azure, kube), ObjectReads::WhenBound).await
}

/// `acrlink destroy`: the plan of a file that keeps its clusters, registries and owner and
/// binds nothing, so every grant, Secret, service-account entry, token and scope map the owner
/// made is pruned, and nothing it did not make is touched.
pub async fn plan_removal<A: Azure, K: Kubernetes>(
    config: &Config,
    config_digest: &str,
    azure: &A,
    kube: &K,
) -> PlanRun {
    let bare = Config { bindings: Vec::new(), ..config.clone() };
    plan_with(&bare, config_digest, (azure, kube), ObjectReads::Always).await
}

async fn plan_with<A: Azure, K: Kubernetes>(
    config: &Config,
    config_digest: &str,
    (azure, kube): (&A, &K),
    reads: ObjectReads,
) -> PlanRun {
    let mut findings = Findings::default();
    let (inventory, assignments) = fleet(config, azure, &mut findings).await;
    let mut lookups = Findings::default();
    let (objects, principals) = futures::join!(
        objects(config, &inventory, (azure, kube), reads, &mut findings),
        principals(config, azure, &mut lookups)
    );
    findings.problems.extend(lookups.problems);
    let desired = desired(config, &inventory, &objects, &principals, &mut findings);
    let (service_principals, problems) = pull_secret::service_principals(config);
    findings.problems.extend(problems);
    let diff = kinds::diff(&kinds::Inputs {
        desired: &desired,
        inventory: &inventory,
        assignments: &assignments,
        clusters: &objects.clusters,
        registries: &objects.registries,
        service_principals: &service_principals,
        token_registries: &objects.token_registries,
        owner: &config.owner,
        now: time::OffsetDateTime::now_utc(),
    });
    let mut warnings = diff.warnings;
    warnings.extend(findings.warnings);
    let mut plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        acrlink_version: env!("CARGO_PKG_VERSION").to_string(),
        config_path: config.path.display().to_string(),
        config_digest: config_digest.to_string(),
        owner: config.owner.name().to_string(),
        summary: Plan::summarize(&diff.changes),
        changes: diff.changes,
        unchanged: diff.unchanged,
        warnings,
        errors: Vec::new(),
        blocked: diff.blocked,
    };
    let graph = ResourceGraph::from_plan(&plan, anchors(&inventory));
    if let Err(member) = graph.order() {
        findings.problems.push(Finding {
            subject: member.to_string(),
            message: format!("the resources' dependencies form a cycle through {member}"),
            hint: None,
        });
    }
    plan.errors = errors(findings.problems);
    PlanRun { plan, graph, inventory }
}

/// Problems found while observing or resolving, as plan errors.
fn errors(problems: Vec<Finding>) -> Vec<Finding> {
    let mut findings = problems;
    findings.sort_by(|a, b| (&a.subject, &a.message).cmp(&(&b.subject, &b.message)));
    findings.dedup();
    findings
}

/// Every cluster and registry of the fleet, so `graph` shows them even when they hold nothing.
fn anchors(inventory: &Inventory) -> impl Iterator<Item = Address> + '_ {
    let clusters = inventory.clusters.iter().map(|c| Address::Cluster(c.key.clone()));
    clusters.chain(inventory.registries.keys().map(|r| Address::Registry(r.clone())))
}

#[cfg(test)]
mod pull_secret_tests;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::apply::{ApplyOptions, Status, apply};
    use crate::plan::Action;
    use crate::provider::fake::{FakeAzure, fleet_fixture};
    use crate::provider::fake_kube::FakeKube;
    use crate::provider::{Azure, LiveRoleAssignment};

    const SUB: &str = "1d6c45e0-bd9f-4771-bb67-36616452f239";

    fn config() -> Config {
        parse(&config_text())
    }

    fn parse(text: &str) -> Config {
        let (config, diagnostics) = crate::config::validate_text(text, Path::new("acrlink.toml"));
        config.unwrap_or_else(|| panic!("{diagnostics:?}"))
    }

    fn config_text() -> String {
        format!(
            r#"version = 1
[azure]
subscription_id = "{SUB}"
[registries.sharedacr]
resource_group = "platform-rg"
[registries.abacacr]
resource_group = "platform-rg"
[clusters.aks1]
resource_group = "dev-rg"
labels = {{ team = "a" }}
[clusters.aks2]
resource_group = "dev-rg"
[[bindings]]
name = "shared"
clusters = ["*"]
registries = ["sharedacr"]
[[bindings]]
name = "team-a"
clusters = ["team=a"]
registries = ["abacacr"]
repositories = ["team-a/*"]
"#
        )
    }

    fn registry_id(name: &str) -> String {
        format!(
            "/subscriptions/{SUB}/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/{name}"
        )
    }

    /// aks1 already holds AcrPull on sharedacr (attach-acr by hand); acrlink once granted a
    /// cluster that is gone.
    fn world() -> FakeAzure {
        let azure = fleet_fixture();
        let scope = registry_id("sharedacr");
        let grant = |name: &str, principal: &str, description: Option<&str>| LiveRoleAssignment {
            id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            name: name.into(),
            scope: scope.clone(),
            role_definition_id: format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{}",
                crate::kinds::roles::ACR_PULL
            ),
            principal_id: principal.into(),
            principal_type: Some("ServicePrincipal".into()),
            description: description.map(str::to_string),
            condition: None,
        };
        *azure.assignments.lock().unwrap() = vec![
            grant("11111111-1111-1111-1111-111111111111", "00000000-0000-0000-0000-0000000000a1", None),
            grant(
                "22222222-2222-2222-2222-222222222222",
                "00000000-0000-0000-0000-0000000000ff",
                Some(
                    "Managed by acrlink: binding shared lets cluster /subscriptions/x/resourceGroups/old/providers/Microsoft.ContainerService/managedClusters/gone pull",
                ),
            ),
        ];
        azure
    }

    fn strip(text: &str) -> String {
        anstream::adapter::strip_str(text).to_string()
    }

    fn golden(name: &str, actual: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("missing {}; run with UPDATE_GOLDEN=1", path.display()));
        assert_eq!(actual, expected, "{name} changed; review it and run with UPDATE_GOLDEN=1 to accept");
    }

    #[tokio::test]
    async fn plan_creates_prunes_and_reports_foreign_grants() {
        let azure = world();
        let run = plan(&config(), "sha256:test", &azure, &FakeKube::default()).await;
        let texts: Vec<(String, Action)> = run.plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect();
        let actions: Vec<(&str, Action)> = texts.iter().map(|(a, action)| (a.as_str(), *action)).collect();
        assert_eq!(
            actions,
            vec![
                ("role_assignment[aks1/abacacr]", Action::Create),
                ("role_assignment[aks2/sharedacr]", Action::Create),
                ("role_assignment[principal:00000000-0000-0000-0000-0000000000ff/sharedacr]", Action::Delete),
            ]
        );
        assert_eq!(run.plan.unchanged.len(), 1, "the hand-made grant satisfies aks1/sharedacr");
        assert!(run.plan.errors.is_empty(), "{:?}", run.plan.errors);
        golden("plan.txt", &strip(&crate::render::plan::text(&run.plan)));
        golden("plan.json", &crate::render::plan::json(&run.plan));
        golden("plan.md", &crate::render::plan::markdown(&run.plan));
        golden("drift.txt", &strip(&crate::render::plan::drift_text(&run.plan)));
        golden("graph.dot", &run.graph.to_dot());
    }

    #[tokio::test]
    async fn apply_converges_and_a_second_plan_is_empty() {
        let azure = world();
        let first = plan(&config(), "d", &azure, &FakeKube::default()).await.plan;
        let report = apply(&first, &azure, &FakeKube::default(), &ApplyOptions::default(), &|_| {}).await;
        assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
        let second = plan(&config(), "d", &azure, &FakeKube::default()).await.plan;
        assert!(second.changes.is_empty(), "{:?}", second.changes);
        let foreign = azure.assignments.lock().unwrap().iter().filter(|a| a.description.is_none()).count();
        assert_eq!(foreign, 1, "the grant made by hand is never touched");
    }

    /// Two files with different owners want the same pairs: the second records itself on the
    /// first's grants instead of rewriting them, and when one stops wanting a pair it leaves
    /// the grant to the other instead of deleting it.
    #[tokio::test]
    async fn two_owners_share_a_pair_and_neither_deletes_what_the_other_wants() {
        let azure = world();
        let kube = FakeKube::default();
        let ours = config();
        let theirs_text = config_text().replacen("version = 1", "version = 1\nowner = \"payments\"", 1);
        let theirs = parse(&theirs_text);
        let (azure, kube) = (&azure, &kube);
        let run = |config: Config| async move {
            let plan = plan(&config, "d", azure, kube).await.plan;
            apply(&plan, azure, kube, &ApplyOptions::default(), &|_| {}).await
        };
        assert_eq!(run(ours.clone()).await.failed(), 0);
        let joined = run(theirs.clone()).await;
        let statuses: Vec<Status> = joined.outcomes.iter().map(|o| o.status).collect();
        assert_eq!(statuses, vec![Status::Updated, Status::Updated], "{:?}", joined.outcomes);
        let descriptions = |azure: &FakeAzure| -> Vec<String> {
            let list = azure.assignments.lock().unwrap();
            list.iter().filter_map(|a| a.description.clone()).filter(|d| d.starts_with("Managed")).collect()
        };
        for description in descriptions(azure) {
            assert!(description.starts_with("Managed by acrlink for default, payments:"), "{description}");
        }
        assert!(plan(&ours, "d", azure, kube).await.plan.changes.is_empty());
        assert!(plan(&theirs, "d", azure, kube).await.plan.changes.is_empty());

        // payments drops every binding: the grants stay, now ours alone.
        let narrowed = theirs_text.split("[[bindings]]").next().unwrap().to_string();
        let left = run(parse(&narrowed)).await;
        assert!(left.outcomes.iter().all(|o| o.status == Status::Updated), "{:?}", left.outcomes);
        for description in descriptions(azure) {
            assert!(description.starts_with("Managed by acrlink: binding"), "{description}");
        }
        assert!(plan(&ours, "d", azure, kube).await.plan.changes.is_empty(), "nothing we want was lost");
    }

    /// A registry list that came back unreadable is not a network failure: the host answered.
    #[tokio::test]
    async fn an_unreadable_list_answer_is_not_called_unreachable() {
        let azure = world();
        *azure.list_failure.lock().unwrap() =
            Some(crate::provider::AzureError::Decode("expected value at line 1 column 1".into()));
        let text = config_text()
            .replace("[clusters.aks1]", "[registries.thirdacr]\nresource_group = \"platform-rg\"\n[clusters.aks1]");
        let run = plan(&parse(&text), "d", &azure, &FakeKube::default()).await;
        let messages: Vec<&str> = run.plan.errors.iter().map(|e| e.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("unexpected response from Azure")), "{messages:?}");
        assert!(messages.iter().all(|m| !m.contains("cannot reach")), "{messages:?}");
    }

    #[tokio::test]
    async fn observation_is_batched_per_registry_not_per_pair() {
        let azure = world();
        let _ = plan(&config(), "d", &azure, &FakeKube::default()).await;
        // 2 cluster GETs (fewer than 3 in the subscription), 2 registry GETs, 2 assignment lists.
        assert_eq!(azure.calls.load(std::sync::atomic::Ordering::Relaxed), 6);
    }

    #[tokio::test]
    async fn a_grant_made_between_plan_and_apply_is_adopted() {
        let azure = world();
        let plan = plan(&config(), "d", &azure, &FakeKube::default()).await.plan;
        let crate::plan::Resource::RoleAssignment { spec, .. } = &plan.changes[1].resource else {
            panic!("a role assignment")
        };
        let mut twin = spec.clone();
        twin.name = "33333333-3333-3333-3333-333333333333".into();
        twin.description = "made by hand".into();
        azure.create_role_assignment(&twin).await.unwrap();
        let report = apply(&plan, &azure, &FakeKube::default(), &ApplyOptions::default(), &|_| {}).await;
        assert_eq!(report.outcomes[1].status, Status::Adopted, "{:?}", report.outcomes);
        assert_eq!(report.failed(), 0);
    }

    #[tokio::test]
    async fn a_grant_made_between_plan_and_apply_with_a_narrower_condition_is_not_adopted() {
        let azure = world();
        let plan = plan(&config(), "d", &azure, &FakeKube::default()).await.plan;
        let crate::plan::Resource::RoleAssignment { spec, .. } = &plan.changes[1].resource else {
            panic!("a role assignment")
        };
        let mut twin = spec.clone();
        twin.name = "44444444-4444-4444-4444-444444444444".into();
        twin.description = "made by hand".into();
        twin.condition = Some("only one repository".into());
        azure.create_role_assignment(&twin).await.unwrap();
        let report = apply(&plan, &azure, &FakeKube::default(), &ApplyOptions::default(), &|_| {}).await;
        let outcome = &report.outcomes[1];
        assert_eq!(outcome.status, Status::Failed, "{:?}", report.outcomes);
        assert!(outcome.message.contains("different repository condition"), "{}", outcome.message);
        assert!(outcome.hint.as_deref().unwrap_or_default().contains("44444444"), "{:?}", outcome.hint);
    }

    #[tokio::test]
    async fn apply_adopts_existing_retries_principal_and_explains_403() {
        use crate::provider::AzureError;
        let azure = world();
        let plan = plan(&config(), "d", &azure, &FakeKube::default()).await.plan;
        *azure.create_failures.lock().unwrap() = vec![
            AzureError::PrincipalNotFound { principal_id: "p".into() },
            AzureError::AuthorizationFailed {
                action: "Microsoft.Authorization/roleAssignments/write".into(),
                scope: registry_id("sharedacr"),
                message: "denied".into(),
            },
        ];
        let options = ApplyOptions {
            parallelism: 1,
            principal_wait: std::time::Duration::from_secs(5),
            ..ApplyOptions::default()
        };
        let report = apply(&plan, &azure, &FakeKube::default(), &options, &|_| {}).await;
        let statuses: Vec<Status> = report.outcomes.iter().map(|o| o.status).collect();
        // The first change met PrincipalNotFound, retried, then 403: it fails alone with the hint;
        // the others go on.
        assert_eq!(statuses, vec![Status::Failed, Status::Created, Status::Deleted], "{:?}", report.outcomes);
        assert!(azure.create_failures.lock().unwrap().is_empty(), "PrincipalNotFound was retried");
        let hint = report.outcomes[0].hint.as_deref().unwrap_or_default();
        assert!(
            hint.contains("Microsoft.Authorization/roleAssignments/write")
                && hint.contains("User Access Administrator"),
            "{hint}"
        );
    }
}
