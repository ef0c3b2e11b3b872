//! Interop with the real Python osprofiler over loopback sockets, as for
//! the tower middleware: the Python client profiles an actix-web service,
//! and an actix handler's awc call profiles a Python WSGI service run with
//! osprofiler's own `WsgiMiddleware`, whose points hang under the Rust
//! call.

use crate::middleware::{get_with, keys, token_headers};
use crate::server::ActixServer;
use crate::support::http as http_support;
use crate::support::python as common;

use std::time::{Duration, Instant};

use actix_web::web;
use http_support::{global, new_token, only, tree, KEY};
use tracing_osprofiler::actix::{AwcProfiling, ProfilingMiddleware};
use tracing_osprofiler::Id;

const CLIENT: &str = include_str!("../python/http_client.py");

#[tracing::instrument]
async fn rust_work() -> &'static str {
    tokio::time::sleep(Duration::from_millis(2)).await;
    "rust ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_osprofiler_client_profiles_an_actix_service() {
    let (lines, _serial) = global();
    let middleware = ProfilingMiddleware::new(keys());
    let stats = middleware.stats();
    let server = ActixServer::start(middleware, |config| {
        config.route("/", web::get().to(rust_work));
    });

    let url = server.url("/");
    let output = tokio::task::spawn_blocking(move || common::run_python(CLIENT, &[KEY, &url]))
        .await
        .expect("python client");
    let reply: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("client prints JSON");
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["body"], "rust ok");
    let base = Id::parse(reply["base_id"].as_str().expect("base_id")).expect("uuid");
    let client_point = Id::parse(reply["trace_id"].as_str().expect("trace_id")).expect("uuid");

    // The Rust root hangs under the Python client's point.
    let points = tree(&lines.lines(), base, client_point);
    let root = only(&points, "wsgi");
    assert_eq!(root.parent_id, client_point);
    assert_eq!(only(&points, "rust_work").parent_id, root.trace_id);
    assert_eq!(stats.requests_profiled(), 1);
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
async fn an_actix_handler_profiles_a_python_wsgi_service_through_awc() {
    let (lines, _serial) = global();
    let dir = tempfile::tempdir().expect("tempdir");
    let notifications = dir.path().join("notifications.jsonl");
    let python = common::PythonService::wsgi(
        &[
            "--hmac-keys",
            KEY,
            "--notifications",
            &notifications.to_string_lossy(),
        ],
        &[],
    );
    let target = format!("http://127.0.0.1:{}/hello?q=1", python.port);
    let server = ActixServer::start(ProfilingMiddleware::new(keys()), move |config| {
        let target = target.clone();
        config.route(
            "/",
            web::get().to(move || {
                let target = target.clone();
                async move {
                    let client = awc::Client::builder().wrap(AwcProfiling::new()).finish();
                    match client.get(&target).send().await {
                        Ok(mut response) => {
                            let body = response.body().await.unwrap_or_default();
                            String::from_utf8_lossy(&body).into_owned()
                        }
                        Err(error) => format!("call failed: {error}"),
                    }
                }
            }),
        );
    });

    // Unprofiled first: the Python service must notify nothing.
    assert_eq!(
        get_with(&server.url("/"), &[]).await,
        (200, "python ok".to_owned())
    );
    let (base, token) = new_token();
    assert_eq!(
        get_with(&server.url("/"), &token_headers(&token)).await,
        (200, "python ok".to_owned())
    );

    let points = tree(&lines.lines(), base, base);
    let root = only(&points, "wsgi");
    let http = only(&points, "http");
    assert_eq!(http.parent_id, root.trace_id);

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
        "the Python root hangs under the Rust client point"
    );
    assert_eq!(notes[1].parent_id, wsgi.trace_id);
    assert_eq!(notes[2].parent_id, notes[1].trace_id);
}
