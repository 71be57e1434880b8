//! An ARM client on reqwest: bearer tokens from azure_identity, the shared retry policy,
//! nextLink paging, both error envelopes, and a per-subscription request rate limit so a fleet
//! run stays inside ARM's token buckets. Counts what it sends, for --verbose and benchmarks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::wire::Page;
use crate::provider::AzureError;
use crate::provider::retry::{Failure, RetryPolicy, classify_status, parse_retry_after};

/// Requests sent, by outcome; read after a run.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    per_second: f64,
    burst: f64,
}

/// Paces requests per subscription and class the way ARM meters them, so a large apply spends
/// ARM's burst and then follows its refill instead of earning 429s.
struct RateLimiter {
    read: Bucket,
    write: Bucket,
    delete: Bucket,
    /// Tokens left and when they were counted, by "subscription/class"; held only for the
    /// arithmetic, never across an await.
    buckets: std::sync::Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// ARM's documented buckets per subscription and principal (reads 250 + 25/s, writes and
    /// deletes 200 + 10/s each); `per_second` (ACRLINK_ARM_REQUESTS_PER_SECOND) replaces them
    /// all with that rate and a burst of five seconds of it; 0 turns pacing off.
    fn new(per_second: Option<f64>) -> RateLimiter {
        let (read, write, delete) = match per_second {
            Some(rate) => {
                let bucket = Bucket { per_second: rate, burst: (rate * 5.0).max(1.0) };
                (bucket, bucket, bucket)
            }
            None => (
                Bucket { per_second: 25.0, burst: 250.0 },
                Bucket { per_second: 10.0, burst: 200.0 },
                Bucket { per_second: 10.0, burst: 200.0 },
            ),
        };
        RateLimiter { read, write, delete, buckets: std::sync::Mutex::new(HashMap::new()) }
    }

    fn bucket(&self, key: &str) -> Bucket {
        match key.rsplit('/').next() {
            Some("read") => self.read,
            Some("delete") => self.delete,
            _ => self.write,
        }
    }

    /// Takes one token from `key`'s bucket at `now`; how long to wait before sending.
    fn reserve(&self, key: &str, now: Instant) -> Duration {
        let bucket = self.bucket(key);
        if bucket.per_second <= 0.0 {
            return Duration::ZERO;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((bucket.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * bucket.per_second).min(bucket.burst);
        *last = now;
        *tokens -= 1.0;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-*tokens / bucket.per_second).unwrap_or(Duration::from_secs(60))
        }
    }

    async fn acquire(&self, key: &str) {
        let wait = self.reserve(key, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl RateLimiter {
    /// A 429 means the server's bucket is empty whatever ours says: stop spending the burst so
    /// the other workers on this bucket slow down too instead of each earning its own 429.
    fn drain(&self, key: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((tokens, _)) = buckets.get_mut(key) {
            *tokens = tokens.min(0.0);
        }
    }
}

/// ARM meters reads, writes and deletes in separate buckets per subscription.
fn limit_key(method: &Method, url: &str) -> String {
    let class = match *method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    };
    format!("{}/{class}", subscription_of(url))
}

/// An answer that was not retried away: status and body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AzureError> {
        serde_json::from_slice(&self.body).map_err(|e| AzureError::Decode(e.to_string()))
    }

    /// For answers that carry credentials: serde's message can quote the value it choked on,
    /// so it is not passed on.
    pub fn json_sensitive<T: DeserializeOwned>(&self, what: &str) -> Result<T, AzureError> {
        serde_json::from_slice(&self.body).map_err(|_| {
            AzureError::Decode(format!("{what} is not what ARM sends (details withheld: it holds credentials)"))
        })
    }

    /// (code, message) from either ARM error envelope.
    pub fn error(&self) -> (String, String) {
        let value: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let inner = value.get("error").unwrap_or(&value);
        let field = |name: &str| inner.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let code = field("code");
        let code =
            if code.is_empty() { self.status.canonical_reason().unwrap_or("Error").replace(' ', "") } else { code };
        (code, field("message"))
    }

