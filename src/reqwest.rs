//! Profiling outgoing [`reqwest`] calls.
//!
//! This module owns the client point of an outgoing call:
//! [`ProfilingMiddleware`], the configuration of a
//! [`reqwest_middleware::Middleware`] that, inside a profiled request, opens
//! a child point named `http` around the call (the osprofiler client point;
//! its `-start` and `-stop` lines bracket the call as osprofiler's
//! `http-start`/`http-stop` do), and sends headers signed for that point, so
//! the callee's points hang under it, if the call's destination is one its
//! [`Destinations`] policy allows (by default internal addresses and names
//! only: a token must not reach a third party). The point is a
//! [client point](crate::point::client_point) with the call's method, host
//! and port, and records the response status (a status of 500 or more, or an
//! error, marks it failed). Outside a profiled request it only forwards the
//! call.
//!
//! The middleware comes attached to a client that the crate builds from
//! yours, with [`ProfilingMiddleware::client_builder`]:
//!
//! ```
//! use tracing_osprofiler::reqwest::ProfilingMiddleware;
//!
//! let client = ProfilingMiddleware::new()
//!     .client_builder(reqwest::Client::builder())?
//!     .build();
//! # drop(client);
//! # Ok::<(), reqwest::Error>(())
//! ```
//!
//! # Redirects
//!
//! A token must reach only the destinations the policy allows, on every hop.
//! reqwest's own redirect handling keeps every header but `Authorization`
//! and cookies when it follows a redirect to another host, so a client that
//! follows redirects itself would hand `X-Trace-Info` / `X-Trace-HMAC` to
//! whatever host an internal service redirects to (`302 Location:
//! https://partner.example/…`), and a middleware cannot see or change how
//! the client it is attached to was built. So [`ProfilingMiddleware`] is not
//! a middleware itself: the signing middleware is only to be had attached to
//! a client built by [`client_builder`](ProfilingMiddleware::client_builder),
//! which sets [`redirect::Policy::none()`](reqwest::redirect::Policy::none)
//! on your `reqwest::ClientBuilder` whatever redirect policy it had. The
//! middleware follows redirects itself (up to 10, reqwest's default;
//! [`with_max_redirects`](ProfilingMiddleware::with_max_redirects)), checks
//! every hop against its policy, and sends the token headers (and
//! `traceparent`) only to the hops the policy allows; a hop to any other
//! destination is still followed, without them. It follows redirects as
//! reqwest does (`303`, and `301`/`302` after a `POST`, become a `GET`
//! without a body; `307`/`308` resend the method and body, and are not
//! followed when the body is a stream that cannot be sent twice;
//! `Authorization`, cookies and `Proxy-Authorization` are dropped on a hop
//! to another host or port), and sends no `Referer`.
//!
//! Middleware you add to the returned builder runs inside this one, on each
//! hop. One that follows redirects itself (resending the request to a
//! `Location`) would again carry a signed hop's headers out of the policy's
//! sight: such a call is noticed (its response comes from another URL than
//! the one signed), reported once on standard error, and from then on the
//! client signs no call: add no such middleware.
//!
//! Without reqwest-middleware, add the headers to a plain `reqwest::Request`
//! with [`http::inject::inject_current`](crate::http::inject::inject_current)
//! on `request.headers_mut()`, only if
//! [`Destinations::allows_url`] allows its URL, and only with a client that
//! does not follow redirects.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE,
    LOCATION, PROXY_AUTHORIZATION, TRANSFER_ENCODING, WWW_AUTHENTICATE,
};
use http::{Method, StatusCode};
use reqwest_middleware::reqwest::{Request, Response, Url};
use reqwest_middleware::{ClientBuilder, Error, Middleware, Next, Result};
use tracing::{Instrument as _, Span};

use crate::http::inject::{traceparent, TRACEPARENT_HEADER};
use crate::http::{Destinations, TRACE_HMAC_HEADER, TRACE_INFO_HEADER};
use crate::layer::{record_outcome, ProfileExt};
use crate::point::{client_point, ClientCall};

/// reqwest's own default limit.
const DEFAULT_MAX_REDIRECTS: usize = 10;

