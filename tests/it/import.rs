//! `acrlink import` against the emulator: the file it writes validates, and the first plan on
//! it shows no changes; the same live state gives the same bytes.

use acrlink_emulator::{RoleAssignment, World};

use crate::support::{Emulated, Output, Sandbox, repo_root};

const DEMO_WORLD: &str = "examples/demo/world.toml";
const DEMO_CONFIG: &str = "examples/demo/acrlink.toml";
/// A fixed clock for the header, so two imports of one state are byte-identical.
const EPOCH: &str = "1767225600";

/// The demo's file without its service-principal binding. Import cannot express that binding
/// (the file would have to say where the secret is read), so the imported file's plan would
/// prune the grant acrlink made for it; import says so (see
/// `a_service_principal_grant_import_cannot_express_is_named_as_what_plan_would_delete`), and
/// these tests of what it does express leave the binding out.
fn demo_config() -> String {
    let demo = std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap();
    let start = demo.find("# A partner's agent on staging").expect("the demo's service-principal binding");
    demo[..start].to_string()
}

fn demo_world() -> String {
    std::fs::read_to_string(repo_root().join(DEMO_WORLD)).unwrap()
}

/// Imports into `name` (format from its extension), then checks validate and an empty plan.
#[track_caller]
fn import_and_plan(sandbox: &Sandbox, name: &str, extra: &[&str]) -> (Output, String) {
    let mut args = vec!["import", "--out", name];
    args.extend_from_slice(extra);
    let output = sandbox.run(&args);
    output.assert_no_panic().assert_exit(0);
    let text = std::fs::read_to_string(sandbox.path().join(name)).unwrap();
    sandbox.run(["validate", name]).assert_exit(0);
    let plan = sandbox.run(["-c", name, "plan", "--detailed-exitcode"]);
    plan.assert_no_panic();
    assert_eq!(plan.code, Some(0), "the first plan after import is not empty\n{text}\n{plan}");
    (output, text)
}

/// The number of pairs the header says are bound.
fn bound_pairs(text: &str) -> usize {
    let line = text.lines().find(|l| l.contains("cluster-registry pair(s) bound")).expect("the header counts pairs");
    let count = line.split("; ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap();
    count.parse().unwrap()
}

#[test]
fn the_applied_demo_fleet_imports_to_a_file_whose_plan_is_empty_in_toml_and_yaml() {
    let azure = Emulated::start(&demo_world());
    let demo = azure.sandbox_with(&demo_config());
    demo.run(["apply", "--auto-approve"]).assert_exit(0);
    let sandbox = azure.sandbox_with("").env("SOURCE_DATE_EPOCH", EPOCH);
    // No --subscription: every subscription the identity sees (the demo has two).
    let (output, text) = import_and_plan(&sandbox, "imported.toml", &[]);
    assert!(
        text.starts_with("#:schema ./schemas/acrlink.schema.json\n# Imported by `acrlink import` (acrlink "),
        "{text}"
    );
    assert!(text.contains(" at 2026-01-01T00:00:00Z\n"), "{text}");
    assert!(text.contains("0cbb9123-6397-4a37-97d1-8efa0a25043b, 1d6c45e0-bd9f-4771-bb67-36616452f239"), "{text}");
    // Five clusters pull the shared registry, two of them payments/* of the ABAC one.
    assert_eq!(bound_pairs(&text), 7, "{text}");
    assert!(text.contains("clusters = [\"*\"]\nregistries = [\"contosoacr\"]"), "{text}");
    assert!(
        text.contains("clusters = [\"aks-pay-*\"]\nregistries = [\"paymentsabac\"]\nrepositories = [\"payments/*\"]"),
        "{text}"
    );
    assert!(output.stderr.contains("Wrote imported.toml"), "{output}");
    // The same live state, the same bytes.
    sandbox.run(["import", "--out", "again.toml"]).assert_exit(0);
    assert_eq!(std::fs::read_to_string(sandbox.path().join("again.toml")).unwrap(), text);
    // YAML from the extension, and to stdout with --format.
    let (_, yaml) = import_and_plan(&sandbox, "imported.yaml", &[]);
    assert!(yaml.starts_with("# yaml-language-server: $schema=./schemas/acrlink.schema.json\n"), "{yaml}");
    let stdout = sandbox.run(["import", "--format", "yaml"]);
    assert_eq!(stdout.assert_exit(0).stdout, yaml);
    assert_eq!(sandbox.run(["import", "--out", "-"]).assert_exit(0).stdout, text);
}

#[test]
fn the_untouched_demo_world_keeps_its_attach_acr_grant_and_names_what_it_cannot_express() {
    let azure = Emulated::start(&demo_world());
    let sandbox = azure.sandbox_with("").env("SOURCE_DATE_EPOCH", EPOCH);
    let output = sandbox.run(["import", "--subscription", "1d6c45e0-bd9f-4771-bb67-36616452f239", "--out", "a.toml"]);
    output.assert_exit(0);
    let text = std::fs::read_to_string(sandbox.path().join("a.toml")).unwrap();
    // `az aks update --attach-acr` on aks-dev-01, under a name of its own: bound, and in place.
    assert_eq!(bound_pairs(&text), 1, "{text}");
    assert!(text.contains("[clusters.aks-dev-01]\nresource_group = \"dev-rg\"\n"), "{text}");
    // The deployer's Owner is no kubelet identity: a comment, never a binding.
    assert!(text.contains("# - Owner for principal 4c2a9d10-7e3b-4a55-b1c0-9f8e7d6c5b4a at /subscriptions/"), "{text}");
    // acrlink's own orphan stays acrlink's to prune: import says so rather than hide it.
    let orphan =
        "role_assignment[principal:7d0b2e91-00ff-4f3a-8c55-0000000000ff/contosoacr]: acrlink plan would delete it";
    assert!(text.contains(&format!("# - {orphan}")), "{text}");
    assert!(output.stderr.contains(&format!("warning: {orphan}")), "{output}");
    sandbox.run(["validate", "a.toml"]).assert_exit(0);
    let plan = sandbox.run(["-c", "a.toml", "plan", "--detailed-exitcode"]);
    assert!(plan.assert_exit(2).stdout.contains("Plan: 0 to add, 0 to change, 1 to destroy."), "{plan}");
}

/// The kubelet object id of cluster `i` and the id of registry `j` of a generated world.
fn kubelet(world: &World, i: usize) -> String {
    world.clusters[i].kubelet_identity.as_ref().unwrap().object_id.clone()
}

fn registry_id(world: &World, j: usize) -> String {
    let registry = &world.registries[j];
    let subscription = world.subscriptions.iter().find(|s| s.name == registry.subscription).unwrap();
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{}",
        subscription.id, registry.resource_group, registry.name
    )
}

