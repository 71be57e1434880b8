//! `acrlink verify` (issue 14) against the emulator: one test per cause, each checking the cause
//! and its hint and that the emulator's kubelet, given a real Pod, does what the verdict says;
//! a fleet where everything pulls (exit 0); the report's schema; the secrets canary; and the
//! requests the Azure layer adds to what `plan` reads.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::Value;

use crate::support::{Emulated, Output, Sandbox, repo_root};

const DEMO_WORLD: &str = "examples/demo/world.toml";
const DEMO_CONFIG: &str = "examples/demo/acrlink.toml";
const SUB: &str = "1d6c45e0-bd9f-4771-bb67-36616452f239";
/// Planted as the vendor registry's admin password: must never appear in any output.
const CANARY: &str = "CANARY-verify-admin-7f3e21c9";

/// The demo world with quick kubelets, changed by `edit`.
fn world(edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(repo_root().join(DEMO_WORLD))
        .unwrap()
        .replace("demo-admin-password-1", CANARY)
        .replace(
            "kubelet = { pull_delay_ms = 300, backoff_initial_ms = 1000 }",
            "kubelet = { pull_delay_ms = 100, backoff_initial_ms = 300, backoff_max_ms = 1000 }",
        );
    assert!(text.contains("backoff_max_ms = 1000"), "the demo world's kubelet settings moved");
    edit(text)
}

fn demo_config() -> String {
    std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap()
}

/// Adds `lines` to a registry's entry in the world.
fn registry_with(text: String, registry: &str, lines: &str) -> String {
    let marker = format!("name = \"{registry}\"\n");
    assert!(text.contains(&marker), "{registry} is in the world");
    text.replacen(&marker, &format!("{marker}{lines}\n"), 1)
}

#[track_caller]
fn clean(output: &Output) -> &Output {
    output.assert_no_panic();
    assert!(!output.stdout.contains(CANARY) && !output.stderr.contains(CANARY), "a secret leaked\n{output}");
    output
}

fn verify(sandbox: &Sandbox, extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--format", "json"];
    args.extend_from_slice(extra);
    sandbox.run(args)
}

/// The check of (cluster, registry[/repository][, namespace]).
#[track_caller]
fn check<'a>(report: &'a Value, cluster: &str, registry: &str, repository: Option<&str>) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == cluster && c["registry"] == registry && c["repository"].as_str() == repository)
        .unwrap_or_else(|| panic!("no check of {cluster}/{registry}/{repository:?} in {report:#}"))
}

#[track_caller]
fn assert_cause(check: &Value, cause: &str, hint: &str) {
    assert_eq!(check["verdict"], "fail", "{check:#}");
    assert_eq!(check["cause"], cause, "{check:#}");
    assert!(check["hint"].as_str().is_some_and(|h| h.contains(hint)), "hint should say {hint:?}: {check:#}");
}

/// A Kubernetes client for a cluster (its admin kubeconfig).
fn kube(fleet: &Emulated, cluster: &str) -> kube::Client {
    let text = fleet.emulator().state().kubeconfig(cluster, true).unwrap();
    fleet.runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    })
}

