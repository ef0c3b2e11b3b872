//! Busy time in the reports (docs/reports.md): lines with and without it in
//! one log, unknown never shown as 0 and left out of the busy figures with
//! a count, and `rank` without `--busy` unchanged by it.
#![cfg(feature = "cli")]

use std::process::Command;
use std::time::Duration;

use osprof::rank::{rank, Column, RankOptions};
use osprof::source::Inputs;
use osprof::Format;
use tracing_osprofiler::format::{
    write_start, write_stop, write_stop_with_busy, PointIds, PointName, Timestamp,
};
use tracing_osprofiler::Id;

/// (trace, parent, name, begin µs, wall µs, busy µs, slow)
type TestPoint = (u128, u128, &'static str, i64, u64, Option<u64>, bool);

fn id(n: u128) -> Id {
    Id::parse(&format!("00000000-0000-4000-8000-{n:012x}")).unwrap()
}

/// One request, `base`, of a Rust service (busy times) calling a Python
/// one (none): `wsgi` > `db` x2 (sleeps: busy far below wall), `hash`
/// (CPU: busy close to wall), then the Python side's `py-wsgi` > `py-db`.
/// Returns the log, and the same log without any busy time.
pub fn mixed_busy_log(base: u128) -> (Vec<u8>, Vec<u8>) {
    let mut with = Vec::new();
    let mut without = Vec::new();
    let t0 = 1_582_790_665_000_000 + (base as i64) * 10_000_000;
    let ids = |parent: u128, trace: u128| PointIds {
        base_id: id(base),
        parent_id: id(parent),
        trace_id: id(trace),
    };
    let points: [TestPoint; 6] = [
        (base + 1, base, "wsgi", 0, 900_000, Some(40_000), true),
        (base + 2, base + 1, "db", 1_000, 200_000, Some(1_500), false),
        (base + 3, base + 1, "db", 210_000, 100_000, Some(500), false),
        (
            base + 4,
            base + 1,
            "hash",
            320_000,
            30_000,
            Some(29_000),
            false,
        ),
        (base + 5, base + 1, "py-wsgi", 400_000, 300_000, None, false),
        (base + 6, base + 5, "py-db", 410_000, 250_000, None, false),
    ];
    for out in [&mut with, &mut without] {
        for &(trace, parent, name, begin, _, _, _) in &points {
            write_start(
                out,
                Timestamp::from_unix_micros(t0 + begin),
                &ids(parent, trace),
                PointName::new(name),
                None,
            );
        }
    }
    for &(trace, parent, name, begin, wall, busy, slow) in points.iter().rev() {
        let at = Timestamp::from_unix_micros(t0 + begin + wall as i64);
        let wall = Duration::from_micros(wall);
        let ids = ids(parent, trace);
        let busy = busy.map(Duration::from_micros);
        write_stop_with_busy(&mut with, at, wall, busy, &ids, PointName::new(name), slow);
        write_stop(&mut without, at, wall, &ids, PointName::new(name), slow);
    }
    (with, without)
}

fn write_log(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn lines_with_and_without_busy_time_in_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = mixed_busy_log(0x100);
    let (b, _) = mixed_busy_log(0x200);
    let log = write_log(dir.path(), "mixed.log", &[a, b].concat());
    let inputs = Inputs::from_paths([&log]).unwrap();
    for self_time in [false, true] {
        let options = RankOptions::new().with_busy(true).with_self_time(self_time);
        let report = rank(&inputs, &options).unwrap();
        let row = |name: &str| report.rows.iter().find(|r| r.name == name).unwrap();
        let db = row("db").busy.unwrap();
        assert_eq!((db.known, db.unknown), (4, 0));
        assert!((db.total.unwrap() - 0.004).abs() < 1e-9, "{db:?}");
        assert!((db.avg.unwrap() - 0.001).abs() < 1e-9, "{db:?}");
        let hash = row("hash");
        assert!((hash.busy.unwrap().total.unwrap() - 0.058).abs() < 1e-9);
        assert!((hash.total - 0.060).abs() < 1e-9);
        // The Python side: unknown, not 0, and counted.
        let py = row("py-db").busy.unwrap();
        assert_eq!((py.total, py.avg, py.known, py.unknown), (None, None, 0, 2));
    }

    // JSON: the keys, in seconds; unknown is null.
    let report = rank(
        &inputs,
        &RankOptions::new().with_busy(true).with_format(Format::Json),
    )
    .unwrap();
    let mut out = Vec::new();
    report.write(&mut out).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let by_name = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap();
    assert_eq!(by_name("wsgi")["busy_total"], 0.08);
    assert_eq!(by_name("wsgi")["busy_avg"], 0.04);
    assert_eq!(by_name("py-wsgi")["busy_total"], serde_json::Value::Null);
    assert_eq!(by_name("py-wsgi")["busy_avg"], serde_json::Value::Null);
    assert_eq!(by_name("py-wsgi")["busy_unknown"], 2);

    // Text, CSV, Markdown through the binary: `-` (empty in CSV), never 0,
    // and a note on stderr with the count.
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_osprof"))
            .arg("rank")
            .args(args)
            .arg(&log)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (text, notes) = run(&["--busy"]);
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("Busy total | Busy avg | Busy unknown | Trace name"),
        "{text}"
    );
    let py_line = text.lines().find(|l| l.ends_with(" py-db")).unwrap();
    let cells: Vec<&str> = py_line.split_whitespace().collect();
    assert_eq!(&cells[4..], ["-", "-", "2", "py-db"], "{text}");
    let db_line = text.lines().find(|l| l.ends_with(" db")).unwrap();
    let cells: Vec<&str> = db_line.split_whitespace().collect();
    assert_eq!(&cells[4..], ["0.004", "0.001", "0", "db"], "{text}");
    assert!(
        notes.contains("busy time unknown for 4 of 12 points"),
        "{notes}"
    );
    let (csv, _) = run(&["--busy", "--format", "csv"]);
    assert!(csv.starts_with("total,max,avg,count,busy_total,busy_avg,busy_unknown,name\n"));
    assert!(csv.contains(",,,2,py-db\n"), "{csv}");
    let (md, _) = run(&["--busy", "--format", "markdown", "--unit", "ms"]);
    assert!(
        md.contains("| Busy total (ms) | Busy avg (ms) | Busy unknown |"),
        "{md}"
    );
    assert!(md.contains("| - | - | 2 | py-db |"), "{md}");

    // --sort busy: by known busy total, unknown last (and it turns --busy on).
    let (sorted, _) = run(&["--sort", "busy"]);
    let names: Vec<&str> = sorted
        .lines()
        .skip(2)
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(names[..3], ["wsgi", "hash", "db"], "{sorted}");
    assert!(names[3..].iter().all(|n| n.starts_with("py-")), "{sorted}");
    // And the unknown rows are there, not merely absent.
    assert!(
        ["py-wsgi", "py-db"].iter().all(|n| names[3..].contains(n)),
        "{sorted}"
    );
}