fn grant(scope: String, role: &str, principal: String, label: &str) -> RoleAssignment {
    RoleAssignment {
        // A name of its own, as `--attach-acr`, the portal and Terraform give.
        name: Some(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, label.as_bytes()).to_string()),
        scope,
        role: role.into(),
        principal,
        principal_type: Some("ServicePrincipal".into()),
        description: None,
        condition: None,
        condition_version: None,
        created_by: None,
    }
}

/// A generated world with grants of every origin: inherited from the resource group, AcrPush
/// by hand, ABAC repository grants with and without a condition, roles that do not pull,
/// acrlink's own grants of two owners, and a principal that is no kubelet identity.
fn mixed_world(spec: &str, seed: usize) -> String {
    let mut world = World::from_toml_str(&acrlink_emulator::generate_world(spec).unwrap()).unwrap();
    let registries = world.registries.len();
    let abac: Vec<usize> = (0..registries).filter(|j| j % 5 == 4).collect();
    let mut added = Vec::new();
    for i in 0..world.clusters.len() {
        let (who, cluster_id) = (kubelet(&world, i), format!("cluster {i}"));
        let legacy = (i + seed) % registries;
        let legacy = if legacy % 5 == 4 { (legacy + 1) % registries } else { legacy };
        match (i + seed) % 7 {
            1 => {
                let group = registry_id(&world, legacy).split("/providers/").next().unwrap().to_string();
                added.push(grant(group, "AcrPull", who, &format!("{seed} inherited {i}")));
            }
            2 => added.push(grant(registry_id(&world, legacy), "AcrPush", who, &format!("{seed} push {i}"))),
            3 if !abac.is_empty() => {
                let mut reader = grant(
                    registry_id(&world, abac[i % abac.len()]),
                    "Container Registry Repository Reader",
                    who,
                    &cluster_id,
                );
                reader.condition = Some(acrlink::kinds::roles::repository_condition(&[
                    "base/nginx".to_string(),
                    format!("team-{}/*", ["a", "b"][i % 2]),
                ]));
                reader.condition_version = Some("2.0".into());
                added.push(reader);
            }
            4 if !abac.is_empty() => {
                let scope = registry_id(&world, abac[0]);
                added.push(grant(scope.clone(), "Container Registry Repository Reader", who.clone(), &cluster_id));
                // AcrPull does not let pull from an ABAC registry: a comment, not a binding.
                added.push(grant(scope, "AcrPull", who, &format!("{seed} ineffective {i}")));
            }
            5 | 6 => {
                // acrlink's own, under its deterministic name (the emulator's guid() when unnamed).
                let owner = if (i + seed) % 7 == 5 || i % 3 != 0 { "platform" } else { "payments" };
                let cluster = &world.clusters[i];
                let mut managed = grant(registry_id(&world, legacy), "AcrPull", who, "");
                managed.name = None;
                managed.description = Some(format!(
                    "Managed by acrlink for {owner}: binding shared lets cluster /subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{} pull",
                    world.subscriptions.iter().find(|s| s.name == cluster.subscription).unwrap().id,
                    cluster.resource_group,
                    cluster.name
                ));
                added.push(managed);
            }
            _ => {}
        }
    }
    let outsider = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("outsider {seed}").as_bytes()).to_string();
    added.push(grant(registry_id(&world, 0), "AcrPull", outsider, &format!("{seed} outsider")));
    world.role_assignments.extend(added);
    world.to_toml_string().unwrap()
}

