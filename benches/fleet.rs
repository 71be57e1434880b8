//! Fleet benchmark: wall time and ARM request counts of `acrlink plan` and `apply` against the
//! emulator with 50 ms injected latency, for 1, 10 and 100 clusters × 2 registries, each as a
//! ratio to the lower bound (the longest chain of dependent requests × the latency).
//!
//! Run: `cargo bench --bench fleet` (builds release). Prints one table; asserts nothing.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use acrlink_emulator::{Emulator, Faults, World};

const LATENCY_MS: u64 = 50;

fn fleet(clusters: usize) -> (String, String) {
    let world =
        acrlink_emulator::generate_world(&format!("clusters={clusters},registries=2,subscriptions=1")).expect("world");
    let parsed: toml::Value = toml::from_str(&world).expect("generated TOML");
    let subscription = parsed["subscriptions"][0]["id"].as_str().unwrap_or_default().to_string();
    let mut config = format!("version = 1\n[azure]\nsubscription_id = \"{subscription}\"\n");
    for registry in parsed["registries"].as_array().into_iter().flatten() {
        config.push_str(&format!(
            "[registries.{}]\nresource_group = \"{}\"\n",
            registry["name"].as_str().unwrap_or_default(),
            registry["resource_group"].as_str().unwrap_or_default()
        ));
    }
    config.push_str("[[cluster_sets]]\nname = \"all\"\n\n[[bindings]]\nclusters = [\"*\"]\nregistries = [\"*\"]\n");
    (world, config)
}

fn requests(emulator: &Emulator) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for entry in emulator.ledger().entries {
        *counts.entry(entry.operation).or_insert(0) += entry.count;
    }
    counts
}

fn run(emulator: &Emulator, dir: &std::path::Path, args: &[&str]) -> (Duration, i32) {
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_acrlink"))
        .args(args)
        .current_dir(dir)
        .envs(emulator.env())
        .env("ACRLINK_ARM_REQUESTS_PER_SECOND", "1000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run acrlink");
    (started.elapsed(), status.code().unwrap_or(-1))
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("latency {LATENCY_MS} ms per request; lower bound = longest chain of dependent requests × latency");
    println!(
        "{:>8} | {:>13} | {:>9} | {:>10} | {:>6} || {:>7} | {:>14} | {:>10} | {:>11} | {:>6} | {:>13} | {:>6}",
        "clusters",
        "plan requests",
        "plan wall",
        "plan bound",
        "ratio",
        "changes",
        "apply requests",
        "apply wall",
        "apply bound",
        "ratio",
        "bound (p=10)",
        "ratio"
    );
    for clusters in [1usize, 10, 100] {
        let (world_text, config) = fleet(clusters);
        let world = World::from_toml_str(&world_text).expect("world parses");
        let emulator =
            runtime.block_on(Emulator::start(world, "127.0.0.1:0".parse().expect("addr"))).expect("emulator");
        let page_size = emulator.state().settings().page_size.max(1) as u64;
        emulator.set_faults(Faults { latency_ms: LATENCY_MS, ..Faults::default() });
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("acrlink.toml"), &config).expect("config");

        // Plan: token, then (cluster list pages) ‖ (registry GET → assignment list) .
        emulator.reset_ledger();
        let (plan_wall, plan_code) = run(&emulator, dir.path(), &["plan"]);
        assert_eq!(plan_code, 0, "plan failed");
        let plan_requests: u64 = requests(&emulator).values().sum();
        let cluster_pages = (clusters as u64).div_ceil(page_size).max(1);
        let plan_chain = 1 + cluster_pages.max(2);
        let plan_bound = Duration::from_millis(plan_chain * LATENCY_MS);

        // Apply: the plan's chain, then one round of PUTs if every grant ran at once.
        emulator.reset_ledger();
        let (apply_wall, apply_code) = run(&emulator, dir.path(), &["apply", "--auto-approve"]);
        assert_eq!(apply_code, 0, "apply failed");
        let counts = requests(&emulator);
        let apply_requests: u64 = counts.values().sum();
        let changes = counts.get("RoleAssignments_Create").copied().unwrap_or(0);
        let apply_bound = Duration::from_millis((plan_chain + 1) * LATENCY_MS);
        // With the default --parallelism 10 the PUTs take ceil(changes / 10) rounds.
        let apply_bound_p10 = Duration::from_millis((plan_chain + changes.div_ceil(10).max(1)) * LATENCY_MS);

        println!(
            "{clusters:>8} | {plan_requests:>13} | {:>7}ms | {:>8}ms | {:>6.2} || {changes:>7} | {apply_requests:>14} | {:>8}ms | {:>9}ms | {:>6.2} | {:>11}ms | {:>6.2}",
            plan_wall.as_millis(),
            plan_bound.as_millis(),
            plan_wall.as_secs_f64() / plan_bound.as_secs_f64(),
            apply_wall.as_millis(),
            apply_bound.as_millis(),
            apply_wall.as_secs_f64() / apply_bound.as_secs_f64(),
            apply_bound_p10.as_millis(),
            apply_wall.as_secs_f64() / apply_bound_p10.as_secs_f64(),
        );
        runtime.block_on(emulator.shutdown());
    }
}
