//! Microsoft's az CLI (the version `.ci/run` pins) against the emulator, set up as
//! emulator/README.md tells a user: `az cloud register` from the metadata document, instance
//! discovery off, `REQUESTS_CA_BUNDLE`, a service-principal login. Each command of the guide
//! must end as it does on Azure (exit 0) and leave the same effect in the emulator's state.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::*;
use crate::tools::{self, TempDir};

/// `ACRLINK_AZ_CLI` (CI: the pinned azure-cli's venv); without it, the pinned version installed
/// once into `target/az-venv` by `.ci/install-az-cli` (from PyPI), so `cargo test` alone runs
/// these on a fresh machine. A missing az fails the test unless `ACRLINK_SKIP_AZ_CLI=1`.
fn az_binary() -> Option<PathBuf> {
    static INSTALLED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if std::env::var_os("ACRLINK_AZ_CLI").is_none() && std::env::var("ACRLINK_SKIP_AZ_CLI").is_err() {
        let installed = INSTALLED.get_or_init(install_pinned_az);
        if let Some(path) = installed {
            return tools::require_at("az CLI", path, "ACRLINK_SKIP_AZ_CLI", &["version", "--output", "none"]);
        }
    }
    tools::require("az CLI", "ACRLINK_AZ_CLI", "az", "ACRLINK_SKIP_AZ_CLI", &["version", "--output", "none"])
}

/// Runs `.ci/install-az-cli` (it reuses a venv that already holds the pinned version).
fn install_pinned_az() -> Option<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let output =
        Command::new("bash").arg(root.join(".ci/install-az-cli")).arg(root.join("target/az-venv")).output().ok()?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !path.is_empty()).then_some(path)
}

/// One az configuration directory signed in to one emulator.
struct Az {
    program: PathBuf,
    dir: TempDir,
    ca_file: String,
}

/// What a command printed.
struct Run {
    ok: bool,
    out: String,
    err: String,
}

impl Az {
    /// The README's setup: register the cloud, turn instance discovery off, sign in.
    async fn signed_in(env: &Env) -> Option<Az> {
        let program = az_binary()?;
        let az = Az { program, dir: TempDir::new("acrlink-az"), ca_file: env.emulator.ca_file().display().to_string() };
        let arm = format!("{}/", env.base);
        az.ok(&["cloud", "register", "--name", "AcrlinkEmulator", "--endpoint-resource-manager", &arm]).await;
        az.ok(&["cloud", "set", "--name", "AcrlinkEmulator"]).await;
        az.ok(&["config", "set", "core.instance_discovery=false"]).await;
        az.ok(&[
            "login",
            "--service-principal",
            "--username",
            ACRLINK_CLIENT,
            "--password",
            "s3cret",
            "--tenant",
            TENANT,
            "--output",
            "none",
        ])
        .await;
        az.ok(&["account", "set", "--subscription", PROD]).await;
        Some(az)
    }

    /// Runs az off the async runtime with its own config directory and the emulator's CA.
    async fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .env("AZURE_CONFIG_DIR", &self.dir.0)
            .env("REQUESTS_CA_BUNDLE", &self.ca_file)
            .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
            .env("AZURE_CORE_NO_COLOR", "true")
            .env("AZURE_CORE_SURVEY_MESSAGE", "false")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("AZURE_CLIENT_ID")
            .env_remove("AZURE_CLIENT_SECRET");
        let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("az runs");
        Run {
            ok: output.status.success(),
            out: String::from_utf8_lossy(&output.stdout).trim().to_string(),
            err: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args).await;
        assert!(run.ok, "az {args:?} failed:\n{}\n{}", run.err, run.out);
        run.out
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("az {args:?} printed no JSON ({e}): {out}"))
    }
}

