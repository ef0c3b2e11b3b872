//! The `osprof` binary: inputs (stdin, gzip on stdin), `-o`, exit codes and
//! messages, and `headers` checked by the crate's own verifier.
#![cfg(feature = "cli")]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use tracing_osprofiler::HmacKeys;

fn osprof(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        pipe.write_all(data).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
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
    std::thread::sleep(std::time::Duration::from_millis(300));
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
