//! Pull-secret bindings end to end (issue 6): the real binary against the emulator's ARM and
//! per-cluster Kubernetes APIs, reading what it wrote back through a Kubernetes client, and
//! changing things behind its back the way people and other tools do.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::support::{Emulated, Output, Sandbox, repo_root};

const DEMO_WORLD: &str = "examples/demo/world.toml";
const DEMO_CONFIG: &str = "examples/demo/acrlink.toml";
const SUB: &str = "1d6c45e0-bd9f-4771-bb67-36616452f239";
/// Planted as the vendor registry's admin password: must never appear in any output.
const ADMIN_CANARY: &str = "CANARY-admin-pw-9d41c7e2";
/// Planted as a service principal's client secret.
const SP_CANARY: &str = "CANARY-sp-secret-3b7e10aa";

type Fleet = Emulated;

/// The demo fleet with the admin canary planted and kubelets that settle quickly.
fn demo_fleet() -> Fleet {
    let world = std::fs::read_to_string(repo_root().join(DEMO_WORLD))
        .unwrap()
        .replace("demo-admin-password-1", ADMIN_CANARY)
        // Kubelets that pull quickly and retry soon, so pods settle within the test.
        .replace(
            "kubelet = { pull_delay_ms = 300, backoff_initial_ms = 1000 }",
            "kubelet = { pull_delay_ms = 100, backoff_initial_ms = 300, backoff_max_ms = 1000 }",
        );
    assert!(world.contains("backoff_max_ms = 1000"), "the demo world's kubelet settings moved");
    Fleet::start(&world)
}

impl Fleet {
    /// GETs an ARM resource as the deployer.
    fn arm_get(&self, path: &str) -> serde_json::Value {
        let emulator = self.emulator();
        let env = emulator.env();
        let token =
            emulator.state().mint_token(&env["AZURE_CLIENT_ID"], "https://management.azure.com/", 3600).unwrap();
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).unwrap();
        let url = format!("{}{path}", env["ACRLINK_ARM_ENDPOINT"]);
        self.runtime.block_on(async {
            let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
            http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
        })
    }

    /// (slot, creationTime) of every password of every acrlink token on a registry.
    fn token_passwords(&self, registry: &str) -> Vec<(String, String)> {
        let tokens = self.arm_get(&format!(
            "/subscriptions/{SUB}/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/{registry}/tokens?api-version=2025-11-01"
        ));
        let mut passwords = Vec::new();
        for token in tokens["value"].as_array().into_iter().flatten() {
            for password in token["properties"]["credentials"]["passwords"].as_array().into_iter().flatten() {
                passwords.push((
                    password["name"].as_str().unwrap_or_default().to_string(),
                    password["creationTime"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        passwords.sort();
        passwords
    }

    /// A Kubernetes client for a cluster, through AKS credentials as any user would get them.
    fn kube(&self, resource_group: &str, cluster: &str) -> kube::Client {
        let emulator = self.emulator();
        let env = emulator.env();
        let token = emulator
            .state()
            .mint_token(&env["AZURE_CLIENT_ID"], "https://management.azure.com/", 3600)
            .expect("a token for the deployer");
        let url = format!(
            "{}/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{cluster}/listClusterUserCredential?api-version=2025-10-01",
            env["ACRLINK_ARM_ENDPOINT"]
        );
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).unwrap();
        self.runtime.block_on(async {
            let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
            let answer: serde_json::Value = http
                .post(url)
                .bearer_auth(token)
                .header("content-length", "0")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            use base64::Engine as _;
            let encoded = answer["kubeconfigs"][0]["value"].as_str().expect("a kubeconfig");
            let mut text =
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap();
            if let Some(exec) = text.find("    exec:") {
                // An Entra-integrated cluster: a token for the AKS server application, as kubelogin gets.
                let token = emulator
                    .state()
                    .mint_token(&env["AZURE_CLIENT_ID"], "6dae42f8-4368-4678-94ff-3960e28e3630", 3600)
                    .unwrap();
                text = format!("{}    token: {token}\n", &text[..exec]);
            }
            let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).unwrap();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
            kube::Client::try_from(config).unwrap()
        })
    }

    fn secret(&self, client: &kube::Client, namespace: &str, name: &str) -> Option<Secret> {
        self.runtime.block_on(Api::<Secret>::namespaced(client.clone(), namespace).get_opt(name)).unwrap()
    }

    /// The password a pull Secret holds for a login server.
    fn password_in(&self, client: &kube::Client, namespace: &str, name: &str, login: &str) -> Option<String> {
        let secret = self.secret(client, namespace, name)?;
        let payload = secret.data?.get(".dockerconfigjson")?.0.clone();
        let value: serde_json::Value = serde_json::from_slice(&payload).ok()?;
        value["auths"][login]["password"].as_str().map(str::to_string)
    }

    fn pull_secrets_of(&self, client: &kube::Client, namespace: &str, account: &str) -> Vec<String> {
        let account: ServiceAccount =
            self.runtime.block_on(Api::<ServiceAccount>::namespaced(client.clone(), namespace).get(account)).unwrap();
        account.image_pull_secrets.unwrap_or_default().into_iter().map(|r| r.name).collect()
    }

    /// Creates a Pod running `image` (under the namespace's default service account, whose
    /// pull secrets admission copies) and waits for the kubelet's verdict: "Running", or the
    /// waiting reason and message of a failed pull.
    fn run_pod(&self, client: &kube::Client, namespace: &str, name: &str, image: &str) -> String {
        let pods = Api::<Pod>::namespaced(client.clone(), namespace);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": image}]},
        }))
        .unwrap();
        self.runtime.block_on(pods.create(&PostParams::default(), &pod)).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let pod = self.runtime.block_on(pods.get(name)).unwrap();
            let status = pod.status.unwrap_or_default();
            if status.phase.as_deref() == Some("Running") {
                return "Running".into();
            }
            let waiting = status
                .container_statuses
                .unwrap_or_default()
                .into_iter()
                .find_map(|c| c.state.and_then(|s| s.waiting))
                .filter(|w| w.reason.as_deref().is_some_and(|r| r.contains("ImagePull")));
            if let Some(waiting) = waiting {
                let reason = waiting.reason.unwrap_or_default();
                // ImagePullBackOff's message only repeats the image; why the pull failed is in
                // the kubelet's Failed event, as `kubectl describe pod` shows. Polling can miss
                // the short ErrImagePull window on a loaded machine.
                let message = self.pull_failure(client, namespace, name).or(waiting.message).unwrap_or_default();
                return format!("{reason}: {message}");
            }
            assert!(std::time::Instant::now() < deadline, "pod {namespace}/{name} never settled");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The message of the kubelet's latest `Failed to pull image` Event for the Pod.
    fn pull_failure(&self, client: &kube::Client, namespace: &str, pod: &str) -> Option<String> {
        let events = Api::<Event>::namespaced(client.clone(), namespace);
        let list = self.runtime.block_on(events.list(&Default::default())).unwrap();
        list.items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(pod) && e.reason.as_deref() == Some("Failed"))
            .filter_map(|e| e.message)
            .rfind(|m| m.starts_with("Failed to pull image"))
    }

    /// Whether the registry's token service accepts `username`/`password` for pulling `repository`.
    fn registry_accepts(&self, login: &str, repository: &str, username: &str, password: &str) -> bool {
        let emulator = self.emulator();
        let base = emulator.ready_info().registry_endpoint;
        let url = format!("{base}/{login}/oauth2/token?service={login}&scope=repository:{repository}:pull");
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).unwrap();
        self.runtime.block_on(async {
            let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
            let answer = http.get(url).basic_auth(username, Some(password)).send().await.unwrap();
            if !answer.status().is_success() {
                return false;
            }
            let body: serde_json::Value = answer.json().await.unwrap();
            // The token lists only what was granted.
            let token = body["access_token"].as_str().unwrap_or_default();
            let claims = token.split('.').nth(1).unwrap_or_default();
            use base64::Engine as _;
            let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap_or_default();
            String::from_utf8_lossy(&claims).contains(repository)
        })
    }

    /// The username and password a pull Secret holds for a login server.
    fn credential_in(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
        login: &str,
    ) -> Option<(String, String)> {
        let secret = self.secret(client, namespace, name)?;
        let payload = secret.data?.get(".dockerconfigjson")?.0.clone();
        let value: serde_json::Value = serde_json::from_slice(&payload).ok()?;
        let entry = &value["auths"][login];
        Some((entry["username"].as_str()?.to_string(), entry["password"].as_str()?.to_string()))
    }

    /// Kubernetes API requests per cluster since the ledger was last reset.
    fn kube_requests(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for entry in self.emulator().ledger().entries {
            // Kubernetes API calls only, not the ARM calls about the managed cluster.
            if entry.operation.starts_with("ManagedClusters") {
                continue;
            }
            if let Some(cluster) = entry.cluster {
                *counts.entry(cluster.rsplit('/').next().unwrap_or_default().to_string()).or_insert(0) += entry.count;
            }
        }
        counts
    }
}

fn demo_config() -> String {
    std::fs::read_to_string(repo_root().join(DEMO_CONFIG)).unwrap()
}

