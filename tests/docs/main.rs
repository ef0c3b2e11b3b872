//! Docs that show a program's output show its real output: each block
//! marked `<!-- output: EXAMPLE -->` in `docs/` is compared with a fresh run
//! of that example, line by line, with what changes from run to run (ids,
//! times, numbers, the temporary directory) left out. Run with
//! `OSPROFILER_BLESS_DOCS=1` to rewrite the blocks from the run.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The examples' binaries, which `cargo test` builds before it runs tests:
/// `<target>/<profile>/examples/NAME`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.ancestors().nth(2).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test --all-features` (which builds the examples), \
         or `cargo build --all-features --example {name}` first",
        path.display()
    );
    path
}

/// What does not change from run to run: UUIDs, timestamps, dates in file
/// names, numbers, process ids and the run of spaces that aligns columns
/// are replaced by placeholders.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut last_space = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_hexdigit() {
            let mut token = String::from(c);
            while let Some(&next) = chars.peek() {
                if next.is_ascii_hexdigit() || matches!(next, '-' | '.' | ':' | 'T') {
                    token.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            if token.chars().any(|c| c.is_ascii_digit()) || token.len() >= 8 {
                out.push('#');
            } else {
                out.push_str(&token);
            }
            last_space = false;
        } else if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out.trim_end().to_owned()
}

/// The fenced block after each `<!-- output: NAME -->` marker of `doc`:
/// (name, byte range of the block's body).
fn output_blocks(doc: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut blocks = Vec::new();
    let mut from = 0;
    while let Some(at) = doc[from..].find("<!-- output: ") {
        let marker = from + at;
        let name_end = doc[marker..].find(" -->").unwrap() + marker;
        let name = doc[marker + "<!-- output: ".len()..name_end].to_owned();
        let fence = doc[name_end..].find("```text\n").unwrap() + name_end + "```text\n".len();
        let end = doc[fence..].find("```\n").unwrap() + fence;
        blocks.push((name, fence..end));
        from = end;
    }
    blocks
}

fn check(doc_path: &Path) {
    let doc = std::fs::read_to_string(doc_path).unwrap();
    let blocks = output_blocks(&doc);
    assert!(
        !blocks.is_empty(),
        "no output block in {}",
        doc_path.display()
    );
    let mut blessed = doc.clone();
    for (name, range) in blocks.iter().rev() {
        let run = Command::new(example(name)).output().unwrap();
        assert!(run.status.success(), "{name} failed: {run:?}");
        let actual = String::from_utf8(run.stdout).unwrap();
        let documented = &doc[range.clone()];
        let command = documented.lines().next().unwrap_or_default();
        let mut want: Vec<String> = documented.lines().skip(1).map(shape).collect();
        let mut got: Vec<String> = actual.lines().map(shape).collect();
        if std::env::var_os("OSPROFILER_BLESS_DOCS").is_some() {
            blessed.replace_range(range.clone(), &format!("{command}\n{actual}"));
            continue;
        }
        // Rows of equal shape may come in another order when timings differ.
        want.sort();
        got.sort();
        assert_eq!(
            want,
            got,
            "{}: the block of {name} is not what it prints now; \
             OSPROFILER_BLESS_DOCS=1 cargo test --all-features --test docs rewrites it",
            doc_path.display()
        );
    }
    if blessed != doc {
        std::fs::write(doc_path, blessed).unwrap();
    }
}

#[test]
fn http_md_shows_the_real_service_pair_output() {
    check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/http.md"));
}

#[test]
fn shapes_leave_out_what_changes() {
    assert_eq!(
        shape(
            "  2026-12-01T23:00:31.843229          c66ed0af-03ea-41b3-820b-5ebdcba5432e wsgi-start"
        ),
        " # # wsgi-start"
    );
    assert_eq!(
        shape("0.024        0.015      0.012      2             0.000      wsgi"),
        "# # # # # wsgi"
    );
    assert_eq!(shape("legend: * critical path"), "legend: * critical path");
}
