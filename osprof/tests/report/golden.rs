//! Golden files for the `rank` and `list` reports in every format, on a
//! hand-written log that holds every oddity real logs have (see
//! `tests/fixtures/mixed.log`), and on a rotated set split across a plain
//! and a gzip file. Set `UPDATE_GOLDEN=1` to rewrite the files after a
//! deliberate change, then review the diff.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use osprof::list::{list, ListOptions, ListSort};
use osprof::rank::{rank, Column, RankOptions};
use osprof::source::Inputs;
use osprof::{load_request, Filter, Format, Pattern, Unit};
use tracing_osprofiler::Id;

/// Relative (tests run in the crate's directory), so that the log names in
/// the golden files do not depend on where the crate is.
fn fixture(name: &str) -> PathBuf {
    Path::new("tests/fixtures").join(name)
}

fn golden(name: &str, actual: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from the golden file:\n--- expected\n{}\n--- actual\n{}",
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}

fn rank_output(inputs: &Inputs, options: &RankOptions) -> Vec<u8> {
    let report = rank(inputs, options).unwrap();
    let mut out = Vec::new();
    report.write(&mut out).unwrap();
    out
}

fn mixed() -> Inputs {
    Inputs::from_paths([fixture("mixed.log")]).unwrap()
}

#[test]
fn rank_text_is_mistral_layout() {
    let out = rank_output(&mixed(), &RankOptions::new());
    golden("rank.txt", &out);
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("Total time | Max time | Avg time | Occurrences | Trace name")
    );
    assert_eq!(lines.next(), Some("-".repeat(91).as_str()));
    // A duration of 1000 s and more counts (Mistral's script drops it).
    assert!(
        text.contains("1234.568     1234.568   1234.568   1             engine-start-workflow\n")
    );
    // Ties keep first-seen order.
    assert!(text.find("zero-a").unwrap() < text.find("zero-b").unwrap());
}

#[test]
fn rank_reports_unfinished_and_unreadable_apart() {
    let report = rank(&mixed(), &RankOptions::new()).unwrap();
    assert_eq!(report.unfinished.len(), 1);
    assert_eq!(report.unfinished[0].name, "hung");
    assert_eq!(report.unreadable.count, 2);
    let lines: Vec<u64> = report.unreadable.first.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![8, 16]);
    let notes = report.notes().join("\n");
    assert!(notes.contains("1 point never stopped: hung x1"), "{notes}");
    assert!(
        notes.contains("tests/fixtures/mixed.log:8: truncated line"),
        "{notes}"
    );
}

#[test]
fn rank_with_self_time_and_percentiles_in_every_format() {
    let options = RankOptions::new()
        .with_self_time(true)
        .with_percentiles(true);
    for (format, name) in [
        (Format::Text, "rank_self_percentiles.txt"),
        (Format::Markdown, "rank.md"),
        (Format::Csv, "rank.csv"),
        (Format::Json, "rank.json"),
    ] {
        let out = rank_output(&mixed(), &options.clone().with_format(format));
        golden(name, &out);
    }
    let report = rank(&mixed(), &options).unwrap();
    let wsgi = report.rows.iter().find(|r| r.name == "wsgi").unwrap();
    // 0..1.5 s minus the children covering 0.1..0.100094, 0.15..0.35 and
    // 0.4..1.0 (the stop-only café child, 1.55..1.6, ends after wsgi).
    assert!(
        (wsgi.self_time.unwrap() - 0.699906).abs() < 1e-9,
        "{wsgi:?}"
    );
    let json: serde_json::Value = serde_json::from_slice(&rank_output(
        &mixed(),
        &options.clone().with_format(Format::Json),
    ))
    .unwrap();
    assert_eq!(json["unreadable"]["count"], 2);
    assert_eq!(json["unfinished"][0]["name"], "hung");
}

