//! The framework-neutral half of the server middlewares: what happens to one
//! incoming request, whatever the framework.
//!
//! This module owns [`Admission`]: reading the token out of the header
//! values a framework hands over (exactly one of each header, see
//! [`verify_token`]), verifying it with several keys, the fair
//! [`ProfileLimit`], starting the root span with the request's facts
//! ([`RequestFacts`]), the [`ProfilingStats`] counters and the summary
//! warning of refused tokens. The tower middleware (`layer.rs`) and the
//! actix-web one (`crate::actix`) only translate their request types into
//! header lookups, a method, a path and a scheme, so the two cannot drift
//! apart: the same token is profiled, refused and counted the same way
//! behind either.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::Span;

use super::root::HeldRoot;
use super::stats::ProfilingStats;
use crate::capture::Capture;
use crate::layer::ProfileExt as _;
use crate::limit::{ProfileLimit, ProfileLimiter};
use crate::point::RequestInfo;
use crate::token::{HmacKeys, Profile, Rejection};

/// The target of the summary warnings.
const TARGET: &str = "tracing_osprofiler::http";

/// What a middleware knows of a request besides its headers, borrowed from
/// the framework's own request type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// `http` unless the request line said otherwise.
    pub(crate) scheme: &'a str,
    /// The query string, if the request has a non-empty one.
    pub(crate) query: Option<&'a str>,
}

/// Verifies the token carried by the values of `X-Trace-Info` and
/// `X-Trace-HMAC`, in the order the request has them.
///
/// Both headers absent (or one of them) is [`Rejection::Missing`], the
/// normal unprofiled case; either header present more than once is
/// [`Rejection::Malformed`] (osprofiler would pick one; picking either
/// could let a forged value through a proxy that appends); everything else
/// is as [`HmacKeys::verify`] says.
pub(crate) fn verify_token<'v>(
    keys: &HmacKeys,
    info: impl Iterator<Item = &'v [u8]>,
    hmac: impl Iterator<Item = &'v [u8]>,
) -> Result<Profile, Rejection> {
    let info = single(info)?;
    let hmac = single(hmac)?;
    match (info, hmac) {
        (Some(info), Some(hmac)) => keys.verify(info, hmac),
        _ => Err(Rejection::Missing),
    }
}

/// The one value, `None` if absent, `Malformed` if repeated.
fn single<'v>(mut values: impl Iterator<Item = &'v [u8]>) -> Result<Option<&'v [u8]>, Rejection> {
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::Malformed);
    }
    Ok(Some(first))
}

