//! `osprof rank` against Mistral's rules on logs written by the real Python
//! osprofiler (`tests/python/mistral_log.py`): byte for byte what
//! `tests/python/mistral_rank.py` (the rules of docs/protocol.md, *The rank report*) prints, through the
//! library and through the `osprof` binary; and the streaming self time
//! equals the one the model's trees compute.
#![cfg(feature = "cli")]

use crate::support::python as common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use osprof::model::Tree;
use osprof::rank::{rank, RankOptions};
use osprof::source::Inputs;
use osprof::{list::list, list::ListOptions, load_request};

const LOG_SCRIPT: &str = include_str!("../python/mistral_log.py");
const RANK_SCRIPT: &str = include_str!("../python/mistral_rank.py");

fn python_log(dir: &Path, seed: u32, safe: bool) -> std::path::PathBuf {
    let path = dir.join(format!("mistral-{seed}.log"));
    let seed = seed.to_string();
    let mut args = vec![path.to_str().unwrap(), seed.as_str()];
    if safe {
        args.push("safe");
    }
    common::run_python(LOG_SCRIPT, &args);
    path
}

fn python_rank(log: &Path, by_suffix: bool) -> Vec<u8> {
    let mut args = vec![log.to_str().unwrap()];
    if by_suffix {
        args.push("by-suffix");
    }
    common::run_python(RANK_SCRIPT, &args).stdout
}

fn rust_rank(log: &Path) -> Vec<u8> {
    let inputs = Inputs::from_paths([log]).unwrap();
    let report = rank(&inputs, &RankOptions::new()).unwrap();
    assert_eq!(report.unreadable.count, 0, "{}", report.unreadable);
    assert!(report.unfinished.is_empty());
    let mut out = Vec::new();
    report.write(&mut out).unwrap();
    out
}

#[test]
fn same_bytes_as_mistral_rules_on_real_osprofiler_logs() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [1, 2, 3] {
        let log = python_log(dir.path(), seed, true);
        let expected = python_rank(&log, false);
        assert!(
            expected.len() > 200,
            "{}",
            String::from_utf8_lossy(&expected)
        );
        let actual = rust_rank(&log);
        assert_eq!(
            String::from_utf8_lossy(&actual),
            String::from_utf8_lossy(&expected),
            "seed {seed}"
        );

        // The binary, with the output file as Mistral's script takes it.
        let out = dir.path().join(format!("rank-{seed}.txt"));
        let status = Command::new(env!("CARGO_BIN_EXE_osprof"))
            .arg("rank")
            .arg(&log)
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(&out).unwrap(), expected, "seed {seed}");
    }
}

#[test]
fn long_spans_count_where_mistral_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = python_log(dir.path(), 7, false);
    let text = std::fs::read_to_string(&log).unwrap();
    // The log does hold stop lines Mistral's length test mistakes for starts.
    assert!(text.lines().any(|l| {
        let t: Vec<&str> = l.split_whitespace().collect();
        t.len() > 5 && t[5].ends_with("-stop") && t[1].len() > 10
    }));
    let mistral = python_rank(&log, false);
    let fixed = python_rank(&log, true);
    assert_ne!(mistral, fixed);
    assert_eq!(
        String::from_utf8_lossy(&rust_rank(&log)),
        String::from_utf8_lossy(&fixed)
    );
}

#[test]
fn streaming_self_time_equals_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let log = python_log(dir.path(), 11, false);
    let inputs = Inputs::from_paths([&log]).unwrap();
    let report = rank(&inputs, &RankOptions::new().with_self_time(true)).unwrap();
    let requests = list(&inputs, &ListOptions::new()).unwrap();
    assert_eq!(requests.requests.len(), 80);
    let mut expected: HashMap<String, i64> = HashMap::new();
    for row in &requests.requests {
        let request = load_request(&inputs, row.base_id).unwrap().unwrap();
        assert_eq!(request.points.len() as u64, row.points);
        let tree = Tree::new(&request);
        assert_eq!(tree.roots().len(), 1, "{}", row.base_id);
        assert_eq!(tree.point(tree.roots()[0]).name, row.root);
        for (i, point) in request.points.iter().enumerate() {
            *expected.entry(point.name.clone()).or_default() +=
                (tree.self_secs(i) * 1e6).round() as i64;
        }
    }
    for row in &report.rows {
        let streamed = (row.self_time.unwrap() * 1e6).round() as i64;
        assert_eq!(streamed, expected[&row.name], "{}", row.name);
    }
    assert_eq!(report.rows.len(), expected.len());
}

#[test]
fn osprof_headers_are_accepted_by_python_osprofiler() {
    let out = Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args([
            "headers",
            "--key",
            "SECRET_KEY",
            "--base-id",
            "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = text.trim_end().split('\'').collect();
    let info = parts[1].strip_prefix("X-Trace-Info: ").unwrap();
    let hmac = parts[3].strip_prefix("X-Trace-HMAC: ").unwrap();
    let script = "import sys, json\n\
                  from osprofiler import _utils\n\
                  print(json.dumps(_utils.signed_unpack(sys.argv[1], sys.argv[2], [sys.argv[3]])))";
    let ok = common::run_python(script, &[info, hmac, "SECRET_KEY"]);
    let unpacked: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(unpacked["base_id"], "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b");
    let wrong = common::run_python(script, &[info, hmac, "OTHER_KEY"]);
    assert_eq!(String::from_utf8_lossy(&wrong.stdout).trim(), "null");
}

#[test]
fn mistral_rules_read_a_log_with_busy_times_as_rank_without_busy() {
    // Rust services' lines (busy times after the name and after the slow
    // marker) and Python services' lines (none), interleaved in one log.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    let mut logs: Vec<Vec<u8>> = Vec::new();
    for base in 1..=40u128 {
        let (with, _) = crate::busy::mixed_busy_log(base << 8);
        logs.push(with);
    }
    for (i, python) in [1u32, 2].into_iter().enumerate() {
        let path = python_log(dir.path(), python, true);
        logs.insert(i * 7, std::fs::read(path).unwrap());
    }
    for part in logs {
        log.extend_from_slice(&part);
    }
    let text = String::from_utf8(log.clone()).unwrap();
    assert!(
        text.contains(r#"-stop {"busy":0.001500}"#),
        "a busy time after the name"
    );
    assert!(
        text.contains(r#"-stop  <- !!! {"busy":0.040000}"#),
        "after the slow marker"
    );
    let path = dir.path().join("busy.log");
    std::fs::write(&path, &log).unwrap();
    let expected = python_rank(&path, false);
    assert!(
        expected.len() > 500,
        "{}",
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(
        String::from_utf8_lossy(&rust_rank(&path)),
        String::from_utf8_lossy(&expected)
    );
    // The busy times add columns and nothing else.
    let inputs = Inputs::from_paths([&path]).unwrap();
    let busy = rank(&inputs, &RankOptions::new().with_busy(true)).unwrap();
    let plain = rank(&inputs, &RankOptions::new()).unwrap();
    assert_eq!(busy.rows.len(), plain.rows.len());
    for (a, b) in busy.rows.iter().zip(&plain.rows) {
        assert_eq!(
            (a.total, a.max, a.count, &a.name),
            (b.total, b.max, b.count, &b.name)
        );
    }
    assert!(busy.rows.iter().any(|r| r.busy.unwrap().known > 0));
    assert!(busy.rows.iter().any(|r| r.busy.unwrap().unknown > 0));
}