/// The demo's file with its service-principal binding reading the partner's secret from
/// `source` instead: a test binding the same application elsewhere must name the same place.
fn demo_config_with_partner_secret(source: &str) -> String {
    let demo = demo_config();
    assert!(demo.contains("client_secret_file = \"partner-puller.secret\""));
    demo.replace("client_secret_file = \"partner-puller.secret\"", source)
}

#[track_caller]
fn assert_clean(output: &Output) {
    output.assert_no_panic();
    for canary in [ADMIN_CANARY, SP_CANARY] {
        assert!(!output.stdout.contains(canary) && !output.stderr.contains(canary), "a secret leaked\n{output}");
    }
}

#[test]
fn secrets_reach_every_bound_cluster_and_namespace_and_a_renewed_password_is_drift_that_apply_repairs() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));

    let login = "vendorimages.azurecr.io";
    for cluster in ["aks-dev-01", "aks-dev-02"] {
        let client = fleet.kube("dev-rg", cluster);
        let secret = fleet.secret(&client, "default", "vendor-pull").expect("the Secret");
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
        let labels = secret.metadata.labels.unwrap_or_default();
        assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("acrlink"));
        assert_eq!(fleet.password_in(&client, "default", "vendor-pull", login).as_deref(), Some(ADMIN_CANARY));
        let annotations = secret.metadata.annotations.unwrap_or_default();
        assert!(!annotations.values().any(|v| v.contains(ADMIN_CANARY)), "annotations hold no secret");
        assert_eq!(fleet.pull_secrets_of(&client, "default", "default"), vec!["vendor-pull"]);
    }
    // The token binding: the namespace was created, both namespaces hold the same token password.
    let staging = fleet.kube("staging-rg", "aks-stg-01");
    let tools = "toolsacr.azurecr.io";
    let token_password = fleet.password_in(&staging, "tools", "tools-pull", tools).expect("token password");
    assert_eq!(fleet.password_in(&staging, "default", "tools-pull", tools), Some(token_password));
    assert_eq!(fleet.pull_secrets_of(&staging, "tools", "default"), vec!["tools-pull"]);
    // No pull Secret where no binding puts one.
    assert!(fleet.secret(&fleet.kube("dev-rg", "aks-dev-01"), "default", "tools-pull").is_none());

    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(0));

    // Pods pull through the Secret their service account hands them, on every bound cluster.
    let agent = "vendorimages.azurecr.io/vendor/agent:3.1";
    for cluster in ["aks-dev-01", "aks-dev-02"] {
        assert_eq!(fleet.run_pod(&fleet.kube("dev-rg", cluster), "default", "agent", agent), "Running", "{cluster}");
    }
    let debug = "toolsacr.azurecr.io/tools/debug:1.0";
    assert_eq!(fleet.run_pod(&staging, "tools", "debug", debug), "Running");
    // The token reads tools/* only.
    let outside = fleet.run_pod(&staging, "tools", "sauce", "toolsacr.azurecr.io/internal/secret-sauce:0.9");
    assert!(outside.starts_with("ErrImagePull") || outside.starts_with("ImagePullBackOff"), "{outside}");
    // A cluster no pull-secret binding covers cannot pull the vendor's image.
    let unbound = fleet.run_pod(&staging, "default", "agent", agent);
    assert!(unbound.contains("ImagePull") && unbound.contains("401"), "{unbound}");

    // `az acr credential renew -n vendorimages --password-name password` behind acrlink's back.
    let renewed = fleet.emulator().state().regenerate_registry_password("vendorimages", "password").unwrap();
    let drift = sandbox.run(["drift", "--format", "json"]);
    assert_clean(drift.assert_exit(2));
    let changed: Vec<String> = drift.json()["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(changed, vec!["secret[aks-dev-01/default/vendor-pull]", "secret[aks-dev-02/default/vendor-pull]"]);
    let text = sandbox.run(["drift"]);
    assert!(text.stdout.contains("(sensitive value changed)"), "{text}");
    assert!(!text.stdout.contains(&renewed) && !text.stderr.contains(&renewed));

    let client = fleet.kube("dev-rg", "aks-dev-02");
    let stale = fleet.run_pod(&client, "default", "agent-stale", agent);
    assert!(stale.contains("401"), "the old password no longer pulls: {stale}");

    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert_eq!(fleet.password_in(&client, "default", "vendor-pull", login), Some(renewed));
    assert_eq!(fleet.run_pod(&client, "default", "agent-repaired", agent), "Running");
    assert_clean(sandbox.run(["drift"]).assert_exit(0));
}

#[test]
fn service_accounts_keep_other_tools_entries_and_pruning_removes_only_acrlinks() {
    let fleet = demo_fleet();
    let client = fleet.kube("dev-rg", "aks-dev-02");
    // Another tool already put its own pull secret on the default service account.
    fleet
        .runtime
        .block_on(Api::<ServiceAccount>::namespaced(client.clone(), "default").patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"imagePullSecrets": [{"name": "other-tool"}]})),
        ))
        .unwrap();
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert_eq!(fleet.pull_secrets_of(&client, "default", "default"), vec!["other-tool", "vendor-pull"]);

    // Someone removes acrlink's entry: drift, repaired, the other tool's entry kept.
    fleet
        .runtime
        .block_on(Api::<ServiceAccount>::namespaced(client.clone(), "default").patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"imagePullSecrets": [{"name": "other-tool"}]})),
        ))
        .unwrap();
    let drift = sandbox.run(["drift"]);
    assert_clean(drift.assert_exit(2));
    assert!(drift.stdout.contains("service_account[aks-dev-02/default/default]"), "{drift}");
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert_eq!(fleet.pull_secrets_of(&client, "default", "default"), vec!["other-tool", "vendor-pull"]);

    // aks-dev-02 leaves the vendor binding: its Secret and acrlink's entry go, nothing else.
    let narrowed = demo_config().replace(
        "name = \"vendor-agent\"\nclusters = [\"env=dev\"]",
        "name = \"vendor-agent\"\nclusters = [\"aks-dev-01\"]",
    );
    let sandbox = fleet.sandbox_with(&narrowed);
    let plan = sandbox.run(["plan", "--format", "json"]);
    assert_clean(plan.assert_exit(0));
    let deletes: Vec<String> = plan.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deletes, vec!["secret[aks-dev-02/default/vendor-pull]"], "{plan}");
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert!(fleet.secret(&client, "default", "vendor-pull").is_none());
    assert_eq!(fleet.pull_secrets_of(&client, "default", "default"), vec!["other-tool"]);
    assert!(fleet.secret(&fleet.kube("dev-rg", "aks-dev-01"), "default", "vendor-pull").is_some());
    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(0));
}

#[test]
fn a_foreign_secret_is_refused_unless_adopted_and_a_wrong_typed_one_is_replaced() {
    let fleet = demo_fleet();
    let dev1 = fleet.kube("dev-rg", "aks-dev-01");
    let dev2 = fleet.kube("dev-rg", "aks-dev-02");
    let opaque = |name: &str, labels: &[(&str, &str)]| Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        string_data: Some([("note".to_string(), "made by hand".to_string())].into()),
        ..Default::default()
    };
    fleet
        .runtime
        .block_on(
            Api::<Secret>::namespaced(dev1.clone(), "default")
                .create(&PostParams::default(), &opaque("vendor-pull", &[])),
        )
        .unwrap();
    let ours_but_opaque =
        opaque("vendor-pull", &[("app.kubernetes.io/managed-by", "acrlink"), ("acrlink.io/owner", "default")]);
    fleet
        .runtime
        .block_on(Api::<Secret>::namespaced(dev2.clone(), "default").create(&PostParams::default(), &ours_but_opaque))
        .unwrap();

    let sandbox = fleet.sandbox_with(&demo_config());
    let plan = sandbox.run(["plan"]);
    assert_clean(plan.assert_exit(1));
    assert!(plan.stdout.contains("-/+ secret[aks-dev-02/default/vendor-pull]"), "{plan}");
    assert!(
        plan.stdout
            .contains("a Secret named vendor-pull already exists in aks-dev-01/default and was not made by acrlink"),
        "{plan}"
    );
    assert!(!plan.stdout.contains("+ secret[aks-dev-01/default/vendor-pull]"), "{plan}");

    // Everything else is applied; the unmet binding still fails the run.
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(1));
    let foreign = fleet.secret(&dev1, "default", "vendor-pull").unwrap();
    assert_eq!(foreign.type_.as_deref(), Some("Opaque"), "left alone");
    assert_eq!(
        fleet.pull_secrets_of(&dev1, "default", "default"),
        Vec::<String>::new(),
        "not pointed at a foreign Secret"
    );
    let replaced = fleet.secret(&dev2, "default", "vendor-pull").unwrap();
    assert_eq!(replaced.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));

    // adopt = true takes the foreign one over (replacing it, as its type is wrong too).
    let adopting =
        demo_config().replace("secret_name = \"vendor-pull\"", "secret_name = \"vendor-pull\"\nadopt = true");
    let sandbox = fleet.sandbox_with(&adopting);
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let adopted = fleet.secret(&dev1, "default", "vendor-pull").unwrap();
    assert_eq!(adopted.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
    assert_eq!(fleet.pull_secrets_of(&dev1, "default", "default"), vec!["vendor-pull"]);
}

