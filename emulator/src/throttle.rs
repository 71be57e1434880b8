//! ARM's request throttling: a token bucket per (principal, subscription, read/write/delete),
//! refilled continuously, as Azure's current model documents it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::world::Throttle as ThrottleSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Read,
    Write,
    Delete,
}

impl Kind {
    pub fn for_method(method: &str) -> Kind {
        match method {
            "GET" | "HEAD" => Kind::Read,
            "DELETE" => Kind::Delete,
            _ => Kind::Write,
        }
    }

    /// The plural used in `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Read => "reads",
            Kind::Write => "writes",
            Kind::Delete => "deletes",
        }
    }

    /// The operation type named in the 429 message.
    pub fn operation_type(self) -> &'static str {
        match self {
            Kind::Read => "Read",
            Kind::Write => "Write",
            Kind::Delete => "Delete",
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub(crate) struct Throttler {
    pub settings: ThrottleSettings,
    buckets: HashMap<(String, String, Kind), Bucket>,
    /// Resource Graph's per-user quota: when each principal's window opened, queries used in it.
    queries: HashMap<String, (Instant, u32)>,
}

/// Resource Graph's documented example quota: 15 queries per 5-second window per user.
pub const QUERY_QUOTA: u32 = 15;
pub const QUERY_WINDOW: Duration = Duration::from_secs(5);

/// The outcome of taking one Resource Graph query from a user's quota.
pub struct QueryQuota {
    /// False when the quota was already spent (answer 429).
    pub allowed: bool,
    /// Queries left in the window (`x-ms-user-quota-remaining`).
    pub remaining: u32,
    /// Until the window resets (`x-ms-user-quota-resets-after`, and `Retry-After` on a 429).
    pub resets_after: Duration,
}

/// The outcome of taking one request's token.
pub enum Decision {
    /// Allowed; this many requests remain in the bucket.
    Allowed(u64),
    /// Refused; retry after this many seconds.
    Throttled(u64),
}

impl Throttler {
    pub fn new(settings: ThrottleSettings) -> Throttler {
        Throttler { settings, buckets: HashMap::new(), queries: HashMap::new() }
    }

    /// Takes one Resource Graph query from the principal's quota (always allowed, full quota,
    /// when throttling is off).
    pub fn take_query(&mut self, principal: &str) -> QueryQuota {
        if !self.settings.enabled {
            return QueryQuota { allowed: true, remaining: QUERY_QUOTA, resets_after: QUERY_WINDOW };
        }
        let now = Instant::now();
        let window = self.queries.entry(principal.to_ascii_lowercase()).or_insert((now, 0));
        if now.duration_since(window.0) >= QUERY_WINDOW {
            *window = (now, 0);
        }
        let resets_after = QUERY_WINDOW.saturating_sub(now.duration_since(window.0));
        if window.1 >= QUERY_QUOTA {
            return QueryQuota { allowed: false, remaining: 0, resets_after };
        }
        window.1 += 1;
        QueryQuota { allowed: true, remaining: QUERY_QUOTA - window.1, resets_after }
    }

    pub fn take(&mut self, principal: &str, subscription: &str, kind: Kind) -> Decision {
        let config = match kind {
            Kind::Read => self.settings.reads,
            Kind::Write => self.settings.writes,
            Kind::Delete => self.settings.deletes,
        };
        if !self.settings.enabled {
            return Decision::Allowed(u64::from(config.capacity));
        }
        let now = Instant::now();
        let capacity = f64::from(config.capacity);
        let bucket = self
            .buckets
            .entry((principal.to_ascii_lowercase(), subscription.to_ascii_lowercase(), kind))
            .or_insert(Bucket { tokens: capacity, last: now });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * config.refill_per_second).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allowed(bucket.tokens.floor() as u64)
        } else if config.refill_per_second > 0.0 {
            let wait = ((1.0 - bucket.tokens) / config.refill_per_second).ceil().max(1.0);
            Decision::Throttled(wait as u64)
        } else {
            Decision::Throttled(3600)
        }
    }

    pub fn reset(&mut self, settings: ThrottleSettings) {
        self.settings = settings;
        self.buckets.clear();
        self.queries.clear();
    }
}
