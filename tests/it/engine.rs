//! plan / apply / drift / graph end to end: the real binary against the emulator, started
//! in-process so tests can read its ledger, inject faults and change state behind acrlink's
//! back. Managed-identity bindings (issue 5).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use acrlink_emulator::{FaultKind, FaultRule, NewRoleAssignment};

use crate::support::{Emulated, Output, Sandbox, repo_root};

const DEMO_WORLD: &str = "examples/demo/world.toml";
const DEMO_CONFIG: &str = "examples/demo/acrlink.toml";
const CANARY: &str = "CANARY-client-secret-5f1d2c";

type Azure = Emulated;

impl Azure {
    fn demo() -> Azure {
        Azure::start(&demo_world())
    }

    /// A sandbox holding the demo's managed-identity bindings (this file's subject), with the
    /// emulator's environment.
    fn sandbox(&self) -> Sandbox {
        self.sandbox_with(&managed_identity_part(&std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap()))
    }

    /// A sandbox holding the whole demo acrlink.toml.
    fn demo_sandbox(&self) -> Sandbox {
        self.sandbox_with(&std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap())
    }

    /// ARM requests per operation id (the token endpoint excluded).
    fn arm_requests(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for entry in self.emulator().ledger().entries {
            if entry.operation != "Token" {
                *counts.entry(entry.operation.clone()).or_insert(0) += entry.count;
            }
        }
        counts
    }

    fn status_count(&self, operation: &str, status: &str) -> u64 {
        self.emulator()
            .ledger()
            .entries
            .iter()
            .filter(|e| e.operation == operation)
            .map(|e| e.statuses.get(status).copied().unwrap_or(0))
            .sum()
    }

    /// (scope, principal, role GUID) of every assignment, to spot duplicates.
    fn triples(&self) -> Vec<(String, String, String)> {
        let mut triples: Vec<_> = self
            .emulator()
            .state()
            .role_assignments()
            .into_iter()
            .map(|a| {
                (
                    a.scope.to_lowercase(),
                    a.principal_id.to_lowercase(),
                    a.role_definition_id.rsplit('/').next().unwrap_or_default().to_lowercase(),
                )
            })
            .collect();
        triples.sort();
        triples
    }
}

/// The file without its pull-secret bindings (their own tests live in `pullsecret.rs`).
fn managed_identity_part(config: &str) -> String {
    let mut table: toml::Table = config.parse().expect("the demo config is TOML");
    if let Some(toml::Value::Array(bindings)) = table.get_mut("bindings") {
        bindings.retain(|b| b.get("method").and_then(|m| m.as_str()) != Some("pull-secret"));
    }
    toml::to_string(&table).expect("serializes")
}

fn demo_world() -> String {
    std::fs::read_to_string(repo_root().join(DEMO_WORLD)).unwrap().replace("demo-only-not-a-real-secret", CANARY)
}

fn assert_no_duplicates(azure: &Azure) {
    let triples = azure.triples();
    let mut unique = triples.clone();
    unique.dedup();
    assert_eq!(triples, unique, "duplicate role assignments");
}

#[track_caller]
fn assert_clean(output: &Output) {
    output.assert_no_panic();
    assert!(!output.stdout.contains(CANARY) && !output.stderr.contains(CANARY), "the client secret leaked\n{output}");
}

#[test]
fn plan_apply_plan_drift_apply_converges() {
    let azure = Azure::demo();
    let sandbox = azure.sandbox();

    let plan = sandbox.run(["plan", "--detailed-exitcode", "--format", "json"]);
    assert_clean(plan.assert_exit(2));
    let json = plan.json();
    assert_eq!(json["summary"], serde_json::json!({"add": 6, "change": 0, "destroy": 1}), "{plan}");
    assert_eq!(json["format_version"], 2);

    let apply = sandbox.run(["apply", "--auto-approve"]);
    assert_clean(apply.assert_exit(0));
    assert!(apply.stdout.contains("6 added, 0 changed, 1 destroyed"), "{apply}");
    assert_no_duplicates(&azure);

    azure.emulator().reset_ledger();
    let again = sandbox.run(["plan", "--detailed-exitcode"]);
    assert_clean(again.assert_exit(0));
    assert!(again.stdout.contains("No changes."), "{again}");
    assert!(!azure.arm_requests().contains_key("RoleAssignments_Create"), "a plan never writes");

    // Behind acrlink's back: someone deletes one of its grants.
    let victim = azure
        .emulator()
        .state()
        .role_assignments()
        .into_iter()
        .find(|a| a.description.as_deref().is_some_and(|d| d.contains("aks-stg-01")))
        .expect("acrlink's grant for aks-stg-01");
    azure.emulator().state().delete_role_assignment(&victim.id).unwrap();

    let drift = sandbox.run(["drift", "--format", "json"]);
    assert_clean(drift.assert_exit(2));
    let report = drift.json();
    assert_eq!(report["drift"], true);
    assert_eq!(report["missing"][0]["address"], "role_assignment[aks-stg-01/contosoacr]", "{drift}");

    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert_clean(sandbox.run(["drift"]).assert_exit(0));
    // The grant made by hand with --attach-acr was never touched.
    assert!(
        azure.emulator().state().role_assignments().iter().any(|a| a.name == "9a1d3f5e-0000-4000-8000-00000000a11a")
    );
}

