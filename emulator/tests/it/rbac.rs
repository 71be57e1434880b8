//! Role assignments at any scope (every PUT outcome, delete, get, every list filter with its
//! at/above/below semantics) and role definitions.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const V: &str = "api-version=2022-04-01";
const NEW_NAME: &str = "0f0f0f0f-0000-4000-8000-000000000001";

fn at(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?{V}")
}

fn list_at(scope: &str, filter: Option<&str>) -> String {
    match filter {
        Some(f) => {
            format!("{scope}/providers/Microsoft.Authorization/roleAssignments?{V}&$filter={}", f.replace(' ', "%20"))
        }
        None => format!("{scope}/providers/Microsoft.Authorization/roleAssignments?{V}"),
    }
}

fn body(principal: &str, role: &str, principal_type: Option<&str>) -> Value {
    let mut properties = json!({
        "roleDefinitionId": format!("/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        "principalId": principal,
    });
    if let Some(kind) = principal_type {
        properties["principalType"] = json!(kind);
    }
    json!({"properties": properties})
}

#[tokio::test]
async fn put_creates_then_is_idempotent() {
    let env = start().await;
    let scope = registry_scope();
    let created = env.put(&at(&scope, NEW_NAME), &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created}");
    let p = &created.body["properties"];
    assert_eq!(
        p["roleDefinitionId"],
        format!("/subscriptions/{PROD}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}")
    );
    assert_eq!(p["principalId"], KUBELET_PROD_2);
    assert_eq!(p["scope"], scope);
    assert_eq!(p["createdBy"], ACRLINK_OBJECT);
    for key in ["condition", "conditionVersion", "description", "delegatedManagedIdentityResourceId"] {
        assert!(p.get(key).is_some_and(Value::is_null), "{key} is an explicit null");
    }
    assert_eq!(created.body["id"], format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{NEW_NAME}"));

    let again = env.put(&at(&scope, NEW_NAME), &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["properties"]["updatedOn"], created.body["properties"]["updatedOn"]);

    let mut described = body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal"));
    described["properties"]["description"] = json!("managed by acrlink");
    let updated = env.put(&at(&scope, NEW_NAME), &described).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["properties"]["description"], "managed by acrlink");

    let got = env.get(&at(&scope, NEW_NAME)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["properties"]["description"], "managed by acrlink");
}

#[tokio::test]
async fn put_conflicts_and_refusals() {
    let env = start().await;
    let scope = registry_scope();
    // The same trio under another name.
    let exists = env.put(&at(&scope, NEW_NAME), &body(KUBELET_PROD_1, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!((exists.status, exists.code()), (StatusCode::CONFLICT, "RoleAssignmentExists"));
    assert!(exists.message().contains(&EXISTING_GRANT.replace('-', "")), "names the existing one: {exists}");

    // The same name for another principal, or at another scope.
    let other_principal =
        env.put(&at(&scope, EXISTING_GRANT), &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!(
        (other_principal.status, other_principal.code()),
        (StatusCode::BAD_REQUEST, "RoleAssignmentUpdateNotPermitted")
    );
    let other_scope = env
        .put(
            &at(&format!("/subscriptions/{PROD}/resourceGroups/rg-acr"), EXISTING_GRANT),
            &body(KUBELET_PROD_1, ACR_PULL, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(other_scope.code(), "RoleAssignmentUpdateNotPermitted");

    let bad_name = env.put(&at(&scope, "not-a-guid"), &body(KUBELET_PROD_2, ACR_PULL, None)).await;
    assert_eq!((bad_name.status, bad_name.code()), (StatusCode::BAD_REQUEST, "InvalidRoleAssignmentId"));

    let bad_role =
        env.put(&at(&scope, NEW_NAME), &body(KUBELET_PROD_2, "12345678-1234-1234-1234-123456789012", None)).await;
    assert_eq!(bad_role.code(), "RoleDefinitionDoesNotExist");

    let mismatched = env.put(&at(&scope, NEW_NAME), &body(KUBELET_PROD_2, ACR_PULL, Some("User"))).await;
    assert_eq!(mismatched.code(), "UnmatchedPrincipalType");

    let bad_principal = env.put(&at(&scope, NEW_NAME), &body("kubelet", ACR_PULL, None)).await;
    assert_eq!(bad_principal.code(), "InvalidPrincipalId");
}

#[tokio::test]
async fn principal_not_found_until_replicated_unless_type_given() {
    let env = start().await;
    let scope = registry_scope();
    let unseen = env.put(&at(&scope, NEW_NAME), &body(NEWBIE_OBJECT, ACR_PULL, None)).await;
    assert_eq!((unseen.status, unseen.code()), (StatusCode::BAD_REQUEST, "PrincipalNotFound"));
    assert!(unseen.message().contains(&NEWBIE_OBJECT.replace('-', "")), "{unseen}");
    let typed = env.put(&at(&scope, NEW_NAME), &body(NEWBIE_OBJECT, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!(typed.status, StatusCode::CREATED, "principalType skips the lookup: {typed}");

    // A principal created now becomes visible after the configured delay.
    let fresh = env
        .emulator
        .state()
        .create_principal(acrlink_emulator::NewPrincipal {
            name: "fresh".into(),
            invisible_seconds: Some(0.4),
            ..Default::default()
        })
        .expect("create principal");
    let second = "0f0f0f0f-0000-4000-8000-000000000002";
    let early = env.put(&at(&scope, second), &body(&fresh.object_id, ACR_PULL, None)).await;
    assert_eq!(early.code(), "PrincipalNotFound");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = env.put(&at(&scope, second), &body(&fresh.object_id, ACR_PULL, None)).await;
    assert_eq!(later.status, StatusCode::CREATED, "{later}");
    assert_eq!(later.body["properties"]["principalType"], "ServicePrincipal", "filled in from the directory");
}

#[tokio::test]
async fn writing_assignments_needs_role_assignments_write() {
    let env = start().await;
    let scope = registry_scope();
    let reader = fetch_token(&env.client, &env.base, READER_CLIENT, "reader-secret").await;
    let denied =
        env.put_as(&reader, &at(&scope, NEW_NAME), &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!((denied.status, denied.code()), (StatusCode::FORBIDDEN, "AuthorizationFailed"));
    assert!(denied.message().contains("Microsoft.Authorization/roleAssignments/write"));
    assert!(denied.message().contains(&format!("over scope '{scope}'")), "{denied}");

    let contributor = fetch_token(&env.client, &env.base, CONTRIBUTOR_CLIENT, "contributor-secret").await;
    let denied = env
        .put_as(&contributor, &at(&scope, NEW_NAME), &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal")))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "Contributor's notActions exclude role assignments");

    // RBAC Administrator on the registries' resource group: allowed below it, not elsewhere.
    let rg_admin = fetch_token(&env.client, &env.base, RBAC_ADMIN_CLIENT, "rg-admin-secret").await;
    let allowed =
        env.put_as(&rg_admin, &at(&scope, NEW_NAME), &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!(allowed.status, StatusCode::CREATED, "{allowed}");
    let elsewhere = env
        .put_as(
            &rg_admin,
            &at(&format!("/subscriptions/{PROD}/resourceGroups/rg-aks"), "0f0f0f0f-0000-4000-8000-000000000003"),
            &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn delete_answers_200_with_body_then_204() {
    let env = start().await;
    let scope = registry_scope();
    let deleted = env.delete(&at(&scope, EXISTING_GRANT)).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["name"], EXISTING_GRANT);
    assert_eq!(deleted.body["properties"]["principalId"], KUBELET_PROD_1);
    let again = env.delete(&at(&scope, EXISTING_GRANT)).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let missing = env.get(&at(&scope, EXISTING_GRANT)).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "RoleAssignmentNotFound"));
}

#[tokio::test]
async fn recreating_a_deleted_name_for_something_else_is_refused_for_a_while() {
    let world = WORLD.replace("[settings]\n", "[settings]\ndeleted_name_reuse_block_seconds = 60\n");
    let env = start_world(&world).await;
    let scope = registry_scope();
    assert_eq!(env.delete(&at(&scope, EXISTING_GRANT)).await.status, StatusCode::OK);
    let reused = env.put(&at(&scope, EXISTING_GRANT), &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!(reused.code(), "RoleAssignmentUpdateNotPermitted");
    let same = env.put(&at(&scope, EXISTING_GRANT), &body(KUBELET_PROD_1, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!(same.status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_assignment_limit_per_subscription_holds() {
    let world = WORLD.replace("[settings]\n", "[settings]\nrole_assignment_limit = 6\n");
    let env = start_world(&world).await;
    let refused =
        env.put(&at(&registry_scope(), NEW_NAME), &body(KUBELET_PROD_2, ACR_PULL, Some("ServicePrincipal"))).await;
    assert_eq!(refused.code(), "RoleAssignmentLimitExceeded", "{refused}");
}

fn principals_and_scopes(items: &[Value]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = items
        .iter()
        .map(|a| {
            (
                a["properties"]["principalId"].as_str().unwrap_or_default().to_string(),
                a["properties"]["scope"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn list_filters_follow_at_above_below() {
    let env = start().await;
    let sub = format!("/subscriptions/{PROD}");
    let rg = format!("{sub}/resourceGroups/rg-acr");
    let registry = registry_scope();

    // No filter at the registry: everything at or above (subscription Owners, the RG Reader) and at it.
    let (all, pages) = env.list_all(&list_at(&registry, None)).await;
    assert!(pages > 1, "page size 2 pages the list");
    let pairs = principals_and_scopes(&all);
    assert!(pairs.contains(&(ACRLINK_OBJECT.into(), sub.clone())), "inherited from the subscription");
    assert!(pairs.contains(&(KUBELET_PROD_2.into(), rg.clone())), "inherited from the resource group");
    assert!(pairs.contains(&(KUBELET_PROD_1.into(), registry.clone())));
    assert!(pairs.contains(&(GROUP_OBJECT.into(), registry.clone())));
    assert!(!pairs.iter().any(|(_, s)| s.contains(DEV)), "nothing from other subscriptions");

    // No filter at the resource group includes what is below it; atScope() does not.
    let (below, _) = env.list_all(&list_at(&rg, None)).await;
    assert!(principals_and_scopes(&below).contains(&(KUBELET_PROD_1.into(), registry.clone())));
    let (at_scope, _) = env.list_all(&list_at(&rg, Some("atScope()"))).await;
    let at_pairs = principals_and_scopes(&at_scope);
    assert!(!at_pairs.iter().any(|(_, s)| *s == registry), "atScope() never goes below: {at_pairs:?}");
    assert!(at_pairs.contains(&(KUBELET_PROD_2.into(), rg.clone())));
    assert!(at_pairs.contains(&(ACRLINK_OBJECT.into(), sub.clone())));

    // principalId eq: that principal at, above and below.
    let (by_principal, _) = env.list_all(&list_at(&sub, Some(&format!("principalId eq '{KUBELET_PROD_1}'")))).await;
    assert_eq!(principals_and_scopes(&by_principal), [(KUBELET_PROD_1.to_string(), registry.clone())]);

    // assignedTo includes grants through groups.
    let (assigned, _) = env.list_all(&list_at(&registry, Some(&format!("assignedTo('{GROUPED_OBJECT}')")))).await;
    assert_eq!(principals_and_scopes(&assigned), [(GROUP_OBJECT.to_string(), registry.clone())]);
    let (combined, _) =
        env.list_all(&list_at(&registry, Some(&format!("atScope() and assignedTo('{KUBELET_PROD_2}')")))).await;
    assert_eq!(principals_and_scopes(&combined), [(KUBELET_PROD_2.to_string(), rg.clone())]);
    let (combined_below, _) =
        env.list_all(&list_at(&sub, Some(&format!("atScope() and assignedTo('{KUBELET_PROD_1}')")))).await;
    assert!(combined_below.is_empty(), "the registry grant is below the subscription");

    // The nextLink keeps the filter.
    let first = env.get(&list_at(&registry, Some("atScope()"))).await;
    let next = first.body["nextLink"].as_str().unwrap_or_default();
    assert!(next.contains("$filter=atScope()"), "{next}");

    let unsupported = env.get(&list_at(&registry, Some("roleDefinitionId eq 'x'"))).await;
    assert_eq!(unsupported.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn role_definitions_by_name_and_id() {
    let env = start().await;
    let sub = format!("/subscriptions/{PROD}");
    let acr_pull = env
        .get(&format!(
            "{sub}/providers/Microsoft.Authorization/roleDefinitions?{V}&$filter=roleName%20eq%20%27AcrPull%27"
        ))
        .await;
    assert_eq!(acr_pull.status, StatusCode::OK, "{acr_pull}");
    let value = acr_pull.body["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(value.len(), 1);
    assert_eq!(value[0]["name"], ACR_PULL);
    assert_eq!(value[0]["id"], format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"));
    assert_eq!(value[0]["properties"]["type"], "BuiltInRole");
    assert_eq!(
        value[0]["properties"]["permissions"][0]["actions"],
        json!(["Microsoft.ContainerRegistry/registries/pull/read"])
    );

    let reader = env
        .get(&format!("{}/providers/Microsoft.Authorization/roleDefinitions?{V}&$filter=roleName eq 'Container Registry Repository Reader'", registry_scope()))
        .await;
    assert_eq!(reader.body["value"][0]["name"], "b93aa761-3e63-49ed-ac28-beffa264f7ac");

    let by_id = env.get(&format!("/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}?{V}")).await;
    assert_eq!(by_id.body["properties"]["roleName"], "AcrPull");
    assert_eq!(by_id.body["id"], format!("/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}"));
    let missing = env
        .get(&format!(
            "{sub}/providers/Microsoft.Authorization/roleDefinitions/12345678-1234-1234-1234-123456789012?{V}"
        ))
        .await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "RoleDefinitionDoesNotExist"));
    let (built_in, _) = env
        .list_all(&format!("{sub}/providers/Microsoft.Authorization/roleDefinitions?{V}&$filter=type eq 'BuiltInRole'"))
        .await;
    assert!(built_in.len() >= 10);
}