#[test]
fn generated_worlds_of_several_shapes_import_to_files_whose_plan_is_empty_and_reimport_identically() {
    for (seed, spec) in [
        (0, "clusters=40,registries=6,subscriptions=3,seed=1"),
        (3, "clusters=25,registries=10,subscriptions=1,seed=2"),
        (5, "clusters=60,registries=5,subscriptions=12,seed=3"),
    ] {
        let azure = Emulated::start(&mixed_world(spec, seed));
        let sandbox = azure.sandbox_with("").env("SOURCE_DATE_EPOCH", EPOCH);
        let (output, text) = import_and_plan(&sandbox, "fleet.toml", &[]);
        assert!(bound_pairs(&text) > 10, "{spec}\n{text}");
        // Every bound pair is one grant plan finds in place.
        let plan = sandbox.run(["-c", "fleet.toml", "plan", "--format", "json"]).json();
        assert_eq!(plan["unchanged"].as_array().unwrap().len(), bound_pairs(&text), "{spec}\n{text}");
        assert!(text.contains("not the kubelet identity of a cluster in scope"), "{spec}\n{text}");
        assert!(text.contains("AcrPull for cluster"), "{spec}: the ineffective AcrPull is listed\n{text}");
        // Most of acrlink's own grants are platform's: the file is platform's, and payments'
        // grants, which plan would join, are left to payments' file.
        assert!(text.contains("\nowner = \"platform\"\n"), "{spec}\n{text}");
        assert!(text.contains("already granted by acrlink owner(s) payments"), "{spec}\n{text}");
        assert!(text.contains("repositories = [\"base/nginx\", \"team-"), "{spec}\n{text}");
        assert!(output.stderr.contains("Wrote fleet.toml"), "{output}");
        sandbox.run(["import", "--out", "again.toml"]).assert_exit(0);
        assert_eq!(std::fs::read_to_string(sandbox.path().join("again.toml")).unwrap(), text, "{spec}");
    }
}

/// The demo world before acrlink: `--attach-acr` on aks-dev-01 (in the world already), AcrPull
/// on the platform resource group for four more clusters, and the orphan made no acrlink grant.
fn hand_wired_demo() -> String {
    let mut world =
        demo_world().replace("description = \"Managed by acrlink: binding", "description = \"By hand: binding");
    for n in 2..=5 {
        world.push_str(&format!(
            "\n[[role_assignments]]\nname = \"00000000-0000-4000-8000-00000000000{n}\"\nscope = \"/subscriptions/1d6c45e0-bd9f-4771-bb67-36616452f239/resourceGroups/platform-rg\"\nrole = \"AcrPull\"\nprincipal = \"7d0b2e91-000{n}-4f3a-8c55-00000000000{n}\"\n"
        ));
    }
    world
}

