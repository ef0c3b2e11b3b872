//! `cargo bench --bench report`: the `osprof` reports on a generated log
//! against a plain memchr line count of the same file, in the same run.
//!
//! The log (`target/tmp/osprof-bench/bench-<BYTES>.log`, 1 GiB unless
//! `OSPROF_BENCH_BYTES` says otherwise, e.g. `OSPROF_BENCH_BYTES=100000000`
//! for a quick run) is generated once and reused: requests of nested points
//! with 40 distinct names, durations in the forms Python writes, slow
//! markers and the odd JSON suffix. Each measurement is the best of
//! `OSPROF_BENCH_RUNS` (default 3) runs on a warm page cache: the line
//! count, `rank` mapped and read, `rank --percentiles`, `rank --self
//! --percentiles` and `list` (`OSPROF_BENCH_RANK_ONLY=1`: the line count and
//! `rank` only). Peak RSS is the `VmHWM` of a child `osprof` process
//! (sampled from `/proc/<pid>/status` until it exits; Linux only).
//!
//! Then a log of many distinct names (`bench-names-<N>-<BYTES>.log`:
//! `OSPROF_BENCH_NAMES` names, default 200 000, in
//! `OSPROF_BENCH_NAMES_BYTES`, default 31 MB; `OSPROF_BENCH_NAMES_ONLY=1`
//! runs only this part): `rank --percentiles` against plain `rank` and the
//! line count, and their peak RSS.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;

use osprof::list::{list, ListOptions};
use osprof::rank::{rank, RankOptions};
use osprof::source::Inputs;
use tracing_osprofiler::format::{write_start, write_stop, PointIds, PointName, Timestamp};
use tracing_osprofiler::Id;

const NAMES: [&str; 8] = [
    "wsgi",
    "engine-start-workflow",
    "workflow-set-state",
    "engine-on-action-complete",
    "db-query",
    "rpc-call",
    "task-run",
    "executor-run-action",
];

