//! The `osprof` binary: inputs (stdin, gzip on stdin), `-o`, exit codes and
//! messages, and `headers` checked by the crate's own verifier.
#![cfg(feature = "cli")]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use tracing_osprofiler::HmacKeys;

use crate::support::run;

fn osprof(args: &[&str], stdin: Option<&[u8]>) -> Output {
    osprof_env(args, stdin, None)
}

/// `osprof ARGS` with `OSPROFILER_HMAC_KEY` set to `key`, or unset.
fn osprof_env(args: &[&str], stdin: Option<&[u8]>, key: Option<&str>) -> Output {
    run::osprof_env(args, stdin.unwrap_or_default().to_vec(), key)
}

const FIXTURE: &str = "tests/fixtures/mixed.log";

#[test]
fn stdin_plain_and_gzip_give_the_file_report() {
    let data = std::fs::read(FIXTURE).unwrap();
    let golden = std::fs::read("tests/golden/rank.txt").unwrap();
    let plain = osprof(&["rank", "-"], Some(&data));
    assert!(plain.status.success());
    assert_eq!(plain.stdout, golden);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("osprof: 1 point never stopped"), "{stderr}");
    assert!(
        stderr.contains("osprof: 2 unreadable lines (-:8: truncated line"),
        "{stderr}"
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let zipped = osprof(&["rank", "-"], Some(&gz));
    assert!(zipped.status.success());
    assert_eq!(zipped.stdout, golden);
}

#[test]
fn output_file_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rank.json");
    let r = osprof(
        &[
            "rank",
            FIXTURE,
            "--self",
            "--percentiles",
            "--format",
            "json",
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(r.stdout.is_empty());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read("tests/golden/rank.json").unwrap()
    );
    let l = osprof(&["list", FIXTURE], None);
    assert!(l.status.success());
    assert_eq!(l.stdout, std::fs::read("tests/golden/list.txt").unwrap());
    let top = osprof(
        &[
            "rank", FIXTURE, "--sort", "count", "--top", "1", "--format", "csv",
        ],
        None,
    );
    let text = String::from_utf8(top.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.ends_with(",2,db-query\n"), "{text}");
}

/// `-o` a device: written, not synced (a device cannot be).
#[cfg(unix)]
#[test]
fn output_to_dev_null() {
    for args in [
        vec!["rank", FIXTURE, "-o", "/dev/null"],
        vec!["list", FIXTURE, "-o", "/dev/null"],
        vec![
            "show",
            "aaaaaaaa-0000-4000-8000-000000000001",
            FIXTURE,
            "-o",
            "/dev/null",
        ],
    ] {
        let r = osprof(&args, None);
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn errors_exit_1_with_a_message() {
    let r = osprof(&["rank", "/nonexistent/x.log"], None);
    assert_eq!(r.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.starts_with("osprof: cannot open /nonexistent/x.log: "),
        "{stderr}"
    );
    let r = osprof(&["rank", FIXTURE, "-o", "/nonexistent/dir/out.txt"], None);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr)
        .starts_with("osprof: cannot create /nonexistent/dir/out.txt"));
    let r = osprof(&["rank", FIXTURE, "--since", "yesterday"], None);
    assert_ne!(r.status.code(), Some(0));
    let r = osprof(&["headers", "--key", "k", "--base-id", "42"], None);
    assert_ne!(r.status.code(), Some(0));
    let r = osprof(&["rank"], None);
    assert_ne!(r.status.code(), Some(0));
}

