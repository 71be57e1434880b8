//! The one retry policy for every remote call: throttling (429, honouring Retry-After),
//! transient server errors (5xx) and connection failures, with capped exponential back-off,
//! full jitter and a total time budget. Decides only whether and how long to wait.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// A cap on attempts; by default none: the time budget decides, so a storm of 429s that
    /// the budget could carry never fails a change (ACRLINK_RETRY_MAX_ATTEMPTS sets one).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            budget: Duration::from_secs(300),
        }
    }
}

/// Why the last attempt failed, as far as retrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Throttled {
        retry_after: Option<Duration>,
    },
    Transient,
    /// No connection could be made (refused, no such host, TLS handshake): a server that is not
    /// there rarely appears within the budget, so this is retried only briefly.
    Unreachable,
    Permanent,
}

/// Attempts at a server that cannot be reached: a blip is ridden out (about a second of
/// back-off in all), a wrong or dead endpoint fails within seconds, not the whole budget.
pub const UNREACHABLE_ATTEMPTS: u32 = 4;

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1`, or None to give up.
    pub fn delay(&self, attempt: u32, failure: Failure, started: Instant) -> Option<Duration> {
        if failure == Failure::Permanent || attempt >= self.max_attempts {
            return None;
        }
        if failure == Failure::Unreachable && attempt >= UNREACHABLE_ATTEMPTS {
            return None;
        }
        let exponential =
            self.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))).min(self.max_delay);
        let jittered = exponential.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        let wait = match failure {
            // The server said how long; waiting less only earns another 429. A little jitter on
            // top keeps many workers throttled together from retrying in the same instant.
            Failure::Throttled { retry_after: Some(after) } => {
                after.saturating_add(jittered.min(Duration::from_millis(250)).mul_f64(rand::random::<f64>()))
            }
            _ => jittered,
        };
        match started.elapsed().checked_add(wait) {
            Some(resume) if resume <= self.budget => Some(wait),
            _ => None,
        }
    }
}

pub fn classify_status(status: u16, retry_after: Option<Duration>) -> Failure {
    match status {
        429 => Failure::Throttled { retry_after },
        500 | 502 | 503 | 504 | 408 => Failure::Transient,
        _ => Failure::Permanent,
    }
}

/// Retry-After in seconds (the form ARM uses); HTTP dates are not sent by ARM. A value no
/// Duration can hold (a hostile or broken server) reads as "longer than any budget".
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let seconds = value.and_then(|v| v.trim().parse::<f64>().ok())?;
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(seconds_to_duration(seconds).unwrap_or(Duration::MAX))
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(seconds.max(0.0)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_retry_after_and_gives_up_at_budget() {
        let policy = RetryPolicy { budget: Duration::from_secs(5), ..RetryPolicy::default() };
        let now = Instant::now();
        let wait = policy.delay(1, Failure::Throttled { retry_after: Some(Duration::from_secs(2)) }, now).unwrap();
        assert!(wait >= Duration::from_secs(2));
        assert_eq!(policy.delay(1, Failure::Throttled { retry_after: Some(Duration::from_secs(9)) }, now), None);
        assert_eq!(policy.delay(1, Failure::Permanent, now), None);
        let counted = RetryPolicy { max_attempts: 8, ..policy.clone() };
        assert_eq!(counted.delay(8, Failure::Transient, now), None, "a cap set by ACRLINK_RETRY_MAX_ATTEMPTS holds");
    }

    #[test]
    fn throttling_is_ridden_out_for_as_long_as_the_budget_lasts_whatever_the_attempt_count() {
        let policy = RetryPolicy { budget: Duration::from_secs(300), ..RetryPolicy::default() };
        let now = Instant::now();
        let throttled = Failure::Throttled { retry_after: Some(Duration::from_secs(1)) };
        for attempt in [8, 9, 50, 200] {
            assert!(policy.delay(attempt, throttled, now).is_some(), "attempt {attempt} is within the budget");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy { budget: Duration::from_secs(3600), ..RetryPolicy::default() };
        let now = Instant::now();
        let first = policy.delay(1, Failure::Transient, now).unwrap();
        assert!(first <= Duration::from_millis(200));
        let late = policy.delay(7, Failure::Transient, now).unwrap();
        assert!(late <= Duration::from_secs(30) && late >= Duration::from_secs(6));
    }

    #[test]
    fn an_unreachable_server_is_given_up_on_within_seconds_whatever_the_budget() {
        let policy = RetryPolicy { budget: Duration::from_secs(3600), ..RetryPolicy::default() };
        let now = Instant::now();
        let waits: Vec<Duration> =
            (1..=UNREACHABLE_ATTEMPTS).map_while(|attempt| policy.delay(attempt, Failure::Unreachable, now)).collect();
        assert_eq!(waits.len() as u32, UNREACHABLE_ATTEMPTS - 1);
        assert!(waits.iter().sum::<Duration>() <= Duration::from_secs(2), "{waits:?}");
        assert!(policy.delay(UNREACHABLE_ATTEMPTS, Failure::Transient, now).is_some(), "other failures go on");
    }

    #[test]
    fn status_classes() {
        assert_eq!(classify_status(503, None), Failure::Transient);
        assert_eq!(classify_status(409, None), Failure::Permanent);
        assert_eq!(parse_retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(Some("soon")), None);
    }

    #[test]
    fn absurd_retry_after_gives_up_instead_of_panicking() {
        let policy = RetryPolicy::default();
        let now = Instant::now();
        for value in ["1e300", "inf", "18446744073709551616", "NaN", "-4"] {
            let after = parse_retry_after(Some(value));
            assert_eq!(
                policy.delay(1, Failure::Throttled { retry_after: after }, now).is_some(),
                after.is_none(),
                "{value}"
            );
        }
        assert_eq!(policy.delay(1, Failure::Throttled { retry_after: Some(Duration::MAX) }, now), None);
    }
}
