//! Cost per span of a profiled request with the Redis sink against the
//! file sink, as ratios measured in one run.
//!
//! Each iteration is `let s = info_span!("work"); let _e = s.enter();
//! drop(_e); drop(s);` (create, enter, exit, close) under an entered,
//! profiled request root, with an `OsProfilerLayer` whose writer feeds:
//!
//! * (file) a `RollingFile` alone;
//! * (redis) the Redis sink alone, to a `redis-server` this benchmark
//!   starts on loopback (persistence off);
//! * (file+redis) both.
//!
//! Rounds run in rotating order; after each round the writer is flushed
//! (outside the timed loop), so every event is in the file or the store
//! before the next round. Per span: the median and minimum wall-clock time
//! on the application thread, the median CPU time of the application thread
//! ("app cpu") and of the whole process, writer and export threads included
//! ("all cpu", Linux `schedstat`). Then the ratios redis/file and
//! file+redis/file (target: at most 1.25 on the application thread), and
//! the sinks' counters (nothing may be dropped or failed).
//!
//! Run: `cargo bench --bench redis --features redis` (optional arguments:
//! iterations per round, rounds). Needs `redis-server` on the `PATH`.

#[allow(dead_code)]
#[path = "../tests/support/redis.rs"]
mod redis_support;

use std::time::Duration;

use tracing::{info_span, Dispatch};
use tracing_osprofiler::writer::{
    ProfileWriter, Redis, RollingFile, Rotation, SinkKind, WriterGuard,
};
use tracing_osprofiler::{HmacAlgorithm, OsProfilerLayer, Profile, Signer};
use tracing_subscriber::prelude::*;

mod support;
use support::{median, process_cpu_ns, span_loop, thread_cpu_ns};

struct Case {
    label: &'static str,
    writer: ProfileWriter,
    guard: WriterGuard,
    dispatch: Dispatch,
}

fn case(label: &'static str, dir: &std::path::Path, file: bool, redis: Option<&str>) -> Case {
    let mut builder = ProfileWriter::builder();
    if file {
        builder = builder.with_file(RollingFile::new(dir).with_rotation(Rotation::NEVER));
    }
    if let Some(url) = redis {
        // Room for a whole round in the sink's queue.
        builder = builder.with_redis(Redis::new(url).expect("url").with_queue_limit(1 << 20));
    }
    let (writer, guard) = builder.build().expect("writer");
    let dispatch =
        Dispatch::new(tracing_subscriber::registry().with(OsProfilerLayer::new(writer.clone())));
    Case {
        label,
        writer,
        guard,
        dispatch,
    }
}

/// Wall time and app-thread CPU per span of one round.
fn run(case: &Case, iterations: u32) -> (Duration, Option<f64>) {
    tracing::dispatcher::with_default(&case.dispatch, || {
        let root = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
            .start(|| info_span!("request"));
        let _root = root.enter();
        let (elapsed, cpu) = span_loop(iterations, thread_cpu_ns);
        let cpu = cpu.map(|ns| ns as f64 / f64::from(iterations));
        (elapsed / iterations, cpu)
    })
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse::<u32>().expect("numeric arguments"));
    let iterations = args.next().unwrap_or(20_000);
    let rounds = args.next().unwrap_or(15);

    let server = redis_support::RedisServer::start();
    let url = server.url();
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let cases = [
        case("(file) RollingFile", dirs[0].path(), true, None),
        case("(redis) Redis sink", dirs[1].path(), false, Some(&url)),
        case("(file+redis) both", dirs[2].path(), true, Some(&url)),
    ];
    for c in &cases {
        run(c, iterations / 10);
        c.guard
            .flush(Duration::from_secs(60))
            .expect("warm-up flushed");
    }
    let n = cases.len();
    let mut wall = vec![Vec::new(); n];
    let mut cpu = vec![Vec::new(); n];
    let mut all = vec![Vec::new(); n];
    for round in 0..rounds as usize {
        for k in 0..n {
            let i = (round + k) % n;
            let before = process_cpu_ns();
            let (w, c) = run(&cases[i], iterations);
            cases[i]
                .guard
                .flush(Duration::from_secs(60))
                .expect("flushed");
            if let (Some(before), Some(after)) = (before, process_cpu_ns()) {
                all[i].push((after - before) as f64 / f64::from(iterations));
            }
            wall[i].push(w.as_nanos() as f64);
            cpu[i].extend(c);
        }
    }

    println!("tracing-osprofiler Redis sink benchmark");
    println!(
        "iterations per round: {iterations}, rounds: {rounds}, available parallelism: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "writer (per span)", "median ns", "min ns", "app cpu", "all cpu"
    );
    let mut medians = Vec::new();
    let mut cpu_medians = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let min = wall[i].iter().copied().fold(f64::INFINITY, f64::min);
        let med = median(&wall[i]);
        let cpu_med = median(&cpu[i]);
        let all_med = median(&all[i]);
        medians.push(med);
        cpu_medians.push(cpu_med);
        println!(
            "{:<28} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            c.label, med, min, cpu_med, all_med
        );
    }
    println!();
    for (i, name) in [(1, "redis/file"), (2, "file+redis/file")] {
        let ratio = medians[i] / medians[0];
        println!(
            "{name} = {ratio:.3} on wall time (target <= 1.25: {}), {:.3} on app-thread CPU",
            if ratio <= 1.25 { "met" } else { "MISSED" },
            cpu_medians[i] / cpu_medians[0]
        );
    }
    for c in cases {
        let stats = c.writer.stats();
        drop(c.guard);
        let redis = stats.sink(SinkKind::Redis);
        println!(
            "{}: queue dropped {}, file {:?}, redis {:?}",
            c.label,
            stats.events_dropped(),
            stats.file().map(|s| (s.written, s.dropped, s.failed)),
            redis.map(|s| (s.written, s.dropped, s.failed)),
        );
    }
}
