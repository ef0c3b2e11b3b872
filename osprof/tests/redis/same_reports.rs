//! A request written both to a log file and to Redis gives the same
//! reports from either source.

use crate::redis_support::RedisServer;
use crate::{osprof, rust_requests};

/// The same JSON, numbers equal to 1e-12 relative.
fn assert_close(a: &serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "{x} != {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{a} != {b}");
            x.iter().zip(y).for_each(|(x, y)| assert_close(x, y));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
            x.values()
                .zip(y.values())
                .for_each(|(x, y)| assert_close(x, y));
        }
        _ => assert_eq!(a, b),
    }
}

/// A report from the log, its source named as the store is (`list` has a
/// column of the logs each request came from).
fn named_as_store(report: &[u8], log: &str, url: &str) -> String {
    String::from_utf8_lossy(report).replace(log, url)
}

#[test]
fn every_report_from_the_store_equals_the_report_from_the_log() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (bases, log) = rust_requests(&server.url(), dir.path(), 40);
    let url = server.url();
    let store = ["--connection-string", url.as_str()];

    for report in [
        vec!["list"],
        vec!["list", "--format", "json"],
        vec!["list", "--sort", "points", "--format", "csv"],
        vec!["rank"],
        vec!["rank", "--self", "--percentiles"],
        // The busy times: the stop line's `{"busy":…}`, the store's `info.busy`.
        vec!["rank", "--busy", "--sort", "busy"],
        vec!["rank", "--busy", "--format", "json"],
        vec!["rank", "--format", "json", "--name", "d*"],
    ] {
        let from_log = osprof(&[report.as_slice(), &[log.as_str()]].concat());
        let from_store = osprof(&[report.as_slice(), &store].concat());
        let from_log = named_as_store(&from_log.stdout, &log, &url);
        let from_store = String::from_utf8_lossy(&from_store.stdout);
        if report.contains(&"--busy") && report.contains(&"json") {
            // Every point of these Rust requests has its busy time.
            assert!(from_store.contains("\"busy_unknown\": 0"), "{from_store}");
            assert!(!from_store.contains("null"), "{from_store}");
        }
        if report.contains(&"json") {
            // Totals are float sums, in reading order: requests come in
            // another order from a store, so the last bits may differ.
            assert_close(
                &serde_json::from_str(&from_log).unwrap(),
                &serde_json::from_str(&from_store).unwrap(),
            );
        } else {
            assert_eq!(from_log, from_store, "osprof {report:?}");
        }
        assert!(!from_log.is_empty());
    }
    for base in [bases[0], bases[7], bases[39]] {
        let base = base.to_string();
        for format in ["tree", "json", "chrome", "svg", "html"] {
            let from_log = osprof(&["show", &base, &log, "--format", format]);
            let from_store = osprof(&[
                "show",
                &base,
                "--connection-string",
                &url,
                "--format",
                format,
            ]);
            // `show` names its sources; a whole base_id reads the one key.
            // The timeline's legend shortens the name and places the next
            // entries after it: those lines are left out.
            let store_name = format!("{url} (osprofiler_opt:{base})");
            let without_legend = |text: &str| -> String {
                text.lines()
                    .filter(|line| !line.contains(">log 0: "))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(
                without_legend(&named_as_store(&from_log.stdout, &log, &store_name)),
                without_legend(&String::from_utf8_lossy(&from_store.stdout)),
                "osprof show --format {format}"
            );
        }
    }
}

#[test]
fn a_store_and_logs_are_read_together() {
    let server = RedisServer::start();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (a, log_a) = rust_requests(&server.url(), dir_a.path(), 5);
    // A and B write to their own logs and to one store; A's keys are then
    // removed from the store: A is read from its log, B from the store.
    let (b, log_b) = rust_requests(&server.url(), dir_b.path(), 3);
    for base in &a {
        server.command(&["DEL", &format!("osprofiler_opt:{base}")]);
    }
    let url = server.url();
    let both = osprof(&[
        "list",
        &log_a,
        "--connection-string",
        &url,
        "--format",
        "csv",
    ]);
    let both = String::from_utf8_lossy(&both.stdout);
    for base in a.iter().chain(&b) {
        assert!(both.contains(&base.to_string()), "{base} in {both}");
    }
    assert_eq!(both.lines().count(), 1 + a.len() + b.len(), "{both}");
    // The same as reading the two logs.
    let logs = osprof(&["list", &log_a, &log_b, "--format", "csv"]);
    assert_eq!(
        both,
        String::from_utf8_lossy(&logs.stdout).replace(&log_b, &url)
    );
}