/// The configuration and state one middleware (and all its clones) shares:
/// keys, limit, counters. See the [module docs](self).
#[derive(Clone)]
pub(crate) struct Admission {
    keys: HmacKeys,
    limiter: ProfileLimiter,
    stats: ProfilingStats,
    warn_interval: Duration,
    query: bool,
    /// The first request whose root a filter disabled was reported.
    disabled_reported: Arc<AtomicBool>,
    /// Tail capture of the requests without a valid token, if the operator
    /// set it (`crate::capture`).
    capture: Option<Capture>,
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("keys", &self.keys)
            .field("limiter", &self.limiter)
            .field("warn_interval", &self.warn_interval)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Accepts tokens verified by `keys`, with the default limit (64 at
    /// once, 100 a second), a summary warning at most once a minute, and no
    /// query string for the sinks. With no key nothing can ever be
    /// profiled, which is said on standard error at once.
    pub(crate) fn new(keys: HmacKeys) -> Self {
        if keys.is_empty() {
            eprintln!(
                "tracing-osprofiler: the profiling middleware has no HMAC key, so no request \
                 can be profiled; give it the keys your clients sign with"
            );
        }
        Admission {
            keys,
            limiter: ProfileLimit::default().build(),
            stats: ProfilingStats::new(),
            warn_interval: Duration::from_secs(60),
            query: false,
            disabled_reported: Arc::new(AtomicBool::new(false)),
            capture: None,
        }
    }

    pub(crate) fn set_capture(&mut self, capture: Option<Capture>) {
        self.capture = capture;
    }

    pub(crate) fn set_query(&mut self, record: bool) {
        self.query = record;
    }

    pub(crate) fn set_limit(&mut self, limit: ProfileLimit) {
        self.limiter = limit.build();
    }

    pub(crate) fn set_warn_interval(&mut self, interval: Duration) {
        self.warn_interval = interval;
    }

    pub(crate) fn stats(&self) -> &ProfilingStats {
        &self.stats
    }

    /// Decides whether a request is profiled, from the values of its two
    /// token headers and its facts: if so, its root span (built by
    /// `make_root`, not yet entered) and the permit, to hold until its
    /// response is finished; else an empty [`HeldRoot`].
    pub(crate) fn admit<'v>(
        &self,
        info: impl Iterator<Item = &'v [u8]>,
        hmac: impl Iterator<Item = &'v [u8]>,
        request: RequestFacts<'_>,
        make_root: impl FnOnce() -> Span,
    ) -> HeldRoot {
        let profile = match verify_token(&self.keys, info, hmac) {
            Ok(profile) => profile,
            Err(Rejection::Missing) => {
                self.stats.count_without_token();
                return self.capture(request, make_root);
            }
            Err(rejection) => {
                self.stats.count_rejection(rejection);
                self.maybe_warn();
                // A forged or broken token is a request without a token:
                // captured like any other, never profiled as signed.
                return self.capture(request, make_root);
            }
        };
        let Some(permit) = self.limiter.try_acquire_for(&profile) else {
            self.stats.count_over_limit();
            self.maybe_warn();
            return HeldRoot::unprofiled();
        };
        let span = profile.start_request(self.request_info(request), make_root);
        if span.point_ids().is_none() {
            // Disabled by a filter, or no OsProfilerLayer in the subscriber:
            // nothing is written, so nothing of the limit is spent either.
            permit.give_back();
            self.stats.count_disabled_by_filter();
            self.report_disabled();
            self.maybe_warn();
            return HeldRoot::unprofiled();
        }
        self.stats.count_profiled();
        HeldRoot::new(span, Some(permit))
    }

    /// A request without a valid token, under tail capture if it is set:
    /// its root, with no permit (the capture's own budgets bound it).
    fn capture(&self, request: RequestFacts<'_>, make_root: impl FnOnce() -> Span) -> HeldRoot {
        let Some(capture) = &self.capture else {
            return HeldRoot::unprofiled();
        };
        let Some(captured) = capture.admit() else {
            return HeldRoot::unprofiled();
        };
        let span = capture.start_admitted(captured, Some(self.request_info(request)), make_root);
        if span.point_ids().is_none() {
            // Not a point: a filter disabled the root, or no OsProfilerLayer.
            return HeldRoot::unprofiled();
        }
        HeldRoot::new(span, None)
    }

    fn request_info(&self, request: RequestFacts<'_>) -> RequestInfo {
        let info = RequestInfo::new(request.method, request.path, request.scheme);
        match request.query {
            Some(query) if self.query => info.with_query(query),
            _ => info,
        }
    }

    fn report_disabled(&self) {
        if !self.disabled_reported.swap(true, Ordering::Relaxed) {
            eprintln!(
                "tracing-osprofiler: a request with a valid profile token was served unprofiled: \
                 the subscriber's filters disable its root span (or no OsProfilerLayer is \
                 installed). Put level filters on the layers that print logs, not on the whole \
                 subscriber; ProfilingStats::tokens_disabled_by_filter counts these requests"
            );
        }
    }

    /// At most one warning per interval, with the totals, so that a flood of
    /// bad tokens cannot flood the operator's log.
    fn maybe_warn(&self) {
        if !self.stats.warn_due(self.warn_interval) {
            return;
        }
        let stats = &self.stats;
        tracing::warn!(
            target: TARGET,
            oversized = stats.tokens_oversized(),
            bad_signature = stats.tokens_bad_signature(),
            malformed = stats.tokens_malformed(),
            over_limit = stats.tokens_over_limit(),
            disabled_by_filter = stats.tokens_disabled_by_filter(),
            profiled = stats.requests_profiled(),
            "profile tokens refused since start, requests served unprofiled (next summary in {:?} at the earliest)",
            self.warn_interval,
        );
    }
}
