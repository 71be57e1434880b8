//! Signing in (issue 18): every `--auth` method against the emulator's Entra, CI token services
//! and managed-identity endpoints, each followed by a real `plan`; `--auth auto` picking the
//! method each environment offers; and its one message when nothing works.
//!
//! acrlink runs with a cleared environment (only what each case sets), so whatever the machine
//! running the tests has (an `az` login, AZURE_* variables, an IMDS) cannot change the outcome.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::support::{Emulated, Output, repo_root, write_config};

const GITHUB_CLIENT: &str = "e1000000-0000-4000-8000-0000000000c1";
const PIPELINES_CLIENT: &str = "e1000000-0000-4000-8000-0000000000c2";
const VM_CLIENT: &str = "e1000000-0000-4000-8000-0000000000c3";
const USER_ASSIGNED_CLIENT: &str = "e1000000-0000-4000-8000-0000000000c4";
const WORKLOAD_CLIENT: &str = "e1000000-0000-4000-8000-0000000000c5";
const WORKLOAD_ISSUER: &str = "https://oidc.prod-aks.azure.com/contoso/";
const WORKLOAD_SUBJECT: &str = "system:serviceaccount:acrlink:drift";
const SECRET_CANARY: &str = "demo-only-not-a-real-secret";

/// The demo world plus principals that sign in without a secret, each Owner of both
/// subscriptions, and a machine carrying two managed identities.
fn world(extra_settings: &str) -> String {
    let demo = std::fs::read_to_string(repo_root().join("examples/demo/world.toml")).unwrap();
    let owner = r#"roles = [
  { role = "Owner", scope = "/subscriptions/1d6c45e0-bd9f-4771-bb67-36616452f239" },
  { role = "Owner", scope = "/subscriptions/0cbb9123-6397-4a37-97d1-8efa0a25043b" },
]"#;
    let demo = demo.replacen("[settings]\n", &format!("[settings]\n{extra_settings}\n"), 1);
    let settings =
        if demo.contains(extra_settings) { String::new() } else { format!("[settings]\n{extra_settings}\n") };
    format!(
        r#"{demo}
[[principals]]
name = "github-deployer"
object_id = "e2000000-0000-4000-8000-0000000000c1"
client_id = "{GITHUB_CLIENT}"
federated_credentials = [{{ issuer = "https://token.actions.githubusercontent.com", subject = "repo:contoso/fleet:ref:refs/heads/main" }}]
{owner}

[[principals]]
name = "pipelines-deployer"
object_id = "e2000000-0000-4000-8000-0000000000c2"
client_id = "{PIPELINES_CLIENT}"
federated_credentials = [{{ issuer = "https://vstoken.dev.azure.com/7a9c0e21-53b4-4f6d-8e2a-1b0c9d8e7f6a", subject = "sc://contoso/fleet/acrlink" }}]
{owner}

[[principals]]
name = "vm-identity"
object_id = "e2000000-0000-4000-8000-0000000000c3"
client_id = "{VM_CLIENT}"
{owner}

[[principals]]
name = "vm-user-assigned"
object_id = "e2000000-0000-4000-8000-0000000000c4"
client_id = "{USER_ASSIGNED_CLIENT}"
{owner}

[[principals]]
name = "drift-cronjob"
object_id = "e2000000-0000-4000-8000-0000000000c5"
client_id = "{WORKLOAD_CLIENT}"
federated_credentials = [{{ issuer = "{WORKLOAD_ISSUER}", subject = "{WORKLOAD_SUBJECT}" }}]
{owner}

[sign_in]
managed_identities = ["vm-identity", "vm-user-assigned"]
{settings}"#
    )
}

struct Place {
    azure: Emulated,
    dir: tempfile::TempDir,
    /// An "IMDS" that accepts connections and never answers: requests hang until the probe
    /// gives up.
    silent_imds: std::net::TcpListener,
}

impl Place {
    fn start() -> Place {
        Place::with_settings("")
    }

    fn with_settings(settings: &str) -> Place {
        let azure = Emulated::start(&world(settings));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let config = std::fs::read_to_string(repo_root().join("examples/demo/acrlink.toml")).unwrap();
        write_config(dir.path(), &config);
        let silent_imds = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Place { azure, dir, silent_imds }
    }