#[test]
fn scope_flags_narrow_what_is_read_and_the_header_says_so() {
    let azure = Emulated::start(&hand_wired_demo());
    let sandbox = azure.sandbox_with("");
    let (_, text) = import_and_plan(
        &sandbox,
        "dev.toml",
        &[
            "--subscription",
            "1d6c45e0-bd9f-4771-bb67-36616452f239",
            "--resource-group",
            "dev-rg",
            "--resource-group",
            "platform-rg",
        ],
    );
    assert!(text.contains("resource group(s) dev-rg, platform-rg."), "{text}");
    // aks-dev-02 inherits AcrPull on every registry of platform-rg; aks-dev-01 has contosoacr only.
    assert!(
        text.contains("name = \"pull-contosoacr\"\nclusters = [\"aks-dev-01\"]\nregistries = [\"contosoacr\"]"),
        "{text}"
    );
    assert!(
        text.contains("name = \"pull-contosoacr-and-2-more\"\nclusters = [\"aks-dev-02\"]\nregistries = [\"*\"]"),
        "{text}"
    );
    assert!(!text.contains("aks-stg-01") && !text.contains("paymentsabac"), "{text}");
    let tagged = sandbox.run(["import", "--tag", "team=payments"]);
    let text = &tagged.assert_exit(0).stdout;
    assert!(text.contains("clusters tagged team=payments"), "{text}");
    assert!(text.contains("[clusters.aks-pay-neu]") && !text.contains("[clusters.aks-dev-01]"), "{text}");
    // A malformed tag and -c are usage errors (exit 1, never 2).
    sandbox.run(["import", "--tag", "team"]).assert_exit(1);
    sandbox.run(["-c", "acrlink.toml", "import"]).assert_exit(1);
}

#[test]
fn a_scope_that_leaves_out_clusters_acrlink_grants_to_says_plan_would_prune_them() {
    let azure = Emulated::start(&demo_world());
    let demo = azure.sandbox_with(&demo_config());
    demo.run(["apply", "--auto-approve"]).assert_exit(0);
    let sandbox = azure.sandbox_with("");
    let output =
        sandbox.run(["import", "--resource-group", "dev-rg", "--resource-group", "platform-rg", "--out", "dev.toml"]);
    // The file is this owner's: its plan prunes this owner's grants it does not bind, and
    // import names each one rather than let the first plan surprise.
    for cluster in ["0003", "0004", "0005"] {
        let line = format!(
            "warning: role_assignment[principal:7d0b2e91-{cluster}-4f3a-8c55-00000000{cluster}/contosoacr]: acrlink plan would delete it"
        );
        assert!(output.assert_exit(0).stderr.contains(&line), "{output}");
    }
    let plan = sandbox.run(["-c", "dev.toml", "plan"]);
    assert!(plan.assert_exit(0).stdout.contains("Plan: 0 to add, 0 to change, 3 to destroy."), "{plan}");
}

/// Planted as a hand-made Secret's password: never in any output or file.
const FOREIGN_CANARY: &str = "CANARY-foreign-pw-71c0e5d2";

/// A pull Secret made outside acrlink (`kubectl create secret docker-registry`), with the
/// cluster's admin kubeconfig.
fn hand_made_secret(azure: &Emulated, cluster: &str, namespace: &str, name: &str, auths: serde_json::Value) {
    use k8s_openapi::api::core::v1::Secret;
    let yaml = azure.emulator().state().kubeconfig(cluster, true).unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    let payload = serde_json::json!({ "auths": auths }).to_string();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some([(".dockerconfigjson".to_string(), k8s_openapi::ByteString(payload.into_bytes()))].into()),
        ..Default::default()
    };
    azure.runtime.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        kube::Api::<Secret>::namespaced(client, namespace).create(&Default::default(), &secret).await.unwrap();
    });
}

