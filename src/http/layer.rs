//! The [`ProfilingLayer`] (a tower `Layer`), its configuration, and the
//! admission decision for one request.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use tracing::Span;

use super::make_span::{DefaultRootSpan, MakeRootSpan};
use super::service::ProfilingService;
use super::stats::ProfilingStats;
use crate::layer::ProfileExt as _;
use crate::limit::{ProfileLimit, ProfileLimiter, ProfilePermit};
use crate::point::RequestInfo;
use crate::token::{HmacKeys, Rejection};

/// The target of the summary warnings.
const TARGET: &str = "tracing_osprofiler::http";

/// A tower [`Layer`](tower_layer::Layer) that serves requests carrying a
/// valid profile token inside a profiled root span (see the
/// [module docs](super)).
///
/// # Configuration
///
/// | setting | default | setter |
/// |---|---|---|
/// | accepted keys and algorithms | given to [`new`](Self::new) | - |
/// | root span | `wsgi` ([`DefaultRootSpan`]) | [`with_make_span`](Self::with_make_span) |
/// | method and path as root span fields | off | [`with_method_and_path`](Self::with_method_and_path) |
/// | query string given to sinks that record the request (OTLP, Redis) | off | [`with_query`](Self::with_query) |
/// | trace headers | never recorded | - |
/// | profiled requests at once | 64 | [`with_limit`](Self::with_limit) |
/// | profiled requests per second | 100, burst 100 | [`with_limit`](Self::with_limit) |
/// | share of those one request (`base_id`) may take | a quarter: 16 at once, 25 a second | [`with_limit`](Self::with_limit) ([`ProfileLimit::with_request_share`]) |
/// | share one key may take | no share (all) | [`with_limit`](Self::with_limit) ([`ProfileLimit::with_key_share`]) |
/// | summary warning of refused tokens | at most once a minute | [`with_warn_interval`](Self::with_warn_interval) |
///
/// The request's method, path and scheme always reach the sinks that
/// record them the way osprofiler does (OTLP names the root
/// `WSGI_{method}_{path}`, Redis stores them with the root's start); the
/// log file gets them only as span fields, when asked.
///
/// Clones share their limiter and counters, so a layer applied to every
/// route of a router still has one limit.
///
/// # A filter that disables the root
///
/// If the subscriber's filters disable the root span (a global
/// `EnvFilter` at `WARN`, say), a verified token cannot be profiled: the
/// request is served unprofiled, counted in
/// [`ProfilingStats::tokens_disabled_by_filter`], and the first such
/// request is reported on standard error (a `tracing` warning could be
/// filtered out by the same filter). Put level filters on the layers that
/// print logs (`fmt::layer().with_filter(...)`), not on the whole
/// subscriber.
#[derive(Clone)]
pub struct ProfilingLayer<M = DefaultRootSpan> {
    shared: Arc<Shared>,
    make_span: M,
}

#[derive(Clone)]
pub(crate) struct Shared {
    keys: HmacKeys,
    limiter: ProfileLimiter,
    stats: ProfilingStats,
    warn_interval: Duration,
    query: bool,
    /// The first request whose root a filter disabled was reported.
    disabled_reported: Arc<AtomicBool>,
}

impl<M> fmt::Debug for ProfilingLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilingLayer")
            .field("keys", &self.shared.keys)
            .field("limiter", &self.shared.limiter)
            .field("warn_interval", &self.shared.warn_interval)
            .field("query", &self.shared.query)
            .finish_non_exhaustive()
    }
}

impl ProfilingLayer {
    /// A layer that accepts tokens verified by `keys`, with the defaults of
    /// the table above.
    ///
    /// With no key, no token can verify and nothing is ever profiled: this
    /// is reported on standard error at once.
    #[must_use]
    pub fn new(keys: HmacKeys) -> Self {
        if keys.is_empty() {
            eprintln!(
                "tracing-osprofiler: the profiling middleware has no HMAC key, so no request \
                 can be profiled; give it the keys your clients sign with"
            );
        }
        ProfilingLayer {
            shared: Arc::new(Shared {
                keys,
                limiter: ProfileLimit::default().build(),
                stats: ProfilingStats::new(),
                warn_interval: Duration::from_secs(60),
                query: false,
                disabled_reported: Arc::new(AtomicBool::new(false)),
            }),
            make_span: DefaultRootSpan::new(),
        }
    }