#[test]
fn text_json_and_markdown_plans_match_the_goldens() {
    let azure = Azure::demo();
    let sandbox = azure.demo_sandbox();
    // Kubernetes uids are random per object, as on a real server.
    let uids = regex::Regex::new(r#""uid": "[0-9a-f-]{36}""#).unwrap();
    for (format, golden) in [("text", "demo-plan.txt"), ("json", "demo-plan.json"), ("markdown", "demo-plan.md")] {
        let output = sandbox.run(["--color", "never", "plan", "--format", format]);
        assert_clean(output.assert_exit(0));
        let stdout = uids.replace_all(&output.stdout, r#""uid": "<uid>""#);
        let path = repo_root().join("tests/golden").join(golden);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, stdout.as_bytes()).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(stdout, expected, "{golden} changed; review and rerun with UPDATE_GOLDEN=1");
    }
}

#[test]
fn plan_json_validates_against_the_committed_plan_schema() {
    let azure = Azure::demo();
    let output = azure.sandbox().run(["plan", "--format", "json"]);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("schemas/plan.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let plan = output.json();
    let errors: Vec<String> = validator.iter_errors(&plan).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // Every change but a namespace's carries what it leaves, and every delete what it removes.
    for change in plan["changes"].as_array().unwrap() {
        let (before, after) = (change.get("before").is_some(), change.get("after").is_some());
        let expected = match change["action"].as_str().unwrap() {
            _ if change["resource"]["kind"] == "namespace" => (false, false),
            "create" => (false, true),
            "delete" => (true, false),
            _ => (true, true),
        };
        assert_eq!((before, after), expected, "{change}");
    }
    let committed = std::fs::read_to_string(repo_root().join("schemas/plan.schema.json")).unwrap();
    let printed = crate::support::acrlink(["schema", "plan"]);
    assert_eq!(
        printed.stdout.trim_end(),
        committed.trim_end(),
        "run `cargo run -- schema plan > schemas/plan.schema.json`"
    );
}

/// Validates `document` against the committed schemas/KIND.schema.json, and checks that file is
/// what `acrlink schema KIND` prints now.
fn assert_follows_committed_schema(kind: &str, document: &serde_json::Value) {
    let committed = std::fs::read_to_string(repo_root().join(format!("schemas/{kind}.schema.json")))
        .unwrap_or_else(|e| panic!("schemas/{kind}.schema.json: {e}"));
    let printed = crate::support::acrlink(["schema", kind]);
    assert_eq!(
        printed.stdout.trim_end(),
        committed.trim_end(),
        "run `cargo run -- schema {kind} > schemas/{kind}.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(document).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{kind}: {errors:?}\n{document:#}");
}

/// Every JSON output a pipeline parses has a generated, committed, freshness-tested schema:
/// drift (with drift and without), apply (changes made, nothing to do, a plan with errors:
/// still JSON on stdout), validate (valid, invalid, unreadable file: still JSON).
#[test]
fn apply_drift_and_validate_json_follow_their_committed_schemas() {
    let azure = Azure::demo();
    let sandbox = azure.sandbox();
    let drift = sandbox.run(["drift", "--format", "json"]);
    drift.assert_exit(2);
    assert_follows_committed_schema("drift", &drift.json());
    let applied = sandbox.run(["apply", "--auto-approve", "--format", "json"]);
    assert_clean(applied.assert_exit(0));
    assert!(applied.json()["succeeded"].as_u64().unwrap() > 0, "{applied}");
    assert_follows_committed_schema("apply", &applied.json());
    let nothing = sandbox.run(["apply", "--auto-approve", "--format", "json"]);
    assert_follows_committed_schema("apply", &nothing.assert_exit(0).json());
    assert_follows_committed_schema("drift", &sandbox.run(["drift", "--format", "json"]).assert_exit(0).json());

    let demo = std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap();
    let broken = azure.sandbox_with(
        &managed_identity_part(&demo).replace("resource_group = \"dev-rg\"", "resource_group = \"gone-rg\""),
    );
    let refused = broken.run(["apply", "--auto-approve", "--format", "json"]);
    refused.assert_exit(1);
    let refused = refused.json();
    assert!(!refused["errors"].as_array().unwrap().is_empty(), "{refused:#}");
    assert_follows_committed_schema("apply", &refused);

    let valid = sandbox.run(["validate", "--format", "json"]);
    assert_follows_committed_schema("validate", &valid.assert_exit(0).json());
    let invalid = Sandbox::new();
    invalid.write("acrlink.toml", "version = 1\n[[bindings]]\nclusters = []\n");
    assert_follows_committed_schema("validate", &invalid.run(["validate", "--format", "json"]).assert_exit(1).json());
    let missing = Sandbox::new().run(["validate", "--format", "json", "nothing-here.toml"]);
    missing.assert_exit(1);
    let missing = missing.json();
    assert_eq!(missing["valid"], false);
    assert!(missing["error"]["message"].as_str().unwrap().contains("nothing-here.toml"), "{missing:#}");
    assert_follows_committed_schema("validate", &missing);
}

/// A world of `clusters` clusters and 2 registries; a file binding every cluster to both.
fn fleet(clusters: usize) -> (String, String) {
    let world = acrlink_emulator::generate_world(&format!("clusters={clusters},registries=2,subscriptions=1")).unwrap();
    let parsed: toml::Value = toml::from_str(&world).unwrap();
    let subscription = parsed["subscriptions"][0]["id"].as_str().unwrap().to_string();
    let mut config = format!("version = 1\n[azure]\nsubscription_id = \"{subscription}\"\n");
    for registry in parsed["registries"].as_array().unwrap() {
        config.push_str(&format!(
            "[registries.{}]\nresource_group = \"{}\"\n",
            registry["name"].as_str().unwrap(),
            registry["resource_group"].as_str().unwrap()
        ));
    }
    config.push_str("[[cluster_sets]]\nname = \"all\"\n\n[[bindings]]\nclusters = [\"*\"]\nregistries = [\"*\"]\n");
    (world, config)
}

#[test]
fn plan_requests_grow_with_registries_not_clusters() {
    let mut totals = Vec::new();
    for clusters in [1, 10, 100] {
        let (world, config) = fleet(clusters);
        let azure = Azure::start(&world);
        let page_size = azure.emulator().state().settings().page_size as u64;
        let output = azure.sandbox_with(&config).run(["plan", "--detailed-exitcode"]);
        assert_clean(output.assert_exit(2));
        let requests = azure.arm_requests();
        let cluster_pages = requests.get("ManagedClusters_List").copied().unwrap_or(0);
        assert_eq!(cluster_pages, (clusters as u64).div_ceil(page_size).max(1), "{requests:?}");
        assert_eq!(
            requests.get("RoleAssignments_ListForScope").copied().unwrap_or(0),
            2,
            "one list per registry: {requests:?}"
        );
        let total: u64 = requests.values().sum();
        eprintln!("plan of {clusters} clusters x 2 registries: {total} ARM requests {requests:?}");
        totals.push((clusters as u64, total, cluster_pages));
    }
    // Beyond the pages of the cluster list, the count is the same for 1 and 100 clusters.
    let fixed: Vec<u64> = totals.iter().map(|(_, total, pages)| total - pages).collect();
    assert!(fixed.windows(2).all(|w| w[0] == w[1]), "{totals:?}");
}

#[test]
fn throttling_storms_server_errors_and_dropped_connections_are_ridden_out() {
    let azure = Azure::demo();
    let emulator = azure.emulator();
    let rule = |route: &str, kind: FaultKind, count: u32| FaultRule {
        route: route.into(),
        method: None,
        kind,
        count,
        status: if kind == FaultKind::ServerError { Some(503) } else { None },
        retry_after_seconds: if kind == FaultKind::Throttle { Some(1) } else { None },
    };
    emulator.add_fault(rule("RoleAssignments_Create", FaultKind::Throttle, 6));
    emulator.add_fault(rule("RoleAssignments_ListForScope", FaultKind::ServerError, 2));
    emulator.add_fault(rule("ManagedClusters_Get", FaultKind::Drop, 2));
    let started = Instant::now();
    let output = azure.sandbox().run(["apply", "--auto-approve", "-v"]);
    assert_clean(output.assert_exit(0));
    assert_eq!(azure.status_count("RoleAssignments_Create", "429"), 6, "{output}");
    assert_eq!(azure.status_count("RoleAssignments_ListForScope", "503"), 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    assert_clean(azure.sandbox().run(["plan", "--detailed-exitcode"]).assert_exit(0));
    assert_no_duplicates(&azure);
}

/// Nothing listens where ARM should be: a refused connection is not a throttled or busy
/// server, so acrlink gives up within seconds (not the retry budget) and says so once, naming
/// the endpoint, instead of once per read.
#[test]
fn an_unreachable_arm_endpoint_fails_within_seconds_with_one_error_naming_it() {
    let azure = Azure::demo();
    let sandbox =
        azure.sandbox().env("ACRLINK_RETRY_BUDGET_SECONDS", "60").env("ACRLINK_ARM_ENDPOINT", "https://127.0.0.1:1");
    let started = Instant::now();
    let output = sandbox.run(["plan", "--color", "never"]);
    assert_clean(output.assert_exit(1));
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}\n{output}", started.elapsed());
    let errors: Vec<&str> = output.stdout.lines().filter(|l| l.trim_start().starts_with('✗')).collect();
    assert_eq!(errors.len(), 1, "one error, not one per read:\n{output}");
    assert!(errors[0].contains("cannot reach") && errors[0].contains("https://127.0.0.1:1"), "{output}");
    assert!(errors[0].contains("Connection refused"), "{output}");
    assert!(!output.stdout.contains("Plan:"), "{output}");
}

#[test]
fn a_throttling_storm_longer_than_the_budget_fails_cleanly() {
    let azure = Azure::demo();
    azure.emulator().add_fault(FaultRule {
        route: "RoleAssignments_ListForScope".into(),
        method: None,
        kind: FaultKind::Throttle,
        count: 1000,
        status: None,
        retry_after_seconds: Some(1),
    });
    let output = azure.sandbox().env("ACRLINK_RETRY_BUDGET_SECONDS", "2").run(["plan"]);
    assert_clean(output.assert_exit(1));
    assert!(output.stdout.contains("gave up after"), "{output}");
}

#[test]
fn a_kubelet_identity_not_yet_replicated_is_granted_thanks_to_principal_type() {
    // Azure's documented cure for PrincipalNotFound is principalType = ServicePrincipal, which
    // acrlink always sends; the emulator answers PrincipalNotFound only without it.
    let world = demo_world().replace(
        "object_id = \"7d0b2e91-0003-4f3a-8c55-000000000003\" }",
        "object_id = \"7d0b2e91-0003-4f3a-8c55-000000000003\", visible_after_seconds = 600 }",
    );
    let azure = Azure::start(&world);
    let output = azure.sandbox().run(["apply", "--auto-approve"]);
    assert_clean(output.assert_exit(0));
    assert_eq!(azure.status_count("RoleAssignments_Create", "400"), 0, "{output}");
}

#[test]
fn missing_permission_stops_only_that_branch_and_names_the_fix() {
    let world = demo_world().replace(
        "{ role = \"Owner\", scope = \"/subscriptions/0cbb9123-6397-4a37-97d1-8efa0a25043b\" }",
        "{ role = \"Reader\", scope = \"/subscriptions/0cbb9123-6397-4a37-97d1-8efa0a25043b\" }",
    );
    let azure = Azure::start(&world);
    let output = azure.sandbox().run(["apply", "--auto-approve"]);
    assert_clean(output.assert_exit(1));
    let all = format!("{}{}", output.stdout, output.stderr);
    assert!(all.contains("Microsoft.Authorization/roleAssignments/write"), "{output}");
    assert!(all.contains("User Access Administrator") && all.contains("paymentsabac"), "{output}");
    assert!(output.stdout.contains("4 added") && output.stdout.contains("2 failed"), "{output}");
}

#[test]
fn a_grant_made_between_plan_and_apply_is_adopted_not_duplicated() {
    let azure = Azure::demo();
    let sandbox = azure.sandbox();
    sandbox.run(["plan", "--out", "plan.json"]).assert_exit(0);
    let registry = "/subscriptions/1d6c45e0-bd9f-4771-bb67-36616452f239/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/contosoacr";
    azure
        .emulator()
        .state()
        .create_role_assignment(NewRoleAssignment {
            name: Some("5b5b5b5b-0000-4000-8000-000000000001".into()),
            scope: registry.into(),
            role: "AcrPull".into(),
            principal_id: "7d0b2e91-0003-4f3a-8c55-000000000003".into(),
            principal_type: Some("ServicePrincipal".into()),
            description: Some("az role assignment create, by a colleague".into()),
        })
        .unwrap();
    let output = sandbox.run(["apply", "plan.json"]);
    assert_clean(output.assert_exit(0));
    assert!(output.stdout.contains("1 adopted"), "{output}");
    assert_eq!(azure.status_count("RoleAssignments_Create", "409"), 1);
    assert_no_duplicates(&azure);
}

#[test]
fn a_stale_saved_plan_is_refused_and_changes_nothing() {
    let azure = Azure::demo();
    let sandbox = azure.sandbox();
    sandbox.run(["plan", "--out", "plan.json"]).assert_exit(0);
    sandbox.run(["apply", "--auto-approve"]).assert_exit(0);
    azure.emulator().reset_ledger();
    let output = sandbox.run(["apply", "plan.json"]);
    assert_clean(output.assert_exit(1));
    assert!(output.stderr.contains("stale"), "{output}");
    let writes: u64 = ["RoleAssignments_Create", "RoleAssignments_Delete"]
        .iter()
        .filter_map(|op| azure.arm_requests().get(*op).copied())
        .sum();
    assert_eq!(writes, 0);
}

#[test]
fn apply_refuses_without_approval_when_stdin_is_not_a_terminal() {
    let azure = Azure::demo();
    let output = azure.sandbox().run(["apply"]);
    assert_clean(output.assert_exit(1));
    assert!(output.stderr.contains("--auto-approve"), "{output}");
    assert!(!azure.arm_requests().contains_key("RoleAssignments_Create"));
}

#[test]
fn a_killed_apply_converges_on_the_next_run() {
    let azure = Azure::demo();
    azure.emulator().set_faults(acrlink_emulator::Faults { latency_ms: 150, ..Default::default() });
    let sandbox = azure.sandbox();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_acrlink"))
        .args(["apply", "--auto-approve", "--parallelism", "1"])
        .current_dir(sandbox.path())
        .envs(azure.emulator().env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some, not all, grants are written.
    let deadline = Instant::now() + Duration::from_secs(30);
    while azure.status_count("RoleAssignments_Create", "201") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let written = azure.status_count("RoleAssignments_Create", "201");
    assert!((1..6).contains(&written), "killed half-way: {written} grants written");
    azure.emulator().set_faults(acrlink_emulator::Faults::default());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(0));
    assert_no_duplicates(&azure);
}

#[test]
fn an_interrupted_apply_finishes_what_is_in_flight_reports_the_rest_and_exits_130() {
    let azure = Azure::demo();
    azure.emulator().set_faults(acrlink_emulator::Faults { latency_ms: 150, ..Default::default() });
    let sandbox = azure.sandbox();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_acrlink"))
        .args(["apply", "--auto-approve", "--parallelism", "1"])
        .current_dir(sandbox.path())
        .envs(azure.emulator().env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while azure.status_count("RoleAssignments_Create", "201") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupt = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupt.success());
    let at_signal = azure.status_count("RoleAssignments_Create", "201");
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    // No new change started after the signal: at most the one in flight finished.
    let written = azure.status_count("RoleAssignments_Create", "201");
    assert!(written <= at_signal + 1 && written < 6, "{written} written, {at_signal} at the signal");
    assert!(stderr.contains("Interrupted"), "{stderr}");
    assert!(stdout.contains("not started"), "the summary says what was not done: {stdout}");
    assert!(stdout.contains("Apply interrupted: 2 added") || stdout.contains("Apply interrupted: 3 added"), "{stdout}");
    assert!(stderr.contains("granted"), "and each change done was reported as it landed: {stderr}");
    azure.emulator().set_faults(acrlink_emulator::Faults::default());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(0));
    assert_no_duplicates(&azure);
}

/// The file's managed-identity bindings under another `owner`.
fn owned_by(owner: &str, config: &str) -> String {
    let mut table: toml::Table = config.parse().expect("TOML");
    table.insert("owner".into(), toml::Value::String(owner.into()));
    toml::to_string(&table).expect("serializes")
}

/// Two files with different owners bind the same pairs and apply at the same moment, five
/// times over. Neither may replace the other's mark unseen (a run that did says so and fails),
/// and when one owner drops every binding the other's grants all stay.
#[test]
fn two_owners_racing_on_the_same_pairs_keep_both_marks_and_lose_no_grant() {
    let base = managed_identity_part(&std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap());
    for round in 0..5 {
        let azure = Azure::demo();
        azure.emulator().set_faults(acrlink_emulator::Faults { latency_ms: 20, jitter_ms: 20, ..Default::default() });
        let platform = azure.sandbox_with(&owned_by("platform", &base));
        let payments = azure.sandbox_with(&owned_by("payments", &base));
        let (first, second) = std::thread::scope(|s| {
            let a = s.spawn(|| platform.run(["apply", "--auto-approve"]));
            let b = s.spawn(|| payments.run(["apply", "--auto-approve"]));
            (a.join().unwrap(), b.join().unwrap())
        });
        for output in [&first, &second] {
            assert_clean(output);
            if output.code != Some(0) {
                // A run whose create landed on the other's says so: it replaced a mark it
                // cannot name. As its hint says, the other file's next apply records itself.
                assert!(output.stdout.contains("same moment") || output.stderr.contains("same moment"), "{output}");
            }
        }
        if first.code != Some(0) || second.code != Some(0) {
            assert_clean(platform.run(["apply", "--auto-approve"]).assert_exit(0));
            assert_clean(payments.run(["apply", "--auto-approve"]).assert_exit(0));
        }
        azure.emulator().set_faults(acrlink_emulator::Faults::default());
        let managed: Vec<String> = azure
            .emulator()
            .state()
            .role_assignments()
            .into_iter()
            .filter_map(|a| a.description)
            // The demo world's own orphan is the default owner's; neither file touches it.
            .filter(|d| d.starts_with("Managed by acrlink for"))
            .collect();
        assert!(!managed.is_empty());
        for description in &managed {
            assert!(
                description.contains("platform") && description.contains("payments"),
                "round {round}: {description}\n{first}\n{second}"
            );
        }
        assert_clean(platform.run(["plan", "--detailed-exitcode"]).assert_exit(0));
        assert_clean(payments.run(["plan", "--detailed-exitcode"]).assert_exit(0));
        // payments drops every binding: nothing platform wants goes.
        let payments_text = owned_by("payments", &base);
        let narrowed = azure.sandbox_with(payments_text.split("[[bindings]]").next().unwrap());
        assert_clean(narrowed.run(["apply", "--auto-approve"]).assert_exit(0));
        assert_clean(platform.run(["plan", "--detailed-exitcode"]).assert_exit(0));
        assert_no_duplicates(&azure);
    }
}

#[test]
fn two_applies_at_once_end_in_the_same_state() {
    let azure = Azure::demo();
    azure.emulator().set_faults(acrlink_emulator::Faults { latency_ms: 20, jitter_ms: 20, ..Default::default() });
    let sandbox = azure.sandbox();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_acrlink"))
            .args(["apply", "--auto-approve"])
            .current_dir(sandbox.path())
            .envs(azure.emulator().env())
            .output()
            .unwrap()
    };
    let (first, second) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(second.status.code(), Some(0), "{}", String::from_utf8_lossy(&second.stderr));
    azure.emulator().set_faults(acrlink_emulator::Faults::default());
    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(0));
    assert_no_duplicates(&azure);
}

