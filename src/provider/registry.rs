//! A registry's token service (its data plane), as `docker login` and the kubelet use it:
//! `GET https://<login server>/oauth2/token?service=<login server>&scope=repository:<repo>:pull`
//! with HTTP Basic credentials. Only `verify` uses it, to learn whether a pull Secret's
//! credential still works; the credential is sent, never logged.

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;

use crate::sensitive::Sensitive;

/// What the token service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// A token that lets the credential pull the repository.
    Granted,
    /// The credential is valid, but the token does not include pull of the repository.
    Narrow,
    /// The credential was refused (wrong, rotated, disabled or expired).
    Refused { status: u16 },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {login_server}: {message}")]
    Transport { login_server: String, message: String },
    #[error("registry {login_server} answered {status} to the token request")]
    Unexpected { login_server: String, status: u16 },
}

/// The registry operation `verify` needs.
pub trait RegistryTokens: Send + Sync {
    fn pull_token(
        &self,
        login_server: &str,
        username: &str,
        password: &Sensitive<String>,
        repository: &str,
    ) -> impl Future<Output = Result<Exchange, RegistryError>> + Send;
}

pub struct RegistryClient {
    http: reqwest::Client,
    /// Where registries are reached instead of `https://<login server>` (the emulator).
    endpoint: Option<String>,
    pub requests: std::sync::atomic::AtomicU64,
}

impl RegistryClient {
    pub fn new(endpoint: Option<&str>) -> Result<RegistryClient, RegistryError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("acrlink/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| RegistryError::Transport { login_server: String::new(), message: e.to_string() })?;
        Ok(RegistryClient {
            http,
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            requests: Default::default(),
        })
    }

    fn base(&self, login_server: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{login_server}"),
            None => format!("https://{login_server}"),
        }
    }
}

impl RegistryTokens for RegistryClient {
    async fn pull_token(
        &self,
        login_server: &str,
        username: &str,
        password: &Sensitive<String>,
        repository: &str,
    ) -> Result<Exchange, RegistryError> {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let scope = format!("repository:{repository}:pull");
        let answer = self
            .http
            .get(format!("{}/oauth2/token", self.base(login_server)))
            .query(&[("service", login_server), ("scope", scope.as_str())])
            .basic_auth(username, Some(password.expose()))
            .send()
            .await
            .map_err(|e| RegistryError::Transport { login_server: login_server.into(), message: e.to_string() })?;
        let status = answer.status().as_u16();
        match status {
            200 => {
                let body: serde_json::Value = answer.json().await.map_err(|e| RegistryError::Transport {
                    login_server: login_server.into(),
                    message: e.to_string(),
                })?;
                let token = body["access_token"].as_str().unwrap_or_default();
                Ok(if grants_pull(token, repository) { Exchange::Granted } else { Exchange::Narrow })
            }
            401 | 403 => Ok(Exchange::Refused { status }),
            _ => Err(RegistryError::Unexpected { login_server: login_server.into(), status }),
        }
    }
}

/// Whether an ACR access token's `access` claim grants pull of `repository`.
fn grants_pull(token: &str, repository: &str) -> bool {
    let Some(payload) = token.split('.').nth(1) else { return false };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
        return false;
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return false };
    claims["access"].as_array().into_iter().flatten().any(|entry| {
        entry["type"] == "repository"
            && entry["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(repository))
            && entry["actions"].as_array().into_iter().flatten().any(|a| a == "pull")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: serde_json::Value) -> String {
        let encode = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!("{}.{}.sig", encode(b"{\"alg\":\"RS256\"}"), encode(claims.to_string().as_bytes()))
    }

    #[test]
    fn the_access_claim_decides_pull() {
        let granted =
            token(serde_json::json!({"access": [{"type": "repository", "name": "tools/ci", "actions": ["pull"]}]}));
        assert!(grants_pull(&granted, "tools/ci"));
        assert!(!grants_pull(&granted, "tools/other"));
        let empty = token(serde_json::json!({"access": []}));
        assert!(!grants_pull(&empty, "tools/ci"));
        assert!(!grants_pull("not a token", "tools/ci"));
    }
}
