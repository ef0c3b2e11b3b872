//! The recipe of docs/http.md, "Any other framework": a profiling
//! middleware for poem (neither tower nor actix-web) written with the
//! crate's public API only, `HmacKeys::verify`, the `ProfileLimiter`,
//! `Profile::start_request`, `http.status_code` on the root, and
//! `current_trace_headers` for outgoing calls, as any user would write it
//! from outside the crate. Run against a real poem server on loopback, and
//! called by the real Python osprofiler client.
#![cfg(all(feature = "tower", feature = "reqwest"))]

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use poem::listener::{Acceptor as _, Listener as _, TcpListener};
use poem::{
    get, handler, Endpoint, EndpointExt as _, IntoResponse, Middleware, Request, Response, Route,
};
use support::http::{get_with, global, new_token, only, tree, KEY};
use support::python_client::assert_python_client_profiles;
use tracing::Instrument as _;
use tracing_osprofiler::http::{Destination, Destinations};
use tracing_osprofiler::limit::{ProfileLimit, ProfileLimiter};
use tracing_osprofiler::point::{client_point, ClientCall, RequestInfo};
use tracing_osprofiler::{
    current_trace_headers, HmacKeys, ProfileExt as _, X_TRACE_HMAC, X_TRACE_INFO,
};

// ---- The recipe (docs/http.md shows this code) -------------------------

/// A poem middleware that profiles requests carrying a valid token.
#[derive(Clone)]
struct Profiling {
    keys: HmacKeys,
    limiter: ProfileLimiter,
}

impl Profiling {
    fn new(keys: HmacKeys) -> Self {
        // Keep the limit: a valid token must not let a client have every
        // request profiled.
        Profiling {
            keys,
            limiter: ProfileLimit::default().build(),
        }
    }
}

impl<E: Endpoint> Middleware<E> for Profiling {
    type Output = ProfilingEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ProfilingEndpoint {
            inner,
            config: self.clone(),
        }
    }
}

struct ProfilingEndpoint<E> {
    inner: E,
    config: Profiling,
}

/// The one value of a header: `None` if it is absent or repeated (a
/// repeated token header is invalid, never "pick one").
fn single<'r>(request: &'r Request, name: &str) -> Option<&'r [u8]> {
    let mut values = request.headers().get_all(name).into_iter();
    let first = values.next()?;
    values.next().is_none().then(|| first.as_bytes())
}

impl<E: Endpoint> Endpoint for ProfilingEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        // 1. The token: exactly one of each header, verified (bytes: a
        //    non-ASCII value is a token that does not verify, not an error).
        let profile = match (
            single(&request, X_TRACE_INFO),
            single(&request, X_TRACE_HMAC),
        ) {
            (Some(info), Some(hmac)) => self.config.keys.verify(info, hmac).ok(),
            _ => None,
        };
        // 2. The limit, then the root span, started for this request.
        let admitted = profile.and_then(|profile| {
            let permit = self.config.limiter.try_acquire_for(&profile)?;
            let facts = RequestInfo::new(request.method().as_str(), request.uri().path(), "http");
            let root = profile.start_request(facts, || {
                tracing::info_span!("wsgi", http.status_code = tracing::field::Empty)
            });
            // Not a point: a filter disabled it (or no OsProfilerLayer).
            root.point_ids().is_some().then_some((root, permit))
        });
        let Some((root, _permit)) = admitted else {
            // Anything else is served exactly as without the middleware.
            return self
                .inner
                .call(request)
                .await
                .map(IntoResponse::into_response);
        };
        // 3. The handler inside the root; the status on it (500 or more
        //    marks the request failed). The root and the permit end here,
        //    with the response; a streamed body would need them held by the
        //    body instead.
        let response = match self.inner.call(request).instrument(root.clone()).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        root.record("http.status_code", response.status().as_u16());
        Ok(response)
    }
}

/// An outgoing call from a profiled handler: an `http` client point, and
/// the token headers signed for it when the destination may have them.
async fn call_signed(url: &str) -> reqwest::Result<String> {
    let parsed = reqwest::Url::parse(url).expect("a URL");
    let host = parsed.host_str().unwrap_or_default();
    let call = ClientCall::new("GET", host, parsed.port_or_known_default());
    let point = client_point(call, || {
        tracing::info_span!("http", http.status_code = tracing::field::Empty)
    });
    let mut request = reqwest::Client::new().get(url);
    let destination = Destination::new(parsed.scheme(), host, parsed.port());
    if Destinations::internal().allows(&destination) {
        let headers = point.in_scope(current_trace_headers);
        for (name, value) in headers.iter().flat_map(|h| h.iter()) {
            request = request.header(name, value);
        }
    }
    let response = request.send().instrument(point.clone()).await?;
    point.record("http.status_code", response.status().as_u16());
    response.text().await
}

