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
    let failed = osprof_failing(&[
        "list",
        "--connection-string",
        &format!("redis://:hunter2@127.0.0.1:{port}"),
    ]);
    assert_eq!(failed.code, Some(1));
    let stderr = &failed.stderr;
    assert!(
        stderr.starts_with("osprof: cannot open redis://***@127.0.0.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// What a failing `osprof` run left.
struct Failed {
    code: Option<i32>,
    stderr: String,
    /// How long it ran.
    took: std::time::Duration,
}

/// Runs `osprof` with `args`, which may fail, and checks that it wrote
/// no report.
fn osprof_failing(args: &[&str]) -> Failed {
    let started = std::time::Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args(args)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(output.stdout.is_empty(), "{args:?}: a report was written");
    Failed {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took,
    }
}

impl Failed {
    /// Its exit code and stderr.
    fn said(self) -> (Option<i32>, String) {
        (self.code, self.stderr)
    }
}

#[test]
fn a_store_that_trickles_its_answers_fails_at_the_store_timeout() {
    use crate::redis_support::{Behaviour, FakeRedis};
    use std::time::Duration;

    // One byte every 100 ms, never ending the line: each read gets a byte
    // long before any per-read timeout, so only a deadline ends it.
    let fake = FakeRedis::start(Behaviour::Trickle {
        every: Duration::from_millis(100),
    });
    let port = fake.url().rsplit(':').next().unwrap().to_owned();
    let bound = Duration::from_secs(5);

    // Its first command: a SCAN of the whole store.
    let url = format!("redis://127.0.0.1:{port}");
    let Failed { code, stderr, took } =
        osprof_failing(&["rank", "--connection-string", &url, "--store-timeout", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "osprof: cannot read {url}: no whole answer within the store timeout of 1 s \
             (--store-timeout)\n"
        )
    );
    assert!(
        took >= Duration::from_secs(1) && took < bound,
        "osprof took {took:?} for a store timeout of 1 s"
    );
    assert!(
        fake.bytes_sent() > 2,
        "the peer trickled {} bytes",
        fake.bytes_sent()
    );

    // With a password: its AUTH, in the connection's own deadline; the
    // password never shown.
    let Failed { code, stderr, took } = osprof_failing(&[
        "list",
        "--connection-string",
        &format!("redis://:hunter2@127.0.0.1:{port}"),
        "--store-timeout",
        "0.5",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "osprof: cannot open redis://***@127.0.0.1:{port}: no whole answer within the store \
             timeout of 0.5 s (--store-timeout)\n"
        )
    );
    assert!(
        took >= Duration::from_millis(500) && took < bound,
        "osprof took {took:?} for a store timeout of 0.5 s"
    );

    // A timeout that is no number of seconds is refused by the parser.
    let Failed { code, stderr, .. } =
        osprof_failing(&["list", "--connection-string", &url, "--store-timeout", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("more than 0"), "{stderr}");
}

/// The peak resident memory of this process.
fn peak_rss_bytes() -> u64 {
    crate::peak_support::peak_kib(None).expect("VmHWM in /proc/self/status") * 1024
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

/// A store that gives no event for what was asked (empty, another
/// database, only foreign entries, no key for the request) is one plain
/// sentence and exit 1, in every command, not an empty table.
#[test]
fn a_store_without_events_is_one_plain_error() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (bases, log) = rust_requests(&server.url(), dir.path(), 1);
    let missing = "0f5c3f0e-7a41-4b09-9c2d-8b5b0f5c3fe1";
    // Database 1 is empty; the services wrote to 0.
    let empty = format!("{}/1", server.url());
    let whole = |store: &str| {
        format!(
            "osprof: {store} holds no osprofiler event (no osprofiler_opt:* or osprofiler:* \
             key with an entry that can be read): check the host, port and database number \
             (/N) of the connection string\n"
        )
    };
    let one = |store: &str, base: &str| {
        format!(
            "osprof: {store} (osprofiler_opt:{base}) holds no osprofiler event of that \
             request: it was not profiled or not kept, its key expired, or the connection \
             string names another database (/N) than the services'\n"
        )
    };
    for args in [
        vec!["rank"],
        vec!["rank", "--format", "json"],
        vec!["list"],
        vec!["list", "--format", "csv"],
        vec!["show", "--latest"],
        vec!["show", "--slowest"],
        vec!["show", "0f5c"],
    ] {
        let mut args = args.clone();
        args.extend(["--connection-string", &empty]);
        assert_eq!(
            osprof_failing(&args).said(),
            (Some(1), whole(&empty)),
            "{args:?}"
        );
    }
    // Beside a log, too, in the table reports; `show` finds the log's
    // request and fails only when nothing holds it.
    for command in ["rank", "list"] {
        let args = [command, &log, "--connection-string", &empty];
        assert_eq!(
            osprof_failing(&args).said(),
            (Some(1), whole(&empty)),
            "{args:?}"
        );
    }
    let base = bases[0].to_string();
    let beside = osprof(&["show", &base, &log, "--connection-string", &empty]);
    assert!(String::from_utf8_lossy(&beside.stdout).contains("wsgi"));
    let (code, said) = osprof_failing(&["show", &base, "--connection-string", &empty]).said();
    assert_eq!((code, said), (Some(1), one(&empty, &base)));
    // The right database, a request it does not hold.
    let url = server.url();
    let (code, said) = osprof_failing(&["show", missing, "--connection-string", &url]).said();
    assert_eq!((code, said), (Some(1), one(&url, missing)));
    // And it holds the one it has.
    let shown = osprof(&["show", &base, "--connection-string", &url]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("wsgi"));

    // Only foreign entries: each named, then the plain sentence.
    let foreign = format!("{}/2", server.url());
    let key = format!("osprofiler_opt:{missing}");
    let replies = server.commands(&[&["SELECT", "2"], &["RPUSH", &key, r#"{"x": 1}"#]]);
    assert_eq!(replies, ["+OK", ":1"]);
    let (code, said) = osprof_failing(&["rank", "--connection-string", &foreign]).said();
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(
        said,
        format!(
            "osprof: {foreign}: osprofiler_opt:{missing} entry 0 from the tail: no name \
             string: skipped\n{}",
            whole(&foreign)
        )
    );
}
