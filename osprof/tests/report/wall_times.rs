//! A request whose points are stamped in year 1 and year 9999 (a clock
//! gone wrong, or a hostile peer writing to the store): its wall time gets
//! the bound of a duration, 100 years. Beyond it the wall time is unknown
//! (shown as 0, so it tops no "slowest" list), and the request is named in
//! the notes, as unreadable lines are; every other figure is exact.

use std::process::Command;

use osprof::list::{list, ListOptions};
use osprof::load_request;
use osprof::source::Inputs;
use tracing_osprofiler::Id;

const ABSURD: &str = "a0000000-0000-4000-8000-000000000001";
const NORMAL: &str = "b0000000-0000-4000-8000-000000000002";
/// 100 years less a second apart: still a wall time.
const OLD: &str = "c0000000-0000-4000-8000-000000000003";

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn pair(base: &str, trace: u32, name: &str, start: &str, stop: &str, secs: &str) -> [String; 2] {
    [
        format!("{start}          {base} {base} {} {name}-start", id(trace)),
        format!("{stop} {secs} {base} {base} {} {name}-stop", id(trace)),
    ]
}

fn log() -> (tempfile::TempDir, std::path::PathBuf) {
    let mut lines = Vec::new();
    lines.extend(pair(
        ABSURD,
        1,
        "early",
        "0001-01-01T00:00:00.000000",
        "0001-01-01T00:00:00.100000",
        "0.100000",
    ));
    lines.extend(pair(
        ABSURD,
        2,
        "late",
        "9999-12-31T23:59:59.000000",
        "9999-12-31T23:59:59.500000",
        "0.500000",
    ));
    lines.extend(pair(
        NORMAL,
        3,
        "wsgi",
        "2026-12-01T10:00:00.000000",
        "2026-12-01T10:00:02.250000",
        "2.250000",
    ));
    // 100 years of 365.25 days less one second.
    lines.extend(pair(
        OLD,
        4,
        "first",
        "1926-12-01T12:00:01.000000",
        "1926-12-01T12:00:01.000000",
        "0.000000",
    ));
    lines.extend(pair(
        OLD,
        5,
        "second",
        "2026-12-01T12:00:00.000000",
        "2026-12-01T12:00:00.000000",
        "0.000000",
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wall.log");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (dir, path)
}

#[test]
fn list_bounds_wall_times_as_durations_and_names_the_request() {
    let (_dir, path) = log();
    let inputs = Inputs::from_paths([&path]).unwrap();
    let report = list(&inputs, &ListOptions::new()).unwrap();
    let row = |base: &str| {
        let base: Id = base.parse().unwrap();
        report
            .requests
            .iter()
            .find(|r| r.base_id == base)
            .unwrap_or_else(|| panic!("{base} listed"))
    };
    let absurd = row(ABSURD);
    assert_eq!(absurd.wall, 0.0, "not 315 537 897 600 s");
    assert!(absurd.wall_too_long);
    assert_eq!(absurd.points, 2);
    assert_eq!(absurd.first.to_string(), "0001-01-01T00:00:00.000000");
    assert_eq!(row(NORMAL).wall, 2.25);
    assert!(!row(NORMAL).wall_too_long);
    let old = row(OLD);
    assert!(!old.wall_too_long);
    assert_eq!(old.wall, 100.0 * 365.25 * 86_400.0 - 1.0);
    // Longest first: the absurd one is not the slowest request.
    let order: Vec<String> = report
        .requests
        .iter()
        .map(|r| r.base_id.to_string())
        .collect();
    assert_eq!(order, [OLD, NORMAL, ABSURD]);
    assert_eq!(report.walls_too_long.count, 1);
    assert_eq!(report.walls_too_long.first, [ABSURD.parse::<Id>().unwrap()]);
    assert_eq!(report.unreadable.count, 0);
    let notes = report.notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("more than 100 years") && notes[0].contains(ABSURD),
        "{notes:?}"
    );

    // The tree of the request: the same bound.
    let request = load_request(&inputs, ABSURD.parse().unwrap())
        .unwrap()
        .expect("the request");
    assert!(request.wall_too_long());
    assert_eq!(request.wall_secs(), 0.0);
    let request = load_request(&inputs, OLD.parse().unwrap())
        .unwrap()
        .expect("the request");
    assert!(!request.wall_too_long());
}

#[test]
fn osprof_list_prints_no_absurd_wall_time_in_any_format() {
    let (_dir, path) = log();
    let path = path.to_str().unwrap();
    for format in ["text", "csv", "markdown", "json"] {
        let out = Command::new(env!("CARGO_BIN_EXE_osprof"))
            .args(["list", "--format", format, path])
            .output()
            .expect("run osprof");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {stderr}");
        let all = format!("{stdout}{stderr}");
        assert!(!all.contains("315537897"), "{format}: {all}");
        let note = if format == "json" {
            "\"walls_too_long\""
        } else {
            "more than 100 years"
        };
        assert!(all.contains(note), "{format}: {all}");
        assert!(all.contains(ABSURD), "{format}: {all}");
        let absurd_line = stdout
            .lines()
            .find(|l| l.contains(ABSURD))
            .unwrap_or_default();
        if format != "json" {
            assert!(
                absurd_line.contains("0.000000") || absurd_line.contains(",0.000000,"),
                "{format}: {absurd_line}"
            );
        }
    }
}

#[test]
fn osprof_show_says_the_wall_time_is_unknown() {
    let (_dir, path) = log();
    let out = Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args(["show", ABSURD, path.to_str().unwrap()])
        .output()
        .expect("run osprof");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = stdout.lines().next().unwrap_or_default();
    assert!(
        header.ends_with("wall unknown (the points span more than 100 years)"),
        "{stdout}"
    );
}