    pub fn into_error(self) -> AzureError {
        let (code, message) = self.error();
        match self.status.as_u16() {
            401 => AzureError::Authentication(format!("{code}: {message}")),
            status => AzureError::Api { status, code, message },
        }
    }
}

pub struct ArmClient {
    http: reqwest::Client,
    endpoint: String,
    credential: Arc<dyn TokenCredential>,
    scope: String,
    retry: RetryPolicy,
    limiter: RateLimiter,
    max_response_bytes: usize,
    pub stats: Arc<RequestStats>,
}

impl ArmClient {
    pub fn new(
        endpoint: &str,
        scope: &str,
        credential: Arc<dyn TokenCredential>,
        settings: &crate::settings::Settings,
    ) -> Result<ArmClient, AzureError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("acrlink/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| AzureError::Transport(e.to_string()))?;
        Ok(ArmClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            credential,
            scope: scope.to_string(),
            retry: settings.retry.clone(),
            max_response_bytes: settings.max_response_bytes,
            limiter: RateLimiter::new(settings.arm_requests_per_second),
            stats: Arc::new(RequestStats::default()),
        })
    }

    /// The ARM endpoint this client talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.endpoint)
    }

    /// Gets a token now, so a sign-in problem is reported once, in full, before any request.
    pub async fn sign_in(&self) -> Result<(), SignInFailure> {
        self.credential.get_token(&[self.scope.as_str()], None).await.map(|_| ()).map_err(
            |e| match crate::auth::advice(&e) {
                Some((bare, advice)) => SignInFailure { message: bare.to_string(), advice: Some(advice) },
                None => SignInFailure { message: error_chain(&e), advice: None },
            },
        )
    }

    async fn token(&self) -> Result<String, AzureError> {
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(|e| AzureError::Authentication(first_line(&e.to_string())))?;
        Ok(token.token.secret().to_string())
    }

    /// Sends one request, retrying throttling and transient failures within the budget.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, AzureError> {
        let started = Instant::now();
        // The bearer token goes only to the configured endpoint, whatever a nextLink or an id
        // in a response says.
        if !same_origin(&self.endpoint, url) {
            return Err(AzureError::Decode(format!(
                "refusing to send a request outside the ARM endpoint {}: {}",
                self.endpoint,
                url.split('?').next().unwrap_or_default()
            )));
        }
        let limit_key = limit_key(&method, url);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.limiter.acquire(&limit_key).await;
            let token = self.token().await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token)
                .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string());
            if let Some(body) = body {
                request = request.json(body);
            } else if method == Method::POST {
                request = request.header("content-length", "0");
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%method, url, attempt, "ARM request");
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let retry_after =
                        parse_retry_after(response.headers().get("retry-after").and_then(|v| v.to_str().ok()));
                    let failure = classify_status(status.as_u16(), retry_after);
                    let body = match read_capped(response, self.max_response_bytes, url).await {
                        Ok(body) => body,
                        Err(too_large @ AzureError::TooLarge { .. }) => return Err(too_large),
                        Err(e) => {
                            self.note_retry(Failure::Transient);
                            match self.retry.delay(attempt, Failure::Transient, started) {
                                Some(wait) => {
                                    tokio::time::sleep(wait).await;
                                    continue;
                                }
                                None => return Err(exhausted(attempt, started, e.to_string())),
                            }
                        }
                    };
                    // -vvv: every answer, never its body (it may hold credentials).
                    tracing::trace!(%method, url, %status, bytes = body.len(), "ARM response");
                    if failure == Failure::Permanent {
                        return Ok(Answer { status, headers, body });
                    }
                    let answer = Answer { status, headers, body };
                    if matches!(failure, Failure::Throttled { .. }) {
                        self.limiter.drain(&limit_key);
                    }
                    match self.retry.delay(attempt, failure, started) {
                        Some(wait) => {
                            self.note_retry(failure);
                            tracing::info!(%status, wait_ms = wait.as_millis() as u64, url, "ARM asked to retry");
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        None => {
                            let (code, message) = answer.error();
                            return Err(exhausted(attempt, started, format!("{} {code} {message}", status.as_u16())));
                        }
                    }
                }
                Err(e) => {
                    let detail = first_line(&error_chain(&e));
                    let failure = if e.is_connect() { Failure::Unreachable } else { Failure::Transient };
                    match self.retry.delay(attempt, failure, started) {
                        Some(wait) => {
                            self.note_retry(failure);
                            tracing::info!(error = %detail, wait_ms = wait.as_millis() as u64, url, "ARM connection failed; retrying");
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        None if failure == Failure::Unreachable => {
                            return Err(AzureError::Unreachable { endpoint: origin(url), detail: root_cause(&e) });
                        }
                        None if attempt == 1 => return Err(AzureError::Transport(detail)),
                        None => return Err(exhausted(attempt, started, detail)),
                    }
                }
            }
        }
    }

    fn note_retry(&self, failure: Failure) {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        if matches!(failure, Failure::Throttled { .. }) {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends a request that may start a long-running operation and waits for its end:
    /// `Azure-AsyncOperation` (poll the status document) or `Location` (poll until not 202).
    /// Returns the final answer: the operation's result, or the original answer when the
    /// operation's status document carries no result.
    pub async fn send_lro(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, AzureError> {
        let first = self.send(method, url, body).await?;
        if !first.status.is_success() {
            return Ok(first);
        }
        let header =
            |answer: &Answer, name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let started = Instant::now();
        if let Some(status_url) = header(&first, "azure-asyncoperation") {
            loop {
                self.lro_wait(&first, started).await?;
                let poll = self.send(Method::GET, &status_url, None).await?;
                if !poll.status.is_success() {
                    return Err(poll.into_error());
                }
                let document: serde_json::Value = poll.json()?;
                match document["status"].as_str().unwrap_or_default() {
                    // The result, where the operation has one, is at Location.
                    "Succeeded" => match header(&first, "location") {
                        Some(location) if first.status == StatusCode::ACCEPTED => {
                            return self.send(Method::GET, &location, None).await;
                        }
                        _ => return Ok(first),
                    },
                    "Failed" | "Canceled" => {
                        let error = &document["error"];
                        return Err(AzureError::Api {
                            status: 200,
                            code: error["code"].as_str().unwrap_or("OperationFailed").to_string(),
                            message: error["message"].as_str().unwrap_or_default().to_string(),
                        });
                    }
                    _ => {}
                }
            }
        }
        if first.status == StatusCode::ACCEPTED
            && let Some(mut location) = header(&first, "location")
        {
            let mut last = first;
            loop {
                self.lro_wait(&last, started).await?;
                let poll = self.send(Method::GET, &location, None).await?;
                if poll.status != StatusCode::ACCEPTED {
                    return Ok(poll);
                }
                if let Some(next) = header(&poll, "location") {
                    location = next;
                }
                last = poll;
            }
        }
        Ok(first)
    }

    async fn lro_wait(&self, answer: &Answer, started: Instant) -> Result<(), AzureError> {
        let wait = parse_retry_after(answer.headers.get("retry-after").and_then(|v| v.to_str().ok()))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(10));
        if started.elapsed() + wait > self.retry.budget {
            return Err(exhausted(0, started, "a long-running operation did not finish in time".into()));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// GETs a JSON resource; 404 is `None`.
    pub async fn get<T: DeserializeOwned>(&self, url: &str) -> Result<Option<T>, AzureError> {
        let answer = self.send(Method::GET, url, None).await?;
        match answer.status.as_u16() {
            200 => answer.json().map(Some),
            404 => Ok(None),
            _ => Err(answer.into_error()),
        }
    }

    /// GETs every page of a list, following nextLink verbatim.
    pub async fn list<T: DeserializeOwned>(&self, url: &str) -> Result<Vec<T>, AzureError> {
        let mut items = Vec::new();
        let mut fetched = HashSet::new();
        let mut next = Some(url.to_string());
        while let Some(url) = next.take() {
            let answer = self.send(Method::GET, &url, None).await?;
            if answer.status != StatusCode::OK {
                return Err(answer.into_error());
            }
            let page: Page<T> = answer.json()?;
            items.extend(page.value);
            next = next_page(&mut fetched, &url, page.next_link)?;
        }
        Ok(items)
    }
}

/// The page to read after `current`, or None at the end. A nextLink back to a page already
/// read would never end: an error at once.
fn next_page(
    fetched: &mut HashSet<String>,
    current: &str,
    next_link: Option<String>,
) -> Result<Option<String>, AzureError> {
    fetched.insert(current.to_string());
    match next_link.filter(|link| !link.is_empty()) {
        Some(link) if fetched.contains(&link) => Err(AzureError::Decode(format!(
            "the nextLink of {} points back to a page already read; the list would never end",
            current.split('?').next().unwrap_or_default()
        ))),
        next => Ok(next),
    }
}

/// Reads an answer chunk by chunk, refusing one larger than `limit` bytes before holding it
/// all: a broken or hostile server must not exhaust memory.
async fn read_capped(mut response: reqwest::Response, limit: usize, url: &str) -> Result<bytes::Bytes, AzureError> {
    let too_large = || AzureError::TooLarge { url: url.split('?').next().unwrap_or_default().to_string(), limit };
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| AzureError::Transport(first_line(&error_chain(&e))))? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn exhausted(attempts: u32, started: Instant, last: String) -> AzureError {
    AzureError::RetriesExhausted { attempts, elapsed_seconds: started.elapsed().as_secs_f64(), last }
}

/// `https://host:port` of a URL, for naming an endpoint without its path and query.
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => url.split('?').next().unwrap_or_default().to_string(),
    }
}

/// The innermost cause of a connection failure ("Connection refused (os error 111)", "failed
/// to lookup address information: …"): what the user can act on, without reqwest's wrapping.
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    first_line(&cause.to_string())
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// The error and its causes on one line; a cause that only repeats its error's text (an
/// azure_core error wrapping a typed one shows the inner text as its own) is said once.
/// A sign-in that failed, and what to do when acrlink knows (Entra's code has advice).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SignInFailure {
    pub message: String,
    pub advice: Option<&'static str>,
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut last = error.to_string();
    let mut text = last.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if said != last {
            text.push_str(": ");
            text.push_str(&said);
        }
        last = said;
        source = cause.source();
    }
    text
}

