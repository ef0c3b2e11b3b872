//! The real Python osprofiler on either side of a Rust HTTP service, run and
//! checked the same way whatever framework serves the Rust side (tower on
//! axum, actix-web, the poem recipe), so that each framework's test keeps
//! only how its service is started:
//!
//! - [`python_client_get`] runs osprofiler's HTTP client
//!   (`tests/python/http_client.py`), and [`assert_python_client_profiles`]
//!   checks that the service's tree hangs under the client's point;
//! - [`WsgiPeer`] is a Python WSGI service under osprofiler's own
//!   `WsgiMiddleware` (`tests/python/wsgi_service.py`) that records its
//!   notifications, and checks that they hang under the Rust client's point.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing_osprofiler::Id;

use super::http::{only, tree, Collector, KEY};
use super::python::{run_python, PythonService};

const CLIENT: &str = include_str!("../python/http_client.py");

/// What the handler of a service under [`assert_python_client_profiles`]
/// answers when it is [`rust_work`].
pub const RUST_BODY: &str = "rust ok";

/// A handler's work, one span: what the Python client's request must be
/// seen doing under the service's root.
#[tracing::instrument]
pub async fn rust_work() -> &'static str {
    tokio::time::sleep(Duration::from_millis(2)).await;
    RUST_BODY
}

/// What the Python client printed about its one call.
#[derive(Debug)]
pub struct ClientReply {
    /// The HTTP status the service answered.
    pub status: u16,
    /// The body the service answered.
    pub body: String,
    /// The names of the headers osprofiler made for the call, sorted.
    pub headers: Vec<String>,
    /// The base_id of the client's profile.
    pub base_id: Id,
    /// The client's point: the parent the service's root must have.
    pub trace_id: Id,
}

/// Runs the Python client (`profiler.init(key)`, a point, a signed GET to
/// `url`) on a blocking thread; panics with its stderr if it fails.
pub async fn python_client_get(key: &'static str, url: String) -> ClientReply {
    let output = tokio::task::spawn_blocking(move || run_python(CLIENT, &[key, &url]))
        .await
        .expect("python client");
    let reply: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("client prints JSON");
    let id = |name: &str| {
        Id::parse(
            reply[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in {reply}")),
        )
        .unwrap_or_else(|e| panic!("{name} in {reply}: {e}"))
    };
    ClientReply {
        status: reply["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_else(|| panic!("status in {reply}")),
        body: reply["body"]
            .as_str()
            .unwrap_or_else(|| panic!("body in {reply}"))
            .to_owned(),
        headers: serde_json::from_value(reply["headers"].clone())
            .unwrap_or_else(|e| panic!("headers in {reply}: {e}")),
        base_id: id("base_id"),
        trace_id: id("trace_id"),
    }
}

/// Sends the Python client, signed with [`KEY`], to `url`, a service whose
/// handler answers `body` and does one span `work`, and checks the tree
/// the service wrote into `lines`: its root `wsgi` hangs under the client's
/// point, and `work` under the root.
pub async fn assert_python_client_profiles(lines: &Collector, url: String, body: &str, work: &str) {
    let reply = python_client_get(KEY, url).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, body),
        "{reply:?}"
    );
    assert_eq!(reply.headers, ["X-Trace-HMAC", "X-Trace-Info"], "{reply:?}");

    // The root may close just after the reply was read (when its body ends).
    let base = reply.base_id.to_string();
    crate::support::eventually_async("the service's root written", || {
        lines
            .lines()
            .iter()
            .any(|l| l.contains(&base) && l.contains(" wsgi-stop"))
    })
    .await;
    let points = tree(&lines.lines(), reply.base_id, reply.trace_id);
    let root = only(&points, "wsgi");
    assert_eq!(root.parent_id, reply.trace_id);
    assert_eq!(only(&points, work).parent_id, root.trace_id);
}

/// One osprofiler notification of the Python service.
#[derive(Debug)]
struct Notification {
    name: String,
    base_id: Id,
    parent_id: Id,
    trace_id: Id,
}

/// A Python WSGI service under osprofiler's `WsgiMiddleware`, accepting
/// [`KEY`], its notifications appended to a file; killed when dropped.
pub struct WsgiPeer {
    service: PythonService,
    notifications: PathBuf,
    _dir: tempfile::TempDir,
}

impl WsgiPeer {
    /// What the service answers.
    pub const BODY: &'static str = "python ok";

    /// Starts the service and waits until it serves.
    pub fn start() -> WsgiPeer {
        let dir = tempfile::tempdir().expect("tempdir");
        let notifications = dir.path().join("notifications.jsonl");
        let service = PythonService::wsgi(
            &[
                "--hmac-keys",
                KEY,
                "--notifications",
                &notifications.to_string_lossy(),
            ],
            &[],
        );
        WsgiPeer {
            service,
            notifications,
            _dir: dir,
        }
    }

    /// The URL a Rust client calls.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hello?q=1", self.service.port)
    }

    /// Checks one profiled call to this service, made after any number of
    /// unprofiled ones: the Rust side's tree of `base` in `lines` has the
    /// point `root` and the client's point `http` under it, and the Python
    /// service notified exactly that call's points (`wsgi`, `python-work`,
    /// `python-db`), its root under the Rust `http` point.
    pub fn assert_profiled_under(&self, lines: &Collector, base: Id, root: &str) {
        // The root may close just after the response was read.
        let (base_text, stop) = (base.to_string(), format!(" {root}-stop"));
        crate::support::eventually("the caller's root written", || {
            lines
                .lines()
                .iter()
                .any(|l| l.contains(&base_text) && l.contains(&stop))
        });
        let points = tree(&lines.lines(), base, base);
        let root = only(&points, root);
        let http = only(&points, "http");
        assert_eq!(http.parent_id, root.trace_id);

        let notes = self.notifications(6);
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

    /// The notifications so far, once there are `expected` or
    /// [`EVENTUALLY`](crate::support::EVENTUALLY) passed: the service
    /// writes its stop notifications after the response is sent. Only
    /// whole lines: one may be read while Python is writing it.
    fn notifications(&self, expected: usize) -> Vec<Notification> {
        let deadline = Instant::now() + crate::support::EVENTUALLY;
        loop {
            let text = std::fs::read_to_string(&self.notifications).unwrap_or_default();
            let parsed: Vec<Notification> = text
                .split_inclusive('\n')
                .filter(|line| line.ends_with('\n'))
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
}