#[test]
fn an_expiring_token_rotates_into_the_other_slot_and_the_old_password_stays_valid() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let staging = fleet.kube("staging-rg", "aks-stg-01");
    let tools = "toolsacr.azurecr.io";
    let before = fleet.password_in(&staging, "tools", "tools-pull", tools).unwrap();
    let (user, old_password) = fleet.credential_in(&staging, "tools", "tools-pull", tools).unwrap();
    assert!(fleet.registry_accepts(tools, "tools/debug", &user, &old_password));
    let slots_before = fleet.token_passwords("toolsacr");
    assert_eq!(slots_before.iter().map(|(slot, _)| slot.as_str()).collect::<Vec<_>>(), vec!["password1"]);

    // The password has 90 days left; a policy that rotates 95 days ahead now wants a new one.
    let stricter = demo_config()
        .replace("token_ttl = \"90d\"\nrotate_before = \"30d\"", "token_ttl = \"100d\"\nrotate_before = \"95d\"");
    let sandbox = fleet.sandbox_with(&stricter);
    let plan = sandbox.run(["plan", "--format", "json"]);
    assert_clean(plan.assert_exit(0));
    let changes = plan.json()["changes"].as_array().unwrap().clone();
    let token = changes.iter().find(|c| c["resource"]["kind"] == "registry_token").expect("a token change");
    assert_eq!(token["action"], "update");
    assert_eq!(token["resource"]["generate"]["slot"], "password2");
    assert!(token["reason"].to_string().contains("\"rotation\""), "{token}");
    let secrets = changes.iter().filter(|c| c["resource"]["kind"] == "pull_secret").count();
    assert_eq!(secrets, 2, "both namespaces move to the new password");

    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let after = fleet.password_in(&staging, "tools", "tools-pull", tools).unwrap();
    assert_ne!(before, after);
    assert_eq!(fleet.password_in(&staging, "default", "tools-pull", tools), Some(after));
    // The old password was not regenerated (same creation time, still there): pods that pulled
    // with it a moment ago still can, until it expires.
    let slots_after = fleet.token_passwords("toolsacr");
    assert_eq!(slots_after.len(), 2, "{slots_after:?}");
    assert_eq!(slots_after[0], slots_before[0], "password1 untouched");
    assert_eq!(slots_after[1].0, "password2");
    let (_, new_password) = fleet.credential_in(&staging, "tools", "tools-pull", tools).unwrap();
    assert!(fleet.registry_accepts(tools, "tools/debug", &user, &new_password), "the new password works");
    assert!(fleet.registry_accepts(tools, "tools/debug", &user, &old_password), "and so does the old one");
    assert!(!fleet.registry_accepts(tools, "internal/secret-sauce", &user, &new_password), "scope map holds");
    assert_eq!(fleet.run_pod(&staging, "tools", "after-rotation", "toolsacr.azurecr.io/tools/ci:2.0"), "Running");
    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(0));
}

#[test]
fn kubernetes_reads_per_cluster_are_a_small_constant_whatever_the_namespaces() {
    let fleet = demo_fleet();
    let staging = fleet.kube("staging-rg", "aks-stg-01");
    for i in 0..12 {
        let namespace = Namespace {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(format!("team-{i}")),
                ..Default::default()
            },
            ..Default::default()
        };
        fleet
            .runtime
            .block_on(Api::<Namespace>::all(staging.clone()).create(&PostParams::default(), &namespace))
            .unwrap();
    }
    let everywhere = demo_config()
        .replace(
            "namespaces = [\"default\"]\nsecret_name = \"vendor-pull\"",
            "namespaces = [\"*\"]\nsecret_name = \"vendor-pull\"",
        )
        .replace(
            "clusters = [\"env=dev\"]\nregistries = [\"vendorimages\"]",
            "clusters = [\"env=dev\", \"aks-stg-01\"]\nregistries = [\"vendorimages\"]",
        );
    let sandbox = fleet.sandbox_with(&everywhere);
    fleet.emulator().reset_ledger();
    assert_clean(sandbox.run(["plan"]).assert_exit(0));
    let requests = fleet.kube_requests();
    // aks-stg-01 has 17 namespaces, aks-dev-01 has 5: the same handful of lists each.
    // aks-stg-01 has two more Secret names to look for (tools-pull, partner-pull): one more
    // list each, that is all.
    assert_eq!(requests.get("aks-stg-01").copied(), requests.get("aks-dev-01").map(|n| n + 2), "{requests:?}");
    assert!(requests.values().all(|n| *n <= 7), "{requests:?}");
}

#[test]
fn no_secret_reaches_any_output_of_any_command() {
    let fleet = demo_fleet();
    let with_sp = format!(
        "{}\n[[bindings]]\nname = \"partner\"\nclusters = [\"aks-dev-01\"]\nregistries = [\"toolsacr\"]\nmethod = \"pull-secret\"\ncredential = \"service-principal\"\nclient_id = \"6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11\"\nclient_secret_env = \"PARTNER_SECRET\"\nnamespaces = [\"default\"]\nsecret_name = \"partner-pull\"\n",
        // The demo's own service-principal binding reads the same canary.
        demo_config()
            .replace("client_secret_file = \"partner-puller.secret\"", "client_secret_env = \"PARTNER_SECRET\"")
    );
    let sandbox = fleet.sandbox_with(&with_sp).env("PARTNER_SECRET", SP_CANARY);
    let saved = sandbox.path().join("plan.json");
    let mut everything = Vec::new();
    for args in [
        vec!["-vvv", "plan"],
        vec!["-vvv", "plan", "--format", "json"],
        vec!["-vvv", "plan", "--format", "markdown"],
        vec!["-vvv", "plan", "--out", saved.to_str().unwrap()],
        vec!["-vvv", "graph"],
        vec!["-vvv", "apply", saved.to_str().unwrap()],
        vec!["-vvv", "drift"],
        vec!["-vvv", "drift", "--format", "json"],
        vec!["-vvv", "drift", "--format", "markdown"],
        vec!["-vvv", "apply", "--auto-approve", "--format", "json"],
        vec!["-vvv", "apply", "--auto-approve", "--format", "markdown"],
    ] {
        let output = sandbox.run(&args);
        assert_clean(&output);
        assert!(output.code.is_some_and(|c| c == 0 || c == 2), "{args:?}\n{output}");
        everything.push(format!("{output}"));
    }
    // A renewed admin password and a rotated token: the changes show, their values do not.
    fleet.emulator().state().regenerate_registry_password("vendorimages", "password").unwrap();
    let stricter = with_sp
        .replace("token_ttl = \"90d\"\nrotate_before = \"30d\"", "token_ttl = \"100d\"\nrotate_before = \"95d\"");
    let sandbox = fleet.sandbox_with(&stricter).env("PARTNER_SECRET", SP_CANARY);
    for args in [
        vec!["-vvv", "drift"],
        vec!["-vvv", "apply", "--auto-approve", "--format", "markdown"],
        vec!["-vvv", "drift", "--format", "json"],
        vec!["-vvv", "drift", "--format", "markdown"],
        // import reads the same fleet, Secrets included, and writes a file: to stdout here.
        vec!["-vvv", "import"],
        vec!["-vvv", "import", "--format", "yaml"],
        vec!["-vvv", "import", "--pull-secrets"],
        // verify reads every Secret's credential and sends it to the registry.
        vec!["-vvv", "verify", "--probe", "pod", "--image", "tools/debug:1.0"],
        vec!["-vvv", "verify", "--format", "json"],
        vec!["-vvv", "verify", "--format", "markdown"],
    ] {
        let output = sandbox.run(&args);
        assert_clean(&output);
        everything.push(format!("{output}"));
    }
    // import names the service principal's Secret (its file would need the secret's source).
    let imported = sandbox.run(["import", "--pull-secrets"]);
    assert!(
        imported.assert_exit(0).stdout.contains("# - Secret default/partner-pull in cluster aks-dev-01, holding toolsacr (service principal 6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11): a service principal's"),
        "{imported}"
    );
    everything.push(std::fs::read_to_string(&saved).unwrap());
    // Every credential that now sits in a Secret, and the encoded forms a leak would take.
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let staging = fleet.kube("staging-rg", "aks-stg-01");
    let dev1 = fleet.kube("dev-rg", "aks-dev-01");
    let mut secrets = Vec::new();
    for (client, namespace, name, login) in [
        (&staging, "tools", "tools-pull", "toolsacr.azurecr.io"),
        (&dev1, "default", "vendor-pull", "vendorimages.azurecr.io"),
        (&dev1, "default", "partner-pull", "toolsacr.azurecr.io"),
        (&staging, "default", "partner-pull", "contosoacr.azurecr.io"),
    ] {
        let (user, password) = fleet.credential_in(client, namespace, name, login).expect("a credential");
        secrets.push(engine.encode(format!("{user}:{password}")));
        secrets.push(password);
        let payload = fleet.secret(client, namespace, name).unwrap().data.unwrap()[".dockerconfigjson"].0.clone();
        secrets.push(engine.encode(&payload));
    }
    secrets.extend([ADMIN_CANARY.to_string(), SP_CANARY.to_string(), engine.encode(ADMIN_CANARY)]);
    for text in &everything {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret leaked:\n{text}");
        }
    }
    // The credentials did reach the cluster, so the search above was not vacuous.
    assert_eq!(fleet.password_in(&dev1, "default", "partner-pull", "toolsacr.azurecr.io").as_deref(), Some(SP_CANARY));
    // Last, as it removes what the checks above read: destroy, in every format.
    for format in ["json", "markdown", "text"] {
        let output = sandbox.run(["-vvv", "destroy", "--auto-approve", "--format", format]);
        assert_clean(output.assert_exit(0));
        for secret in &secrets {
            assert!(!format!("{output}").contains(secret.as_str()), "a secret leaked:\n{output}");
        }
    }

    // The demo, with the canary planted in its world.
    let demo = Sandbox::new();
    let world =
        std::fs::read_to_string(repo_root().join(DEMO_WORLD)).unwrap().replace("demo-admin-password-1", ADMIN_CANARY);
    demo.write("examples/demo/world.toml", world);
    crate::support::write_config(&demo.path().join("examples/demo"), &demo_config());
    let output = demo.run(["demo"]);
    assert_clean(output.assert_exit(0));
    assert!(!format!("{output}").contains("partner-demo-secret"), "the partner's secret leaked:\n{output}");
}

