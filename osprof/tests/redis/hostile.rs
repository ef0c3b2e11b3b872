//! A store holding foreign or hostile values: each bad entry is named on
//! standard error, the rest is reported, nothing panics.

use crate::redis_support::RedisServer;
use crate::{osprof, rust_requests};

#[test]
fn bad_entries_are_named_and_skipped_and_the_rest_is_reported() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (bases, _log) = rust_requests(&server.url(), dir.path(), 3);
    // bases[1]: 5 points, 10 events, then the bad entries (10 to 14).
    let good = format!("osprofiler_opt:{}", bases[1]);
    // Appended at the head: newer than the request's own events.
    for bad in [
        "not json at all",
        "[1, 2, 3]",
        r#"{"name": 5}"#,
        r#"{"name": "x-start", "base_id": "nope", "parent_id": "nope", "trace_id": "nope", "timestamp": "2020-01-01T00:00:00.000000"}"#,
    ] {
        server.command(&["LPUSH", &good, bad]);
    }
    server.command_bytes(&[b"LPUSH", good.as_bytes(), b"\xff\xfe binary"]);
    // A key of another type under the prefix, a foreign key name, a huge
    // list of foreign documents.
    server.command(&[
        "SET",
        "osprofiler_opt:00000000-0000-4000-8000-000000000000",
        "a string",
    ]);
    server.command(&["HSET", "osprofiler_opt:not-a-uuid", "f", "v"]);
    let huge = "osprofiler_opt:11111111-1111-4111-8111-111111111111";
    for chunk in 0..5 {
        let mut args: Vec<String> = vec!["RPUSH".into(), huge.into()];
        args.extend((0..1000).map(|i| format!("{{\"n\": {}}}", chunk * 1000 + i)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(server.command(&args).starts_with(':'));
    }
    // Legacy keys: not JSON, another type.
    server.command(&["SET", "osprofiler:junk_junk_junk", "{{{"]);
    server.command(&["RPUSH", "osprofiler:list_list_list", "x"]);

    let url = server.url();
    let output = osprof(&["list", "--connection-string", &url, "--format", "csv"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for base in &bases {
        assert!(stdout.contains(&base.to_string()), "{base}: {stdout}");
    }
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    for message in [
        "entry 10 from the tail: not JSON",
        "entry 11 from the tail: not a JSON object",
        "entry 12 from the tail: no name string",
        "entry 13 from the tail: base_id is not a UUID",
        "entry 14 from the tail: not JSON",
        "osprofiler_opt:00000000-0000-4000-8000-000000000000: a string, not a list",
        "osprofiler_opt:not-a-uuid: a hash, not a list",
        "osprofiler:junk_junk_junk: not JSON",
        "osprofiler:list_list_list: WRONGTYPE",
    ] {
        assert!(stderr.contains(message), "{message:?} in\n{stderr}");
    }
    // The huge list: 5000 bad entries, the first 5 shown, the rest counted.
    for i in 0..5 {
        let message = format!("{huge} entry {i} from the tail: no name string");
        assert!(stderr.contains(&message), "{message} in {stderr}");
    }
    assert!(!stderr.contains(&format!("{huge} entry 5 ")), "{stderr}");
    assert!(
        stderr.contains(&format!("{huge}: 4995 more entries that cannot be read")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // show of the request with bad entries: its points, and the messages.
    let show = osprof(&["show", &bases[1].to_string(), "--connection-string", &url]);
    let tree = String::from_utf8_lossy(&show.stdout);
    assert!(tree.contains("wsgi") && tree.contains("load"), "{tree}");
    assert!(String::from_utf8_lossy(&show.stderr).contains("not a JSON object"));
}

#[test]
fn an_unreachable_store_is_a_clear_error() {
    let port = RedisServer::unused_port();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args([
            "list",
            "--connection-string",
            &format!("redis://:hunter2@127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("osprof: cannot open redis://***@127.0.0.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// The peak resident memory of this process, from `/proc/self/status`.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

#[test]
fn a_value_past_the_limit_is_named_with_its_length_and_skipped_not_kept() {
    use osprof::list::{list, ListOptions};
    use osprof::source::{Inputs, RedisSource, Source};

    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (bases, _log) = rust_requests(&server.url(), dir.path(), 2);
    let key = format!("osprofiler_opt:{}", bases[1]);
    // A 48 MiB entry, made by the server itself (this process never holds
    // it): newer than the request's 10 events, so entry 10 from the tail.
    const HUGE: u64 = 48 << 20;
    let made = server.command(&[
        "EVAL",
        "return redis.call('LPUSH', KEYS[1], string.rep('x', tonumber(ARGV[1])))",
        "1",
        &key,
        &HUGE.to_string(),
    ]);
    assert_eq!(made, ":11");
    let url = server.url();

    // Through the library, in this process: the peak memory does not grow
    // by the value (a client that buffers it grows by 48 MiB at least).
    let store = RedisSource::new(&url).unwrap();
    let inputs = Inputs::new(vec![Source::Redis(store.clone())]).unwrap();
    let peak_before = peak_rss_bytes();
    let report = list(&inputs, &ListOptions::new()).expect("the store is read");
    let peak_after = peak_rss_bytes();
    assert!(
        peak_after < peak_before + HUGE / 2,
        "peak memory grew from {peak_before} to {peak_after} bytes"
    );
    assert_eq!(store.problems(), 1, "the one entry past the limit");
    drop(report);

    // The CLI names the key, the entry, its length and the limit, and
    // reports both requests.
    let output = osprof(&["list", "--connection-string", &url, "--format", "csv"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        bases.iter().all(|b| stdout.contains(&b.to_string())),
        "{stdout}"
    );
    let message = format!(
        "{key} entry 10 from the tail: a value of {HUGE} bytes, longer than the 1048576 \
         bytes read per value (--max-value-bytes)"
    );
    assert!(stderr.contains(&message), "{message:?} in\n{stderr}");

    // With a higher limit the value is read, and found not to be JSON.
    let output = osprof(&[
        "list",
        "--connection-string",
        &url,
        "--max-value-bytes",
        &(HUGE * 2).to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{key} entry 10 from the tail: not JSON")),
        "{stderr}"
    );
}
