//! Hostile text in reports: trace names and log file names that hold
//! terminal escapes, bidirectional overrides, HTML, Markdown and
//! spreadsheet formulas. Every output shows them as text: `rank` and `list`
//! in every format, their notes, and `show` in every format.

use std::path::{Path, PathBuf};

use osprof::list::{list, ListOptions};
use osprof::model::Tree;
use osprof::rank::{rank, RankOptions};
use osprof::show::{self, ShowFormat, ShowOptions};
use osprof::source::Inputs;
use osprof::{load_request, Format};
use tracing_osprofiler::Id;

const BASE: &str = "abcdef00-0000-4000-8000-000000000001";

/// Names a log may hold (a name is one whitespace-free token).
const NAMES: [&str; 13] = [
    "title\u{1b}]0;pwned\u{7}",
    "clear\u{1b}[2J\u{1b}[H",
    "<script>alert(1)</script>",
    "a|b",
    "=HYPERLINK(\"http://evil.example\",\"x\")",
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "rlo\u{202e}gpj.exe",
    "csi\u{9b}31m",
    "del\u{7f}x",
    "__init__",
    "[x](http://evil.example)",
];

/// One request: a root and one child per hostile name, the last one never
/// stopped; then an unreadable line.
fn hostile_log(dir: &Path) -> PathBuf {
    let id = |n: usize| format!("00000000-0000-4000-8000-{n:012x}");
    let mut log = String::new();
    log.push_str(&format!(
        "2020-02-27T08:04:25.000000          {BASE} {BASE} {} root\u{1b}[31m-start\n",
        id(1)
    ));
    for (k, name) in NAMES.iter().enumerate() {
        let trace = id(100 + k);
        log.push_str(&format!(
            "2020-02-27T08:04:25.{:06}          {BASE} {} {trace} {name}-start\n",
            1000 * (k + 1),
            id(1)
        ));
        if k + 1 < NAMES.len() {
            log.push_str(&format!(
                "2020-02-27T08:04:25.{:06} 0.000500 {BASE} {} {trace} {name}-stop\n",
                1000 * (k + 1) + 500,
                id(1)
            ));
        }
    }
    log.push_str(&format!(
        "2020-02-27T08:04:26.000000 1.000000 {BASE} {BASE} {} root\u{1b}[31m-stop\n",
        id(1)
    ));
    log.push_str("garbage\n");
    // The file's name is hostile too: it is shown in `list` and in notes.
    let path = dir.join("evil\u{1b}[2J\u{7}.log");
    std::fs::write(&path, log).unwrap();
    path
}

/// No character that acts on a terminal: C0 controls but the newline, DEL,
/// C1, and the bidirectional formatting characters.
fn assert_inert(what: &str, text: &str) {
    for c in text.chars() {
        let acts = (c.is_control() && c != '\n')
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        assert!(!acts, "{what}: raw {c:?} in\n{text}");
    }
}

fn rank_out(inputs: &Inputs, format: Format) -> (String, Vec<String>) {
    let options = RankOptions::new()
        .with_self_time(true)
        .with_percentiles(true)
        .with_format(format);
    let report = rank(inputs, &options).unwrap();
    let mut out = Vec::new();
    report.write(&mut out).unwrap();
    (String::from_utf8(out).unwrap(), report.notes())
}

fn list_out(inputs: &Inputs, format: Format) -> (String, Vec<String>) {
    let report = list(inputs, &ListOptions::new().with_format(format)).unwrap();
    let mut out = Vec::new();
    report.write(&mut out).unwrap();
    (String::from_utf8(out).unwrap(), report.notes())
}

