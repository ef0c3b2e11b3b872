//! Interop with the real Python osprofiler 4.4.0 over loopback sockets:
//! a Python client profiles a Rust service, and the Rust client profiles a
//! Python WSGI service run with osprofiler's own `WsgiMiddleware`.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::support::http as http_support;
use crate::support::python as common;

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use http_support::{global, only, tree, KEY};
use tracing::Instrument as _;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::reqwest::ProfilingMiddleware;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Id, Profile, ProfileExt as _, Signer};

const CLIENT: &str = include_str!("../python/http_client.py");

#[tracing::instrument]
async fn rust_work() -> &'static str {
    tokio::time::sleep(Duration::from_millis(2)).await;
    "rust ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_osprofiler_client_profiles_a_rust_service() {
    let (lines, _serial) = global();
    let layer = ProfilingLayer::new(HmacKeys::from_comma_separated(KEY));
    let stats = layer.stats();
    let app = Router::new()
        .route("/", get(|| async { rust_work().await }))
        .layer(layer);
    let addr = http_support::serve_axum(app).await;

    let url = format!("http://{addr}/");
    let output = tokio::task::spawn_blocking(move || common::run_python(CLIENT, &[KEY, &url]))
        .await
        .expect("python client");
    let reply: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("client prints JSON");
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["body"], "rust ok");
    assert_eq!(
        reply["headers"],
        serde_json::json!(["X-Trace-HMAC", "X-Trace-Info"])
    );
    let base = Id::parse(reply["base_id"].as_str().expect("base_id")).expect("uuid");
    let client_point = Id::parse(reply["trace_id"].as_str().expect("trace_id")).expect("uuid");

    // The Rust root hangs under the Python client's point.
    let points = tree(&lines.lines(), base, client_point);
    let root = only(&points, "wsgi");
    assert_eq!(root.parent_id, client_point);
    assert_eq!(only(&points, "rust_work").parent_id, root.trace_id);
    assert_eq!(stats.requests_profiled(), 1);
}

fn start_wsgi_service(notifications: &std::path::Path) -> (common::PythonService, u16) {
    let service = common::PythonService::wsgi(
        &[
            "--hmac-keys",
            KEY,
            "--notifications",
            &notifications.to_string_lossy(),
        ],
        &[],
    );
    let port = service.port;
    (service, port)
}

#[derive(Debug)]
struct Notification {
    name: String,
    base_id: Id,
    parent_id: Id,
    trace_id: Id,
}

fn read_notifications(path: &std::path::Path, expected: usize) -> Vec<Notification> {
    // The service writes its stop notifications after the response is sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let parsed: Vec<Notification> = text
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                let id = |key: &str| Id::parse(v[key].as_str().expect(key)).expect("uuid");
                Notification {
                    name: v["name"].as_str().expect("name").to_owned(),
                    base_id: id("base_id"),
                    parent_id: id("parent_id"),
                    trace_id: id("trace_id"),
                }
            })
            .collect();
        if parsed.len() >= expected || Instant::now() > deadline {
            return parsed;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_profiles_a_python_wsgi_service() {
    let (lines, _serial) = global();
    let dir = tempfile::tempdir().expect("tempdir");
    let notifications = dir.path().join("notifications.jsonl");
    let (_service, port) = start_wsgi_service(&notifications);
    let url = format!("http://127.0.0.1:{port}/hello?q=1");
    let client = ProfilingMiddleware::new()
        .client_builder(reqwest::Client::builder())
        .expect("a reqwest client")
        .build();

    // Unprofiled first: the Python service must notify nothing.
    let body = client
        .get(&url)
        .send()
        .await
        .expect("call")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "python ok");

    let profile = Profile::new(Signer::new(KEY, HmacAlgorithm::Sha1));
    let root = profile.start(|| tracing::info_span!("rust-job"));
    let base = root.point_ids().expect("a trace point").base_id;
    let body = client
        .get(&url)
        .send()
        .instrument(root.clone())
        .await
        .expect("call")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "python ok");
    drop(root);

    let points = tree(&lines.lines(), base, base);
    let job = only(&points, "rust-job");
    let http = only(&points, "http");
    assert_eq!(http.parent_id, job.trace_id);

    // wsgi, python-work, python-db: a start and a stop each.
    let notes = read_notifications(&notifications, 6);
    let names: Vec<_> = notes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "wsgi-start",
            "python-work-start",
            "python-db-start",
            "python-db-stop",
            "python-work-stop",
            "wsgi-stop"
        ],
        "the unprofiled call notified nothing: {notes:#?}"
    );
    assert!(notes.iter().all(|n| n.base_id == base), "{notes:#?}");
    let wsgi = &notes[0];
    assert_eq!(
        wsgi.parent_id, http.trace_id,
        "the Python root hangs under our client point"
    );
    assert_eq!(notes[1].parent_id, wsgi.trace_id);
    assert_eq!(notes[2].parent_id, notes[1].trace_id);
}
