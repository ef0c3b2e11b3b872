//! The tower middleware over real loopback sockets: axum and a plain hyper
//! server, the root point's lifetime, every invalid token case, the limit,
//! the summary warning, and the reqwest middleware between two services.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::call;
use crate::support::http as http_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body::Frame;
use http_support::{
    assert_hello_tree, get_profiled, get_with, global, keys, new_token, only, profiling_client,
    text_through, token_headers, tree, warnings, SlowChunks,
};
use tower::{Layer as _, ServiceExt as _};
use tracing::Instrument as _;
use tracing_osprofiler::http::{ProfilingLayer, ProfilingStats};
use tracing_osprofiler::limit::{ProfileLimit, Rate};

/// [`http_support::load`] on tokio's runtime.
async fn load() -> u64 {
    http_support::load(|work| tokio::spawn(work)).await
}

async fn hello() -> String {
    format!("hello {}", load().await)
}

/// [`SlowChunks`] as an `http_body::Body`.
#[derive(Default)]
struct SlowBody(SlowChunks);

impl http_body::Body for SlowBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_chunk(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

fn app<M>(layer: ProfilingLayer<M>) -> Router
where
    M: tracing_osprofiler::http::MakeRootSpan<axum::body::Body> + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(hello))
        .route(
            "/slow",
            get(|| async { axum::body::Body::new(SlowBody::default()) }),
        )
        .layer(layer)
}

