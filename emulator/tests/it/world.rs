//! World files: parse and semantic errors with lines and fields, the generated schema and its
//! freshness, sample worlds, `--generate` and the 1000-cluster start.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use acrlink_emulator::{Emulator, EmulatorError, World, generate_world, run_command};
use reqwest::StatusCode;

use crate::support::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_test_world_and_its_defaults() {
    let world = World::from_toml_str(WORLD).expect("valid");
    assert_eq!(world.settings.page_size, 2);
    assert_eq!(world.settings.throttle.reads.capacity, 250, "Azure's documented read bucket");
    assert_eq!(world.settings.token_lifetime_seconds, 3599);
    assert_eq!(world.clusters[0].kubernetes_version, "1.33.2");
    assert!(world.clusters[0].local_accounts);
}

#[test]
fn syntax_and_shape_errors_name_line_and_field() {
    let error =
        World::from_toml_str("[tenant]\nid = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\n\n[[clusters]]\nnmae = \"x\"\n")
            .expect_err("unknown field");
    let text = error.to_string();
    assert!(matches!(error, EmulatorError::WorldSyntax { .. }));
    assert!(text.contains("line 5") && text.contains("nmae"), "{text}");

    let error = World::from_toml_str("[tenant\n").expect_err("bad TOML");
    assert!(error.to_string().contains("line 1"), "{error}");
}

#[test]
fn semantic_errors_are_all_reported_with_their_lines() {
    let text = r#"[tenant]
id = "not-a-guid"

[[subscriptions]]
id = "11111111-1111-1111-1111-111111111111"
name = "prod"

[[clusters]]
subscription = "prod"
resource_group = "rg-missing"
name = "-bad-"

[[registries]]
subscription = "nope"
resource_group = "rg"
name = "ab"

[[principals]]
name = "p"
object_id = "b0000000-0000-0000-0000-000000000001"
client_id = "a0000000-0000-0000-0000-000000000001"
secrets = ["s"]
roles = [{ role = "NoSuchRole", scope = "/subscriptions/11111111-1111-1111-1111-111111111111" }]
"#;
    let Err(EmulatorError::WorldInvalid { problems, .. }) = World::from_toml_str(text) else {
        panic!("expected semantic problems");
    };
    let find =
        |field: &str| problems.iter().find(|p| p.field == field).unwrap_or_else(|| panic!("{field} in {problems:#?}"));
    assert_eq!(find("tenant.id").line, Some(2));
    assert_eq!(find("clusters[0].resource_group").line, Some(10));
    assert_eq!(find("clusters[0].name").line, Some(11));
    assert_eq!(find("registries[0].subscription").line, Some(14));
    assert_eq!(find("registries[0].name").line, Some(16));
    assert_eq!(find("principals[0].roles[0].role").line, Some(23));
    let rendered = EmulatorError::WorldInvalid { origin: "w.toml".into(), problems: problems.clone() }.to_string();
    assert!(
        rendered.contains("line 10, column 1: clusters[0].resource_group: resource group \"rg-missing\""),
        "{rendered}"
    );
}

#[test]
fn a_world_needs_a_client_for_the_ready_line() {
    let error =
        World::from_toml_str("[tenant]\nid = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\n").expect_err("no principal");
    assert!(error.to_string().contains("AZURE_CLIENT_SECRET"), "{error}");
}

#[test]
fn missing_files_are_reported_with_their_path() {
    let error = World::from_file(std::path::Path::new("/nonexistent/world.toml")).expect_err("missing");
    assert!(error.to_string().contains("/nonexistent/world.toml"));
}

#[test]
fn the_committed_schema_is_generated_from_the_types() {
    let path = repo().join("schemas/world.schema.json");
    let generated = format!("{}\n", serde_json::to_string_pretty(&World::json_schema()).expect("schema JSON"));
    if std::env::var_os("ACRLINK_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).expect("write the schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/world.schema.json is stale; regenerate it with ACRLINK_UPDATE_SCHEMAS=1 cargo test -p acrlink-emulator schema"
    );
}

