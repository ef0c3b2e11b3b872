//! Standard input gets the checks a file gets: a non-log on stdin (`-`,
//! plain or gzip, from a pipe) is named "standard input" with its first
//! line, exit 1, in every command that reads logs; an empty stdin reports
//! as an empty file does and says so; stdin is still streamed, never held.
#![cfg(feature = "cli")]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::support::run::osprof;

const FIXTURE: &str = "tests/fixtures/mixed.log";

/// A request of `FIXTURE`.
const IN_FIXTURE: &str = "aaaaaaaa-0000-4000-8000-000000000001";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Every command that reads logs, with `log` as its log (`-`: stdin).
fn commands(log: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["rank", log],
        vec!["rank", "--self", "--percentiles", "--format", "json", log],
        vec!["list", log],
        vec!["list", "--format", "csv", log],
        // A whole base_id reads the logs once: stdin is fine.
        vec!["show", IN_FIXTURE, log],
        vec!["show", IN_FIXTURE, "--format", "json", log],
    ]
}

/// Runs every command on `content` given as a file and on stdin (plain
/// and gzip): the same exit status 1, nothing on stdout, and the same
/// message but for the log's name.
fn assert_same_error_from_file_and_stdin(content: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, content).unwrap();
    let file = file.to_str().unwrap();
    let mut message = String::new();
    for (from_file, from_stdin) in commands(file).into_iter().zip(commands("-")) {
        let by_file = osprof(&from_file, Vec::new());
        assert_eq!(
            by_file.status.code(),
            Some(1),
            "{from_file:?}: {}",
            stderr(&by_file)
        );
        let expected = stderr(&by_file).replace(file, "standard input");
        assert!(
            expected.starts_with("osprof: standard input is not a profiler log: "),
            "{from_file:?}: {expected}"
        );
        for data in [content.to_vec(), gzip(content)] {
            let by_stdin = osprof(&from_stdin, data);
            assert_eq!(by_stdin.status.code(), Some(1), "{from_stdin:?}");
            assert!(by_stdin.stdout.is_empty(), "{from_stdin:?}");
            assert_eq!(stderr(&by_stdin), expected, "{from_stdin:?}");
        }
        message = expected;
    }
    message
}

#[test]
fn a_non_log_on_stdin_is_named_with_its_first_line_as_a_file_is() {
    let message =
        assert_same_error_from_file_and_stdin(b"\nservice started on port 8080\nGET / 200\n");
    assert_eq!(
        message,
        "osprof: standard input is not a profiler log: none of its lines is a trace point; \
         its first line (line 2) is \"service started on port 8080\" (no timestamp). Give the \
         files the writer makes (osprofiler.YYYY-MM-DD-HH.log) or a Mistral profiler log\n"
    );

    // Beside a good log, stdin is the one named.
    for command in ["rank", "list"] {
        let run = osprof(&[command, FIXTURE, "-"], b"GET / 200\n".to_vec());
        assert_eq!(run.status.code(), Some(1), "{command}");
        assert!(run.stdout.is_empty(), "{command}");
        assert!(
            stderr(&run).starts_with(
                "osprof: standard input is not a profiler log: none of its lines is a trace \
                 point; its first line (line 1) is \"GET / 200\""
            ),
            "{command}: {}",
            stderr(&run)
        );
    }
}

#[test]
fn a_long_first_line_on_stdin_is_cut_as_for_a_file() {
    // 200 characters: quoted to 80.
    let long = format!("{}\nmore\n", "é".repeat(200));
    let message = assert_same_error_from_file_and_stdin(long.as_bytes());
    assert!(
        message.contains(&format!("(line 1) is \"{}\" (", "é".repeat(80))),
        "{message}"
    );
    // Longer than a line may be: never held, quoted cut, said why.
    let mut oversized = vec![b'x'; 200 * 1024];
    oversized.extend_from_slice(b"\nshort\n");
    let message = assert_same_error_from_file_and_stdin(&oversized);
    assert!(
        message.contains(&format!(
            "(line 1) is \"{}\" (longer than 65536 bytes)",
            "x".repeat(80)
        )),
        "{message}"
    );
    // Terminal escapes in the first line are not replayed on the terminal.
    let message = assert_same_error_from_file_and_stdin(b"\x1b[2J\x1b]0;owned\x07\n");
    assert!(
        !message.contains('\x1b') && !message.contains('\x07'),
        "{message:?}"
    );
}

/// `show` by a prefix, `--latest` or `--slowest` reads the logs twice, so
/// it refuses stdin whatever stdin holds, before reading it: the same
/// refusal for a log and a non-log, while a non-log file is named.
#[test]
fn show_picking_among_requests_refuses_stdin_whatever_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "GET / 200\n").unwrap();
    let log = std::fs::read(FIXTURE).unwrap();
    for picking in [vec!["--latest"], vec!["--slowest"], vec!["aaaa"]] {
        let mut by_file = vec!["show"];
        by_file.extend(&picking);
        by_file.push(file.to_str().unwrap());
        let run = osprof(&by_file, Vec::new());
        assert_eq!(run.status.code(), Some(1), "{by_file:?}");
        assert!(
            stderr(&run).contains("notes.txt is not a profiler log"),
            "{by_file:?}: {}",
            stderr(&run)
        );
        let mut by_stdin = vec!["show"];
        by_stdin.extend(&picking);
        by_stdin.push("-");
        for data in [b"GET / 200\n".to_vec(), log.clone()] {
            let run = osprof(&by_stdin, data);
            assert_eq!(run.status.code(), Some(1), "{by_stdin:?}");
            assert!(
                stderr(&run).contains("reads the logs twice: give files, not - (stdin)"),
                "{by_stdin:?}: {}",
                stderr(&run)
            );
        }
    }
}