/// Serves [`app`] behind `layer` on loopback: its address, and the layer's
/// counters.
async fn serve(layer: ProfilingLayer) -> (SocketAddr, ProfilingStats) {
    let stats = layer.stats();
    (http_support::serve_axum(app(layer)).await, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_profiles_a_valid_token_and_nothing_else() {
    let (lines, _serial) = global();
    let (addr, stats) = serve(ProfilingLayer::new(keys())).await;
    let url = format!("http://{addr}/");

    let (base, headers) = new_token();
    let profiled = get_with(&url, &token_headers(&headers)).await;
    let unprofiled = get_with(&url, &[]).await;
    assert_eq!(profiled, (200, "hello 55".to_owned()));
    assert_eq!(
        profiled, unprofiled,
        "same response with and without a token"
    );

    let all = lines.lines();
    let points = tree(&all, base, base);
    assert_hello_tree(&points, base);
    assert!(
        all.iter().all(|l| l.contains(&base.to_string())),
        "the unprofiled request wrote nothing: {all:#?}"
    );
    assert!(
        !all.iter()
            .any(|l| l.contains("http.path") || l.contains(headers.trace_hmac())),
        "method and path are off by default, headers never recorded"
    );
    assert_eq!(
        (
            stats.requests_profiled(),
            stats.requests_without_token(),
            stats.tokens_refused()
        ),
        (1, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_point_lasts_until_the_body_is_finished() {
    let (lines, _serial) = global();
    let addr = http_support::serve_axum(app(ProfilingLayer::new(keys()))).await;
    let (base, (status, body)) = get_profiled(&format!("http://{addr}/slow")).await;
    assert_eq!((status, body.as_str()), (200, "chunk chunk "));

    let points = tree(&lines.lines(), base, base);
    let root = only(&points, "wsgi");
    assert!(
        root.duration >= 0.29,
        "root ends with the body (two chunks of 150 ms), lasted {}",
        root.duration
    );
    let chunks: Vec<_> = points.values().filter(|p| p.name == "body-chunk").collect();
    assert_eq!(
        chunks.len(),
        2,
        "the body is polled inside the root: {points:#?}"
    );
    assert!(chunks.iter().all(|c| c.parent_id == root.trace_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_and_path_when_asked_never_the_query() {
    let (lines, _serial) = global();
    // A root of another name is a span of the service's own making.
    let layer = ProfilingLayer::new(keys()).with_make_span(|request: &http::Request<_>| {
        tracing::info_span!(
            "api-request",
            http.method = request.method().as_str(),
            http.path = request.uri().path(),
        )
    });
    let addr = http_support::serve_axum(app(layer)).await;
    let (base, headers) = new_token();
    let (status, _) = get_with(
        &format!("http://{addr}/?password=hunter2"),
        &token_headers(&headers),
    )
    .await;
    assert_eq!(status, 200);
    let all = lines.lines();
    let points = tree(&all, base, base);
    let root = only(&points, "api-request");
    let start = all
        .iter()
        .find(|l| l.contains(&root.trace_id.to_string()) && l.ends_with('}'))
        .expect("root start line with fields");
    assert!(
        start.contains(r#""http.method":"GET""#) && start.contains(r#""http.path":"/""#),
        "{start}"
    );
    assert!(!all.iter().any(|l| l.contains("hunter2")), "{all:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_server_through_hyper_util() {
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let (lines, _serial) = global();
    let layer = ProfilingLayer::new(keys());
    let stats = layer.stats();
    let service = layer.layer(tower::service_fn(
        |_request: http::Request<hyper::body::Incoming>| async {
            let n = load().await;
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(format!(
                "hyper {n}"
            )))))
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let service = service.clone();
            tokio::spawn(async move {
                let hyper_service =
                    hyper::service::service_fn(move |request| service.clone().oneshot(request));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), hyper_service)
                    .await;
            });
        }
    });

    let url = format!("http://{addr}/");
    let (base, answer) = get_profiled(&url).await;
    assert_eq!(answer, (200, "hyper 55".to_owned()));
    assert_eq!(get_with(&url, &[]).await, (200, "hyper 55".to_owned()));
    server.abort();

    let all = lines.lines();
    let points = tree(&all, base, base);
    let root = only(&points, "wsgi");
    assert_eq!(only(&points, "load").parent_id, root.trace_id);
    assert_eq!(points.len(), 4, "{points:#?}");
    assert_eq!(all.len(), 8, "only the profiled request wrote lines");
    assert_eq!(
        (stats.requests_profiled(), stats.requests_without_token()),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_token_is_served_normally_and_writes_nothing() {
    let (lines, _serial) = global();
    let (addr, stats) = serve(ProfilingLayer::new(keys())).await;
    let url = format!("http://{addr}/");
    let expected = get_with(&url, &[]).await;
    assert_eq!(expected.0, 200);

    http_support::assert_every_token_refused(&url, &stats, &lines, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_is_served_unprofiled_and_counted() {
    let (lines, _serial) = global();
    let (addr, stats) = serve(
        ProfilingLayer::new(keys())
            .with_limit(ProfileLimit::unlimited().with_max_concurrent(Some(1))),
    )
    .await;
    http_support::assert_over_the_limit_is_served_unprofiled(
        |path| format!("http://{addr}{path}"),
        &stats,
        &lines,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_middleware_joins_two_services_into_one_tree() {
    let (lines, _serial) = global();
    let (addr_b, stats_b) = serve(ProfilingLayer::new(keys())).await;

    let client = profiling_client();
    let url_b = format!("http://{addr_b}/");
    let app_a = Router::new()
        .route(
            "/",
            get(move || {
                let client = client.clone();
                let url_b = url_b.clone();
                async move { format!("A got {}", text_through(&client, &url_b).await) }
                    .instrument(tracing::info_span!("call-b"))
            }),
        )
        .layer(ProfilingLayer::new(keys()));
    let addr_a = http_support::serve_axum(app_a).await;

    let url_a = format!("http://{addr_a}/");
    let (base, answer) = get_profiled(&url_a).await;
    assert_eq!(answer, (200, "A got hello 55".to_owned()));
    // Outside a profile the middleware adds nothing: B sees no token.
    assert_eq!(
        get_with(&url_a, &[]).await,
        (200, "A got hello 55".to_owned())
    );
    assert_eq!(
        (
            stats_b.requests_profiled(),
            stats_b.requests_without_token()
        ),
        (1, 1)
    );

    let all = lines.lines();
    let points = tree(&all, base, base);
    let roots: Vec<_> = points.values().filter(|p| p.name == "wsgi").collect();
    assert_eq!(roots.len(), 2, "one root per service");
    let call_b = only(&points, "call-b");
    let http = only(&points, "http");
    assert_eq!(
        http.parent_id, call_b.trace_id,
        "client point under the caller's span"
    );
    let root_b = roots
        .iter()
        .find(|r| r.parent_id == http.trace_id)
        .expect("B's root hangs under A's client point");
    assert_eq!(only(&points, "load").parent_id, root_b.trace_id);
    assert_eq!(
        points.len(),
        3 + 4,
        "A: wsgi, call-b, http; B: wsgi, load, db_query, compute"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_body_and_failed_call_end_the_root_and_free_the_permit() {
    use http_body_util::BodyExt as _;

    let (lines, _serial) = global();
    let layer = ProfilingLayer::new(keys())
        .with_limit(ProfileLimit::unlimited().with_max_concurrent(Some(1)));
    let stats = layer.stats();
    let mut service = layer.layer(tower::service_fn(|request: http::Request<()>| async move {
        let _work = tracing::info_span!("handler").entered();
        if request.uri().path() == "/fail" {
            return Err("inner service failed");
        }
        Ok(http::Response::new(SlowBody::default()))
    }));

    // A client that goes away: the body is dropped unread.
    let (dropped, token) = new_token();
    let response = call(&mut service, "/", &token).await.expect("response");
    assert!(response.body().is_profiled());
    drop(response);
    let points = tree(&lines.lines(), dropped, dropped);
    assert_eq!(only(&points, "wsgi").parent_id, dropped);

    // A failing inner service: the error passes through, the root ends.
    let (failed, token) = new_token();
    let error = call(&mut service, "/fail", &token)
        .await
        .expect_err("the inner error");
    assert_eq!(error, "inner service failed");
    let points = tree(&lines.lines(), failed, failed);
    assert_eq!(points.len(), 2, "wsgi and handler: {points:#?}");

    // Both freed the only permit: a third profiled request gets it, and its
    // body read to the end is complete.
    let (third, token) = new_token();
    let response = call(&mut service, "/", &token).await.expect("response");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"chunk chunk ");
    tree(&lines.lines(), third, third);
    assert_eq!(
        (stats.requests_profiled(), stats.tokens_over_limit()),
        (3, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_warning_interval() {
    let (lines, _serial) = global();
    let (addr, stats) = serve(
        ProfilingLayer::new(keys())
            // A refill and an interval of 5 s: the burst below and the
            // requests of one interval have room on a busy machine.
            .with_limit(ProfileLimit::unlimited().with_rate(Some(Rate::new(0.2, 2))))
            .with_warn_interval(Duration::from_secs(5)),
    )
    .await;
    let url = format!("http://{addr}/");

    let mut bases = Vec::new();
    for _ in 0..3 {
        let (base, token) = new_token();
        bases.push(base);
        assert_eq!(get_with(&url, &token_headers(&token)).await.0, 200);
    }
    assert_eq!(
        (stats.requests_profiled(), stats.tokens_over_limit()),
        (2, 1),
        "a burst of 2"
    );
    let all = lines.lines();
    tree(&all, bases[0], bases[0]);
    tree(&all, bases[1], bases[1]);
    assert!(!all.iter().any(|l| l.contains(&bases[2].to_string())));

    let forged = tracing_osprofiler::Signer::new("other", tracing_osprofiler::HmacAlgorithm::Sha1)
        .sign(&tracing_osprofiler::TraceInfo::new_request());
    for _ in 0..5 {
        assert_eq!(get_with(&url, &token_headers(&forged)).await.0, 200);
    }
    assert_eq!(
        warnings(),
        1,
        "over-limit and bad tokens share one summary per interval"
    );
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    assert_eq!(get_with(&url, &token_headers(&forged)).await.0, 200);
    assert_eq!(
        warnings(),
        2,
        "the next summary once the interval has passed"
    );
    assert_eq!(stats.tokens_bad_signature(), 6);
}
