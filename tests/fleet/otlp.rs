//! Rust services to an in-process OTLP collector: every profiled request is
//! one trace whose spans carry exactly the ids, names, kinds, attributes,
//! parents and times osprofiler's `otlp` driver would give them, checked
//! against the Mistral log the same writer wrote.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode as OtlpStatus};
use reqwest_middleware::ClientWithMiddleware;
use tracing_osprofiler::format::Phase;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::writer::ProfileWriter;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Id, Profile, Signer, TraceHeaders, TraceInfo};

use crate::support::http::{self as support_http, new_token, profiling_client, serve_axum, KEY};
use crate::support::otlp::{named, one_trace, one_trace_of, Collector, Node, Received};

/// A profiled Rust service: `GET /` does a `handle` point with a
/// `db_query` under it, then calls `downstream` (if any) through the
/// reqwest middleware; `GET /fail` answers 500; `GET /error` records an
/// error with `#[instrument(err)]` and answers 400.
pub(crate) async fn rust_service(downstream: Option<String>) -> SocketAddr {
    let client = profiling_client();
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let client = client.clone();
                let downstream = downstream.clone();
                async move { handle(client, downstream).await }
            }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/error",
            get(|| async {
                match failing_work().await {
                    Ok(()) => (StatusCode::OK, "fine"),
                    Err(_) => (StatusCode::BAD_REQUEST, "refused"),
                }
            }),
        )
        .layer(ProfilingLayer::new(HmacKeys::from_comma_separated(KEY)).with_method_and_path(true));
    serve_axum(app).await
}

#[tracing::instrument(skip_all)]
async fn handle(client: ClientWithMiddleware, downstream: Option<String>) -> String {
    let rows = db_query("SELECT 1").await;
    match downstream {
        Some(url) => {
            let response = client.get(&url).send().await.expect("downstream call");
            assert_eq!(response.status(), 200, "downstream {url}");
            let body = response.text().await.expect("downstream body");
            format!("rust ok ({rows}); downstream: {body}")
        }
        None => format!("rust ok ({rows})"),
    }
}

#[tracing::instrument(fields(rows = tracing::field::Empty))]
async fn db_query(statement: &'static str) -> usize {
    tokio::time::sleep(Duration::from_millis(2)).await;
    tracing::Span::current().record("rows", 3);
    3
}

#[tracing::instrument(err)]
async fn failing_work() -> Result<(), String> {
    Err("disk on fire".to_owned())
}

/// GETs `url` with `token`'s headers, if any; the status and body
/// ([`support_http::get_with`], for callers whose token is optional).
pub(crate) async fn get_with(url: &str, token: Option<&TraceHeaders>) -> (u16, String) {
    let headers = token.map_or_else(Vec::new, support_http::token_headers);
    support_http::get_with(url, &headers).await
}

fn str_attr<'a>(span: &'a Received, key: &str) -> &'a str {
    span.str_attr(key)
        .unwrap_or_else(|| panic!("{}: no string attribute {key}", span.span.name))
}

/// Checks every span against the point of the same `trace_id` in the log
/// written by the same writer: ids, parent, start and end.
fn matches_the_log(node: &Node, spans: &[Received]) {
    let points = node.log_points();
    assert_eq!(spans.len(), points.len(), "one span per point");
    let starts: HashMap<Id, i64> = points
        .all
        .iter()
        .filter(|line| line.phase == Phase::Start)
        .map(|line| (line.ids.trace_id, line.micros))
        .collect();
    let by_span: HashMap<u64, &Received> = spans.iter().map(|s| (s.span_id(), s)).collect();
    for point in points.by_trace.values() {
        let span = by_span
            .get(&point.ids.trace_id.low_u64())
            .unwrap_or_else(|| panic!("no span for {point:?}"));
        assert_eq!(
            span.span.trace_id,
            point.ids.base_id.as_uuid().as_bytes().to_vec(),
            "trace id = base_id"
        );
        if point.ids.parent_id == point.ids.base_id {
            assert_eq!(span.parent(), None, "{point:?}");
        } else {
            assert_eq!(
                span.parent(),
                Some(point.ids.parent_id.low_u64()),
                "{point:?}"
            );
        }
        assert_eq!(span.span.flags & 0xff, 0x01, "sampled");
        let start_ns = u64::try_from(starts[&point.ids.trace_id]).unwrap() * 1000;
        assert_eq!(span.span.start_time_unix_nano, start_ns, "{point:?}");
        let length = span.span.end_time_unix_nano - span.span.start_time_unix_nano;
        // The log keeps the duration in microseconds.
        let logged = (point.duration * 1e9).round() as i128;
        assert!(
            (i128::from(length) - logged).abs() <= 1_000,
            "{point:?}: span lasts {length} ns, log says {logged} ns"
        );
    }
}

