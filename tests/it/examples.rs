//! Every example desired-state file under `examples/` has an emulated Azure of its own in
//! `examples/worlds/` (same stem), and `acrlink plan -c examples/<x>.toml` works against it
//! exactly as that world's header says to run it.

use crate::support::{Emulated, Sandbox, files_in, repo_root};

/// The `acrlink plan -c examples/<stem>.toml` line of a world's header comment, with the
/// `NAME=value` assignments written before `acrlink` on it (e.g. a secret the file reads from
/// the environment).
fn documented_plan(world: &str, stem: &str) -> Vec<(String, String)> {
    let command = format!("acrlink plan -c examples/{stem}.toml");
    let line = world
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find(|l| l.contains(&command))
        .unwrap_or_else(|| panic!("examples/worlds/{stem}.toml's header shows how to run `{command}`"));
    let before = line[..line.find(&command).unwrap()].rsplit("&&").next().unwrap_or_default();
    before
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn every_example_plans_against_its_world() {
    let examples = files_in(&repo_root().join("examples"), &["toml"]);
    assert!(examples.len() >= 3, "{examples:?}");
    for example in examples {
        let stem = example.file_stem().unwrap().to_str().unwrap().to_string();
        let world_path = repo_root().join("examples/worlds").join(format!("{stem}.toml"));
        let world = std::fs::read_to_string(&world_path)
            .unwrap_or_else(|e| panic!("examples/{stem}.toml has a world at examples/worlds/{stem}.toml: {e}"));
        let azure = Emulated::start(&world);
        let mut sandbox = Sandbox::new();
        for (key, value) in azure.emulator().env().into_iter().chain(documented_plan(&world, &stem)) {
            sandbox = sandbox.env(&key, &value);
        }
        let plan = sandbox.run([
            "plan".as_ref(),
            "-c".as_ref(),
            example.as_os_str(),
            "--detailed-exitcode".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
        ]);
        plan.assert_no_panic();
        assert_eq!(plan.code, Some(2), "examples/{stem}.toml: changes to make, no error\n{plan}");
        let json = plan.json();
        assert_eq!(json["errors"], serde_json::json!([]), "examples/{stem}.toml\n{plan}");
        assert!(json.get("blocked").is_none(), "examples/{stem}.toml\n{plan}");
        assert!(json["summary"]["add"].as_u64().unwrap() > 0, "examples/{stem}.toml\n{plan}");
        // Every binding of the example is planned for (a change or a warning names it).
        let config: toml::Table = std::fs::read_to_string(&example).unwrap().parse().unwrap();
        for binding in config["bindings"].as_array().unwrap() {
            let name = binding["name"].as_str().unwrap();
            assert!(plan.stdout.contains(name), "examples/{stem}.toml: binding {name} plans\n{plan}");
        }
    }
}
