//! [`ProfilingMiddleware`] (an actix-web `Transform`), its configuration,
//! and the [`ProfilingService`] it wraps around each inner service.

use std::fmt;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::HeaderName;
use tracing::Span;

use super::{ResponseBody, ResponseFuture};
use crate::capture::Capture;
use crate::http::admission::{Admission, RequestFacts};
use crate::http::{DefaultRootSpan, ProfilingStats};
use crate::limit::ProfileLimit;
use crate::token::HmacKeys;

/// `X-Trace-Info` as actix-web's header name (stored lower-case). Statics,
/// borrowed by each look-up, rather than a name built and dropped per
/// request.
static TRACE_INFO: HeaderName = HeaderName::from_static("x-trace-info");
/// `X-Trace-HMAC` as actix-web's header name.
static TRACE_HMAC: HeaderName = HeaderName::from_static("x-trace-hmac");

/// Builds the root span of a profiled actix-web request.
///
/// Implemented by [`DefaultRootSpan`] (`wsgi`, as the tower middleware's)
/// and by any `Fn(&ServiceRequest) -> tracing::Span`:
///
/// ```
/// use actix_web::dev::ServiceRequest;
/// use tracing_osprofiler::actix::ProfilingMiddleware;
/// use tracing_osprofiler::HmacKeys;
///
/// let middleware = ProfilingMiddleware::new(HmacKeys::from_comma_separated("SECRET_KEY"))
///     .with_make_span(|request: &ServiceRequest| {
///         tracing::info_span!(
///             "api-request",
///             http.method = %request.method(),
///             http.status_code = tracing::field::Empty,
///         )
///     });
/// # drop(middleware);
/// ```
///
/// Declare `http.status_code = tracing::field::Empty` on the span to have
/// the response status recorded there as a field too (the point's outcome
/// is recorded either way).
pub trait MakeRootSpan {
    /// The root span of `request`.
    fn make_span(&self, request: &ServiceRequest) -> Span;
}

impl<F> MakeRootSpan for F
where
    F: Fn(&ServiceRequest) -> Span,
{
    fn make_span(&self, request: &ServiceRequest) -> Span {
        self(request)
    }
}

impl MakeRootSpan for DefaultRootSpan {
    fn make_span(&self, request: &ServiceRequest) -> Span {
        self.span(request.method().as_str(), request.path())
    }
}

/// An actix-web middleware that serves requests carrying a valid profile
/// token inside a profiled root span (see the [module docs](super)). Give
/// it to `App::wrap` (or `Scope::wrap`, `Resource::wrap`).
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
/// These are the tower middleware's settings and defaults, decided by the
/// same code. The request's method, path and scheme always reach the sinks
/// that record them the way osprofiler does; the log file gets them only
/// as span fields, when asked.
///
/// Clones share their limiter and counters: build the middleware once,
/// outside `HttpServer::new`, and clone it into each worker's `App`.
///
/// # The response
///
/// The root point ends when the response body is finished or dropped (a
/// client that went away), so it covers a streamed body. A handler's error
/// (`Err(actix_web::Error)`) ends the root with the error's status; actix
/// then renders the error response as usual. A status of 500 or more marks
/// the request failed.
///
/// # A filter that disables the root
///
/// As for the tower middleware: a verified token whose root span the
/// subscriber's filters disable is served unprofiled, counted in
/// [`ProfilingStats::tokens_disabled_by_filter`], and the first one is
/// reported on standard error.
#[derive(Clone)]
pub struct ProfilingMiddleware<M = DefaultRootSpan> {
    admission: Arc<Admission>,
    make_span: M,
}

impl<M> fmt::Debug for ProfilingMiddleware<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilingMiddleware")
            .field("admission", &self.admission)
            .finish_non_exhaustive()
    }
}

