//! A Rust service A calls a Python service B run under osprofiler's own
//! `WsgiMiddleware` with osprofiler's own Redis driver; both write into one
//! store, and osprofiler's own CLI rebuilds one tree from it.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::writer::Redis;
use tracing_osprofiler::HmacKeys;

use crate::support::http::{new_token, profiling_client, KEY};
use crate::support::python::{run_python, PythonService};
use crate::support::redis::RedisServer;
use crate::{key, osprofiler_show, Service};

fn start_python_b(connection_string: &str) -> (PythonService, u16) {
    // osprofiler's own Redis driver, `info.host` its own (the host name).
    let service = PythonService::wsgi(
        &["--hmac-keys", KEY, "--connection-string", connection_string],
        &[],
    );
    let port = service.port;
    (service, port)
}

#[tracing::instrument]
async fn call_b(url: String) -> String {
    let client = profiling_client();
    let response = client.get(&url).send().await.expect("call B");
    response.text().await.expect("B's body")
}

/// The node's name, project, service and host, as osprofiler shows them.
fn who(node: &Value) -> (String, String, String, String) {
    let info = &node["info"];
    let text = |k: &str| info[k].as_str().unwrap_or("?").to_owned();
    (text("name"), text("project"), text("service"), text("host"))
}

fn children(node: &Value) -> &Vec<Value> {
    node["children"].as_array().expect("children")
}

/// The one child of `node` whose name is `name`.
fn child<'a>(node: &'a Value, name: &str) -> &'a Value {
    let found: Vec<&Value> = children(node)
        .iter()
        .filter(|c| c["info"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "children named {name} of {}", node["info"]);
    found[0]
}

#[test]
fn osprofilers_cli_rebuilds_one_tree_from_a_rust_and_a_python_service() {
    let server = RedisServer::start();
    let (_b, b_port) = start_python_b(&server.url());
    let mut a = Service::new(Redis::new(&server.url()).unwrap());
    let (base, headers) = new_token();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = a.in_service(|| {
        runtime.block_on(async {
            let b_url = format!("http://127.0.0.1:{b_port}/b?x=1");
            let app = Router::new()
                .route("/a", get(move || call_b(b_url.clone())))
                .layer(
                    ProfilingLayer::new(HmacKeys::from_comma_separated(KEY))
                        .with_method_and_path(true)
                        .with_query(true),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            reqwest::Client::new()
                .get(format!("http://{addr}/a?y=2"))
                .header("X-Trace-Info", headers.trace_info())
                .header("X-Trace-HMAC", headers.trace_hmac())
                .send()
                .await
                .expect("call A")
                .text()
                .await
                .expect("A's body")
        })
    });
    assert_eq!(body, "python ok");
    a.flush();
    let stats = a.shut_down();
    let redis = stats
        .sink(tracing_osprofiler::writer::SinkKind::Redis)
        .unwrap();
    assert_eq!((redis.dropped, redis.failed), (0, 0), "{redis:?}");
    let file = stats.file().unwrap();
    assert_eq!(redis.written, file.written);

    // B's events came from the Python driver: 3 points, 6 events, beside
    // A's in the one list.
    let docs: Vec<Value> = server
        .lrange(&key(base))
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(docs.len() as u64, redis.written + 6);
    // A's request root and B's carry the same shape of request info.
    let start_of = |service: &str| {
        docs.iter()
            .find(|d| d["service"] == service && d["name"] == "wsgi-start")
            .unwrap_or_else(|| panic!("{service}'s wsgi-start"))
    };
    let (a_root, b_root) = (start_of("rust-a"), start_of("python-b"));
    let request_keys = |d: &Value| {
        d["info"]["request"]
            .as_object()
            .expect("info.request")
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(request_keys(a_root), request_keys(b_root));
    assert_eq!(
        a_root["info"]["request"],
        serde_json::json!({"path": "/a", "query": "y=2", "method": "GET", "scheme": "http"})
    );
    let top_keys = |d: &Value| d.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(top_keys(a_root), top_keys(b_root));

    // osprofiler's CLI: one root, A's; B's wsgi under A's client point.
    let report = osprofiler_show(&server.url(), base);
    let roots = children(&report);
    assert_eq!(roots.len(), 1, "one tree: {report:#}");
    let a_wsgi = &roots[0];
    assert_eq!(
        who(a_wsgi),
        (
            "wsgi".into(),
            "rust-project".into(),
            "rust-a".into(),
            "rust-host".into()
        )
    );
    let call = child(a_wsgi, "call_b");
    let http = child(call, "http");
    let b_wsgi = child(http, "wsgi");
    // osprofiler's `info.host` is `socket.gethostname()`, whatever the
    // driver was told.
    let python_host = run_python("import socket; print(socket.gethostname())", &[]);
    let python_host = String::from_utf8_lossy(&python_host.stdout)
        .trim()
        .to_owned();
    assert_eq!(
        who(b_wsgi),
        (
            "wsgi".into(),
            "python-project".into(),
            "python-b".into(),
            python_host
        )
    );
    // osprofiler cuts names at the first '-': python-work shows as python.
    let work = child(b_wsgi, "python");
    child(work, "python");
    assert_eq!(report["stats"]["wsgi"]["count"], 2, "{}", report["stats"]);
    // Every point has its start and its stop, and no exception.
    fn check(node: &Value) {
        let info = &node["info"];
        let started = info["started"].as_i64().expect("started");
        let finished = info["finished"].as_i64().expect("finished");
        assert!(started <= finished, "{info}");
        assert_eq!(info["exception"], "None", "{info}");
        for c in children(node) {
            check(c);
        }
    }
    check(a_wsgi);
}
