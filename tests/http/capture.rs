//! Tail capture behind the tower middleware: unsigned requests kept when
//! slow or failed, fast ones leaving nothing; the real Python osprofiler
//! client's signed requests profiled as before, its forged ones never taken
//! for signed.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::support::eventually_async;
use crate::support::http as http_support;
use crate::support::python_client::python_client_get;

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use http_support::{
    assert_unsigned_kept_when_slow_or_failed, capture_slow_or_failed, global, only, roots, tree,
    KEY,
};
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::{Capture, CapturePolicy, HmacKeys};

#[tracing::instrument]
async fn work(delay_ms: u64) -> &'static str {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    "rust ok"
}

async fn handler(Query(query): Query<HashMap<String, String>>) -> (StatusCode, &'static str) {
    let delay = query
        .get("delay_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = work(delay).await;
    match query.get("fail") {
        Some(_) => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
        None => (StatusCode::OK, body),
    }
}

async fn capturing_service(capture: Capture) -> (std::net::SocketAddr, ProfilingLayer) {
    let layer = ProfilingLayer::new(HmacKeys::from_comma_separated(KEY)).with_capture(capture);
    let app = Router::new().route("/", get(handler)).layer(layer.clone());
    (http_support::serve_axum(app).await, layer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_are_kept_when_slow_or_failed_and_leave_nothing_otherwise() {
    let (lines, _serial) = global();
    let capture = capture_slow_or_failed();
    let stats = capture.stats();
    let (addr, layer) = capturing_service(capture).await;
    let url = |query: &str| format!("http://{addr}/?{query}");
    assert_unsigned_kept_when_slow_or_failed(url, &stats, &layer.stats(), &lines).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_signed_is_profiled_as_before_and_forged_is_only_captured() {
    let (lines, _serial) = global();
    let capture = CapturePolicy::new()
        .with_keep_slower_than(Some(Duration::from_millis(150)))
        .build();
    let stats = capture.stats();
    let (addr, layer) = capturing_service(capture).await;
    let run = |key: &'static str, query: &'static str| async move {
        let reply = python_client_get(key, format!("http://{addr}/?{query}")).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply
    };

    // Signed with the service's key, fast: profiled and written, as today.
    let reply = run(KEY, "delay_ms=0").await;
    let (base, client_point) = (reply.base_id, reply.trace_id);
    // The root closes when the body is done, maybe after the reply is read.
    eventually_async("the signed root written", || {
        lines.lines().iter().any(|l| l.contains(" wsgi-stop"))
    })
    .await;
    let points = tree(&lines.lines(), base, client_point);
    assert_eq!(only(&points, "wsgi").parent_id, client_point);
    let (_, extra) = &roots(&lines.lines())[0];
    assert!(!extra.contains("capture"), "signed, not captured: {extra}");
    assert_eq!(layer.stats().requests_profiled(), 1);
    assert_eq!(stats.captured(), 0);
    lines.clear();

    // Signed with another key (forged), fast: captured, discarded.
    run("NOT_THE_KEY", "delay_ms=0").await;
    eventually_async("the forged fast request decided", || stats.discarded() == 1).await;
    assert!(lines.lines().is_empty(), "{:#?}", lines.lines());
    assert_eq!(layer.stats().tokens_bad_signature(), 1);

    // Forged and slow: kept by capture, under a base_id of its own, never
    // the forged one.
    let forged = run("NOT_THE_KEY", "delay_ms=200").await.base_id;
    eventually_async("the forged slow request kept and written", || {
        stats.kept_slow() == 1 && lines.lines().iter().any(|l| l.contains(" wsgi-stop"))
    })
    .await;
    let lines = lines.lines();
    let roots = roots(&lines);
    assert_eq!(roots.len(), 1, "{lines:#?}");
    let (kept, extra) = &roots[0];
    assert_ne!(*kept, forged);
    assert!(extra.contains(r#""capture.kept":"slow""#), "{extra}");
    tree(&lines, *kept, *kept);
    assert_eq!(stats.captured(), 2);
    assert_eq!(stats.kept_slow(), 1);
    assert_eq!(stats.discarded(), 1);
    assert_eq!(layer.stats().requests_profiled(), 1);
}

#[cfg(feature = "metrics")]
#[test]
fn the_capture_counters_are_published() {
    use crate::support::recorder::Published;
    use tracing_osprofiler::metrics::MetricsPublisher;

    let (lines, _serial) = global();
    let capture = CapturePolicy::new()
        .with_keep_slower_than(Some(Duration::from_millis(200)))
        .with_max_points_per_request(0)
        .build();
    let publisher = MetricsPublisher::new().with_capture(capture.stats());
    drop(capture.start(|| tracing::info_span!("fast")));
    capture.start(|| tracing::info_span!("slow")).in_scope(|| {
        let _child = tracing::info_span!("child").entered();
        std::thread::sleep(Duration::from_millis(250));
    });
    assert_eq!(roots(&lines.lines()).len(), 0, "not named wsgi");
    assert_eq!(lines.lines().len(), 2, "the slow root, without its child");

    let published = Published::from(&publisher);
    let get = |name, label| published.get(name, label);
    assert_eq!(get("osprofiler_capture_captured", None), 2.0);
    assert_eq!(
        get(
            "osprofiler_capture_requests",
            Some(("outcome", "kept_slow"))
        ),
        1.0
    );
    assert_eq!(
        get(
            "osprofiler_capture_requests",
            Some(("outcome", "discarded"))
        ),
        1.0
    );
    assert_eq!(
        get(
            "osprofiler_capture_requests",
            Some(("outcome", "rate_limited"))
        ),
        0.0
    );
    assert_eq!(get("osprofiler_capture_points_truncated", None), 1.0);
    assert_eq!(
        get(
            "osprofiler_capture_not_captured",
            Some(("reason", "over_budget"))
        ),
        0.0
    );
    assert_eq!(get("osprofiler_capture_bytes", None), 0.0);
}
