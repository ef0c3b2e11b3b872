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

use std::io::{self, Write};
use std::time::{Duration, Instant};

use osprof::model::Tree;
use osprof::show::{self, ShowFormat, ShowOptions};

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
    for (name, request) in shapes::all(n) {
        if !name.contains(only.as_str()) {
            continue;
        }
        let (t_tree, tree) = best(runs, || Tree::new(&request));
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
}
