//! Microsoft's az CLI and acrlink on one emulated fleet: what a person does by hand with the
//! guide's `az aks update --attach-acr` is what acrlink's plan sees, and the reverse.
//! az comes from `ACRLINK_AZ_CLI` (CI: the pinned azure-cli's venv), or is installed once into
//! `target/az-venv` by `.ci/install-az-cli`; `ACRLINK_SKIP_AZ_CLI=1` skips on purpose.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Emulated, Sandbox, repo_root};

/// The pinned az, installed if need be; None only when skipped on purpose.
fn az_program() -> Option<PathBuf> {
    if std::env::var("ACRLINK_SKIP_AZ_CLI").is_ok_and(|v| v == "1") {
        return None;
    }
    static PROGRAM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let program = PROGRAM.get_or_init(|| match std::env::var_os("ACRLINK_AZ_CLI") {
        Some(path) => PathBuf::from(path),
        None => {
            let output = Command::new("bash")
                .arg(repo_root().join(".ci/install-az-cli"))
                .arg(repo_root().join("target/az-venv"))
                .output()
                .expect("run .ci/install-az-cli");
            assert!(output.status.success(), "installing az failed: {}", String::from_utf8_lossy(&output.stderr));
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
    });
    Some(program.clone())
}

/// az with its own configuration directory, signed in to the emulator as the deployer.
struct Az {
    program: PathBuf,
    config_dir: tempfile::TempDir,
    env: std::collections::BTreeMap<String, String>,
}

impl Az {
    fn signed_in(fleet: &Emulated, subscription: &str) -> Option<Az> {
        let az = Az { program: az_program()?, config_dir: tempfile::tempdir().unwrap(), env: fleet.emulator().env() };
        let arm = format!("{}/", az.env["ACRLINK_ARM_ENDPOINT"]);
        az.ok(&["cloud", "register", "--name", "AcrlinkEmulator", "--endpoint-resource-manager", &arm]);
        az.ok(&["cloud", "set", "--name", "AcrlinkEmulator"]);
        az.ok(&["config", "set", "core.instance_discovery=false"]);
        let (client, secret, tenant) = (
            az.env["AZURE_CLIENT_ID"].clone(),
            az.env["AZURE_CLIENT_SECRET"].clone(),
            az.env["AZURE_TENANT_ID"].clone(),
        );
        az.ok(&["login", "--service-principal", "-u", &client, "-p", &secret, "--tenant", &tenant, "--output", "none"]);
        az.ok(&["account", "set", "--subscription", subscription]);
        Some(az)
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = Command::new(&self.program)
            .args(args)
            .env("AZURE_CONFIG_DIR", self.config_dir.path())
            .env("REQUESTS_CA_BUNDLE", &self.env["REQUESTS_CA_BUNDLE"])
            .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
            .env("AZURE_CORE_NO_COLOR", "true")
            .env_remove("AZURE_CLIENT_ID")
            .env_remove("AZURE_CLIENT_SECRET")
            .output()
            .expect("az runs");
        let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "az {args:?} failed:\n{err}\n{out}");
        out.into_owned()
    }
}

const SUB: &str = "1d6c45e0-bd9f-4771-bb67-36616452f239";

/// The planned action for `address`, if any.
fn planned(sandbox: &Sandbox, address: &str) -> Option<String> {
    let plan = sandbox.run(["plan", "--format", "json"]);
    plan.assert_exit(0).assert_no_panic();
    let changes = plan.json()["changes"].as_array().cloned().unwrap_or_default();
    changes.iter().find(|c| c["address"] == address).map(|c| c["action"].as_str().unwrap_or_default().to_string())
}

#[test]
fn a_grant_made_with_az_attach_acr_is_in_place_for_acrlink_and_a_detach_plans_it_back() {
    let world = std::fs::read_to_string(repo_root().join("examples/demo/world.toml")).unwrap();
    let fleet = Emulated::start(&world);
    let config = format!(
        "version = 1\n[azure]\nsubscription_id = \"{SUB}\"\n[registries.contosoacr]\nresource_group = \"platform-rg\"\n\
         [clusters.aks-stg-01]\nresource_group = \"staging-rg\"\n[[bindings]]\nclusters = [\"aks-stg-01\"]\nregistries = [\"contosoacr\"]\n"
    );
    let sandbox = fleet.sandbox_with(&config);
    let address = "role_assignment[aks-stg-01/contosoacr]";
    assert_eq!(planned(&sandbox, address).as_deref(), Some("create"), "no grant yet");

    let Some(az) = Az::signed_in(&fleet, SUB) else { return };
    az.ok(&["aks", "update", "-n", "aks-stg-01", "-g", "staging-rg", "--attach-acr", "contosoacr", "--output", "none"]);
    assert_eq!(planned(&sandbox, address), None, "the grant az made is in place");
    // Counted among the unchanged by default, listed with --show-unchanged.
    let plan = sandbox.run(["plan", "--show-unchanged"]);
    assert!(plan.stdout.contains("already granted outside acrlink"), "{plan}");

    az.ok(&["aks", "update", "-n", "aks-stg-01", "-g", "staging-rg", "--detach-acr", "contosoacr", "--output", "none"]);
    assert_eq!(planned(&sandbox, address).as_deref(), Some("create"), "planned back after the detach");
}
