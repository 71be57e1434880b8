//! Helpers for the per-cluster Kubernetes API: a kubeconfig from listClusterUserCredential,
//! its server URL and token, and a small client speaking to that server.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::Value;

use crate::support::*;

pub const AKS: &str = "api-version=2026-08-01";

/// The decoded kubeconfig YAML of a cluster's user (or admin) credential.
pub async fn kubeconfig(env: &Env, sub: &str, rg: &str, cluster: &str, admin: bool) -> String {
    let action = if admin { "listClusterAdminCredential" } else { "listClusterUserCredential" };
    let answer = env.post(&format!("{}/{action}?{AKS}", cluster_path(sub, rg, cluster)), None).await;
    assert_eq!(answer.status, reqwest::StatusCode::OK, "{answer}");
    let value = answer.body["kubeconfigs"][0]["value"].as_str().expect("kubeconfigs[0].value");
    String::from_utf8(STANDARD.decode(value).expect("base64")).expect("UTF-8")
}

fn field(config: &str, name: &str) -> Option<String> {
    config.lines().find_map(|l| l.trim().strip_prefix(&format!("{name}: ")).map(|v| v.trim().to_string()))
}

/// A client for one cluster's API, authenticated as the kubeconfig says.
pub struct Kube {
    pub client: reqwest::Client,
    pub server: String,
    pub token: String,
}

impl Kube {
    pub async fn connect(env: &Env, sub: &str, rg: &str, cluster: &str) -> Kube {
        let config = kubeconfig(env, sub, rg, cluster, false).await;
        Kube {
            client: env.client.clone(),
            server: field(&config, "server").expect("server"),
            token: field(&config, "token").expect("token"),
        }
    }

    pub async fn call(&self, method: Method, path: &str, content_type: Option<&str>, body: Option<&Value>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.server)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", content_type.unwrap_or("application/json")).body(body.to_string());
        }
        answer(request.send().await.expect("the API server answers")).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(Method::PUT, path, None, Some(body)).await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Answer {
        self.call(Method::PATCH, path, Some(content_type), Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None, None).await
    }

    pub async fn create_namespace(&self, name: &str) {
        let answer = self.post("/api/v1/namespaces", &serde_json::json!({"metadata": {"name": name}})).await;
        assert_eq!(answer.status, reqwest::StatusCode::CREATED, "{answer}");
    }
}

/// A Status body's reason and message.
pub fn status_of(answer: &Answer) -> (u16, &str, &str) {
    (
        answer.status.as_u16(),
        answer.body["reason"].as_str().unwrap_or_default(),
        answer.body["message"].as_str().unwrap_or_default(),
    )
}