#[test]
fn reports_without_busy_are_unchanged_by_busy_times() {
    let dir = tempfile::tempdir().unwrap();
    let (with, without) = mixed_busy_log(0x300);
    let with = write_log(dir.path(), "with.log", &with);
    let without = write_log(dir.path(), "without.log", &without);
    for args in [
        &["rank"][..],
        &["rank", "--self", "--percentiles"],
        &["rank", "--format", "json"],
        &["rank", "--format", "csv", "--unit", "us"],
    ] {
        let run = |log: &std::path::Path| {
            let out = Command::new(env!("CARGO_BIN_EXE_osprof"))
                .args(args)
                .arg(log)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?} {out:?}");
            String::from_utf8(out.stdout)
                .unwrap()
                .replace(with.to_str().unwrap(), "LOG")
                .replace(without.to_str().unwrap(), "LOG")
        };
        let (a, b) = (run(&with), run(&without));
        assert!(!a.contains("usy"), "{args:?}: {a}");
        assert_eq!(a, b, "{args:?}");
    }
    // The sort by busy is refused nowhere, also on a log without any.
    let report = rank(
        &Inputs::from_paths([&without]).unwrap(),
        &RankOptions::new().with_busy(true).with_sort(Column::Busy),
    )
    .unwrap();
    assert!(!report.rows.is_empty(), "rows to check");
    assert!(report.rows.iter().all(|r| r.busy.unwrap().total.is_none()));
}

