//! AKS managedClusters: get, list by subscription and resource group, and the credential
//! actions with kubeconfigs that point at the emulator.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};

use crate::support::*;

const AKS: &str = "api-version=2026-08-01";

fn kubeconfig(answer: &Answer) -> String {
    let value = answer.body["kubeconfigs"][0]["value"].as_str().expect("kubeconfigs[0].value");
    String::from_utf8(STANDARD.decode(value).expect("strict base64")).expect("UTF-8 YAML")
}

#[tokio::test]
async fn get_cluster_shows_the_kubelet_identity() {
    let env = start().await;
    let answer = env.get(&format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer}");
    let body = &answer.body;
    assert_eq!(body["name"], "aks-prod-1");
    assert!(body["id"].as_str().unwrap_or_default().eq_ignore_ascii_case(&cluster_path(PROD, "rg-aks", "aks-prod-1")));
    assert_eq!(body["location"], "westeurope", "defaults to the resource group's location");
    assert_eq!(body["tags"]["env"], "prod");
    assert_eq!(body["identity"]["type"], "SystemAssigned");
    let kubelet = &body["properties"]["identityProfile"]["kubeletidentity"];
    assert_eq!(kubelet["objectId"], KUBELET_PROD_1);
    assert_eq!(kubelet["clientId"], "e0000000-0000-0000-0000-000000000001");
    assert!(
        kubelet["resourceId"].as_str().unwrap_or_default().contains("/resourcegroups/MC_rg-aks_aks-prod-1_westeurope/")
    );
    assert_eq!(body["properties"]["servicePrincipalProfile"]["clientId"], "msi");
    assert_eq!(body["properties"]["disableLocalAccounts"], false);
    assert_eq!(body["properties"]["kubernetesVersion"], "1.33.2");
}

#[tokio::test]
async fn identities_differ_by_cluster_kind() {
    let env = start().await;
    let derived = env.get(&format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-3"))).await;
    assert_eq!(derived.body["identity"]["type"], "UserAssigned");
    assert!(derived.body["identity"]["userAssignedIdentities"].as_object().is_some_and(|m| m.len() == 1));
    let object_id =
        derived.body["properties"]["identityProfile"]["kubeletidentity"]["objectId"].as_str().unwrap_or_default();
    assert_eq!(object_id.len(), 36, "a derived kubelet identity is still a GUID");
    assert_eq!(derived.body["properties"]["disableLocalAccounts"], true);

    let old = env.get(&format!("{}?{AKS}", cluster_path(DEV, "rg-dev", "aks-old"))).await;
    assert!(old.body.get("identity").is_none());
    assert!(
        old.body["properties"].get("identityProfile").is_none(),
        "a service-principal cluster has no kubelet identity"
    );
    assert_eq!(old.body["properties"]["servicePrincipalProfile"]["clientId"], "f0000000-0000-0000-0000-000000000001");

    let aad = env.get(&format!("{}?{AKS}", cluster_path(DEV, "rg-dev", "aks-dev-1"))).await;
    assert_eq!(aad.body["properties"]["aadProfile"]["managed"], true);
}

#[tokio::test]
async fn list_by_subscription_and_resource_group() {
    let env = start().await;
    let (dev, _) =
        env.list_all(&format!("/subscriptions/{DEV}/providers/Microsoft.ContainerService/managedClusters?{AKS}")).await;
    assert_eq!(sorted_names(&dev), ["aks-dev-1", "aks-old"]);
    let (rg, _) = env
        .list_all(&format!(
            "/subscriptions/{PROD}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters?{AKS}"
        ))
        .await;
    assert_eq!(rg.len(), 3);
    let empty =
        env.get(&format!("/subscriptions/{EMPTY}/providers/Microsoft.ContainerService/managedClusters?{AKS}")).await;
    assert_eq!(empty.status, StatusCode::FORBIDDEN, "no role in that subscription: {empty}");
}

#[tokio::test]
async fn user_credentials_are_kubeconfigs_for_the_emulated_api_server() {
    let env = start().await;
    let answer = env
        .post(&format!("{}/listClusterUserCredential?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1")), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer}");
    assert_eq!(answer.body["kubeconfigs"][0]["name"], "clusterUser");
    assert!(answer.body.get("value").is_none(), "the array is `kubeconfigs`, not `value`");
    let config = kubeconfig(&answer);
    assert!(config.contains(&format!("server: {}/k8s/{PROD}/rg-aks/aks-prod-1", env.base)), "{config}");
    assert!(config.contains("certificate-authority-data: "), "{config}");
    assert!(config.contains("token: "), "{config}");
    assert!(config.contains("current-context: aks-prod-1"), "{config}");

    let aad =
        env.post(&format!("{}/listClusterUserCredential?{AKS}", cluster_path(DEV, "rg-dev", "aks-dev-1")), None).await;
    let config = kubeconfig(&aad);
    assert!(config.contains("command: kubelogin"), "{config}");
    let azure = env
        .post(
            &format!("{}/listClusterUserCredential?{AKS}&format=azure", cluster_path(DEV, "rg-dev", "aks-dev-1")),
            None,
        )
        .await;
    assert!(kubeconfig(&azure).contains("auth-provider:"));
    let bad = env
        .post(
            &format!("{}/listClusterUserCredential?{AKS}&format=yaml", cluster_path(DEV, "rg-dev", "aks-dev-1")),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_credentials_are_refused_without_local_accounts() {
    let env = start().await;
    let ok = env
        .post(&format!("{}/listClusterAdminCredential?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1")), None)
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["kubeconfigs"][0]["name"], "clusterAdmin");
    assert!(kubeconfig(&ok).contains("clusterAdmin_rg-aks_aks-prod-1"));

    let refused = env
        .post(&format!("{}/listClusterAdminCredential?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-3")), None)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.get("error").is_none(), "the AKS RP sends a flat envelope: {refused}");
    assert_eq!(refused.body["code"], "BadRequest");
    assert!(refused.message().contains("disable local accounts"));
}

#[tokio::test]
async fn credentials_need_their_own_permission() {
    let env = start().await;
    let reader = fetch_token(&env.client, &env.base, READER_CLIENT, "reader-secret").await;
    let get = env.get_as(&reader, &format!("{}?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1"))).await;
    assert_eq!(get.status, StatusCode::OK);
    let credential = env
        .post_as(&reader, &format!("{}/listClusterUserCredential?{AKS}", cluster_path(PROD, "rg-aks", "aks-prod-1")))
        .await;
    assert_eq!(credential.status, StatusCode::FORBIDDEN);
    assert_eq!(credential.code(), "AuthorizationFailed");
    assert!(credential.message().contains("listClusterUserCredential/action"), "{credential}");
    assert!(credential.message().contains(READER_OBJECT));
}

#[tokio::test]
async fn kubernetes_paths_are_per_cluster() {
    let env = start().await;
    let known = env.call(Method::GET, &format!("/k8s/{PROD}/rg-aks/aks-prod-1/api/v1/namespaces"), None, None).await;
    assert_eq!(known.status, StatusCode::UNAUTHORIZED, "the API needs the kubeconfig's token");
    assert_eq!(known.body["kind"], "Status");
    let unknown = env.call(Method::GET, &format!("/k8s/{PROD}/rg-aks/nope/api"), None, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(env.emulator.ledger().count_cluster("aks-prod-1"), 1);
}
