//! Profiling HTTP requests: a tower middleware for incoming requests and
//! signed headers for outgoing ones, on the `http` 1.x types.
//!
//! This module owns reading the token headers off an [`http::HeaderMap`]
//! (with the rules below), the [`ProfilingLayer`] / [`ProfilingService`]
//! middleware (`layer.rs`, `service.rs`), the [`ResponseFuture`] and
//! [`ResponseBody`] that carry a request's root point through tower's
//! `Future` and `http_body::Body` until its response body is finished
//! (`future.rs`, `body.rs`), the root span
//! ([`MakeRootSpan`], `make_span.rs`), the counters ([`ProfilingStats`],
//! `stats.rs`), the [`inject`] helpers for outgoing calls, and the
//! [`Destinations`] policy of which outgoing calls may carry a token
//! (`destination.rs`).
//!
//! It also owns what every server middleware shares, whatever the
//! framework: the admission of one request (`admission.rs`: the token
//! from plain header values, keys, the fair limit, tail capture, the
//! counters, the refusal summary), the default root span
//! ([`DefaultRootSpan`], `root.rs`), and the root held while the response
//! is pending and its body streams (`root.rs`: entered on every poll, the
//! status or failure recorded, ended with the body), which both
//! frameworks' response wrappers are made of. With the `actix` feature
//! alone, only these shared parts, [`ProfilingStats`] and the destination
//! policy are compiled (no tower, no `http` 1.x); `crate::actix` builds on
//! them.
//!
//! # Incoming requests
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tracing_osprofiler::http::ProfilingLayer;
//! use tracing_osprofiler::HmacKeys;
//!
//! # async fn run() -> std::io::Result<()> {
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(ProfilingLayer::new(HmacKeys::from_comma_separated("SECRET_KEY")));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! A request is profiled when it has exactly one `X-Trace-Info` and exactly
//! one `X-Trace-HMAC` header, they verify under the configured keys
//! ([`HmacKeys::verify`]), and the [`ProfileLimit`](crate::limit::ProfileLimit)
//! admits it. Then the request (the inner service's future and the response
//! body) runs inside a root span, named `wsgi` by default like osprofiler's
//! root point, and every span opened below it is a trace point. Any other
//! request is served exactly as without the middleware: same request, same
//! response, no span, no line. In particular a duplicated header is invalid
//! (osprofiler would pick one; picking either could let a forged value
//! through a proxy that appends), and a non-ASCII or non-UTF-8 value is
//! simply a token that does not verify, never an error response.
//!
//! # Outgoing requests
//!
//! [`inject::inject_current`] adds signed headers for the current span to an
//! [`http::HeaderMap`]; the `reqwest` feature does it on every call to a
//! destination its [`Destinations`] policy allows (see
//! `tracing_osprofiler::reqwest`). A signed token verifies on every service
//! that shares the key and never expires, so it must not reach a third
//! party: [`Destinations::allows_uri`] says whether a call may carry one
//! (by default only calls to internal addresses and names, see
//! [`Destinations::internal`]).

#[cfg(feature = "tower")]
use http::header::{HeaderMap, HeaderName, HeaderValue};

#[cfg(feature = "tower")]
use crate::token::{HmacKeys, Profile, Rejection};

pub(crate) mod admission;
#[cfg(feature = "tower")]
mod body;
mod destination;
#[cfg(feature = "tower")]
mod future;
#[cfg(feature = "tower")]
pub mod inject;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod make_span;
pub(crate) mod root;
#[cfg(feature = "tower")]
mod service;
mod stats;

#[cfg(feature = "tower")]
pub use body::ResponseBody;
pub use destination::{Destination, Destinations, InvalidHostError};
#[cfg(feature = "tower")]
pub use future::ResponseFuture;
#[cfg(feature = "tower")]
pub use layer::ProfilingLayer;
#[cfg(feature = "tower")]
pub use make_span::MakeRootSpan;
pub use root::{DefaultRootSpan, DEFAULT_ROOT_NAME};
#[cfg(feature = "tower")]
pub use service::ProfilingService;
pub use stats::ProfilingStats;

#[cfg(feature = "tower")]
/// The `X-Trace-Info` header name (HTTP names are case-insensitive; `http`
/// stores them lower-case).
pub const TRACE_INFO_HEADER: HeaderName = HeaderName::from_static("x-trace-info");
#[cfg(feature = "tower")]
/// The `X-Trace-HMAC` header name.
pub const TRACE_HMAC_HEADER: HeaderName = HeaderName::from_static("x-trace-hmac");

/// Verifies the token in `headers` with `keys`.
///
/// Both headers absent is [`Rejection::Missing`] (the normal, unprofiled
/// case); either header present more than once is [`Rejection::Malformed`];
/// everything else is as [`HmacKeys::verify`] says.
///
/// # Errors
///
/// The [`Rejection`] that sends the request on unprofiled.
///
/// ```
/// use http::HeaderMap;
/// use tracing_osprofiler::http::{profile_from_headers, TRACE_INFO_HEADER, TRACE_HMAC_HEADER};
/// use tracing_osprofiler::{HmacKeys, Rejection};
///
/// let keys = HmacKeys::from_comma_separated("SECRET_KEY");
/// let mut headers = HeaderMap::new();
/// assert_eq!(profile_from_headers(&keys, &headers).unwrap_err(), Rejection::Missing);
/// headers.insert(TRACE_INFO_HEADER, "eyJiYXNlX2lkIjogIjZmOWUzYzFhLTJiNGQtNGU4Zi05YTBiLTFjMmQzZTRmNWE2YiJ9".parse()?);
/// headers.insert(TRACE_HMAC_HEADER, "d29648d0dacbf236f51755e51cc054eb5350b57a".parse()?);
/// assert!(profile_from_headers(&keys, &headers).is_ok());
/// headers.append(TRACE_HMAC_HEADER, "d29648d0dacbf236f51755e51cc054eb5350b57a".parse()?);
/// assert_eq!(profile_from_headers(&keys, &headers).unwrap_err(), Rejection::Malformed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "tower")]
pub fn profile_from_headers(keys: &HmacKeys, headers: &HeaderMap) -> Result<Profile, Rejection> {
    admission::verify_token(
        keys,
        header_values(headers, TRACE_INFO_HEADER),
        header_values(headers, TRACE_HMAC_HEADER),
    )
}

/// The values of the header `name`, in the order the request has them, for
/// [`admission::verify_token`].
#[cfg(feature = "tower")]
#[inline]
fn header_values(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &[u8]> {
    headers.get_all(name).iter().map(HeaderValue::as_bytes)
}
