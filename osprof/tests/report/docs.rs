//! The sample outputs of `docs/reports.md` and `docs/report-show.md` are
//! the tool's real output: every ```` ```console ```` block there is a list
//! of `$ osprof ...` commands, each followed by what it prints (stdout,
//! then stderr), and this test runs each one in the `osprof/` directory
//! (where the fixture logs are `tests/fixtures/...`) and compares.
//! Examples that cannot run here (`curl`, `eval`) go in ```` ```sh ````
//! blocks, which show no output.
//!
//! A command may start with `NAME=value` assignments (its environment; no
//! other variable reaches it) and end with `| head -n N` (the first N lines
//! of stdout, without stderr) or with `< FILE` (FILE, relative to `osprof/`,
//! as its standard input; without it, stdin is empty). Arguments split on spaces; single and double
//! quotes group. `UPDATE_DOCS=1` rewrites the outputs in the docs after a
//! deliberate change: review the diff.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DOCS: [&str; 2] = ["docs/reports.md", "docs/report-show.md"];

/// One `$ ` line and the output under it.
struct Example {
    /// 1-based line of the `$ ` line in its doc.
    line: usize,
    command: String,
    expected: String,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the osprof package is in the workspace")
        .to_path_buf()
}

/// The examples of the console blocks of `doc`, and where each one's
/// output lies in the doc's lines (`[from, to)`).
fn examples(doc: &str) -> Vec<(Example, usize, usize)> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] != "```console" {
            i += 1;
            continue;
        }
        i += 1;
        while i < lines.len() && lines[i] != "```" {
            let command = lines[i]
                .strip_prefix("$ ")
                .unwrap_or_else(|| panic!("line {}: a console block starts with `$ `", i + 1));
            let at = i;
            i += 1;
            let from = i;
            while i < lines.len() && lines[i] != "```" && !lines[i].starts_with("$ ") {
                i += 1;
            }
            let mut expected = lines[from..i].join("\n");
            if i > from {
                expected.push('\n');
            }
            found.push((
                Example {
                    line: at + 1,
                    command: command.to_owned(),
                    expected,
                },
                from,
                i,
            ));
        }
        i += 1;
    }
    found
}

/// Splits a command line on spaces, quotes grouping.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (_, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Runs one documented command; what a terminal would show.
fn run(command: &str) -> String {
    let (command, head) = match command.split_once(" | head -n ") {
        Some((command, n)) => (command, Some(n.parse::<usize>().expect("head -n N"))),
        None => (command, None),
    };
    let (command, stdin) = match command.split_once(" < ") {
        Some((command, file)) => {
            let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(file.trim());
            let file = std::fs::File::open(&file)
                .unwrap_or_else(|e| panic!("{command}: < {}: {e}", file.display()));
            (command, Stdio::from(file))
        }
        None => (command, Stdio::null()),
    };
    let mut words = words(command).into_iter().peekable();
    let mut env = Vec::new();
    while let Some((name, value)) = words.peek().and_then(|w| w.split_once('=')) {
        env.push((name.to_owned(), value.to_owned()));
        words.next();
    }
    assert_eq!(
        words.next().as_deref(),
        Some("osprof"),
        "{command}: not an osprof command"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args(words)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove(osprof::headers::KEY_ENV)
        .envs(env)
        .stdin(stdin)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    match head {
        Some(n) => stdout.lines().take(n).map(|l| format!("{l}\n")).collect(),
        None => stdout + &String::from_utf8_lossy(&output.stderr),
    }
}

#[test]
fn documented_outputs_are_the_real_ones() {
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for doc in DOCS {
        let path = workspace().join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        // From the last example up, so that rewriting keeps the places.
        for (example, from, to) in examples(&text).into_iter().rev() {
            checked += 1;
            let actual = run(&example.command);
            if actual != example.expected {
                wrong.push(format!(
                    "{doc}:{}: $ {}\n--- documented\n{}--- printed\n{}",
                    example.line, example.command, example.expected, actual
                ));
                lines.splice(from..to, actual.lines().map(str::to_owned));
            }
        }
        if update {
            let mut new = lines.join("\n");
            new.push('\n');
            std::fs::write(&path, new).unwrap();
        }
    }
    assert!(checked >= 10, "only {checked} examples found");
    assert!(
        update || wrong.is_empty(),
        "{} documented outputs differ (UPDATE_DOCS=1 rewrites them):\n\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_parser_reads_blocks_and_words() {
    let doc =
        "text\n```console\n$ osprof a 'b c'\nout 1\nout 2\n$ osprof x\n```\n```sh\n$ no\n```\n";
    let found = examples(doc);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].0.command, "osprof a 'b c'");
    assert_eq!(found[0].0.expected, "out 1\nout 2\n");
    assert_eq!((found[0].1, found[0].2), (3, 5));
    assert_eq!(found[1].0.expected, "");
    assert_eq!(
        words("A=1 osprof x 'y z' \"w\""),
        ["A=1", "osprof", "x", "y z", "w"]
    );
}