    /// Records the request method and path (never the query string) as the
    /// default root span's `http.method` and `http.path` fields (default:
    /// off). See [`DefaultRootSpan::with_method_and_path`].
    #[must_use]
    pub fn with_method_and_path(mut self, record: bool) -> Self {
        self.make_span = self.make_span.with_method_and_path(record);
        self
    }
}

impl<M> ProfilingLayer<M> {
    fn update(mut self, change: impl FnOnce(&mut Shared)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// Builds the root span with `make_span` instead of the default `wsgi`
    /// span (see [`MakeRootSpan`]).
    #[must_use]
    pub fn with_make_span<M2>(self, make_span: M2) -> ProfilingLayer<M2> {
        ProfilingLayer {
            shared: self.shared,
            make_span,
        }
    }

    /// Gives the query string to the sinks that record the request (OTLP's
    /// `http.query`, Redis' `info.request.query`), as osprofiler does
    /// (default: off; query strings often carry secrets). The log file
    /// never gets it.
    #[must_use]
    pub fn with_query(self, record: bool) -> Self {
        self.update(|shared| shared.query = record)
    }

    /// Limits how many requests are profiled (default:
    /// [`ProfileLimit::default`], 64 at once and 100 per second).
    #[must_use]
    pub fn with_limit(self, limit: ProfileLimit) -> Self {
        self.update(|shared| shared.limiter = limit.build())
    }

    /// The shortest time between two summary warnings about refused tokens
    /// (default: one minute). Counts are always in [`stats`](Self::stats).
    #[must_use]
    pub fn with_warn_interval(self, interval: Duration) -> Self {
        self.update(|shared| shared.warn_interval = interval)
    }

    /// A handle on the counters, shared by every service this layer makes.
    #[must_use]
    pub fn stats(&self) -> ProfilingStats {
        self.shared.stats.clone()
    }
}

impl<S, M: Clone> tower_layer::Layer<S> for ProfilingLayer<M> {
    type Service = ProfilingService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        ProfilingService::new(inner, Arc::clone(&self.shared), self.make_span.clone())
    }
}

impl Shared {
    /// Decides whether `request` is profiled: if so, its root span (not yet
    /// entered) and the permit to hold until its response is finished.
    pub(crate) fn admit<B, M>(
        &self,
        request: &Request<B>,
        make_span: &M,
    ) -> Option<(Span, ProfilePermit)>
    where
        M: MakeRootSpan<B>,
    {
        let profile = match super::profile_from_headers(&self.keys, request.headers()) {
            Ok(profile) => profile,
            Err(Rejection::Missing) => {
                self.stats.count_without_token();
                return None;
            }
            Err(rejection) => {
                self.stats.count_rejection(rejection);
                self.maybe_warn();
                return None;
            }
        };
        let Some(permit) = self.limiter.try_acquire_for(&profile) else {
            self.stats.count_over_limit();
            self.maybe_warn();
            return None;
        };
        let span =
            profile.start_request(self.request_info(request), || make_span.make_span(request));
        if span.point_ids().is_none() {
            // Disabled by a filter, or no OsProfilerLayer in the subscriber:
            // nothing is written, so nothing of the limit is spent either.
            permit.give_back();
            self.stats.count_disabled_by_filter();
            self.report_disabled();
            self.maybe_warn();
            return None;
        }
        self.stats.count_profiled();
        Some((span, permit))
    }

    fn request_info<B>(&self, request: &Request<B>) -> RequestInfo {
        let uri = request.uri();
        let info = RequestInfo::new(
            request.method().as_str(),
            uri.path(),
            uri.scheme_str().unwrap_or("http"),
        );
        match uri.query() {
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
