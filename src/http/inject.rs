//! Signed headers for outgoing calls, on [`http::HeaderMap`] and
//! [`http::Request`].
//!
//! The headers carry the request's `base_id`, `parent_id` = the `trace_id` of
//! the span making the call, and are signed with the key and algorithm that
//! verified the incoming token (see [`ProfileExt::trace_headers`]). Existing
//! token headers are replaced, never appended to, since a receiver treats a
//! duplicated header as invalid. Outside a profiled request nothing changes.
//!
//! ```
//! use tracing_osprofiler::http::inject;
//!
//! let mut request = http::Request::get("http://127.0.0.1:9/").body(())?;
//! // Not inside a profiled request: nothing is added.
//! assert!(!inject::inject_current_request(&mut request));
//! assert!(request.headers().is_empty());
//! # Ok::<(), http::Error>(())
//! ```
//!
//! # Redirects, and clients on tower
//!
//! Headers added to a request go wherever the client sends it, and a
//! client that follows redirects (tower-http's `FollowRedirect`, hyper
//! clients wrapped in one) copies them to every hop: an internal service
//! answering `302 Location: https://partner.example/` would hand the partner
//! a token that verifies fleet-wide, forever. The functions below sign one
//! request as it is; use them only with a client that does not follow
//! redirects, after checking [`Destinations::allows_uri`].
//!
//! A tower client signs with [`SignRequestsLayer`] instead, placed **inside**
//! (below) any redirect-following layer: every hop then passes through it,
//! and each one gets the token only if the policy allows its destination,
//! and loses token headers copied from an earlier hop otherwise.
//!
//! ```
//! use tower::ServiceBuilder;
//! use tracing_osprofiler::http::inject::SignRequestsLayer;
//! # #[derive(Clone)] struct Client;
//! # impl tower::Service<http::Request<String>> for Client {
//! #     type Response = http::Response<String>;
//! #     type Error = std::convert::Infallible;
//! #     type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, _: http::Request<String>) -> Self::Future { std::future::ready(Ok(http::Response::new(String::new()))) }
//! # }
//! # let client = Client;
//!
//! let client = ServiceBuilder::new()
//!     // .layer(tower_http::follow_redirect::FollowRedirectLayer::new())  // outside
//!     .layer(SignRequestsLayer::new()) // inside: sees every hop
//!     .service(client);
//! # drop(client);
//! ```
//!
//! The order the other way round (signing outside the redirect follower) is
//! what the functions above amount to: the follower copies the first hop's
//! headers to every later one.
//!
//! # W3C `traceparent` (opt-in)
//!
//! A call may also carry [`traceparent`]: `00-{base_id}-{span id}-01`, the
//! ids the OTLP sink (like osprofiler's `otlp` driver) gives the trace and
//! the calling point's span, so that a callee instrumented with
//! OpenTelemetry alone joins the same trace. It is only ever sent, never
//! read: a request carrying a `traceparent` and no valid token is not
//! profiled.

use std::task::{Context, Poll};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Request;
use tracing::Span;

use super::{Destinations, TRACE_HMAC_HEADER, TRACE_INFO_HEADER};
use crate::layer::ProfileExt;
use crate::token::TraceHeaders;

/// Sets the two token headers in `headers` to `trace`, replacing any present.
/// Returns `false` (and changes nothing) only if a value is not a valid
/// header value, which a [`TraceHeaders`] made by this crate never is.
pub fn insert_trace_headers(headers: &mut HeaderMap, trace: &TraceHeaders) -> bool {
    let (Ok(info), Ok(hmac)) = (
        HeaderValue::from_str(trace.trace_info()),
        HeaderValue::from_str(trace.trace_hmac()),
    ) else {
        return false;
    };
    headers.insert(TRACE_INFO_HEADER, info);
    headers.insert(TRACE_HMAC_HEADER, hmac);
    true
}

/// Adds signed headers for a call made from `span`. Returns whether headers
/// were added (`false` unless `span` is a trace point).
pub fn inject_span(span: &Span, headers: &mut HeaderMap) -> bool {
    match span.trace_headers() {
        Some(trace) => insert_trace_headers(headers, &trace),
        None => false,
    }
}