#[test]
fn entra_integrated_clusters_and_local_kube_contexts_are_reached_too() {
    // aks-dev-02 has local accounts off and Entra integration on: its kubeconfig names
    // kubelogin, and acrlink must bring the Entra token for the AKS server application itself.
    let world = std::fs::read_to_string(repo_root().join(DEMO_WORLD)).unwrap().replace(
        "name = \"aks-dev-02\"\nlocation = \"westeurope\"\n",
        "name = \"aks-dev-02\"\nlocation = \"westeurope\"\nlocal_accounts = false\naad = true\n",
    );
    let fleet = Fleet::start(&world);
    // aks-dev-01 through a context of a local kubeconfig instead of AKS credentials.
    let sandbox = fleet.sandbox_with(&demo_config().replace(
        "[clusters.aks-dev-01]\nresource_group = \"dev-rg\"\n",
        "[clusters.aks-dev-01]\nresource_group = \"dev-rg\"\nkube_context = \"dev-one\"\n",
    ));
    let kubeconfig = local_kubeconfig(&fleet, "dev-rg", "aks-dev-01", "dev-one");
    let path = sandbox.write("kubeconfig", kubeconfig);
    let sandbox = sandbox.env("KUBECONFIG", path.to_str().unwrap());
    fleet.emulator().reset_ledger();
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let entra_cluster = fleet.kube_requests();
    assert!(entra_cluster.get("aks-dev-02").is_some_and(|n| *n > 0), "{entra_cluster:?}");
    // The local-context cluster was not asked for AKS credentials.
    let credential_calls: Vec<String> = fleet
        .emulator()
        .ledger()
        .entries
        .into_iter()
        .filter(|e| e.operation.contains("ListClusterUserCredential"))
        .filter_map(|e| e.cluster)
        .collect();
    assert!(!credential_calls.iter().any(|c| c.ends_with("aks-dev-01")), "{credential_calls:?}");
    assert!(credential_calls.iter().any(|c| c.ends_with("aks-dev-02")), "{credential_calls:?}");
    for cluster in ["aks-dev-01", "aks-dev-02"] {
        let client = fleet.kube("dev-rg", cluster);
        assert!(fleet.secret(&client, "default", "vendor-pull").is_some(), "{cluster}");
    }
    // A wrong context is a clear error naming the cluster, not a panic.
    let broken = sandbox.env("KUBECONFIG", "/nonexistent/kubeconfig");
    let plan = broken.run(["plan"]);
    assert_clean(plan.assert_exit(1));
    assert!(plan.stdout.contains("cannot read cluster aks-dev-01"), "{plan}");
}

#[test]
fn pods_admitted_before_a_service_account_patch_are_reported_for_a_restart() {
    let fleet = demo_fleet();
    let dev1 = fleet.kube("dev-rg", "aks-dev-01");
    // Running before acrlink patches the service account: it has no pull secret.
    assert_eq!(fleet.run_pod(&dev1, "default", "legacy-web", "docker.io/library/nginx:1.27"), "Running");
    let sandbox = fleet.sandbox_with(&demo_config());
    let apply = sandbox.run(["apply", "--auto-approve"]);
    assert_clean(apply.assert_exit(0));
    let line = apply
        .stderr
        .lines()
        .find(|l| l.contains("service_account[aks-dev-01/default/default]") && l.contains("now names"))
        .unwrap_or_else(|| panic!("{apply}"));
    assert!(line.contains("need a restart") && line.contains("legacy-web"), "{line}");
}

/// A kubeconfig file with one context, as `az aks get-credentials --context NAME` would write.
fn local_kubeconfig(fleet: &Fleet, resource_group: &str, cluster: &str, context: &str) -> String {
    let emulator = fleet.emulator();
    let env = emulator.env();
    let token = emulator.state().mint_token(&env["AZURE_CLIENT_ID"], "https://management.azure.com/", 3600).unwrap();
    let url = format!(
        "{}/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{cluster}/listClusterUserCredential?api-version=2025-10-01",
        env["ACRLINK_ARM_ENDPOINT"]
    );
    let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).unwrap();
    let answer: serde_json::Value = fleet.runtime.block_on(async {
        let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        http.post(url).bearer_auth(token).header("content-length", "0").send().await.unwrap().json().await.unwrap()
    });
    use base64::Engine as _;
    let encoded = answer["kubeconfigs"][0]["value"].as_str().unwrap();
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap();
    text.replace(&format!("current-context: {cluster}"), &format!("current-context: {context}"))
        .replace(&format!("  name: {cluster}\ncurrent-context"), &format!("  name: {context}\ncurrent-context"))
}

#[test]
fn kubernetes_rbac_denials_are_clear_errors_that_stop_only_what_they_touch() {
    let fleet = demo_fleet();
    // Reading secrets is refused on aks-dev-02: the plan names the cluster and the fix.
    fleet.emulator().state().set_kube_denials("aks-dev-02", vec!["list:secrets".into()]).unwrap();
    let sandbox = fleet.sandbox_with(&demo_config());
    let plan = sandbox.run(["plan"]);
    assert_clean(plan.assert_exit(1));
    assert!(plan.stdout.contains("cannot read cluster aks-dev-02: forbidden"), "{plan}");
    assert!(plan.stdout.contains("RBAC Cluster Admin"), "{plan}");

    // Patching service accounts is refused on aks-dev-01: that change fails with a hint, the
    // rest of the fleet is applied.
    fleet.emulator().state().set_kube_denials("aks-dev-02", Vec::new()).unwrap();
    fleet.emulator().state().set_kube_denials("aks-dev-01", vec!["patch:serviceaccounts".into()]).unwrap();
    let apply = sandbox.run(["apply", "--auto-approve"]);
    assert_clean(apply.assert_exit(1));
    assert!(apply.stdout.contains("✗ service_account[aks-dev-01/default/default]"), "{apply}");
    assert!(apply.stdout.contains("hint:"), "{apply}");
    assert!(apply.stdout.contains("0 skipped") || apply.stdout.contains("1 failed"), "{apply}");
    let dev2 = fleet.kube("dev-rg", "aks-dev-02");
    assert_eq!(fleet.pull_secrets_of(&dev2, "default", "default"), vec!["vendor-pull"]);
}

impl Fleet {
    /// Regenerates a password of every acrlink token of a registry behind acrlink's back, as
    /// `az acr token credential generate` does.
    fn regenerate_token_passwords(&self, registry: &str, slot: &str) {
        let base = format!(
            "/subscriptions/{SUB}/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/{registry}"
        );
        let tokens = self.arm_get(&format!("{base}/tokens?api-version=2025-11-01"));
        let emulator = self.emulator();
        let env = emulator.env();
        let token =
            emulator.state().mint_token(&env["AZURE_CLIENT_ID"], "https://management.azure.com/", 3600).unwrap();
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).unwrap();
        let url = format!("{}{base}/generateCredentials?api-version=2025-11-01", env["ACRLINK_ARM_ENDPOINT"]);
        for acr_token in tokens["value"].as_array().into_iter().flatten() {
            let body = serde_json::json!({"tokenId": acr_token["id"], "name": slot});
            let status = self.runtime.block_on(async {
                let http = reqwest::Client::builder().add_root_certificate(ca.clone()).build().unwrap();
                http.post(&url).bearer_auth(&token).json(&body).send().await.unwrap().status()
            });
            assert!(status.is_success() || status.as_u16() == 202, "generateCredentials: {status}");
        }
    }

    /// Merges `patch` into an object behind acrlink's back, as another tool would.
    fn merge_patch<K>(&self, client: &kube::Client, namespace: &str, name: &str, patch: serde_json::Value)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api = Api::<K>::namespaced(client.clone(), namespace);
        self.runtime.block_on(api.patch(name, &PatchParams::default(), &Patch::Merge(patch))).unwrap();
    }
}

/// Saves a plan in the sandbox, asserting it has changes.
fn save_plan(sandbox: &Sandbox, name: &str) -> String {
    let plan = sandbox.run(["plan", "--detailed-exitcode", "--out", name]);
    assert_clean(plan.assert_exit(2));
    name.to_string()
}