#[tokio::test]
async fn a_request_through_two_rust_services_is_one_trace_as_osprofiler_maps_it() {
    let collector = Collector::start();
    let node = collector.node();
    let _default = node.enter();
    let inner = rust_service(None).await;
    let outer = rust_service(Some(format!("http://{inner}/"))).await;

    let (base, token) = new_token();
    let (status, body) = get_with(&format!("http://{outer}/"), Some(&token)).await;
    assert_eq!(status, 200);
    assert!(body.contains("downstream: rust ok"), "{body}");
    node.flush(Duration::from_secs(10));

    // wsgi, handle, db_query, http in the outer service; wsgi, handle,
    // db_query in the inner one.
    let spans = collector.wait_for(7, Duration::from_secs(10));
    let by_id = one_trace_of(&collector, &spans, 7, base);
    matches_the_log(&node, &spans);

    for span in &spans {
        assert_eq!(span.service, "nova-api");
        assert_eq!(span.host.as_deref(), Some("test-host"));
        assert_eq!(span.scope, "tracing-osprofiler");
    }
    let roots: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.name == "WSGI_GET_/")
        .collect();
    assert_eq!(roots.len(), 2);
    let outer_root = roots.iter().find(|s| s.parent().is_none()).expect("root");
    let inner_root = roots.iter().find(|s| s.parent().is_some()).expect("inner");
    let client = named(&spans, "REQUESTS_GET_127.0.0.1");
    assert_eq!(client.span.kind, SpanKind::Client as i32);
    assert_eq!(
        inner_root.parent(),
        Some(client.span_id()),
        "callee under the call"
    );
    let client_parent = &by_id[&client.parent().expect("client parent")];
    assert_eq!(client_parent.span.name, "handle");
    assert_eq!(client_parent.parent(), Some(outer_root.span_id()));

    for root in [outer_root, inner_root] {
        assert_eq!(root.span.kind, SpanKind::Server as i32);
        assert_eq!(str_attr(root, "http.method"), "GET");
        assert_eq!(str_attr(root, "http.path"), "/");
        assert_eq!(str_attr(root, "http.scheme"), "http");
        assert_eq!(root.attr("http.query"), None, "the query is off by default");
        assert_eq!(root.int_attr("status_code"), Some(200));
        assert_eq!(root.span.status, None);
    }
    assert_eq!(str_attr(client, "http.method"), "GET");
    assert_eq!(str_attr(client, "http.hostname"), "127.0.0.1");
    assert_eq!(client.int_attr("http.port"), Some(i64::from(inner.port())));
    assert_eq!(client.int_attr("status_code"), Some(200));
    let queries: Vec<&Received> = spans.iter().filter(|s| s.span.name == "db_query").collect();
    assert_eq!(queries.len(), 2);
    for query in queries {
        assert_eq!(query.span.kind, SpanKind::Internal as i32);
        assert_eq!(str_attr(query, "statement"), "SELECT 1");
        assert_eq!(query.int_attr("rows"), Some(3), "a field recorded later");
        let parent = &by_id[&query.parent().expect("parent")];
        assert_eq!(parent.span.name, "handle");
    }

    let stats = node.otlp();
    assert_eq!((stats.written, stats.dropped, stats.failed), (7, 0, 0));
    assert_eq!(node.writer.stats().file().expect("file").written, 14);
}

