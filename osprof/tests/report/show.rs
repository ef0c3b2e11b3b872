//! `osprof show` renderings: golden files for every format, structural
//! checks (JSON shape, Chrome lanes that nest, well-formed SVG), interop
//! with osprofiler 4.4.0's own report code and CLI, and a headless
//! Chromium screenshot of the SVG and the HTML page.
//!
//! `UPDATE_GOLDEN=1 cargo test --all-features --test report_show` rewrites
//! the golden files in `tests/golden/`.

use crate::support::python as common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use osprof::model::{Point, Request, Tree};
use osprof::show;
use serde_json::Value;
use tracing_osprofiler::format::{PointIds, Timestamp};
use tracing_osprofiler::Id;

const T0: i64 = 1_700_000_000_123_456;

fn id(n: u128) -> Id {
    Id::from_uuid(uuid::Uuid::from_u128(
        0x5e1f_0000_0000_4000_8000_0000_0000_0000 | n,
    ))
}

fn base() -> Id {
    id(0xba5e)
}

/// A point of the fixture request; times in ms from T0.
fn point(
    name: &str,
    trace: u128,
    parent: Option<u128>,
    start_ms: Option<f64>,
    stop_ms: Option<f64>,
    duration_ms: Option<f64>,
    source: usize,
) -> Point {
    let at = |ms: f64| Timestamp::from_unix_micros(T0 + (ms * 1000.0).round() as i64);
    Point {
        name: name.to_owned(),
        ids: PointIds {
            base_id: base(),
            parent_id: parent.map_or(base(), id),
            trace_id: id(trace),
        },
        start: start_ms.map(at),
        stop: stop_ms.map(at),
        duration: duration_ms.map(|d| d / 1000.0),
        busy: None,
        source,
    }
}

fn finished(
    name: &str,
    trace: u128,
    parent: Option<u128>,
    begin: f64,
    end: f64,
    src: usize,
) -> Point {
    point(
        name,
        trace,
        parent,
        Some(begin),
        Some(end),
        Some(end - begin),
        src,
    )
}

/// Two services (logs 0 and 1), concurrent children, a point without its
/// stop line, one without its start line, and names that need escaping.
fn fixture() -> Request {
    Request {
        base_id: base(),
        points: vec![
            finished("api-request", 1, None, 0.0, 120.0, 0),
            finished("auth & <check>", 2, Some(1), 2.0, 12.5, 0),
            finished("rpc-call", 3, Some(1), 15.0, 112.0, 0),
            finished("engine \"run\"", 4, Some(3), 20.0, 110.0, 1),
            finished("worker-żółw ✓ 'w'", 5, Some(3), 30.0, 70.25, 1),
            finished("db-select", 6, Some(4), 25.0, 45.0, 1),
            finished("db-update", 7, Some(4), 50.0, 58.0, 1),
            point("cache-fill", 8, Some(1), Some(100.0), None, None, 0),
            point("notify", 9, Some(1), None, Some(106.0), Some(10.0), 0),
        ],
        sources: vec![0, 1],
    }
}