/// What the emulator's kubelet does with a Pod running `image` in `default`: "Running", or
/// "ErrImagePull: " and the message of a failed pull.
fn kubelet(fleet: &Emulated, cluster: &str, name: &str, image: &str) -> String {
    let pods = Api::<Pod>::namespaced(kube(fleet, cluster), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }))
    .unwrap();
    fleet.runtime.block_on(pods.create(&PostParams::default(), &pod)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = fleet.runtime.block_on(pods.get(name)).unwrap().status.unwrap_or_default();
        if status.phase.as_deref() == Some("Running") {
            return "Running".into();
        }
        let waiting = status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .find_map(|c| c.state.and_then(|s| s.waiting))
            // ErrImagePull carries the registry's answer; ImagePullBackOff only says the kubelet
            // waits for its next try, so that try is waited for.
            .filter(|w| w.reason.as_deref() == Some("ErrImagePull"));
        if let Some(waiting) = waiting {
            return format!("{}: {}", waiting.reason.unwrap_or_default(), waiting.message.unwrap_or_default());
        }
        assert!(std::time::Instant::now() < deadline, "pod {name} never settled");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn after_apply_every_cluster_pulls_and_verify_exits_0_in_every_format() {
    let fleet = Emulated::start(&world(|w| w));
    let sandbox = fleet.sandbox_with(&demo_config());
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    std::thread::sleep(std::time::Duration::from_millis(1100)); // the world's propagation delay
    let output = verify(&sandbox, &[]);
    clean(output.assert_exit(0));
    let report = output.json();
    assert_eq!(report["summary"]["fail"], 0, "{report:#}");
    assert_eq!(report["probe"], "registry");
    // One verdict per (cluster, registry, repository[, namespace]): 5 clusters on contosoacr,
    // 2 payments clusters on paymentsabac/payments/*, 2 dev clusters' vendor Secrets, the
    // staging cluster's tools Secret in two namespaces and its partner's Secret.
    assert_eq!(report["checks"].as_array().unwrap().len(), 12, "{report:#}");
    let tools = check(&report, "aks-stg-01", "toolsacr", Some("tools/*"));
    assert_eq!((&tools["layer"], &tools["method"]), (&Value::from("registry"), &Value::from("pull-secret")));
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("schemas/verify.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&report).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let printed = crate::support::acrlink(["schema", "verify"]);
    let committed = std::fs::read_to_string(repo_root().join("schemas/verify.schema.json")).unwrap();
    assert_eq!(
        printed.stdout.trim_end(),
        committed.trim_end(),
        "run `cargo run -- schema verify > schemas/verify.schema.json`"
    );
    // What the kubelets do agrees.
    assert_eq!(kubelet(&fleet, "aks-dev-02", "base", "contosoacr.azurecr.io/base/nginx:1.27"), "Running");
    assert_eq!(kubelet(&fleet, "aks-pay-weu", "api", "paymentsabac.azurecr.io/payments/api:2.4.1"), "Running");
    assert_eq!(kubelet(&fleet, "aks-dev-01", "agent", "vendorimages.azurecr.io/vendor/agent:3.1"), "Running");

    let text = clean(sandbox.run(["verify", "-vvv"]).assert_exit(0)).stdout.clone();
    assert!(text.contains("cluster aks-dev-01\n") && text.contains("12 can pull, 0 cannot"), "{text}");
    let markdown = clean(sandbox.run(["verify", "-vvv", "--format", "markdown"]).assert_exit(0)).stdout.clone();
    assert!(markdown.starts_with("### acrlink verify") && markdown.contains("| `aks-stg-01` |"), "{markdown}");
    clean(sandbox.run(["verify", "-vvv", "--format", "json"]).assert_exit(0));
}

#[test]
fn a_missing_grant_is_rbac_and_clusters_narrows_the_run() {
    let fleet = Emulated::start(&world(|w| w));
    let sandbox = fleet.sandbox_with(&demo_config());
    let output = verify(&sandbox, &["--probe", "azure"]);
    clean(output.assert_exit(2));
    let report = output.json();
    assert_cause(check(&report, "aks-dev-02", "contosoacr", None), "rbac", "acrlink apply");
    assert_cause(check(&report, "aks-pay-weu", "paymentsabac", Some("payments/*")), "rbac", "acrlink apply");
    assert!(
        kubelet(&fleet, "aks-dev-02", "base", "contosoacr.azurecr.io/base/nginx:1.27").ends_with("401 Unauthorized")
    );
    // aks-dev-01 has the grant made by hand (attach-acr), and the Azure layer does not look
    // into its Secrets.
    let narrowed = verify(&sandbox, &["--probe", "azure", "--clusters", "aks-dev-01"]);
    clean(narrowed.assert_exit(0));
    let report = narrowed.json();
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["cluster"] == "aks-dev-01"), "{report:#}");
    assert!(kubelet(&fleet, "aks-dev-01", "base", "contosoacr.azurecr.io/base/nginx:1.27") == "Running");
    // The registry layer does: no Secret was written yet.
    let deeper = verify(&sandbox, &["--clusters", "aks-dev-01"]);
    clean(deeper.assert_exit(2));
    assert_cause(check(&deeper.json(), "aks-dev-01", "vendorimages", None), "credential", "acrlink apply");
}

