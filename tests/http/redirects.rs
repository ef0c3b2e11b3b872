//! A profiled call that is redirected: every hop is checked against the
//! destination policy, and a hop the policy refuses gets the call without
//! `X-Trace-Info` / `X-Trace-HMAC` / `traceparent`; whatever redirect
//! policy the user's `reqwest::ClientBuilder` had, the client that
//! `ProfilingMiddleware::client_builder` builds follows none itself.
//!
//! Two real loopback servers: "internal" (reached as `127.0.0.1`, allowed by
//! the default policy) redirects in every way HTTP can to "the partner"
//! (reached as `partner.example.com`, resolved to loopback by the client,
//! refused by the policy), which records every request it receives.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::support::http as http_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http_support::{global, Serial, KEY};
use reqwest_middleware::ClientWithMiddleware;
use tracing::Instrument as _;
use tracing_osprofiler::http::Destinations;
use tracing_osprofiler::reqwest::ProfilingMiddleware;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Id, Profile, Signer};

const PARTNER: &str = "partner.example.com";

/// One request a server received: method, path, the base_id its token
/// verified into (`None`: no token), whether it had a `traceparent`, its
/// `authorization` header and body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    token: Option<Id>,
    traceparent: bool,
    authorization: Option<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Records a request a server received.
    fn record(&self, method: &axum::http::Method, uri: &Uri, headers: &HeaderMap, body: String) {
        let seen = seen(method, uri, headers, body);
        self.0.lock().unwrap().push(seen);
    }
}

fn seen(method: &axum::http::Method, uri: &Uri, headers: &HeaderMap, body: String) -> Seen {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let token = match (value("x-trace-info"), value("x-trace-hmac")) {
        (Some(info), Some(hmac)) => Some(
            HmacKeys::new([KEY])
                .verify(info, hmac)
                .expect("a sent token verifies")
                .trace_info()
                .base_id(),
        ),
        _ => None,
    };
    Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        token,
        traceparent: headers.contains_key("traceparent"),
        authorization: value("authorization").map(str::to_owned),
        body,
    }
}

/// Records the request; `/back` redirects to the internal server's
/// `/echo`, anything else answers 200.
async fn partner(
    State((log, internal)): State<(Log, Arc<OnceLock<SocketAddr>>)>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    log.record(&method, &uri, &headers, body);
    if uri.path() == "/back" {
        let to = format!("http://{}/echo", internal.get().expect("internal address"));
        return (StatusCode::FOUND, [("location", to)]).into_response();
    }
    "partner".into_response()
}

/// Records the request, then answers as its path says: `/to/{status}/{where}`
/// redirects with that status to the partner's `/{where}` (by name;
/// `/loopback/…` by its loopback address), `/here` to
/// `/echo` on this server (a relative `Location`), `/loop` to itself.
async fn internal(
    State((log, partner)): State<(Log, SocketAddr)>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    log.record(&method, &uri, &headers, body);
    let path = uri.path();
    let redirect = |status: u16, to: String| {
        let status = StatusCode::from_u16(status).unwrap();
        (status, [("location", to)]).into_response()
    };
    if let Some(rest) = path.strip_prefix("/to/") {
        let (status, target) = rest.split_once('/').expect("/to/{status}/{where}");
        let to = format!("http://{PARTNER}:{}/{target}", partner.port());
        return redirect(status.parse().unwrap(), to);
    }
    if let Some(rest) = path.strip_prefix("/loopback/") {
        let (status, target) = rest.split_once('/').expect("/loopback/{status}/{where}");
        let to = format!("http://{partner}/{target}");
        return redirect(status.parse().unwrap(), to);
    }
    match path {
        "/here" => redirect(302, "/echo".to_owned()),
        "/loop" => redirect(302, "/loop".to_owned()),
        _ => "internal".into_response(),
    }
}

struct Servers {
    internal: SocketAddr,
    partner: SocketAddr,
    internal_log: Log,
    partner_log: Log,
}

async fn servers() -> Servers {
    let (internal_log, partner_log) = (Log::default(), Log::default());
    let internal_addr = Arc::new(OnceLock::new());
    let partner = http_support::serve_axum(
        Router::new()
            .fallback(any(partner))
            .with_state((partner_log.clone(), Arc::clone(&internal_addr))),
    )
    .await;
    let internal = http_support::serve_axum(
        Router::new()
            .route("/echo", get(internal))
            .fallback(any(internal))
            .with_state((internal_log.clone(), partner)),
    )
    .await;
    internal_addr.set(internal).unwrap();
    Servers {
        internal,
        partner,
        internal_log,
        partner_log,
    }
}

