//! [`ProfilingStats`]: what the middleware did with each request's token.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::token::Rejection;

/// Counters of a [`ProfilingLayer`](super::ProfilingLayer): how many
/// requests were profiled and why tokens were refused. Readable at any
/// time; cloning shares them.
///
/// A request without a token is the normal case and not a refusal. Every
/// other request that was not profiled is counted by why: a token that was
/// too long, did not verify, or did not hold a trace info; or a valid token
/// over the limit, or whose root span the subscriber's filters disabled.
/// Refusals are also summed up in a `tracing` warning at most once per
/// interval, never once per request.
#[derive(Clone)]
pub struct ProfilingStats {
    counters: Arc<Counters>,
}

struct Counters {
    requests_without_token: AtomicU64,
    requests_profiled: AtomicU64,
    tokens_oversized: AtomicU64,
    tokens_bad_signature: AtomicU64,
    tokens_malformed: AtomicU64,
    tokens_over_limit: AtomicU64,
    tokens_disabled_by_filter: AtomicU64,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last summary warning, or `NEVER`.
    last_warn: AtomicU64,
}

const NEVER: u64 = u64::MAX;

impl ProfilingStats {
    pub(crate) fn new() -> Self {
        ProfilingStats {
            counters: Arc::new(Counters {
                requests_without_token: AtomicU64::new(0),
                requests_profiled: AtomicU64::new(0),
                tokens_oversized: AtomicU64::new(0),
                tokens_bad_signature: AtomicU64::new(0),
                tokens_malformed: AtomicU64::new(0),
                tokens_over_limit: AtomicU64::new(0),
                tokens_disabled_by_filter: AtomicU64::new(0),
                epoch: Instant::now(),
                last_warn: AtomicU64::new(NEVER),
            }),
        }
    }

    /// Requests without a token (the normal case, not a refusal).
    #[must_use]
    pub fn requests_without_token(&self) -> u64 {
        self.counters.requests_without_token.load(Ordering::Relaxed)
    }

    /// Requests served profiled.
    #[must_use]
    pub fn requests_profiled(&self) -> u64 {
        self.counters.requests_profiled.load(Ordering::Relaxed)
    }

    /// Tokens refused because a header was too long.
    #[must_use]
    pub fn tokens_oversized(&self) -> u64 {
        self.counters.tokens_oversized.load(Ordering::Relaxed)
    }

    /// Tokens whose signature did not verify (wrong key, tampering, bad hex,
    /// non-ASCII, disabled algorithm).
    #[must_use]
    pub fn tokens_bad_signature(&self) -> u64 {
        self.counters.tokens_bad_signature.load(Ordering::Relaxed)
    }

    /// Tokens that were duplicated, or signed but not a valid trace info.
    #[must_use]
    pub fn tokens_malformed(&self) -> u64 {
        self.counters.tokens_malformed.load(Ordering::Relaxed)
    }

    /// Valid tokens refused by the [`ProfileLimit`](crate::limit::ProfileLimit).
    #[must_use]
    pub fn tokens_over_limit(&self) -> u64 {
        self.counters.tokens_over_limit.load(Ordering::Relaxed)
    }

    /// Valid tokens whose root span the subscriber's filters disabled (or
    /// with no [`OsProfilerLayer`](crate::OsProfilerLayer) installed): a
    /// configuration to fix, see the [`ProfilingLayer`](super::ProfilingLayer) docs.
    #[must_use]
    pub fn tokens_disabled_by_filter(&self) -> u64 {
        self.counters
            .tokens_disabled_by_filter
            .load(Ordering::Relaxed)
    }

    /// All refusals: every request with a token that was not profiled.
    #[must_use]
    pub fn tokens_refused(&self) -> u64 {
        self.tokens_oversized()
            + self.tokens_bad_signature()
            + self.tokens_malformed()
            + self.tokens_over_limit()
            + self.tokens_disabled_by_filter()
    }

    pub(crate) fn count_without_token(&self) {
        self.counters
            .requests_without_token
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_profiled(&self) {
        self.counters
            .requests_profiled
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_rejection(&self, rejection: Rejection) {
        let counter = match rejection {
            Rejection::Missing => &self.counters.requests_without_token,
            Rejection::Oversized => &self.counters.tokens_oversized,
            Rejection::BadSignature => &self.counters.tokens_bad_signature,
            _ => &self.counters.tokens_malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_over_limit(&self) {
        self.counters
            .tokens_over_limit
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_disabled_by_filter(&self) {
        self.counters
            .tokens_disabled_by_filter
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a summary warning is due (at most one per `interval`); if
    /// so, this caller makes it.
    pub(crate) fn warn_due(&self, interval: Duration) -> bool {
        let counters = &self.counters;
        let now = u64::try_from(counters.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = counters.last_warn.load(Ordering::Relaxed);
        let interval = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        if last != NEVER && now.saturating_sub(last) < interval {
            return false;
        }
        counters
            .last_warn
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

impl fmt::Debug for ProfilingStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilingStats")
            .field("requests_without_token", &self.requests_without_token())
            .field("requests_profiled", &self.requests_profiled())
            .field("tokens_oversized", &self.tokens_oversized())
            .field("tokens_bad_signature", &self.tokens_bad_signature())
            .field("tokens_malformed", &self.tokens_malformed())
            .field("tokens_over_limit", &self.tokens_over_limit())
            .field(
                "tokens_disabled_by_filter",
                &self.tokens_disabled_by_filter(),
            )
            .finish()
    }
}