#[test]
fn a_saved_plan_is_refused_whole_when_a_secret_service_account_or_token_changed_since() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let (dev1, dev2) = (fleet.kube("dev-rg", "aks-dev-01"), fleet.kube("dev-rg", "aks-dev-02"));
    let login = "vendorimages.azurecr.io";

    // A Secret: the plan updates both vendor Secrets; one is edited after the plan was saved.
    fleet.emulator().state().regenerate_registry_password("vendorimages", "password").unwrap();
    let plan = save_plan(&sandbox, "secrets.json");
    fleet.merge_patch::<Secret>(
        &dev1,
        "default",
        "vendor-pull",
        serde_json::json!({"metadata": {"labels": {"x": "y"}}}),
    );
    let refused = sandbox.run(["apply", &plan]);
    assert_clean(refused.assert_exit(1));
    assert!(refused.stderr.contains("secret[aks-dev-01/default/vendor-pull]: it changed since the plan"), "{refused}");
    assert!(refused.stderr.contains("nothing was changed"), "{refused}");
    assert_eq!(fleet.password_in(&dev2, "default", "vendor-pull", login).as_deref(), Some(ADMIN_CANARY), "untouched");
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));

    // A service-account entry: the plan adds it back; another tool patches the account first.
    fleet.merge_patch::<ServiceAccount>(&dev2, "default", "default", serde_json::json!({"imagePullSecrets": []}));
    let plan = save_plan(&sandbox, "accounts.json");
    fleet.merge_patch::<ServiceAccount>(
        &dev2,
        "default",
        "default",
        serde_json::json!({"imagePullSecrets": [{"name": "other-tool"}]}),
    );
    let refused = sandbox.run(["apply", &plan]);
    assert_clean(refused.assert_exit(1));
    assert!(refused.stderr.contains("service_account[aks-dev-02/default/default]"), "{refused}");
    assert_eq!(fleet.pull_secrets_of(&dev2, "default", "default"), vec!["other-tool"], "untouched");
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));

    // A token: the plan replaces a password regenerated behind acrlink's back; it is
    // regenerated once more before the apply.
    fleet.regenerate_token_passwords("toolsacr", "password1");
    let plan = save_plan(&sandbox, "tokens.json");
    fleet.regenerate_token_passwords("toolsacr", "password1");
    let before = fleet.token_passwords("toolsacr");
    let refused = sandbox.run(["apply", &plan]);
    assert_clean(refused.assert_exit(1));
    assert!(refused.stderr.contains("registry_token[toolsacr/acrlink-"), "{refused}");
    assert_eq!(fleet.token_passwords("toolsacr"), before, "no password was generated");
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert_clean(sandbox.run(["drift"]).assert_exit(0));
}

#[test]
fn graph_shows_the_unchanged_secrets_and_grants_after_an_apply() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let graph = sandbox.run(["graph"]);
    assert_clean(graph.assert_exit(0));
    for line in [
        "\"secret[aks-dev-01/default/vendor-pull]\" [shape=note];",
        "\"service_account[aks-stg-01/tools/default]\" [shape=note];",
        "\"role_assignment[aks-dev-01/contosoacr]\" [shape=ellipse];",
        "\"cluster[aks-dev-01]\" -> \"secret[aks-dev-01/default/vendor-pull]\";",
        "\"registry[contosoacr]\" -> \"role_assignment[aks-dev-01/contosoacr]\";",
    ] {
        assert!(graph.stdout.contains(line), "{line}\n{graph}");
    }
    assert!(!graph.stdout.contains("style=bold"), "nothing to change after an apply\n{graph}");
}

#[test]
fn a_secret_is_not_pruned_while_the_service_account_naming_it_could_not_be_patched() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let narrowed = demo_config().replace(
        "name = \"vendor-agent\"\nclusters = [\"env=dev\"]",
        "name = \"vendor-agent\"\nclusters = [\"aks-dev-01\"]",
    );
    fleet.emulator().state().set_kube_denials("aks-dev-02", vec!["patch:serviceaccounts".into()]).unwrap();
    let apply = fleet.sandbox_with(&narrowed).run(["apply", "--auto-approve"]);
    assert_clean(apply.assert_exit(1));
    assert!(apply.stdout.contains("✗ service_account[aks-dev-02/default/default]"), "{apply}");
    assert!(
        apply.stdout.contains(
            "- secret[aks-dev-02/default/vendor-pull] skipped because service_account[aks-dev-02/default/default] failed"
        ),
        "{apply}"
    );
    let dev2 = fleet.kube("dev-rg", "aks-dev-02");
    assert!(fleet.secret(&dev2, "default", "vendor-pull").is_some(), "the Secret the account names stays");
    assert_eq!(fleet.pull_secrets_of(&dev2, "default", "default"), vec!["vendor-pull"]);
}

#[test]
fn a_saved_plan_whose_client_secret_source_was_altered_is_refused_and_reads_nothing() {
    let fleet = demo_fleet();
    let private = "PRIVATE-not-a-client-secret-51c0";
    let partner = "[[bindings]]\nname = \"partner\"\nclusters = [\"aks-dev-01\"]\nregistries = [\"toolsacr\"]\nmethod = \"pull-secret\"\ncredential = \"service-principal\"\nclient_id = \"6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11\"\nclient_secret_file = \"partner-secret.txt\"\nnamespaces = [\"default\"]\nsecret_name = \"partner-pull\"\n";
    let demo = demo_config_with_partner_secret("client_secret_file = \"partner-secret.txt\"");
    let sandbox = fleet.sandbox_with(&format!("{demo}\n{partner}"));
    sandbox.write("partner-secret.txt", SP_CANARY);
    sandbox.write("private.txt", private);
    assert_clean(sandbox.run(["plan", "--out", "plan.json"]).assert_exit(0));
    let plan = std::fs::read_to_string(sandbox.path().join("plan.json")).unwrap();
    assert!(plan.contains("\"secret_file\": \"partner-secret.txt\""), "{plan}");
    sandbox.write(
        "plan.json",
        plan.replace("\"secret_file\": \"partner-secret.txt\"", "\"secret_file\": \"private.txt\""),
    );
    let refused = sandbox.run(["apply", "plan.json"]);
    assert_clean(refused.assert_exit(1));
    assert!(refused.stderr.contains("secret[aks-dev-01/default/partner-pull]"), "{refused}");
    assert!(refused.stderr.contains("not the one the desired-state file names"), "{refused}");
    let dev1 = fleet.kube("dev-rg", "aks-dev-01");
    assert!(fleet.secret(&dev1, "default", "partner-pull").is_none(), "nothing was written");
    assert!(!refused.stdout.contains(private) && !refused.stderr.contains(private));
}

/// A relative `client_secret_file` is read next to the file that names it (as kubeconfig and
/// compose paths are), not from wherever acrlink happens to run: the same file plans alike from
/// its own directory, from the repository root with `-c`, and in CI.
#[test]
fn a_relative_client_secret_file_is_read_beside_the_desired_state_file() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with("");
    std::fs::create_dir_all(sandbox.path().join("team")).unwrap();
    crate::support::write_config(&sandbox.path().join("team"), &demo_config());
    let plan = sandbox.run(["plan", "-c", "team/acrlink.toml", "--format", "json"]);
    assert_clean(plan.assert_exit(0));
    let secret = plan.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "secret[aks-stg-01/default/partner-pull]")
        .cloned()
        .expect("the partner's Secret is planned");
    let credentials: Vec<&serde_json::Value> =
        secret["resource"]["entries"].as_array().unwrap().iter().map(|e| &e["credential"]).collect();
    assert_eq!(credentials[0]["secret_file"], "team/partner-puller.secret", "{secret}");
    assert_clean(sandbox.run(["apply", "-c", "team/acrlink.toml", "--auto-approve"]).assert_exit(0));
    let stg = fleet.kube("staging-rg", "aks-stg-01");
    assert!(fleet.secret(&stg, "default", "partner-pull").is_some());
}

/// The addresses of a JSON plan's changes.
fn changed_addresses(plan: &Output) -> Vec<String> {
    plan.json()["changes"].as_array().unwrap().iter().map(|c| c["address"].as_str().unwrap().to_string()).collect()
}

