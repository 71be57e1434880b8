//! apps/v1 over HTTPS: discovery, the apiserver's defaults on a Deployment as
//! `kubectl create deployment` sends it, and the controllers' ReplicaSet and Pods.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::kube_support::*;
use crate::support::*;

/// kubectl 1.28's body for `kubectl create deployment web --image=…` (byte for byte, from
/// ../shared/docs/kubernetes-behaviour.md D1).
fn kubectl_body(image: &str) -> Value {
    json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":image,"resources":{}}]}},"strategy":{}},"status":{}})
}

async fn wait_for(kube: &Kube, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let answer = kube.get(path).await;
        if done(&answer.body) {
            return answer.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{path} never got there: {}", kube.get(path).await.body);
}

#[tokio::test]
async fn apps_v1_discovery() {
    let env = start().await;
    let kube = Kube::connect(&env, PROD, "rg-aks", "aks-prod-1").await;
    let groups = kube.get("/apis").await;
    assert_eq!(groups.body["groups"][0]["name"], "apps");
    assert_eq!(groups.body["groups"][0]["preferredVersion"]["groupVersion"], "apps/v1");
    let resources = kube.get("/apis/apps/v1").await;
    let names: Vec<&str> =
        resources.body["resources"].as_array().into_iter().flatten().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["deployments", "deployments/status", "replicasets", "replicasets/status"]);
    let core = kube.get("/api/v1").await;
    assert!(!core.body.to_string().contains("\"deployments\""), "apps kinds are not core/v1");
    assert_eq!(kube.get("/api/v1/namespaces/default/deployments").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deployment_gets_defaults_a_replica_set_and_a_running_pod() {
    let env = start().await;
    let kube = Kube::connect(&env, PROD, "rg-aks", "aks-prod-1").await;
    let created = kube
        .post("/apis/apps/v1/namespaces/default/deployments", &kubectl_body("acrprod.azurecr.io/team-a/app:1.0"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created}");
    let d = &created.body;
    assert_eq!((d["apiVersion"].clone(), d["metadata"]["generation"].clone()), (json!("apps/v1"), json!(1)));
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(
        (d["spec"]["revisionHistoryLimit"].clone(), d["spec"]["progressDeadlineSeconds"].clone()),
        (json!(10), json!(600))
    );
    let pod_spec = &d["spec"]["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Always");
    assert_eq!(pod_spec["schedulerName"], "default-scheduler");
    assert_eq!(pod_spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod_spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(pod_spec["containers"][0]["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(d["status"], json!({}));

    let path = "/apis/apps/v1/namespaces/default/deployments/web";
    let done = wait_for(&kube, path, |d| d["status"]["availableReplicas"] == 1).await;
    assert_eq!(done["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    assert_eq!(done["metadata"]["generation"], 1, "the controller's annotation does not bump generation");
    assert_eq!(done["status"]["observedGeneration"], 1);
    let reasons: Vec<&str> =
        done["status"]["conditions"].as_array().into_iter().flatten().filter_map(|c| c["reason"].as_str()).collect();
    assert_eq!(reasons, ["MinimumReplicasAvailable", "NewReplicaSetAvailable"]);

    let sets = kube.get("/apis/apps/v1/namespaces/default/replicasets").await;
    let set = &sets.body["items"][0];
    let hash = set["metadata"]["labels"]["pod-template-hash"].as_str().unwrap_or_default().to_string();
    assert_eq!(set["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(set["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(sets.body["kind"], "ReplicaSetList");
    let pods = kube.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").await;
    let pod = &pods.body["items"][0];
    assert!(pod["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(&format!("web-{hash}-"))), "{pod}");
    assert_eq!(pod["status"]["phase"], "Running");
    let events = kube.get("/api/v1/namespaces/default/events").await;
    let said: Vec<(String, String)> = events.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["kind"] != "Pod")
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    assert!(said.contains(&("ScalingReplicaSet".into(), format!("Scaled up replica set web-{hash} to 1"))), "{said:?}");
    assert!(said.contains(&("SuccessfulCreate".into(), format!("Created pod: {pod_name}"))), "{said:?}");

    // A spec change bumps generation and rolls out a new ReplicaSet; the old one goes to 0.
    let patched = kube
        .patch(
            path,
            "application/strategic-merge-patch+json",
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "acrprod.azurecr.io/base/nginx:1.27"}]}}}}),
        )
        .await;
    assert_eq!(patched.body["metadata"]["generation"], 2, "{patched}");
    let rolled = wait_for(&kube, path, |d| {
        d["status"]["observedGeneration"] == 2
            && d["status"]["updatedReplicas"] == 1
            && d["status"]["availableReplicas"] == 1
            && d["status"]["replicas"] == 1
    })
    .await;
    assert_eq!(rolled["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    let deleted = kube.delete(path).await;
    assert_eq!(deleted.status, StatusCode::OK);
    wait_for(&kube, "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb", |l| l["items"] == json!([])).await;
}

/// The Pods of a Deployment pull as any Pod does: the kubelet identity (none on aks-b), else
/// the pull Secrets its ServiceAccount hands them at admission.
#[tokio::test]
async fn deployment_pods_pull_with_the_service_accounts_pull_secret() {
    use crate::kubelet::{PULL_WORLD, pod_state, pull_secret};
    let env = start_world(PULL_WORLD).await;
    let kube = Kube::connect(&env, PROD, "rg", "aks-b").await;
    kube.create_namespace("team").await;
    let state_of = |app: &'static str| {
        let kube = &kube;
        async move {
            let pods = kube.get(&format!("/api/v1/namespaces/team/pods?labelSelector=app%3D{app}")).await;
            pods.body["items"].as_array().and_then(|p| p.first()).map(pod_state).unwrap_or_default()
        }
    };
    let deploy = |name: &str| {
        let mut body = kubectl_body("acrapp.azurecr.io/team/app:1.0");
        body["metadata"]["name"] = json!(name);
        body["metadata"]["labels"]["app"] = json!(name);
        body["spec"]["selector"]["matchLabels"]["app"] = json!(name);
        body["spec"]["template"]["metadata"]["labels"]["app"] = json!(name);
        body
    };
    kube.post("/apis/apps/v1/namespaces/team/deployments", &deploy("denied")).await;
    let mut seen = String::new();
    for _ in 0..100 {
        seen = state_of("denied").await;
        if seen == "ImagePullBackOff" || seen == "ErrImagePull" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen == "ImagePullBackOff" || seen == "ErrImagePull", "no grant, no secret: {seen}");

    kube.post("/api/v1/namespaces/team/secrets", &pull_secret("acr", "acrapp.azurecr.io", "acrapp", "admin-one")).await;
    let sa = "/api/v1/namespaces/team/serviceaccounts/default";
    kube.patch(sa, "application/merge-patch+json", &json!({"imagePullSecrets": [{"name": "acr"}]})).await;
    kube.post("/apis/apps/v1/namespaces/team/deployments", &deploy("allowed")).await;
    let path = "/apis/apps/v1/namespaces/team/deployments/allowed";
    let done = wait_for(&kube, path, |d| d["status"]["availableReplicas"] == 1).await;
    assert_eq!(done["status"]["readyReplicas"], 1);
    assert_eq!(state_of("allowed").await, "Running");
}
