//! The [`ProfilingLayer`] (a tower `Layer`) and its configuration; the
//! admission decision for one request is the framework-neutral
//! [`Admission`]'s (`admission.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::admission::Admission;
use super::service::ProfilingService;
use super::stats::ProfilingStats;
use super::DefaultRootSpan;
use crate::capture::Capture;
use crate::limit::ProfileLimit;
use crate::token::HmacKeys;

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
/// | tail capture of requests without a valid token | off | [`with_capture`](Self::with_capture) |
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
    shared: Arc<Admission>,
    make_span: M,
}

impl<M> fmt::Debug for ProfilingLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilingLayer")
            .field("admission", &self.shared)
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
        ProfilingLayer {
            shared: Arc::new(Admission::new(keys)),
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
    fn update(mut self, change: impl FnOnce(&mut Admission)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// Builds the root span with `make_span` instead of the default `wsgi`
    /// span (see [`MakeRootSpan`](super::MakeRootSpan)).
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
        self.update(|shared| shared.set_query(record))
    }

    /// Limits how many requests are profiled (default:
    /// [`ProfileLimit::default`], 64 at once and 100 per second).
    #[must_use]
    pub fn with_limit(self, limit: ProfileLimit) -> Self {
        self.update(|shared| shared.set_limit(limit))
    }

    /// The shortest time between two summary warnings about refused tokens
    /// (default: one minute). Counts are always in [`stats`](Self::stats).
    #[must_use]
    pub fn with_warn_interval(self, interval: Duration) -> Self {
        self.update(|shared| shared.set_warn_interval(interval))
    }

    /// Records the requests without a valid token (none, malformed,
    /// forged) in memory and keeps those that `capture`'s policy asks for,
    /// slow or failed (default: none; see [`CapturePolicy`](crate::CapturePolicy)).
    /// Requests with a valid token are profiled exactly as without it.
    /// Keep a clone of `capture` to read its [`stats`](Capture::stats).
    #[must_use]
    pub fn with_capture(self, capture: Capture) -> Self {
        self.update(|shared| shared.set_capture(Some(capture)))
    }

    /// A handle on the counters, shared by every service this layer makes.
    #[must_use]
    pub fn stats(&self) -> ProfilingStats {
        self.shared.stats().clone()
    }
}

impl<S, M: Clone> tower_layer::Layer<S> for ProfilingLayer<M> {
    type Service = ProfilingService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        ProfilingService::new(inner, Arc::clone(&self.shared), self.make_span.clone())
    }
}