#[test]
fn rank_sorts_filters_and_cuts() {
    let inputs = mixed();
    let by_name = rank(&inputs, &RankOptions::new().with_sort(Column::Name)).unwrap();
    let names: Vec<&str> = by_name.rows.iter().map(|r| r.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);

    let by_count = rank(
        &inputs,
        &RankOptions::new()
            .with_sort(Column::Count)
            .with_top(Some(1)),
    )
    .unwrap();
    assert_eq!(by_count.rows.len(), 1);
    assert_eq!(by_count.rows[0].name, "db-query");
    assert_eq!(by_count.rows[0].count, 2);

    let only_a = Filter::new()
        .with_base_ids(vec![
            Id::parse("aaaaaaaa-0000-4000-8000-000000000001").unwrap()
        ]);
    let a = rank(&inputs, &RankOptions::new().with_filter(only_a)).unwrap();
    assert!(a.rows.iter().all(|r| r.name != "engine-start-workflow"));
    assert!(a.unfinished.is_empty());

    let db = Filter::new().with_name(Some(Pattern::new("db-*")));
    let db = rank(&inputs, &RankOptions::new().with_filter(db)).unwrap();
    assert_eq!(db.rows.len(), 1);

    let window = Filter::new()
        .with_since(osprof::parse_time("2020-02-27T08:04:26"))
        .with_until(osprof::parse_time("2020-02-27T08:04:27"));
    let w = rank(&inputs, &RankOptions::new().with_filter(window)).unwrap();
    let names: Vec<&str> = w.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["wsgi", "rpc-call", "caf\u{fffd}"]);
}

#[test]
fn list_in_every_format() {
    for (format, name) in [
        (Format::Text, "list.txt"),
        (Format::Markdown, "list.md"),
        (Format::Csv, "list.csv"),
        (Format::Json, "list.json"),
    ] {
        let report = list(&mixed(), &ListOptions::new().with_format(format)).unwrap();
        let mut out = Vec::new();
        report.write(&mut out).unwrap();
        golden(name, &out);
    }
    let report = list(&mixed(), &ListOptions::new()).unwrap();
    // Slowest first: B lasts from 08:04:30 to 08:24:34.567891.
    assert_eq!(
        report.requests[0].base_id.to_string(),
        "bbbbbbbb-0000-4000-8000-000000000002"
    );
    assert_eq!(report.requests[0].logs, vec![0]);
    assert_eq!(report.logs, vec!["tests/fixtures/mixed.log"]);
    assert_eq!(report.requests[0].root, "engine-start-workflow");
    assert_eq!(report.requests[0].points, 5);
    assert_eq!(report.requests[0].unfinished, 1);
    assert!((report.requests[0].wall - 1234.567891).abs() < 1e-9);
    assert_eq!(report.requests[1].root, "wsgi");
    // wsgi runs 0..1.5 s; the stop-only café point ends at 1.6 s.
    assert!((report.requests[1].wall - 1.6).abs() < 1e-9);
    assert_eq!(report.requests[1].points, 5);
    let by_first = list(&mixed(), &ListOptions::new().with_sort(ListSort::First)).unwrap();
    assert_eq!(by_first.requests[0].root, "wsgi");
}

/// `--unit ms` and `us`: the same figures scaled, to the microsecond, the
/// unit in the headers; seconds stay Mistral's (the files above).
#[test]
fn rank_and_list_in_milliseconds_and_microseconds() {
    let options = RankOptions::new()
        .with_self_time(true)
        .with_percentiles(true);
    for (unit, format, name) in [
        (Unit::Millis, Format::Text, "rank_ms.txt"),
        (Unit::Millis, Format::Markdown, "rank_ms.md"),
        (Unit::Micros, Format::Csv, "rank_us.csv"),
    ] {
        let out = rank_output(
            &mixed(),
            &options.clone().with_format(format).with_unit(unit),
        );
        golden(name, &out);
    }
    let text = String::from_utf8(rank_output(
        &mixed(),
        &options.clone().with_unit(Unit::Millis),
    ))
    .unwrap();
    // wsgi: 1.5 s, self time 0.699906 s, to the microsecond.
    assert!(
        text.contains(
            "\n1500.000          1500.000        1500.000        1             699.906          "
        ),
        "{text}"
    );
    assert!(text.starts_with(
        "Total time (ms) | Max time (ms) | Avg time (ms) | Occurrences | Self time (ms) | "
    ));
    let csv = String::from_utf8(rank_output(
        &mixed(),
        &options
            .clone()
            .with_format(Format::Csv)
            .with_unit(Unit::Micros),
    ))
    .unwrap();
    assert!(
        csv.starts_with("total_us,max_us,avg_us,count,self_time_us,p50_us,p95_us,p99_us,name\n")
    );
    assert!(csv.contains("\n1500000,1500000,1500000,1,699906,"), "{csv}");
    // JSON stays in seconds.
    assert_eq!(
        rank_output(
            &mixed(),
            &options
                .clone()
                .with_format(Format::Json)
                .with_unit(Unit::Millis)
        ),
        rank_output(&mixed(), &options.clone().with_format(Format::Json))
    );
    for (unit, format, name) in [
        (Unit::Millis, Format::Text, "list_ms.txt"),
        (Unit::Micros, Format::Csv, "list_us.csv"),
    ] {
        let report = list(
            &mixed(),
            &ListOptions::new().with_format(format).with_unit(unit),
        )
        .unwrap();
        let mut out = Vec::new();
        report.write(&mut out).unwrap();
        golden(name, &out);
    }
}