type Writer = fn(&Tree<'_>, &mut dyn std::io::Write) -> std::io::Result<()>;

fn render(request: &Request, write: Writer) -> String {
    let tree = Tree::new(request);
    let mut out = Vec::new();
    write(&tree, &mut out).expect("write to a Vec");
    String::from_utf8(out).expect("utf-8 output")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn check_golden(file: &str, actual: &str) {
    let path = golden_dir().join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("create golden dir");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\nexpected: {:?}\nactual:   {:?}\n\
             (UPDATE_GOLDEN=1 rewrites it after review)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

#[test]
fn golden_files_for_every_format() {
    let request = fixture();
    check_golden("show.txt", &render(&request, show::write_text_tree));
    check_golden(
        "show.osprofiler.json",
        &render(&request, show::write_osprofiler_json),
    );
    check_golden(
        "show.chrome.json",
        &render(&request, show::write_chrome_trace),
    );
    check_golden("show.svg", &render(&request, show::write_svg));
    check_golden("show.html", &render(&request, show::write_html));
}

#[test]
fn text_tree_marks_the_critical_path_and_unfinished_points() {
    let text = render(&fixture(), show::write_text_tree);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
            .to_owned()
    };
    assert!(text.starts_with(&format!(
        "request {}: 9 points from 2 logs, wall 120.000 ms\n",
        base()
    )));
    // start, duration, self, log, marks, indented name
    let api = line("api-request");
    assert!(
        api.contains("0.000") && api.contains("120.000") && api.contains("  *   api-request"),
        "{api}"
    );
    // rpc-call's children (engine, worker) overlap: its self time counts their union once.
    let rpc = line("rpc-call");
    assert!(
        rpc.contains("15.000") && rpc.contains("97.000") && rpc.contains("7.000"),
        "{rpc}"
    );
    assert!(rpc.contains("*     rpc-call"), "{rpc}");
    // engine's children run one after the other: the later one is on the path.
    assert!(line("db-update").contains("*         db-update"));
    assert!(line("db-select").contains("1            db-select"));
    let cache = line("cache-fill");
    assert!(
        cache.contains(" !    cache-fill") && cache.contains("100.000"),
        "{cache}"
    );
    assert_eq!(
        cache.matches(" - ").count(),
        2,
        "no duration, no self time: {cache}"
    );
    let notify = line("notify");
    assert!(
        notify.contains(" !    notify") && notify.contains("96.000"),
        "{notify}"
    );
    assert!(text
        .lines()
        .last()
        .unwrap()
        .starts_with("legend: * critical path"));
}

#[test]
fn text_tree_escapes_control_characters() {
    let mut request = fixture();
    request.points[0].name = "evil\u{1b}[2Jname".into();
    let text = render(&request, show::write_text_tree);
    assert!(!text.contains('\u{1b}'));
    assert!(text.contains("evil\\u{1b}[2Jname"));
}

#[test]
fn osprofiler_json_has_osprofilers_structure() {
    let json: Value =
        serde_json::from_str(&render(&fixture(), show::write_osprofiler_json)).expect("valid JSON");
    assert_eq!(json["info"]["name"], "total");
    assert_eq!(json["info"]["started"], 0);
    assert_eq!(json["info"]["finished"], 120);
    assert_eq!(json["info"]["last_trace_started"], 100);
    let roots = json["children"].as_array().unwrap();
    assert_eq!(roots.len(), 1);
    let api = &roots[0];
    assert_eq!(api["trace_id"], id(1).to_string());
    assert_eq!(api["parent_id"], base().to_string());
    let names: Vec<&str> = api["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["info"]["name"].as_str().unwrap())
        .collect();
    // sorted by `started`; osprofiler's stop-only point starts at its stop line
    assert_eq!(
        names,
        ["auth & <check>", "rpc-call", "cache-fill", "notify"]
    );
    let children = api["children"].as_array().unwrap();
    let cache = &children[2]["info"];
    assert_eq!(
        (cache["started"].as_i64(), cache["finished"].as_i64()),
        (Some(100), Some(100))
    );
    assert!(cache.get("exception").is_none());
    assert!(cache.get("meta.raw_payload.cache-fill-stop").is_none());
    let notify = &children[3]["info"];
    assert_eq!(
        (notify["started"].as_i64(), notify["finished"].as_i64()),
        (Some(106), Some(106))
    );
    assert_eq!(notify["exception"], "None");
    assert_eq!(
        notify["meta.raw_payload.notify-stop"]["info"]["duration"],
        0.01
    );
    let auth = &children[0]["info"];
    assert_eq!(
        (auth["started"].as_i64(), auth["finished"].as_i64()),
        (Some(2), Some(12))
    );
    assert_eq!(
        auth["meta.raw_payload.auth & <check>-start"]["name"],
        "auth & <check>-start"
    );
    assert_eq!(auth["project"], Value::Null);
    let rpc = &children[1];
    let engine = &rpc["children"][0];
    assert_eq!(engine["info"]["name"], "engine \"run\"");
    assert_eq!(engine["children"].as_array().unwrap().len(), 2);
    assert_eq!(json["stats"]["rpc-call"]["count"], 1);
    assert_eq!(json["stats"]["rpc-call"]["duration"], 97);
    assert_eq!(json["stats"]["cache-fill"]["duration"], 0);
    assert_eq!(json["stats"].as_object().unwrap().len(), 9);
}

/// The events Python's osprofiler driver would have received for `request`
/// (its `_append_results` arguments), as JSON for the interop script.
fn driver_events(request: &Request) -> String {
    let mut events = Vec::new();
    for p in &request.points {
        let payload = |suffix: &str, ts: Timestamp| {
            let mut v = serde_json::json!({
                "name": format!("{}-{suffix}", p.name),
                "base_id": p.ids.base_id.to_string(),
                "trace_id": p.ids.trace_id.to_string(),
                "parent_id": p.ids.parent_id.to_string(),
                "timestamp": ts.to_string(),
            });
            if suffix == "stop" {
                if let Some(d) = p.duration {
                    v["info"] = serde_json::json!({ "duration": d });
                }
            }
            v
        };
        for (suffix, ts) in [("start", p.start), ("stop", p.stop)] {
            if let Some(ts) = ts {
                events.push(serde_json::json!({
                    "trace_id": p.ids.trace_id.to_string(),
                    "parent_id": p.ids.parent_id.to_string(),
                    "name": format!("{}-{suffix}", p.name),
                    "timestamp": ts.to_string(),
                    "raw_payload": payload(suffix, ts),
                }));
            }
        }
    }
    Value::Array(events).to_string()
}

const PY_REPORT: &str = r#"
import json, sys
from osprofiler.drivers import base
driver = base.Driver("log://")
for e in json.load(open(sys.argv[1])):
    driver._append_results(e["trace_id"], e["parent_id"], e["name"], None, None, None,
                           e["timestamp"], e["raw_payload"])
print(json.dumps(driver._parse_results(), indent=2, separators=(",", ": ")))
"#;

/// osprofiler keeps only the part of a name before its first `-`; with
/// names without `-` its report and ours must be equal, field for field.
#[test]
fn osprofiler_json_equals_osprofilers_own_report() {
    let mut request = fixture();
    for p in &mut request.points {
        p.name = p.name.replace('-', "_");
    }
    // A tie at millisecond resolution: osprofiler keeps the read order.
    request
        .points
        .push(finished("late_sibling", 10, Some(1), 2.4, 3.0, 0));
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    std::fs::write(&events, driver_events(&request)).unwrap();
    let output = common::run_python(PY_REPORT, &[events.to_str().unwrap()]);
    let python: Value = serde_json::from_slice(&output.stdout).expect("python JSON");
    let ours: Value = serde_json::from_str(&render(&request, show::write_osprofiler_json)).unwrap();
    assert_eq!(ours, python, "ours:\n{ours:#}\npython:\n{python:#}");
}

/// `osprofiler trace show --json FILE` (the CLI) loads our file and writes
/// it back unchanged; `--html` renders it.
#[test]
fn osprofiler_cli_reads_our_report() {
    let dir = tempfile::tempdir().unwrap();
    let ours = render(&fixture(), show::write_osprofiler_json);
    let file = dir.path().join("trace.json");
    std::fs::write(&file, &ours).unwrap();
    let script = "import sys\nfrom osprofiler.cmd import shell\nsys.exit(shell.main(sys.argv[1:]))";
    for (format, out) in [("--json", "out.json"), ("--html", "out.html")] {
        let out = dir.path().join(out);
        common::run_python(
            script,
            &[
                "trace",
                "show",
                "--connection-string",
                "redis://127.0.0.1:1",
                format,
                "--out",
                out.to_str().unwrap(),
                file.to_str().unwrap(),
            ],
        );
        let written = std::fs::read_to_string(&out).unwrap();
        if format == "--json" {
            let back: Value = serde_json::from_str(&written).unwrap();
            assert_eq!(back, serde_json::from_str::<Value>(&ours).unwrap());
        } else {
            assert!(written.contains("rpc-call") && written.contains("\"finished\": 120"));
        }
    }
}

#[test]
fn osprofiler_json_keeps_dashed_names_whole() {
    let json: Value =
        serde_json::from_str(&render(&fixture(), show::write_osprofiler_json)).unwrap();
    assert_eq!(json["children"][0]["info"]["name"], "api-request");
    assert!(json["stats"].get("api-request").is_some());
}

fn chrome_events(request: &Request) -> Vec<Value> {
    let json: Value =
        serde_json::from_str(&render(request, show::write_chrome_trace)).expect("valid JSON");
    assert_eq!(json["displayTimeUnit"], "ms");
    json["traceEvents"].as_array().expect("traceEvents").clone()
}

/// Events on one (pid, tid) must nest: sorted by begin (longer first),
/// each must end before the enclosing open one does.
fn assert_lanes_nest(events: &[Value]) {
    type Span = (i64, i64, String);
    let mut lanes: BTreeMap<(u64, u64), Vec<Span>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let ts = e["ts"].as_i64().unwrap();
        let dur = e["dur"].as_i64().unwrap();
        assert!(dur >= 0);
        lanes
            .entry((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
            .or_default()
            .push((ts, ts + dur, e["name"].as_str().unwrap().to_owned()));
    }
    // Nesting holds trivially of no event at all: a render without any
    // complete event is a failure of its own.
    assert!(!lanes.is_empty(), "no complete (\"X\") event to check");
    for (lane, mut spans) in lanes {
        spans.sort_by_key(|&(b, e, _)| (b, std::cmp::Reverse(e)));
        let mut open: Vec<Span> = Vec::new();
        for span in spans {
            while open.last().is_some_and(|top| top.1 <= span.0) {
                open.pop();
            }
            if let Some(top) = open.last() {
                assert!(
                    span.1 <= top.1,
                    "lane {lane:?}: {span:?} overlaps {top:?} without nesting"
                );
            }
            open.push(span);
        }
    }
}

#[test]
fn chrome_trace_has_processes_lanes_and_args() {
    let events = chrome_events(&fixture());
    assert_lanes_nest(&events);
    let by_name: HashMap<&str, &Value> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(by_name.len(), 9);
    let engine = by_name["engine \"run\""];
    let worker = by_name["worker-żółw ✓ 'w'"];
    assert_eq!(engine["pid"], worker["pid"]);
    assert_ne!(
        engine["tid"], worker["tid"],
        "concurrent siblings share a lane"
    );
    assert_eq!(
        by_name["db-select"]["tid"], engine["tid"],
        "a nested child leaves its parent's lane"
    );
    assert_ne!(
        by_name["api-request"]["pid"], engine["pid"],
        "two logs, one process"
    );
    let api = by_name["api-request"];
    assert_eq!(
        (api["ts"].as_i64(), api["dur"].as_i64()),
        (Some(0), Some(120_000))
    );
    assert_eq!(api["args"]["base_id"], base().to_string());
    assert_eq!(api["args"]["trace_id"], id(1).to_string());
    assert_eq!(api["args"]["critical_path"], true);
    let rpc = by_name["rpc-call"];
    assert_eq!(rpc["args"]["self_ms"].as_f64(), Some(7.0));
    assert_eq!(rpc["args"]["parent_id"], id(1).to_string());
    let cache = by_name["cache-fill"];
    assert_eq!(
        (cache["ts"].as_i64(), cache["dur"].as_i64()),
        (Some(100_000), Some(0))
    );
    assert_eq!(cache["args"]["unfinished"], "no stop line");
    assert_eq!(by_name["notify"]["ts"].as_i64(), Some(96_000));
    assert_eq!(by_name["notify"]["args"]["unfinished"], "no start line");
    let processes: Vec<(u64, &str)> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .map(|e| {
            (
                e["pid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(processes, [(1, "log 0"), (2, "log 1")]);
}

#[test]
fn chrome_lanes_nest_for_many_overlapping_points() {
    // A root with 40 children that overlap in a staircase, each with a child.
    let mut points = vec![finished("root", 1, None, 0.0, 1000.0, 0)];
    for k in 0..40u32 {
        let begin = f64::from(k) * 7.0;
        points.push(finished(
            "step",
            100 + u128::from(k),
            Some(1),
            begin,
            begin + 300.0,
            0,
        ));
        points.push(finished(
            "inner",
            200 + u128::from(k),
            Some(100 + u128::from(k)),
            begin + 1.0,
            begin + 250.0,
            0,
        ));
    }
    let request = Request {
        base_id: base(),
        points,
        sources: vec![0],
    };
    let events = chrome_events(&request);
    assert_lanes_nest(&events);
}

#[test]
fn deep_and_wide_trees_render_without_overflowing() {
    // Run on a thread with the default 2 MiB stack: recursion would overflow.
    std::thread::spawn(|| {
        let depth = 20_000u32;
        let points: Vec<Point> = (0..depth)
            .map(|k| {
                let k128 = u128::from(k);
                let parent = if k == 0 { None } else { Some(k128) };
                finished(
                    "deep",
                    k128 + 1,
                    parent,
                    f64::from(k) * 0.01,
                    500.0 - f64::from(k) * 0.01,
                    0,
                )
            })
            .collect();
        let deep = Request {
            base_id: base(),
            points,
            sources: vec![0],
        };
        let wide = Request {
            base_id: base(),
            points: (0..3000u32)
                .map(|k| finished("wide", u128::from(k) + 1, None, f64::from(k % 50), 100.0, 0))
                .collect(),
            sources: vec![0],
        };
        for request in [&deep, &wide] {
            let tree = Tree::new(request);
            let writers: [Writer; 5] = [
                show::write_text_tree,
                show::write_osprofiler_json,
                show::write_chrome_trace,
                show::write_svg,
                show::write_html,
            ];
            for write in writers {
                write(&tree, &mut std::io::sink()).unwrap();
            }
        }
        // Output stays linear in the number of points (indentation is capped),
        // with every point in it and every bracket closed.
        let json = render(&deep, show::write_osprofiler_json);
        assert!(json.len() < 20_000 * 10_000, "{} bytes", json.len());
        assert_eq!(json.matches("\"children\": ").count(), 20_000 + 1);
        assert_eq!(json.matches('[').count(), json.matches(']').count());
        assert_eq!(json.matches('{').count(), json.matches('}').count());
        let text = render(&deep, show::write_text_tree);
        assert!(text.len() < 20_000 * 300, "{} bytes", text.len());
        assert!(text.contains("[depth 19999] deep"));
    })
    .join()
    .expect("rendering thread");
}

/// With the logs named, every rendering says which log is which; without,
/// the output is the golden files'.
#[test]
fn every_format_names_the_logs_when_told() {
    use osprof::show::{ShowFormat, ShowOptions};
    let request = fixture();
    let tree = Tree::new(&request);
    let logs = [
        "/var/log/api/api.log",
        "/var/log/engine/engine\u{1b}[2J.log",
    ];
    let render_named = |format| {
        let options = ShowOptions::new().with_format(format).with_log_names(logs);
        let mut out = Vec::new();
        show::write(&tree, &options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let text = render_named(ShowFormat::Tree);
    assert!(text
        .ends_with("logs: 0 = /var/log/api/api.log, 1 = /var/log/engine/engine\\u{1b}[2J.log\n"));
    let chrome: Value = serde_json::from_str(&render_named(ShowFormat::Chrome)).unwrap();
    let names: Vec<&str> = chrome["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "log 0: /var/log/api/api.log",
            "log 1: /var/log/engine/engine\u{1b}[2J.log"
        ]
    );
    let svg = render_named(ShowFormat::Svg);
    assert!(svg.contains(">log 0: api.log</text>"), "{svg}");
    assert!(svg.contains(">log 1: engine\\u{1b}[2J.log</text>"));
    assert!(svg.contains("\nlog 1: /var/log/engine/engine\\u{1b}[2J.log\n"));
    let html = render_named(ShowFormat::Html);
    assert!(html.contains("<p class=\"summary\">logs: 0 = /var/log/api/api.log, 1 = "));
    // Unnamed: the golden files.
    let options = ShowOptions::new().with_format(ShowFormat::Svg);
    let mut out = Vec::new();
    show::write(&tree, &options, &mut out).unwrap();
    assert_eq!(out, render(&request, show::write_svg).into_bytes());
}

/// Every shape that once made `show` super-linear, in every format: each
/// point is in the output once (`src/show/scale.rs` checks the steps on
/// 100 000 points; `benches/show.rs` times them).
#[test]
fn every_shape_renders_whole_in_every_format() {
    for (name, request) in crate::shapes::all(2_000) {
        let n = request.points.len();
        let text = render(&request, show::write_text_tree);
        assert_eq!(text.lines().count(), n + 3, "{name}");
        // Nested 2 000 deep: more than serde_json parses; counted instead.
        let json = render(&request, show::write_osprofiler_json);
        assert_eq!(json.matches("\"children\": ").count(), n + 1, "{name}");
        assert_eq!(json.matches('{').count(), json.matches('}').count());
        assert_eq!(json.matches('[').count(), json.matches(']').count());
        let events = chrome_events(&request);
        assert_eq!(
            events.iter().filter(|e| e["ph"] == "X").count(),
            n,
            "{name}"
        );
        assert_lanes_nest(&events);
        for write in [show::write_svg as Writer, show::write_html] {
            let out = render(&request, write);
            assert_eq!(out.matches("<g><title>").count(), n, "{name}");
        }
    }
}

/// Parses the SVG with Python's XML parser: well-formed, one `<g>` with a
/// `<title>` per point, names escaped and intact.
#[test]
fn svg_is_well_formed_and_escapes_names() {
    let svg = render(&fixture(), show::write_svg);
    assert!(!svg.contains("<script") && !svg.contains("href") && !svg.contains("@import"));
    let mut request = fixture();
    request.points[5].name = "ctl\u{1}char".into();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("show.svg");
    std::fs::write(&file, render(&request, show::write_svg)).unwrap();
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
for g in root.iter(ns + "g"):
    print(g.find(ns + "title").text.split("\n")[0])
"#;
    let output = common::run_python(script, &[file.to_str().unwrap()]);
    let titles = String::from_utf8(output.stdout).unwrap();
    let titles: Vec<&str> = titles.lines().collect();
    assert_eq!(titles.len(), 9, "{titles:?}");
    for name in [
        "auth & <check>",
        "engine \"run\"",
        "worker-żółw ✓ 'w'",
        "cache-fill",
        "ctl\u{FFFD}char",
    ] {
        assert!(titles.contains(&name), "{name} not in {titles:?}");
    }
    assert!(svg.contains("auth &amp; &lt;check&gt;"));
    assert!(svg.contains("engine &quot;run&quot;"));
}

// ---------------------------------------------------------------------------
// Headless Chromium

/// The browser (`$CHROMIUM`, else Debian's). A missing one fails the test
/// and names the package: it is never a silent pass.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    crate::support::system::require(
        &path.to_string_lossy(),
        "chromium",
        "svg_and_html_open_in_headless_chromium",
    );
    path
}

struct Run {
    stdout: String,
    stderr: String,
}

/// Runs headless Chromium on `url` with `extra` flags, killed after 60 s.
fn run_chromium(browser: &Path, extra: &[&str], url: &str) -> Run {
    let profile = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = Run {
        stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    };
    assert!(
        status.success(),
        "chromium failed: {status}\n{}",
        run.stderr
    );
    run
}

/// Screenshots `url` at 1200x800; returns the PNG's bytes after checking
/// its signature and size.
fn screenshot(browser: &Path, url: &str, png: &Path) -> Vec<u8> {
    run_chromium(
        browser,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,800",
        ],
        url,
    );
    let bytes =
        std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 800), "screenshot size");
    bytes
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn svg_and_html_open_in_headless_chromium() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let blank_png = screenshot(&browser, &file_url(&blank), &dir.path().join("blank.png"));

    let request = fixture();
    for (file, write) in [
        ("show.svg", show::write_svg as Writer),
        ("show.html", show::write_html),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, render(&request, write)).unwrap();
        let png = dir.path().join(format!("{file}.png"));
        let bytes = screenshot(&browser, &file_url(&path), &png);
        assert!(
            bytes.len() > blank_png.len() * 4 && bytes.len() > 10_000,
            "{file}: screenshot of {} bytes looks blank (blank page: {} bytes)",
            bytes.len(),
            blank_png.len()
        );
        if let Some(keep) = std::env::var_os("SHOW_SCREENSHOT_DIR") {
            std::fs::copy(&png, Path::new(&keep).join(format!("{file}.png"))).unwrap();
        }
    }

    // The DOM as Chromium built it: every name is there as text, and the
    // console stays silent (no script error, no fetch blocked by the CSP).
    let html = dir.path().join("show.html");
    let run = run_chromium(
        &browser,
        &["--dump-dom", "--enable-logging=stderr", "--v=0"],
        &file_url(&html),
    );
    for name in [
        "api-request",
        "auth &amp; &lt;check&gt;",
        "engine \"run\"",
        "worker-żółw ✓ 'w'",
        "cache-fill",
    ] {
        assert!(run.stdout.contains(name), "{name} missing from the DOM");
    }
    assert!(run.stdout.contains("<svg"), "no inline SVG in the DOM");
    for line in run.stderr.lines() {
        let lower = line.to_lowercase();
        assert!(
            // The page has no script: any console message (a script
            // error, a blocked load) is a fault.
            !lower.contains(":console")
                && !lower.contains("uncaught")
                && !lower.contains("content security policy")
                && !lower.contains("net::err_"),
            "chromium reported: {line}"
        );
    }
}