#[test]
fn graph_prints_dot_and_sign_in_failures_are_one_clear_error() {
    let azure = Azure::demo();
    let graph = azure.sandbox().run(["graph"]);
    assert_clean(graph.assert_exit(0));
    assert!(graph.stdout.starts_with("digraph acrlink {"), "{graph}");
    assert!(
        graph.stdout.contains("\"cluster[aks-pay-weu]\" -> \"role_assignment[aks-pay-weu/paymentsabac]\""),
        "{graph}"
    );

    let wrong = azure.sandbox().env("AZURE_CLIENT_SECRET", "not-the-secret").run(["plan"]);
    assert_clean(wrong.assert_exit(1));
    assert!(wrong.stderr.contains("cannot sign in to Azure"), "{wrong}");
}

#[test]
fn the_client_secret_never_appears_in_any_output() {
    let azure = Azure::demo();
    let sandbox = azure.sandbox();
    for args in [
        vec!["-vvv", "plan", "--out", "plan.json"],
        vec!["-vvv", "plan", "--format", "json"],
        vec!["-vvv", "plan", "--format", "markdown"],
        vec!["-vvv", "apply", "--auto-approve"],
        vec!["-vvv", "drift", "--format", "json"],
        vec!["-vvv", "graph"],
    ] {
        assert_clean(&sandbox.run(&args));
    }
    let saved = std::fs::read_to_string(sandbox.path().join("plan.json")).unwrap();
    assert!(!saved.contains(CANARY));
    let _: PathBuf = sandbox.path().to_path_buf();
}

