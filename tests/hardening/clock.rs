//! Clock steps: a wall-clock step backwards or forwards during a request
//! never produces a negative or absurd duration, because durations come from
//! the monotonic clock while timestamps come from the wall clock.
//!
//! The wall clock is stepped for real, for one child process only, with
//! libfaketime (Debian's `libfaketime` package): the child rewrites its own
//! `FAKETIME_TIMESTAMP_FILE` while a span is open. `.ci/run` installs it; if
//! it is missing the test fails and names the package.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing_osprofiler::format::{parse_line, Phase};
use tracing_osprofiler::{HmacAlgorithm, Profile, Signer};

use support::child::child_test;
use support::Capture;

use crate::support::system::{self, LIBFAKETIME};

fn step_clock(file: &Path, offset: &str) {
    std::fs::write(file, offset).unwrap();
    // Let a few clock reads pass so that libfaketime has picked it up.
    std::thread::sleep(Duration::from_millis(30));
}

/// The child half: runs under libfaketime and prints its profile lines.
#[test]
#[ignore = "the child half of another test, which runs it in a process of its own"]
fn child_with_a_stepping_clock() {
    let Some(file) = std::env::var_os("FAKETIME_TIMESTAMP_FILE") else {
        return;
    };
    let file = PathBuf::from(file);
    let lines = Capture::new();
    tracing::subscriber::with_default(lines.subscriber(), || {
        let root = Profile::new(Signer::new("k", HmacAlgorithm::Sha1))
            .start(|| tracing::info_span!("request"));
        root.in_scope(|| {
            {
                let _back = tracing::info_span!("backwards").entered();
                step_clock(&file, "-1h");
            }
            {
                let _fwd = tracing::info_span!("forwards").entered();
                step_clock(&file, "+1h");
            }
        });
    });
    let text = String::from_utf8(lines.bytes()).unwrap();
    println!("BEGIN-LINES\n{text}END-LINES");
}

#[test]
fn durations_survive_wall_clock_steps() {
    system::require(
        LIBFAKETIME,
        "libfaketime",
        "durations_survive_wall_clock_steps",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("faketime");
    std::fs::write(&file, "+0").unwrap();
    let output = child_test("clock::child_with_a_stepping_clock")
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", &file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let block = stdout
        .split("BEGIN-LINES\n")
        .nth(1)
        .and_then(|rest| rest.split("END-LINES").next())
        .expect("the child printed its lines");
    let lines: Vec<_> = block
        .lines()
        .map(|l| parse_line(l.as_bytes()).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let find = |name: &str, phase| {
        lines
            .iter()
            .find(|l| l.name == name && l.phase == phase)
            .unwrap_or_else(|| panic!("no {name} {phase:?} in\n{block}"))
    };
    // The wall clock really stepped: the stop line of `backwards` carries a
    // timestamp about an hour before its start line's.
    let back_start = find("backwards", Phase::Start).timestamp.unix_micros();
    let back_stop = find("backwards", Phase::Stop).timestamp.unix_micros();
    assert!(
        back_start - back_stop > 3_500_000_000,
        "clock did not step back:\n{block}"
    );
    let fwd_start = find("forwards", Phase::Start).timestamp.unix_micros();
    let fwd_stop = find("forwards", Phase::Stop).timestamp.unix_micros();
    assert!(
        fwd_stop - fwd_start > 3_500_000_000,
        "clock did not step forward:\n{block}"
    );
    // Yet every duration is the real, small, positive time that passed.
    for name in ["backwards", "forwards", "request"] {
        let duration = find(name, Phase::Stop).duration.unwrap();
        assert!(
            (0.02..5.0).contains(&duration),
            "{name} lasted {duration} s:\n{block}"
        );
    }
}