#[test]
fn a_repository_outside_the_abac_condition_fails_until_apply_widens_it() {
    let fleet = Emulated::start(&world(|w| w));
    let sandbox = fleet.sandbox_with(&demo_config());
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let wider =
        demo_config().replace("repositories = [\"payments/*\"]", "repositories = [\"payments/*\", \"research/model\"]");
    let sandbox = fleet.sandbox_with(&wider);
    let output = verify(&sandbox, &["--clusters", "team=payments"]);
    clean(output.assert_exit(2));
    let report = output.json();
    assert_eq!(check(&report, "aks-pay-weu", "paymentsabac", Some("payments/*"))["verdict"], "ok");
    assert_cause(
        check(&report, "aks-pay-weu", "paymentsabac", Some("research/model")),
        "abac-condition",
        "add it to `repositories` of binding \"payments-images\"",
    );
    let refused = kubelet(&fleet, "aks-pay-weu", "model", "paymentsabac.azurecr.io/research/model:0.1");
    assert!(refused.ends_with("401 Unauthorized"), "{refused}");
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    clean(verify(&sandbox, &["--clusters", "team=payments"]).assert_exit(0));
    assert_eq!(kubelet(&fleet, "aks-pay-weu", "model2", "paymentsabac.azurecr.io/research/model:0.1"), "Running");
}

#[test]
fn registry_policies_refusing_arm_tokens_or_the_admin_user_are_named() {
    let fleet = Emulated::start(&world(|w| {
        let w = registry_with(w, "contosoacr", "azure_ad_authentication_as_arm = false");
        w.replace("admin_user_enabled = true\n", "admin_user_enabled = false\n")
    }));
    let sandbox = fleet.sandbox_with(&demo_config());
    let output = verify(&sandbox, &["--probe", "azure", "--clusters", "aks-dev-01"]);
    clean(output.assert_exit(2));
    let report = output.json();
    assert_cause(check(&report, "aks-dev-01", "contosoacr", None), "registry-policy", "authentication-as-arm");
    assert_cause(check(&report, "aks-dev-01", "vendorimages", None), "registry-policy", "--admin-enabled true");
    // aks-dev-01 holds AcrPull (attach-acr), yet its kubelet cannot pull.
    let refused = kubelet(&fleet, "aks-dev-01", "base", "contosoacr.azurecr.io/base/nginx:1.27");
    assert!(refused.ends_with("401 Unauthorized"), "{refused}");
}

#[test]
fn a_closed_network_fails_until_a_private_endpoint_is_approved() {
    let closed = world(|w| {
        registry_with(
            w,
            "contosoacr",
            "public_network_access = false\nprivate_endpoints = [{ name = \"pe-aks\", status = \"Pending\" }]",
        )
    });
    let fleet = Emulated::start(&closed);
    let sandbox = fleet.sandbox_with(&demo_config());
    let output = verify(&sandbox, &["--probe", "azure", "--clusters", "aks-dev-01"]);
    clean(output.assert_exit(2));
    let report = output.json();
    let contoso = check(&report, "aks-dev-01", "contosoacr", None);
    assert_cause(contoso, "network", "private endpoint");
    assert!(contoso["notes"][0].as_str().is_some_and(|n| n.contains("1 not approved")), "{contoso:#}");
    let refused = kubelet(&fleet, "aks-dev-01", "base", "contosoacr.azurecr.io/base/nginx:1.27");
    assert!(refused.ends_with("403 Forbidden"), "{refused}");
    drop(fleet);

    let fleet = Emulated::start(&closed.replace("status = \"Pending\"", "status = \"Approved\""));
    let sandbox = fleet.sandbox_with(&demo_config());
    let output = verify(&sandbox, &["--probe", "azure", "--clusters", "aks-dev-01"]);
    clean(output.assert_exit(0));
    let report = output.json();
    let note = check(&report, "aks-dev-01", "contosoacr", None)["notes"][0].as_str().unwrap_or_default().to_string();
    assert!(note.contains("privateEndpoints/pe-aks") && note.contains("only by --probe pod"), "{note}");
    assert_eq!(kubelet(&fleet, "aks-dev-01", "base", "contosoacr.azurecr.io/base/nginx:1.27"), "Running");
}