#[test]
fn the_demo_runs_end_to_end() {
    let output = crate::support::Sandbox::new().run(["--color", "never", "demo"]);
    assert_clean(output.assert_exit(0));
    assert!(output.stdout.contains("Demo complete."), "{output}");
    assert!(output.stdout.contains("(exit 2: drift)"), "{output}");
    // The first plan shows the hand-made grant its heading talks about.
    assert!(output.stdout.contains("already granted outside acrlink"), "{output}");
    // verify diagnoses the repository outside the ABAC condition, and passes after apply.
    assert!(
        output.stdout.contains("[abac-condition]") && output.stdout.contains("(exit 2: a cluster cannot pull)"),
        "{output}"
    );
    assert!(output.stdout.contains("(exit 0: every cluster can pull)"), "{output}");
}

#[test]
fn a_saved_plan_is_refused_when_the_file_changed_since_it_was_made() {
    let azure = Azure::demo();
    let sandbox = azure.sandbox();
    assert_clean(sandbox.run(["plan", "--out", "plan.json"]).assert_exit(0));
    let config = std::fs::read_to_string(sandbox.path().join("acrlink.toml")).unwrap();
    sandbox.write("acrlink.toml", format!("{config}\n# edited after the plan was made\n"));
    azure.emulator().reset_ledger();
    let refused = sandbox.run(["apply", "plan.json"]);
    assert_clean(refused.assert_exit(1));
    assert!(refused.stderr.contains("differs from the file this plan was made from"), "{refused}");
    assert!(refused.stderr.contains("nothing was changed"), "{refused}");
    assert!(!azure.arm_requests().contains_key("RoleAssignments_Create"), "nothing was written");
}