#[test]
fn headers_paste_into_curl_and_verify() {
    for (extra, sha256) in [(vec![], false), (vec!["--sha256"], true)] {
        let mut args = vec![
            "headers",
            "--key",
            "SECRET_KEY",
            "--base-id",
            "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b",
        ];
        args.extend(extra);
        let r = osprof(&args, None);
        assert!(r.status.success());
        let text = String::from_utf8(r.stdout).unwrap();
        let parts: Vec<&str> = text.trim_end().split('\'').collect();
        // -H 'X-Trace-Info: A' -H 'X-Trace-HMAC: B'
        assert_eq!(parts.len(), 5, "{text}");
        assert_eq!(parts[0], "-H ");
        let info = parts[1].strip_prefix("X-Trace-Info: ").unwrap();
        let hmac = parts[3].strip_prefix("X-Trace-HMAC: ").unwrap();
        assert_eq!(hmac.len(), if sha256 { 64 } else { 40 });
        let keys = HmacKeys::from_comma_separated("SECRET_KEY").with_sha256(true);
        let profile = keys.verify(info, hmac).unwrap();
        assert_eq!(
            profile.trace_info().base_id().to_string(),
            "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b"
        );
        assert!(HmacKeys::from_comma_separated("other")
            .with_sha256(true)
            .verify(info, hmac)
            .is_err());
    }
}

/// Checks that `info` and `hmac` are headers signed with `key` for `base`.
fn assert_signed(info: &str, hmac: &str, key: &str, base: &str) {
    let keys = HmacKeys::from_comma_separated(key).with_sha256(true);
    let profile = keys.verify(info, hmac).unwrap();
    assert_eq!(profile.trace_info().base_id().to_string(), base);
}

/// The curl line's two values.
fn curl_values(stdout: &[u8]) -> (String, String) {
    let text = String::from_utf8(stdout.to_vec()).unwrap();
    let parts: Vec<&str> = text.trim_end().split('\'').collect();
    assert_eq!(parts.len(), 5, "{text}");
    (
        parts[1].strip_prefix("X-Trace-Info: ").unwrap().to_owned(),
        parts[3].strip_prefix("X-Trace-HMAC: ").unwrap().to_owned(),
    )
}

/// The key from a file or from the environment, never two sources, never
/// a blank one; `--key` still works.
#[test]
fn headers_take_the_key_from_one_source() {
    const BASE: &str = "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b";
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "  FILE_KEY \nnot the key\n").unwrap();
    let key_file = key_file.to_str().unwrap();
    for (args, env, key) in [
        (vec!["--key-file", key_file], None, "FILE_KEY"),
        (vec!["--key-file", "-"], None, "STDIN_KEY"),
        (vec![], Some("ENV_KEY"), "ENV_KEY"),
        (vec!["--key", "ARG_KEY"], None, "ARG_KEY"),
    ] {
        let mut all = vec!["headers", "--base-id", BASE];
        all.extend(&args);
        let r = osprof_env(&all, Some(b"STDIN_KEY\n"), env);
        assert!(
            r.status.success(),
            "{all:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let (info, hmac) = curl_values(&r.stdout);
        assert_signed(&info, &hmac, key, BASE);
        // The base_id, to find the request afterwards, on stderr.
        assert_eq!(
            String::from_utf8_lossy(&r.stderr),
            format!(
                "osprof: base_id {BASE} (once the request is done: osprof show {BASE} LOG...)\n"
            )
        );
    }

    let blank = dir.path().join("blank");
    std::fs::write(&blank, "  \n").unwrap();
    for (args, env, code, message) in [
        (
            vec!["--key", "k", "--key-file", key_file],
            None,
            2,
            "cannot be used with",
        ),
        (
            vec!["--key", "k"],
            Some("k"),
            1,
            "osprof: the key is given by --key and OSPROFILER_HMAC_KEY: give one",
        ),
        (
            vec!["--key-file", key_file],
            Some("k"),
            1,
            "the key is given by the key file",
        ),
        (vec![], None, 1, "osprof: no key: give --key-file FILE"),
        (
            vec!["--key", " "],
            None,
            1,
            "osprof: the key from --key is blank",
        ),
        (
            vec![],
            Some(""),
            1,
            "osprof: the key from OSPROFILER_HMAC_KEY is blank",
        ),
        (
            vec!["--key-file", blank.to_str().unwrap()],
            None,
            1,
            "is blank",
        ),
        (
            vec!["--key-file", "/nonexistent/key"],
            None,
            1,
            "osprof: cannot read the key file /nonexistent/key: ",
        ),
    ] {
        let mut all = vec!["headers"];
        all.extend(&args);
        let r = osprof_env(&all, None, env);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(code), "{all:?} {env:?}: {stderr}");
        assert!(stderr.contains(message), "{all:?} {env:?}: {stderr}");
        assert!(r.stdout.is_empty());
    }
    let help = osprof(&["headers", "--help"], None);
    let help = String::from_utf8_lossy(&help.stdout);
    for word in [
        "--key-file",
        "OSPROFILER_HMAC_KEY",
        "Discouraged",
        "process list",
    ] {
        assert!(help.contains(word), "{word} not in\n{help}");
    }
}

