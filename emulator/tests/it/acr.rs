//! ACR registries, admin credentials, scope maps and tokens with their long-running
//! operations, and token password generation.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

const ACR: &str = "api-version=2025-11-01";

fn registry(name: &str) -> String {
    format!("/subscriptions/{PROD}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/{name}")
}

#[tokio::test]
async fn get_and_list_registries() {
    let env = start().await;
    let answer = env.get(&format!("{}?{ACR}", registry("acrprod"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer}");
    assert_eq!(answer.body["properties"]["loginServer"], "acrprod.azurecr.io");
    assert_eq!(answer.body["properties"]["adminUserEnabled"], true);
    assert_eq!(answer.body["properties"]["roleAssignmentMode"], "LegacyRegistryPermissions");
    assert_eq!(answer.body["sku"]["name"], "Premium");
    let abac = env.get(&format!("{}?{ACR}", registry("acrabac"))).await;
    assert_eq!(abac.body["properties"]["roleAssignmentMode"], "AbacRepositoryPermissions");
    let older = env.get(&format!("{}?api-version=2023-07-01", registry("acrabac"))).await;
    assert!(older.body["properties"].get("roleAssignmentMode").is_none(), "not in api-versions before 2025-11-01");

    let (all, _) =
        env.list_all(&format!("/subscriptions/{PROD}/providers/Microsoft.ContainerRegistry/registries?{ACR}")).await;
    assert_eq!(sorted_names(&all), ["acrabac", "acrprod"]);
    let (rg, _) = env
        .list_all(&format!(
            "/subscriptions/{PROD}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries?{ACR}"
        ))
        .await;
    assert_eq!(rg.len(), 2);
}

#[tokio::test]
async fn admin_credentials_follow_the_admin_user_switch() {
    let env = start().await;
    let creds = env.post(&format!("{}/listCredentials?{ACR}", registry("acrprod")), None).await;
    assert_eq!(creds.status, StatusCode::OK);
    assert_eq!(creds.body["username"], "acrprod");
    assert_eq!(creds.body["passwords"][0], json!({"name": "password", "value": "first-password"}));
    assert_eq!(creds.body["passwords"][1]["name"], "password2");

    let disabled = env.post(&format!("{}/listCredentials?{ACR}", registry("acrabac")), None).await;
    assert_eq!(disabled.status, StatusCode::BAD_REQUEST);
    assert_eq!(disabled.code(), "UnAuthorizedForCredentialOperations");

    let patched =
        env.patch(&format!("{}?{ACR}", registry("acrabac")), &json!({"properties": {"adminUserEnabled": true}})).await;
    assert_eq!(patched.body["properties"]["adminUserEnabled"], true);
    let now = env.post(&format!("{}/listCredentials?{ACR}", registry("acrabac")), None).await;
    assert_eq!(now.status, StatusCode::OK);

    let regenerated = env
        .post(&format!("{}/regenerateCredential?{ACR}", registry("acrprod")), Some(&json!({"name": "password"})))
        .await;
    assert_eq!(regenerated.status, StatusCode::OK);
    let new_password = regenerated.body["passwords"][0]["value"].as_str().unwrap_or_default().to_string();
    assert_ne!(new_password, "first-password");
    assert_eq!(regenerated.body["passwords"][1]["value"], "second-password");
    assert_eq!(env.emulator.state().registry("acrprod").map(|r| r.passwords[0].clone()), Some(new_password));
    let bad = env
        .post(&format!("{}/regenerateCredential?{ACR}", registry("acrprod")), Some(&json!({"name": "password3"})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn credential_actions_need_permission() {
    let env = start().await;
    let reader = fetch_token(&env.client, &env.base, READER_CLIENT, "reader-secret").await;
    let denied = env.post_as(&reader, &format!("{}/listCredentials?{ACR}", registry("acrprod"))).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.message().contains("Microsoft.ContainerRegistry/registries/listCredentials/action"));
    let contributor = fetch_token(&env.client, &env.base, CONTRIBUTOR_CLIENT, "contributor-secret").await;
    assert_eq!(
        env.post_as(&contributor, &format!("{}/listCredentials?{ACR}", registry("acrprod"))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn scope_maps_are_long_running_crud() {
    let env = start().await;
    let (maps, _) = env.list_all(&format!("{}/scopeMaps?{ACR}", registry("acrprod"))).await;
    let names = sorted_names(&maps);
    assert!(
        names.contains(&"_repositories_pull".to_string()) && names.contains(&"team-a-pull".to_string()),
        "{names:?}"
    );

    let map = format!("{}/scopeMaps/team-b-pull", registry("acrprod"));
    let body = json!({"properties": {"description": "team b", "actions": ["repositories/team-b/api/content/read"]}});
    let created = env.put(&format!("{map}?{ACR}"), &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created}");
    assert_eq!(created.body["properties"]["provisioningState"], "Creating");
    let poll = created.header("azure-asyncoperation").expect("Azure-AsyncOperation header").to_string();
    assert!(poll.starts_with(&format!("{}{map}/operationStatuses/scopemaps-", env.base)), "{poll}");
    assert!(poll.contains(ACR));
    let first = env.get(&poll).await;
    assert_eq!(first.body["status"], "InProgress");
    assert!(first.header("retry-after").is_some());
    let second = env.get(&poll).await;
    assert_eq!(second.body["status"], "Succeeded");
    let got = env.get(&format!("{map}?{ACR}")).await;
    assert_eq!(got.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(got.body["properties"]["actions"], json!(["repositories/team-b/api/content/read"]));

    let updated = env
        .put(&format!("{map}?{ACR}"), &json!({"properties": {"actions": ["repositories/team-b/*/content/read"]}}))
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    let patched = env.patch(&format!("{map}?{ACR}"), &json!({"properties": {"description": "changed"}})).await;
    assert_eq!(patched.body["properties"]["description"], "changed");

    let system = env.put(&format!("{}/scopeMaps/_repositories_pull?{ACR}", registry("acrprod")), &body).await;
    assert_eq!(system.status, StatusCode::BAD_REQUEST);
    let no_actions =
        env.put(&format!("{}/scopeMaps/empty-map?{ACR}", registry("acrprod")), &json!({"properties": {}})).await;
    assert_eq!(no_actions.status, StatusCode::BAD_REQUEST);

    let deleted = env.delete(&format!("{map}?{ACR}")).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let location = deleted.header("location").expect("Location").to_string();
    assert_eq!(env.get(&location).await.status, StatusCode::ACCEPTED);
    assert_eq!(env.get(&location).await.status, StatusCode::OK);
    assert_eq!(env.get(&format!("{map}?{ACR}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(env.delete(&format!("{map}?{ACR}")).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn tokens_and_generated_passwords() {
    let env = start().await;
    let token = format!("{}/tokens/puller-1", registry("acrprod"));
    let scope_map_id = format!("{}/scopeMaps/team-a-pull", registry("acrprod"));
    let created = env
        .put(&format!("{token}?{ACR}"), &json!({"properties": {"scopeMapId": scope_map_id, "status": "enabled"}}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created}");
    let poll = created.header("azure-asyncoperation").expect("Azure-AsyncOperation").to_string();
    assert!(poll.contains("/tokens/puller-1/operationStatuses/tokens-"));
    env.get(&poll).await;
    assert_eq!(env.get(&poll).await.body["status"], "Succeeded");

    let bad_map = env
        .put(
            &format!("{}/tokens/puller-2?{ACR}", registry("acrprod")),
            &json!({"properties": {"scopeMapId": format!("{}/scopeMaps/missing", registry("acrprod"))}}),
        )
        .await;
    assert_eq!(bad_map.status, StatusCode::BAD_REQUEST);

    let generate = env
        .post(
            &format!("{}/generateCredentials?{ACR}", registry("acrprod")),
            Some(&json!({"tokenId": format!("{}{token}", ""), "expiry": "2030-01-01T00:00:00Z", "name": "password1"})),
        )
        .await;
    assert_eq!(generate.status, StatusCode::ACCEPTED, "{generate}");
    let location = generate.header("location").expect("Location").to_string();
    assert!(location.contains("/operationStatuses/registries-"), "{location}");
    assert_eq!(env.get(&location).await.status, StatusCode::ACCEPTED);
    let result = env.get(&location).await;
    assert_eq!(result.status, StatusCode::OK);
    assert_eq!(result.body["username"], "puller-1");
    assert_eq!(result.body["passwords"][0]["name"], "password1");
    assert_eq!(result.body["passwords"][0]["expiry"], "2030-01-01T00:00:00Z");
    assert!(result.body["passwords"][0]["value"].as_str().is_some_and(|v| v.len() >= 32));

    let shown = env.get(&format!("{token}?{ACR}")).await;
    let passwords = &shown.body["properties"]["credentials"]["passwords"];
    assert_eq!(passwords[0]["name"], "password1");
    assert!(passwords[0].get("value").is_none(), "a token never shows its password again");

    let (tokens, _) = env.list_all(&format!("{}/tokens?{ACR}", registry("acrprod"))).await;
    assert_eq!(sorted_names(&tokens), ["ci-token", "puller-1"]);

    // Synchronous mode answers generateCredentials with 200 at once.
    let mut settings = env.emulator.state().settings();
    settings.lro.mode = acrlink_emulator::LroMode::Sync;
    env.emulator.state().set_settings(settings);
    let both =
        env.post(&format!("{}/generateCredentials?{ACR}", registry("acrprod")), Some(&json!({"tokenId": token}))).await;
    assert_eq!(both.status, StatusCode::OK);
    assert_eq!(both.body["passwords"].as_array().map(Vec::len), Some(2));
    let deleted = env.delete(&format!("{token}?{ACR}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(env.get(&format!("{token}?{ACR}")).await.status, StatusCode::NOT_FOUND);

    let missing = env
        .post(
            &format!("{}/generateCredentials?{ACR}", registry("acrprod")),
            Some(&json!({"tokenId": format!("{}/tokens/nope1", registry("acrprod"))})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
