//! Profiling outgoing [`reqwest`] calls.
//!
//! This module owns the client point of an outgoing call:
//! [`ProfilingMiddleware`], a [`reqwest_middleware::Middleware`] that, inside
//! a profiled request, opens a child point named `http` around the call (the
//! osprofiler client point; its `-start` and `-stop` lines bracket the call
//! as osprofiler's `http-start`/`http-stop` do), and sends headers signed for
//! that point, so the callee's points hang under it, if the call's
//! destination is one its [`Destinations`] policy allows (by default internal
//! addresses and names only: a token must not reach a third party). The
//! point is a [client point](crate::point::client_point) with the call's
//! method, host and port, and records the response status (a status of 500
//! or more, or an error, marks it failed). Outside a profiled request it
//! only forwards the call.
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use tracing_osprofiler::reqwest::ProfilingMiddleware;
//!
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(ProfilingMiddleware::new())
//!     .build();
//! # drop(client);
//! ```
//!
//! Without reqwest-middleware, add the headers to a plain `reqwest::Request`
//! with [`http::inject::inject_current`](crate::http::inject::inject_current)
//! on `request.headers_mut()`.

use std::future::Future;
use std::pin::Pin;

use reqwest_middleware::reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};
use tracing::{Instrument as _, Span};

use crate::http::inject::{insert_trace_headers, insert_traceparent};
use crate::http::Destinations;
use crate::layer::{record_outcome, ProfileExt};
use crate::point::{client_point, ClientCall};

/// A [`Middleware`] that signs every call made inside a profiled request and
/// opens an `http` client point around it. See the [module docs](self).
///
/// | setting | default | setter |
/// |---|---|---|
/// | destinations that get signed headers | [`Destinations::internal`]: loopback and private IPs, `localhost`, names without a dot, `*.internal`, `*.local`, `*.home.arpa` | [`with_destinations`](Self::with_destinations) |
/// | method and URL path on the `http` point | off (paths can name resources) | [`with_method_and_path`](Self::with_method_and_path) |
/// | W3C `traceparent` header besides the token (to the same destinations) | off | [`with_traceparent`](Self::with_traceparent) |
/// | query string, headers | never recorded | - |
///
/// A call to another destination is still made and still gets its `http`
/// point, without token headers.
#[derive(Debug, Clone, Default)]
pub struct ProfilingMiddleware {
    method_and_path: bool,
    traceparent: bool,
    destinations: Destinations,
}

impl ProfilingMiddleware {
    /// A middleware with the defaults of the table above.
    #[must_use]
    pub const fn new() -> Self {
        ProfilingMiddleware {
            method_and_path: false,
            traceparent: false,
            destinations: Destinations::internal(),
        }
    }

    /// Which destinations get signed headers (default:
    /// [`Destinations::internal`]).
    ///
    /// ```
    /// use tracing_osprofiler::http::Destinations;
    /// use tracing_osprofiler::reqwest::ProfilingMiddleware;
    ///
    /// // Services that call each other by public names, as well as internal ones.
    /// let middleware = ProfilingMiddleware::new().with_destinations(
    ///     Destinations::internal().or(Destinations::hosts(["*.cloud.example.com"])?),
    /// );
    /// # drop(middleware);
    /// # Ok::<(), tracing_osprofiler::http::InvalidHostError>(())
    /// ```
    #[must_use]
    pub fn with_destinations(mut self, destinations: Destinations) -> Self {
        self.destinations = destinations;
        self
    }

    /// Records the method and URL path (never the query) as the `http`
    /// span's `http.method` and `http.path` fields (default: off).
    #[must_use]
    pub const fn with_method_and_path(mut self, record: bool) -> Self {
        self.method_and_path = record;
        self
    }

    /// Also sends a W3C `traceparent` naming the calling point, as the OTLP
    /// sink names its span (see
    /// [`http::inject::traceparent`](crate::http::inject::traceparent)),
    /// to the destinations that get the token (default: off). A callee
    /// traced with OpenTelemetry alone then joins the same trace.
    #[must_use]
    pub const fn with_traceparent(mut self, send: bool) -> Self {
        self.traceparent = send;
        self
    }

    fn client_span(&self, request: &Request) -> Option<Span> {
        Span::current().point_ids()?;
        let url = request.url();
        let call = ClientCall::new(
            request.method().as_str(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default(),
        );
        let span = client_point(call, || {
            if self.method_and_path {
                tracing::info_span!(
                    "http",
                    http.method = request.method().as_str(),
                    http.path = url.path(),
                    http.status_code = tracing::field::Empty,
                )
            } else {
                tracing::info_span!(
                    "http",
                    http.method = tracing::field::Empty,
                    http.path = tracing::field::Empty,
                    http.status_code = tracing::field::Empty,
                )
            }
        });
        Some(span)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// Written out as `#[async_trait]` would expand it, to avoid a dependency on
// the macro crate.
impl Middleware for ProfilingMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        mut request: Request,
        extensions: &'life1 mut http::Extensions,
        next: Next<'life2>,
    ) -> BoxFuture<'async_trait, Result<Response>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let Some(span) = self.client_span(&request) else {
            return Box::pin(next.run(request, extensions));
        };
        // A token verifies fleet-wide and never expires: a destination the
        // policy does not allow gets the call, not the token.
        if self.destinations.allows_url(request.url()) {
            // The `http` span may have been filtered out: sign for the
            // current point instead, so the callee still joins.
            let caller = if span.point_ids().is_some() {
                span.clone()
            } else {
                Span::current()
            };
            if let Some(trace) = caller.trace_headers() {
                insert_trace_headers(request.headers_mut(), &trace);
            }
            if self.traceparent {
                insert_traceparent(request.headers_mut(), &caller);
            }
        }
        let outcome = span.clone();
        Box::pin(
            async move {
                let result = next.run(request, extensions).await;
                match &result {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        outcome.record("http.status_code", status);
                        record_outcome(&outcome, Some(status), None);
                    }
                    Err(error) => record_outcome(&outcome, None, Some(error.to_string())),
                }
                result
            }
            .instrument(span),
        )
    }
}
