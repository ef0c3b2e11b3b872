//! A mixed fleet: the real Python osprofiler 4.4.0, exporting with its OWN
//! `otlp` driver (OpenTelemetry SDK, OTLP/HTTP), and Rust services with the
//! `otlp` sink, all to one collector. One request through both is one
//! trace with one root and every parent resolved, whichever side calls.
//!
//! The Python peers are required: without them these tests fail with the
//! reason (support::python), they never pass silently.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tracing_osprofiler::Id;

use super::otlp::{get_with, rust_service};
use crate::support::http::{new_token, KEY};
use crate::support::otlp::{named, one_trace_of, Collector, Node, Received};
use crate::support::python;

const CLIENT: &str = include_str!("../python/otlp_client.py");

/// Starts the Python WSGI service exporting to `collector` with
/// osprofiler's own otlp driver; its port.
fn python_service(collector: &Collector, prefix: Option<&str>) -> (python::PythonService, u16) {
    let endpoint = collector.connection_string();
    let mut args = vec![
        "--hmac-keys",
        KEY,
        "--connection-string",
        &endpoint,
        "--project",
        "glance",
        "--service",
        "api",
        "--host",
        "py-host",
    ];
    if let Some(prefix) = prefix {
        args.extend(["--prefix", prefix]);
    }
    // The SDK's batch processor sends every 100 ms instead of 5 s.
    let service = python::PythonService::wsgi(&args, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]);
    let port = service.port;
    (service, port)
}

fn by_service<'a>(spans: &'a [Received], service: &str) -> Vec<&'a Received> {
    spans.iter().filter(|s| s.service == service).collect()
}

#[tokio::test]
async fn a_rust_service_calling_python_osprofiler_is_one_trace() {
    let collector = Collector::start();
    let (_python, port) = python_service(&collector, Some("fleet"));
    let node = Node::new(
        collector.sink().with_service_name_prefix("fleet"),
        "nova",
        "api",
    );
    let _default = node.enter();
    let service = rust_service(Some(format!("http://127.0.0.1:{port}/hello"))).await;
    let url = format!("http://{service}/");

    // Unprofiled first: neither side may export anything for it.
    let (status, body) = get_with(&url, None).await;
    assert_eq!(status, 200);
    assert!(body.ends_with("downstream: python ok"), "{body}");

    let (base, token) = new_token();
    let (status, _) = get_with(&url, Some(&token)).await;
    assert_eq!(status, 200);
    node.flush(Duration::from_secs(10));

    // Rust: wsgi, handle, db_query, http; Python: wsgi, python-work,
    // python-db.
    let spans = collector.wait_for(7, Duration::from_secs(30));
    // The Python side may still send a straggler: give it its batch delay.
    std::thread::sleep(Duration::from_millis(300));
    let spans = if collector.spans().len() > spans.len() {
        collector.spans()
    } else {
        spans
    };
    // One trace (the unprofiled request added none), one root.
    let by_id = one_trace_of(&collector, &spans, 7, base);

    // Both sides name their service as osprofiler does, prefix included.
    let rust = by_service(&spans, "fleet-nova-api");
    let python = by_service(&spans, "fleet-glance-api");
    assert_eq!((rust.len(), python.len()), (4, 3), "{spans:#?}");

    let root = spans.iter().find(|s| s.parent().is_none()).expect("root");
    assert_eq!(root.service, "fleet-nova-api");
    assert_eq!(root.span.name, "WSGI_GET_/");
    let client = named(&spans, "REQUESTS_GET_127.0.0.1");
    assert_eq!(client.service, "fleet-nova-api");
    let python_root = named(&spans, "WSGI_GET_/hello");
    assert_eq!(python_root.service, "fleet-glance-api");
    assert_eq!(python_root.span.kind, SpanKind::Server as i32);
    assert_eq!(
        python_root.parent(),
        Some(client.span_id()),
        "the Python service's root hangs under the Rust client span"
    );
    assert_eq!(python_root.str_attr("http.path"), Some("/hello"));
    let work = named(&spans, "python-work");
    assert_eq!(work.parent(), Some(python_root.span_id()));
    let db = named(&spans, "python-db");
    assert_eq!(db.parent(), Some(work.span_id()));
    // Every parent is in the trace (one_trace checked), and the Rust
    // client span hangs under the Rust handler.
    assert_eq!(by_id[&client.parent().expect("parent")].span.name, "handle");
}

#[tokio::test]
async fn python_osprofiler_calling_a_rust_service_is_one_trace() {
    let collector = Collector::start();
    let node = collector.node();
    let _default = node.enter();
    let service = rust_service(None).await;

    let connection_string = collector.connection_string();
    let url = format!("http://{service}/");
    let output = tokio::task::spawn_blocking(move || {
        python::run_python(
            CLIENT,
            &[KEY, &connection_string, "cinder", "volume", "py-host", &url],
        )
    })
    .await
    .expect("python client");
    let reply: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the client prints JSON");
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["body"], "rust ok (3)");
    let base = Id::parse(reply["base_id"].as_str().expect("base_id")).expect("uuid");
    node.flush(Duration::from_secs(10));

    // Python: its `requests` call; Rust: wsgi, handle, db_query.
    let spans = collector.wait_for(4, Duration::from_secs(30));
    let by_id = one_trace_of(&collector, &spans, 4, base);

    let root = spans.iter().find(|s| s.parent().is_none()).expect("root");
    assert_eq!(root.service, "cinder-volume", "the Python call is the root");
    assert_eq!(root.span.name, "REQUESTS_GET_127.0.0.1");
    assert_eq!(root.span.kind, SpanKind::Client as i32);
    let rust_root = named(&spans, "WSGI_GET_/");
    assert_eq!(rust_root.service, "nova-api");
    assert_eq!(
        rust_root.parent(),
        Some(root.span_id()),
        "the Rust root hangs under the Python client span"
    );
    assert_eq!(
        by_id[&named(&spans, "db_query").parent().expect("parent")]
            .span
            .name,
        "handle"
    );
}