    /// What every place shares: the emulator's CA, Entra and ARM, a tenant, no `az` on PATH,
    /// and an IMDS that does not answer.
    fn base(&self) -> BTreeMap<String, String> {
        let env = self.azure.emulator().env();
        let mut vars = BTreeMap::new();
        for key in [
            "SSL_CERT_FILE",
            "AZURE_AUTHORITY_HOST",
            "ACRLINK_ARM_ENDPOINT",
            "ACRLINK_GRAPH_ENDPOINT",
            "AZURE_TENANT_ID",
        ] {
            vars.insert(key.to_string(), env[key].clone());
        }
        vars.insert("PATH".into(), self.dir.path().join("bin").display().to_string());
        vars.insert("HOME".into(), self.dir.path().display().to_string());
        vars.insert("ACRLINK_IMDS_ENDPOINT".into(), self.silent_imds());
        vars.insert("ACRLINK_RETRY_BUDGET_SECONDS".into(), "60".into());
        vars.insert("ACRLINK_ARM_REQUESTS_PER_SECOND".into(), "1000".into());
        vars
    }

    fn silent_imds(&self) -> String {
        format!("http://{}", self.silent_imds.local_addr().unwrap())
    }

    fn sign_in_var(&self, name: &str) -> String {
        self.azure.emulator().sign_in_env()[name].clone()
    }

    /// The variables each sign-in place gives a process.
    fn environment(&self, method: &str) -> BTreeMap<String, String> {
        let mut vars = self.base();
        let mut set = |names: &[&str]| {
            for name in names {
                vars.insert(name.to_string(), self.sign_in_var(name));
            }
        };
        match method {
            "github-oidc" => set(&["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"]),
            "azure-pipelines-oidc" => {
                set(&["SYSTEM_OIDCREQUESTURI", "SYSTEM_ACCESSTOKEN", "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"])
            }
            "app-service" => set(&["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]),
            "imds" => set(&["ACRLINK_IMDS_ENDPOINT"]),
            "azure-arc" => vars.extend(self.azure.emulator().arc_sign_in_env()),
            _ => {}
        }
        let client = match method {
            "service-principal" => Some(self.azure.emulator().env()["AZURE_CLIENT_ID"].clone()),
            "github-oidc" => Some(GITHUB_CLIENT.to_string()),
            "azure-pipelines-oidc" => Some(PIPELINES_CLIENT.to_string()),
            "workload-identity" => Some(WORKLOAD_CLIENT.to_string()),
            _ => None,
        };
        if let Some(client) = client {
            vars.insert("AZURE_CLIENT_ID".into(), client);
        }
        if method == "service-principal" {
            vars.insert("AZURE_CLIENT_SECRET".into(), self.azure.emulator().env()["AZURE_CLIENT_SECRET"].clone());
        }
        if method == "workload-identity" {
            let file = self.dir.path().join("azure-identity-token");
            std::fs::write(&file, projected_token()).unwrap();
            vars.insert("AZURE_FEDERATED_TOKEN_FILE".into(), file.display().to_string());
        }
        vars
    }

    fn run(&self, vars: &BTreeMap<String, String>, args: &[&str]) -> Output {
        run_in(self.dir.path(), vars, args)
    }

    fn requests(&self, operation: &str) -> u64 {
        self.azure.emulator().ledger().entries.iter().filter(|e| e.operation == operation).map(|e| e.count).sum()
    }
}

fn run_in(dir: &Path, vars: &BTreeMap<String, String>, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_acrlink"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(vars)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run the acrlink binary");
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A projected service-account token as AKS writes it for workload identity.
fn projected_token() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "iss": WORKLOAD_ISSUER, "sub": WORKLOAD_SUBJECT, "aud": ["api://AzureADTokenExchange"],
        "iat": now, "nbf": now, "exp": now + 3600,
    });
    let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#);
    format!("{head}.{}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()), URL_SAFE_NO_PAD.encode("signature"))
}