/// `--format shell` evaluates in sh to the three variables; `--format json`
/// holds the same; neither writes anything on stderr.
#[test]
fn headers_for_scripts() {
    const BASE: &str = "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b";
    let exe = env!("CARGO_BIN_EXE_osprof");
    let script = format!(
        "eval \"$('{exe}' headers --format shell --base-id {BASE})\" && \
         printf '%s\\n' \"$OSPROF_BASE_ID\" \"$OSPROF_TRACE_INFO\" \"$OSPROF_TRACE_HMAC\""
    );
    let r = Command::new("sh")
        .args(["-c", &script])
        .env(osprof::headers::KEY_ENV, "SECRET_KEY")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(r.stderr.is_empty());
    let out = String::from_utf8(r.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], BASE);
    assert_signed(lines[1], lines[2], "SECRET_KEY", BASE);

    // A fresh base_id each time, told in the JSON.
    let r = osprof_env(&["headers", "--format", "json"], None, Some("SECRET_KEY"));
    assert!(r.status.success() && r.stderr.is_empty());
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let base = json["base_id"].as_str().unwrap();
    assert_ne!(base, BASE);
    assert_signed(
        json["headers"]["X-Trace-Info"].as_str().unwrap(),
        json["headers"]["X-Trace-HMAC"].as_str().unwrap(),
        "SECRET_KEY",
        base,
    );
}

