//! Tail capture behind the actix-web middleware, as behind the tower one:
//! unsigned requests kept when slow or failed (a handler's error included),
//! fast ones leaving nothing.

use crate::middleware::keys;
use crate::server::ActixServer;
use crate::support::http as http_support;

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use http_support::{global, only, tree};
use tracing_osprofiler::actix::ProfilingMiddleware;
use tracing_osprofiler::format::{parse_line, Phase};
use tracing_osprofiler::{CapturePolicy, Id};

#[tracing::instrument]
async fn work(delay_ms: u64) {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
}

async fn handler(request: HttpRequest) -> actix_web::Result<HttpResponse> {
    let query = request.query_string();
    let delay = query
        .strip_prefix("delay_ms=")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    work(delay).await;
    if query == "fail=1" {
        return Err(actix_web::error::ErrorInternalServerError("failed"));
    }
    Ok(HttpResponse::Ok().body("rust ok"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_are_kept_when_slow_or_failed_and_leave_nothing_otherwise() {
    let (lines, _serial) = global();
    let capture = CapturePolicy::new()
        .with_keep_slower_than(Some(Duration::from_millis(150)))
        .with_keep_errors(true)
        .build();
    let stats = capture.stats();
    let middleware = ProfilingMiddleware::new(keys()).with_capture(capture);
    let profiled = middleware.stats();
    let server = ActixServer::start(middleware, |config| {
        config.route("/", web::get().to(handler));
    });
    let client = reqwest::Client::new();
    let get = |query: &'static str| {
        let (client, url) = (client.clone(), server.url(&format!("/?{query}")));
        async move { client.get(url).send().await.expect("call").status() }
    };

    assert_eq!(get("delay_ms=0").await, 200);
    assert_eq!(get("delay_ms=200").await, 200);
    assert_eq!(get("fail=1").await, 500);
    // The root closes when the response body is done: give the server a
    // moment after the client has read it.
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert_eq!(stats.captured(), 3);
    assert_eq!(stats.kept_slow(), 1);
    assert_eq!(stats.kept_error(), 1);
    assert_eq!(stats.discarded(), 1);
    assert_eq!(profiled.requests_profiled(), 0);
    let lines = lines.lines();
    let roots: Vec<(Id, String)> = lines
        .iter()
        .filter_map(|text| {
            let line = parse_line(text.as_bytes()).expect("a line");
            (line.phase == Phase::Start && line.name == "wsgi")
                .then(|| (line.ids.base_id, line.extra.into_owned()))
        })
        .collect();
    assert_eq!(roots.len(), 2, "the fast one left nothing: {lines:#?}");
    for (base, _) in &roots {
        let points = tree(&lines, *base, *base);
        let root = only(&points, "wsgi");
        assert_eq!(only(&points, "work").parent_id, root.trace_id);
    }
    for reason in ["slow", "error"] {
        let field = format!(r#""capture.kept":"{reason}""#);
        assert!(
            roots.iter().any(|(_, extra)| extra.contains(&field)),
            "{reason}: {roots:?}"
        );
    }
}