#[test]
fn logs_are_not_coloured_on_a_stderr_that_is_no_terminal() {
    let azure = Azure::demo();
    let sandbox = azure.sandbox();
    let output = sandbox.run(["-vv", "plan"]);
    assert_clean(output.assert_exit(0));
    assert!(output.stderr.contains("requests"), "the -vv log lines are there: {output}");
    assert!(!output.stderr.contains('\u{1b}'), "no escape codes with --color auto off a terminal: {output:?}");
}

#[test]
fn plan_out_to_a_path_that_cannot_be_written_fails_before_reading_live_state() {
    let azure = Azure::demo();
    let sandbox = azure.sandbox();
    azure.emulator().reset_ledger();
    let output = sandbox.run(["plan", "--out", "no/such/dir/plan.json"]);
    assert_clean(output.assert_exit(1));
    assert!(output.stderr.contains("no/such/dir/plan.json"), "{output}");
    assert!(azure.arm_requests().is_empty(), "nothing was read: {:?}", azure.arm_requests());
}

/// Issue 12, item 4: changing a binding's repositories shows the old condition and the new,
/// one repository test per line, in every format; the JSON plan carries both.
#[test]
fn changing_repositories_shows_the_old_and_new_condition_in_every_format() {
    let azure = Azure::demo();
    assert_clean(azure.sandbox().run(["apply", "--auto-approve"]).assert_exit(0));
    let config = managed_identity_part(&std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap());
    assert!(config.contains("repositories = [\"payments/*\"]"), "the demo's ABAC binding moved");
    let sandbox =
        azure.sandbox_with(&config.replace("repositories = [\"payments/*\"]", "repositories = [\"billing/*\"]"));
    let old = "StringStartsWithIgnoreCase 'payments/'";
    let new = "StringStartsWithIgnoreCase 'billing/'";

    let text = sandbox.run(["--color", "never", "plan"]);
    assert_clean(text.assert_exit(0));
    assert!(text.stdout.contains("condition:"), "{text}");
    let line = |sign: &str, test: &str| {
        text.stdout.lines().any(|l| l.trim_start().starts_with(sign) && l.trim_end().ends_with(test))
    };
    assert!(line("- ", old) && line("+ ", new), "one repository test per line, old and new:\n{text}");

    let markdown = sandbox.run(["plan", "--format", "markdown"]);
    assert_clean(markdown.assert_exit(0));
    assert!(markdown.stdout.contains("```diff"), "{markdown}");
    let diff_line = |sign: char, test: &str| markdown.stdout.lines().any(|l| l.starts_with(sign) && l.ends_with(test));
    assert!(diff_line('-', old) && diff_line('+', new), "{markdown}");

    let json = sandbox.run(["plan", "--format", "json"]);
    assert_clean(json.assert_exit(0));
    let plan = json.json();
    let updates: Vec<&serde_json::Value> =
        plan["changes"].as_array().unwrap().iter().filter(|c| c["action"] == "update").collect();
    assert_eq!(updates.len(), 2, "both payments clusters: {json}");
    for update in updates {
        let (before, after) = (&update["before"], &update["after"]);
        assert_eq!(before["kind"], "role_assignment", "{json}");
        assert!(before["condition"].as_str().unwrap().contains("'payments/'"), "{json}");
        assert!(after["condition"].as_str().unwrap().contains("'billing/'"), "{json}");
        assert!(!after["condition"].as_str().unwrap().contains("'payments/'"), "{json}");
    }

    let drift = sandbox.run(["--color", "never", "drift"]);
    assert_clean(drift.assert_exit(2));
    assert!(drift.stdout.contains(old) && drift.stdout.contains(new), "{drift}");
}