#[track_caller]
fn assert_planned(output: &Output, what: &str) {
    output.assert_no_panic();
    assert!(matches!(output.code, Some(0 | 2)), "{what}: plan exits 0 or 2\n{output}");
    assert!(!output.stderr.to_lowercase().contains("error"), "{what}: no errors\n{output}");
    assert!(
        !output.stdout.contains(SECRET_CANARY) && !output.stderr.contains(SECRET_CANARY),
        "{what}: a secret leaked"
    );
}

/// (the place, the method `auto` should pick there).
const PLACES: [(&str, &str); 7] = [
    ("service-principal", "service-principal"),
    ("workload-identity", "workload-identity"),
    ("github-oidc", "github-oidc"),
    ("azure-pipelines-oidc", "azure-pipelines-oidc"),
    ("app-service", "managed-identity"),
    ("imds", "managed-identity"),
    ("azure-arc", "managed-identity"),
];

#[test]
fn every_method_signs_in_and_plans_and_auto_picks_the_one_each_place_offers() {
    let place = Place::start();
    for (environment, method) in PLACES {
        let vars = place.environment(environment);
        let explicit = place.run(&vars, &["plan", "--auth", method, "--color", "never", "--detailed-exitcode"]);
        assert_planned(&explicit, &format!("--auth {method} in {environment}"));

        let auto = place.run(&vars, &["-v", "plan", "--color", "never", "--detailed-exitcode"]);
        assert_planned(&auto, &format!("--auth auto in {environment}"));
        assert!(
            auto.stderr.contains(&format!("signed in to Azure with {method}")),
            "auto in {environment} picks {method}\n{auto}"
        );
    }
    assert!(place.requests("GitHub_IdToken") >= 2, "the GitHub token service was used");
    assert!(place.requests("Pipelines_OidcToken") >= 2, "the Pipelines token service was used");
    assert!(
        place.requests("AppService_Token") >= 2 && place.requests("Imds_Token") >= 2,
        "both MI endpoints were used"
    );
    // Azure Arc: each sign-in is a challenge and the request repeated with the key.
    assert!(place.requests("Arc_Token") >= 4, "the Azure Arc identity service was used");
}

#[test]
fn azure_arc_keys_are_read_only_from_the_agent_key_directory() {
    let place = Place::start();
    // The service's challenge names a file outside the directory acrlink reads keys from.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut vars = place.environment("azure-arc");
    vars.insert("ACRLINK_ARC_KEY_DIRECTORY".into(), elsewhere.path().display().to_string());
    let refused = place.run(&vars, &["plan", "--auth", "managed-identity", "--color", "never"]);
    refused.assert_exit(1).assert_no_panic();
    assert!(refused.stderr.contains("refused the key file"), "{refused}");
    assert!(refused.stderr.contains(&format!("keys are read only from {}", elsewhere.path().display())), "{refused}");
    assert_eq!(place.requests("Arc_Token"), 1, "the key was never sent");
    // Arc has only the machine's system-assigned identity.
    let mut vars = place.environment("azure-arc");
    vars.insert("AZURE_CLIENT_ID".into(), USER_ASSIGNED_CLIENT.into());
    let refused = place.run(&vars, &["plan", "--auth", "managed-identity", "--color", "never"]);
    refused.assert_exit(1).assert_no_panic();
    assert!(refused.stderr.contains("only the machine's system-assigned identity"), "{refused}");
    // The challenge keys never show, even at -vvv.
    let vars = place.environment("azure-arc");
    let output = place.run(&vars, &["-vvv", "plan", "--auth", "managed-identity", "--color", "never"]);
    assert_planned(&output, "Azure Arc at -vvv");
    for file in std::fs::read_dir(&vars["ACRLINK_ARC_KEY_DIRECTORY"]).unwrap() {
        let key = std::fs::read_to_string(file.unwrap().path()).unwrap();
        assert!(!output.stdout.contains(&key) && !output.stderr.contains(&key), "an Azure Arc key leaked");
    }
}

