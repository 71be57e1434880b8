//! The kubelets: Pods pull from emulated registries through pull secrets or the kubelet
//! identity, fail with ErrImagePull / ImagePullBackOff and kubelet-like Events otherwise, and
//! retry with back-off; plus the end-to-end story without any acrlink engine.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::kube_support::*;
use crate::support::*;

pub const KUBELET_A: &str = "c0000000-0000-0000-0000-00000000000a";

/// Two clusters, a legacy and an ABAC registry, quick kubelets and a short propagation delay.
pub const PULL_WORLD: &str = r#"
[tenant]
id = "72f988bf-86f1-41af-91ab-2d7cd011db47"

[settings]
lro = { mode = "sync" }
rbac_propagation_seconds = 0.8
kubelet = { pull_delay_ms = 20, backoff_initial_ms = 200, backoff_max_ms = 400 }

[[subscriptions]]
id = "11111111-1111-1111-1111-111111111111"
name = "prod"

[[resource_groups]]
subscription = "prod"
name = "rg"
location = "westeurope"

[[clusters]]
subscription = "prod"
resource_group = "rg"
name = "aks-a"
kubelet_identity = { client_id = "e0000000-0000-0000-0000-00000000000a", object_id = "c0000000-0000-0000-0000-00000000000a" }

[[clusters]]
subscription = "prod"
resource_group = "rg"
name = "aks-b"

[[registries]]
subscription = "prod"
resource_group = "rg"
name = "acrapp"
admin_user_enabled = true
admin_passwords = ["admin-one", "admin-two"]
repositories = { "team/app" = ["1.0"] }

[[registries]]
subscription = "prod"
resource_group = "rg"
name = "acrabac"
role_assignment_mode = "AbacRepositoryPermissions"
repositories = { "team-b/api" = ["2.0"], "team-c/job" = ["1"] }

[[principals]]
name = "acrlink"
object_id = "b0000000-0000-0000-0000-000000000001"
client_id = "a0000000-0000-0000-0000-000000000001"
secrets = ["s3cret"]
default_client = true
roles = [{ role = "Owner", scope = "/subscriptions/11111111-1111-1111-1111-111111111111" }]
"#;

pub fn registry_id(name: &str) -> String {
    format!("/subscriptions/{PROD}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/{name}")
}

pub fn pod(name: &str, image: &str, pull_secrets: &[&str]) -> Value {
    let mut pod = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": image}]}});
    if !pull_secrets.is_empty() {
        pod["spec"]["imagePullSecrets"] = json!(pull_secrets.iter().map(|s| json!({"name": s})).collect::<Vec<_>>());
    }
    pod
}

/// A docker-registry Secret as `kubectl create secret docker-registry` builds it.
pub fn pull_secret(name: &str, server: &str, user: &str, password: &str) -> Value {
    let auth = STANDARD.encode(format!("{user}:{password}"));
    let config = json!({"auths": {server: {"username": user, "password": password, "auth": auth}}});
    json!({"metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
           "data": {".dockerconfigjson": STANDARD.encode(config.to_string())}})
}

/// The first container's waiting reason, or `Running`.
pub fn pod_state(pod: &Value) -> String {
    let status = &pod["status"]["containerStatuses"][0]["state"];
    if status["running"].is_object() {
        return "Running".into();
    }
    status["waiting"]["reason"].as_str().unwrap_or("Pending").to_string()
}