fn world_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/worlds"))
        .expect("examples/worlds exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn sample_worlds_load_and_match_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("schemas/world.schema.json")).expect("schema"))
            .expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON schema");
    let files = world_files();
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        World::from_toml_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let value: serde_json::Value = toml::from_str(&text).expect("TOML");
        let errors: Vec<String> =
            validator.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
    // The schema rejects what the loader rejects structurally.
    let bad: serde_json::Value = toml::from_str("[tenant]\nid = \"x\"\nsurprise = 1\n").expect("TOML");
    assert!(!validator.is_valid(&bad));
}

#[test]
fn generate_specs_are_checked() {
    for bad in ["clusters=x", "clusters", "planets=3", "subscriptions=0", "clusters=1,clusters=2"] {
        let error = generate_world(bad).expect_err(bad);
        assert!(matches!(error, EmulatorError::GenerateSpec { .. }), "{bad}: {error}");
    }
    let small = generate_world("clusters=3,registries=1,subscriptions=2").expect("generate");
    assert!(small.starts_with("# Generated by"));
    let world = World::from_toml_str(&small).expect("the generated world loads");
    assert_eq!((world.clusters.len(), world.registries.len(), world.subscriptions.len()), (3, 1, 2));
    assert!(world.clusters.iter().all(|c| c.kubelet_identity.is_some()));
    assert!(world.registries.iter().all(|r| !r.repositories.is_empty()));
    assert_eq!(small, generate_world("clusters=3,registries=1,subscriptions=2").expect("again"), "deterministic");
    assert_ne!(small, generate_world("clusters=3,registries=1,subscriptions=2,seed=7").expect("seeded"));
}

#[tokio::test]
async fn run_command_writes_a_generated_world() {
    let dir = std::env::temp_dir().join(format!("acrlink-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("fleet.toml");
    run_command(
        None,
        "127.0.0.1:0".parse().expect("addr"),
        Some("clusters=4,registries=2,subscriptions=1".into()),
        Some(out.clone()),
    )
    .await
    .expect("generate");
    let world = World::from_file(&out).expect("load what was written");
    assert_eq!(world.clusters.len(), 4);
    let _ = std::fs::remove_dir_all(&dir);
    let error = run_command(None, "127.0.0.1:0".parse().expect("addr"), None, None).await.expect_err("nothing to do");
    assert!(error.to_string().contains("--world"));
}

#[tokio::test]
async fn a_thousand_cluster_world_starts_fast_and_pages() {
    let text = generate_world("clusters=1000,registries=20,subscriptions=5").expect("generate");
    let started = Instant::now();
    let world = World::from_toml_str(&text).expect("load");
    let emulator = Emulator::start(world, "127.0.0.1:0".parse().expect("addr")).await.expect("start");
    let startup = started.elapsed();
    eprintln!("1000-cluster world: parse + start in {startup:?}");
    assert!(startup < Duration::from_secs(2), "started in {startup:?}");

    let info = emulator.ready_info();
    let client = client_for(&emulator);
    let token = fetch_token_in(
        &client,
        &info.arm_endpoint,
        &info.tenant_id,
        &info.env["AZURE_CLIENT_ID"],
        &info.env["AZURE_CLIENT_SECRET"],
    )
    .await;
    let env = Env { client, base: info.arm_endpoint.clone(), token, emulator };
    let mut subscriptions = Vec::new();
    let (subs, _) = env.list_all("/subscriptions?api-version=2022-12-01").await;
    for sub in subs {
        subscriptions.push(sub["subscriptionId"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(subscriptions.len(), 5);
    let mut clusters = 0;
    let mut pages = 0;
    for sub in &subscriptions {
        let (items, p) = env
            .list_all(&format!(
                "/subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters?api-version=2026-08-01"
            ))
            .await;
        assert!(items.iter().all(|c| c["properties"]["identityProfile"]["kubeletidentity"]["objectId"].is_string()));
        clusters += items.len();
        pages += p;
    }
    assert_eq!(clusters, 1000);
    assert_eq!(pages, 50, "200 clusters per subscription in pages of 20");
    let registries = env
        .get(&format!(
            "/subscriptions/{}/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01",
            subscriptions[0]
        ))
        .await;
    assert_eq!(registries.status, StatusCode::OK);
}