#[test]
fn auto_with_nothing_to_sign_in_with_names_every_method_and_why_quickly() {
    let place = Place::start();
    let started = Instant::now();
    let output = place.run(&place.base(), &["plan", "--color", "never"]);
    let took = started.elapsed();
    output.assert_exit(1).assert_no_panic();
    let imds = format!("no answer from IMDS at {} within 1 s", place.silent_imds());
    for (method, why) in [
        ("service-principal", "AZURE_CLIENT_SECRET is not set"),
        ("workload-identity", "AZURE_FEDERATED_TOKEN_FILE is not set"),
        ("github-oidc", "ACTIONS_ID_TOKEN_REQUEST_URL is not set"),
        ("azure-pipelines-oidc", "SYSTEM_OIDCREQUESTURI is not set"),
        ("managed-identity", imds.as_str()),
        ("azure-cli", "neither az nor azd is on PATH"),
    ] {
        assert!(
            output.stderr.contains(&format!("{method}: ")) && output.stderr.contains(why),
            "{method}: {why}\n{output}"
        );
    }
    assert_eq!(output.stderr.matches("no sign-in method worked").count(), 1, "one message\n{output}");
    assert!(took < Duration::from_secs(15), "no long silent waits: {took:?}");
}

#[test]
fn auto_moves_on_from_a_method_that_fails_and_reports_it() {
    let place = Place::start();
    // GitHub variables present but the request token is wrong; the machine's IMDS works.
    let mut vars = place.environment("imds");
    vars.insert("ACTIONS_ID_TOKEN_REQUEST_URL".into(), place.sign_in_var("ACTIONS_ID_TOKEN_REQUEST_URL"));
    vars.insert("ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(), "wrong".into());
    vars.insert("AZURE_CLIENT_ID".into(), VM_CLIENT.into());
    let output = place.run(&vars, &["-vv", "plan", "--color", "never"]);
    assert_planned(&output, "auto past a failing method");
    assert!(output.stderr.contains("signed in to Azure with managed-identity"), "{output}");
    assert!(output.stderr.contains("sign-in method failed") && output.stderr.contains("401"), "{output}");
    assert!(!output.stderr.contains("wrong"), "the request token is not shown\n{output}");
}

#[test]
fn an_explicit_method_without_its_variables_says_what_is_missing() {
    let place = Place::start();
    for (method, missing) in [
        ("github-oidc", "ACTIONS_ID_TOKEN_REQUEST_URL is not set"),
        ("azure-pipelines-oidc", "SYSTEM_OIDCREQUESTURI is not set"),
        ("workload-identity", "AZURE_FEDERATED_TOKEN_FILE is not set"),
        ("service-principal", "AZURE_CLIENT_SECRET is not set"),
    ] {
        let output = place.run(&place.base(), &["plan", "--auth", method, "--color", "never"]);
        output.assert_exit(1);
        assert!(output.stderr.contains(&format!("--auth {method} cannot be used: {missing}")), "{output}");
    }
}

#[test]
fn ci_id_tokens_are_fetched_again_for_every_entra_token() {
    // Entra tokens living under azure_identity's five-minute refresh margin: every ARM and
    // cluster request needs a new one, as in a run outliving its tokens.
    let place = Place::with_settings("token_lifetime_seconds = 120");
    let vars = place.environment("github-oidc");
    let output = place.run(&vars, &["plan", "--auth", "github-oidc", "--color", "never"]);
    assert_planned(&output, "github-oidc with short tokens");
    let tokens = place.requests("Token");
    assert!(tokens > 2, "tokens were refreshed during the run: {tokens}");
    assert_eq!(place.requests("GitHub_IdToken"), tokens, "one fresh ID token per Entra token");
}
#[test]
fn a_user_assigned_identity_is_chosen_by_client_id() {
    let place = Place::start();
    let mut vars = place.environment("imds");
    vars.insert("AZURE_CLIENT_ID".into(), USER_ASSIGNED_CLIENT.into());
    assert_planned(&place.run(&vars, &["plan", "--auth", "managed-identity", "--color", "never"]), "user-assigned");
    // --client-id says the same on the command line, over AZURE_CLIENT_ID.
    let mut flagged = vars.clone();
    flagged.insert("AZURE_CLIENT_ID".into(), GITHUB_CLIENT.into());
    let args = ["plan", "--auth", "managed-identity", "--client-id", USER_ASSIGNED_CLIENT, "--color", "never"];
    assert_planned(&place.run(&flagged, &args), "--client-id");
    // An identity the machine does not carry is refused, and said so.
    vars.insert("AZURE_CLIENT_ID".into(), GITHUB_CLIENT.into());
    let refused = place.run(&vars, &["plan", "--auth", "managed-identity", "--color", "never"]);
    refused.assert_exit(1);
    assert!(refused.stderr.contains(&format!("user-assigned identity {GITHUB_CLIENT}")), "{refused}");
}

// Least privilege (the README's table): the deployer holds only these custom roles, on
// clusters that authorise Kubernetes requests with Azure RBAC, so both Azure's and
// Kubernetes' permissions are checked on every call.

const SUBSCRIPTIONS: [&str; 2] = ["1d6c45e0-bd9f-4771-bb67-36616452f239", "0cbb9123-6397-4a37-97d1-8efa0a25043b"];

/// What plan and drift need: read everything, get the clusters' user kubeconfig, list the
/// admin credentials of registries bound through their admin user (plan compares them with
/// the pull Secrets), read Kubernetes Secrets, ServiceAccounts and Namespaces.
const READ_ACTIONS: &[&str] = &[
    "*/read",
    "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    "Microsoft.ContainerRegistry/registries/listCredentials/action",
];
const READ_DATA_ACTIONS: &[&str] = &[
    "Microsoft.ContainerService/managedClusters/secrets/read",
    "Microsoft.ContainerService/managedClusters/serviceaccounts/read",
    "Microsoft.ContainerService/managedClusters/namespaces/read",
];
/// What apply adds: role assignments on registries (delete: pruning orphans), repository-scoped
/// tokens, their scope maps and passwords, and writing Secrets, ServiceAccounts and (with
/// `create_namespaces`) Namespaces; reading Pods lets apply name those that need a restart
/// to use a new pull Secret.
const APPLY_ACTIONS: &[&str] = &[
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleAssignments/delete",
    "Microsoft.ContainerRegistry/registries/generateCredentials/action",
    "Microsoft.ContainerRegistry/registries/tokens/*",
    "Microsoft.ContainerRegistry/registries/scopeMaps/*",
];
const APPLY_DATA_ACTIONS: &[&str] = &[
    "Microsoft.ContainerService/managedClusters/secrets/write",
    "Microsoft.ContainerService/managedClusters/serviceaccounts/write",
    "Microsoft.ContainerService/managedClusters/namespaces/write",
    "Microsoft.ContainerService/managedClusters/pods/read",
];

fn quoted(list: &[&str]) -> String {
    list.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
}

/// The demo world with Azure RBAC clusters and the deployer holding `actions` and
/// `data_actions` (a custom role at both subscriptions) instead of Owner.
fn least_privilege_world(actions: &[&str], data_actions: &[&str]) -> String {
    let demo = std::fs::read_to_string(repo_root().join("examples/demo/world.toml")).unwrap();
    let demo = demo.replace("[[clusters]]\n", "[[clusters]]\naad = true\nazure_rbac = true\n");
    let owner_grants = format!(
        "roles = [\n  {{ role = \"Owner\", scope = \"/subscriptions/{}\" }},\n  {{ role = \"Owner\", scope = \"/subscriptions/{}\" }},\n]",
        SUBSCRIPTIONS[0], SUBSCRIPTIONS[1]
    );
    assert!(demo.contains(&owner_grants), "the demo deployer is Owner of both subscriptions");
    let grants = format!(
        "roles = [\n  {{ role = \"acrlink\", scope = \"/subscriptions/{}\" }},\n  {{ role = \"acrlink\", scope = \"/subscriptions/{}\" }},\n]",
        SUBSCRIPTIONS[0], SUBSCRIPTIONS[1]
    );
    let demo = demo.replacen(&owner_grants, &grants, 1);
    format!(
        "{demo}\n[[role_definitions]]\nid = \"0a1b2c3d-0000-4000-8000-00000000acd1\"\nname = \"acrlink\"\nactions = [{}]\ndata_actions = [{}]\n",
        quoted(actions),
        quoted(data_actions)
    )
}

fn least_privilege_place(
    actions: &[&str],
    data_actions: &[&str],
) -> (Emulated, tempfile::TempDir, BTreeMap<String, String>) {
    let azure = Emulated::start(&least_privilege_world(actions, data_actions));
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(repo_root().join("examples/demo/acrlink.toml")).unwrap();
    write_config(dir.path(), &config);
    let mut vars: BTreeMap<String, String> = azure.emulator().env().into_iter().collect();
    vars.insert("PATH".into(), "/nonexistent".into());
    vars.insert("ACRLINK_RETRY_BUDGET_SECONDS".into(), "60".into());
    vars.insert("ACRLINK_ARM_REQUESTS_PER_SECOND".into(), "1000".into());
    (azure, dir, vars)
}

fn denial_free(output: &Output) -> bool {
    let text = format!("{}{}", output.stdout, output.stderr).to_lowercase();
    !["authorizationfailed", "forbidden", "does not have authorization", "error", "cannot read"]
        .iter()
        .any(|w| text.contains(w))
}

#[test]
fn plan_and_drift_need_only_read_the_cluster_user_kubeconfig_and_kubernetes_reads() {
    let (_owner_azure, owner_dir, owner_vars) = least_privilege_place(&["*"], &["*"]);
    let reference = run_in(owner_dir.path(), &owner_vars, &["plan", "--color", "never", "--detailed-exitcode"]);
    reference.assert_exit(2);

    let (_azure, dir, vars) = least_privilege_place(READ_ACTIONS, READ_DATA_ACTIONS);
    let plan = run_in(dir.path(), &vars, &["plan", "--color", "never", "--detailed-exitcode"]);
    plan.assert_exit(2);
    assert!(denial_free(&plan), "{plan}");
    assert_eq!(plan.stdout, reference.stdout, "the reader's plan is the Owner's plan");
    let drift = run_in(dir.path(), &vars, &["drift", "--color", "never"]);
    assert!(matches!(drift.code, Some(0 | 2)) && denial_free(&drift), "{drift}");

    // Without the cluster user kubeconfig, plan cannot see inside the clusters, and says so.
    let (_azure, dir, vars) = least_privilege_place(&["*/read"], READ_DATA_ACTIONS);
    let blind = run_in(dir.path(), &vars, &["plan", "--color", "never", "--detailed-exitcode"]);
    assert!(blind.stdout != reference.stdout || !denial_free(&blind), "listClusterUserCredential is needed\n{blind}");
}

#[test]
fn apply_needs_role_assignment_writes_pull_secret_credentials_and_kubernetes_writes() {
    let actions: Vec<&str> = READ_ACTIONS.iter().chain(APPLY_ACTIONS).copied().collect();
    let data_actions: Vec<&str> = READ_DATA_ACTIONS.iter().chain(APPLY_DATA_ACTIONS).copied().collect();
    let (_azure, dir, vars) = least_privilege_place(&actions, &data_actions);
    let apply = run_in(dir.path(), &vars, &["apply", "--auto-approve", "--color", "never"]);
    apply.assert_exit(0);
    assert!(denial_free(&apply), "{apply}");
    let again = run_in(dir.path(), &vars, &["plan", "--color", "never", "--detailed-exitcode"]);
    again.assert_exit(0);
}

#[test]
fn each_apply_permission_is_needed_by_the_demo_fleet() {
    let all_actions: Vec<&str> = READ_ACTIONS.iter().chain(APPLY_ACTIONS).copied().collect();
    let all_data: Vec<&str> = READ_DATA_ACTIONS.iter().chain(APPLY_DATA_ACTIONS).copied().collect();
    fn without<'a>(list: &[&'a str], gone: &str) -> Vec<&'a str> {
        list.iter().copied().filter(|a| *a != gone).collect()
    }
    let mut unneeded = Vec::new();
    for gone in APPLY_ACTIONS.iter().chain(APPLY_DATA_ACTIONS) {
        let (_azure, dir, vars) = least_privilege_place(&without(&all_actions, gone), &without(&all_data, gone));
        let apply = run_in(dir.path(), &vars, &["apply", "--auto-approve", "--color", "never"]);
        apply.assert_no_panic();
        if apply.code == Some(0) && denial_free(&apply) {
            unneeded.push(*gone);
        }
    }
    assert!(unneeded.is_empty(), "apply was clean without {unneeded:?}");
}