#[tokio::test]
async fn failed_requests_and_recorded_errors_are_error_spans() {
    let collector = Collector::start();
    let node = collector.node();
    let _default = node.enter();
    let service = rust_service(None).await;

    let (_, token) = new_token();
    assert_eq!(
        get_with(&format!("http://{service}/fail"), Some(&token))
            .await
            .0,
        500
    );
    let (_, token) = new_token();
    assert_eq!(
        get_with(&format!("http://{service}/error"), Some(&token))
            .await
            .0,
        400
    );
    node.flush(Duration::from_secs(10));
    let spans = collector.wait_for(3, Duration::from_secs(10));
    assert_eq!(spans.len(), 3, "{spans:#?}");

    let failed = named(&spans, "WSGI_GET_/fail");
    let status = failed.span.status.as_ref().expect("a status");
    assert_eq!(status.code, OtlpStatus::Error as i32);
    assert_eq!(status.message, "HTTP status 500");
    assert_eq!(failed.attr("error"), Some(&Value::BoolValue(true)));
    assert_eq!(failed.int_attr("status_code"), Some(500));
    let log = &failed.span.events;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].name, "log");
    assert_eq!(log[0].time_unix_nano, failed.span.end_time_unix_nano);
    let event_attr = |key| crate::support::otlp::attr(&log[0].attributes, key).cloned();
    assert_eq!(
        event_attr("error.kind"),
        Some(Value::StringValue("http_status".into()))
    );
    assert_eq!(
        event_attr("message"),
        Some(Value::StringValue("HTTP status 500".into()))
    );

    // A 400 is the client's fault: not a failed span; the work that
    // recorded the error is.
    let refused = named(&spans, "WSGI_GET_/error");
    assert_eq!(refused.span.status, None);
    assert_eq!(refused.attr("error"), None);
    let work = named(&spans, "failing_work");
    assert_eq!(work.parent(), Some(refused.span_id()));
    let status = work.span.status.as_ref().expect("a status");
    assert_eq!(status.code, OtlpStatus::Error as i32);
    assert_eq!(status.message, "disk on fire");
    assert_eq!(work.attr("error"), Some(&Value::BoolValue(true)));
    let event_attr =
        |key| crate::support::otlp::attr(&work.span.events[0].attributes, key).cloned();
    assert_eq!(
        event_attr("error.kind"),
        Some(Value::StringValue("error".into()))
    );
    assert_eq!(
        event_attr("message"),
        Some(Value::StringValue("disk on fire".into()))
    );
}

#[tokio::test]
async fn unprofiled_and_forged_requests_export_nothing() {
    let collector = Collector::start();
    let node = collector.node();
    let _default = node.enter();
    let service = rust_service(None).await;
    let url = format!("http://{service}/");

    assert_eq!(get_with(&url, None).await.0, 200);
    let base = Id::new_v4();
    let forged =
        Signer::new("NOT_THE_KEY", HmacAlgorithm::Sha1).sign(&TraceInfo::new(base, Some(base)));
    assert_eq!(get_with(&url, Some(&forged)).await.0, 200);
    let (_, valid) = new_token();
    let tampered: [(&str, &[u8]); 2] = [
        ("X-Trace-Info", valid.trace_info().as_bytes()),
        ("X-Trace-HMAC", b"0000000000000000000000000000000000000000"),
    ];
    assert_eq!(support_http::get_with(&url, &tampered).await.0, 200);

    node.flush(Duration::from_secs(10));
    assert_eq!(collector.requests(), 0, "nothing was sent");
    assert_eq!(node.otlp().written, 0);
    assert_eq!(node.log_points().len(), 0);
}

