//! Validation benchmark: wall time of `config::validate_text` for generated fleets of 8,000 to
//! 50,000 clusters, and for hostile files (a 1,000,000-element array on one line, a fan-out of
//! 4,000 clusters × 2,000 registries and a 10 MB one, and about 20 MB of distinct selectors and
//! misspelt names).
//!
//! Run: `cargo bench --bench validate` (builds release). Prints one table; asserts nothing.
//! Each file is generated and validated in a child process (this bench run again with
//! ACRLINK_BENCH_ONE=NAME), so the peak memory column (Linux: VmHWM) is that file's alone.
//! With ACRLINK_BENCH_DIR=DIR it also writes each file there, to measure the binary's peak
//! memory with `/usr/bin/time -v acrlink validate -c DIR/FILE`.

use std::path::Path;
use std::time::Instant;

const SUBSCRIPTION: &str = "1d6c45e0-bd9f-4771-bb67-36616452f239";

/// `clusters` labelled clusters, one managed-identity binding per cluster over
/// `clusters / 10` registries, and a pull-secret binding by label over all registries.
fn fleet(clusters: usize) -> String {
    let registries = (clusters / 10).max(1);
    let mut text = format!("version = 1\n[azure]\nsubscription_id = \"{SUBSCRIPTION}\"\n");
    for r in 0..registries {
        text.push_str(&format!("[registries.fleetacr{r:05}]\nresource_group = \"rg-acr\"\n"));
    }
    for i in 0..clusters {
        let env = ["dev", "test", "prod"][i % 3];
        text.push_str(&format!(
            "[clusters.aks-{i:06}]\nresource_group = \"rg-{}\"\nlabels = {{ env = \"{env}\", wave = \"{}\" }}\n",
            i % 50,
            i % 7
        ));
    }
    for i in 0..clusters {
        text.push_str(&format!(
            "[[bindings]]\nclusters = [\"aks-{i:06}\"]\nregistries = [\"fleetacr{:05}\"]\n",
            i % registries
        ));
    }
    text.push_str("[[bindings]]\nclusters = [\"env=prod,wave=1\"]\nregistries = [\"fleetacr0000*\"]\n");
    text.push_str("method = \"pull-secret\"\nnamespaces = [\"apps\"]\ncredential = \"admin\"\n");
    text
}

fn long_array(elements: usize) -> String {
    format!("version = 1\nx = [{}1]\n", "1,".repeat(elements - 1))
}

fn fan_out(clusters: usize, registries: usize) -> String {
    let mut text = format!(
        "version = 1\n[azure]\nsubscription_id = \"{SUBSCRIPTION}\"\n[[bindings]]\nclusters = [\"*\"]\nregistries = [\"*\"]\n"
    );
    for r in 0..registries {
        text.push_str(&format!("[registries.fanacr{r:05}]\nresource_group = \"rg\"\n"));
    }
    for i in 0..clusters {
        text.push_str(&format!("[clusters.aks-{i:05}]\nresource_group = \"rg\"\n"));
    }
    text
}

/// About `bytes` of work for the checker: 100,000 clusters, then bindings whose selectors are
/// each a distinct glob or label selector matching nothing, or a misspelt cluster name.
fn hostile(bytes: usize) -> String {
    let mut text = format!(
        "version = 1\n[azure]\nsubscription_id = \"{SUBSCRIPTION}\"\n[registries.hostileacr]\nresource_group = \"rg\"\n"
    );
    for i in 0..100_000 {
        text.push_str(&format!("[clusters.aks-{i:06}]\nresource_group = \"rg\"\nlabels = {{ env = \"prod\" }}\n"));
    }
    let mut i = 0;
    while text.len() < bytes {
        text.push_str("[[bindings]]\nregistries = [\"hostileacr\"]\nclusters = [");
        for _ in 0..1_000 {
            match i % 3 {
                0 => text.push_str(&format!("\"aks-{i:06}x*\",")),
                1 => text.push_str(&format!("\"env=prod,team={i}\",")),
                _ => text.push_str(&format!("\"aks-{i:06}x\",")),
            }
            i += 1;
        }
        text.push_str("]\n");
    }
    text
}