/// The fixture split in two: the first file gzip-compressed and given
/// second; rpc-call starts in one file and stops in the other.
fn rotated(dir: &Path) -> Inputs {
    let data = std::fs::read(fixture("mixed.log")).unwrap();
    let cut = data
        .windows(14)
        .position(|w| w == b"08:04:25.45000")
        .unwrap();
    let cut = data[..cut].iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let first = dir.join("osprofiler.2020-02-27-08.log.1");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&first).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&data[..cut]).unwrap();
    gz.finish().unwrap();
    let second = dir.join("osprofiler.2020-02-27-08.log");
    std::fs::write(&second, &data[cut..]).unwrap();
    Inputs::from_paths([&second, &first]).unwrap()
}

#[test]
fn rotated_gzip_set_reads_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = rotated(dir.path());
    assert_eq!(inputs.reading_order(), &[1, 0]);
    let options = RankOptions::new().with_self_time(true);
    let whole = rank(&mixed(), &options).unwrap();
    let split = rank(&inputs, &options).unwrap();
    assert_eq!(whole.rows, split.rows);
    assert_eq!(whole.unfinished, split.unfinished);
    assert_eq!(split.unreadable.count, 2);
    let request = load_request(
        &inputs,
        Id::parse("aaaaaaaa-0000-4000-8000-000000000001").unwrap(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(request.sources, vec![0, 1]);
    let rpc = request
        .points
        .iter()
        .find(|p| p.name == "rpc-call")
        .unwrap();
    assert!(rpc.is_finished());
    assert_eq!(rpc.source, 1);
    assert!(load_request(&inputs, Id::new_v4()).unwrap().is_none());
}

#[test]
fn missing_file_is_an_open_error() {
    let err = Inputs::from_paths(["/nonexistent/osprof.log"]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot open /nonexistent/osprof.log: "),
        "{err}"
    );
}

/// In every unit, with every extra column, each header of the text table
/// starts in the column its values start in (Mistral's own layout, in
/// seconds without extra columns, is the golden `rank.txt`).
#[test]
fn rank_headers_start_over_their_values() {
    for unit in [Unit::Seconds, Unit::Millis, Unit::Micros] {
        let options = RankOptions::new()
            .with_self_time(true)
            .with_percentiles(true)
            .with_unit(unit);
        let text = String::from_utf8(rank_output(&mixed(), &options)).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        // Where each header starts: the first, then one after each ` | `.
        let starts: Vec<usize> = std::iter::once(0)
            .chain(header.match_indices(" | ").map(|(at, _)| at + 3))
            .collect();
        assert_eq!(starts.len(), 9, "{header}");
        for row in lines.skip(1) {
            // Where each value starts: after a run of spaces (names have none here).
            let value_starts: Vec<usize> = std::iter::once(0)
                .chain(
                    row.char_indices()
                        .zip(row.chars().skip(1))
                        .filter(|((_, c), next)| *c == ' ' && *next != ' ')
                        .map(|((at, _), _)| at + 1),
                )
                .collect();
            assert_eq!(value_starts, starts, "{unit:?}:\n{header}\n{row}");
        }
    }
}
