//! The actix-web middleware on a real server: the tree of a signed request,
//! the same root as the tower middleware's, every invalid token served
//! untouched and counted, a streamed body inside the root, handler errors,
//! the limit, and concurrent requests.

use crate::server::ActixServer;
use crate::support::http as http_support;

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use http_support::{assert_hello_tree, get_profiled, global, only, tree, SlowChunks, KEY};
pub use http_support::{get_with, keys, token_headers};
use tracing_osprofiler::actix::ProfilingMiddleware;
use tracing_osprofiler::limit::ProfileLimit;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Id, Signer, TraceInfo};

/// [`http_support::load`] on actix's runtime.
async fn load() -> u64 {
    http_support::load(|work| actix_web::rt::spawn(work)).await
}

async fn hello() -> String {
    format!("hello {}", load().await)
}

/// [`SlowChunks`] as an actix `MessageBody`.
#[derive(Default)]
struct SlowBody(SlowChunks);

impl MessageBody for SlowBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.0.poll_chunk(cx).map(|chunk| chunk.map(Ok))
    }
}

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(hello))
        .route(
            "/slow",
            web::get().to(|| async { HttpResponse::Ok().body(SlowBody::default()) }),
        )
        .route(
            "/fail",
            web::get().to(|| async {
                let _ = load().await;
                Err::<String, _>(actix_web::error::ErrorInternalServerError("boom"))
            }),
        )
        .route(
            "/missing",
            web::get().to(|| async {
                Err::<String, _>(actix_web::error::ErrorNotFound("no such thing"))
            }),
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_is_one_tree_under_a_wsgi_root() {
    let (lines, _serial) = global();
    let middleware = ProfilingMiddleware::new(keys()).with_method_and_path(true);
    let stats = middleware.stats();
    let server = ActixServer::start(middleware, routes);

    let (base, answer) = get_profiled(&server.url("/?secret=1")).await;
    assert_eq!(answer, (200, "hello 55".to_owned()));
    let all = lines.lines();
    let points = tree(&all, base, base);
    let root = assert_hello_tree(&points, base);
    assert!(root.duration >= only(&points, "load").duration);
    // The same root fields as the tower middleware's; never the query.
    let start = all
        .iter()
        .find(|l| l.contains(&root.trace_id.to_string()) && l.contains("wsgi-start"))
        .expect("root start line");
    assert!(start.contains(r#""http.method":"GET""#), "{start}");
    assert!(start.contains(r#""http.path":"/""#), "{start}");
    assert!(!start.contains("secret"), "{start}");
    assert_eq!(stats.requests_profiled(), 1);

    // Without a token: served the same, nothing written, counted.
    lines.clear();
    assert_eq!(
        get_with(&server.url("/"), &[]).await,
        (200, "hello 55".to_owned())
    );
    assert_eq!(lines.lines(), Vec::<String>::new());
    assert_eq!(stats.requests_without_token(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_keys_and_sha256_verify() {
    let (lines, _serial) = global();
    let keys = HmacKeys::new(["OLD_KEY", KEY]).with_sha256(true);
    let server = ActixServer::start(ProfilingMiddleware::new(keys), routes);
    for (key, algorithm) in [
        ("OLD_KEY", HmacAlgorithm::Sha1),
        (KEY, HmacAlgorithm::Sha256),
    ] {
        let base = Id::new_v4();
        let token = Signer::new(key, algorithm).sign(&TraceInfo::new(base, Some(base)));
        assert_eq!(
            get_with(&server.url("/"), &token_headers(&token)).await,
            (200, "hello 55".to_owned())
        );
        let points = tree(&lines.lines(), base, base);
        assert_eq!(points.len(), 4, "{key} {algorithm:?}: {points:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tokens_are_served_untouched_and_counted() {
    let (lines, _serial) = global();
    let middleware = ProfilingMiddleware::new(keys());
    let stats = middleware.stats();
    let server = ActixServer::start(middleware, routes);
    let url = server.url("/");
    let expected = (200, "hello 55".to_owned());

    http_support::assert_every_token_refused(&url, &stats, &lines, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_covers_a_streamed_body() {
    let (lines, _serial) = global();
    let server = ActixServer::start(ProfilingMiddleware::new(keys()), routes);
    let (base, answer) = get_profiled(&server.url("/slow")).await;
    assert_eq!(answer, (200, "chunk chunk ".to_owned()));
    // The root's stop is written when the body ends, after the response.
    crate::support::eventually_async("the root's stop written", || {
        lines.lines().iter().any(|l| l.contains("wsgi-stop"))
    })
    .await;
    let points = tree(&lines.lines(), base, base);
    let root = only(&points, "wsgi");
    assert!(root.duration >= 0.29, "root lasted {}", root.duration);
    let chunks: Vec<_> = points.values().filter(|p| p.name == "body-chunk").collect();
    assert_eq!(chunks.len(), 2, "{points:#?}");
    assert!(chunks.iter().all(|c| c.parent_id == root.trace_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_is_an_actix_response_and_ends_the_root() {
    let (lines, _serial) = global();
    let server = ActixServer::start(ProfilingMiddleware::new(keys()), routes);
    let (base, (status, body)) = get_profiled(&server.url("/fail")).await;
    assert_eq!((status, body.as_str()), (500, "boom"));
    let points = tree(&lines.lines(), base, base);
    let root = only(&points, "wsgi");
    assert_eq!(only(&points, "load").parent_id, root.trace_id);

    let (base, (status, _)) = get_profiled(&server.url("/missing")).await;
    assert_eq!(status, 404);
    tree(&lines.lines(), base, base);
    // An unknown route is actix's own 404, profiled all the same.
    let (base, (status, _)) = get_profiled(&server.url("/nowhere")).await;
    assert_eq!(status, 404);
    tree(&lines.lines(), base, base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_is_served_unprofiled_and_counted() {
    let (lines, _serial) = global();
    let middleware = ProfilingMiddleware::new(keys())
        .with_limit(ProfileLimit::unlimited().with_max_concurrent(Some(1)));
    let stats = middleware.stats();
    let server = ActixServer::start(middleware, routes);
    http_support::assert_over_the_limit_is_served_unprofiled(
        |path| server.url(path),
        &stats,
        &lines,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_each_get_their_own_tree() {
    let (lines, _serial) = global();
    let middleware = ProfilingMiddleware::new(keys()).with_limit(ProfileLimit::unlimited());
    let stats = middleware.stats();
    let server = ActixServer::start(middleware, routes);
    let url = server.url("/");
    let mut tasks = Vec::new();
    for i in 0..60 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                assert_eq!(get_with(&url, &[]).await, (200, "hello 55".to_owned()));
                None
            } else {
                let (base, answer) = get_profiled(&url).await;
                assert_eq!(answer, (200, "hello 55".to_owned()));
                Some(base)
            }
        }));
    }
    let mut bases = Vec::new();
    for task in tasks {
        bases.extend(task.await.expect("request"));
    }
    assert_eq!(bases.len(), 40);
    let all = lines.lines();
    for base in &bases {
        let points = tree(&all, *base, *base);
        assert_eq!(points.len(), 4, "{points:#?}");
        only(&points, "wsgi");
    }
    assert_eq!(all.len(), 40 * 4 * 2, "no line of another request");
    assert_eq!(stats.requests_profiled(), 40);
    assert_eq!(stats.requests_without_token(), 20);
}