fn measure(name: &str, text: &str) {
    if let Some(dir) = std::env::var_os("ACRLINK_BENCH_DIR") {
        std::fs::write(Path::new(&dir).join(format!("{name}.toml")), text).expect("write the bench file");
    }
    let started = Instant::now();
    let (config, diagnostics) = acrlink::config::validate_text(text, Path::new("acrlink.toml"));
    let seconds = started.elapsed().as_secs_f64();
    let errors = diagnostics.iter().filter(|d| d.severity == acrlink::config::Severity::Error).count();
    let verdict = if config.is_some() { "valid".to_string() } else { format!("invalid ({errors} errors)") };
    println!("{name:>24} | {:>9.1} MB | {seconds:>8.3} s | {:>7} MB | {verdict}", text.len() as f64 / 1e6, peak_mb());
}

/// This process's peak resident memory in MB (VmHWM), or "?" where /proc does not say.
fn peak_mb() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kilobytes = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kilobytes.map_or("?".to_string(), |kb| format!("{:.0}", kb as f64 / 1024.0))
}

/// The files, by name; each is generated only in the child that measures it.
const FILES: [&str; 9] = [
    "fleet-8000-clusters",
    "fleet-16000-clusters",
    "fleet-32000-clusters",
    "fleet-50000-clusters",
    "array-1000000-elements",
    "fan-out-4000x2000",
    "fan-out-10mb",
    "hostile-10mb",
    "hostile-20mb",
];

fn generate(name: &str) -> String {
    match name {
        "fleet-8000-clusters" => fleet(8_000),
        "fleet-16000-clusters" => fleet(16_000),
        "fleet-32000-clusters" => fleet(32_000),
        "fleet-50000-clusters" => fleet(50_000),
        "array-1000000-elements" => long_array(1_000_000),
        "fan-out-4000x2000" => fan_out(4_000, 2_000),
        // The same bomb grown to 10 MB: 125,000 clusters and as many registries, all to all.
        "fan-out-10mb" => fan_out(125_000, 125_000),
        "hostile-10mb" => hostile(10_000_000),
        "hostile-20mb" => hostile(20_000_000),
        other => panic!("no bench file {other}"),
    }
}

/// Where the time of one file goes: parsing into the position tree, the structure check
/// (which also builds the JSON the typed config is read from), and everything.
fn phases(name: &str, text: &str) {
    use acrlink::config::source::{self, Format};
    let schema = acrlink::config::raw::json_schema();
    let started = Instant::now();
    let tree = source::parse(text, Format::Toml).expect("the fleet parses");
    let parsed = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (pruned, _) = acrlink::config::structure::StructureCheck::run(&schema, &tree);
    let structure = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let raw: acrlink::config::raw::PartialConfig = serde_json::from_value(pruned.expect("pruned")).expect("typed");
    let typed = started.elapsed().as_secs_f64();
    std::hint::black_box(raw);
    println!("{name:>24} | parse {parsed:.3} s, structure {structure:.3} s, typed {typed:.3} s");
}

fn main() {
    if let Ok(name) = std::env::var("ACRLINK_BENCH_ONE") {
        measure(&name, &generate(&name));
        return;
    }
    println!("{:>24} | {:>12} | {:>10} | {:>10} | result", "file", "size", "validate", "peak");
    if std::env::var_os("ACRLINK_BENCH_PHASES").is_some() {
        phases("fleet-50000-clusters", &fleet(50_000));
        return;
    }
    let exe = std::env::current_exe().expect("the bench binary");
    for name in FILES {
        let status = std::process::Command::new(&exe)
            .env("ACRLINK_BENCH_ONE", name)
            .status()
            .expect("run the bench binary for one file");
        assert!(status.success(), "{name}: {status}");
    }
}