/// Subset runs: `--target` (globs over addresses) and `--cluster` (the bindings' selectors)
/// narrow plan, apply and drift to what they select plus what that depends on; the rest of the
/// fleet is read, left alone and still planned afterwards.
#[test]
fn target_and_cluster_narrow_plan_apply_and_drift_to_what_they_select_and_its_dependencies() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with(&demo_config());
    let targeted = sandbox.run(["plan", "--format", "json", "--target", "secret[aks-stg-01/default/partner-pull]"]);
    assert_clean(targeted.assert_exit(0));
    assert_eq!(
        changed_addresses(&targeted),
        vec![
            format!("role_assignment[sp:{PARTNER}/contosoacr]"),
            "secret[aks-stg-01/default/partner-pull]".to_string()
        ],
        "the Secret and the grant it depends on"
    );
    assert!(targeted.stdout.contains("2 of 20 change(s)"), "{targeted}");

    let dev = sandbox.run(["plan", "--format", "json", "--cluster", "env=dev"]);
    let dev_changes = changed_addresses(&dev);
    assert!(!dev_changes.is_empty());
    assert!(dev_changes.iter().all(|a| a.contains("[aks-dev-0")), "{dev_changes:?}");

    let globbed = sandbox.run(["plan", "--format", "json", "--target", "role_assignment[aks-*/contosoacr]"]);
    let grants = changed_addresses(&globbed);
    assert!(
        grants.len() >= 2
            && grants.iter().all(|a| a.starts_with("role_assignment[aks-") && a.ends_with("/contosoacr]")),
        "{grants:?}"
    );

    assert_clean(sandbox.run(["apply", "--auto-approve", "--cluster", "aks-dev-01"]).assert_exit(0));
    let after = changed_addresses(&sandbox.run(["plan", "--format", "json"]));
    assert!(after.iter().all(|a| !a.contains("[aks-dev-01/")), "aks-dev-01 is done: {after:?}");
    assert!(after.iter().any(|a| a.contains("[aks-dev-02/")), "the rest is still to do: {after:?}");
    sandbox.run(["drift", "--cluster", "aks-dev-01"]).assert_exit(0);
    sandbox.run(["drift", "--cluster", "aks-dev-02"]).assert_exit(2);

    let typo = sandbox.run(["plan", "--target", "secret[{aks"]);
    typo.assert_exit(1);
    assert!(typo.stderr.contains("invalid --target"), "{typo}");
    sandbox.run(["plan", "--out", "plan.json"]).assert_exit(0);
    let saved = sandbox.run(["apply", "plan.json", "--cluster", "aks-dev-02"]);
    saved.assert_exit(1);
    assert!(saved.stderr.contains("do not apply to a saved plan"), "{saved}");
}

/// `acrlink destroy` removes everything this file's owner made (grants of both methods,
/// Secrets, service-account entries, tokens, scope maps) and nothing else: the grant made by
/// hand with `--attach-acr` and the rest of the service accounts stay. A second run has
/// nothing to do.
#[test]
fn destroy_removes_what_the_owner_made_and_nothing_else() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    let refused = sandbox.run(["destroy"]);
    refused.assert_exit(1);
    assert!(refused.stderr.contains("--auto-approve"), "no terminal, no confirmation:\n{refused}");

    let destroyed = sandbox.run(["destroy", "--auto-approve", "--color", "never"]);
    assert_clean(destroyed.assert_exit(0));
    assert!(destroyed.stderr.contains("Plan: 0 to add, 4 to change, 14 to destroy."), "{destroyed}");
    let managed: Vec<_> = fleet
        .emulator()
        .state()
        .role_assignments()
        .into_iter()
        .filter(|a| a.description.as_deref().is_some_and(|d| d.contains("acrlink")))
        .collect();
    assert!(managed.is_empty(), "{managed:?}");
    assert!(
        fleet.emulator().state().role_assignments().iter().any(|a| a.name == "9a1d3f5e-0000-4000-8000-00000000a11a"),
        "the hand-made grant stays"
    );
    let (dev1, stg) = (fleet.kube("dev-rg", "aks-dev-01"), fleet.kube("staging-rg", "aks-stg-01"));
    for (client, namespace, name) in [
        (&dev1, "default", "vendor-pull"),
        (&stg, "default", "tools-pull"),
        (&stg, "tools", "tools-pull"),
        (&stg, "default", "partner-pull"),
    ] {
        assert!(fleet.secret(client, namespace, name).is_none(), "{namespace}/{name} is gone");
    }
    assert!(fleet.pull_secrets_of(&dev1, "default", "default").is_empty());
    assert!(fleet.pull_secrets_of(&stg, "default", "default").is_empty());
    assert!(fleet.token_passwords("toolsacr").is_empty(), "the token is gone");
    assert_clean(sandbox.run(["destroy", "--auto-approve"]).assert_exit(0));
    // The file still wants it all: the next plan puts it back.
    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(2));
}

/// A kubeconfig whose only context points at a port nothing listens on.
const DEAD_KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: dead\n  context: {cluster: dead, user: u}\ncurrent-context: dead\nusers:\n- name: u\n  user: {token: abc}\n";

fn dead_cluster_sandbox(fleet: &Fleet) -> Sandbox {
    let config = format!(
        "version = 1\n[azure]\nsubscription_id = \"{SUB}\"\n[registries.vendorimages]\nresource_group = \"platform-rg\"\n\
         [clusters.aks-dev-01]\nresource_group = \"dev-rg\"\nkube_context = \"dead\"\n[[bindings]]\nclusters = [\"aks-dev-01\"]\n\
         registries = [\"vendorimages\"]\nmethod = \"pull-secret\"\ncredential = \"admin\"\nnamespaces = [\"default\"]\n"
    );
    let sandbox = fleet.sandbox_with(&config).env("ACRLINK_RETRY_BUDGET_SECONDS", "1");
    let kubeconfig = sandbox.write("kubeconfig", DEAD_KUBECONFIG);
    sandbox.env("KUBECONFIG", kubeconfig.to_str().unwrap())
}

#[test]
fn an_unreachable_api_server_is_one_error_that_names_it_and_no_library_log_lines() {
    let fleet = demo_fleet();
    let plan = dead_cluster_sandbox(&fleet).run(["plan"]);
    assert_clean(plan.assert_exit(1));
    assert!(!plan.stderr.contains("kube_client"), "no library log lines without -v:\n{plan}");
    assert!(plan.stdout.contains("cannot read cluster aks-dev-01"), "{plan}");
    assert!(plan.stdout.contains("https://127.0.0.1:1"), "the error names the server it could not reach:\n{plan}");
}

