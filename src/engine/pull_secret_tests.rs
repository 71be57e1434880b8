//! Pull-secret bindings end to end through the engine, on the in-memory fakes.

use std::path::Path;

use super::*;
use crate::apply::{ApplyOptions, Status, apply};
use crate::engine;
use crate::plan::{Action, Plan, Resource};
use crate::provider::fake::{FakeAzure, fleet_fixture};
use crate::provider::fake_kube::FakeKube;
use crate::provider::kubernetes::LiveServiceAccount;
use crate::sensitive::Sensitive;

const SUB: &str = "1d6c45e0-bd9f-4771-bb67-36616452f239";
const CANARY: &str = "CANARY-admin-pa55word-7f3e";

fn registry_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/platform-rg/providers/Microsoft.ContainerRegistry/registries/{name}")
}

fn config(extra: &str) -> Config {
    let text = format!(
        r#"version = 1
[azure]
subscription_id = "{SUB}"
[registries.sharedacr]
resource_group = "platform-rg"
[registries.abacacr]
resource_group = "platform-rg"
[clusters.aks1]
resource_group = "dev-rg"
[clusters.aks2]
resource_group = "dev-rg"
{extra}
"#
    );
    let (config, diagnostics) = crate::config::validate_text(&text, Path::new("acrlink.toml"));
    config.unwrap_or_else(|| panic!("{diagnostics:?}"))
}

const BOTH: &str = r#"
[[bindings]]
name = "admin"
clusters = ["*"]
registries = ["sharedacr"]
method = "pull-secret"
credential = "admin"
namespaces = ["default", "apps"]
secret_name = "acr-pull"
service_accounts = ["default"]
[[bindings]]
name = "tokens"
clusters = ["aks1"]
registries = ["abacacr"]
method = "pull-secret"
credential = "registry-token"
repositories = ["team/*"]
namespaces = ["apps"]
secret_name = "acr-pull"
"#;

fn azure() -> FakeAzure {
    let mut azure = fleet_fixture();
    for registry in &mut azure.registries {
        registry.admin_user_enabled = true;
    }
    azure
        .admin_passwords
        .lock()
        .unwrap()
        .insert(crate::provider::normalize_id(&registry_id("sharedacr")), CANARY.into());
    azure
}

fn kube() -> FakeKube {
    FakeKube::default()
        .with_cluster("aks1", &["default", "apps", "kube-system"])
        .with_cluster("aks2", &["default", "apps"])
}

async fn plan(config: &Config, azure: &FakeAzure, kube: &FakeKube) -> Plan {
    engine::plan(config, "d", azure, kube).await.plan
}

async fn converge(config: &Config, azure: &FakeAzure, kube: &FakeKube) -> Plan {
    let first = plan(config, azure, kube).await;
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let report = apply(&first, azure, kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed() + report.skipped(), 0, "{:?}", report.outcomes);
    first
}

fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.changes.iter().map(|c| (c.address.to_string(), c.action)).collect()
}

fn payload(kube: &FakeKube, cluster: &str, namespace: &str) -> serde_json::Value {
    let secret = kube.secret(cluster, namespace, "acr-pull").expect("secret");
    serde_json::from_slice(secret.docker_config.expect("payload").expose()).unwrap()
}

#[tokio::test]
async fn converges_merging_registries_per_secret_and_a_second_plan_is_empty() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    let first = converge(&config, &azure, &kube).await;
    let addresses: Vec<String> = first.changes.iter().map(|c| c.address.to_string()).collect();
    assert!(
        addresses.iter().any(|a| a.starts_with("scope_map[abacacr/acrlink-") && a.contains("-tokens-")),
        "{addresses:?}"
    );
    assert!(
        addresses.iter().any(|a| a.starts_with("registry_token[abacacr/acrlink-") && a.contains("-aks1-")),
        "{addresses:?}"
    );
    for address in ["secret[aks1/apps/acr-pull]", "secret[aks2/default/acr-pull]", "service_account[aks2/apps/default]"]
    {
        assert!(addresses.contains(&address.to_string()), "{address} in {addresses:?}");
    }
    // One Secret holds both registries where both bindings meet.
    let both = payload(&kube, "aks1", "apps");
    assert_eq!(both["auths"]["sharedacr.azurecr.io"]["password"], CANARY);
    assert!(both["auths"]["abacacr.azurecr.io"]["password"].as_str().unwrap().starts_with("generated-"));
    assert_eq!(payload(&kube, "aks2", "apps")["auths"].as_object().unwrap().len(), 1);
    let account = kube.service_account("aks1", "apps", "default").unwrap();
    assert_eq!(account.image_pull_secrets, Some(vec!["acr-pull".to_string()]));

    let second = plan(&config, &azure, &kube).await;
    assert!(second.changes.is_empty(), "{:?}", actions(&second));
    // Nothing a plan prints or saves carries the credential.
    for text in [
        crate::render::plan::text(&first),
        crate::render::plan::json(&first),
        crate::render::plan::markdown(&first),
        format!("{first:?}"),
    ] {
        assert!(!text.contains(CANARY) && !text.contains("generated-"), "{text}");
    }
}