#[test]
fn a_kubelet_identity_swapped_since_the_last_apply_is_named() {
    let cluster = format!(
        "/subscriptions/{SUB}/resourceGroups/dev-rg/providers/Microsoft.ContainerService/managedClusters/aks-dev-02"
    );
    let fleet = Emulated::start(&world(|w| {
        format!(
            "{w}\n[[role_assignments]]\nscope = \"/subscriptions/{SUB}/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/contosoacr\"\nrole = \"AcrPull\"\nprincipal = \"7d0b2e91-0002-4f3a-8c55-0000000000ff\"\ndescription = \"Managed by acrlink: binding shared-images lets cluster {cluster} pull\"\n"
        )
    }));
    let sandbox = fleet.sandbox_with(&demo_config());
    let output = verify(&sandbox, &["--probe", "azure", "--clusters", "aks-dev-02"]);
    clean(output.assert_exit(2));
    let contoso = output.json();
    let contoso = check(&contoso, "aks-dev-02", "contosoacr", None);
    assert_cause(contoso, "identity", "acrlink apply");
    let message = contoso["message"].as_str().unwrap();
    assert!(
        message.contains("7d0b2e91-0002-4f3a-8c55-0000000000ff")
            && message.contains("7d0b2e91-0002-4f3a-8c55-000000000002"),
        "{message}"
    );
    assert!(
        kubelet(&fleet, "aks-dev-02", "base", "contosoacr.azurecr.io/base/nginx:1.27").ends_with("401 Unauthorized")
    );
}

#[test]
fn a_rotated_password_in_a_pull_secret_is_a_dead_credential() {
    let fleet = Emulated::start(&world(|w| w));
    let sandbox = fleet.sandbox_with(&demo_config());
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    // Both admin passwords rotated behind acrlink's back.
    fleet.emulator().state().regenerate_registry_password("vendorimages", "password").unwrap();
    fleet.emulator().state().regenerate_registry_password("vendorimages", "password2").unwrap();
    let output = verify(&sandbox, &["--clusters", "env=dev"]);
    clean(output.assert_exit(2));
    let report = output.json();
    let vendor = check(&report, "aks-dev-01", "vendorimages", None);
    assert_cause(vendor, "credential", "acrlink apply");
    assert_eq!((&vendor["layer"], &vendor["namespace"]), (&Value::from("registry"), &Value::from("default")));
    let refused = kubelet(&fleet, "aks-dev-01", "agent", "vendorimages.azurecr.io/vendor/agent:3.1");
    assert!(refused.starts_with("ErrImagePull") || refused.starts_with("ImagePullBackOff"), "{refused}");
}

#[test]
fn a_cluster_that_cannot_be_read_is_unreachable() {
    let fleet = Emulated::start(&world(|w| w));
    let config = demo_config().replace(
        "[clusters.aks-dev-01]\nresource_group = \"dev-rg\"\n",
        "[clusters.aks-dev-01]\nresource_group = \"dev-rg\"\nkube_context = \"gone\"\n",
    );
    let sandbox = fleet.sandbox_with(&config).env("KUBECONFIG", "/nonexistent/kubeconfig");
    let output = verify(&sandbox, &["--clusters", "aks-dev-01"]);
    clean(output.assert_exit(2));
    assert_cause(check(&output.json(), "aks-dev-01", "vendorimages", None), "unreachable", "kubectl auth can-i");
}

/// The Azure layer reads what `plan` reads for managed identities, plus one role definition per
/// distinct role (and no policy read: policies come with the registry).
#[test]
fn the_azure_layer_adds_one_role_definition_read_per_distinct_role() {
    let fleet = Emulated::start(&world(|w| w));
    let sandbox = fleet.sandbox_with(&demo_config());
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let operations = |output: Output| {
        clean(&output);
        let mut counts = std::collections::BTreeMap::new();
        for entry in fleet.emulator().ledger().entries {
            *counts.entry(entry.operation).or_insert(0) += entry.count;
        }
        fleet.emulator().reset_ledger();
        counts
    };
    fleet.emulator().reset_ledger();
    let plan = operations(sandbox.run(["plan"]));
    let verify = operations(sandbox.run(["verify", "--probe", "azure"]));
    let definitions: u64 = verify.iter().filter(|(op, _)| op.starts_with("RoleDefinitions")).map(|(_, n)| n).sum();
    assert_eq!(definitions, 2, "AcrPull and Container Registry Repository Reader, once each: {verify:?}");
    for (operation, count) in &verify {
        if !operation.starts_with("RoleDefinitions") {
            assert!(plan.get(operation).is_some_and(|p| p >= count), "{operation}: {count} > plan's {plan:?}");
        }
    }
}