/// The configuration of the middleware that signs every call made inside a
/// profiled request and opens an `http` client point around it; the
/// middleware itself comes attached to a client, from
/// [`client_builder`](Self::client_builder). See the [module docs](self).
///
/// | setting | default | setter |
/// |---|---|---|
/// | destinations that get signed headers, on every hop | [`Destinations::internal`]: loopback and private IPs, `localhost`, names without a dot, `*.internal`, `*.local`, `*.home.arpa` | [`with_destinations`](Self::with_destinations) |
/// | redirects followed (by the middleware, each hop checked; the client never follows one) | 10, as reqwest | [`with_max_redirects`](Self::with_max_redirects) |
/// | method and URL path on the `http` point | off (paths can name resources) | [`with_method_and_path`](Self::with_method_and_path) |
/// | W3C `traceparent` header besides the token (to the same destinations) | off | [`with_traceparent`](Self::with_traceparent) |
/// | query string, headers | never recorded | - |
///
/// A call to another destination is still made and still gets its `http`
/// point, without token headers.
#[derive(Debug, Clone)]
#[must_use = "a ProfilingMiddleware signs nothing until `client_builder` attaches it to a client"]
pub struct ProfilingMiddleware {
    method_and_path: bool,
    traceparent: bool,
    destinations: Destinations,
    max_redirects: usize,
}

impl Default for ProfilingMiddleware {
    fn default() -> Self {
        ProfilingMiddleware::new()
    }
}

