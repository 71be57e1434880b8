//! The per-cluster Kubernetes API over HTTPS: authentication, RBAC denials, discovery,
//! namespaces, Secrets, ServiceAccounts and Pods with every write path, and their Status bodies.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::kube_support::*;
use crate::support::*;

const DOCKERCONFIG: &str = "eyJhdXRocyI6e319"; // base64 of {"auths":{}}

async fn prod() -> (Env, Kube) {
    let env = start().await;
    let kube = Kube::connect(&env, PROD, "rg-aks", "aks-prod-1").await;
    (env, kube)
}

fn secret(name: &str, kind: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "labels": {"app": "web"}}, "type": kind, "data": {".dockerconfigjson": DOCKERCONFIG}})
}

#[tokio::test]
async fn tokens_from_kubeconfigs_and_entra_authenticate() {
    let (env, kube) = prod().await;
    assert_eq!(kube.get("/api/v1/namespaces").await.status, StatusCode::OK);
    assert!(kube.server.contains("/k8s/"), "the server URL has a path prefix: {}", kube.server);

    let anonymous = env.client.get(format!("{}/api/v1/namespaces", kube.server)).send().await.expect("send");
    let anonymous = answer(anonymous).await;
    assert_eq!(status_of(&anonymous), (401, "Unauthorized", "Unauthorized"));
    // A token of another cluster does not open this one.
    let other = Kube::connect(&env, PROD, "rg-aks", "aks-prod-2").await;
    let crossed = Kube { token: other.token.clone(), ..kube };
    assert_eq!(crossed.get("/api/v1/namespaces").await.status, StatusCode::UNAUTHORIZED);

    // AAD cluster: the user kubeconfig uses kubelogin; an Entra token for the AKS server app works.
    let config = kubeconfig(&env, DEV, "rg-dev", "aks-dev-1", false).await;
    assert!(config.contains("kubelogin") && !config.contains("token:"));
    let server = config.lines().find_map(|l| l.trim().strip_prefix("server: ")).expect("server").to_string();
    let (status, body) = token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "s3cret"),
            ("scope", "6dae42f8-4368-4678-94ff-3960e28e3630/.default"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let aad = Kube {
        client: env.client.clone(),
        server: server.clone(),
        token: body["access_token"].as_str().expect("token").into(),
    };
    assert_eq!(aad.get("/api/v1/namespaces/default/serviceaccounts/default").await.status, StatusCode::OK);
    let arm = Kube { client: env.client.clone(), server, token: env.token.clone() };
    assert_eq!(
        arm.get("/api/v1/namespaces").await.status,
        StatusCode::UNAUTHORIZED,
        "an ARM token is not for the cluster"
    );
}