/// Issue 12, item 5: a one-change plan on a 300-cluster fleet is a handful of lines, with the
/// rest counted; `--show-unchanged` lists them on plan, drift and the plan apply prints; the
/// Markdown of a fresh plan for the whole fleet stays under GitHub's comment limit.
#[test]
fn unchanged_resources_are_counted_not_listed_and_markdown_fits_a_comment_on_300_clusters() {
    let (world, config) = fleet(300);
    let azure = Azure::start(&world);
    let sandbox = azure.sandbox_with(&config);
    let adds = sandbox.run(["plan", "--format", "json"]).json()["summary"]["add"].as_u64().unwrap();
    assert!(adds > 500, "{adds}");
    let fresh = sandbox.run(["plan", "--format", "markdown"]);
    assert_clean(fresh.assert_exit(0));
    assert!(fresh.stdout.chars().count() < 65_536, "{} characters", fresh.stdout.chars().count());
    assert!(fresh.stdout.contains(&format!("**Plan: {adds} to add, 0 to change, 0 to destroy.**")), "{}", fresh.stdout);
    assert!(fresh.stdout.contains(&format!("<details><summary>{adds} changes</summary>")), "the details are folded");
    assert!(fresh.stdout.contains("left out to keep the comment under 65536 characters"), "truncated with a count");
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));

    let victim = azure
        .emulator()
        .state()
        .role_assignments()
        .into_iter()
        .find(|a| a.description.as_deref().is_some_and(|d| d.starts_with("Managed by acrlink")))
        .expect("a grant acrlink made");
    azure.emulator().state().delete_role_assignment(&victim.id).unwrap();
    let json = sandbox.run(["plan", "--format", "json"]).json();
    assert_eq!(json["changes"].as_array().unwrap().len(), 1, "{json}");
    let unchanged = json["unchanged"].as_array().unwrap().len();
    assert!(unchanged > 500, "{unchanged}");
    let counted = format!("… and {unchanged} unchanged");
    let plan = sandbox.run(["--color", "never", "plan"]);
    assert_clean(plan.assert_exit(0));
    assert!(plan.stdout.contains(&counted), "{plan}");
    assert!(plan.stdout.lines().count() < 15, "{plan}");
    let listed = sandbox.run(["--color", "never", "plan", "--show-unchanged"]);
    assert_eq!(listed.stdout.lines().filter(|l| l.trim_start().starts_with("= ")).count(), unchanged, "{listed}");
    let markdown = sandbox.run(["plan", "--format", "markdown"]);
    assert!(markdown.stdout.contains(&counted) && markdown.stdout.lines().count() < 40, "{markdown}");
    assert_clean(sandbox.run(["plan", "--out", "saved.json"]).assert_exit(0));
    let shown = sandbox.run(["--color", "never", "show", "saved.json"]);
    assert!(shown.stdout.contains(&counted), "{shown}");
    let shown = sandbox.run(["--color", "never", "show", "saved.json", "--show-unchanged"]);
    assert!(shown.stdout.contains(&format!("{unchanged} already in place:")), "{shown}");

    let drift = sandbox.run(["--color", "never", "drift"]);
    assert_clean(drift.assert_exit(2));
    assert!(drift.stdout.contains(&counted) && drift.stdout.lines().count() < 15, "{drift}");
    let drift = sandbox.run(["--color", "never", "drift", "--show-unchanged"]);
    assert!(drift.stdout.contains(&format!("{unchanged} already in place:")), "{drift}");

    let apply = sandbox.run(["--color", "never", "apply", "--auto-approve", "--show-unchanged"]);
    assert_clean(apply.assert_exit(0));
    assert!(apply.stderr.contains(&format!("{unchanged} already in place:")), "{apply}");
    let again = sandbox.run(["--color", "never", "apply", "--auto-approve"]);
    assert_clean(again.assert_exit(0));
    let all = format!("… and {} unchanged", unchanged + 1);
    assert!(again.stderr.contains(&all) && !again.stderr.contains("= role_assignment"), "{again}");
}
