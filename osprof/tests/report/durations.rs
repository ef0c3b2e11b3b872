//! Stop lines whose duration no clock could measure (`1e300`, `inf`,
//! more than 100 years): every report counts them as unreadable, with the
//! reason, and keeps its figures sane; nothing overflows.

use osprof::list::{list, ListOptions};
use osprof::model::Tree;
use osprof::rank::{rank, RankOptions};
use osprof::source::Inputs;
use osprof::{load_request, show};
use tracing_osprofiler::Id;

const BASE: &str = "f12e75d5-5d59-4cbc-b74d-357f19290dd7";

fn absurd_log() -> (tempfile::TempDir, Inputs) {
    let id = |n: u32| format!("00000000-0000-4000-8000-{n:012x}");
    let lines = [
        format!(
            "2020-02-27T08:04:25.000000          {BASE} {BASE} {} wsgi-start",
            id(1)
        ),
        format!(
            "2020-02-27T08:04:25.100000          {BASE} {} {} db-start",
            id(1),
            id(2)
        ),
        format!(
            "2020-02-27T08:04:25.200000 1e300 {BASE} {} {} db-stop",
            id(1),
            id(2)
        ),
        format!(
            "2020-02-27T08:04:25.300000          {BASE} {} {} rpc-start",
            id(1),
            id(3)
        ),
        format!(
            "2020-02-27T08:04:25.400000 1e400 {BASE} {} {} rpc-stop",
            id(1),
            id(3)
        ),
        format!(
            "2020-02-27T08:04:25.450000 3155760001 {BASE} {} {} rpc-stop",
            id(1),
            id(3)
        ),
        format!(
            "2020-02-27T08:04:25.500000 0.500000 {BASE} {BASE} {} wsgi-stop",
            id(1)
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absurd.log");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let inputs = Inputs::from_paths([&path]).unwrap();
    (dir, inputs)
}

fn assert_unreadable(unreadable: &osprof::Unreadable) {
    assert_eq!(unreadable.count, 3, "{unreadable}");
    assert_eq!(
        unreadable.first.iter().map(|p| p.line).collect::<Vec<_>>(),
        [3, 5, 6]
    );
    for place in &unreadable.first {
        assert_eq!(place.reason, "duration longer than 100 years");
    }
}

#[test]
fn rank_counts_them_as_unreadable() {
    let (_dir, inputs) = absurd_log();
    let report = rank(&inputs, &RankOptions::new().with_percentiles(true)).unwrap();
    assert_unreadable(&report.unreadable);
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].name, "wsgi");
    assert_eq!(report.rows[0].total, 0.5);
    assert_eq!(report.rows[0].p99, Some(0.5));
    // Their starts are unfinished points.
    let unfinished: Vec<&str> = report.unfinished.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(unfinished, ["db", "rpc"]);
}

#[test]
fn rank_self_time_stays_within_the_wall_time() {
    let (_dir, inputs) = absurd_log();
    let report = rank(&inputs, &RankOptions::new().with_self_time(true)).unwrap();
    assert_unreadable(&report.unreadable);
    assert_eq!(report.rows.len(), 1);
    // No child stopped: all of wsgi's 0.5 s is its own.
    assert_eq!(report.rows[0].self_time, Some(0.5));
}

#[test]
fn list_keeps_the_wall_time_of_what_it_read() {
    let (_dir, inputs) = absurd_log();
    let listed = list(&inputs, &ListOptions::new()).unwrap();
    assert_unreadable(&listed.unreadable);
    assert_eq!(listed.requests.len(), 1);
    assert_eq!(listed.requests[0].wall, 0.5);
    assert_eq!(listed.requests[0].points, 3);
    assert_eq!(listed.requests[0].unfinished, 2);
}

#[test]
fn show_renders_every_format() {
    let (_dir, inputs) = absurd_log();
    let request = load_request(&inputs, Id::parse(BASE).unwrap())
        .unwrap()
        .unwrap();
    let tree = Tree::new(&request);
    let mut text = Vec::new();
    show::write_text_tree(&tree, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("500.000"), "{text}");
    for write in [
        show::write_osprofiler_json,
        show::write_chrome_trace,
        show::write_svg,
        show::write_html,
    ] {
        let mut out = Vec::new();
        write(&tree, &mut out).unwrap();
        assert!(!out.is_empty());
    }
}