#[tokio::test]
async fn kubernetes_reads_per_cluster_do_not_grow_with_namespaces() {
    let many = BOTH.replace(r#"namespaces = ["default", "apps"]"#, r#"namespaces = ["*"]"#);
    let (config, azure) = (self::config(&many), azure());
    let kube =
        FakeKube::default().with_cluster("aks1", &["a", "b", "c", "d", "e", "f", "apps"]).with_cluster("aks2", &["x"]);
    let _ = plan(&config, &azure, &kube).await;
    // namespaces, Secrets named acr-pull, acrlink's Secrets, ServiceAccounts named default, patched ones.
    assert_eq!(kube.calls_for("aks1"), 5);
    assert_eq!(kube.calls_for("aks2"), 5);
}

#[tokio::test]
async fn a_regenerated_admin_password_is_drift_shown_as_a_sensitive_change_and_repaired() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    converge(&config, &azure, &kube).await;
    azure
        .admin_passwords
        .lock()
        .unwrap()
        .insert(crate::provider::normalize_id(&registry_id("sharedacr")), "new-pass-4b1".into());
    let drift = plan(&config, &azure, &kube).await;
    assert_eq!(drift.changes.len(), 4, "{:?}", actions(&drift));
    assert!(drift.changes.iter().all(|c| c.action == Action::Update));
    let text = crate::render::plan::text(&drift);
    assert!(text.contains("(sensitive value changed)"), "{text}");
    assert!(!text.contains("new-pass-4b1"));
    let report = apply(&drift, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    assert_eq!(payload(&kube, "aks2", "default")["auths"]["sharedacr.azurecr.io"]["password"], "new-pass-4b1");
    assert!(plan(&config, &azure, &kube).await.changes.is_empty());
}

#[tokio::test]
async fn a_secret_another_writer_touched_meanwhile_is_read_again_and_updated() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    converge(&config, &azure, &kube).await;
    azure
        .admin_passwords
        .lock()
        .unwrap()
        .insert(crate::provider::normalize_id(&registry_id("sharedacr")), "renewed-1".into());
    let plan = plan(&config, &azure, &kube).await;
    kube.replace_conflicts.store(2, std::sync::atomic::Ordering::Relaxed);
    let report =
        apply(&plan, &azure, &kube, &ApplyOptions { parallelism: 1, ..ApplyOptions::default() }, &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    assert_eq!(kube.replace_conflicts.load(std::sync::atomic::Ordering::Relaxed), 0, "both conflicts were met");
    assert!(self::plan(&config, &azure, &kube).await.changes.is_empty());
}

#[tokio::test]
async fn a_service_account_another_writer_patched_meanwhile_is_read_again_and_patched() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    kube.patch_conflicts.store(2, std::sync::atomic::Ordering::Relaxed);
    let plan = plan(&config, &azure, &kube).await;
    let report =
        apply(&plan, &azure, &kube, &ApplyOptions { parallelism: 1, ..ApplyOptions::default() }, &|_| {}).await;
    assert_eq!(report.failed(), 0, "a failed JSON-patch test is a conflict: {:?}", report.outcomes);
    assert_eq!(kube.patch_conflicts.load(std::sync::atomic::Ordering::Relaxed), 0, "both conflicts were met");
    assert!(self::plan(&config, &azure, &kube).await.changes.is_empty());
}

