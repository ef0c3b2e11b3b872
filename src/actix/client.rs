//! [`AwcProfiling`]: the awc client middleware that opens an `http` client
//! point around each call made inside a profiled request and signs the
//! call for it, under a [`Destinations`] policy.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_http::{RequestHead, RequestHeadType};
use actix_web::dev::Service;
use awc::error::SendRequestError;
use awc::{ConnectRequest, ConnectResponse};
use pin_project_lite::pin_project;
use tracing::Span;

use crate::http::root::{record_failure, record_status};
use crate::http::{Destination, Destinations};
use crate::layer::ProfileExt as _;
use crate::point::{client_point, ClientCall};
use crate::token::TraceHeaders;

const TRACE_INFO: HeaderName = HeaderName::from_static("x-trace-info");
const TRACE_HMAC: HeaderName = HeaderName::from_static("x-trace-hmac");

/// An awc middleware (`awc::ClientBuilder::wrap`) that, inside a profiled
/// request, opens an `http` client point around each call (the osprofiler
/// client point, with the call's method, host and port; it records the
/// response status, and a status of 500 or more or an error marks it
/// failed) and sends token headers signed for that point if the call's
/// destination is one its [`Destinations`] policy allows. Outside a
/// profiled request it only forwards the call.
///
/// | setting | default | setter |
/// |---|---|---|
/// | destinations that get signed headers | [`Destinations::internal`]: loopback and private IPs, `localhost`, names without a dot, `*.internal`, `*.local`, `*.home.arpa` | [`with_destinations`](Self::with_destinations) |
/// | method and URL path on the `http` point | off (paths can name resources) | [`with_method_and_path`](Self::with_method_and_path) |
/// | query string, headers | never recorded | - |
///
/// A call to another destination is still made and still gets its `http`
/// point, without token headers. awc follows redirects in a middleware it
/// puts outside every middleware given to `wrap`, so each hop of a
/// redirected call goes through this one again and is checked on its own:
/// a hop to a destination the policy does not allow carries no token.
///
/// ```
/// use tracing_osprofiler::actix::AwcProfiling;
/// use tracing_osprofiler::http::Destinations;
///
/// let client = awc::Client::builder()
///     .wrap(AwcProfiling::new().with_destinations(
///         Destinations::internal().or(Destinations::hosts(["*.cloud.example.com"])?),
///     ))
///     .finish();
/// # drop(client);
/// # Ok::<(), tracing_osprofiler::http::InvalidHostError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AwcProfiling {
    destinations: Destinations,
    method_and_path: bool,
}

impl AwcProfiling {
    /// A middleware with the defaults of the table above.
    #[must_use]
    pub const fn new() -> Self {
        AwcProfiling {
            destinations: Destinations::internal(),
            method_and_path: false,
        }
    }

    /// Which destinations get signed headers (default:
    /// [`Destinations::internal`]).
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
}

impl<S> awc::middleware::Transform<S, ConnectRequest> for AwcProfiling
where
    S: Service<ConnectRequest, Response = ConnectResponse, Error = SendRequestError>,
{
    type Transform = AwcProfilingService<S>;

    fn new_transform(self, service: S) -> Self::Transform {
        AwcProfilingService {
            inner: service,
            config: self,
        }
    }
}

/// The service [`AwcProfiling`] puts around awc's connector.
pub struct AwcProfilingService<S> {
    inner: S,
    config: AwcProfiling,
}

impl<S> fmt::Debug for AwcProfilingService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwcProfilingService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S> AwcProfilingService<S> {
    /// The `http` client point of a call with this head, `None` outside a
    /// profiled request.
    fn client_span(&self, head: &RequestHead) -> Option<Span> {
        Span::current().point_ids()?;
        let uri = &head.uri;
        let destination = Destination::new(
            uri.scheme_str().unwrap_or(""),
            uri.host().unwrap_or_default(),
            uri.port_u16(),
        );
        let call = ClientCall::new(head.method.as_str(), destination.host(), destination.port());
        Some(client_point(call, || {
            if self.config.method_and_path {
                tracing::info_span!(
                    target: "tracing_osprofiler::actix",
                    "http",
                    http.method = head.method.as_str(),
                    http.path = uri.path(),
                    http.status_code = tracing::field::Empty,
                )
            } else {
                tracing::info_span!(
                    target: "tracing_osprofiler::actix",
                    "http",
                    http.method = tracing::field::Empty,
                    http.path = tracing::field::Empty,
                    http.status_code = tracing::field::Empty,
                )
            }
        }))
    }

