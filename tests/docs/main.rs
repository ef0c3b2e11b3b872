//! Docs that show a program's output show its real output: each block
//! marked `<!-- output: EXAMPLE -->` in `docs/` is compared with a fresh run
//! of that example, line by line, with what changes from run to run (ids,
//! times, numbers, the temporary directory) left out. Run with
//! `OSPROFILER_BLESS_DOCS=1` to rewrite the blocks from the run.
#![cfg(all(feature = "tower", feature = "reqwest"))]

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use support::examples::example;

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

/// The README's Quick start resolves as written: the crate is not on
/// crates.io, so its dependency on this repository is a path (to a clone
/// beside the new crate) with features this package has, and the
/// `cargo install` line names the `osprof` package from that clone. The
/// program itself is compiled as a doctest (src/lib.rs).
#[test]
fn readme_quick_start_depends_on_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quick_start = &readme[readme.find("## Quick start").expect("a Quick start")..];
    let toml_start = quick_start.find("```toml\n").expect("its dependencies") + 8;
    let toml =
        &quick_start[toml_start..toml_start + quick_start[toml_start..].find("```").unwrap()];
    let line = toml
        .lines()
        .find(|l| l.starts_with("tracing-osprofiler"))
        .expect("a dependency on this crate");
    assert!(
        line.contains(r#"path = "../tracing-osprofiler""#) && !line.contains("version"),
        "{line}"
    );
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let features = &line[line.find("features = [").expect("features") + 12..];
    for feature in features[..features.find(']').unwrap()].split(',') {
        let feature = feature.trim().trim_matches('"');
        assert!(
            manifest.contains(&format!("\n{feature} = [")),
            "feature {feature} is not in Cargo.toml"
        );
    }
    // Run from the new crate, beside the clone.
    assert!(quick_start.contains("cargo install --locked --path ../tracing-osprofiler/osprof"));
    assert!(root.join("osprof/Cargo.toml").is_file());
}

/// The README's two commands after cloning: the main job and `.ci/test`,
/// which installs what the tests need and which `.ci/run` calls.
#[test]
fn readme_two_commands_are_the_main_job_and_ci_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let two = &readme[readme.find("## Two commands").expect("Two commands")..];
    let block = &two[two.find("```sh\n").unwrap() + 6..];
    let commands: Vec<&str> = block[..block.find("```").unwrap()]
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .collect();
    assert_eq!(
        commands,
        [
            "cargo run --all-features --example service_pair",
            ".ci/test"
        ]
    );
    let script = root.join(".ci/test");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&script).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, ".ci/test is not executable");
    }
    let text = std::fs::read_to_string(&script).unwrap();
    for package in [
        "chromium",
        "libfaketime",
        "redis-server",
        "util-linux",
        "python3-venv",
    ] {
        assert!(
            text.contains(package),
            ".ci/test does not install {package}"
        );
    }
    assert!(text.contains("tests/python/requirements.txt"));
    assert!(text.contains("cargo test --all-features"));
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.contains(".ci/test"), ".ci/run does not call .ci/test");
}