/// The demo in a sovereign cloud: the emulator's world and acrlink's file name the cloud;
/// acrlink asks Entra for that cloud's ARM audience (from its one table) and finds the
/// registries under that cloud's suffix.
#[test]
fn each_sovereign_cloud_signs_in_with_its_own_audience_and_plans() {
    for (cloud, suffix) in [("AzureChinaCloud", "azurecr.cn"), ("AzureUSGovernment", "azurecr.us")] {
        let demo = std::fs::read_to_string(repo_root().join("examples/demo/world.toml")).unwrap();
        let world = demo.replacen("[tenant]\n", &format!("[tenant]\ncloud = \"{cloud}\"\n"), 1);
        let azure = Emulated::start(&world);
        let dir = tempfile::tempdir().unwrap();
        let config = std::fs::read_to_string(repo_root().join("examples/demo/acrlink.toml")).unwrap();
        let mut vars: BTreeMap<String, String> = azure.emulator().env().into_iter().collect();
        vars.insert("PATH".into(), "/nonexistent".into());
        vars.insert("ACRLINK_ARM_REQUESTS_PER_SECOND".into(), "1000".into());

        write_config(dir.path(), &config.replacen("[azure]\n", &format!("[azure]\ncloud = \"{cloud}\"\n"), 1));
        let plan = run_in(dir.path(), &vars, &["plan", "--color", "never", "--detailed-exitcode"]);
        assert_planned(&plan, cloud);
        assert!(plan.stdout.contains(&format!("vendorimages.{suffix}")), "{cloud}: registries under {suffix}\n{plan}");

        // The same file without the cloud asks for public cloud's audience, which that cloud's
        // Entra does not know.
        write_config(dir.path(), &config);
        let wrong = run_in(dir.path(), &vars, &["plan", "--color", "never"]);
        wrong.assert_exit(1);
        assert!(
            wrong.stderr.contains("AADSTS500011") && wrong.stderr.contains("management.azure.com"),
            "{cloud}\n{wrong}"
        );
    }
}

