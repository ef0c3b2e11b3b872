//! `examples/actix_service.rs`, run as a user runs it: two instances, the
//! first calling the second through `--downstream`, a signed request
//! profiled across both logs, tail capture keeping a slow and a failed
//! unsigned request and not a fast one, the log flushed on Ctrl-C.

use crate::middleware::get_with;
use crate::support::examples::example;
use crate::support::http as http_support;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_support::{get_profiled, only, tree};

/// A running `actix_service`; interrupted (as Ctrl-C does) when dropped.
struct Service {
    child: Child,
    url: String,
}

impl Service {
    fn start(log_dir: &Path, extra: &[&str]) -> Service {
        let mut child = Command::new(example("actix_service"))
            .args(["--listen", "127.0.0.1:0", "--hmac-keys", http_support::KEY])
            .arg("--log-dir")
            .arg(log_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the example says where it listens");
        let url = first
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
            .to_owned();
        Service { child, url }
    }

    /// Ctrl-C, then waits: the example flushes its log on the way out.
    fn interrupt(mut self) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child's pid, with a valid signal.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let status = self.child.wait().expect("the example exits");
        assert!(status.success(), "the example exited with {status}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the log directory") {
        let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("a log");
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actix_example_profiles_across_two_instances_and_captures_slow_requests() {
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let b = Service::start(b_dir.path(), &[]);
    let a = Service::start(
        a_dir.path(),
        &[
            "--downstream",
            &b.url,
            "--keep-slower-than",
            "150ms",
            "--keep-errors",
        ],
    );

    let (base, (status, body)) = get_profiled(&a.url).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("hello, user 42"), "{body}");
    assert!(body.contains("downstream answered 200"), "{body}");
    // Unsigned: a fast request leaves nothing, a slow one is kept by
    // tail capture.
    assert_eq!(get_with(&a.url, &[]).await.0, 200);
    assert_eq!(
        get_with(&format!("{}?delay_ms=200", a.url), &[]).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.interrupt();
    b.interrupt();

    let mut lines = log_lines(a_dir.path());
    let a_lines = lines.len();
    lines.extend(log_lines(b_dir.path()));
    let points = tree(&lines, base, base);
    let roots: Vec<_> = points.values().filter(|p| p.name == "wsgi").collect();
    assert_eq!(roots.len(), 2, "A's root and B's: {points:#?}");
    let http = only(&points, "http");
    let b_root = roots
        .iter()
        .find(|r| r.parent_id == http.trace_id)
        .expect("B's root hangs under A's awc call");
    assert!(roots
        .iter()
        .any(|r| r.parent_id == base && r.trace_id != b_root.trace_id));
    assert_eq!(
        points.values().filter(|p| p.name == "load_user").count(),
        2,
        "both instances did the work"
    );

    // A's log: the signed request and the slow unsigned one (kept by
    // capture); the fast unsigned one left nothing.
    let a_roots: Vec<_> = lines[..a_lines]
        .iter()
        .filter(|l| l.contains(" wsgi-start"))
        .collect();
    assert_eq!(a_roots.len(), 2, "{a_roots:#?}");
    assert_eq!(
        a_roots
            .iter()
            .filter(|l| l.contains("capture.kept"))
            .count(),
        1,
        "{a_roots:#?}"
    );
}

#[test]
fn help_lists_the_flags_of_actix_service() {
    let output = Command::new(example("actix_service"))
        .arg("--help")
        .output()
        .expect("run the example");
    assert!(output.status.success());
    let usage = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--log-dir",
        "--hmac-keys",
        "--connection-string",
        "--project",
        "--service",
        "--downstream",
        "--keep-slower-than",
        "--keep-errors",
    ] {
        assert!(usage.contains(flag), "{flag} missing from {usage}");
    }
    let refused = Command::new(example("actix_service"))
        .args(["--keep-slower-than", "soon"])
        .output()
        .expect("run the example");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--keep-slower-than"),
        "a bad value is named"
    );
}