/// The demo file with a probe image on every registry.
fn probed_config() -> String {
    let mut config = demo_config();
    for (registry, image) in [
        ("contosoacr", "base/nginx:1.27"),
        ("paymentsabac", "payments/api:2.4.1"),
        ("vendorimages", "vendor/agent:3.1"),
        ("toolsacr", "tools/debug:1.0"),
    ] {
        let marker = format!("[registries.{registry}]\n");
        assert!(config.contains(&marker), "{registry} is in the demo file");
        config = config.replacen(&marker, &format!("{marker}verify = {{ image = \"{image}\" }}\n"), 1);
    }
    config
}

/// `acrlink-verify` Pods left in a cluster.
fn probe_pods(fleet: &Emulated, cluster: &str) -> Vec<String> {
    let pods = Api::<Pod>::all(kube(fleet, cluster));
    let params =
        kube::api::ListParams::default().labels("app.kubernetes.io/managed-by=acrlink,acrlink.io/probe=acrlink-verify");
    let list = fleet.runtime.block_on(pods.list(&params)).unwrap();
    list.items.into_iter().filter_map(|p| p.metadata.name).collect()
}

const CLUSTERS: [&str; 5] = ["aks-dev-01", "aks-dev-02", "aks-stg-01", "aks-pay-weu", "aks-pay-neu"];

/// The pod layer: every probe pulled by the kubelet, none left behind, a constant number of
/// Kubernetes requests per probe (create, watch, delete) plus one leftover list per cluster.
#[test]
fn probe_pods_pull_for_real_cost_three_requests_each_and_are_deleted() {
    let fleet = Emulated::start(&world(|w| w));
    let sandbox = fleet.sandbox_with(&probed_config());
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fleet.emulator().reset_ledger();
    let output = verify(&sandbox, &["--probe", "pod", "--timeout", "60s", "-vvv"]);
    clean(output.assert_exit(0));
    let report = output.json();
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 12, "{report:#}");
    assert!(checks.iter().all(|c| c["layer"] == "pod" && c["verdict"] == "ok"), "{report:#}");
    // 11 probes (one per cluster, registry and namespace: staging's kubelet grant and its
    // partner's Secret on contosoacr share the default namespace's probe) and 5 clusters.
    let pod_requests: u64 =
        fleet.emulator().ledger().entries.iter().filter(|e| e.route.contains("pods")).map(|e| e.count).sum();
    assert_eq!(pod_requests, 11 * 3 + 5, "{:#?}", fleet.emulator().ledger().entries);
    for cluster in CLUSTERS {
        assert!(probe_pods(&fleet, cluster).is_empty(), "probe pods left on {cluster}");
    }
}

#[test]
fn a_probe_image_that_does_not_exist_is_image_not_found() {
    let fleet = Emulated::start(&world(|w| w));
    let sandbox = fleet.sandbox_with(&probed_config().replace("base/nginx:1.27", "base/nginx:9.99"));
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let output = verify(&sandbox, &["--probe", "pod", "--clusters", "aks-dev-01"]);
    clean(output.assert_exit(2));
    let report = output.json();
    let contoso = check(&report, "aks-dev-01", "contosoacr", None);
    assert_cause(contoso, "image-not-found", "verify.image of registry contosoacr");
    assert!(contoso["message"].as_str().unwrap().contains("not found"), "{contoso:#}");
    assert_eq!(check(&report, "aks-dev-01", "vendorimages", None)["verdict"], "ok");
}

/// A grant made a moment ago: the kubelet is refused until it propagates. Within --timeout the
/// probe waits for the kubelet's retry and reports the late success; past it, `propagation`.
#[test]
fn a_grant_still_propagating_is_waited_for_within_the_timeout_and_named_past_it() {
    let fleet =
        Emulated::start(&world(|w| w.replace("rbac_propagation_seconds = 1.0", "rbac_propagation_seconds = 10.0")));
    let sandbox = fleet.sandbox_with(&probed_config());
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let output = verify(&sandbox, &["--probe", "pod", "--clusters", "aks-dev-02", "--timeout", "1s"]);
    clean(output.assert_exit(2));
    assert_cause(check(&output.json(), "aks-dev-02", "contosoacr", None), "propagation", "run verify again later");
    let output = verify(&sandbox, &["--probe", "pod", "--clusters", "aks-pay-neu", "--timeout", "30s"]);
    clean(output.assert_exit(0));
    let report = output.json();
    let late = check(&report, "aks-pay-neu", "contosoacr", None);
    assert_eq!(late["verdict"], "ok", "{late:#}");
    assert!(late["notes"][0].as_str().is_some_and(|n| n.contains("not yet propagated")), "{late:#}");
}