#[tokio::test]
async fn a_namespace_deleted_between_plan_and_apply_is_reported_as_such_not_as_missing_rights() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    let plan = plan(&config, &azure, &kube).await;
    kube.clusters.lock().unwrap().get_mut("aks2").unwrap().terminating.insert("apps".into());
    let report = apply(&plan, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    let outcome = report.outcomes.iter().find(|o| o.address == "secret[aks2/apps/acr-pull]").unwrap();
    assert_eq!(outcome.status, Status::Failed, "{outcome:?}");
    assert!(outcome.message.contains("namespace apps of aks2 is being deleted"), "{outcome:?}");
    let hint = outcome.hint.as_deref().unwrap_or_default();
    assert!(!hint.contains("rights") && hint.contains("plan again"), "{outcome:?}");
    let others = report.outcomes.iter().filter(|o| o.status == Status::Failed).count();
    assert_eq!(others, 1, "only that namespace's Secret fails: {:?}", report.outcomes);
}

#[tokio::test]
async fn an_immutable_secret_of_acrlinks_whose_content_must_change_is_replaced() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    converge(&config, &azure, &kube).await;
    // aks1/apps holds the admin credential and a token password that stays as it is.
    let token_password = payload(&kube, "aks1", "apps")["auths"]["abacacr.azurecr.io"]["password"].clone();
    let mut frozen = kube.secret("aks1", "apps", "acr-pull").unwrap();
    frozen.immutable = true;
    kube.put_secret("aks1", frozen);
    azure
        .admin_passwords
        .lock()
        .unwrap()
        .insert(crate::provider::normalize_id(&registry_id("sharedacr")), "renewed-2".into());
    let plan = plan(&config, &azure, &kube).await;
    let change = plan.changes.iter().find(|c| c.address == "secret[aks1/apps/acr-pull]").unwrap();
    assert_eq!(change.action, Action::Replace, "{change:?}");
    let report = apply(&plan, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    let written = payload(&kube, "aks1", "apps");
    assert_eq!(written["auths"]["sharedacr.azurecr.io"]["password"], "renewed-2");
    assert_eq!(written["auths"]["abacacr.azurecr.io"]["password"], token_password, "the token password is kept");
    assert!(self::plan(&config, &azure, &kube).await.changes.is_empty());
}

#[tokio::test]
async fn an_expiring_token_rotates_into_the_other_slot_and_the_old_one_keeps_working() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    converge(&config, &azure, &kube).await;
    let before = payload(&kube, "aks1", "apps")["auths"]["abacacr.azurecr.io"]["password"].clone();
    // Make the live password expire in 10 days: within the default rotate_before (30 days).
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for token in azure.tokens.lock().unwrap().values_mut().flatten() {
        for password in &mut token.passwords {
            password.expiry = Some(soon.clone());
        }
    }
    let rotation = plan(&config, &azure, &kube).await;
    let token_change =
        rotation.changes.iter().find(|c| c.address.to_string().starts_with("registry_token[")).expect("token change");
    let Resource::RegistryToken { generate: Some(generation), .. } = &token_change.resource else { panic!() };
    assert_eq!(generation.slot, crate::model::PasswordSlot::Password2, "the slot the Secrets do not use");
    let reason = crate::render::reason::reason(&token_change.reason);
    assert!(reason.contains("rotation"), "{reason}");
    let report = apply(&rotation, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    let after = payload(&kube, "aks1", "apps")["auths"]["abacacr.azurecr.io"]["password"].clone();
    assert_ne!(before, after);
    // The password pods had until now is still valid: no moment without a working credential.
    let valid: Vec<String> = azure.token_passwords.lock().unwrap().values().cloned().collect();
    assert!(
        valid.contains(&before.as_str().unwrap().to_string()) && valid.contains(&after.as_str().unwrap().to_string())
    );
}

fn expire_soon(azure: &FakeAzure, slot: Option<&str>) {
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for token in azure.tokens.lock().unwrap().values_mut().flatten() {
        for password in token.passwords.iter_mut().filter(|p| slot.is_none_or(|s| p.name == s)) {
            password.expiry = Some(soon.clone());
        }
    }
}