#[test]
fn pull_secrets_acrlink_made_become_bindings_and_others_are_named_without_their_values() {
    let azure = Emulated::start(&demo_world());
    let demo = azure.sandbox_with(&demo_config());
    demo.run(["apply", "--auto-approve"]).assert_exit(0);
    let user = |name: &str| serde_json::json!({ "username": name, "password": FOREIGN_CANARY });
    hand_made_secret(
        &azure,
        "aks-stg-01",
        "default",
        "by-hand",
        serde_json::json!({ "vendorimages.azurecr.io": user("vendorimages") }),
    );
    hand_made_secret(
        &azure,
        "aks-dev-02",
        "default",
        "partner",
        serde_json::json!({ "toolsacr.azurecr.io": user("6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11"), "ghcr.io": user("bot") }),
    );
    // A cluster that refuses to list Secrets is reported, as plan reports one it only searches.
    azure.emulator().state().set_kube_denials("aks-sandbox", vec!["*".into()]).unwrap();
    let sandbox = azure.sandbox_with("").env("SOURCE_DATE_EPOCH", EPOCH);
    let (output, text) = import_and_plan(&sandbox, "fleet.toml", &["--pull-secrets"]);
    assert!(text.contains("# - cannot read cluster aks-sandbox: forbidden:"), "{text}");
    assert!(text.contains(": its pull Secrets are not in this file\n"), "{text}");
    assert!(output.stderr.contains("warning: cannot read cluster aks-sandbox"), "{output}");
    // The demo's two pull-secret bindings, as its file has them (the token binding keeps the
    // name its tokens were made under).
    assert!(
        text.contains("clusters = [\"aks-dev-0*\"]\nregistries = [\"vendorimages\"]\nmethod = \"pull-secret\"\ncredential = \"admin\"\nnamespaces = [\"default\"]\nsecret_name = \"vendor-pull\"\nservice_accounts = [\"default\"]\n"),
        "{text}"
    );
    assert!(
        text.contains("name = \"staging-tools\"\nclusters = [\"aks-stg-01\"]\nregistries = [\"toolsacr\"]\nmethod = \"pull-secret\"\nrepositories = [\"tools/*\"]\ncredential = \"registry-token\"\nnamespaces = [\"default\", \"tools\"]\nsecret_name = \"tools-pull\"\nservice_accounts = [\"default\"]\n"),
        "{text}"
    );
    // Secrets made by hand: what they hold, never the password.
    assert!(
        text.contains(
            "# - Secret default/by-hand in cluster aks-stg-01, holding vendorimages (admin user): made outside acrlink"
        ),
        "{text}"
    );
    assert!(
        text.contains("# - Secret default/partner in cluster aks-dev-02, holding ghcr.io (user bot), toolsacr (service principal 6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11): made outside acrlink"),
        "{text}"
    );
    assert!(!text.contains(FOREIGN_CANARY) && !output.stderr.contains(FOREIGN_CANARY), "{text}");
    let verbose = sandbox.run(["-vvv", "import", "--pull-secrets"]);
    assert!(!format!("{verbose}").contains(FOREIGN_CANARY), "a secret leaked\n{verbose}");
    assert_eq!(verbose.assert_exit(0).stdout, text);
}

#[test]
fn the_owner_of_acrlinks_secrets_owns_the_file_when_no_acrlink_grant_says_otherwise() {
    let azure = Emulated::start(&demo_world());
    let team = azure.sandbox_with(
        "version = 1\nowner = \"team\"\n\n[azure]\nsubscription_id = \"1d6c45e0-bd9f-4771-bb67-36616452f239\"\n\n\
[registries.vendorimages]\nresource_group = \"platform-rg\"\n\n[clusters.aks-dev-01]\nresource_group = \"dev-rg\"\n\n\
[[bindings]]\nname = \"vendor\"\nclusters = [\"aks-dev-01\"]\nregistries = [\"vendorimages\"]\nmethod = \"pull-secret\"\n\
credential = \"admin\"\nnamespaces = [\"default\"]\nsecret_name = \"vendor-pull\"\n",
    );
    team.run(["apply", "--auto-approve"]).assert_exit(0);
    let sandbox = azure.sandbox_with("");
    let args = ["--subscription", "1d6c45e0-bd9f-4771-bb67-36616452f239", "--pull-secrets"];
    let (_, text) = import_and_plan(&sandbox, "team.toml", &args);
    assert!(text.contains("\nowner = \"team\"\n"), "{text}");
    assert!(
        text.contains("name = \"secret-vendor-pull\"\nclusters = [\"*\"]\nregistries = [\"vendorimages\"]"),
        "{text}"
    );
    // The default owner's orphan is not team's to prune: nothing is said of plan deleting it.
    assert!(!text.contains("acrlink plan would"), "{text}");
}

/// The grant acrlink made for the demo's service-principal binding has no binding in an
/// imported file: import names it, on stderr and at the top of the file, as what plan would
/// delete, rather than leaving it to surprise the first plan.
#[test]
fn a_service_principal_grant_import_cannot_express_is_named_as_what_plan_would_delete() {
    let azure = Emulated::start(&demo_world());
    let demo = azure.sandbox_with(&std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap());
    demo.run(["apply", "--auto-approve"]).assert_exit(0);
    let imported = demo.run(["import", "--out", "imported.toml"]);
    let line = "role_assignment[sp:6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11/contosoacr]: acrlink plan would delete it";
    assert!(imported.assert_exit(0).stderr.contains(line), "{imported}");
    let file = std::fs::read_to_string(demo.path().join("imported.toml")).unwrap();
    assert!(file.contains(line), "{file}");
    let plan = demo.run(["-c", "imported.toml", "plan"]);
    assert!(plan.assert_exit(0).stdout.contains("Plan: 0 to add, 0 to change, 1 to destroy."), "{plan}");
}
