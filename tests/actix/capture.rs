//! Tail capture behind the actix-web middleware, as behind the tower one:
//! unsigned requests kept when slow or failed (a handler's error included),
//! fast ones leaving nothing.

use crate::middleware::keys;
use crate::server::ActixServer;
use crate::support::http as http_support;

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use http_support::{assert_unsigned_kept_when_slow_or_failed, capture_slow_or_failed, global};
use tracing_osprofiler::actix::ProfilingMiddleware;

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
    let capture = capture_slow_or_failed();
    let stats = capture.stats();
    let middleware = ProfilingMiddleware::new(keys()).with_capture(capture);
    let profiled = middleware.stats();
    let server = ActixServer::start(middleware, |config| {
        config.route("/", web::get().to(handler));
    });
    let url = |query: &str| server.url(&format!("/?{query}"));
    assert_unsigned_kept_when_slow_or_failed(url, &stats, &profiled, &lines).await;
}
