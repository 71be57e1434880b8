//! The real kubectl against an emulated cluster, through the kubeconfig that
//! listClusterUserCredential returns (server URL with a path prefix, CA data, static token).

use std::path::PathBuf;
use std::process::Command;

use crate::kube_support::*;
use crate::support::*;
use crate::tools::{self, TempDir};

/// The kubectl to test with: `ACRLINK_KUBECTL` or `kubectl` on PATH; a missing kubectl fails
/// the test unless `ACRLINK_SKIP_KUBECTL=1`.
fn kubectl_binary() -> Option<PathBuf> {
    tools::require("kubectl", "ACRLINK_KUBECTL", "kubectl", "ACRLINK_SKIP_KUBECTL", &["version", "--client"])
}

struct Kubectl {
    program: PathBuf,
    config: PathBuf,
    _dir: TempDir,
}

impl Kubectl {
    fn new(program: PathBuf, kubeconfig: &str) -> Kubectl {
        let dir = TempDir::new("acrlink-kubectl");
        let config = dir.0.join("kubeconfig");
        std::fs::write(&config, kubeconfig).expect("write kubeconfig");
        Kubectl { program, config, _dir: dir }
    }

    /// Runs kubectl off the async runtime; returns (exit ok, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut command = Command::new(&self.program);
        command
            .arg("--kubeconfig")
            .arg(&self.config)
            .arg("--cache-dir")
            .arg(self.config.with_file_name("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy");
        let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("kubectl runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).trim().to_string(),
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {err}\n{out}");
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_kubectl_drives_an_emulated_cluster() {
    let Some(program) = kubectl_binary() else { return };
    let env = start().await;
    let kubectl = Kubectl::new(program, &kubeconfig(&env, PROD, "rg-aks", "aks-prod-1", false).await);

    secrets_and_service_accounts(&kubectl).await;
    apply_client_and_server_side(&kubectl).await;
    create_from_file_and_diff(&kubectl).await;
    explain_secret(&kubectl).await;
    create_secret_generic_records_managed_fields(&kubectl).await;
    pod_runs_with_pull_secrets(&kubectl).await;

    let ledger = env.emulator.ledger();
    assert!(ledger.count("PATCH", "patchCoreV1NamespacedServiceAccount") >= 2, "{ledger:?}");
    assert!(ledger.count_cluster("aks-prod-1") > 10);
    assert!(ledger.count("GET", "watchCoreV1NamespacedPod") >= 1, "kubectl wait watched: {ledger:?}");
}

/// docker-registry Secrets, the default ServiceAccount's pull secrets, Secret type
/// immutability, tables, NotFound and delete.
async fn secrets_and_service_accounts(kubectl: &Kubectl) {
    assert_eq!(kubectl.ok(&["create", "namespace", "team-a"]).await, "namespace/team-a created");
    let out = kubectl
        .ok(&[
            "-n",
            "team-a",
            "create",
            "secret",
            "docker-registry",
            "regcred",
            "--docker-server=acrprod.azurecr.io",
            "--docker-username=acrprod",
            "--docker-password=first-password",
            "--docker-email=dev@example.com",
        ])
        .await;
    assert_eq!(out, "secret/regcred created");
    let kind = kubectl.ok(&["-n", "team-a", "get", "secret", "regcred", "-o", "jsonpath={.type}"]).await;
    assert_eq!(kind, "kubernetes.io/dockerconfigjson");

    // The controller-made default ServiceAccount exists; patching its pull secrets replaces them.
    let out = kubectl
        .ok(&["-n", "team-a", "patch", "serviceaccount", "default", "-p", r#"{"imagePullSecrets":[{"name":"x"}]}"#])
        .await;
    assert_eq!(out, "serviceaccount/default patched");
    let out = kubectl
        .ok(&[
            "-n",
            "team-a",
            "patch",
            "serviceaccount",
            "default",
            "-p",
            r#"{"imagePullSecrets":[{"name":"regcred"}]}"#,
        ])
        .await;
    assert_eq!(out, "serviceaccount/default patched");
    let pulls = kubectl.ok(&["-n", "team-a", "get", "sa", "default", "-o", "jsonpath={.imagePullSecrets}"]).await;
    assert_eq!(pulls, r#"[{"name":"regcred"}]"#);

    // Changing a Secret's type fails exactly as on a real cluster.
    let (ok, _, err) = kubectl
        .run(&["-n", "team-a", "patch", "secret", "regcred", "--type=merge", "-p", r#"{"type":"Opaque"}"#])
        .await;
    assert!(!ok);
    assert_eq!(err, r#"The Secret "regcred" is invalid: type: Invalid value: "Opaque": field is immutable"#);

    // Table output, a missing object, and delete.
    let table = kubectl.ok(&["-n", "team-a", "get", "secrets"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("regcred") && table.contains("kubernetes.io/dockerconfigjson"),
        "{table}"
    );
    let (ok, _, err) = kubectl.run(&["-n", "team-a", "get", "secret", "missing"]).await;
    assert!(!ok);
    assert_eq!(err, r#"Error from server (NotFound): secrets "missing" not found"#);
    assert_eq!(kubectl.ok(&["-n", "team-a", "delete", "secret", "regcred"]).await, r#"secret "regcred" deleted"#);
    let (ok, _, _) = kubectl.run(&["-n", "team-a", "get", "secret", "regcred"]).await;
    assert!(!ok, "deleted");
}

/// Server-side apply with its conflicts and client-side apply's three-way patch.
async fn apply_client_and_server_side(kubectl: &Kubectl) {
    // Server-side apply through kubectl, then a pod that gets the account's pull secrets.
    let dir = kubectl.config.with_file_name("m.yaml");
    std::fs::write(&dir, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ssa-secret\n  namespace: team-a\nstringData:\n  username: alice\ntype: Opaque\n").expect("write manifest");
    let path = dir.display().to_string();
    assert_eq!(kubectl.ok(&["apply", "--server-side", "-f", &path]).await, "secret/ssa-secret serverside-applied");
    let manager = kubectl
        .ok(&["-n", "team-a", "get", "secret", "ssa-secret", "-o", "jsonpath={.metadata.managedFields[0].manager}"])
        .await;
    assert_eq!(manager, "kubectl");
    std::fs::write(&dir, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ssa-secret\n  namespace: team-a\nstringData:\n  username: bob\n").expect("write manifest");
    // Client-side apply: create, then a change through its three-way patch.
    let csa = kubectl.config.with_file_name("csa.yaml");
    let csa_path = csa.display().to_string();
    std::fs::write(
        &csa,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-a\ndata:\n  a: \"1\"\n",
    )
    .expect("write");
    assert_eq!(kubectl.ok(&["apply", "-f", &csa_path]).await, "configmap/settings created");
    std::fs::write(
        &csa,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-a\ndata:\n  b: \"2\"\n",
    )
    .expect("write");
    assert_eq!(kubectl.ok(&["apply", "-f", &csa_path]).await, "configmap/settings configured");
    let data = kubectl.ok(&["-n", "team-a", "get", "configmap", "settings", "-o", "jsonpath={.data}"]).await;
    assert_eq!(data, r#"{"b":"2"}"#, "the three-way patch removed a");
    let (ok, _, err) = kubectl.run(&["apply", "--server-side", "--field-manager=other", "-f", &path]).await;
    assert!(!ok);
    assert!(
        err.starts_with("error: Apply failed with 1 conflict: conflict with \"kubectl\": .stringData.username"),
        "{err}"
    );
    let forced =
        kubectl.ok(&["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", &path]).await;
    assert_eq!(forced, "secret/ssa-secret serverside-applied");
}

/// `create -f` and `diff` (both read the OpenAPI documents first: v2 on kubectl 1.28, v3
/// on 1.32+).
async fn create_from_file_and_diff(kubectl: &Kubectl) {
    let file = kubectl.config.with_file_name("created.yaml");
    let path = file.display().to_string();
    let manifest =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-file\n  namespace: team-a\ndata:\n  a: \"1\"\n";
    std::fs::write(&file, manifest).expect("write manifest");
    assert_eq!(kubectl.ok(&["create", "-f", &path]).await, "configmap/from-file created");
    let (same, out, err) = kubectl.run(&["diff", "-f", &path]).await;
    assert!(same, "no difference: {out} {err}");
    std::fs::write(&file, manifest.replace("\"1\"", "\"2\"")).expect("write manifest");
    let (same, out, _) = kubectl.run(&["diff", "-f", &path]).await;
    assert!(!same, "diff exits 1 on a difference");
    assert!(out.contains("-  a: \"1\"") && out.contains("+  a: \"2\""), "{out}");
}

/// `kubectl create secret generic`: managedFields as the real server records them, one
/// `kubectl-create` Update entry owning the data keys and the type.
async fn create_secret_generic_records_managed_fields(kubectl: &Kubectl) {
    let out = kubectl.ok(&["-n", "team-a", "create", "secret", "generic", "plain", "--from-literal=a=b"]).await;
    assert_eq!(out, "secret/plain created");
    let managed = kubectl
        .ok(&[
            "-n",
            "team-a",
            "get",
            "secret",
            "plain",
            "-o",
            "jsonpath={.metadata.managedFields}",
            "--show-managed-fields",
        ])
        .await;
    let managed: serde_json::Value = serde_json::from_str(&managed).expect("managedFields JSON");
    assert_eq!(managed.as_array().map(Vec::len), Some(1), "{managed}");
    assert_eq!(managed[0]["manager"], "kubectl-create");
    assert_eq!(managed[0]["operation"], "Update");
    // The defaulted type is the writer's too: defaults apply before the field manager runs.
    assert_eq!(managed[0]["fieldsV1"], serde_json::json!({"f:data": {".": {}, "f:a": {}}, "f:type": {}}));
}

/// `kubectl explain secret` reads the Secret's schema from the OpenAPI v3 document.
async fn explain_secret(kubectl: &Kubectl) {
    let explained = kubectl.ok(&["explain", "secret"]).await;
    assert!(explained.starts_with("KIND:       Secret\nVERSION:    v1\n"), "{explained}");
    for field in
        ["data\t<map[string]string>", "immutable\t<boolean>", "metadata\t<ObjectMeta>", "stringData", "type\t<string>"]
    {
        assert!(explained.lines().any(|l| l.trim_start().starts_with(field)), "{field} in {explained}");
    }
    let nested = kubectl.ok(&["explain", "secret.metadata.labels"]).await;
    assert!(nested.contains("labels"), "{nested}");
}

/// `kubectl run`: the Pod gets the account's pull secrets and the kubelet runs it.
async fn pod_runs_with_pull_secrets(kubectl: &Kubectl) {
    let out =
        kubectl.ok(&["-n", "team-a", "run", "web", "--image=docker.io/library/nginx:1.27", "--restart=Never"]).await;
    assert_eq!(out, "pod/web created");
    let pulls = kubectl.ok(&["-n", "team-a", "get", "pod", "web", "-o", "jsonpath={.spec.imagePullSecrets}"]).await;
    assert_eq!(pulls, r#"[{"name":"regcred"}]"#);
    // The kubelet runs it (docker.io is not emulated); describe shows the kubelet's events.
    // kubectl wait watches the Pod until the kubelet reports it Running.
    let waited = kubectl
        .ok(&["-n", "team-a", "wait", "--for=jsonpath={.status.phase}=Running", "pod/web", "--timeout=20s"])
        .await;
    assert_eq!(waited, "pod/web condition met");
    let described = kubectl.ok(&["-n", "team-a", "describe", "pod", "web"]).await;
    assert!(described.contains("Started container web"), "{described}");
    let listed = kubectl.ok(&["-n", "team-a", "get", "pods"]).await;
    assert!(listed.contains("web") && listed.contains("1/1") && listed.contains("Running"), "{listed}");
    assert_eq!(kubectl.ok(&["delete", "namespace", "team-a"]).await, r#"namespace "team-a" deleted"#);
}

/// The guide's pull test: `kubectl create deploy` with an image of an emulated registry. The
/// deployment and replica-set controllers make the Pod, the kubelet pulls it through the
/// cluster's kubelet identity (AcrPull on acrprod), and `rollout status` sees it roll out;
/// an image that does not exist leaves its Pod in ErrImagePull / ImagePullBackOff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_deploy_pulls_through_the_kubelet_identity() {
    let Some(program) = kubectl_binary() else { return };
    let env = start().await;
    let kubectl = Kubectl::new(program, &kubeconfig(&env, PROD, "rg-aks", "aks-prod-1", false).await);
    let out = kubectl.ok(&["create", "deployment", "web", "--image=acrprod.azurecr.io/team-a/app:1.0"]).await;
    assert_eq!(out, "deployment.apps/web created");
    let rolled = kubectl.ok(&["rollout", "status", "deployment/web", "--timeout=30s"]).await;
    assert!(rolled.ends_with("deployment \"web\" successfully rolled out"), "{rolled}");
    let pods = kubectl.ok(&["get", "pods", "-l", "app=web"]).await;
    assert!(pods.contains("web-") && pods.contains("1/1") && pods.contains("Running"), "{pods}");
    let ready =
        kubectl.ok(&["get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}/{.status.replicas}"]).await;
    assert_eq!(ready, "1/1");

    kubectl.ok(&["create", "deployment", "broken", "--image=acrprod.azurecr.io/team-a/missing:1"]).await;
    let (ok, _, err) = kubectl.run(&["rollout", "status", "deployment/broken", "--timeout=4s"]).await;
    assert!(!ok && err.contains("timed out"), "{err}");
    let waited = kubectl
        .ok(&[
            "wait",
            "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ImagePullBackOff",
            "pod",
            "-l",
            "app=broken",
            "--timeout=20s",
        ])
        .await;
    assert!(waited.ends_with("condition met"), "{waited}");
    let pods = kubectl.ok(&["get", "pods", "-l", "app=broken"]).await;
    assert!(pods.contains("ImagePullBackOff") || pods.contains("ErrImagePull"), "{pods}");
    assert_eq!(kubectl.ok(&["delete", "deployment", "broken"]).await, "deployment.apps \"broken\" deleted");
}