impl ProfilingMiddleware {
    /// A middleware that accepts tokens verified by `keys`, with the
    /// defaults of the table above.
    ///
    /// With no key, no token can verify and nothing is ever profiled: this
    /// is reported on standard error at once.
    #[must_use]
    pub fn new(keys: HmacKeys) -> Self {
        ProfilingMiddleware {
            admission: Arc::new(Admission::new(keys)),
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

impl<M> ProfilingMiddleware<M> {
    fn update(mut self, change: impl FnOnce(&mut Admission)) -> Self {
        change(Arc::make_mut(&mut self.admission));
        self
    }

    /// Builds the root span with `make_span` instead of the default `wsgi`
    /// span (see [`MakeRootSpan`]).
    #[must_use]
    pub fn with_make_span<M2: MakeRootSpan>(self, make_span: M2) -> ProfilingMiddleware<M2> {
        ProfilingMiddleware {
            admission: self.admission,
            make_span,
        }
    }

    /// Gives the query string to the sinks that record the request (OTLP's
    /// `http.query`, Redis' `info.request.query`), as osprofiler does
    /// (default: off; query strings often carry secrets). The log file
    /// never gets it.
    #[must_use]
    pub fn with_query(self, record: bool) -> Self {
        self.update(|admission| admission.set_query(record))
    }

    /// Limits how many requests are profiled (default:
    /// [`ProfileLimit::default`], 64 at once and 100 per second).
    #[must_use]
    pub fn with_limit(self, limit: ProfileLimit) -> Self {
        self.update(|admission| admission.set_limit(limit))
    }

    /// The shortest time between two summary warnings about refused tokens
    /// (default: one minute). Counts are always in [`stats`](Self::stats).
    #[must_use]
    pub fn with_warn_interval(self, interval: Duration) -> Self {
        self.update(|admission| admission.set_warn_interval(interval))
    }

    /// Records the requests without a valid token (none, malformed,
    /// forged) in memory and keeps those that `capture`'s policy asks for,
    /// slow or failed (default: none; see [`CapturePolicy`](crate::CapturePolicy)),
    /// as the tower middleware does. Requests with a valid token are
    /// profiled exactly as without it. Keep a clone of `capture` to read
    /// its [`stats`](Capture::stats).
    #[must_use]
    pub fn with_capture(self, capture: Capture) -> Self {
        self.update(|admission| admission.set_capture(Some(capture)))
    }

    /// A handle on the counters, shared by every clone and every service
    /// this middleware wraps.
    #[must_use]
    pub fn stats(&self) -> ProfilingStats {
        self.admission.stats().clone()
    }
}

impl<S, B, M> Transform<S, ServiceRequest> for ProfilingMiddleware<M>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
    M: MakeRootSpan + Clone,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = actix_web::Error;
    type Transform = ProfilingService<S, M>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ProfilingService {
            inner: service,
            admission: Arc::clone(&self.admission),
            make_span: self.make_span.clone(),
        }))
    }
}

/// Serves requests with a valid profile token inside a profiled root span
/// and all others untouched. Made by [`ProfilingMiddleware`].
pub struct ProfilingService<S, M = DefaultRootSpan> {
    inner: S,
    admission: Arc<Admission>,
    make_span: M,
}

impl<S, M> fmt::Debug for ProfilingService<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilingService").finish_non_exhaustive()
    }
}

impl<S, B, M> Service<ServiceRequest> for ProfilingService<S, M>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
    M: MakeRootSpan,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = actix_web::Error;
    type Future = ResponseFuture<S::Future>;

    actix_web::dev::forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let headers = request.headers();
        let query = request.query_string();
        let facts = RequestFacts {
            method: request.method().as_str(),
            path: request.path(),
            scheme: request.uri().scheme_str().unwrap_or("http"),
            query: (!query.is_empty()).then_some(query),
        };
        let root = self.admission.admit(
            headers.get_all(&TRACE_INFO).map(|v| v.as_bytes()),
            headers.get_all(&TRACE_HMAC).map(|v| v.as_bytes()),
            facts,
            || self.make_span.make_span(&request),
        );
        ResponseFuture::start(root, request, |request| self.inner.call(request))
    }
}