#[test]
fn a_binding_blocked_by_a_foreign_secret_is_drift_and_a_plan_error_never_all_clear() {
    let fleet = demo_fleet();
    let dev1 = fleet.kube("dev-rg", "aks-dev-01");
    // `kubectl create secret docker-registry vendor-pull` by hand, before acrlink's first apply.
    let by_hand = Secret {
        metadata: kube::api::ObjectMeta { name: Some("vendor-pull".into()), ..Default::default() },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        string_data: Some([(".dockerconfigjson".to_string(), r#"{"auths":{}}"#.to_string())].into()),
        ..Default::default()
    };
    fleet
        .runtime
        .block_on(Api::<Secret>::namespaced(dev1.clone(), "default").create(&PostParams::default(), &by_hand))
        .unwrap();
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(1));
    let blocked = "secret[aks-dev-01/default/vendor-pull]";

    let drift = sandbox.run(["drift"]);
    assert_clean(drift.assert_exit(2));
    assert!(drift.stdout.contains("Blocked"), "listed as blocked: {drift}");
    assert!(drift.stdout.contains(blocked) && drift.stdout.contains("adopt = true"), "{drift}");
    assert!(!drift.stdout.contains("No drift"), "{drift}");
    let json = sandbox.run(["drift", "--format", "json"]);
    assert_clean(json.assert_exit(2));
    assert_eq!(json.json()["blocked"][0]["subject"], blocked, "{json}");

    let plan = sandbox.run(["plan"]);
    assert_clean(plan.assert_exit(1));
    assert!(plan.stdout.contains("Errors") && plan.stdout.contains(blocked), "{plan}");
    let markdown = sandbox.run(["plan", "--format", "markdown"]);
    assert_clean(markdown.assert_exit(1));
    assert!(markdown.stdout.contains(blocked) && !markdown.stdout.contains("No changes"), "{markdown}");
}

/// Two applies that rotate the same token at the same moment both generate into the same slot,
/// so the second invalidates the first's password. Whatever the interleaving, neither may exit
/// 0 having left a Secret whose password the registry refuses, and afterwards every Secret works.
#[test]
fn concurrent_applies_rotating_one_token_never_leave_a_dead_password() {
    let fleet = demo_fleet();
    assert_clean(fleet.sandbox_with(&demo_config()).run(["apply", "--auto-approve"]).assert_exit(0));
    let staging = fleet.kube("staging-rg", "aks-stg-01");
    let tools = "toolsacr.azurecr.io";
    for round in 0..20 {
        // Each round's policy makes the password just written due for rotation again.
        let policy = format!("token_ttl = \"{}d\"\nrotate_before = \"{}d\"", 100 + 2 * round, 99 + 2 * round);
        let config = demo_config().replace("token_ttl = \"90d\"\nrotate_before = \"30d\"", &policy);
        let (a, b) = (fleet.sandbox_with(&config), fleet.sandbox_with(&config));
        let (first, second) = std::thread::scope(|scope| {
            let first = scope.spawn(|| a.run(["apply", "--auto-approve"]));
            let second = scope.spawn(|| b.run(["apply", "--auto-approve"]));
            (first.join().unwrap(), second.join().unwrap())
        });
        for output in [&first, &second] {
            assert_clean(output);
            assert!(matches!(output.code, Some(0 | 1)), "round {round}: {output}");
        }
        let works = |namespace: &str| {
            let (user, password) = fleet.credential_in(&staging, namespace, "tools-pull", tools).unwrap();
            fleet.registry_accepts(tools, "tools/debug", &user, &password)
        };
        let dead: Vec<&str> = ["tools", "default"].into_iter().filter(|ns| !works(ns)).collect();
        if first.code == Some(0) && second.code == Some(0) {
            assert!(dead.is_empty(), "round {round}: both applies exited 0 but {dead:?} hold a dead password");
        }
        // A run that failed said so; the next apply repairs what it left.
        if !dead.is_empty() {
            assert_clean(fleet.sandbox_with(&config).run(["apply", "--auto-approve"]).assert_exit(0));
            let still: Vec<&str> = ["tools", "default"].into_iter().filter(|ns| !works(ns)).collect();
            assert!(still.is_empty(), "round {round}: {still:?} still hold a dead password after a repair");
        }
    }
}

/// kill -9 at random points of 20 applies that rotate a registry token and write its Secrets
/// (and grant roles), then one apply: the fleet converges, with one token, no leftover, and
/// every Secret holding a password the registry accepts.
#[test]
fn a_kill_loop_over_rotating_applies_always_converges() {
    let fleet = demo_fleet();
    fleet.emulator().set_faults(acrlink_emulator::Faults { latency_ms: 20, jitter_ms: 20, ..Default::default() });
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let mut config = demo_config();
    for round in 0..20 {
        let policy = format!("token_ttl = \"{}d\"\nrotate_before = \"{}d\"", 100 + 2 * round, 99 + 2 * round);
        config = demo_config().replace("token_ttl = \"90d\"\nrotate_before = \"30d\"", &policy);
        let sandbox = fleet.sandbox_with(&config);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_acrlink"))
            .args(["apply", "--auto-approve"])
            .current_dir(sandbox.path())
            .envs(fleet.emulator().env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // xorshift: a different point of the apply each round, from planning to the last write.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(100 + seed % 1500));
        child.kill().unwrap();
        let _ = child.wait();
    }
    fleet.emulator().set_faults(acrlink_emulator::Faults::default());
    let sandbox = fleet.sandbox_with(&config);
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(0));
    let tokens = fleet.arm_get(&format!(
        "/subscriptions/{SUB}/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/toolsacr/tokens?api-version=2025-11-01"
    ));
    let names: Vec<&str> = tokens["value"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("acrlink-")).count(), 1, "one token, no leftover: {names:?}");
    let staging = fleet.kube("staging-rg", "aks-stg-01");
    let tools = "toolsacr.azurecr.io";
    for namespace in ["tools", "default"] {
        let (user, password) = fleet.credential_in(&staging, namespace, "tools-pull", tools).unwrap();
        assert!(fleet.registry_accepts(tools, "tools/debug", &user, &password), "{namespace}: a dead password");
    }
}

/// The Entra token acrlink brings to an Entra-integrated cluster's API lives as long as Entra
/// says (here 2 s): a run that outlives it gets a fresh one instead of 401s.
#[test]
fn entra_tokens_for_cluster_apis_are_refreshed_when_a_run_outlives_them() {
    let world = std::fs::read_to_string(repo_root().join(DEMO_WORLD))
        .unwrap()
        .replace(
            "name = \"aks-dev-02\"\nlocation = \"westeurope\"\n",
            "name = \"aks-dev-02\"\nlocation = \"westeurope\"\nlocal_accounts = false\naad = true\n",
        )
        .replace("[settings]\n", "[settings]\ntoken_lifetime_seconds = 2\n");
    let fleet = Fleet::start(&world);
    fleet.emulator().set_faults(acrlink_emulator::Faults { latency_ms: 250, ..Default::default() });
    let sandbox = fleet.sandbox_with(&demo_config());
    let apply = sandbox.run(["apply", "--auto-approve"]);
    assert_clean(&apply);
    assert_eq!(apply.code, Some(0), "{apply}");
    fleet.emulator().set_faults(acrlink_emulator::Faults::default());
    let client = fleet.kube("dev-rg", "aks-dev-02");
    assert!(fleet.secret(&client, "default", "vendor-pull").is_some());
    assert_eq!(fleet.pull_secrets_of(&client, "default", "default"), vec!["vendor-pull"]);
}

/// listClusterUserCredential is an ARM POST: an Entra-integrated cluster's kubeconfig (server
/// and CA, no credential) is kept between runs, so a second plan asks AKS for it no more; a
/// kept one whose server no longer answers is dropped and fetched again. Local-account
/// clusters' kubeconfigs, which hold a credential, are never written.
#[test]
fn entra_cluster_kubeconfigs_are_kept_between_runs_and_dropped_when_stale() {
    let world = std::fs::read_to_string(repo_root().join(DEMO_WORLD)).unwrap().replace(
        "name = \"aks-dev-02\"\nlocation = \"westeurope\"\n",
        "name = \"aks-dev-02\"\nlocation = \"westeurope\"\nlocal_accounts = false\naad = true\n",
    );
    let fleet = Fleet::start(&world);
    let sandbox = fleet.sandbox_with(&demo_config());
    let credential_calls = |fleet: &Fleet| -> Vec<String> {
        let entries = fleet.emulator().ledger().entries;
        let calls = entries.into_iter().filter(|e| e.operation.contains("ListClusterUserCredential"));
        calls.filter_map(|e| e.cluster).map(|c| c.rsplit('/').next().unwrap_or_default().to_string()).collect()
    };
    assert_clean(sandbox.run(["plan"]).assert_exit(0));
    assert!(credential_calls(&fleet).contains(&"aks-dev-02".to_string()));
    let kept: Vec<_> = std::fs::read_dir(sandbox.path().join(".cache/kubeconfigs")).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1, "only the Entra cluster's kubeconfig is kept");
    let text = std::fs::read_to_string(kept[0].path()).unwrap();
    assert!(text.contains("exec") && !text.contains("client-key-data") && !text.contains("\"token\""), "{text}");

    fleet.emulator().reset_ledger();
    assert_clean(sandbox.run(["plan"]).assert_exit(0));
    let second = credential_calls(&fleet);
    assert!(!second.contains(&"aks-dev-02".to_string()), "no POST for the kept cluster: {second:?}");
    assert!(second.contains(&"aks-dev-01".to_string()), "local-account clusters still ask: {second:?}");

    // The cluster's API moved: the kept server refuses, so AKS is asked again and the plan holds.
    let mut entry: serde_json::Value = serde_json::from_str(&text).unwrap();
    entry["kubeconfig"]["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9".into();
    std::fs::write(kept[0].path(), entry.to_string()).unwrap();
    fleet.emulator().reset_ledger();
    assert_clean(sandbox.run(["plan"]).assert_exit(0));
    assert!(credential_calls(&fleet).contains(&"aks-dev-02".to_string()));
    assert!(!std::fs::read_to_string(kept[0].path()).unwrap().contains("127.0.0.1:9"), "kept afresh");
}

const PARTNER: &str = "6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11";
const PARTNER_BINDING: &str = "[[bindings]]\nname = \"partner\"\nclusters = [\"aks-dev-01\"]\nregistries = [\"toolsacr\"]\nmethod = \"pull-secret\"\ncredential = \"service-principal\"\nclient_id = \"6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11\"\nclient_secret_env = \"PARTNER_SECRET\"\nnamespaces = [\"default\"]\nsecret_name = \"partner-pull\"\n";

/// The guide's third way in (`az ad sp create-for-rbac --role acrpull`): a service-principal
/// binding also grants its principal pull on the registry, found in Microsoft Graph by client
/// id, before the Secrets are written; without that grant every Secret it writes is useless.
/// Removing the binding prunes the grant.
#[test]
fn a_service_principal_binding_grants_its_principal_pull_before_writing_secrets() {
    let fleet = demo_fleet();
    let config =
        format!("{}\n{PARTNER_BINDING}", demo_config_with_partner_secret("client_secret_env = \"PARTNER_SECRET\""));
    let sandbox = fleet.sandbox_with(&config).env("PARTNER_SECRET", "partner-demo-secret");
    let plan = sandbox.run(["plan", "--format", "json"]);
    assert_clean(&plan);
    assert_eq!(plan.code, Some(0), "{plan}");
    let changes = plan.json()["changes"].as_array().unwrap().clone();
    let grant = format!("role_assignment[sp:{PARTNER}/toolsacr]");
    let planned = changes.iter().find(|c| c["address"] == grant.as_str()).expect("the principal's grant");
    assert_eq!(planned["action"], "create");
    assert_eq!(planned["resource"]["principal_id"], "5e1f7a20-3c4d-4b6e-9a8b-7c6d5e4f3a2b", "from Graph");
    let secret = changes.iter().find(|c| c["address"] == "secret[aks-dev-01/default/partner-pull]").unwrap();
    assert!(secret["depends_on"].as_array().unwrap().iter().any(|d| d == grant.as_str()), "grant first: {secret}");

    let login = "toolsacr.azurecr.io";
    assert!(!fleet.registry_accepts(login, "tools/debug", PARTNER, "partner-demo-secret"), "no grant yet");
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    assert!(
        fleet.registry_accepts(login, "tools/debug", PARTNER, "partner-demo-secret"),
        "the Secret's principal pulls"
    );
    assert_clean(sandbox.run(["plan", "--detailed-exitcode"]).assert_exit(0));

    // The binding goes: its grant goes with it, and nothing else of the demo.
    let without = fleet.sandbox_with(&demo_config());
    let pruned = without.run(["plan", "--format", "json"]);
    let deletes: Vec<String> = pruned.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete" && c["address"].as_str().unwrap().starts_with("role_assignment"))
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deletes, vec![grant.clone()], "{pruned}");
    assert_clean(without.run(["apply", "--auto-approve"]).assert_exit(0));
    assert!(!fleet.registry_accepts(login, "tools/debug", PARTNER, "partner-demo-secret"));
}