fn osprof_stdout(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn show_prints_busy_beside_wall_and_draws_the_idle_share_pale() {
    let dir = tempfile::tempdir().unwrap();
    let (with, without) = mixed_busy_log(0x400);
    let with = write_log(dir.path(), "with.log", &with);
    let without = write_log(dir.path(), "without.log", &without);
    let base = id(0x400).to_string();
    let tree = osprof_stdout(&["show", &base, with.to_str().unwrap()]);
    let header = tree.lines().nth(1).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["start", "ms", "duration", "ms", "busy", "ms", "self", "ms", "log", "name"],
        "{tree}"
    );
    let row = |name: &str| -> Vec<String> {
        let line = tree
            .lines()
            .find(|l| l.trim_end().ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} in {tree}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    // start, duration, busy, self.
    assert_eq!(row("hash")[..3], ["320.000", "30.000", "29.000"], "{tree}");
    assert_eq!(row("wsgi")[..3], ["0.000", "900.000", "40.000"], "{tree}");
    assert_eq!(row("py-db")[..3], ["410.000", "250.000", "-"], "{tree}");
    assert!(
        tree.contains("\nbusy: the time a point's span was entered"),
        "{tree}"
    );
    // Without any busy time, the tree is as before.
    let plain = osprof_stdout(&["show", &base, without.to_str().unwrap()]);
    assert!(!plain.contains("busy"), "{plain}");

    let svg = osprof_stdout(&["show", &base, "--format", "svg", with.to_str().unwrap()]);
    assert!(svg.contains("idle share (pale)"), "legend");
    assert!(svg.contains("busy 1.500 ms (entered on a thread), idle 198.500 ms"));
    assert!(svg.contains("busy unknown (its log gives none)"));
    // Five bars with a known busy time: pale, each with a solid busy part
    // (`hash`'s nearly as long as its bar).
    assert_eq!(svg.matches("fill-opacity=\"0.35\" stroke").count(), 4 + 1);
    let plain_svg = osprof_stdout(&["show", &base, "--format", "svg", without.to_str().unwrap()]);
    assert!(!plain_svg.contains("fill-opacity") && !plain_svg.contains("busy"));
    // osprofiler's JSON and Chrome's: the busy time where it is known only.
    let json = osprof_stdout(&["show", &base, "--format", "json", with.to_str().unwrap()]);
    assert_eq!(json.matches("\"busy\": ").count(), 4, "{json}");
    assert!(json.contains("\"busy\": 0.029"), "{json}");
    let chrome = osprof_stdout(&["show", &base, "--format", "chrome", with.to_str().unwrap()]);
    assert_eq!(chrome.matches("\"busy_ms\":").count(), 4, "{chrome}");
    assert!(chrome.contains("\"busy_ms\":29.0,"), "{chrome}");
    let html = osprof_stdout(&["show", &base, "--format", "html", with.to_str().unwrap()]);
    assert!(html.contains("<th>busy ms</th>"));
    assert!(html.contains("<td class=\"num\">29.000</td>"));
}

#[test]
fn list_has_a_busy_column_for_the_roots_that_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let (with, _) = mixed_busy_log(0x500);
    let (_, without) = mixed_busy_log(0x600);
    let log = write_log(dir.path(), "list.log", &[with, without].concat());
    let log = log.to_str().unwrap();
    let text = osprof_stdout(&["list", log]);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header[..8],
        [
            "Base",
            "id",
            "First",
            "timestamp",
            "Wall",
            "time",
            "(s)",
            "Busy"
        ]
    );
    let row = |base: u128| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(&id(base).to_string()))
            .unwrap();
        line.split_whitespace().map(str::to_owned).collect()
    };
    // base_id, first, wall, busy, points.
    assert_eq!(row(0x500)[2..5], ["0.900000", "0.040000", "6"], "{text}");
    assert_eq!(row(0x600)[2..5], ["0.900000", "-", "6"], "{text}");
    let csv = osprof_stdout(&["list", "--format", "csv", log]);
    assert!(csv.starts_with("base_id,first,wall,busy,points,"), "{csv}");
    assert!(csv.contains(",0.900000,,6,"), "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&osprof_stdout(&["list", "--format", "json", log])).unwrap();
    let requests = json["requests"].as_array().unwrap();
    let by_base = |base: u128| {
        requests
            .iter()
            .find(|r| r["base_id"] == id(base).to_string())
            .unwrap()
    };
    assert_eq!(by_base(0x500)["busy"], 0.04);
    assert!(by_base(0x600).get("busy").is_none());
    // A log without any busy time lists as before.
    let (_, plain) = mixed_busy_log(0x700);
    let plain = write_log(dir.path(), "plain.log", &plain);
    assert!(!osprof_stdout(&["list", plain.to_str().unwrap()]).contains("Busy"));
}
