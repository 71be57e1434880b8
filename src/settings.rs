//! Tuning read once, at the edge (the CLI reads the environment), and passed down as a value:
//! no engine or adapter module reads the environment for these.

use std::time::Duration;

use crate::provider::ReadVia;
use crate::provider::retry::RetryPolicy;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Retries of throttled, failed or dropped requests (ACRLINK_RETRY_BUDGET_SECONDS,
    /// ACRLINK_RETRY_MAX_ATTEMPTS).
    pub retry: RetryPolicy,
    /// ARM requests per second and subscription (ACRLINK_ARM_REQUESTS_PER_SECOND); None paces
    /// by ARM's own buckets (reads 250 + 25/s, writes and deletes 200 + 10/s).
    pub arm_requests_per_second: Option<f64>,
    /// How long apply keeps retrying PrincipalNotFound (ACRLINK_PRINCIPAL_WAIT_SECONDS).
    pub principal_wait: Duration,
    /// Where ARM is reached instead of the cloud's endpoint (ACRLINK_ARM_ENDPOINT): the
    /// emulator, a proxy.
    pub arm_endpoint: Option<String>,
    /// The largest answer read from ARM (ACRLINK_MAX_RESPONSE_BYTES); a larger one is an error.
    pub max_response_bytes: usize,
    /// How clusters and registries are read (ACRLINK_READ_VIA: arm, resource-graph, auto).
    pub read_via: ReadVia,
    /// Where Microsoft Graph is reached instead of the cloud's endpoint (ACRLINK_GRAPH_ENDPOINT).
    pub graph_endpoint: Option<String>,
    /// Where Entra-integrated clusters' kubeconfigs are kept between runs (ACRLINK_CACHE_DIR,
    /// else $XDG_CACHE_HOME/acrlink, else ~/.cache/acrlink; `off` keeps none).
    pub cache_dir: Option<std::path::PathBuf>,
    /// Where registries' data planes are reached instead of `https://<login server>`
    /// (ACRLINK_REGISTRY_ENDPOINT; a registry is then `<endpoint>/<login server>`): the emulator.
    pub registry_endpoint: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retry: RetryPolicy::default(),
            arm_requests_per_second: None,
            principal_wait: Duration::from_secs(300),
            arm_endpoint: None,
            max_response_bytes: 32 * 1024 * 1024,
            read_via: ReadVia::default(),
            cache_dir: None,
            graph_endpoint: None,
            registry_endpoint: None,
        }
    }
}

/// Seconds as a Duration; None for what no Duration holds (negative, NaN, infinite, huge).
fn seconds(text: &str) -> Option<Duration> {
    Duration::try_from_secs_f64(text.trim().parse::<f64>().ok()?).ok()
}

fn cache_dir(variable: &impl Fn(&str) -> Option<String>) -> Option<std::path::PathBuf> {
    let set = |name: &str| variable(name).filter(|v| !v.trim().is_empty());
    match set("ACRLINK_CACHE_DIR") {
        Some(dir) if dir.trim() == "off" => None,
        Some(dir) => Some(dir.into()),
        None => set("XDG_CACHE_HOME")
            .map(|d| std::path::PathBuf::from(d).join("acrlink"))
            .or_else(|| set("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/acrlink"))),
    }
}

impl Settings {
    /// Reads the settings from `variable` (the environment, at the CLI edge); a value that does
    /// not parse keeps the default.
    pub fn from_variables(variable: impl Fn(&str) -> Option<String>) -> Settings {
        let mut settings = Settings::default();
        if let Some(budget) = variable("ACRLINK_RETRY_BUDGET_SECONDS").as_deref().and_then(seconds) {
            settings.retry.budget = budget;
        }
        if let Some(attempts) = variable("ACRLINK_RETRY_MAX_ATTEMPTS").and_then(|v| v.trim().parse().ok()) {
            settings.retry.max_attempts = attempts;
        }
        let rate = variable("ACRLINK_ARM_REQUESTS_PER_SECOND").and_then(|v| v.trim().parse::<f64>().ok());
        if let Some(rate) = rate.filter(|r| r.is_finite() && *r >= 0.0) {
            settings.arm_requests_per_second = Some(rate);
        }
        if let Some(wait) = variable("ACRLINK_PRINCIPAL_WAIT_SECONDS").as_deref().and_then(seconds) {
            settings.principal_wait = wait;
        }
        settings.arm_endpoint = variable("ACRLINK_ARM_ENDPOINT").filter(|v| !v.trim().is_empty());
        if let Some(limit) = variable("ACRLINK_MAX_RESPONSE_BYTES").and_then(|v| v.trim().parse().ok()) {
            settings.max_response_bytes = limit;
        }
        if let Some(read_via) = variable("ACRLINK_READ_VIA").as_deref().and_then(ReadVia::parse) {
            settings.read_via = read_via;
        }
        settings.cache_dir = cache_dir(&variable);
        settings.graph_endpoint = variable("ACRLINK_GRAPH_ENDPOINT").filter(|v| !v.trim().is_empty());
        settings.registry_endpoint = variable("ACRLINK_REGISTRY_ENDPOINT").filter(|v| !v.trim().is_empty());
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_defaults_and_nonsense_keeps_them() {
        let settings = Settings::from_variables(|name| match name {
            "ACRLINK_RETRY_BUDGET_SECONDS" => Some("1.5".into()),
            "ACRLINK_RETRY_MAX_ATTEMPTS" => Some("3".into()),
            "ACRLINK_ARM_REQUESTS_PER_SECOND" => Some("1000".into()),
            "ACRLINK_PRINCIPAL_WAIT_SECONDS" => Some("inf".into()),
            "ACRLINK_ARM_ENDPOINT" => Some("https://127.0.0.1:8443".into()),
            "ACRLINK_READ_VIA" => Some("resource-graph".into()),
            _ => None,
        });
        assert_eq!(settings.retry.budget, Duration::from_millis(1500));
        assert_eq!(settings.retry.max_attempts, 3);
        assert_eq!(settings.arm_requests_per_second, Some(1000.0));
        assert_eq!(settings.principal_wait, Duration::from_secs(300), "inf keeps the default");
        assert_eq!(settings.arm_endpoint.as_deref(), Some("https://127.0.0.1:8443"));
        assert_eq!(settings.read_via, ReadVia::ResourceGraph);
        let home = Settings::from_variables(|name| (name == "HOME").then(|| "/home/u".into()));
        assert_eq!(home.cache_dir, Some("/home/u/.cache/acrlink".into()));
        let off = Settings::from_variables(|name| match name {
            "ACRLINK_CACHE_DIR" => Some("off".into()),
            _ => Some("/x".into()),
        });
        assert_eq!(off.cache_dir, None);
        let nonsense = Settings::from_variables(|_| Some("-1".into()));
        assert_eq!(nonsense.retry.budget, Settings::default().retry.budget);
        assert_eq!(nonsense.arm_requests_per_second, None);
        assert!(nonsense.arm_endpoint.is_some(), "an endpoint is taken as given");
    }
}
