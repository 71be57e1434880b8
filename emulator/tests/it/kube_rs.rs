//! The Rust `kube` client (what acrlink uses) against an emulated cluster through the
//! listClusterUserCredential kubeconfig, whose server URL carries a path prefix.

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use crate::kube_support::*;
use crate::support::*;

#[tokio::test]
async fn kube_rs_client_works_with_a_path_prefixed_server() {
    let env = start().await;
    let text = kubeconfig(&env, PROD, "rg-aks", "aks-prod-1", false).await;
    let kubeconfig = Kubeconfig::from_yaml(&text).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
    config.default_namespace = "default".into();
    let client = kube::Client::try_from(config).expect("client");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "regcred", "labels": {"managed-by": "acrlink"}},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": "{\"auths\":{}}"},
    }))
    .expect("secret");
    let created = secrets.create(&PostParams::default(), &secret).await.expect("create");
    assert!(created.metadata.resource_version.is_some());
    let again = secrets.create(&PostParams::default(), &secret).await.expect_err("exists");
    match again {
        kube::Error::Api(status) => assert_eq!((status.code, status.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("unexpected {other:?}"),
    }
    let listed = secrets.list(&ListParams::default().labels("managed-by=acrlink")).await.expect("list");
    assert_eq!(listed.items.len(), 1);

    let accounts: Api<ServiceAccount> = Api::namespaced(client, "default");
    let apply = PatchParams::apply("acrlink").force();
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "regcred"}]}))
            .expect("sa");
    let patched = accounts.patch("default", &apply, &Patch::Apply(&sa)).await.expect("server-side apply");
    let names: Vec<String> = patched.image_pull_secrets.unwrap_or_default().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["regcred"]);
    assert!(accounts.get_opt("missing").await.expect("get_opt").is_none());
    let changed = secrets
        .patch("regcred", &PatchParams::default(), &Patch::Merge(json!({"type": "Opaque"})))
        .await
        .expect_err("type is immutable");
    match changed {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422);
            assert_eq!(
                status.message,
                "Secret \"regcred\" is invalid: type: Invalid value: \"Opaque\": field is immutable"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let replaced = {
        let mut current = secrets.get("regcred").await.expect("get");
        current.metadata.labels.get_or_insert_default().insert("rotated".into(), "yes".into());
        secrets.replace("regcred", &PostParams::default(), &current).await.expect("replace")
    };
    let stale = secrets.replace("regcred", &PostParams::default(), &created).await.expect_err("stale");
    assert!(matches!(stale, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"), "{stale:?}");
    let rv = |s: &Secret| s.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()).expect("rv");
    assert!(rv(&replaced) > rv(&created));
    let deleted = secrets.delete("regcred", &Default::default()).await.expect("delete");
    assert!(deleted.is_right(), "secrets answer a Status on delete");
    assert!(secrets.get_opt("regcred").await.expect("get_opt").is_none());
}