/// Points made from code, outside any HTTP request: a root `job` with
/// `children` points under it.
pub(crate) fn job(children: usize) {
    let profile = Profile::new(Signer::new(KEY, HmacAlgorithm::Sha1));
    let root = profile.start(|| tracing::info_span!("job"));
    let _entered = root.enter();
    for step in 0..children {
        let _step = tracing::info_span!("step", step).entered();
    }
}

#[test]
fn connection_strings_gzip_headers_and_a_service_name_prefix() {
    let collector = Collector::start();
    // The connection string as a service's configuration gives it.
    let node = Node::with_builder(
        ProfileWriter::builder()
            .with_connection_string(&collector.connection_string())
            .expect("otlp:// connection string"),
        "glance",
        "registry",
    );
    tracing::dispatcher::with_default(&node.dispatch, || job(2));
    node.flush(Duration::from_secs(10));
    let spans = collector.wait_for(3, Duration::from_secs(10));
    assert!(spans.iter().all(|s| s.service == "glance-registry"));
    assert_eq!(collector.gzipped(), 0, "no gzip by default");

    let collector = Collector::start();
    let otlp = collector
        .sink()
        .with_gzip(true)
        .with_header("Authorization", "Bearer test-token")
        .with_service_name_prefix("prod");
    let node = Node::new(otlp, "glance", "registry");
    tracing::dispatcher::with_default(&node.dispatch, || job(2));
    node.flush(Duration::from_secs(10));
    let spans = collector.wait_for(3, Duration::from_secs(10));
    assert_eq!(spans.len(), 3);
    one_trace(&spans);
    assert!(spans.iter().all(|s| s.service == "prod-glance-registry"));
    assert!(collector.gzipped() >= 1);
    assert!(
        collector.malformed().is_empty(),
        "{:?}",
        collector.malformed()
    );
    assert!(collector.headers().iter().all(|h| h
        .get("authorization")
        .is_some_and(|v| v == "Bearer test-token")));
    assert!(collector
        .headers()
        .iter()
        .all(|h| h.get("user-agent").is_some_and(|v| v
            .to_str()
            .unwrap_or_default()
            .starts_with("tracing-osprofiler/"))));
}

#[test]
fn retry_after_is_honoured() {
    let collector = Collector::start();
    collector.script([crate::support::otlp::Reply::Status(503, Some("1".into()))]);
    let otlp = collector.sink().with_backoff(Duration::from_millis(1));
    let node = Node::new(otlp, "nova", "api");
    tracing::dispatcher::with_default(&node.dispatch, || job(0));
    node.flush(Duration::from_secs(10));
    let arrivals = collector.arrivals();
    assert_eq!(arrivals.len(), 2, "one refusal, one retry");
    // A lower bound only: the retry cannot come before the collector's
    // Retry-After, whatever the machine's speed.
    assert!(
        arrivals[1] - arrivals[0] >= Duration::from_secs(1),
        "retried after {:?}",
        arrivals[1] - arrivals[0]
    );
    let stats = node.otlp();
    assert_eq!((stats.written, stats.dropped, stats.failed), (1, 0, 0));
}

#[test]
fn an_otlp_only_writer_queues_stops_alone() {
    // A span is made from its stop: with no sink that writes starts, the
    // profiled threads do not queue them. Seen through a writer that was
    // shut down: the layer counts every event it tried to hand over.
    let collector = Collector::start();
    let (otlp_only, guard) = ProfileWriter::builder()
        .with_otlp(collector.sink())
        .build()
        .unwrap();
    drop(guard);
    let dir = tempfile::tempdir().unwrap();
    let (file_too, guard_too) = ProfileWriter::builder()
        .with_otlp(collector.sink())
        .with_file(tracing_osprofiler::writer::RollingFile::new(dir.path()))
        .build()
        .unwrap();
    drop(guard_too);
    for (writer, events_per_point) in [(otlp_only, 1), (file_too, 2)] {
        let layer = tracing_osprofiler::OsProfilerLayer::new(writer);
        let stats = layer.stats();
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || job(4));
        assert_eq!(stats.points_started(), 5);
        assert_eq!(stats.events_refused(), 5 * events_per_point);
    }
}
