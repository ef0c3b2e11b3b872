//! `cargo bench --bench show`: `osprof show`'s tree building and every
//! rendering on requests of many points in the shapes that make tree
//! algorithms super-linear (`tests/report/shapes.rs`): a deep chain, wide
//! siblings, parent cycles, orphans, a random tree, fragmented rows.
//!
//! `OSPROF_BENCH_POINTS` sets the number of points (default 100 000),
//! `OSPROF_BENCH_RUNS` the runs per figure (default 3, the best is kept),
//! `OSPROF_BENCH_SHAPE` keeps only the shapes whose name contains it (for a
//! profiler). Output goes to a sink that counts bytes: the figures are the
//! library's time, not the disk's; the last column is the largest output.
//!
//! A second table times the `osprof` binary end to end: each shape is
//! written as a Mistral log (`target/tmp/osprof-bench/show-<shape>.log`) and
//! `osprof show BASE_ID LOG --format F -o /dev/null` is run on it, reading
//! and matching the lines included.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};

use osprof::model::{Request, Tree};
use osprof::show::{self, ShowFormat, ShowOptions};
use tracing_osprofiler::format::{write_start, write_stop, PointName};

#[allow(dead_code)]
#[path = "../tests/report/shapes.rs"]
mod shapes;

/// Counts the bytes written.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..runs {
        let start = Instant::now();
        let r = f();
        best = best.min(start.elapsed());
        result = Some(r);
    }
    (best, result.expect("at least one run"))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `request` as a Mistral log, its lines in time order.
fn write_log(request: &Request, path: &Path) -> io::Result<()> {
    let mut lines: Vec<(i64, Vec<u8>)> = Vec::with_capacity(2 * request.points.len());
    for p in &request.points {
        let name = PointName::new(&p.name);
        if let Some(start) = p.start {
            let mut line = Vec::with_capacity(160);
            write_start(&mut line, start, &p.ids, name, None);
            lines.push((start.unix_micros(), line));
        }
        if let (Some(stop), Some(d)) = (p.stop, p.duration) {
            let mut line = Vec::with_capacity(160);
            write_stop(
                &mut line,
                stop,
                Duration::from_secs_f64(d),
                &p.ids,
                name,
                false,
            );
            lines.push((stop.unix_micros(), line));
        }
    }
    lines.sort_by_key(|l| l.0);
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    for (_, line) in lines {
        out.write_all(&line)?;
    }
    out.flush()
}

/// Seconds `osprof show` takes on the log, for each format.
fn end_to_end(exe: &str, request: &Request, log: &Path, runs: usize) -> Vec<Duration> {
    let base = request.base_id.to_string();
    ["tree", "json", "chrome", "svg", "html"]
        .iter()
        .map(|format| {
            best(runs, || {
                let status = std::process::Command::new(exe)
                    .args(["show", &base])
                    .arg(log)
                    .args(["--format", format, "-o", "/dev/null"])
                    .status()
                    .expect("run osprof");
                assert!(status.success(), "osprof show --format {format}");
            })
            .0
        })
        .collect()
}

fn main() {
    let n = env_u64("OSPROF_BENCH_POINTS", 100_000);
    let runs = (env_u64("OSPROF_BENCH_RUNS", 3) as usize).max(1);
    let formats = [
        ShowFormat::Tree,
        ShowFormat::Json,
        ShowFormat::Chrome,
        ShowFormat::Svg,
        ShowFormat::Html,
    ];
    println!("osprof show on {n} points, best of {runs} runs, seconds");
    println!(
        "{:<26} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "shape", "tree", "text", "json", "chrome", "svg", "html", "largest"
    );
    let only = std::env::var("OSPROF_BENCH_SHAPE").unwrap_or_default();
    let shapes: Vec<_> = shapes::all(n)
        .into_iter()
        .filter(|(name, _)| name.contains(only.as_str()))
        .collect();
    for (name, request) in &shapes {
        let (t_tree, tree) = best(runs, || Tree::new(request));
        let mut cells = vec![t_tree];
        let mut largest = 0;
        for format in formats {
            let options = ShowOptions::new().with_format(format);
            let (t, bytes) = best(runs, || {
                let mut out = Count(0);
                show::write(&tree, &options, &mut out).expect("write");
                out.0
            });
            cells.push(t);
            largest = largest.max(bytes);
        }
        print!("{name:<26}");
        for t in cells {
            print!(" {:>7.3}", t.as_secs_f64());
        }
        println!(" {:>6.0} MB", largest as f64 / 1e6);
    }

    let Some(exe) = option_env!("CARGO_BIN_EXE_osprof") else {
        return;
    };
    // The workspace's `target/tmp`, ignored by git, as `benches/report.rs`.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("osprof-bench");
    std::fs::create_dir_all(&dir).expect("create target/tmp/osprof-bench");
    println!();
    println!("osprof show BASE_ID LOG --format F (the binary, reading the log), seconds");
    println!(
        "{:<26} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "shape", "tree", "json", "chrome", "svg", "html", "log"
    );
    for (name, request) in &shapes {
        let log = dir.join(format!("show-{}-{n}.log", name.replace([' ', ','], "-")));
        write_log(request, &log).expect("write the log");
        let size = std::fs::metadata(&log).map_or(0, |m| m.len());
        print!("{name:<26}");
        for t in end_to_end(exe, request, &log, runs) {
            print!(" {:>7.3}", t.as_secs_f64());
        }
        println!(" {:>6.0} MB", size as f64 / 1e6);
    }
}