/// Polls a Pod until its state is `wanted`; returns the Pod.
pub async fn wait_for(kube: &Kube, ns: &str, name: &str, wanted: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let pod = kube.get(&format!("/api/v1/namespaces/{ns}/pods/{name}")).await.body;
        if pod_state(&pod) == wanted {
            return pod;
        }
        assert!(Instant::now() < deadline, "pod {ns}/{name} never became {wanted}: {}", pod["status"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn events(kube: &Kube, ns: &str, pod: &str) -> Vec<(String, String, String)> {
    let list = kube.get(&format!("/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3D{pod}")).await;
    list.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub async fn create(kube: &Kube, ns: &str, resource: &str, body: &Value) {
    let answer = kube.post(&format!("/api/v1/namespaces/{ns}/{resource}"), body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer}");
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn public_images_run_and_missing_images_back_off() {
    let env = start_world(PULL_WORLD).await;
    let kube = Kube::connect(&env, PROD, "rg", "aks-a").await;
    create(&kube, "default", "pods", &pod("web", "nginx:1.27", &[])).await;
    let running = wait_for(&kube, "default", "web", "Running", WAIT).await;
    assert_eq!(running["status"]["phase"], "Running");
    assert!(running["spec"]["nodeName"].as_str().is_some_and(|n| n.starts_with("aks-nodepool1-")));
    let reasons: Vec<String> = events(&kube, "default", "web").await.into_iter().map(|e| e.1).collect();
    assert_eq!(reasons, ["Pulling", "Pulled", "Created", "Started"].map(String::from));

    // The admin secret authorizes; the tag does not exist.
    create(&kube, "default", "secrets", &pull_secret("admin", "acrapp.azurecr.io", "acrapp", "admin-one")).await;
    create(&kube, "default", "pods", &pod("ghost", "acrapp.azurecr.io/team/app:9.9", &["admin"])).await;
    let failed = wait_for(&kube, "default", "ghost", "ErrImagePull", WAIT).await;
    let message = failed["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        message,
        "rpc error: code = NotFound desc = failed to pull and unpack image \"acrapp.azurecr.io/team/app:9.9\": failed to resolve reference \"acrapp.azurecr.io/team/app:9.9\": acrapp.azurecr.io/team/app:9.9: not found"
    );
    assert_eq!(failed["status"]["phase"], "Pending");
    let backoff = wait_for(&kube, "default", "ghost", "ImagePullBackOff", WAIT).await;
    assert_eq!(
        backoff["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "Back-off pulling image \"acrapp.azurecr.io/team/app:9.9\""
    );
    let seen = events(&kube, "default", "ghost").await;
    assert!(
        seen.contains(&(
            "Warning".into(),
            "Failed".into(),
            format!("Failed to pull image \"acrapp.azurecr.io/team/app:9.9\": {message}")
        )),
        "{seen:?}"
    );
    assert!(seen.contains(&("Warning".into(), "Failed".into(), "Error: ErrImagePull".into())));
    assert!(seen.contains(&(
        "Normal".into(),
        "BackOff".into(),
        "Back-off pulling image \"acrapp.azurecr.io/team/app:9.9\"".into()
    )));
    assert!(seen.contains(&("Warning".into(), "Failed".into(), "Error: ImagePullBackOff".into())));
    // It keeps retrying: the Pulling event repeats.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let list =
        kube.get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dghost,reason%3DPulling").await;
    assert!(list.body["items"][0]["count"].as_u64().unwrap_or(0) >= 2, "{}", list.body);
}

#[tokio::test]
async fn abac_registries_ignore_acr_pull_and_honour_repository_conditions() {
    let env = start_world(PULL_WORLD).await;
    let kube = Kube::connect(&env, PROD, "rg", "aks-a").await;
    let grant = |role: &str, condition: Option<&str>| {
        let mut body = json!({"properties": {"roleDefinitionId": format!("/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                                             "principalId": KUBELET_A, "principalType": "ServicePrincipal"}});
        if let Some(c) = condition {
            body["properties"]["condition"] = json!(c);
            body["properties"]["conditionVersion"] = json!("2.0");
        }
        body
    };
    let at = |name: &str| {
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01",
            registry_id("acrabac")
        )
    };
    let put = env.put(&at("f0000000-0000-0000-0000-000000000001"), &grant(ACR_PULL, None)).await;
    assert_eq!(put.status, StatusCode::CREATED, "{put}");
    tokio::time::sleep(Duration::from_millis(900)).await;
    create(&kube, "default", "pods", &pod("b", "acrabac.azurecr.io/team-b/api:2.0", &[])).await;
    let failed = wait_for(&kube, "default", "b", "ErrImagePull", WAIT).await;
    assert!(
        failed["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("401 Unauthorized"))
    );

    let condition = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team-b/'))";
    let put = env.put(&at("f0000000-0000-0000-0000-000000000002"), &grant(REPOSITORY_READER, Some(condition))).await;
    assert_eq!(put.status, StatusCode::CREATED, "{put}");
    wait_for(&kube, "default", "b", "Running", WAIT).await;
    create(&kube, "default", "pods", &pod("c", "acrabac.azurecr.io/team-c/job:1", &[])).await;
    wait_for(&kube, "default", "c", "ErrImagePull", WAIT).await;
}

pub const REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";

/// The issue's end-to-end story, with no acrlink engine: a pull fails; an AcrPull assignment
/// made through ARM makes it succeed after the propagation delay; admin credentials in a pull
/// secret make another cluster pull; rotating the admin password breaks new pulls.
#[tokio::test]
async fn end_to_end_pulls_follow_grants_secrets_and_rotation() {
    let env = start_world(PULL_WORLD).await;
    let a = Kube::connect(&env, PROD, "rg", "aks-a").await;
    let b = Kube::connect(&env, PROD, "rg", "aks-b").await;
    let image = "acrapp.azurecr.io/team/app:1.0";

    a.create_namespace("shop").await;
    create(&a, "shop", "pods", &pod("api", image, &[])).await;
    let failed = wait_for(&a, "shop", "api", "ErrImagePull", WAIT).await;
    assert!(
        failed["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed to fetch oauth token") && m.ends_with("401 Unauthorized")),
        "{}",
        failed["status"]
    );
    wait_for(&a, "shop", "api", "ImagePullBackOff", WAIT).await;

    // Grant AcrPull to aks-a's kubelet identity through ARM, as acrlink would.
    let assignment = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/f0000000-0000-0000-0000-0000000000e2?api-version=2022-04-01",
        registry_id("acrapp")
    );
    let granted_at = Instant::now();
    let put = env
        .put(
            &assignment,
            &json!({"properties": {"roleDefinitionId": format!("/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"),
                                   "principalId": KUBELET_A, "principalType": "ServicePrincipal"}}),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put}");
    wait_for(&a, "shop", "api", "Running", WAIT).await;
    let waited = granted_at.elapsed();
    assert!(waited >= Duration::from_millis(800), "ran after {waited:?}, before the 0.8 s propagation delay");

    // aks-b has no grant: an admin pull secret on the default ServiceAccount makes it pull.
    b.create_namespace("shop").await;
    create(&b, "shop", "secrets", &pull_secret("acr-admin", "https://acrapp.azurecr.io", "acrapp", "admin-one")).await;
    create(&b, "shop", "pods", &pod("no-secret", image, &["typo"])).await;
    wait_for(&b, "shop", "no-secret", "ErrImagePull", WAIT).await;
    let seen = events(&b, "shop", "no-secret").await;
    assert!(
        seen.contains(&(
            "Warning".into(),
            "FailedToRetrieveImagePullSecret".into(),
            "Unable to retrieve some image pull secrets (typo); attempting to pull the image may not succeed.".into()
        )),
        "{seen:?}"
    );
    let patched = b
        .patch(
            "/api/v1/namespaces/shop/serviceaccounts/default",
            "application/strategic-merge-patch+json",
            &json!({"imagePullSecrets": [{"name": "acr-admin"}]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    create(&b, "shop", "pods", &pod("with-secret", image, &[])).await;
    let running = wait_for(&b, "shop", "with-secret", "Running", WAIT).await;
    assert_eq!(running["spec"]["imagePullSecrets"], json!([{"name": "acr-admin"}]), "copied at admission");

    // Rotating the admin password: running Pods keep running, new pulls fail.
    let rotated = env
        .post(
            &format!("{}/regenerateCredential?api-version=2025-11-01", registry_id("acrapp")),
            Some(&json!({"name": "password"})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    create(&b, "shop", "pods", &pod("after-rotation", image, &[])).await;
    let broken = wait_for(&b, "shop", "after-rotation", "ErrImagePull", WAIT).await;
    assert!(
        broken["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("401 Unauthorized"))
    );
    assert_eq!(pod_state(&b.get("/api/v1/namespaces/shop/pods/with-secret").await.body), "Running");

    let ledger = env.emulator.ledger();
    assert!(ledger.count_cluster("aks-a") > 0 && ledger.count_cluster("aks-b") > 0);
    let admin = env.admin(Method::GET, "/ledger", None).await;
    let created = admin.body["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["operation"] == "createCoreV1NamespacedPod" && e["cluster"] == "aks-b")
        .map(|e| e["count"].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(created, 3, "the admin ledger counts per cluster and route");
    let pods = env.emulator.state().kube_objects("aks-b", "pods", Some("shop")).expect("pods");
    assert_eq!(pods.len(), 3);
    let secrets = env.admin(Method::GET, "/clusters/aks-b/objects/secrets?namespace=shop", None).await;
    assert_eq!(secrets.body[0]["metadata"]["name"], "acr-admin");
    assert_eq!(env.admin(Method::GET, "/clusters/aks-b/objects/widgets", None).await.status, StatusCode::NOT_FOUND);
}

/// Registry settings that change what a kubelet pulls: a closed network (public access off, or
/// rules denying by default) blocks every pull until a private endpoint is approved, and a
/// registry refusing ARM-audience tokens refuses the kubelet identity but not a pull secret.
#[tokio::test]
async fn closed_networks_and_the_arm_audience_policy_change_what_kubelets_pull() {
    let world = PULL_WORLD.replace(
        "name = \"acrapp\"\n",
        "name = \"acrapp\"\npublic_network_access = false\nprivate_endpoints = [{ name = \"pe-aks\", status = \"Pending\" }]\n",
    ).replace(
        "name = \"acrabac\"\n",
        "name = \"acrabac\"\nazure_ad_authentication_as_arm = false\n",
    );
    let env = start_world(&world).await;
    let shown = env.get(&format!("{}?api-version=2025-11-01", registry_id("acrapp"))).await.body;
    assert_eq!(shown["properties"]["publicNetworkAccess"], "Disabled");
    let connection = &shown["properties"]["privateEndpointConnections"][0]["properties"];
    assert_eq!(connection["privateLinkServiceConnectionState"]["status"], "Pending");
    assert!(connection["privateEndpoint"]["id"].as_str().is_some_and(|id| id.ends_with("/privateEndpoints/pe-aks")));
    let abac = env.get(&format!("{}?api-version=2025-11-01", registry_id("acrabac"))).await.body;
    assert_eq!(abac["properties"]["policies"]["azureADAuthenticationAsArmPolicy"]["status"], "disabled");

    let kube = Kube::connect(&env, PROD, "rg", "aks-a").await;
    create(&kube, "default", "secrets", &pull_secret("admin", "acrapp.azurecr.io", "acrapp", "admin-one")).await;
    create(&kube, "default", "pods", &pod("closed", "acrapp.azurecr.io/team/app:1.0", &["admin"])).await;
    let failed = wait_for(&kube, "default", "closed", "ErrImagePull", WAIT).await;
    let message = failed["status"]["containerStatuses"][0]["state"]["waiting"]["message"].as_str().unwrap_or_default();
    assert!(message.ends_with("403 Forbidden"), "{message}");

    // The Repository Reader grant counts for the kubelet identity only while ARM tokens work.
    let grant = json!({"properties": {"roleDefinitionId": format!("/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions/{REPOSITORY_READER}"),
                                     "principalId": KUBELET_A, "principalType": "ServicePrincipal"}});
    let at = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/f0000000-0000-0000-0000-000000000009?api-version=2022-04-01",
        registry_id("acrabac")
    );
    assert_eq!(env.put(&at, &grant).await.status, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(900)).await;
    create(&kube, "default", "pods", &pod("arm", "acrabac.azurecr.io/team-b/api:2.0", &[])).await;
    let refused = wait_for(&kube, "default", "arm", "ErrImagePull", WAIT).await;
    let message = refused["status"]["containerStatuses"][0]["state"]["waiting"]["message"].as_str().unwrap_or_default();
    assert!(message.ends_with("401 Unauthorized"), "{message}");
}