/// The AcrPull assignments of a principal on acrprod, from the emulator's own state.
async fn acr_pull_grants(env: &Env, principal: &str) -> usize {
    let listed = env.admin(reqwest::Method::GET, "/role-assignments", None).await;
    listed
        .body
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|a| a["principal_id"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(principal)))
                .filter(|a| a["scope"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&registry_scope())))
                .filter(|a| a["role_definition_id"].as_str().is_some_and(|r| r.ends_with(ACR_PULL)))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn az_aks_list_show_and_get_credentials() {
    let env = start().await;
    let Some(az) = Az::signed_in(&env).await else { return };
    let clusters = az.json(&["aks", "list"]).await;
    assert_eq!(clusters.as_array().map(Vec::len), Some(3), "prod's clusters: {clusters}");
    let kubelet = az
        .ok(&[
            "aks",
            "show",
            "-g",
            "rg-aks",
            "-n",
            "aks-prod-1",
            "--query",
            "identityProfile.kubeletidentity.objectId",
            "-o",
            "tsv",
        ])
        .await;
    assert_eq!(kubelet, KUBELET_PROD_1);
    let file = az.dir.0.join("kubeconfig");
    let path = file.display().to_string();
    az.ok(&["aks", "get-credentials", "-g", "rg-aks", "-n", "aks-prod-1", "-f", &path]).await;
    let config = std::fs::read_to_string(&file).expect("kubeconfig written");
    assert!(config.contains(&format!("{}/k8s/{PROD}/rg-aks/aks-prod-1", env.base)), "{config}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn az_acr_list_show_credentials_and_update() {
    let env = start().await;
    let Some(az) = Az::signed_in(&env).await else { return };
    let registries = az.json(&["acr", "list"]).await;
    assert_eq!(registries.as_array().map(Vec::len), Some(2), "{registries}");
    let login = az.ok(&["acr", "show", "-n", "acrprod", "--query", "loginServer", "-o", "tsv"]).await;
    assert_eq!(login, "acrprod.azurecr.io");
    let credentials = az.json(&["acr", "credential", "show", "-n", "acrprod"]).await;
    assert_eq!(credentials["username"], "acrprod");
    assert_eq!(credentials["passwords"][0]["value"], "first-password");
    let updated = az.json(&["acr", "update", "-n", "acrabac", "--admin-enabled", "true"]).await;
    assert_eq!(updated["adminUserEnabled"], true);
    let state = env.admin(reqwest::Method::GET, "/registries", None).await;
    let acrabac = state.body.as_array().and_then(|all| all.iter().find(|r| r["name"] == "acrabac")).cloned();
    assert_eq!(acrabac.map(|r| r["admin_user_enabled"].clone()), Some(Value::Bool(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn az_aks_update_attaches_and_detaches_acr() {
    let env = start().await;
    let Some(az) = Az::signed_in(&env).await else { return };
    assert_eq!(acr_pull_grants(&env, KUBELET_PROD_2).await, 0);
    az.ok(&["aks", "update", "-g", "rg-aks", "-n", "aks-prod-2", "--attach-acr", "acrprod", "--output", "none"]).await;
    assert_eq!(acr_pull_grants(&env, KUBELET_PROD_2).await, 1, "--attach-acr granted AcrPull");
    let state =
        az.ok(&["aks", "show", "-g", "rg-aks", "-n", "aks-prod-2", "--query", "provisioningState", "-o", "tsv"]).await;
    assert_eq!(state, "Succeeded", "the cluster PUT finished");
    az.ok(&["aks", "update", "-g", "rg-aks", "-n", "aks-prod-2", "--detach-acr", "acrprod", "--output", "none"]).await;
    assert_eq!(acr_pull_grants(&env, KUBELET_PROD_2).await, 0, "--detach-acr removed it");
    let ledger = env.emulator.ledger();
    assert_eq!(ledger.count("PUT", "ManagedClusters_CreateOrUpdate"), 2, "{ledger:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn az_role_assignment_create_and_list_resolve_through_graph() {
    let env = start().await;
    let Some(az) = Az::signed_in(&env).await else { return };
    let scope = registry_scope();
    let created = az
        .json(&["role", "assignment", "create", "--assignee", KUBELET_PROD_2, "--role", "AcrPull", "--scope", &scope])
        .await;
    assert_eq!(created["principalId"], KUBELET_PROD_2);
    assert_eq!(created["principalType"], "ServicePrincipal");
    assert_eq!(acr_pull_grants(&env, KUBELET_PROD_2).await, 1);
    let listed = az.json(&["role", "assignment", "list", "--scope", &scope]).await;
    let names: Vec<&str> = listed
        .as_array()
        .map(|all| all.iter().filter_map(|a| a["principalName"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"e0000000-0000-0000-0000-000000000002"), "Graph named the kubelet identity: {listed}");
    let ledger = env.emulator.ledger();
    assert!(ledger.count("POST", "DirectoryObjects_GetByIds") >= 1, "{ledger:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn az_acr_token_create_generates_passwords() {
    let env = start().await;
    let Some(az) = Az::signed_in(&env).await else { return };
    let token = az
        .json(&[
            "acr",
            "token",
            "create",
            "-n",
            "ci-pull-2",
            "-r",
            "acrprod",
            "--repository",
            "team-a/app",
            "content/read",
        ])
        .await;
    let passwords = token["credentials"]["passwords"].as_array().map(Vec::len);
    assert_eq!(passwords, Some(2), "{token}");
    assert_eq!(token["provisioningState"], "Succeeded");
}
