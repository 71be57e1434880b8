//! Pull-secret benchmark: a 50-cluster × 3-namespace binding (150 Secrets, 150 service-account
//! patches), with the admin credential and with registry tokens (50 tokens, one scope map),
//! planned, applied and re-planned against the emulator with injected latency. Reports wall time, ARM and Kubernetes requests (per cluster for a plan),
//! and the apply's ratio to its lower bound: with `--parallelism 10`, the Kubernetes requests
//! of the apply in rounds of 10 × the latency, after the plan's own chain.
//!
//! Run: `cargo bench --bench pull_secrets` (builds release). Prints a table; asserts only
//! that every step succeeded.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use acrlink_emulator::{Emulator, Faults, World};

const CLUSTERS: usize = 50;
const LATENCY_MS: u64 = 20;

fn fleet(credential: &str) -> (String, String) {
    let generated =
        acrlink_emulator::generate_world(&format!("clusters={CLUSTERS},registries=1,subscriptions=1")).expect("world");
    let mut world: toml::Table = toml::from_str(&generated).expect("generated TOML");
    let registry = world["registries"].as_array_mut().and_then(|r| r.first_mut()).and_then(|r| r.as_table_mut());
    let registry = registry.expect("a registry");
    registry.insert("admin_user_enabled".into(), toml::Value::Boolean(true));
    let (name, group) =
        (registry["name"].as_str().unwrap().to_string(), registry["resource_group"].as_str().unwrap().to_string());
    let subscription = world["subscriptions"][0]["id"].as_str().unwrap_or_default().to_string();
    // ACR's long-running operations (token and scope-map creation, password generation) are
    // polled without waiting, so the figures show acrlink's work, not the emulator's pacing.
    if let Some(settings) = world.entry("settings").or_insert(toml::Value::Table(toml::Table::new())).as_table_mut() {
        let mut lro = toml::Table::new();
        lro.insert("retry_after_seconds".into(), toml::Value::Integer(0));
        settings.insert("lro".into(), toml::Value::Table(lro));
    }
    // Clusters with Azure RBAC for Kubernetes authorize through Azure roles, as on AKS.
    let deployer = world["principals"].as_array_mut().and_then(|p| p.first_mut()).and_then(|p| p.as_table_mut());
    let roles = deployer.expect("a deployer").entry("roles").or_insert(toml::Value::Array(Vec::new()));
    if let Some(roles) = roles.as_array_mut() {
        let mut role = toml::Table::new();
        role.insert("role".into(), "Azure Kubernetes Service RBAC Cluster Admin".into());
        role.insert("scope".into(), format!("/subscriptions/{subscription}").into());
        roles.push(toml::Value::Table(role));
    }
    let config = format!(
        r#"version = 1
[azure]
subscription_id = "{subscription}"
[registries.{name}]
resource_group = "{group}"
[[cluster_sets]]
name = "all"
[[bindings]]
clusters = ["*"]
registries = ["{name}"]
method = "pull-secret"
credential = "{credential}"
namespaces = ["default", "kube-public", "kube-node-lease"]
secret_name = "acr-pull"
service_accounts = ["default"]
"#
    );
    (toml::to_string(&world).expect("TOML"), config)
}

/// (ARM requests, Kubernetes requests, Kubernetes requests of the busiest cluster, 429s).
fn requests(emulator: &Emulator) -> (u64, u64, u64, u64) {
    let (mut arm, mut kube, mut throttled) = (0, 0, 0);
    let mut per_cluster: BTreeMap<String, u64> = BTreeMap::new();
    for entry in emulator.ledger().entries {
        throttled += entry.statuses.get("429").copied().unwrap_or(0);
        let is_kube = entry.cluster.is_some() && !entry.operation.starts_with("ManagedClusters");
        if is_kube {
            kube += entry.count;
            *per_cluster.entry(entry.cluster.clone().unwrap_or_default()).or_default() += entry.count;
        } else if entry.operation != "Token" {
            arm += entry.count;
        }
    }
    (arm, kube, per_cluster.values().copied().max().unwrap_or(0), throttled)
}

fn run(emulator: &Emulator, dir: &std::path::Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_acrlink"))
        .args(args)
        .current_dir(dir)
        .envs(emulator.env())
        .env("ACRLINK_ARM_REQUESTS_PER_SECOND", "1000")
        .output()
        .expect("run acrlink");
    let wall = started.elapsed();
    assert_eq!(
        output.status.code(),
        Some(0),
        "acrlink {args:?} failed\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    wall
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for credential in ["admin", "registry-token"] {
        let (world, config) = fleet(credential);
        let emulator = runtime
            .block_on(Emulator::start(
                World::from_toml_str(&world).expect("world"),
                "127.0.0.1:0".parse().expect("addr"),
            ))
            .expect("emulator");
        emulator.set_faults(Faults { latency_ms: LATENCY_MS, ..Faults::default() });
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("acrlink.toml"), &config).expect("config");

        println!("\n{CLUSTERS} clusters × 3 namespaces, {credential} credential, {LATENCY_MS} ms per request");
        println!(
            "{:>14} | {:>9} | {:>5} | {:>10} | {:>21} | {:>4}",
            "step", "wall", "ARM", "Kubernetes", "busiest cluster (k8s)", "429s"
        );
        let step = |name: &str, args: &[&str]| {
            emulator.reset_ledger();
            let wall = run(&emulator, dir.path(), args);
            let (arm, kube, busiest, throttled) = requests(&emulator);
            println!("{name:>14} | {:>7}ms | {arm:>5} | {kube:>10} | {busiest:>21} | {throttled:>4}", wall.as_millis());
            (wall, arm, kube)
        };
        let (plan_wall, plan_arm, plan_kube) = step("plan", &["plan"]);
        let (apply_wall, apply_arm, apply_kube) = step("apply", &["apply", "--auto-approve"]);
        step("plan again", &["plan"]);
        // The apply first plans (plan_wall); then its own requests run 10 at a time.
        let writes = apply_kube.saturating_sub(plan_kube) + apply_arm.saturating_sub(plan_arm);
        let bound = plan_wall + Duration::from_millis(writes.div_ceil(10) * LATENCY_MS);
        println!(
            "apply lower bound ≈ {} ms (plan + its own requests in rounds of 10); ratio {:.2}",
            bound.as_millis(),
            apply_wall.as_secs_f64() / bound.as_secs_f64()
        );
        runtime.block_on(emulator.shutdown());
    }
}