#[test]
fn show_renders_one_request_in_every_format() {
    let base = "aaaaaaaa-0000-4000-8000-000000000001";
    for (args, starts) in [
        (vec![], "request "),
        (vec!["--json"], "{"),
        (vec!["--format", "json"], "{"),
        (vec!["--format", "chrome"], ""),
        (vec!["--format", "svg"], "<?xml"),
        (vec!["--format", "html"], "<!"),
    ] {
        let mut all = vec!["show", base, FIXTURE];
        all.extend(&args);
        let r = osprof(&all, None);
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let text = String::from_utf8_lossy(&r.stdout);
        assert!(text.len() > 100, "{args:?}: {text}");
        assert!(text.to_lowercase().starts_with(starts), "{args:?}: {text}");
        assert!(text.contains("rpc-call"), "{args:?}");
    }
    let missing = osprof(
        &["show", "aaaaaaaa-0000-4000-8000-000000000009", FIXTURE],
        None,
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no point of request"));
}

/// Three requests: two whose base_ids share their first 10 digits, the
/// latest one short, the earliest one slowest.
fn three_requests(dir: &std::path::Path) -> String {
    let line = |base: &str, t: &str, d: Option<&str>, name: &str| {
        let trace = format!("{}-9999-4999-8999-999999999999", &base[..8]);
        match d {
            None => format!("2020-02-27T08:04:{t}          {base} {base} {trace} {name}-start\n"),
            Some(d) => format!("2020-02-27T08:04:{t} {d} {base} {base} {trace} {name}-stop\n"),
        }
    };
    let (a, b, c) = (
        "6f9e3c1a-2b00-4000-8000-000000000001",
        "6f9e3c1a-2b11-4000-8000-000000000002",
        "c0ffee00-0000-4000-8000-000000000003",
    );
    let log = [
        line(a, "10.000000", None, "slow"),
        line(b, "20.000000", None, "middle"),
        line(c, "30.000000", None, "latest"),
        line(c, "30.001000", Some("0.001"), "latest"),
        line(b, "21.000000", Some("1.0"), "middle"),
        line(a, "40.000000", Some("30.0"), "slow"),
    ]
    .concat();
    let path = dir.join("three.log");
    std::fs::write(&path, log).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `show` by a prefix of the base_id, by `--latest`, by `--slowest`; the
/// errors when a prefix fits none or several; the legend names the logs.
#[test]
fn show_finds_the_request_by_prefix_latest_or_slowest() {
    let dir = tempfile::tempdir().unwrap();
    let log = three_requests(dir.path());
    let first_line = |args: &[&str]| {
        let r = osprof(args, None);
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let out = String::from_utf8(r.stdout).unwrap();
        (out.lines().next().unwrap().to_owned(), out)
    };
    for (args, base) in [
        (
            vec!["show", "6f9e3c1a-2b0", &log],
            "6f9e3c1a-2b00-4000-8000-000000000001",
        ),
        (
            vec!["show", "6F9E3C1A2B1", &log],
            "6f9e3c1a-2b11-4000-8000-000000000002",
        ),
        (
            vec!["show", "c", &log],
            "c0ffee00-0000-4000-8000-000000000003",
        ),
        (
            vec!["show", "--latest", &log],
            "c0ffee00-0000-4000-8000-000000000003",
        ),
        (
            vec!["show", "--slowest", &log],
            "6f9e3c1a-2b00-4000-8000-000000000001",
        ),
        (vec!["show", "--slowest", &log, "--format", "json"], ""),
    ] {
        let (first, out) = first_line(&args);
        if base.is_empty() {
            assert!(out.contains("\"name\": \"slow\""), "{out}");
        } else {
            assert!(
                first.starts_with(&format!("request {base}: ")),
                "{args:?}: {first}"
            );
            assert!(out.ends_with(&format!("logs: 0 = {log}\n")), "{out}");
        }
    }
    // Two logs: both named, each with its number.
    let other = dir.path().join("other.log");
    std::fs::write(&other, "").unwrap();
    let other = other.to_str().unwrap();
    let (_, out) = first_line(&["show", "c0ffee00", other, &log]);
    assert!(out.ends_with(&format!("logs: 1 = {log}\n")), "{out}");

    let ambiguous = osprof(&["show", "6f9e", &log], None);
    assert_eq!(ambiguous.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&ambiguous.stderr);
    assert!(
        stderr.starts_with("osprof: 2 requests have a base_id starting with 6f9e; give more of it:\n  6f9e3c1a-2b00-4000-8000-000000000001  2020-02-27T08:04:10.000000      30.000 s  slow\n  6f9e3c1a-2b11-"),
        "{stderr}"
    );
    for (args, code, message) in [
        (
            vec!["show", "6f9f", &log],
            1,
            "osprof: no request in the logs has a base_id starting with 6f9f",
        ),
        (
            vec!["show", "6f9e3c1a-2b00-4000-8000-00000000000f", &log],
            1,
            "osprof: no point of request 6f9e3c1a-2b00-4000-8000-00000000000f in the logs",
        ),
        (
            vec!["show", "nope", &log],
            2,
            "nope is not a base_id nor the start of one",
        ),
        (
            vec!["show", "6f9e"],
            2,
            "osprof show needs the logs after the BASE_ID",
        ),
        (
            vec!["show", "--latest", "--slowest", &log],
            2,
            "cannot be used with",
        ),
        (
            vec!["show", "--latest", "-"],
            1,
            "reads the logs twice: give files, not - (stdin)",
        ),
        (
            vec!["show", "--latest", other],
            1,
            "osprof: no request in the logs",
        ),
    ] {
        let r = osprof(&args, Some(b""));
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    // A whole base_id reads stdin once: fine.
    let data = std::fs::read(&log).unwrap();
    let r = osprof(
        &["show", "c0ffee00-0000-4000-8000-000000000003", "-"],
        Some(&data),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).ends_with("logs: 0 = -\n"));
}

/// Copies of the fixture, enough for `rank` to split the work over threads
/// (16 MiB and more).
fn large_log(dir: &std::path::Path) -> std::path::PathBuf {
    let data = std::fs::read(FIXTURE).unwrap();
    let path = dir.join("large.log");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut written = 0;
    while written < 17 << 20 {
        out.write_all(&data).unwrap();
        written += data.len();
    }
    out.flush().unwrap();
    path
}

#[test]
fn mapped_and_read_logs_give_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let log = large_log(dir.path());
    let log = log.to_str().unwrap();
    let mapped = osprof(&["rank", log], None);
    let read = osprof(&["rank", "--no-mmap", log], None);
    assert!(mapped.status.success(), "{mapped:?}");
    assert!(read.status.success(), "{read:?}");
    assert_eq!(mapped.stdout, read.stdout);
    assert_eq!(mapped.stderr, read.stderr);
    assert!(!mapped.stdout.is_empty());
}

/// A mapped log cut shorter while being read raises SIGBUS; `osprof` says
/// so and exits 1 instead of dying by the signal. The signal is sent by
/// hand here (cutting a file at the right moment cannot be timed).
#[cfg(unix)]
#[test]
fn sigbus_is_an_error_message_not_a_crash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args(["rank", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Started and waiting for stdin (the handler is installed first thing).
    wait_for_sigbus_handler(child.id());
    // The shell's own `kill`: no procps needed.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -BUS {}", child.id())])
        .status()
        .unwrap();
    assert!(killed.success());
    let pipe = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    drop(pipe);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was cut shorter while it was being read"),
        "{stderr}"
    );
}

/// Waits until process `pid` catches SIGBUS (its handler installed), as
/// `/proc/<pid>/status` says: a fixed sleep is outrun by a busy machine,
/// and the signal would then kill the process before the handler exists.
#[cfg(target_os = "linux")]
fn wait_for_sigbus_handler(pid: u32) {
    let bit = 1u64 << (libc::SIGBUS - 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .map(|mask| u64::from_str_radix(mask.trim(), 16).expect("a hex signal mask"))
            .expect("a SigCgt line");
        if caught & bit != 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "osprof installed no SIGBUS handler within 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Elsewhere no `/proc`: a generous wait.
#[cfg(all(unix, not(target_os = "linux")))]
fn wait_for_sigbus_handler(_pid: u32) {
    std::thread::sleep(std::time::Duration::from_secs(2));
}

/// The real thing, at whatever moment it lands: a log cut shorter while
/// `osprof rank` reads it never kills the process by a signal.
#[cfg(unix)]
#[test]
fn a_log_cut_shorter_while_read_is_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let log = large_log(dir.path());
    for delay_ms in [0, 5, 10, 20] {
        let copy = dir.path().join(format!("cut-{delay_ms}.log"));
        std::fs::copy(&log, &copy).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_osprof"))
            .args(["rank", copy.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_len(1000)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(stderr.contains("cut shorter"), "{stderr}");
            }
            other => panic!("osprof ended with {other:?}: {out:?}"),
        }
    }
}

/// The tool's `--format` and `--sort` values are the library's enums: every
/// variant is accepted under the name clap derives from it.
#[test]
fn every_library_value_is_a_command_line_value() {
    use clap::ValueEnum;
    use osprof::list::ListSort;
    use osprof::rank::Column;
    use osprof::show::ShowFormat;
    use osprof::Format;

    let name = |v: Option<clap::builder::PossibleValue>| v.unwrap().get_name().to_owned();
    let mut runs: Vec<Vec<String>> = Vec::new();
    for column in Column::value_variants() {
        let sort = name(column.to_possible_value());
        runs.push(
            ["rank", FIXTURE, "--self", "--percentiles", "--sort", &sort]
                .map(String::from)
                .to_vec(),
        );
    }
    assert!(runs.iter().any(|r| r[5] == "self"), "{runs:?}");
    for sort in ListSort::value_variants() {
        runs.push(vec![
            "list".into(),
            FIXTURE.into(),
            "--sort".into(),
            name(sort.to_possible_value()),
        ]);
    }
    for format in Format::value_variants() {
        runs.push(vec![
            "rank".into(),
            FIXTURE.into(),
            "--format".into(),
            name(format.to_possible_value()),
        ]);
    }
    for format in ShowFormat::value_variants() {
        runs.push(vec![
            "show".into(),
            "aaaaaaaa-0000-4000-8000-000000000001".into(),
            FIXTURE.into(),
            "--format".into(),
            name(format.to_possible_value()),
        ]);
    }
    for args in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = osprof(&args, None);
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(!r.stdout.is_empty(), "{args:?}");
    }
}

/// A file with no profiler line is named with its first line and fails;
/// a mixed file still reports, its unreadable lines counted on stderr.
#[test]
fn a_file_that_is_no_profiler_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "\nservice started on port 8080\nGET / 200\n").unwrap();
    let show = osprof(&["show", "--latest", notes.to_str().unwrap()], None);
    assert_eq!(show.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&show.stderr);
    assert!(
        stderr.contains(&format!(
            "osprof: {} is not a profiler log",
            notes.display()
        )),
        "show: {stderr}"
    );
    for command in ["rank", "list"] {
        for args in [vec![command, notes.to_str().unwrap()], {
            // Beside a good log, too: the wrong file is named.
            vec![command, FIXTURE, notes.to_str().unwrap()]
        }] {
            let run = osprof(&args, None);
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(run.stdout.is_empty(), "{args:?}");
            assert!(
                stderr.contains(&format!(
                    "osprof: {} is not a profiler log: none of its lines is a trace point; \
                     its first line (line 2) is \"service started on port 8080\" (",
                    notes.display()
                )),
                "{args:?}: {stderr}"
            );
        }
    }
    // Mixed: reports, exit 0, the unreadable count as before.
    let mixed = osprof(&["rank", FIXTURE], None);
    assert!(mixed.status.success());
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("2 unreadable lines"));
    // An empty file is an empty log, not a mistake.
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let run = osprof(&["rank", empty.to_str().unwrap()], None);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `--latest` and `--slowest` say on stderr which request they picked, among
/// how many; a whole base_id picks nothing and says nothing; a request in no
/// log is an error that names the likely causes.
#[test]
fn show_says_which_request_it_picked_and_why_one_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let log = three_requests(dir.path());
    for (flag, base, root) in [
        ("--latest", "c0ffee00-0000-4000-8000-000000000003", "latest"),
        ("--slowest", "6f9e3c1a-2b00-4000-8000-000000000001", "slow"),
    ] {
        let run = osprof(&["show", flag, &log], None);
        assert!(run.status.success());
        let stderr = String::from_utf8_lossy(&run.stderr);
        let which = &flag[2..];
        assert!(
            stderr.starts_with(&format!(
                "osprof: showing the {which} of 3 requests: {base} (began 2020-02-27T08:04:"
            )),
            "{stderr}"
        );
        assert!(stderr.contains(&format!(", root {root})")), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let whole = osprof(
        &["show", "c0ffee00-0000-4000-8000-000000000003", &log],
        None,
    );
    assert!(whole.status.success());
    assert!(
        whole.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );

    for args in [
        vec!["show", "0f5c0000-0000-4000-8000-000000000000", &log],
        vec!["show", "0f5c", &log],
    ] {
        let run = osprof(&args, None);
        assert_eq!(run.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&run.stderr);
        for cause in [
            "Likely causes",
            "hmac_keys",
            "bad_signature=1",
            "level filter",
            "another hour's",
            "osprof list LOG...",
        ] {
            assert!(stderr.contains(cause), "{args:?}: {cause}: {stderr}");
        }
    }
}