/// One hop as a server saw it: method, path, the base_id of its token,
/// body.
type Hop = (String, String, Option<Id>, String);

fn hop(method: &str, path: &str, token: Option<Id>, body: &str) -> Hop {
    (method.to_owned(), path.to_owned(), token, body.to_owned())
}

/// What every test here starts from: the one subscriber (the tests of the
/// binary one at a time), the two servers, and a profiled request, the
/// caller's span, under which the calls are made.
struct Setup {
    servers: Servers,
    base: Id,
    root: tracing::Span,
    // Last, so dropped last: the next test starts once this one's root
    // span has closed.
    _serial: Serial,
}

async fn set_up() -> Setup {
    let (_lines, serial) = global();
    let servers = servers().await;
    let profile = Profile::new(Signer::new(KEY, HmacAlgorithm::Sha1));
    let base = profile.trace_info().base_id();
    let root = profile.start(|| tracing::info_span!("caller"));
    Setup {
        servers,
        base,
        root,
        _serial: serial,
    }
}

impl Setup {
    /// `path` on the internal server.
    fn internal(&self, path: &str) -> String {
        format!("http://{}{path}", self.servers.internal)
    }

    /// A client as the module docs build it, `PARTNER` resolved to the
    /// partner.
    fn client(&self, middleware: ProfilingMiddleware) -> ClientWithMiddleware {
        self.client_with(middleware, reqwest::redirect::Policy::none())
    }

    /// A client built from a `reqwest::ClientBuilder` with `policy`.
    fn client_with(
        &self,
        middleware: ProfilingMiddleware,
        policy: reqwest::redirect::Policy,
    ) -> ClientWithMiddleware {
        middleware
            .client_builder(self.builder().redirect(policy))
            .expect("client")
            .build()
    }

    /// A `reqwest::ClientBuilder` that resolves `PARTNER` to the partner.
    fn builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder().resolve(PARTNER, self.servers.partner)
    }

    /// `GET path` on the internal server with `client`, inside the profiled
    /// request: the response.
    async fn get(
        &self,
        client: &ClientWithMiddleware,
        path: &str,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        client
            .get(self.internal(path))
            .send()
            .instrument(self.root.clone())
            .await
    }

    /// The body of [`Setup::get`].
    async fn get_text(&self, client: &ClientWithMiddleware, path: &str) -> String {
        let response = self.get(client, path).await.expect("call");
        response.text().await.expect("body")
    }

    /// The hops the internal server saw since last asked.
    fn internal_hops(&self) -> Vec<Hop> {
        hops(&self.servers.internal_log)
    }

    /// The hops the partner saw since last asked.
    fn partner_hops(&self) -> Vec<Hop> {
        hops(&self.servers.partner_log)
    }
}