#[tokio::test]
async fn rbac_denials_answer_forbidden_but_keep_discovery() {
    let (env, kube) = prod().await;
    let set = env
        .admin(
            Method::PATCH,
            "/clusters/aks-prod-1",
            Some(&json!({"kube_denials": ["secrets", "patch:serviceaccounts"]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{set}");
    let denied = kube.get("/api/v1/namespaces/team/secrets").await;
    assert_eq!(
        status_of(&denied),
        (
            403,
            "Forbidden",
            "secrets is forbidden: User \"clusterUser\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team\""
        )
    );
    assert_eq!(denied.body["details"], json!({"kind": "secrets"}));
    let named = kube
        .patch("/api/v1/namespaces/default/serviceaccounts/default", "application/merge-patch+json", &json!({}))
        .await;
    assert_eq!(
        named.body["message"],
        "serviceaccounts \"default\" is forbidden: User \"clusterUser\" cannot patch resource \"serviceaccounts\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(kube.get("/api/v1/namespaces/default/serviceaccounts/default").await.status, StatusCode::OK);
    assert_eq!(kube.get("/api/v1").await.status, StatusCode::OK);
    env.admin(Method::PATCH, "/clusters/aks-prod-1", Some(&json!({"kube_denials": []}))).await;
    assert_eq!(kube.get("/api/v1/namespaces/team/secrets").await.status, StatusCode::OK);
}

#[tokio::test]
async fn discovery_documents() {
    let (_env, kube) = prod().await;
    let version = kube.get("/version").await;
    assert_eq!(version.body["gitVersion"], "v1.33.2");
    assert_eq!(version.body["minor"], "33");
    assert_eq!(kube.get("/api").await.body["versions"], json!(["v1"]));
    let v1 = kube.get("/api/v1").await;
    let names: Vec<&str> =
        v1.body["resources"].as_array().expect("resources").iter().filter_map(|r| r["name"].as_str()).collect();
    for expected in ["namespaces", "secrets", "serviceaccounts", "pods", "pods/status", "events", "configmaps"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(kube.get("/apis").await.body["kind"], "APIGroupList");
    let v2 = kube.get("/openapi/v2").await;
    assert_eq!(v2.body["swagger"], "2.0", "JSON unless protobuf is asked for: {v2}");
    assert_eq!(kube.get("/api/v1/widgets").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_v2_in_protobuf_as_kubectl_1_28_asks() {
    let (_env, kube) = prod().await;
    let answer = kube
        .client
        .get(format!("{}/openapi/v2", kube.server))
        .bearer_auth(&kube.token)
        .header("accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        answer.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    );
    let bytes = answer.bytes().await.expect("body");
    // gnostic's Document: swagger (field 1) = "2.0", then info (field 2).
    assert_eq!(&bytes[..5], b"\x0a\x032.0");
    assert_eq!(bytes[5], 0x12);
    let info = &bytes[7..];
    assert_eq!(info.len(), usize::from(bytes[6]));
    assert!(info.windows(10).any(|w| w == b"Kubernetes") && info.ends_with(b"v1.33.2"));
}

#[tokio::test]
async fn namespaces_get_a_default_service_account() {
    let (_env, kube) = prod().await;
    kube.create_namespace("team-a").await;
    let sa = kube.get("/api/v1/namespaces/team-a/serviceaccounts/default").await;
    assert_eq!(sa.status, StatusCode::OK);
    assert!(sa.body.get("secrets").is_none(), "no legacy token Secret");
    let again = kube.post("/api/v1/namespaces", &json!({"metadata": {"name": "team-a"}})).await;
    assert_eq!(status_of(&again), (409, "AlreadyExists", "namespaces \"team-a\" already exists"));
    assert_eq!(again.body["details"], json!({"name": "team-a", "kind": "namespaces"}));
    let ns = kube.get("/api/v1/namespaces/team-a").await;
    assert_eq!(ns.body["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");
    assert_eq!(ns.body["status"]["phase"], "Active");
    let missing = kube.post("/api/v1/namespaces/nowhere/secrets", &secret("x", "Opaque")).await;
    assert_eq!(status_of(&missing), (404, "NotFound", "namespaces \"nowhere\" not found"));
    let deleted = kube.delete("/api/v1/namespaces/team-a").await;
    assert_eq!(deleted.body["status"]["phase"], "Terminating");
    assert_eq!(kube.get("/api/v1/namespaces/team-a/serviceaccounts/default").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn secrets_list_with_selectors_and_resource_versions() {
    let (_env, kube) = prod().await;
    let first = kube.post("/api/v1/namespaces/default/secrets", &secret("a", "kubernetes.io/dockerconfigjson")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first}");
    let mut opaque = json!({"metadata": {"name": "b"}, "stringData": {"k": "v"}});
    opaque["metadata"]["labels"] = json!({"app": "db"});
    let second = kube.post("/api/v1/namespaces/default/secrets", &opaque).await;
    assert_eq!(second.body["type"], "Opaque");
    assert_eq!(second.body["data"]["k"], "dg==", "stringData lands in data");
    assert!(second.body.get("stringData").is_none());
    let rv =
        |a: &Answer| a.body["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse::<u64>().ok()).expect("rv");
    assert!(rv(&second) > rv(&first));

    let list = kube.get("/api/v1/namespaces/default/secrets?labelSelector=app%3Dweb").await;
    assert_eq!(list.body["kind"], "SecretList");
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    assert!(rv(&list) >= rv(&second));
    let by_type = kube.get("/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Fdockerconfigjson").await;
    let names: Vec<&str> = by_type.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["a"]);
    let by_name = kube.get("/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Db").await;
    assert_eq!(by_name.body["items"][0]["metadata"]["name"], "b");
    let bad = kube.get("/api/v1/namespaces/default/secrets?fieldSelector=data.k%3Dx").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let page = kube.get("/api/v1/namespaces/default/secrets?limit=1").await;
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(1));
    let next = page.body["metadata"]["continue"].as_str().expect("continue");
    let rest = kube.get(&format!("/api/v1/namespaces/default/secrets?limit=1&continue={next}")).await;
    assert_eq!(rest.body["items"][0]["metadata"]["name"], "b");
    let missing = kube.get("/api/v1/namespaces/default/secrets/zzz").await;
    assert_eq!(status_of(&missing), (404, "NotFound", "secrets \"zzz\" not found"));
    assert_eq!(missing.body["details"], json!({"name": "zzz", "kind": "secrets"}));
}

#[tokio::test]
async fn updates_conflict_on_stale_versions_and_types_are_immutable() {
    let (_env, kube) = prod().await;
    let created =
        kube.post("/api/v1/namespaces/default/secrets", &secret("regcred", "kubernetes.io/dockerconfigjson")).await;
    let mut stale = created.body.clone();
    let mut fresh = created.body.clone();
    fresh["metadata"]["labels"]["v"] = json!("2");
    let updated = kube.put("/api/v1/namespaces/default/secrets/regcred", &fresh).await;
    assert_eq!(updated.status, StatusCode::OK, "{updated}");
    stale["metadata"]["labels"]["v"] = json!("3");
    let conflict = kube.put("/api/v1/namespaces/default/secrets/regcred", &stale).await;
    assert_eq!(
        status_of(&conflict),
        (
            409,
            "Conflict",
            "Operation cannot be fulfilled on secrets \"regcred\": the object has been modified; please apply your changes to the latest version and try again"
        )
    );
    let dup = kube.post("/api/v1/namespaces/default/secrets", &secret("regcred", "Opaque")).await;
    assert_eq!(status_of(&dup), (409, "AlreadyExists", "secrets \"regcred\" already exists"));

    let message = "Secret \"regcred\" is invalid: type: Invalid value: \"Opaque\": field is immutable";
    let merge = kube
        .patch("/api/v1/namespaces/default/secrets/regcred", "application/merge-patch+json", &json!({"type": "Opaque"}))
        .await;
    assert_eq!(status_of(&merge), (422, "Invalid", message));
    assert_eq!(
        merge.body["details"],
        json!({"name": "regcred", "kind": "Secret", "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: \"Opaque\": field is immutable", "field": "type"}]})
    );
    let json_patch = kube
        .patch(
            "/api/v1/namespaces/default/secrets/regcred",
            "application/json-patch+json",
            &json!([{"op": "replace", "path": "/type", "value": "Opaque"}]),
        )
        .await;
    assert_eq!(status_of(&json_patch), (422, "Invalid", message));
    let mut put = updated.body.clone();
    put["type"] = json!("Opaque");
    assert_eq!(status_of(&kube.put("/api/v1/namespaces/default/secrets/regcred", &put).await).2, message);
    let ssa = kube
        .patch(
            "/api/v1/namespaces/default/secrets/regcred?fieldManager=acrlink&force=true",
            "application/apply-patch+yaml",
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"}, "type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}}),
        )
        .await;
    assert_eq!(
        status_of(&ssa).2,
        "Secret \"regcred\" is invalid: type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"
    );
}

#[tokio::test]
async fn json_patch_test_op_and_strategic_lists() {
    let (_env, kube) = prod().await;
    kube.post("/api/v1/namespaces/default/secrets", &secret("s", "kubernetes.io/dockerconfigjson")).await;
    let path = "/api/v1/namespaces/default/secrets/s";
    let ok = kube
        .patch(path, "application/json-patch+json", &json!([{"op": "test", "path": "/type", "value": "kubernetes.io/dockerconfigjson"}, {"op": "add", "path": "/metadata/labels/x", "value": "y"}]))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok}");
    assert_eq!(ok.body["metadata"]["labels"]["x"], "y");
    let failed = kube
        .patch(
            path,
            "application/json-patch+json",
            &json!([{"op": "test", "path": "/metadata/labels/x", "value": "z"}]),
        )
        .await;
    assert_eq!(status_of(&failed), (422, "Invalid", "the server rejected our request due to an error in our request"));
    // The real server's exact body: nothing names the patch or the failed test.
    assert_eq!(
        failed.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "the server rejected our request due to an error in our request",
               "reason": "Invalid", "details": {}, "code": 422})
    );
    let unsupported = kube.patch(path, "text/plain", &json!({})).await;
    assert_eq!(unsupported.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let sa = "/api/v1/namespaces/default/serviceaccounts/default";
    let smp = "application/strategic-merge-patch+json";
    kube.patch(sa, smp, &json!({"imagePullSecrets": [{"name": "regcred"}]})).await;
    let replaced = kube.patch(sa, smp, &json!({"imagePullSecrets": [{"name": "other"}]})).await;
    assert_eq!(replaced.body["imagePullSecrets"], json!([{"name": "other"}]), "no merge key: the list is replaced");
    let stale = kube
        .patch(
            sa,
            "application/merge-patch+json",
            &json!({"metadata": {"resourceVersion": "1"}, "automountServiceAccountToken": false}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn server_side_apply_owns_fields_and_conflicts() {
    let (_env, kube) = prod().await;
    let path = "/api/v1/namespaces/default/secrets/ssa-secret";
    let config = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa-secret", "labels": {"team": "a"}}, "stringData": {"username": "alice"}, "type": "Opaque"});
    let no_manager = kube.patch(path, "application/apply-patch+yaml", &config).await;
    assert_eq!(
        status_of(&no_manager),
        (
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        )
    );
    let created = kube.patch(&format!("{path}?fieldManager=kubectl"), "application/apply-patch+yaml", &config).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created}");
    let managed = &created.body["metadata"]["managedFields"][0];
    assert_eq!((managed["manager"].as_str(), managed["operation"].as_str()), (Some("kubectl"), Some("Apply")));
    assert!(managed["fieldsV1"]["f:stringData"]["f:username"].is_object());
    assert_eq!(created.body["data"]["username"], "YWxpY2U=");
    let again = kube.patch(&format!("{path}?fieldManager=kubectl"), "application/apply-patch+yaml", &config).await;
    assert_eq!(again.status, StatusCode::OK);

    let other = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa-secret"}, "stringData": {"username": "bob"}});
    let conflict = kube.patch(&format!("{path}?fieldManager=other"), "application/apply-patch+yaml", &other).await;
    assert_eq!(
        status_of(&conflict),
        (409, "Conflict", "Apply failed with 1 conflict: conflict with \"kubectl\": .stringData.username")
    );
    assert_eq!(
        conflict.body["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl\"", "field": ".stringData.username"}])
    );
    let forced =
        kube.patch(&format!("{path}?fieldManager=other&force=true"), "application/apply-patch+yaml", &other).await;
    assert_eq!(forced.status, StatusCode::OK, "{forced}");
    assert_eq!(forced.body["data"]["username"], "Ym9i");
    let managers: Vec<&str> = forced.body["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(managers, ["kubectl", "other"], "kubectl keeps labels and type");
    // Real YAML bodies work too.
    let request = kube
        .client
        .patch(format!("{}/api/v1/namespaces/default/configmaps/c?fieldManager=ops", kube.server))
        .bearer_auth(&kube.token)
        .header("content-type", "application/apply-patch+yaml")
        .body("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n");
    let yaml = answer(request.send().await.expect("send")).await;
    assert_eq!(yaml.status, StatusCode::CREATED, "{yaml}");
    assert_eq!(yaml.body["data"]["a"], "b");
}

#[tokio::test]
async fn secret_validation_matches_the_real_server() {
    let (_env, kube) = prod().await;
    let ns = "/api/v1/namespaces/default/secrets";
    let missing_key = kube
        .post(ns, &json!({"metadata": {"name": "bad-dockercfg"}, "type": "kubernetes.io/dockerconfigjson", "data": {}}))
        .await;
    assert_eq!(
        status_of(&missing_key),
        (422, "Invalid", "Secret \"bad-dockercfg\" is invalid: data[.dockerconfigjson]: Required value")
    );
    let bad_json = kube
        .post(ns, &json!({"metadata": {"name": "bad-json"}, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "no"}}))
        .await;
    assert_eq!(
        status_of(&bad_json).2,
        "Secret \"bad-json\" is invalid: data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'o' in literal null (expecting 'u')"
    );
    let frozen =
        kube.post(ns, &json!({"metadata": {"name": "frozen"}, "immutable": true, "stringData": {"a": "1"}})).await;
    assert_eq!(frozen.status, StatusCode::CREATED);
    let change =
        kube.patch(&format!("{ns}/frozen"), "application/merge-patch+json", &json!({"stringData": {"a": "2"}})).await;
    assert_eq!(
        status_of(&change).2,
        "Secret \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
    );
    let thaw = kube.patch(&format!("{ns}/frozen"), "application/merge-patch+json", &json!({"immutable": false})).await;
    assert_eq!(
        status_of(&thaw).2,
        "Secret \"frozen\" is invalid: immutable: Forbidden: field is immutable when `immutable` is set"
    );
    let dry =
        kube.post(&format!("{ns}?dryRun=All"), &json!({"metadata": {"name": "dry"}, "stringData": {"a": "1"}})).await;
    assert_eq!(dry.status, StatusCode::CREATED);
    assert_eq!(kube.get(&format!("{ns}/dry")).await.status, StatusCode::NOT_FOUND, "dryRun stores nothing");
    let deleted = kube.delete(&format!("{ns}/frozen")).await;
    assert_eq!(
        (deleted.body["status"].as_str(), deleted.body["details"]["name"].as_str()),
        (Some("Success"), Some("frozen"))
    );
}

#[tokio::test]
async fn pods_get_their_service_account_pull_secrets_at_admission() {
    let (_env, kube) = prod().await;
    kube.create_namespace("apps").await;
    kube.patch(
        "/api/v1/namespaces/apps/serviceaccounts/default",
        "application/strategic-merge-patch+json",
        &json!({"imagePullSecrets": [{"name": "regcred"}]}),
    )
    .await;
    let pod = |name: &str, extra: Value| {
        let mut p = json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": "docker.io/library/nginx:1.27"}]}});
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                p["spec"][k] = v;
            }
        }
        p
    };
    let copied = kube.post("/api/v1/namespaces/apps/pods", &pod("a", json!({}))).await;
    assert_eq!(copied.status, StatusCode::CREATED, "{copied}");
    assert_eq!(copied.body["spec"]["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(copied.body["spec"]["serviceAccountName"], "default");
    assert_eq!(copied.body["status"]["phase"], "Pending");
    let own =
        kube.post("/api/v1/namespaces/apps/pods", &pod("b", json!({"imagePullSecrets": [{"name": "mine"}]}))).await;
    assert_eq!(own.body["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
    let no_sa = kube.post("/api/v1/namespaces/apps/pods", &pod("c", json!({"serviceAccountName": "ghost"}))).await;
    assert_eq!(
        status_of(&no_sa),
        (
            403,
            "Forbidden",
            "pods \"c\" is forbidden: error looking up service account apps/ghost: serviceaccount \"ghost\" not found"
        )
    );
    let pending = kube.get("/api/v1/namespaces/apps/pods?fieldSelector=status.phase%3DPending").await;
    assert!(!pending.body["items"].as_array().expect("items").is_empty());
    let no_image = kube
        .post(
            "/api/v1/namespaces/apps/pods",
            &json!({"metadata": {"name": "d"}, "spec": {"containers": [{"name": "x"}]}}),
        )
        .await;
    assert_eq!(status_of(&no_image).2, "Pod \"d\" is invalid: spec.containers[0].image: Required value");
}

#[tokio::test]
async fn faults_and_ledger_cover_the_cluster_api() {
    let (env, kube) = prod().await;
    env.emulator.add_fault(acrlink_emulator::FaultRule {
        route: "readCoreV1NamespacedServiceAccount".into(),
        method: None,
        kind: acrlink_emulator::FaultKind::Throttle,
        count: 1,
        status: None,
        retry_after_seconds: Some(2),
    });
    let sa = "/api/v1/namespaces/default/serviceaccounts/default";
    let throttled = kube.get(sa).await;
    assert_eq!(status_of(&throttled), (429, "TooManyRequests", "Too many requests, please try again later."));
    assert_eq!(throttled.header("retry-after"), Some("2"));
    assert_eq!(kube.get(sa).await.status, StatusCode::OK);
    env.emulator.add_fault(acrlink_emulator::FaultRule {
        route: "/k8s/{subscriptionId}/{resourceGroupName}/{clusterName}/api/v1/namespaces/{namespace}/serviceaccounts/{name}".into(),
        method: Some("GET".into()),
        kind: acrlink_emulator::FaultKind::ServerError,
        count: 1,
        status: Some(500),
        retry_after_seconds: None,
    });
    assert_eq!(status_of(&kube.get(sa).await).1, "InternalError");
    env.emulator.add_fault(acrlink_emulator::FaultRule {
        route: "listCoreV1NamespacedSecret@aks-prod-2".into(),
        method: None,
        kind: acrlink_emulator::FaultKind::Drop,
        count: 1,
        status: None,
        retry_after_seconds: None,
    });
    assert_eq!(
        kube.get("/api/v1/namespaces/default/secrets").await.status,
        StatusCode::OK,
        "the rule is for another cluster"
    );
    env.emulator.set_faults(acrlink_emulator::Faults::default());
    env.emulator.add_fault(acrlink_emulator::FaultRule {
        route: "listCoreV1NamespacedSecret@aks-prod-1".into(),
        method: None,
        kind: acrlink_emulator::FaultKind::Drop,
        count: 1,
        status: None,
        retry_after_seconds: None,
    });
    let dropped = kube
        .client
        .get(format!("{}/api/v1/namespaces/default/secrets", kube.server))
        .bearer_auth(&kube.token)
        .send()
        .await;
    assert!(dropped.is_err(), "the connection closes without an answer");
    env.emulator.set_faults(acrlink_emulator::Faults { latency_ms: 150, ..Default::default() });
    let started = std::time::Instant::now();
    assert_eq!(kube.get("/api/v1/namespaces/default/secrets").await.status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    env.emulator.set_faults(acrlink_emulator::Faults::default());
    let ledger = env.emulator.ledger();
    let entry =
        ledger.entries.iter().find(|e| e.operation == "readCoreV1NamespacedServiceAccount").expect("ledger entry");
    assert_eq!(entry.cluster.as_deref(), Some("aks-prod-1"));
    assert_eq!(entry.count, 3);
    assert_eq!(entry.statuses.get("429"), Some(&1));
}

/// Reads watch events until `until` holds for one or the stream ends.
async fn watch_until(response: reqwest::Response, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut response = response;
    let mut buffer = String::new();
    let mut seen = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(std::time::Duration::from_secs(5), response.chunk()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(at) = buffer.find('\n') {
            let line: String = buffer.drain(..=at).collect();
            let event: Value = serde_json::from_str(line.trim()).expect("one JSON event per line");
            let done = until(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
    seen
}

#[tokio::test]
async fn watches_replay_from_a_resource_version_and_stream_changes() {
    let (_env, kube) = prod().await;
    let list = kube.get("/api/v1/namespaces/default/secrets").await;
    let rv = list.body["metadata"]["resourceVersion"].as_str().expect("list rv").to_string();
    kube.post("/api/v1/namespaces/default/secrets", &json!({"metadata": {"name": "before", "labels": {"w": "1"}}}))
        .await;
    let url = format!(
        "{}/api/v1/namespaces/default/secrets?watch=true&resourceVersion={rv}&labelSelector=w%3D1&timeoutSeconds=10",
        kube.server
    );
    let response = kube.client.get(&url).bearer_auth(&kube.token).send().await.expect("watch");
    assert_eq!(response.status(), StatusCode::OK);
    let creator = {
        let kube = Kube { client: kube.client.clone(), server: kube.server.clone(), token: kube.token.clone() };
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            kube.post("/api/v1/namespaces/default/secrets", &json!({"metadata": {"name": "unlabelled"}})).await;
            kube.post(
                "/api/v1/namespaces/default/secrets",
                &json!({"metadata": {"name": "after", "labels": {"w": "1"}}}),
            )
            .await;
            kube.delete("/api/v1/namespaces/default/secrets/after").await;
        })
    };
    let events = watch_until(response, |e| e["type"] == "DELETED").await;
    creator.await.expect("creator");
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["object"]["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("ADDED", "before"), ("ADDED", "after"), ("DELETED", "after")].map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(events[0]["object"]["kind"], "Secret");

    // A resourceVersion older than the history answers an ERROR event with 410 Expired.
    for i in 0..4100 {
        let name = format!("churn-{}", i % 2);
        let answer =
            kube.put(&format!("/api/v1/namespaces/default/secrets/{name}"), &json!({"metadata": {"name": name}})).await;
        if answer.status == StatusCode::NOT_FOUND {
            kube.post("/api/v1/namespaces/default/secrets", &json!({"metadata": {"name": name}})).await;
        }
    }
    let old = format!("{}/api/v1/namespaces/default/secrets?watch=1&resourceVersion=2", kube.server);
    let response = kube.client.get(&old).bearer_auth(&kube.token).send().await.expect("watch");
    let events = watch_until(response, |_| true).await;
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(
        (events[0]["object"]["code"].as_u64(), events[0]["object"]["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
}

#[tokio::test]
async fn the_default_service_account_can_come_late_like_the_controller_manager_makes_it() {
    let world = WORLD.replace("[settings]\n", "[settings]\nnamespace_controller_delay_ms = 300\n");
    let env = start_world(&world).await;
    let kube = Kube::connect(&env, PROD, "rg-aks", "aks-prod-1").await;
    kube.create_namespace("fresh").await;
    let early = kube.get("/api/v1/namespaces/fresh/serviceaccounts/default").await;
    assert_eq!(status_of(&early), (404, "NotFound", "serviceaccounts \"default\" not found"));
    assert_eq!(early.body["details"], json!({"name": "default", "kind": "serviceaccounts"}));
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let refused = kube.post("/api/v1/namespaces/fresh/pods", &pod).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(kube.get("/api/v1/namespaces/fresh/serviceaccounts/default").await.status, StatusCode::OK);
    assert_eq!(kube.get("/api/v1/namespaces/fresh/configmaps/kube-root-ca.crt").await.status, StatusCode::OK);
    assert_eq!(kube.post("/api/v1/namespaces/fresh/pods", &pod).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_fields_follow_field_validation() {
    let (_env, kube) = prod().await;
    let body = json!({"metadata": {"name": "odd"}, "stringData": {"a": "b"}, "colour": "red"});
    let strict = kube.post("/api/v1/namespaces/default/secrets?fieldValidation=Strict", &body).await;
    assert_eq!(
        status_of(&strict),
        (
            400,
            "BadRequest",
            "Secret in version \"v1\" cannot be handled as a Secret: strict decoding error: unknown field \"colour\""
        )
    );
    let warned = kube.post("/api/v1/namespaces/default/secrets", &body).await;
    assert_eq!(warned.status, StatusCode::CREATED);
    assert_eq!(warned.header("warning"), Some("299 - \"unknown field \\\"colour\\\"\""));
    assert!(warned.body.get("colour").is_none(), "dropped");
    let apply = kube
        .patch(
            "/api/v1/namespaces/default/secrets/odd?fieldManager=x",
            "application/apply-patch+yaml",
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "odd"}, "colour": "blue"}),
        )
        .await;
    assert_eq!(
        status_of(&apply),
        (
            400,
            "BadRequest",
            "failed to create typed patch object (/v1, Kind=Secret): .colour: field not declared in schema"
        )
    );
}

#[tokio::test]
async fn azure_rbac_clusters_authorize_entra_callers_by_role_assignments() {
    let world = WORLD
        .replace("aad = true\n", "aad = true\nazure_rbac = true\n")
        .replace("[settings]\n", "[settings]\nrbac_propagation_seconds = 0.0\n");
    let env = start_world(&world).await;
    let config = kubeconfig(&env, DEV, "rg-dev", "aks-dev-1", false).await;
    let server = config.lines().find_map(|l| l.trim().strip_prefix("server: ")).expect("server").to_string();
    let (_, body) = token_response(
        &env.client,
        &env.base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ACRLINK_CLIENT),
            ("client_secret", "s3cret"),
            ("scope", "6dae42f8-4368-4678-94ff-3960e28e3630/.default"),
        ],
    )
    .await;
    let kube = Kube { client: env.client.clone(), server, token: body["access_token"].as_str().expect("token").into() };
    let denied = kube.get("/api/v1/namespaces/default/secrets").await;
    assert_eq!(
        status_of(&denied),
        (
            403,
            "Forbidden",
            "secrets is forbidden: User \"b0000000-0000-0000-0000-000000000001\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\": User does not have access to the resource in Azure. Update role assignment to allow access."
        )
    );
    let cluster = cluster_path(DEV, "rg-dev", "aks-dev-1");
    let grant = |scope: String, role: &str| json!({"scope": scope, "role": role, "principal_id": ACRLINK_OBJECT});
    env.admin(Method::POST, "/role-assignments", Some(&grant(cluster.clone(), "Azure Kubernetes Service RBAC Reader")))
        .await;
    assert_eq!(kube.get("/api/v1/namespaces/default/serviceaccounts").await.status, StatusCode::OK);
    assert_eq!(
        kube.get("/api/v1/namespaces/default/secrets").await.status,
        StatusCode::FORBIDDEN,
        "Reader does not read secrets"
    );
    env.admin(
        Method::POST,
        "/role-assignments",
        Some(&grant(format!("{cluster}/namespaces/default"), "Azure Kubernetes Service RBAC Writer")),
    )
    .await;
    assert_eq!(kube.get("/api/v1/namespaces/default/secrets").await.status, StatusCode::OK);
    assert_eq!(
        kube.get("/api/v1/namespaces/kube-system/secrets").await.status,
        StatusCode::FORBIDDEN,
        "the grant is for one namespace"
    );
    // The admin kubeconfig (a local account) is not subject to Azure RBAC.
    let admin = kubeconfig(&env, DEV, "rg-dev", "aks-dev-1", true).await;
    let token = admin.lines().find_map(|l| l.trim().strip_prefix("token: ")).expect("token").to_string();
    let local = Kube { token, ..kube };
    assert_eq!(local.get("/api/v1/namespaces/kube-system/secrets").await.status, StatusCode::OK);
}

#[tokio::test]
async fn kubeconfigs_without_the_arm_round_trip() {
    let (env, _kube) = prod().await;
    let through_arm = kubeconfig(&env, PROD, "rg-aks", "aks-prod-1", false).await;
    let through_admin =
        env.client.get(format!("{}/_emulator/clusters/aks-prod-1/kubeconfig", env.base)).send().await.expect("admin");
    assert_eq!(through_admin.text().await.expect("text"), through_arm);
    assert_eq!(
        env.emulator.state().kubeconfig("aks-prod-1", true).expect("admin"),
        kubeconfig(&env, PROD, "rg-aks", "aks-prod-1", true).await
    );
    assert!(env.emulator.state().kubeconfig("aks-prod-3", true).is_err(), "local accounts are disabled there");
}