fn token_generation(plan: &Plan) -> Option<String> {
    plan.changes.iter().find_map(|c| match &c.resource {
        Resource::RegistryToken { generate: Some(g), .. } => Some(g.slot.to_string()),
        _ => None,
    })
}

#[tokio::test]
async fn a_new_namespace_copies_the_working_token_password_instead_of_rotating() {
    let (azure, kube) = (azure(), kube());
    converge(&self::config(BOTH), &azure, &kube).await;
    let wider = self::config(&BOTH.replacen(r#"namespaces = ["apps"]"#, r#"namespaces = ["apps", "default"]"#, 1));
    let plan = plan(&wider, &azure, &kube).await;
    assert_eq!(token_generation(&plan), None, "no rotation: {:?}", actions(&plan));
    assert!(!plan.changes.iter().any(|c| c.address.to_string().starts_with("registry_token[")), "{:?}", actions(&plan));
    let report = apply(&plan, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    let login = "abacacr.azurecr.io";
    assert_eq!(payload(&kube, "aks1", "default")["auths"][login], payload(&kube, "aks1", "apps")["auths"][login]);
    assert!(self::plan(&wider, &azure, &kube).await.changes.is_empty());
}

#[tokio::test]
async fn a_rotation_never_regenerates_a_password_a_secret_still_uses() {
    let (azure, kube) = (azure(), kube());
    let wider = self::config(&BOTH.replacen(r#"namespaces = ["apps"]"#, r#"namespaces = ["apps", "default"]"#, 1));
    converge(&wider, &azure, &kube).await;
    let on_password1 = kube.secret("aks1", "apps", "acr-pull").unwrap();
    // A due rotation goes to the free slot.
    expire_soon(&azure, None);
    let rotation = plan(&wider, &azure, &kube).await;
    assert_eq!(token_generation(&rotation).as_deref(), Some("password2"));
    apply(&rotation, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    // An interrupted earlier apply left one Secret on password1 while password2 is due too.
    kube.put_secret("aks1", on_password1);
    expire_soon(&azure, None);
    let stuck = plan(&wider, &azure, &kube).await;
    assert_eq!(token_generation(&stuck), None, "both slots hold working passwords: {:?}", actions(&stuck));
    assert!(stuck.warnings.iter().any(|w| w.message.contains("waits")), "{:?}", stuck.warnings);
    let report = apply(&stuck, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    // Every Secret is on password2 now, so the next run may regenerate password1.
    let next = plan(&wider, &azure, &kube).await;
    assert_eq!(token_generation(&next).as_deref(), Some("password1"), "{:?}", actions(&next));
}

#[tokio::test]
async fn an_old_token_goes_only_after_the_secrets_moved_off_it() {
    let (azure, kube) = (azure(), kube());
    converge(&self::config(BOTH), &azure, &kube).await;
    let renamed = self::config(&BOTH.replace("name = \"tokens\"", "name = \"tokens-v2\""));
    let plan = plan(&renamed, &azure, &kube).await;
    let old_token = plan
        .changes
        .iter()
        .find(|c| c.action == Action::Delete && c.address.to_string().starts_with("registry_token["))
        .expect("the old token goes");
    assert!(
        old_token.depends_on.contains(&"secret[aks1/apps/acr-pull]".parse().unwrap()),
        "{:?}",
        old_token.depends_on
    );
    let order = std::sync::Mutex::new(Vec::new());
    let options = ApplyOptions { parallelism: 1, ..ApplyOptions::default() };
    let report = apply(&plan, &azure, &kube, &options, &|o| order.lock().unwrap().push(o.address.clone())).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    let order = order.into_inner().unwrap();
    let at = |a: &str| order.iter().position(|x| x == a).unwrap();
    assert!(at("secret[aks1/apps/acr-pull]") < at(&old_token.address.to_string()), "{order:?}");
    assert!(self::plan(&renamed, &azure, &kube).await.changes.is_empty());
}

#[tokio::test]
async fn a_binding_that_stops_using_tokens_leaves_no_token_behind() {
    let (azure, kube) = (azure(), kube());
    azure.admin_passwords.lock().unwrap().insert(crate::provider::normalize_id(&registry_id("abacacr")), "pw".into());
    converge(&self::config(BOTH), &azure, &kube).await;
    let admin_now = self::config(
        &BOTH.replace("credential = \"registry-token\"\nrepositories = [\"team/*\"]", "credential = \"admin\""),
    );
    let plan = plan(&admin_now, &azure, &kube).await;
    let deletes: Vec<String> =
        plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.address.to_string()).collect();
    assert!(deletes.iter().any(|a| a.starts_with("registry_token[abacacr/")), "{deletes:?}");
    assert!(deletes.iter().any(|a| a.starts_with("scope_map[abacacr/")), "{deletes:?}");
    let report = apply(&plan, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    assert!(azure.tokens.lock().unwrap().values().all(|t| t.is_empty()));
    assert!(self::plan(&admin_now, &azure, &kube).await.changes.is_empty());
}

#[tokio::test]
async fn an_unreachable_clusters_token_is_not_taken_for_a_leftover() {
    let (azure, kube) = (azure(), kube());
    converge(&self::config(BOTH), &azure, &kube).await;
    kube.clusters.lock().unwrap().remove("aks1");
    let plan = plan(&self::config(BOTH), &azure, &kube).await;
    assert!(plan.errors.iter().any(|e| e.subject == "cluster[aks1]"), "{:?}", plan.errors);
    assert!(!plan.changes.iter().any(|c| c.action == Action::Delete), "{:?}", actions(&plan));
}

#[tokio::test]
async fn foreign_secrets_are_left_alone_unless_adopted_and_wrong_types_are_replaced() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    let foreign = |type_: &str, managed: bool| crate::provider::kubernetes::LiveSecret {
        namespace: "default".into(),
        name: "acr-pull".into(),
        uid: "uid-foreign".into(),
        resource_version: "7".into(),
        type_: type_.into(),
        immutable: false,
        labels: if managed {
            [("app.kubernetes.io/managed-by".to_string(), "acrlink".to_string())].into()
        } else {
            Default::default()
        },
        annotations: Default::default(),
        docker_config: Some(Sensitive::new(br#"{"auths":{}}"#.to_vec())),
    };
    kube.put_secret("aks2", foreign("kubernetes.io/dockerconfigjson", false));
    kube.put_secret("aks1", foreign("Opaque", true));
    let first = plan(&config, &azure, &kube).await;
    assert!(!first.changes.iter().any(|c| c.address == "secret[aks2/default/acr-pull]"));
    assert!(
        first
            .blocked
            .iter()
            .any(|w| w.subject == "secret[aks2/default/acr-pull]" && w.message.contains("not made by acrlink"))
    );
    // The service account is not pointed at a Secret acrlink does not manage.
    assert!(!first.changes.iter().any(|c| c.address == "service_account[aks2/default/default]"));
    let replace = first.changes.iter().find(|c| c.address == "secret[aks1/default/acr-pull]").unwrap();
    assert_eq!(replace.action, Action::Replace);
    assert!(crate::render::plan::text(&first).contains("-/+"));
    let report = apply(&first, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    assert_eq!(kube.secret("aks1", "default", "acr-pull").unwrap().type_, "kubernetes.io/dockerconfigjson");
    assert_eq!(kube.secret("aks2", "default", "acr-pull").unwrap().uid, "uid-foreign", "untouched");

    let adopting = self::config(&BOTH.replacen(
        "service_accounts = [\"default\"]",
        "service_accounts = [\"default\"]\nadopt = true",
        1,
    ));
    let adopted = plan(&adopting, &azure, &kube).await;
    let change = adopted.changes.iter().find(|c| c.address == "secret[aks2/default/acr-pull]").unwrap();
    assert_eq!(change.action, Action::Update);
    let report = apply(&adopted, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    let outcome = report.outcomes.iter().find(|o| o.address == "secret[aks2/default/acr-pull]").unwrap();
    assert_eq!(outcome.status, Status::Adopted, "{outcome:?}");
    assert!(crate::render::plan::apply_text(&report).contains("1 adopted"), "the summary counts it");
}

#[tokio::test]
async fn service_accounts_keep_other_entries_and_pruning_removes_only_acrlinks() {
    let (bound, azure, kube) = (config(BOTH), azure(), kube());
    kube.put_service_account(
        "aks2",
        LiveServiceAccount {
            uid: "uid-sa".into(),
            namespace: "apps".into(),
            name: "default".into(),
            resource_version: "3".into(),
            image_pull_secrets: Some(vec!["other-tool".into()]),
            labels: Default::default(),
            annotations: Default::default(),
        },
    );
    converge(&bound, &azure, &kube).await;
    let account = kube.service_account("aks2", "apps", "default").unwrap();
    assert_eq!(account.image_pull_secrets, Some(vec!["other-tool".to_string(), "acr-pull".to_string()]));

    // Every pull-secret binding removed but one cluster still bound: acrlink's things go.
    let only_aks1 = config(&BOTH.replacen("clusters = [\"*\"]", "clusters = [\"aks1\"]", 1));
    let prune = plan(&only_aks1, &azure, &kube).await;
    let deletes: Vec<String> =
        prune.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.address.to_string()).collect();
    assert_eq!(deletes, vec!["secret[aks2/apps/acr-pull]", "secret[aks2/default/acr-pull]"], "{:?}", actions(&prune));
    let report = apply(&prune, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    let account = kube.service_account("aks2", "apps", "default").unwrap();
    assert_eq!(account.image_pull_secrets, Some(vec!["other-tool".to_string()]));
    assert!(kube.secret("aks2", "apps", "acr-pull").is_none());
    assert!(plan(&only_aks1, &azure, &kube).await.changes.is_empty());
}

#[tokio::test]
async fn missing_namespaces_are_reported_or_created_and_disabled_admin_is_an_error() {
    let (azure, kube) = (azure(), kube());
    let extra = BOTH.replace(r#"namespaces = ["default", "apps"]"#, r#"namespaces = ["default", "payments"]"#);
    let reported = plan(&config(&extra), &azure, &kube).await;
    assert!(
        reported.warnings.iter().any(|w| w.message.contains("namespace payments does not exist")),
        "{:?}",
        reported.warnings
    );
    let creating =
        extra.replacen("secret_name = \"acr-pull\"", "secret_name = \"acr-pull\"\ncreate_namespaces = true", 1);
    let created = plan(&config(&creating), &azure, &kube).await;
    let secret = created.changes.iter().find(|c| c.address == "secret[aks1/payments/acr-pull]").unwrap();
    assert!(secret.depends_on.contains(&"namespace[aks1/payments]".parse().unwrap()));
    let report = apply(&created, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    assert!(kube.secret("aks1", "payments", "acr-pull").is_some());

    let mut disabled = self::azure();
    for registry in &mut disabled.registries {
        registry.admin_user_enabled = false;
    }
    let refused = plan(&config(BOTH), &disabled, &kube).await;
    let error = refused.errors.iter().find(|e| e.message.contains("admin user")).expect("admin error");
    assert!(error.hint.as_deref().unwrap_or_default().contains("registry-token"), "{error:?}");
}

#[tokio::test]
async fn namespaces_by_list_by_star_with_exclusions_and_by_label_selector() {
    let (azure, kube) = (azure(), kube());
    kube.clusters
        .lock()
        .unwrap()
        .get_mut("aks1")
        .unwrap()
        .namespaces
        .insert("payments".into(), [("team".to_string(), "pay".to_string())].into());
    let namespaces_of = |plan: &Plan| -> Vec<String> {
        plan.changes
            .iter()
            .filter(|c| c.address.to_string().starts_with("secret[aks1/"))
            .map(|c| c.address.to_string())
            .collect()
    };
    let star = BOTH.replacen(
        r#"namespaces = ["default", "apps"]"#,
        "namespaces = [\"*\"]\nexclude_namespaces = [\"kube-system\"]",
        1,
    );
    let plan = plan(&self::config(&star), &azure, &kube).await;
    assert_eq!(
        namespaces_of(&plan),
        vec!["secret[aks1/apps/acr-pull]", "secret[aks1/default/acr-pull]", "secret[aks1/payments/acr-pull]"]
    );
    let selected = BOTH.replacen(r#"namespaces = ["default", "apps"]"#, "namespace_selector = \"team=pay\"", 1);
    let plan = self::plan(&self::config(&selected), &azure, &kube).await;
    assert_eq!(
        namespaces_of(&plan),
        vec!["secret[aks1/apps/acr-pull]", "secret[aks1/payments/acr-pull]"],
        "apps comes from the token binding"
    );
}

#[tokio::test]
async fn secrets_edited_or_deleted_behind_acrlinks_back_are_drift() {
    let (config, azure, kube) = (self::config(BOTH), azure(), kube());
    converge(&config, &azure, &kube).await;
    let mut edited = kube.secret("aks2", "default", "acr-pull").unwrap();
    edited.docker_config =
        Some(Sensitive::new(br#"{"auths":{"sharedacr.azurecr.io":{"username":"x","password":"y"}}}"#.to_vec()));
    kube.put_secret("aks2", edited);
    kube.clusters
        .lock()
        .unwrap()
        .get_mut("aks2")
        .unwrap()
        .secrets
        .remove(&("apps".to_string(), "acr-pull".to_string()));
    let mut account = kube.service_account("aks1", "default", "default").unwrap();
    account.image_pull_secrets = Some(Vec::new());
    kube.put_service_account("aks1", account);
    let drift = plan(&config, &azure, &kube).await;
    let found = actions(&drift);
    assert!(found.contains(&("secret[aks2/default/acr-pull]".into(), Action::Update)), "{found:?}");
    assert!(found.contains(&("secret[aks2/apps/acr-pull]".into(), Action::Create)), "{found:?}");
    assert!(found.contains(&("service_account[aks1/default/default]".into(), Action::Update)), "{found:?}");
    let edited = drift.changes.iter().find(|c| c.address == "secret[aks2/default/acr-pull]").unwrap();
    let reason = crate::render::reason::reason(&edited.reason);
    assert!(reason.contains("edited outside acrlink"), "{reason}");
    let report = apply(&drift, &azure, &kube, &ApplyOptions::default(), &|_| {}).await;
    assert_eq!(report.failed(), 0, "{:?}", report.outcomes);
    assert!(plan(&config, &azure, &kube).await.changes.is_empty());
    assert!(report.outcomes.iter().all(|o| o.status != Status::Failed));
}

const SERVICE_PRINCIPAL: &str = r#"
[[bindings]]
name = "partner"
clusters = ["aks1"]
registries = ["sharedacr"]
method = "pull-secret"
credential = "service-principal"
client_id = "6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11"
client_secret_file = "SECRET_FILE"
namespaces = ["default"]
"#;

/// Graph refuses the lookup (no directory read permission): an error that names both ways
/// out; with `principal_object_id` on the binding no lookup is made at all.
#[tokio::test]
async fn a_refused_principal_lookup_names_both_ways_out_and_an_object_id_skips_it() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "partner-secret").unwrap();
    let binding = SERVICE_PRINCIPAL.replace("SECRET_FILE", &secret.path().display().to_string());
    let kube = kube();
    let mut azure = azure();
    azure.graph_denied = true;
    let refused = plan(&config(&binding), &azure, &kube).await;
    let error = refused.errors.iter().find(|e| e.subject.contains("6b2ed2b0")).expect("the lookup's error");
    let hint = error.hint.as_deref().unwrap_or_default();
    assert!(error.message.contains("Microsoft Graph"), "{error:?}");
    assert!(hint.contains("Application.Read.All") && hint.contains("principal_object_id"), "{hint}");

    let given = binding.replace(
        "namespaces = [\"default\"]",
        "principal_object_id = \"5e1f7a20-3c4d-4b6e-9a8b-7c6d5e4f3a2b\"\nnamespaces = [\"default\"]",
    );
    let planned = plan(&config(&given), &azure, &kube).await;
    assert!(planned.errors.is_empty(), "{:?}", planned.errors);
    let grant = planned
        .changes
        .iter()
        .find(|c| c.address == "role_assignment[sp:6b2ed2b0-1f0a-4b5e-9f1e-2a7f0c3d9e11/sharedacr]")
        .expect("the principal's grant");
    let Resource::RoleAssignment { spec, .. } = &grant.resource else { panic!("a role assignment") };
    assert_eq!(spec.principal_id, "5e1f7a20-3c4d-4b6e-9a8b-7c6d5e4f3a2b");
}
