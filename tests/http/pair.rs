//! Rust service A calls Rust service B over loopback; each has its own
//! subscriber and its own rolling log directory, and the two logs together
//! form one tree under the caller's `base_id`.
//!
//! Each service runs on its own thread with a current-thread tokio runtime
//! and a thread-default subscriber, so its spans (and only its spans) reach
//! its own log, as if A and B were two processes.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::support::http as http_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http_support::{new_token, profiling_client, text_through, KEY};
use tracing_osprofiler::format::{parse_line, Phase};
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{HmacKeys, Id, OsProfilerLayer};
use tracing_subscriber::prelude::*;

#[tracing::instrument]
async fn b_lookup() -> &'static str {
    tokio::time::sleep(Duration::from_millis(3)).await;
    "B"
}

#[tracing::instrument(skip_all)]
async fn a_handle(client: reqwest_middleware::ClientWithMiddleware, url: String) -> String {
    format!("A+{}", text_through(&client, &url).await)
}

/// Runs `app` on its own thread, runtime and subscriber, logging to `dir`,
/// until `stop` receives. Returns the bound address.
fn spawn_service(
    dir: PathBuf,
    app: impl FnOnce() -> Router + Send + 'static,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let (addr_tx, addr_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let (writer, guard) = RollingFile::new(&dir).build().expect("writer");
        let subscriber = tracing_subscriber::registry().with(OsProfilerLayer::new(writer));
        let _default = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send addr");
            axum::serve(listener, app())
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
                .expect("serve");
        });
        drop(runtime);
        // Flushes every queued line before the test reads the files.
        drop(guard);
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("service started");
    (addr, thread)
}

struct Point {
    name: String,
    parent_id: Id,
    stops: usize,
}

/// The points of `base_id` in the files of `dir`, by trace id.
fn read_log(dir: &Path, base_id: Id) -> (BTreeMap<Id, Point>, usize) {
    let mut points = BTreeMap::new();
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("log dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("log file");
        for raw in text.lines() {
            total += 1;
            let line = parse_line(raw.as_bytes()).expect("a valid line");
            if line.ids.base_id != base_id {
                continue;
            }
            let point = points.entry(line.ids.trace_id).or_insert(Point {
                name: line.name.to_string(),
                parent_id: line.ids.parent_id,
                stops: 0,
            });
            assert_eq!(point.parent_id, line.ids.parent_id);
            if line.phase == Phase::Stop {
                point.stops += 1;
            }
        }
    }
    (points, total)
}

#[test]
fn two_services_two_logs_one_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let keys = HmacKeys::from_comma_separated(KEY);

    let (stop_b, stop_b_rx) = tokio::sync::oneshot::channel();
    let keys_b = keys.clone();
    let (addr_b, thread_b) = spawn_service(
        dir_b.clone(),
        move || {
            Router::new()
                .route("/", get(b_lookup))
                .layer(ProfilingLayer::new(keys_b))
        },
        stop_b_rx,
    );
    let (stop_a, stop_a_rx) = tokio::sync::oneshot::channel();
    let url_b = format!("http://{addr_b}/");
    let (addr_a, thread_a) = spawn_service(
        dir_a.clone(),
        move || {
            let client = profiling_client();
            Router::new()
                .route("/", get(move || a_handle(client.clone(), url_b.clone())))
                .layer(ProfilingLayer::new(keys))
        },
        stop_a_rx,
    );

    let (base, token) = new_token();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("http://{addr_a}/");
        let plain = client.get(&url).send().await.expect("plain").text().await;
        assert_eq!(plain.expect("body"), "A+B");
        let mut request = client.get(&url);
        for (name, value) in token.iter() {
            request = request.header(name, value);
        }
        let profiled = request.send().await.expect("profiled").text().await;
        assert_eq!(profiled.expect("body"), "A+B");
    });
    stop_a.send(()).expect("stop A");
    thread_a.join().expect("A ends");
    stop_b.send(()).expect("stop B");
    thread_b.join().expect("B ends");

    let (a, total_a) = read_log(&dir_a, base);
    let (b, total_b) = read_log(&dir_b, base);
    let names = |points: &BTreeMap<Id, Point>| {
        let mut names: Vec<_> = points.values().map(|p| p.name.clone()).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&a),
        ["a_handle", "http", "wsgi"],
        "A's log holds A's points"
    );
    assert_eq!(names(&b), ["b_lookup", "wsgi"], "B's log holds B's points");
    assert_eq!(total_a, 6, "the unprofiled call wrote nothing in A");
    assert_eq!(total_b, 4, "the unprofiled call wrote nothing in B");

    // One tree across both logs: every point has its stop and a parent in
    // either log, up to A's root whose parent is the base id.
    let all: BTreeMap<&Id, &Point> = a.iter().chain(b.iter()).collect();
    for (id, point) in &all {
        assert_eq!(point.stops, 1, "{}", point.name);
        if point.parent_id != base {
            assert!(
                all.contains_key(&point.parent_id),
                "{} {id}: orphan",
                point.name
            );
        }
    }
    let roots: Vec<_> = all.values().filter(|p| p.parent_id == base).collect();
    assert_eq!(roots.len(), 1, "one root: A's wsgi");
    let (http_id, _) = a
        .iter()
        .find(|(_, p)| p.name == "http")
        .expect("client point");
    let b_root = b.values().find(|p| p.name == "wsgi").expect("B's root");
    assert_eq!(
        &b_root.parent_id, http_id,
        "B's root hangs under A's client point"
    );
}
