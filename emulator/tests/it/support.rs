//! Shared test fixtures: a small world, an emulator per test, and a reqwest client that trusts
//! the emulator's CA, used exactly as any client would use the emulator.

use acrlink_emulator::{Emulator, World};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const PROD: &str = "11111111-1111-1111-1111-111111111111";
pub const DEV: &str = "22222222-2222-2222-2222-222222222222";
pub const EMPTY: &str = "33333333-3333-3333-3333-333333333333";
pub const ACRLINK_CLIENT: &str = "a0000000-0000-0000-0000-000000000001";
pub const ACRLINK_OBJECT: &str = "b0000000-0000-0000-0000-000000000001";
pub const READER_CLIENT: &str = "a0000000-0000-0000-0000-000000000002";
pub const READER_OBJECT: &str = "b0000000-0000-0000-0000-000000000002";
pub const RBAC_ADMIN_CLIENT: &str = "a0000000-0000-0000-0000-000000000003";
pub const CONTRIBUTOR_CLIENT: &str = "a0000000-0000-0000-0000-000000000004";
pub const EXPIRED_CLIENT: &str = "a0000000-0000-0000-0000-000000000005";
pub const NEWBIE_CLIENT: &str = "a0000000-0000-0000-0000-000000000006";
pub const NEWBIE_OBJECT: &str = "b0000000-0000-0000-0000-000000000006";
pub const GROUPED_OBJECT: &str = "b0000000-0000-0000-0000-000000000007";
pub const GROUP_OBJECT: &str = "b0000000-0000-0000-0000-0000000000a1";
pub const KUBELET_PROD_1: &str = "c0000000-0000-0000-0000-000000000001";
pub const KUBELET_PROD_2: &str = "c0000000-0000-0000-0000-000000000002";
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
pub const EXISTING_GRANT: &str = "d0000000-0000-0000-0000-000000000001";

pub fn registry_scope() -> String {
    format!("/subscriptions/{PROD}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acrprod")
}

pub fn cluster_path(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}")
}

/// The world most tests run against (page size 2 so lists must be followed).
pub const WORLD: &str = r#"
[tenant]
id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
domain = "contoso.onmicrosoft.com"

[settings]
page_size = 2
lro = { mode = "async", polls = 1, retry_after_seconds = 0 }

[[subscriptions]]
id = "11111111-1111-1111-1111-111111111111"
name = "prod"

[[subscriptions]]
id = "22222222-2222-2222-2222-222222222222"
name = "dev"

[[subscriptions]]
id = "33333333-3333-3333-3333-333333333333"
name = "empty"

[[resource_groups]]
subscription = "prod"
name = "rg-aks"
location = "westeurope"

[[resource_groups]]
subscription = "prod"
name = "rg-acr"
location = "westeurope"

[[resource_groups]]
subscription = "dev"
name = "rg-dev"
location = "eastus"

[[clusters]]
subscription = "prod"
resource_group = "rg-aks"
name = "aks-prod-1"
tags = { env = "prod" }
kubelet_identity = { client_id = "e0000000-0000-0000-0000-000000000001", object_id = "c0000000-0000-0000-0000-000000000001" }

[[clusters]]
subscription = "prod"
resource_group = "rg-aks"
name = "aks-prod-2"
kubelet_identity = { client_id = "e0000000-0000-0000-0000-000000000002", object_id = "c0000000-0000-0000-0000-000000000002" }

[[clusters]]
subscription = "prod"
resource_group = "rg-aks"
name = "aks-prod-3"
local_accounts = false
identity = "UserAssigned"

[[clusters]]
subscription = "dev"
resource_group = "rg-dev"
name = "aks-dev-1"
aad = true
kubernetes_version = "1.32.5"

[[clusters]]
subscription = "dev"
resource_group = "rg-dev"
name = "aks-old"
identity = "ServicePrincipal"
service_principal_client_id = "f0000000-0000-0000-0000-000000000001"

[[registries]]
subscription = "prod"
resource_group = "rg-acr"
name = "acrprod"
sku = "Premium"
admin_user_enabled = true
admin_passwords = ["first-password", "second-password"]
repositories = { "team-a/app" = ["1.0", "latest"], "base/nginx" = ["1.27"] }
scope_maps = [{ name = "team-a-pull", actions = ["repositories/team-a/app/content/read"] }]
tokens = [{ name = "ci-token", scope_map = "team-a-pull" }]

[[registries]]
subscription = "prod"
resource_group = "rg-acr"
name = "acrabac"
role_assignment_mode = "AbacRepositoryPermissions"
repositories = { "team-b/api" = ["2.0"] }

[[principals]]
name = "acrlink"
object_id = "b0000000-0000-0000-0000-000000000001"
client_id = "a0000000-0000-0000-0000-000000000001"
secrets = ["s3cret"]
default_client = true
federated_credentials = [{ issuer = "https://issuer.example", subject = "system:serviceaccount:ci:deployer" }]
roles = [
  { role = "Owner", scope = "/subscriptions/11111111-1111-1111-1111-111111111111" },
  { role = "Owner", scope = "/subscriptions/22222222-2222-2222-2222-222222222222" },
]

[[principals]]
name = "reader"
object_id = "b0000000-0000-0000-0000-000000000002"
client_id = "a0000000-0000-0000-0000-000000000002"
secrets = ["reader-secret"]
roles = [{ role = "Reader", scope = "/subscriptions/11111111-1111-1111-1111-111111111111" }]