fn hops(log: &Log) -> Vec<Hop> {
    log.take()
        .into_iter()
        .map(|s| (s.method, s.path, s.token, s.body))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_refused_destination_is_followed_without_the_token() {
    let setup = set_up().await;
    let (base, servers) = (setup.base, &setup.servers);
    let client = setup.client(ProfilingMiddleware::new().with_traceparent(true));

    // Every redirect status, GET and POST: the partner never sees a token.
    let cases = [
        ("GET", "/to/301/a", "GET", ""),
        ("GET", "/to/302/a", "GET", ""),
        ("GET", "/to/303/a", "GET", ""),
        ("GET", "/to/307/a", "GET", ""),
        ("GET", "/to/308/a", "GET", ""),
        ("POST", "/to/302/a", "GET", ""),
        ("POST", "/to/303/a", "GET", ""),
        ("POST", "/to/307/a", "POST", "payload"),
        ("PUT", "/to/308/a", "PUT", "payload"),
    ];
    for (method, path, partner_method, partner_body) in cases {
        let method: reqwest::Method = method.parse().unwrap();
        let body = if method == reqwest::Method::GET {
            ""
        } else {
            "payload"
        };
        let response = client
            .request(method.clone(), setup.internal(path))
            .header("authorization", "Bearer internal-only")
            .body(body)
            .send()
            .instrument(setup.root.clone())
            .await
            .expect("call");
        assert_eq!(response.status(), 200, "{method} {path}");
        assert_eq!(response.text().await.unwrap(), "partner", "{method} {path}");
        assert_eq!(
            setup.internal_hops(),
            [hop(method.as_str(), path, Some(base), body)],
            "{method} {path}: the internal hop is signed"
        );
        let at_partner = servers.partner_log.take();
        assert_eq!(at_partner.len(), 1, "{method} {path}: {at_partner:?}");
        let at_partner = &at_partner[0];
        assert_eq!(
            at_partner.token, None,
            "{method} {path}: the partner got the token"
        );
        assert!(
            !at_partner.traceparent,
            "{method} {path}: the partner got traceparent"
        );
        assert_eq!(at_partner.authorization, None, "{method} {path}");
        assert_eq!(
            (
                at_partner.method.as_str(),
                at_partner.path.as_str(),
                at_partner.body.as_str()
            ),
            (partner_method, "/a", partner_body),
            "{method} {path}"
        );
    }

    // A chain: internal -> internal (relative Location; still signed) and
    // internal -> partner (not) -> back to internal (signed again: the
    // policy allows it).
    assert_eq!(setup.get_text(&client, "/here").await, "internal");
    assert_eq!(
        setup.internal_hops(),
        [
            hop("GET", "/here", Some(base), ""),
            hop("GET", "/echo", Some(base), "")
        ]
    );
    assert_eq!(setup.get_text(&client, "/to/302/back").await, "internal");
    assert_eq!(
        setup.internal_hops(),
        [
            hop("GET", "/to/302/back", Some(base), ""),
            hop("GET", "/echo", Some(base), "")
        ]
    );
    assert_eq!(setup.partner_hops(), [hop("GET", "/back", None, "")]);

    // A policy that allows the partner lets the token follow.
    let trusting =
        setup.client(ProfilingMiddleware::new().with_destinations(
            Destinations::internal().or(Destinations::hosts([PARTNER]).unwrap()),
        ));
    setup.get(&trusting, "/to/302/a").await.unwrap();
    servers.internal_log.take();
    assert_eq!(setup.partner_hops(), [hop("GET", "/a", Some(base), "")]);

    // Outside a profiled request the redirect is followed as before.
    let response = client
        .get(setup.internal("/to/307/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "partner");
    assert_eq!(setup.internal_hops(), [hop("GET", "/to/307/a", None, "")]);
    assert_eq!(setup.partner_hops(), [hop("GET", "/a", None, "")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_ends_at_the_limit_and_zero_follows_none() {
    let setup = set_up().await;

    // A loop ends in an error after the limit, as reqwest's own.
    let client = setup.client(ProfilingMiddleware::new());
    let error = setup
        .get(&client, "/loop")
        .await
        .expect_err("a redirect loop");
    assert!(error.to_string().contains("too many redirects"), "{error}");
    assert_eq!(
        setup.internal_hops().len(),
        11,
        "the first call and 10 redirects"
    );

    // `with_max_redirects(0)`: the caller gets the 3xx.
    let client = setup.client(ProfilingMiddleware::new().with_max_redirects(0));
    let response = setup.get(&client, "/to/302/a").await.unwrap();
    assert_eq!(response.status(), 302);
    assert!(setup.partner_hops().is_empty());
}

/// The user's own redirect setting cannot bring the leak back:
/// `client_builder` replaces it, and the middleware checks every hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_builder_that_follows_redirects_is_overridden_and_the_partner_never_sees_the_token() {
    let setup = set_up().await;
    let base = setup.base;
    for policy in [
        reqwest::redirect::Policy::limited(10),
        reqwest::redirect::Policy::default(),
    ] {
        let client = setup.client_with(ProfilingMiddleware::new(), policy);
        // Called twice: the first redirected call is as safe as the next,
        // and signing goes on for the hops the policy allows.
        for _ in 0..2 {
            assert_eq!(setup.get_text(&client, "/to/302/a").await, "partner");
            assert_eq!(setup.get_text(&client, "/to/307/back").await, "internal");
            assert_eq!(setup.get_text(&client, "/echo").await, "internal");
        }
        let once = [
            hop("GET", "/to/302/a", Some(base), ""),
            hop("GET", "/to/307/back", Some(base), ""),
            hop("GET", "/echo", Some(base), ""),
            hop("GET", "/echo", Some(base), ""),
        ];
        assert_eq!(
            setup.partner_hops(),
            [
                hop("GET", "/a", None, ""),
                hop("GET", "/back", None, ""),
                hop("GET", "/a", None, ""),
                hop("GET", "/back", None, ""),
            ],
            "the partner never sees a token"
        );
        assert_eq!(setup.internal_hops(), [once.clone(), once].concat());
    }
}

/// A middleware added after the signing one that follows redirects itself,
/// as a client would: the one way left to carry a signed hop's headers out
/// of the policy's sight, and so the second line of defence.
struct NaiveRedirects;

impl NaiveRedirects {
    async fn follow(
        &self,
        mut request: reqwest::Request,
        extensions: &mut axum::http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        loop {
            let copy = request.try_clone().expect("a body sent twice");
            let response = next.clone().run(request, extensions).await?;
            let location = match response.headers().get("location") {
                Some(location) if response.status().is_redirection() => location,
                _ => return Ok(response),
            };
            let to = response
                .url()
                .join(location.to_str().unwrap())
                .expect("a Location");
            request = copy;
            *request.url_mut() = to;
        }
    }
}

// Written out as `#[async_trait]` would expand it (no dependency on it).
impl reqwest_middleware::Middleware for NaiveRedirects {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: reqwest::Request,
        extensions: &'life1 mut axum::http::Extensions,
        next: reqwest_middleware::Next<'life2>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = reqwest_middleware::Result<reqwest::Response>>
                + Send
                + 'async_trait,
        >,
    >
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.follow(request, extensions, next))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_middleware_inside_that_follows_redirects_stops_the_signing() {
    let setup = set_up().await;
    let base = setup.base;
    let client = ProfilingMiddleware::new()
        .client_builder(setup.builder())
        .expect("client")
        .with(NaiveRedirects)
        .build();
    assert_eq!(setup.get_text(&client, "/echo").await, "internal");
    assert_eq!(setup.internal_hops(), [hop("GET", "/echo", Some(base), "")]);
    // The first redirected call: the inner middleware made the hops with
    // the first hop's headers (the documented limit of such a setup) ...
    assert_eq!(setup.get_text(&client, "/to/302/a").await, "partner");
    setup.servers.internal_log.take();
    assert_eq!(setup.partner_hops(), [hop("GET", "/a", Some(base), "")]);
    // ... and it is the last: this client signs no call again.
    for path in ["/echo", "/to/302/a"] {
        setup.get_text(&client, path).await;
    }
    assert_eq!(
        setup.internal_hops(),
        [
            hop("GET", "/echo", None, ""),
            hop("GET", "/to/302/a", None, "")
        ]
    );
    assert_eq!(setup.partner_hops(), [hop("GET", "/a", None, "")]);
}

/// A tower client (hyper's, on `http` types) with tower-http's
/// `FollowRedirect`: [`SignRequestsLayer`] inside the follower checks every
/// hop; outside it, the follower copies the first hop's token to the next.
/// "Internal" is the first server's address and port only, so the partner,
/// another port on loopback, is a destination the policy refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_client_checks_every_hop_with_the_signing_layer_inside_the_follower() {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tower::{Service as _, ServiceBuilder, ServiceExt as _};
    use tower_http::follow_redirect::FollowRedirectLayer;
    use tracing_osprofiler::http::inject::SignRequestsLayer;

    let setup = set_up().await;
    let (base, root, servers) = (setup.base, &setup.root, &setup.servers);
    let only_internal = Destinations::hosts([servers.internal.to_string()]).unwrap();
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let get = |path: &str| {
        http::Request::get(setup.internal(path))
            .body(Full::default())
            .unwrap()
    };

    let mut safe = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new())
        .layer(
            SignRequestsLayer::new()
                .with_destinations(only_internal.clone())
                .with_traceparent(true),
        )
        .service(hyper.clone());
    for path in ["/loopback/302/a", "/loopback/307/a", "/loopback/303/back"] {
        // As in a handler: the call is made inside the profiled request.
        let response = async { safe.ready().await.unwrap().call(get(path)).await }
            .instrument(root.clone())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let internal = servers.internal_log.take();
        assert_eq!(internal[0].path, path);
        assert_eq!(
            internal[0].token,
            Some(base),
            "{path}: the internal hop is signed"
        );
        assert!(internal[0].traceparent, "{path}");
        let partner = servers.partner_log.take();
        assert_eq!(partner.len(), 1, "{path}");
        assert_eq!(partner[0].token, None, "{path}: the partner got the token");
        assert!(
            !partner[0].traceparent,
            "{path}: the partner got traceparent"
        );
        if path.ends_with("back") {
            // ... and back to the internal server: signed again.
            assert_eq!(internal.len(), 2);
            assert_eq!(
                (internal[1].path.as_str(), internal[1].token),
                ("/echo", Some(base))
            );
        }
    }

    // The other order: the follower copies what was signed for the first
    // hop to the partner. This is why the layer goes inside.
    let mut leaky = ServiceBuilder::new()
        .layer(SignRequestsLayer::new().with_destinations(only_internal))
        .layer(FollowRedirectLayer::new())
        .service(hyper);
    async {
        leaky
            .ready()
            .await
            .unwrap()
            .call(get("/loopback/302/a"))
            .await
    }
    .instrument(root.clone())
    .await
    .unwrap();
    servers.internal_log.take();
    assert_eq!(setup.partner_hops(), [hop("GET", "/a", Some(base), "")]);
}