#[test]
fn a_failed_sign_in_names_the_host_the_entra_code_and_what_to_do() {
    let place = Place::start();
    let authority = place.azure.emulator().env()["AZURE_AUTHORITY_HOST"].clone();
    let host = authority.trim_start_matches("https://").trim_end_matches('/').to_string();
    let good = place.environment("service-principal");
    let cases = [
        ("AZURE_CLIENT_SECRET", "not-the-secret", "AADSTS7000215", "AZURE_CLIENT_SECRET"),
        ("AZURE_TENANT_ID", "0f0f0f0f-0000-4000-8000-000000000000", "AADSTS90002", "AZURE_TENANT_ID"),
        ("AZURE_CLIENT_ID", "0f0f0f0f-0000-4000-8000-0000000000cc", "AADSTS700016", "AZURE_CLIENT_ID"),
    ];
    for (name, value, code, hint) in cases {
        let mut vars = good.clone();
        vars.insert(name.into(), value.into());
        let output = place.run(&vars, &["plan", "--auth", "service-principal", "--color", "never"]);
        output.assert_exit(1).assert_no_panic();
        let error = output.stderr.lines().find(|l| l.contains(code)).unwrap_or_else(|| panic!("{code}\n{output}"));
        assert!(error.contains(&host), "names the sign-in host {host}\n{output}");
        assert!(
            output.stderr.contains("hint:") && output.stderr.contains(hint),
            "{code}: a hint naming {hint}\n{output}"
        );
        // The specific advice, not also the generic menu of sign-in methods under it.
        assert!(!output.stderr.contains("choose a method with --auth"), "{code}: only the specific hint\n{output}");
    }
    // Nothing listens: refused connections fail within seconds, naming the host.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let mut vars = good.clone();
    vars.insert("AZURE_AUTHORITY_HOST".into(), format!("https://{address}/"));
    let started = Instant::now();
    let output = place.run(&vars, &["plan", "--auth", "service-principal", "--color", "never"]);
    output.assert_exit(1).assert_no_panic();
    assert!(started.elapsed() < Duration::from_secs(15), "refused fast: {:?}\n{output}", started.elapsed());
    assert!(output.stderr.contains(&address.to_string()), "names {address}\n{output}");
}