/// The subscription a URL addresses, the unit of ARM's throttling buckets.
fn subscription_of(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    lower.split("/subscriptions/").nth(1).and_then(|rest| rest.split(['/', '?']).next()).unwrap_or("tenant").to_string()
}

/// Whether `url` is on the same scheme, host and port as `endpoint`, under its path.
fn same_origin(endpoint: &str, url: &str) -> bool {
    match (reqwest::Url::parse(endpoint), reqwest::Url::parse(url)) {
        (Ok(base), Ok(target)) => {
            base.origin() == target.origin() && target.path().starts_with(base.path().trim_end_matches('/'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_of_credential_answers_do_not_quote_them() {
        let answer = Answer {
            status: StatusCode::OK,
            headers: Default::default(),
            body: bytes::Bytes::from_static(br#"{"passwords": "CANARY-in-a-wrong-place"}"#),
        };
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Shape {
            passwords: Vec<String>,
        }
        let plain = answer.json::<Shape>().unwrap_err().to_string();
        assert!(plain.contains("CANARY"), "serde quotes values: {plain}");
        let withheld = answer.json_sensitive::<Shape>("listCredentials").unwrap_err().to_string();
        assert!(!withheld.contains("CANARY"), "{withheld}");
    }

    #[test]
    fn a_next_link_back_to_a_page_already_read_is_an_error_at_once() {
        let mut fetched = std::collections::HashSet::new();
        let first = "https://arm/subscriptions/s/providers/x?api-version=1";
        assert_eq!(
            next_page(&mut fetched, first, Some("https://arm/x?$skiptoken=2".into())).unwrap().as_deref(),
            Some("https://arm/x?$skiptoken=2")
        );
        assert_eq!(next_page(&mut fetched, "https://arm/x?$skiptoken=2", None).unwrap(), None);
        let mut looping = std::collections::HashSet::new();
        let error = next_page(&mut looping, first, Some(first.into())).unwrap_err().to_string();
        assert!(error.contains("nextLink") && error.contains("already"), "{error}");
        assert!(next_page(&mut looping, first, Some(String::new())).unwrap().is_none(), "an empty link ends the list");
    }

    #[tokio::test]
    async fn an_answer_larger_than_the_cap_is_refused_without_buffering_it_whole() {
        let small = reqwest::Response::from(http::Response::new(vec![b'x'; 1000]));
        assert_eq!(read_capped(small, 1000, "https://arm/x").await.unwrap().len(), 1000);
        let large = reqwest::Response::from(http::Response::new(vec![b'x'; 1001]));
        let error = read_capped(large, 1000, "https://arm/x?api-version=1").await.unwrap_err().to_string();
        assert!(error.contains("larger than 1000 bytes") && error.contains("https://arm/x"), "{error}");
        assert!(!error.contains("api-version"), "{error}");
    }

    #[test]
    fn pacing_follows_azures_buckets_per_class_reads_250_plus_25_writes_and_deletes_200_plus_10() {
        let limiter = RateLimiter::new(None);
        let now = Instant::now();
        for (class, burst, refill) in [("read", 250, 25.0), ("write", 200, 10.0), ("delete", 200, 10.0)] {
            let key = format!("s1/{class}");
            for n in 0..burst {
                assert_eq!(limiter.reserve(&key, now), Duration::ZERO, "{class} #{n} is in the burst");
            }
            let wait = limiter.reserve(&key, now).as_secs_f64();
            assert!((wait - 1.0 / refill).abs() < 1e-6, "{class}: the next waits one refill ({wait})");
        }
        let fast = RateLimiter::new(Some(1000.0));
        assert_eq!(fast.reserve("s1/write", now), Duration::ZERO, "an explicit rate applies to every class");
    }

    #[test]
    fn requests_never_leave_the_endpoint() {
        let arm = "https://management.azure.com";
        assert!(same_origin(arm, "https://management.azure.com/subscriptions/x?api-version=1"));
        assert!(same_origin(arm, "https://MANAGEMENT.azure.com:443/subscriptions?$skiptoken=2"));
        assert!(!same_origin(arm, "https://evil.example/subscriptions/x"));
        assert!(!same_origin(arm, "http://management.azure.com/subscriptions/x"));
        assert!(!same_origin(arm, "https://management.azure.com.evil.example/x"));
        assert!(!same_origin(arm, "https://management.azure.com:8443/x"));
        assert!(!same_origin(arm, "not a url"));
    }

    #[test]
    fn reads_writes_and_deletes_are_metered_apart_per_subscription() {
        let url = "https://m/subscriptions/ABC/resourceGroups/x?api-version=1";
        assert_eq!(limit_key(&Method::GET, url), "abc/read");
        assert_eq!(limit_key(&Method::PUT, url), "abc/write");
        assert_eq!(limit_key(&Method::DELETE, url), "abc/delete");
        assert_eq!(limit_key(&Method::GET, "https://m/providers/x"), "tenant/read");
    }

    #[tokio::test]
    async fn a_throttle_drains_the_burst() {
        let limiter = RateLimiter::new(Some(1.0));
        limiter.acquire("k").await;
        limiter.drain("k");
        let started = Instant::now();
        limiter.acquire("k").await;
        assert!(started.elapsed() >= Duration::from_millis(900), "had to wait for a refill");
    }
}