    /// Whether the policy allows a token to go where `head` goes.
    fn allowed(&self, head: &RequestHead) -> bool {
        let uri = &head.uri;
        let Some(host) = uri.host() else {
            return false;
        };
        let destination = Destination::new(uri.scheme_str().unwrap_or(""), host, uri.port_u16());
        self.config.destinations.allows(&destination)
    }
}

/// The token headers as actix header values; `None` only for a value that
/// is not a valid header value, which a [`TraceHeaders`] made by this crate
/// never is.
fn header_values(trace: &TraceHeaders) -> Option<(HeaderValue, HeaderValue)> {
    Some((
        HeaderValue::from_str(trace.trace_info()).ok()?,
        HeaderValue::from_str(trace.trace_hmac()).ok()?,
    ))
}

/// Sets the two token headers, replacing any present: a receiver treats a
/// duplicated header as invalid.
fn insert(headers: &mut HeaderMap, (info, hmac): (HeaderValue, HeaderValue)) {
    headers.insert(TRACE_INFO, info);
    headers.insert(TRACE_HMAC, hmac);
}

impl<S> Service<ConnectRequest> for AwcProfilingService<S>
where
    S: Service<ConnectRequest, Response = ConnectResponse, Error = SendRequestError>,
{
    type Response = ConnectResponse;
    type Error = SendRequestError;
    type Future = ClientFuture<S::Future>;

    actix_web::dev::forward_ready!(inner);

    fn call(&self, mut request: ConnectRequest) -> Self::Future {
        let head = match &request {
            ConnectRequest::Client(head, ..) => head.as_ref(),
            ConnectRequest::Tunnel(head, ..) => head,
        };
        let Some(span) = self.client_span(head) else {
            return ClientFuture {
                inner: self.inner.call(request),
                span: None,
            };
        };
        // A token verifies fleet-wide and never expires: a destination the
        // policy does not allow gets the call, not the token.
        if self.allowed(head) {
            // The `http` span may have been filtered out: sign for the
            // current point instead, so the callee still joins.
            let caller = if span.point_ids().is_some() {
                span.clone()
            } else {
                Span::current()
            };
            if let Some(values) = caller.trace_headers().as_ref().and_then(header_values) {
                match &mut request {
                    ConnectRequest::Client(RequestHeadType::Owned(head), ..)
                    | ConnectRequest::Tunnel(head, ..) => insert(&mut head.headers, values),
                    // A frozen request shares its head: its extra headers
                    // are sent instead of the head's of the same name.
                    ConnectRequest::Client(RequestHeadType::Rc(_, extra), ..) => {
                        insert(extra.get_or_insert_with(HeaderMap::new), values);
                    }
                }
            }
        }
        let inner = span.in_scope(|| self.inner.call(request));
        ClientFuture {
            inner,
            span: Some(span),
        }
    }
}

pin_project! {
    /// The response future of an [`AwcProfilingService`]: polls the call
    /// inside its `http` point and records the outcome on it.
    pub struct ClientFuture<F> {
        #[pin]
        inner: F,
        span: Option<Span>,
    }
}

impl<F> fmt::Debug for ClientFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFuture")
            .field("profiled", &self.span.is_some())
            .finish_non_exhaustive()
    }
}

impl<F> Future for ClientFuture<F>
where
    F: Future<Output = Result<ConnectResponse, SendRequestError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.span.as_ref().map(Span::enter);
            ready!(this.inner.poll(cx))
        };
        // The point ends here, when the response head has arrived (as
        // osprofiler's `http-stop`); the body is read by the handler.
        if let Some(span) = this.span.take() {
            match &result {
                Ok(ConnectResponse::Client(response)) => {
                    record_status(&span, response.status().as_u16());
                }
                Ok(ConnectResponse::Tunnel(head, _)) => record_status(&span, head.status.as_u16()),
                Err(error) => record_failure(&span, error.to_string()),
            }
        }
        Poll::Ready(result)
    }
}