#[test]
fn rank_and_list_show_hostile_names_as_text_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = Inputs::from_paths([hostile_log(dir.path())]).unwrap();
    for format in [Format::Text, Format::Markdown, Format::Csv, Format::Json] {
        for (report, (out, notes)) in [
            ("rank", rank_out(&inputs, format)),
            ("list", list_out(&inputs, format)),
        ] {
            let what = format!("{report} {format:?}");
            assert_inert(&what, &out);
            assert!(!notes.is_empty(), "{what}");
            for note in &notes {
                assert_inert(&format!("{what} note"), note);
            }
        }
    }

    let (text, notes) = rank_out(&inputs, Format::Text);
    assert!(text.contains(" title\\u{1b}]0;pwned\\u{7}\n"), "{text}");
    assert!(text.contains(" rlo\\u{202e}gpj.exe\n"), "{text}");
    assert!(text.contains(" csi\\u{9b}31m\n"), "{text}");
    let notes = notes.join("\n");
    assert!(notes.contains("[x](http://evil.example) x1"), "{notes}");
    assert!(notes.contains("evil\\u{1b}[2J\\u{7}.log:"), "{notes}");
    let (listed, _) = list_out(&inputs, Format::Text);
    assert!(listed.contains(" root\\u{1b}[31m "), "{listed}");
    assert!(listed.contains("/evil\\u{1b}[2J\\u{7}.log\n"), "{listed}");

    // Markdown: no tag, no extra cell, no link, no emphasis.
    let (md, _) = rank_out(&inputs, Format::Markdown);
    assert!(!md.contains("<script>"), "{md}");
    assert!(
        md.contains("| &lt;script&gt;alert(1)&lt;/script&gt; |"),
        "{md}"
    );
    assert!(md.contains("| a\\|b |"), "{md}");
    assert!(md.contains("| \\_\\_init\\_\\_ |"), "{md}");
    assert!(md.contains("| \\[x\\](http://evil.example) |"), "{md}");
    for line in md.lines().filter(|l| l.starts_with("| 0.")) {
        // 4 figures, 4 extra columns, the name: 10 cells, 11 unescaped pipes.
        let pipes = line.len() - line.replace('|', "").len();
        let escaped = line.matches("\\|").count();
        assert_eq!(pipes - escaped, 10, "{line}");
    }
    let (md, _) = list_out(&inputs, Format::Markdown);
    assert!(md.contains("| root\\\\u{1b}\\[31m |"), "{md}");

    // CSV: formulas neutralised in text cells, numbers left alone.
    let (csv, _) = rank_out(&inputs, Format::Csv);
    let names: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| &l[l.match_indices(',').nth(7).unwrap().0 + 1..])
        .collect();
    for (cell, expected) in [
        (
            "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"",
            true,
        ),
        ("'+1+2", true),
        ("'-2+3", true),
        ("'@SUM(A1:A9)", true),
        ("a|b", true),
    ] {
        assert_eq!(names.contains(&cell), expected, "{cell} in {names:?}");
    }
    for line in csv.lines().skip(1) {
        for figure in line.split(',').take(8) {
            figure.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        }
    }
    let (csv, _) = list_out(&inputs, Format::Csv);
    assert!(csv.contains(",root\\u{1b}[31m,"), "{csv}");
    assert!(csv.ends_with("/evil\\u{1b}[2J\\u{7}.log\n"), "{csv}");

    // JSON: valid, and the names are the logs' names exactly.
    let (json, _) = rank_out(&inputs, Format::Json);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut names: Vec<&str> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.push(json["unfinished"][0]["name"].as_str().unwrap());
    for name in NAMES {
        assert!(names.contains(&name), "{name:?} not in {names:?}");
    }
    let (json, _) = list_out(&inputs, Format::Json);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["requests"][0]["root"], "root\u{1b}[31m");
    assert_eq!(
        json["logs"][0].as_str().unwrap(),
        inputs.sources()[0].to_string()
    );
}

#[test]
fn show_renders_hostile_names_as_text_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = Inputs::from_paths([hostile_log(dir.path())]).unwrap();
    let request = load_request(&inputs, Id::parse(BASE).unwrap())
        .unwrap()
        .unwrap();
    let tree = Tree::new(&request);
    for format in [
        ShowFormat::Tree,
        ShowFormat::Json,
        ShowFormat::Chrome,
        ShowFormat::Svg,
        ShowFormat::Html,
    ] {
        let mut out = Vec::new();
        show::write(&tree, &ShowOptions::new().with_format(format), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_inert(&format!("show {format:?}"), &out);
        match format {
            ShowFormat::Tree => assert!(out.contains("clear\\u{1b}[2J\\u{1b}[H"), "{out}"),
            ShowFormat::Json | ShowFormat::Chrome => {
                let json: serde_json::Value = serde_json::from_str(&out).unwrap();
                let text = json.to_string();
                for name in NAMES {
                    let literal = serde_json::to_string(name).unwrap();
                    assert!(text.contains(&literal[1..literal.len() - 1]), "{name:?}");
                }
            }
            _ => assert!(out.contains("&lt;script&gt;"), "{format:?}"),
        }
    }
}