impl ProfilingMiddleware {
    /// A middleware with the defaults of the table above.
    pub const fn new() -> Self {
        ProfilingMiddleware {
            method_and_path: false,
            traceparent: false,
            destinations: Destinations::internal(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }

    /// Builds the client from `builder` with
    /// [`redirect::Policy::none()`](reqwest::redirect::Policy::none), and
    /// returns a reqwest-middleware builder with the signing middleware
    /// attached to it: add more middleware if you like, then `build()`.
    ///
    /// The redirect policy is forced, whatever `builder` had, because a
    /// client that follows redirects itself sends a call's token headers to
    /// every hop, out of the middleware's sight; the middleware follows
    /// redirects instead, each hop checked against the
    /// [destinations](Self::with_destinations) (see
    /// [Redirects](self#redirects)). Everything else in `builder` (timeouts,
    /// TLS, proxies, `resolve`, ...) is kept.
    ///
    /// # Errors
    ///
    /// The error of [`reqwest::ClientBuilder::build`] (a TLS backend or
    /// resolver that cannot be set up, a bad certificate).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_osprofiler::reqwest::ProfilingMiddleware;
    ///
    /// // The redirect policy given here is replaced: the middleware follows
    /// // up to 5 redirects itself and signs only the hops its policy allows.
    /// let client = ProfilingMiddleware::new()
    ///     .with_max_redirects(5)
    ///     .client_builder(
    ///         reqwest::Client::builder()
    ///             .timeout(Duration::from_secs(10))
    ///             .redirect(reqwest::redirect::Policy::limited(10)),
    ///     )?
    ///     .build();
    /// # drop(client);
    /// # Ok::<(), reqwest::Error>(())
    /// ```
    pub fn client_builder(
        self,
        builder: reqwest::ClientBuilder,
    ) -> std::result::Result<ClientBuilder, reqwest::Error> {
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(ClientBuilder::new(client).with(SigningMiddleware {
            config: self,
            client_follows_redirects: AtomicBool::new(false),
        }))
    }

    /// Which destinations get signed headers (default:
    /// [`Destinations::internal`]). Every hop of a redirected call is
    /// checked (see [Redirects](self#redirects)).
    ///
    /// ```
    /// use tracing_osprofiler::http::Destinations;
    /// use tracing_osprofiler::reqwest::ProfilingMiddleware;
    ///
    /// // Services that call each other by public names, as well as internal ones.
    /// let client = ProfilingMiddleware::new()
    ///     .with_destinations(
    ///         Destinations::internal().or(Destinations::hosts(["*.cloud.example.com"])?),
    ///     )
    ///     .client_builder(reqwest::Client::builder())?
    ///     .build();
    /// # drop(client);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_destinations(mut self, destinations: Destinations) -> Self {
        self.destinations = destinations;
        self
    }

    /// How many redirects of one call the middleware follows (default: 10,
    /// reqwest's default); one more is an error naming the last URL, as
    /// reqwest's "too many redirects". `0` follows none: the caller gets
    /// the `3xx` response. See [Redirects](self#redirects).
    pub const fn with_max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// Records the method and URL path (never the query) as the `http`
    /// span's `http.method` and `http.path` fields (default: off).
    pub const fn with_method_and_path(mut self, record: bool) -> Self {
        self.method_and_path = record;
        self
    }

    /// Also sends a W3C `traceparent` naming the calling point, as the OTLP
    /// sink names its span (see
    /// [`http::inject::traceparent`](crate::http::inject::traceparent)),
    /// to the destinations that get the token (default: off). A callee
    /// traced with OpenTelemetry alone then joins the same trace.
    pub const fn with_traceparent(mut self, send: bool) -> Self {
        self.traceparent = send;
        self
    }
}

/// The signing middleware: made only by
/// [`ProfilingMiddleware::client_builder`], on a client that follows no
/// redirect itself.
struct SigningMiddleware {
    config: ProfilingMiddleware,
    /// Set once a middleware inside this one was seen following a redirect
    /// of a signed call: from then on nothing is signed (fail closed).
    client_follows_redirects: AtomicBool,
}

impl SigningMiddleware {
    fn client_span(&self, request: &Request) -> Option<Span> {
        Span::current().point_ids()?;
        let url = request.url();
        let call = ClientCall::new(
            request.method().as_str(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default(),
        );
        let span = client_point(call, || {
            if self.config.method_and_path {
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

    /// The headers a call made from `span` is signed with, `None` if it is
    /// not signed at all.
    fn signature(&self, span: &Span) -> Option<Signature> {
        if self.client_follows_redirects.load(Ordering::Relaxed) {
            return None;
        }
        // The `http` span may have been filtered out: sign for the current
        // point instead, so the callee still joins.
        let caller = if span.point_ids().is_some() {
            span.clone()
        } else {
            Span::current()
        };
        let token = caller.trace_headers()?;
        let info = HeaderValue::from_str(token.trace_info()).ok()?;
        let hmac = HeaderValue::from_str(token.trace_hmac()).ok()?;
        let traceparent = if self.config.traceparent {
            traceparent(&caller)
        } else {
            None
        };
        Some(Signature {
            info,
            hmac,
            traceparent,
        })
    }

    /// Sends `request`, following redirects hop by hop: each hop carries
    /// the token headers only if the policy allows its destination.
    async fn send(
        &self,
        mut request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
        signature: Option<Signature>,
    ) -> Result<Response> {
        let mut redirects = 0;
        loop {
            let allowed = self.config.destinations.allows_url(request.url());
            let signed = match &signature {
                Some(signature) if allowed => {
                    signature.insert(request.headers_mut());
                    true
                }
                // A header set by the caller for the first URL does not
                // follow a redirect to a destination it was not meant for.
                _ if redirects > 0 && !allowed => {
                    remove_token(request.headers_mut());
                    false
                }
                _ => false,
            };
            let template = (self.config.max_redirects > 0).then(|| Template::of(&request));
            let sent = request.url().clone();
            let response = next.clone().run(request, extensions).await?;
            if signed && !same_resource(&sent, response.url()) {
                self.client_followed(&sent, response.url());
            }
            let Some(template) = template else {
                return Ok(response);
            };
            let Some(following) = template.follow(&response) else {
                return Ok(response);
            };
            redirects += 1;
            if redirects > self.config.max_redirects {
                return Err(Error::middleware(TooManyRedirects {
                    max: self.config.max_redirects,
                    url: without_userinfo(response.url()),
                }));
            }
            request = following;
        }
    }

    /// A middleware added inside this one followed a redirect of a signed
    /// call itself (the client built by `client_builder` follows none): the
    /// hops it makes cannot be checked, so this client stops signing, and
    /// says so once.
    fn client_followed(&self, sent: &Url, received: &Url) {
        if !self.client_follows_redirects.swap(true, Ordering::Relaxed) {
            eprintln!(
                "tracing-osprofiler: a middleware added after ProfilingMiddleware followed a \
                 redirect of a profiled call from {} to {} itself, with its signed token \
                 headers; this client signs no more calls. Remove that middleware: \
                 ProfilingMiddleware follows redirects itself and sends the token only to \
                 destinations its policy allows.",
                origin(sent),
                origin(received),
            );
        }
    }
}

/// The token headers (and `traceparent`) of one call.
struct Signature {
    info: HeaderValue,
    hmac: HeaderValue,
    traceparent: Option<HeaderValue>,
}

impl Signature {
    fn insert(&self, headers: &mut HeaderMap) {
        headers.insert(TRACE_INFO_HEADER, self.info.clone());
        headers.insert(TRACE_HMAC_HEADER, self.hmac.clone());
        if let Some(traceparent) = &self.traceparent {
            headers.insert(TRACEPARENT_HEADER, traceparent.clone());
        }
    }
}

fn remove_token(headers: &mut HeaderMap) {
    headers.remove(TRACE_INFO_HEADER);
    headers.remove(TRACE_HMAC_HEADER);
    headers.remove(TRACEPARENT_HEADER);
}

/// What a redirect of one hop is made from: the hop's request, its body
/// only if it can be sent twice.
struct Template {
    request: Request,
    body_cloned: bool,
}

impl Template {
    fn of(request: &Request) -> Self {
        if let Some(request) = request.try_clone() {
            return Template {
                request,
                body_cloned: true,
            };
        }
        let mut copy = Request::new(request.method().clone(), request.url().clone());
        *copy.headers_mut() = request.headers().clone();
        *copy.timeout_mut() = request.timeout().copied();
        *copy.version_mut() = request.version();
        Template {
            request: copy,
            body_cloned: false,
        }
    }

    /// The next hop if `response` is a redirect to follow, as reqwest (and
    /// tower-http's `FollowRedirect`) follows it.
    fn follow(self, response: &Response) -> Option<Request> {
        let Template {
            mut request,
            body_cloned,
        } = self;
        let status = response.status();
        let drop_body = match status {
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => request.method() == Method::POST,
            StatusCode::SEE_OTHER => true,
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => false,
            _ => return None,
        };
        if drop_body {
            if status == StatusCode::SEE_OTHER && request.method() == Method::HEAD {
                // HEAD stays HEAD.
            } else {
                *request.method_mut() = Method::GET;
            }
            *request.body_mut() = None;
            for name in [
                CONTENT_TYPE,
                CONTENT_LENGTH,
                CONTENT_ENCODING,
                TRANSFER_ENCODING,
            ] {
                request.headers_mut().remove(name);
            }
        } else if !body_cloned {
            // The body was a stream, sent once already.
            return None;
        }
        let location = response.headers().get(LOCATION)?.to_str().ok()?;
        let next = response.url().join(location).ok()?;
        if next.scheme() != "http" && next.scheme() != "https" {
            return None;
        }
        let previous = response.url();
        if next.host_str() != previous.host_str()
            || next.port_or_known_default() != previous.port_or_known_default()
        {
            let headers = request.headers_mut();
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, WWW_AUTHENTICATE] {
                headers.remove(name);
            }
            headers.remove("cookie2");
        }
        *request.url_mut() = next;
        Some(request)
    }
}

/// Whether `received` (the URL a response came from) is the resource `sent`
/// asked for; reqwest's response URL has no user info and no fragment.
fn same_resource(sent: &Url, received: &Url) -> bool {
    sent.scheme() == received.scheme()
        && sent.host_str() == received.host_str()
        && sent.port_or_known_default() == received.port_or_known_default()
        && sent.path() == received.path()
        && sent.query() == received.query()
}

/// `scheme://host:port` of `url`: no path or query, which can hold secrets.
fn origin(url: &Url) -> String {
    let port = url
        .port_or_known_default()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    format!(
        "{}://{}{port}",
        url.scheme(),
        url.host_str().unwrap_or_default()
    )
}

fn without_userinfo(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// A redirected call exceeded [`ProfilingMiddleware::with_max_redirects`].
#[derive(Debug)]
struct TooManyRedirects {
    max: usize,
    url: String,
}

impl fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many redirects: more than {} (the last from {})",
            self.max, self.url
        )
    }
}

impl std::error::Error for TooManyRedirects {}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// Written out as `#[async_trait]` would expand it, to avoid a dependency on
// the macro crate.
impl Middleware for SigningMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: Request,
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
            return Box::pin(self.send(request, extensions, next, None));
        };
        // A token verifies fleet-wide and never expires: a destination the
        // policy does not allow gets the call, not the token.
        let signature = self.signature(&span);
        let outcome = span.clone();
        Box::pin(
            async move {
                let result = self.send(request, extensions, next, signature).await;
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
