//! GitHub Actions OIDC: the job's ID token (for the cloud's token-exchange audience) is the
//! federated client assertion. It is fetched again for every token request, so a run that
//! outlives one ID token (GitHub's last minutes) keeps signing in.

use std::time::Duration;

use azure_core::error::{Error, ErrorKind};
use azure_core::http::ClientMethodOptions;
use azure_identity::ClientAssertion;

use crate::sensitive::Sensitive;

#[derive(Debug)]
pub struct GithubAssertion {
    http: reqwest::Client,
    /// ACTIONS_ID_TOKEN_REQUEST_URL (already carries a query string).
    url: String,
    /// ACTIONS_ID_TOKEN_REQUEST_TOKEN.
    request_token: Sensitive<String>,
    /// What the ID token is for: the cloud's token-exchange audience.
    audience: String,
}

impl GithubAssertion {
    pub fn new(url: &str, request_token: Sensitive<String>, audience: &str) -> Result<GithubAssertion, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("acrlink/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(GithubAssertion { http, url: url.to_string(), request_token, audience: audience.to_string() })
    }

    fn request_url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        let audience: String = form_urlencoded(&self.audience);
        format!("{}{separator}audience={audience}", self.url)
    }
}

fn form_urlencoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn failure(message: String) -> Error {
    Error::with_message(ErrorKind::Credential, message)
}

#[async_trait::async_trait]
impl ClientAssertion for GithubAssertion {
    async fn secret(&self, _options: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let host = self.url.split('?').next().unwrap_or_default();
        let response = self
            .http
            .get(self.request_url())
            .bearer_auth(self.request_token.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| failure(format!("cannot reach the GitHub Actions ID token service at {host}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failure(format!(
                "the GitHub Actions ID token service at {host} answered {status}; does the job have `permissions: id-token: write`?"
            )));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| failure(format!("the GitHub Actions ID token service answered no JSON: {e}")))?;
        body["value"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| failure("the GitHub Actions ID token service answered without a token (`value`)".into()))
    }
}