/// A run stopped mid-probe (SIGINT, SIGTERM) deletes its probe pods and exits 130; one killed
/// outright leaves them, and the next verify deletes them first.
#[test]
fn probe_pods_never_outlive_a_stopped_run() {
    // Kubelets that never get to the pull: every probe stays pending.
    let fleet = Emulated::start(&world(|w| {
        w.replace("pull_delay_ms = 100, backoff_initial_ms = 300", "pull_delay_ms = 600000, backoff_initial_ms = 300")
    }));
    let sandbox = fleet.sandbox_with(&probed_config());
    clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_acrlink"))
            .args(["verify", "--probe", "pod", "--clusters", "aks-dev-01", "--timeout", "5m"])
            .current_dir(sandbox.path())
            .envs(fleet.emulator().env())
            .env("ACRLINK_CACHE_DIR", sandbox.path().join(".cache"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait_for_probes = |count: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while probe_pods(&fleet, "aks-dev-01").len() < count {
            assert!(std::time::Instant::now() < deadline, "the probe pods never appeared");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    for signal in ["-INT", "-TERM"] {
        let child = spawn();
        wait_for_probes(2);
        assert!(std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "{signal}: {stderr}");
        assert!(stderr.contains("Interrupted: deleting the probe pods"), "{stderr}");
        assert!(probe_pods(&fleet, "aks-dev-01").is_empty(), "{signal} left probe pods");
    }
    let mut child = spawn();
    wait_for_probes(2);
    child.kill().unwrap();
    let _ = child.wait();
    let left = probe_pods(&fleet, "aks-dev-01");
    assert_eq!(left.len(), 2, "a killed run cannot clean up");
    // The next run deletes them first (and its own at the end).
    let output = verify(&sandbox, &["--probe", "pod", "--clusters", "aks-dev-01", "--timeout", "1s"]);
    output.assert_no_panic();
    assert!(probe_pods(&fleet, "aks-dev-01").is_empty(), "leftovers {left:?} were not cleaned");
}

#[test]
fn a_blank_probe_image_is_a_file_error() {
    let sandbox = Sandbox::new();
    let config =
        probed_config().replace("verify = { image = \"base/nginx:1.27\" }", "verify = { image = \"base/nginx 1.27\" }");
    sandbox.write("acrlink.toml", config);
    let output = sandbox.run(["validate"]);
    output.assert_exit(1);
    assert!(output.stdout.contains("invalid probe image") || output.stderr.contains("invalid probe image"), "{output}");
}

#[test]
fn a_registry_holding_all_the_tokens_its_sku_allows_is_named_when_a_token_is_missing() {
    // toolsacr made Basic (100 tokens at most) and given 100 tokens of someone else's.
    let others: Vec<String> =
        (0..100).map(|i| format!("{{ name = \"other-{i:03}\", scope_map = \"_repositories_pull\" }}")).collect();
    let full = world(|w| {
        let marker = "name = \"toolsacr\"\nsku = \"Premium\"\n";
        assert!(w.contains(marker), "toolsacr is a Premium registry of the world");
        w.replacen(marker, &format!("name = \"toolsacr\"\nsku = \"Basic\"\ntokens = [{}]\n", others.join(", ")), 1)
    });
    let fleet = Emulated::start(&full);
    let sandbox = fleet.sandbox_with(&demo_config());
    let output = verify(&sandbox, &["--probe", "azure", "--clusters", "aks-stg-01"]);
    clean(output.assert_exit(2));
    let report = output.json();
    let tools: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cluster"] == "aks-stg-01" && c["registry"] == "toolsacr")
        .collect();
    assert!(!tools.is_empty(), "{report:#}");
    for check in tools {
        assert_cause(check, "registry-policy", "--sku Premium");
        let message = check["message"].as_str().unwrap_or_default();
        assert!(message.contains("holds 100 tokens") && message.contains("Basic"), "{check:#}");
    }
}