/// Adds signed headers for a call made from the current span.
pub fn inject_current(headers: &mut HeaderMap) -> bool {
    inject_span(&Span::current(), headers)
}

/// Adds signed headers for a call made from the current span to `request`.
pub fn inject_current_request<B>(request: &mut Request<B>) -> bool {
    inject_current(request.headers_mut())
}

/// The W3C trace context header, `traceparent`.
pub const TRACEPARENT_HEADER: HeaderName = HeaderName::from_static("traceparent");

/// The W3C `traceparent` value for a call made from `span`:
/// `00-{base_id as 32 hex digits}-{the last 16 hex digits of the span's
/// trace_id}-01` (version 0, sampled). `None` unless `span` is a trace
/// point.
///
/// ```
/// use tracing_osprofiler::http::inject;
///
/// // Outside a profiled request there is no trace to name.
/// assert!(inject::traceparent(&tracing::Span::current()).is_none());
/// ```
#[must_use]
pub fn traceparent(span: &Span) -> Option<HeaderValue> {
    let ids = span.point_ids()?;
    let trace_id = ids.base_id.as_uuid().as_u128();
    let span_id = ids.trace_id.low_u64();
    // W3C: an all-zero trace or span id is invalid.
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    HeaderValue::from_str(&format!("00-{trace_id:032x}-{span_id:016x}-01")).ok()
}

/// Sets `traceparent` in `headers` for a call made from `span`, replacing
/// one present. Returns whether it was set (`false` unless `span` is a
/// trace point).
pub fn insert_traceparent(headers: &mut HeaderMap, span: &Span) -> bool {
    match traceparent(span) {
        Some(value) => {
            headers.insert(TRACEPARENT_HEADER, value);
            true
        }
        None => false,
    }
}

/// A tower layer for clients on `http` types: signs each request made
/// inside a profiled request for the current span, if its
/// [`Destinations`] policy allows the request's URI; removes the token
/// headers (and `traceparent`) from a request to any other destination.
/// Place it inside (below) a redirect-following layer, so that every hop is
/// checked (see [the module docs](self#redirects-and-clients-on-tower)).
///
/// | setting | default | setter |
/// |---|---|---|
/// | destinations that get signed headers | [`Destinations::internal`] | [`with_destinations`](Self::with_destinations) |
/// | W3C `traceparent` besides the token (to the same destinations) | off | [`with_traceparent`](Self::with_traceparent) |
///
/// It opens no client point: that is the reqwest middleware's, or a span of
/// your own around the call. Each hop is signed for the span current when
/// the service is called: make the call inside the profiled request (in a
/// handler, or in a future instrumented with the request's span).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SignRequestsLayer {
    destinations: Destinations,
    traceparent: bool,
}

impl SignRequestsLayer {
    /// A layer with the defaults of the table above.
    pub const fn new() -> Self {
        SignRequestsLayer {
            destinations: Destinations::internal(),
            traceparent: false,
        }
    }

    /// Which destinations get signed headers (default:
    /// [`Destinations::internal`]).
    pub fn with_destinations(mut self, destinations: Destinations) -> Self {
        self.destinations = destinations;
        self
    }

    /// Also sends [`traceparent`] to the destinations that get the token
    /// (default: off).
    pub const fn with_traceparent(mut self, send: bool) -> Self {
        self.traceparent = send;
        self
    }
}

impl<S> tower_layer::Layer<S> for SignRequestsLayer {
    type Service = SignRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignRequests {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`SignRequestsLayer`].
#[derive(Debug, Clone)]
pub struct SignRequests<S> {
    inner: S,
    layer: SignRequestsLayer,
}

impl<S, B> tower_service::Service<Request<B>> for SignRequests<S>
where
    S: tower_service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if self.layer.destinations.allows_uri(request.uri()) {
            let span = Span::current();
            inject_span(&span, request.headers_mut());
            if self.layer.traceparent {
                insert_traceparent(request.headers_mut(), &span);
            }
        } else {
            // Whatever an earlier hop or the caller put there does not go
            // to a destination the policy refuses.
            let headers = request.headers_mut();
            headers.remove(TRACE_INFO_HEADER);
            headers.remove(TRACE_HMAC_HEADER);
            headers.remove(TRACEPARENT_HEADER);
        }
        self.inner.call(request)
    }
}