// ---- The service and the tests ---------------------------------------

#[tracing::instrument]
async fn work() -> &'static str {
    tokio::time::sleep(Duration::from_millis(2)).await;
    "poem ok"
}

#[handler]
async fn index() -> &'static str {
    work().await
}

#[handler]
async fn fail() -> poem::Result<&'static str> {
    work().await;
    Err(poem::Error::from_status(
        poem::http::StatusCode::INTERNAL_SERVER_ERROR,
    ))
}

/// Serves the routes behind the recipe's middleware on a free loopback
/// port; `/call` calls this server's `/` with a signed header.
async fn serve() -> String {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("a socket address");
    let base = format!("http://{addr}");
    let own = format!("{base}/");
    let app = Route::new()
        .at("/", get(index))
        .at("/fail", get(fail))
        .at(
            "/call",
            get(poem::endpoint::make(move |_| {
                let own = own.clone();
                async move { call_signed(&own).await.unwrap_or_else(|e| e.to_string()) }
            })),
        )
        .with(Profiling::new(HmacKeys::from_comma_separated(KEY)));
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poem_middleware_from_the_public_api_profiles_signed_requests_only() {
    let (lines, _serial) = global();
    let base_url = serve().await;
    let url = format!("{base_url}/");

    let (base, token) = new_token();
    let headers: Vec<(&str, &[u8])> = token.iter().map(|(n, v)| (n, v.as_bytes())).collect();
    assert_eq!(get_with(&url, &headers).await, (200, "poem ok".to_owned()));
    let points = tree(&lines.lines(), base, base);
    let root = only(&points, "wsgi");
    assert_eq!(root.parent_id, base);
    assert_eq!(only(&points, "work").parent_id, root.trace_id);

    // Unsigned, wrongly signed, duplicated, non-ASCII: served, nothing
    // written.
    lines.clear();
    let info = token.trace_info().as_bytes();
    let hmac = token.trace_hmac().as_bytes();
    let wrong = "0".repeat(40);
    let cases: Vec<Vec<(&str, &[u8])>> = vec![
        vec![],
        vec![(X_TRACE_INFO, info), (X_TRACE_HMAC, wrong.as_bytes())],
        vec![
            (X_TRACE_INFO, info),
            (X_TRACE_INFO, info),
            (X_TRACE_HMAC, hmac),
        ],
        vec![(X_TRACE_INFO, "é".as_bytes()), (X_TRACE_HMAC, hmac)],
        vec![(X_TRACE_INFO, &[b'A'; 5000]), (X_TRACE_HMAC, hmac)],
    ];
    for case in &cases {
        assert_eq!(get_with(&url, case).await, (200, "poem ok".to_owned()));
    }
    assert_eq!(lines.lines(), Vec::<String>::new());

    // A failing handler: its error response, and the root ends with it.
    let (base, token) = new_token();
    let headers: Vec<(&str, &[u8])> = token.iter().map(|(n, v)| (n, v.as_bytes())).collect();
    assert_eq!(get_with(&format!("{base_url}/fail"), &headers).await.0, 500);
    tree(&lines.lines(), base, base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_calls_carry_headers_signed_for_their_client_point() {
    let (lines, _serial) = global();
    let base_url = serve().await;
    let (base, token) = new_token();
    let headers: Vec<(&str, &[u8])> = token.iter().map(|(n, v)| (n, v.as_bytes())).collect();
    assert_eq!(
        get_with(&format!("{base_url}/call"), &headers).await,
        (200, "poem ok".to_owned())
    );
    let points = tree(&lines.lines(), base, base);
    let roots: Vec<_> = points.values().filter(|p| p.name == "wsgi").collect();
    assert_eq!(roots.len(), 2, "{points:#?}");
    let http = only(&points, "http");
    let caller = roots.iter().find(|r| r.parent_id == base).expect("caller");
    assert_eq!(http.parent_id, caller.trace_id);
    let callee = roots
        .iter()
        .find(|r| r.parent_id == http.trace_id)
        .expect("the callee's root hangs under the client point");
    assert_eq!(only(&points, "work").parent_id, callee.trace_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_osprofiler_client_profiles_the_poem_service() {
    let (lines, _serial) = global();
    let url = format!("{}/", serve().await);
    // The root hangs under the Python client's point, `work` under it.
    assert_python_client_profiles(&lines, url, "poem ok", "work").await;
}
