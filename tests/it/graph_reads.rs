//! Tenant-scale reads (issue 13): clusters and registries of many subscriptions through one
//! Azure Resource Graph query instead of a list per subscription. The plan must be exactly the
//! one the ARM lists give, in fewer requests.

use std::collections::BTreeMap;

use crate::support::Emulated;

/// A generated world and a file binding every cluster of it (a cluster set per subscription)
/// to every registry.
fn generated(spec: &str) -> (String, String) {
    let world = acrlink_emulator::generate_world(spec).expect("world");
    let parsed: toml::Value = toml::from_str(&world).expect("generated TOML");
    let subscriptions: BTreeMap<&str, &str> = parsed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["id"].as_str().unwrap()))
        .collect();
    let first = subscriptions.values().next().unwrap();
    let mut config = format!("version = 1\n[azure]\nsubscription_id = \"{first}\"\n");
    for registry in parsed["registries"].as_array().unwrap() {
        config.push_str(&format!(
            "[registries.{}]\nresource_group = \"{}\"\nsubscription_id = \"{}\"\n",
            registry["name"].as_str().unwrap(),
            registry["resource_group"].as_str().unwrap(),
            subscriptions[registry["subscription"].as_str().unwrap()]
        ));
    }
    for (name, id) in &subscriptions {
        config.push_str(&format!("[[cluster_sets]]\nname = \"{name}\"\nsubscription_id = \"{id}\"\n"));
    }
    config.push_str("[[bindings]]\nname = \"all\"\nclusters = [\"*\"]\nregistries = [\"*\"]\n");
    (world, config)
}

/// Requests per operation since the ledger was reset (the token endpoint excluded).
fn requests(fleet: &Emulated) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for entry in fleet.emulator().ledger().entries {
        if entry.operation != "Token" {
            *counts.entry(entry.operation.clone()).or_insert(0) += entry.count;
        }
    }
    counts
}

#[test]
fn resource_graph_reads_the_same_fleet_as_arm_lists_in_fewer_requests() {
    let (world, config) = generated("clusters=240,registries=3,subscriptions=12");
    let fleet = Emulated::start(&world);
    let plan = |read_via: &str| {
        fleet.emulator().reset_ledger();
        let output = fleet.sandbox_with(&config).env("ACRLINK_READ_VIA", read_via).run(["plan", "--format", "json"]);
        assert_eq!(output.code, Some(0), "{read_via}: {output}");
        let mut json = output.json();
        json["config_path"] = serde_json::Value::Null;
        (json, requests(&fleet))
    };
    let (via_arm, arm_requests) = plan("arm");
    let (via_graph, graph_requests) = plan("resource-graph");
    // The generated world already holds some grants: the rest of 240 × 3 is to add.
    let changes = via_graph["changes"].as_array().unwrap().len();
    let unchanged = via_graph["unchanged"].as_array().unwrap().len();
    assert_eq!(changes + unchanged, 720, "every cluster × registry");
    assert_eq!(via_arm, via_graph, "the same plan either way");
    let lists = |counts: &BTreeMap<String, u64>| -> u64 {
        counts.iter().filter(|(op, _)| !op.starts_with("RoleAssignments")).map(|(_, n)| n).sum()
    };
    // 12 subscriptions of 20 clusters, pages of 100: 12 cluster lists and 12 registry GETs or
    // lists by ARM; one query each by Resource Graph (240 rows fit one page of 1,000).
    assert_eq!(graph_requests.get("Resources").copied(), Some(2), "{graph_requests:?}");
    assert!(lists(&graph_requests) <= 2, "{graph_requests:?}");
    assert!(lists(&arm_requests) >= 12, "{arm_requests:?}");
    assert_eq!(
        graph_requests.get("RoleAssignments_ListForScope"),
        arm_requests.get("RoleAssignments_ListForScope"),
        "role assignments are read the same way"
    );
}