#[test]
fn an_empty_stdin_reports_as_an_empty_file_does_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    const SAID: &str = "osprof: standard input was empty: no line was read from it\n";
    for (from_file, from_stdin) in commands(empty).into_iter().zip(commands("-")) {
        let by_file = osprof(&from_file, Vec::new());
        let by_stdin = osprof(&from_stdin, Vec::new());
        assert_eq!(by_stdin.status, by_file.status, "{from_stdin:?}");
        assert_eq!(by_stdin.stdout, by_file.stdout, "{from_stdin:?}");
        let file_said = stderr(&by_file);
        let stdin_said = stderr(&by_stdin);
        assert!(!file_said.contains("empty"), "{from_file:?}: {file_said}");
        // The note first, then whatever the empty file gets (show: the
        // request is not found).
        assert_eq!(
            stdin_said,
            format!("{SAID}{}", file_said.replace(empty, "-")),
            "{from_stdin:?}"
        );
    }
    // rank and list succeed with an empty table, as for an empty file.
    let rank = osprof(&["rank", "-"], Vec::new());
    assert!(rank.status.success());
    assert!(String::from_utf8_lossy(&rank.stdout).starts_with("Total time | Max time"));
    // Blank lines are lines: an empty log, said nothing of; an empty gzip
    // stream is an empty stdin.
    let blank = osprof(&["rank", "-"], b"\n\n  \n".to_vec());
    assert!(
        blank.status.success() && blank.stderr.is_empty(),
        "{}",
        stderr(&blank)
    );
    let gz = osprof(&["list", "-"], gzip(b""));
    assert!(gz.status.success());
    assert_eq!(stderr(&gz), SAID);
}

#[test]
fn a_log_on_stdin_still_reports_with_foreign_lines_before_it() {
    let log = std::fs::read(FIXTURE).unwrap();
    let clean = osprof(&["rank", "-"], log.clone());
    assert!(clean.status.success());
    assert!(
        !stderr(&clean).contains("standard input"),
        "{}",
        stderr(&clean)
    );
    // Junk first, the log after: a mixed log, reported, exit 0.
    let mut mixed = b"service started\nGET / 200\n".to_vec();
    mixed.extend_from_slice(&log);
    for command in ["rank", "list"] {
        let run = osprof(&[command, "-"], mixed.clone());
        assert!(run.status.success(), "{command}: {}", stderr(&run));
        let said = stderr(&run);
        assert!(
            said.contains("4 unreadable lines (-:1: no timestamp"),
            "{said}"
        );
        assert!(!said.contains("not a profiler log"), "{said}");
    }
    let show = osprof(&["show", IN_FIXTURE, "-"], mixed);
    assert!(show.status.success(), "{}", stderr(&show));
    assert!(String::from_utf8_lossy(&show.stdout).contains("wsgi"));
}

/// The peak resident memory of a running process (`VmHWM`: since its
/// `exec`, so the test process's own memory, shared at `fork`, is not
/// counted, as it is in `wait4`'s).
#[cfg(target_os = "linux")]
fn peak_rss_bytes(pid: u32) -> u64 {
    crate::support::peak::peak_kib(Some(pid)).expect("VmHWM in /proc/PID/status") * 1024
}

/// 96 MiB through a pipe, foreign lines but the last: the tool's peak
/// memory stays far below the input (it is followed line by line as the
/// report streams it, never gathered), the late log line makes it a log;
/// without that line it is named, still without being held.
#[cfg(target_os = "linux")]
#[test]
fn stdin_is_streamed_not_held_for_the_check() {
    const INPUT: usize = 96 << 20;
    let junk_line = format!("{}\n", "j".repeat(1023));
    let log_line = "2020-02-27T08:04:25.000000          aaaaaaaa-0000-4000-8000-000000000001 \
        aaaaaaaa-0000-4000-8000-000000000001 00000001-1111-4111-8111-000000000001 wsgi-start\n";
    for (late_log, exit) in [(true, 0), (false, 1)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_osprof"))
            .args(["rank", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let block = junk_line.repeat(1024);
        for _ in 0..INPUT / block.len() {
            pipe.write_all(block.as_bytes()).unwrap();
        }
        if late_log {
            pipe.write_all(log_line.as_bytes()).unwrap();
        }
        // All but the pipe's buffer is read: the peak of the streaming,
        // taken while the process still lives (it waits for the end).
        let peak = peak_rss_bytes(child.id());
        drop(pipe);
        let output = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(exit), "{said}");
        if late_log {
            assert!(!said.contains("not a profiler log"), "{said}");
        } else {
            assert!(
                said.starts_with("osprof: standard input is not a profiler log"),
                "{said}"
            );
        }
        assert!(
            peak < (INPUT as u64) / 2,
            "peak memory {peak} bytes for {INPUT} bytes of stdin"
        );
    }
}