/// A grant `az ad sp create-for-rbac --role acrpull --scopes <registry>` made is adopted, not
/// duplicated, and never pruned; on an ABAC registry the principal gets the repository role.
#[test]
fn a_service_principals_existing_grant_is_adopted_and_abac_registries_get_the_repository_role() {
    let fleet = demo_fleet();
    let toolsacr = format!(
        "/subscriptions/{SUB}/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/toolsacr"
    );
    fleet
        .emulator()
        .state()
        .create_role_assignment(acrlink_emulator::NewRoleAssignment {
            name: Some("6c6c6c6c-0000-4000-8000-000000000001".into()),
            scope: toolsacr,
            role: "AcrPull".into(),
            principal_id: "5e1f7a20-3c4d-4b6e-9a8b-7c6d5e4f3a2b".into(),
            principal_type: Some("ServicePrincipal".into()),
            description: None,
        })
        .unwrap();
    let abac = PARTNER_BINDING
        .replace("name = \"partner\"", "name = \"partner-abac\"")
        .replace("registries = [\"toolsacr\"]", "registries = [\"paymentsabac\"]");
    let abac = abac.replace("clusters = [\"aks-dev-01\"]", "clusters = [\"team=payments\"]");
    let config = format!(
        "{}\n{PARTNER_BINDING}\n{abac}",
        demo_config_with_partner_secret("client_secret_env = \"PARTNER_SECRET\"")
    );
    let sandbox = fleet.sandbox_with(&config).env("PARTNER_SECRET", "partner-demo-secret");
    let plan = sandbox.run(["plan", "--format", "json"]);
    assert_eq!(plan.code, Some(0), "{plan}");
    let json = plan.json();
    let address = |registry: &str| format!("role_assignment[sp:{PARTNER}/{registry}]");
    let changes = json["changes"].as_array().unwrap();
    assert!(!changes.iter().any(|c| c["address"] == address("toolsacr").as_str()), "no duplicate grant");
    let unchanged = json["unchanged"].as_array().unwrap();
    assert!(unchanged.iter().any(|u| u["address"] == address("toolsacr").as_str()), "{json}");
    let abac_grant = changes.iter().find(|c| c["address"] == address("paymentsabac").as_str()).expect("ABAC grant");
    assert_eq!(abac_grant["resource"]["role_name"], "Container Registry Repository Reader");
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));

    // Without the bindings, only the grant acrlink made goes; create-for-rbac's stays.
    let pruned = fleet.sandbox_with(&demo_config()).run(["plan", "--format", "json"]);
    let deletes: Vec<String> = pruned.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete" && c["address"].as_str().unwrap().starts_with("role_assignment"))
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deletes, vec![address("paymentsabac")], "{pruned}");
}

/// `-vvv` adds a line per ARM answer and per Kubernetes call to what `-vv` prints (bodies never).
#[test]
fn trace_verbosity_adds_arm_and_kubernetes_request_lines() {
    let fleet = demo_fleet();
    let sandbox = fleet.sandbox_with(&demo_config());
    let debug = sandbox.run(["-vv", "plan"]);
    let trace = sandbox.run(["-vvv", "plan"]);
    assert_clean(&trace);
    for line in ["ARM response", "Kubernetes request", "Kubernetes response"] {
        assert!(!debug.stderr.contains(line), "-vv already prints {line:?}");
        assert!(trace.stderr.contains(line), "-vvv prints {line:?}:\n{}", trace.stderr);
    }
    let filtered = fleet.sandbox_with(&demo_config()).env("ACRLINK_LOG", "acrlink=trace").run(["plan"]);
    assert!(filtered.stderr.contains("ARM response"), "ACRLINK_LOG sets the filter:\n{}", filtered.stderr);
}

/// Issue 12, item 4: in-place changes of pull-secret bindings show what changes, old → new:
/// a scope map's actions, a service account's `imagePullSecrets`, a Secret's registries with
/// the kind and fingerprint of each credential, never the credential.
#[test]
fn updates_show_scope_map_actions_service_account_entries_and_secret_fingerprints_old_and_new() {
    let fleet = demo_fleet();
    let client = fleet.kube("dev-rg", "aks-dev-02");
    let sandbox = fleet.sandbox_with(&demo_config());
    assert_clean(sandbox.run(["apply", "--auto-approve"]).assert_exit(0));
    // Behind acrlink's back: another tool's entry replaces acrlink's, and the admin password is renewed.
    fleet
        .runtime
        .block_on(Api::<ServiceAccount>::namespaced(client.clone(), "default").patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"imagePullSecrets": [{"name": "other-tool"}]})),
        ))
        .unwrap();
    let renewed = fleet.emulator().state().regenerate_registry_password("vendorimages", "password").unwrap();
    let wider = demo_config().replace("repositories = [\"tools/*\"]", "repositories = [\"tools/*\", \"base/*\"]");
    let sandbox = fleet.sandbox_with(&wider);

    let text = sandbox.run(["--color", "never", "plan"]);
    assert_clean(text.assert_exit(0));
    assert!(!text.stdout.contains(&renewed) && !text.stderr.contains(&renewed), "{text}");
    let has = |needle: &str| text.stdout.lines().any(|l| l.contains(needle));
    assert!(has("actions:") && has("+ repositories/base/*/content/read"), "{text}");
    assert!(has("    repositories/tools/*/content/read"), "unchanged actions are context: {text}");
    assert!(has("imagePullSecrets:") && has("    other-tool") && has("+ vendor-pull"), "{text}");
    assert!(has("registries:"), "{text}");
    let entry = |sign: &str| {
        text.stdout.lines().find(|l| l.trim_start().starts_with(sign) && l.contains("vendorimages.azurecr.io (admin;"))
    };
    let (old, new) = (entry("- ").expect("the old entry"), entry("+ ").expect("the new entry"));
    assert_ne!(old.split("fingerprint").nth(1), new.split("fingerprint").nth(1), "{text}");

    let json = sandbox.run(["plan", "--format", "json"]);
    assert_clean(json.assert_exit(0));
    assert!(!json.stdout.contains(&renewed));
    let plan = json.json();
    let change = |address: &str| {
        plan["changes"].as_array().unwrap().iter().find(|c| c["address"] == address).cloned().unwrap_or_default()
    };
    let secret = change("secret[aks-dev-02/default/vendor-pull]");
    let (before, after) = (&secret["before"]["registries"][0], &secret["after"]["registries"][0]);
    assert_eq!((&before["credential"], &after["credential"]), (&"admin".into(), &"admin".into()), "{json}");
    assert_ne!(before["fingerprint"], after["fingerprint"], "{json}");
    let account = change("service_account[aks-dev-02/default/default]");
    assert_eq!(account["before"]["image_pull_secrets"], serde_json::json!(["other-tool"]), "{json}");
    assert_eq!(account["after"]["image_pull_secrets"], serde_json::json!(["other-tool", "vendor-pull"]), "{json}");
    let scope_map = plan["changes"].as_array().unwrap().iter().find(|c| c["resource"]["kind"] == "scope_map").unwrap();
    assert_eq!(scope_map["action"], "update");
    assert_eq!(scope_map["after"]["actions"].as_array().unwrap().len(), 4, "{json}");
}

/// An identity that may not read the directory: Microsoft Graph refuses the service
/// principal's lookup, and the plan's error names both ways out; `principal_object_id` on the
/// binding needs no lookup at all.
#[test]
fn a_refused_graph_lookup_is_an_error_naming_both_ways_out() {
    let world = std::fs::read_to_string(repo_root().join(DEMO_WORLD))
        .unwrap()
        .replace("default_client = true\n", "default_client = true\nno_directory_read = true\n");
    let fleet = Fleet::start(&world);
    let config =
        format!("{}\n{PARTNER_BINDING}", demo_config_with_partner_secret("client_secret_env = \"PARTNER_SECRET\""));
    let refused = fleet.sandbox_with(&config).env("PARTNER_SECRET", "partner-demo-secret").run(["plan"]);
    assert_clean(refused.assert_exit(1));
    assert!(refused.stdout.contains("Authorization_RequestDenied"), "{refused}");
    assert!(
        refused.stdout.contains("Application.Read.All") && refused.stdout.contains("principal_object_id"),
        "{refused}"
    );
    let given = config.replace(
        "secret_name = \"partner-pull\"\n",
        "secret_name = \"partner-pull\"\nprincipal_object_id = \"5e1f7a20-3c4d-4b6e-9a8b-7c6d5e4f3a2b\"\n",
    );
    let planned = fleet.sandbox_with(&given).env("PARTNER_SECRET", "partner-demo-secret").run(["plan"]);
    assert_clean(planned.assert_exit(0));
    assert!(
        planned.stdout.contains(&format!("role_assignment[sp:{PARTNER}/toolsacr]"))
            || planned.stderr.contains(&format!("role_assignment[sp:{PARTNER}/toolsacr]")),
        "{planned}"
    );
}