/// A small deterministic generator (xorshift), so every run writes the same
/// log without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes the log: the 8 names below (with 5 targets), or, with
/// `many_names`, each child point named one of that many distinct names.
fn generate(path: &Path, bytes: u64, many_names: Option<u64>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0u64;
    let mut now = 1_582_790_665_000_000i64;
    let mut buf = Vec::with_capacity(1 << 16);
    while written < bytes {
        // One request: a root and a few levels of children, written in
        // start/stop order (as a single thread would).
        let base = Id::from_uuid(uuid::Uuid::from_u128(
            u128::from(rng.next()) << 64 | u128::from(rng.next()),
        ));
        let mut stack: Vec<(PointIds, String, i64)> = Vec::new();
        let mut points = 0;
        let target = 5 + rng.next() % 60;
        let root = PointIds {
            base_id: base,
            parent_id: base,
            trace_id: Id::from_uuid(uuid::Uuid::from_u128(u128::from(rng.next()) << 64 | 1)),
        };
        write_start(
            &mut buf,
            Timestamp::from_unix_micros(now),
            &root,
            PointName::new(NAMES[0]),
            None,
        );
        stack.push((root, NAMES[0].to_owned(), now));
        while let Some(&(top, _, _)) = stack.last() {
            now += (rng.next() % 2000) as i64;
            if points < target && stack.len() < 6 && rng.next() % 3 != 0 {
                points += 1;
                let suffix = 40 * (rng.next() % 5) as usize;
                let name_i = 1 + (rng.next() % 7) as usize;
                let ids = PointIds {
                    base_id: base,
                    parent_id: top.trace_id,
                    trace_id: Id::from_uuid(uuid::Uuid::from_u128(
                        u128::from(rng.next()) << 64 | 2,
                    )),
                };
                let many = many_names.map(|n| format!("name-{}", rng.next() % n));
                let name = many.as_deref().unwrap_or(NAMES[name_i]);
                let target_name = ["", "nova", "mistral", "glance", "heat"][suffix / 40];
                let pn = if target_name.is_empty() || many.is_some() {
                    PointName::new(name)
                } else {
                    PointName::with_target(target_name, name)
                };
                let fields = (rng.next() % 50 == 0).then_some("{\"statement\":\"SELECT 1\"}");
                write_start(&mut buf, Timestamp::from_unix_micros(now), &ids, pn, fields);
                stack.push((ids, name.to_owned(), now));
            } else if let Some((ids, name, began)) = stack.pop() {
                let d = Duration::from_micros((now - began) as u64);
                write_stop(
                    &mut buf,
                    Timestamp::from_unix_micros(now),
                    d,
                    &ids,
                    PointName::new(&name),
                    d > Duration::from_millis(500),
                );
            }
            if buf.len() > 60_000 {
                out.write_all(&buf)?;
                written += buf.len() as u64;
                buf.clear();
            }
        }
        now += (rng.next() % 10_000) as i64;
    }
    out.write_all(&buf)?;
    out.flush()?;
    drop(out);
    std::fs::rename(tmp, path)
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

/// One measured case: its label and what it runs.
type Case<'a> = (&'a str, Box<dyn Fn() + 'a>);

/// The best time of each case over `runs` rounds, each round running every
/// case once in turn: the line count and the reports see the same machine
/// from round to round (on a shared machine, whose speed drifts, ratios of
/// best times taken minutes apart would mislead).
fn best_interleaved(runs: usize, cases: &[Case<'_>]) -> Vec<Duration> {
    let mut best = vec![Duration::MAX; cases.len()];
    for _ in 0..runs {
        for (i, (_, run)) in cases.iter().enumerate() {
            let start = Instant::now();
            run();
            best[i] = best[i].min(start.elapsed());
        }
    }
    best
}

/// Peak RSS in KiB of `osprof ARGS`, from the child's `VmHWM`.
fn peak_rss_kib(exe: &str, args: &[&str]) -> Option<u64> {
    support::run_osprof(exe, args, std::process::Stdio::null())?.peak_kib
}

/// The log `bench-<BYTES>.log` (or `bench-names-<N>-<BYTES>.log`), made
/// once.
fn log_path(dir: &Path, bytes: u64, many_names: Option<u64>) -> PathBuf {
    let path = match many_names {
        Some(n) => dir.join(format!("bench-names-{n}-{bytes}.log")),
        None => dir.join(format!("bench-{bytes}.log")),
    };
    if !path.exists() {
        let start = Instant::now();
        generate(&path, bytes, many_names).expect("generate the log");
        eprintln!("generated {} in {:.1?}", path.display(), start.elapsed());
    }
    path
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints one figure: time, throughput, and the ratio to the line count.
fn row(what: &str, t: Duration, t_count: Duration, mib: f64) {
    println!(
        "{what:<32} {:>8.3} s {:>8.1} MiB/s {:>6.2} x line count",
        t.as_secs_f64(),
        mib / t.as_secs_f64(),
        t_count.as_secs_f64() / t.as_secs_f64()
    );
}

/// Peak RSS of the `osprof` binary for each of these argument lists.
fn print_peak_rss(path: &Path, commands: &[&[&str]]) {
    let Some(exe) = option_env!("CARGO_BIN_EXE_osprof") else {
        return;
    };
    let p = path.to_string_lossy();
    for args in commands {
        let mut args = args.to_vec();
        args.push(&p);
        match peak_rss_kib(exe, &args) {
            Some(kib) => println!(
                "peak RSS osprof {:<30} {:>8.1} MiB",
                args[..args.len() - 1].join(" "),
                kib as f64 / 1024.0
            ),
            None => println!("peak RSS osprof {}: not measured", args.join(" ")),
        }
    }
}

/// The log of many distinct names (`OSPROF_BENCH_NAMES`, default
/// 200 000, in `OSPROF_BENCH_NAMES_BYTES`, default 31 MB): `rank
/// --percentiles` against plain `rank` and the line count.
fn many_names(dir: &Path, runs: usize) {
    let names = env_u64("OSPROF_BENCH_NAMES", 200_000);
    let bytes = env_u64("OSPROF_BENCH_NAMES_BYTES", 31_000_000);
    let path = log_path(dir, bytes, Some(names));
    let mib = std::fs::metadata(&path).expect("log").len() as f64 / (1 << 20) as f64;
    let inputs = Inputs::from_paths([&path]).expect("open the log");
    let lines = count_lines(&path).expect("read");
    let mapped = RankOptions::new().with_mmap(true);
    let plain = rank(&inputs, &mapped).expect("rank");
    let pct = mapped.clone().with_percentiles(true);
    let cases: Vec<Case<'_>> = vec![
        ("memchr line count", Box::new(|| drop(count_lines(&path)))),
        ("rank", Box::new(|| drop(rank(&inputs, &mapped)))),
        ("rank --percentiles", Box::new(|| drop(rank(&inputs, &pct)))),
    ];
    let times = best_interleaved(runs, &cases);
    println!(
        "log: {} ({mib:.0} MiB, {lines} lines, {} names)",
        path.display(),
        plain.rows.len()
    );
    for ((what, _), t) in cases.iter().zip(&times) {
        row(what, *t, times[0], mib);
    }
    print_peak_rss(&path, &[&["rank"], &["rank", "--percentiles"]]);
}

fn main() {
    let bytes = env_u64("OSPROF_BENCH_BYTES", 1 << 30);
    let runs = (env_u64("OSPROF_BENCH_RUNS", 3) as usize).max(1);
    // The workspace's `target/tmp` (ignored by git): under the package's
    // own directory, a 1 GiB log would be one `git add -A` from a commit.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("osprof-bench");
    std::fs::create_dir_all(&dir).expect("create target/tmp/osprof-bench");
    if std::env::var_os("OSPROF_BENCH_NAMES_ONLY").is_some() {
        many_names(&dir, runs);
        return;
    }
    let path = log_path(&dir, bytes, None);
    let size = std::fs::metadata(&path).expect("log").len();
    let mib = size as f64 / (1 << 20) as f64;
    let inputs = Inputs::from_paths([&path]).expect("open the log");

    let lines = count_lines(&path).expect("read");
    // `osprof rank` maps plain files (`--no-mmap` reads them).
    let mapped = RankOptions::new().with_mmap(true);
    let report = rank(&inputs, &mapped).expect("rank");
    assert_eq!(report.unreadable.count, 0);
    let read = rank(&inputs, &RankOptions::new()).expect("rank");
    assert_eq!(read.rows, report.rows);
    let pct = mapped.clone().with_percentiles(true);
    let self_pct = pct.clone().with_self_time(true);
    let list_mapped = ListOptions::new().with_mmap(true);
    let mut cases: Vec<Case<'_>> = vec![
        ("memchr line count", Box::new(|| drop(count_lines(&path)))),
        ("rank", Box::new(|| drop(rank(&inputs, &mapped)))),
        (
            "rank --no-mmap",
            Box::new(|| drop(rank(&inputs, &RankOptions::new()))),
        ),
    ];
    let rank_only = std::env::var_os("OSPROF_BENCH_RANK_ONLY").is_some();
    if !rank_only {
        cases.push(("rank --percentiles", Box::new(|| drop(rank(&inputs, &pct)))));
        cases.push((
            "rank --self --percentiles",
            Box::new(|| drop(rank(&inputs, &self_pct))),
        ));
        cases.push(("list", Box::new(|| drop(list(&inputs, &list_mapped)))));
        cases.push((
            "list --no-mmap",
            Box::new(|| drop(list(&inputs, &ListOptions::new()))),
        ));
    }
    let times = best_interleaved(runs, &cases);
    let listed = list(&inputs, &list_mapped).expect("list");
    println!(
        "log: {} ({mib:.0} MiB, {lines} lines, {} requests)",
        path.display(),
        listed.requests.len()
    );
    for ((what, _), t) in cases.iter().zip(&times) {
        row(what, *t, times[0], mib);
    }
    if rank_only {
        return;
    }
    print_peak_rss(
        &path,
        &[
            &["rank"],
            &["rank", "--no-mmap"],
            &["rank", "--self", "--percentiles"],
            &["list"],
        ],
    );
    many_names(&dir, runs);
}