[[principals]]
name = "rg-admin"
object_id = "b0000000-0000-0000-0000-000000000003"
client_id = "a0000000-0000-0000-0000-000000000003"
secrets = ["rg-admin-secret"]
roles = [{ role = "Role Based Access Control Administrator", scope = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-acr" }]

[[principals]]
name = "contributor"
object_id = "b0000000-0000-0000-0000-000000000004"
client_id = "a0000000-0000-0000-0000-000000000004"
secrets = ["contributor-secret"]
roles = [{ role = "Contributor", scope = "/subscriptions/11111111-1111-1111-1111-111111111111" }]

[[principals]]
name = "expired-app"
object_id = "b0000000-0000-0000-0000-000000000005"
client_id = "a0000000-0000-0000-0000-000000000005"
secrets = [{ value = "old-secret", expires_at = "2020-01-01T00:00:00Z" }]

[[principals]]
name = "newbie"
object_id = "b0000000-0000-0000-0000-000000000006"
client_id = "a0000000-0000-0000-0000-000000000006"
secrets = ["newbie-secret"]
visible_after_seconds = 3600

[[principals]]
name = "platform-team"
kind = "Group"
object_id = "b0000000-0000-0000-0000-0000000000a1"
roles = [{ role = "AcrPull", scope = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acrprod" }]

[[principals]]
name = "grouped"
object_id = "b0000000-0000-0000-0000-000000000007"
member_of = ["platform-team"]

[[role_assignments]]
name = "d0000000-0000-0000-0000-000000000001"
scope = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acrprod"
role = "AcrPull"
principal = "c0000000-0000-0000-0000-000000000001"
description = "attached by hand"

[[role_assignments]]
scope = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-acr"
role = "Reader"
principal = "c0000000-0000-0000-0000-000000000002"
"#;

/// A running emulator plus a client that trusts it and a token for the default principal.
pub struct Env {
    pub emulator: Emulator,
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub fn install_crypto() {
    rustls::crypto::ring::default_provider().install_default().ok();
}

pub fn client_for(emulator: &Emulator) -> reqwest::Client {
    install_crypto();
    let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("the emulator CA parses");
    reqwest::Client::builder().tls_certs_merge([ca]).no_proxy().build().expect("build a reqwest client")
}

pub async fn start_world(text: &str) -> Env {
    install_crypto();
    let world = World::from_toml_str(text).unwrap_or_else(|e| panic!("test world: {e}"));
    let emulator = Emulator::start(world, "127.0.0.1:0".parse().expect("address")).await.expect("start the emulator");
    let client = client_for(&emulator);
    let base = emulator.ready_info().arm_endpoint;
    let token = fetch_token(&client, &base, ACRLINK_CLIENT, "s3cret").await;
    Env { emulator, client, base, token }
}

pub async fn start() -> Env {
    start_world(WORLD).await
}

pub async fn token_response(client: &reqwest::Client, base: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    token_response_in(client, base, TENANT, form).await
}

pub async fn token_response_in(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response =
        client.post(format!("{base}/{tenant}/oauth2/v2.0/token")).form(form).send().await.expect("token request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn fetch_token(client: &reqwest::Client, base: &str, client_id: &str, secret: &str) -> String {
    fetch_token_in(client, base, TENANT, client_id, secret).await
}

pub async fn fetch_token_in(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> String {
    let (status, body) = token_response_in(
        client,
        base,
        tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "token for {client_id}: {body}");
    body["access_token"].as_str().expect("access_token").to_string()
}

/// One answer: status, headers and JSON body (Null when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ARM error code, from either envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().or_else(|| self.body["code"].as_str()).unwrap_or_default()
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().or_else(|| self.body["message"].as_str()).unwrap_or_default()
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Answer { status, headers, body }
}

impl Env {
    pub fn url(&self, path_and_query: &str) -> String {
        if path_and_query.starts_with("https://") {
            path_and_query.to_string()
        } else {
            format!("{}{path_and_query}", self.base)
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request.send().await.expect("request reaches the emulator")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, Some(&self.token), None).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(reqwest::Method::PUT, path, Some(&self.token), Some(body)).await
    }

    pub async fn put_as(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.call(reqwest::Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> Answer {
        self.call(reqwest::Method::POST, path, Some(&self.token), body).await
    }

    pub async fn post_as(&self, token: &str, path: &str) -> Answer {
        self.call(reqwest::Method::POST, path, Some(token), None).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.call(reqwest::Method::PATCH, path, Some(&self.token), Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, Some(&self.token), None).await
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        self.call(method, &format!("/_emulator{path}"), None, body).await
    }

    /// Follows nextLink from `path` and returns every item, checking each link is absolute,
    /// on the emulator's host, and keeps the api-version.
    pub async fn list_all(&self, path: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut pages = 0;
        let mut next = Some(self.url(path));
        while let Some(url) = next {
            let page = self.get(&url).await;
            assert_eq!(page.status, StatusCode::OK, "{url}: {page}");
            pages += 1;
            items.extend(page.body["value"].as_array().cloned().unwrap_or_default());
            next = page.body["nextLink"].as_str().map(str::to_string);
            if let Some(link) = &next {
                assert!(link.starts_with(&self.base), "nextLink {link} is on the emulator's host");
                assert!(link.contains("api-version="), "nextLink {link} keeps the api-version");
            }
            assert!(pages < 10_000, "paging does not end");
        }
        (items, pages)
    }
}

pub fn sorted_names(items: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = items.iter().map(|i| i["name"].as_str().unwrap_or_default().to_string()).collect();
    names.sort();
    names
}
