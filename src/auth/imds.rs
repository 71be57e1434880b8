//! The Instance Metadata Service's managed-identity token endpoint (VMs, VM scale sets, AKS
//! nodes). azure_identity's own IMDS credential has a fixed address and waits up to 72 s for
//! an absent endpoint; this one takes an address override (ACRLINK_IMDS_ENDPOINT, for the
//! emulator and proxies) and, inside `--auth auto`, probes first with a short timeout, as the
//! Azure SDKs' DefaultAzureCredential does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use serde_json::Value;

/// Where IMDS answers on every Azure VM.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
const PATH: &str = "/metadata/identity/oauth2/token";
const API_VERSION: &str = "2018-02-01";

#[derive(Debug)]
pub struct ImdsCredential {
    http: reqwest::Client,
    endpoint: String,
    client_id: Option<String>,
    /// Some(timeout): ask once without the Metadata header first; no answer within it means
    /// there is no IMDS here.
    probe: Option<Duration>,
    probed: tokio::sync::OnceCell<Result<(), String>>,
    cache: Mutex<HashMap<String, AccessToken>>,
}

fn credential_error(message: String) -> Error {
    Error::with_message(ErrorKind::Credential, message)
}

impl ImdsCredential {
    /// `endpoint` is the base (`http://169.254.169.254`); `client_id` picks a user-assigned
    /// identity.
    pub fn new(endpoint: &str, client_id: Option<String>, probe: Option<Duration>) -> Result<ImdsCredential, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("acrlink/", env!("CARGO_PKG_VERSION")))
            // IMDS is link-local: never through a proxy.
            .no_proxy()
            .connect_timeout(probe.unwrap_or(Duration::from_secs(5)))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ImdsCredential {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            client_id,
            probe,
            probed: tokio::sync::OnceCell::new(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn url(&self, resource: &str) -> String {
        let mut url = format!("{}{PATH}?api-version={API_VERSION}&resource={}", self.endpoint, form_encode(resource));
        if let Some(client_id) = &self.client_id {
            url.push_str("&client_id=");
            url.push_str(&form_encode(client_id));
        }
        url
    }

    /// Any HTTP answer (even an error) means IMDS is there.
    async fn probe(&self, resource: &str, timeout: Duration) -> Result<(), String> {
        match self.http.get(self.url(resource)).timeout(timeout).send().await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "no answer from IMDS at {} within {} s (not an Azure VM; set ACRLINK_IMDS_ENDPOINT to reach it elsewhere)",
                self.endpoint,
                timeout.as_secs_f64()
            )),
        }
    }

    async fn request(&self, resource: &str) -> Result<AccessToken, String> {
        let response = self
            .http
            .get(self.url(resource))
            .header("Metadata", "true")
            .send()
            .await
            .map_err(|e| format!("IMDS at {} did not answer: {e}", self.endpoint))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no details");
            let which = match &self.client_id {
                Some(id) => format!("the user-assigned identity {id}"),
                None => "the system-assigned identity".to_string(),
            };
            return Err(format!("IMDS refused a token for {which} ({status}): {why}"));
        }
        let token = body["access_token"].as_str().ok_or("IMDS answered without an access_token")?;
        let expires_on = number(&body["expires_on"])
            .or_else(|| number(&body["expires_in"]).map(|s| time::OffsetDateTime::now_utc().unix_timestamp() + s))
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or("IMDS answered without a valid expires_on")?;
        Ok(AccessToken::new(token.to_string(), expires_on))
    }
}

/// IMDS sends numbers as strings; App Service-like endpoints sometimes as numbers.
fn number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[async_trait::async_trait]
impl TokenCredential for ImdsCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(credential_error("a managed identity token is for exactly one scope".into()));
        };
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        if let Some(timeout) = self.probe {
            self.probed.get_or_init(|| self.probe(resource, timeout)).await.clone().map_err(credential_error)?;
        }
        let fresh = |t: &AccessToken| t.expires_on > time::OffsetDateTime::now_utc() + Duration::from_secs(30);
        if let Ok(cache) = self.cache.lock()
            && let Some(token) = cache.get(resource).filter(|t| fresh(t))
        {
            return Ok(token.clone());
        }
        let token = self.request(resource).await.map_err(credential_error)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(resource.to_string(), token.clone());
        }
        Ok(token)
    }
}
