//! `cargo bench --bench redis_list`: `osprof list` over a Redis store of
//! 100 000 requests, against `osprof list` over the log file of the same
//! requests, in the same run: time and peak memory.
//!
//! A `redis-server` is started on loopback (persistence off); a service
//! built on tracing-osprofiler writes `OSPROF_REDIS_BENCH_REQUESTS` (default
//! 100 000) requests of 4 trace points each (a root, two children, one
//! grandchild) both to a log file and to the store through its Redis sink.
//! Then the `osprof` binary lists the log and the store, each the best of
//! `OSPROF_BENCH_RUNS` (default 3) runs; peak RSS is the child's `VmHWM`,
//! sampled from `/proc/<pid>/status` until it exits (Linux only). The
//! store's own memory (`INFO memory`) is printed for scale.

#[allow(dead_code)]
#[path = "../../tests/support/redis.rs"]
mod redis_support;
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use tracing::Dispatch;
use tracing_osprofiler::writer::{ProfileWriter, Redis, RollingFile, Rotation, SinkKind};
use tracing_osprofiler::{HmacAlgorithm, OsProfilerLayer, Profile, Signer};
use tracing_subscriber::prelude::*;

/// Wall time and peak RSS (KiB) of `osprof ARGS`, output discarded.
fn measure(exe: &str, args: &[&str]) -> (Duration, Option<u64>) {
    let run = support::run_osprof(exe, args, Stdio::inherit()).expect("run osprof");
    assert!(run.success, "osprof {args:?} failed");
    (run.took, run.peak_kib)
}

fn best(exe: &str, args: &[&str], runs: usize) -> (Duration, Option<u64>) {
    (0..runs.max(1))
        .map(|_| measure(exe, args))
        .min_by_key(|(time, _)| *time)
        .expect("one run")
}

fn main() {
    let Some(exe) = option_env!("CARGO_BIN_EXE_osprof") else {
        eprintln!("the osprof binary is needed: run with the cli feature");
        return;
    };
    let requests: usize = std::env::var("OSPROF_REDIS_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runs: usize = std::env::var("OSPROF_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);

    let server = redis_support::RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (writer, guard) = ProfileWriter::builder()
        .with_file(RollingFile::new(dir.path()).with_rotation(Rotation::NEVER))
        .with_redis(Redis::new(&server.url()).expect("url"))
        .build()
        .expect("writer");
    let stats = writer.stats();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(OsProfilerLayer::new(writer)));
    let filling = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..requests {
            let root = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
                .start(|| tracing::info_span!("wsgi"));
            root.in_scope(|| {
                let _db = tracing::info_span!("db").entered();
                let _query = tracing::info_span!("db-query").entered();
                drop(_query);
                drop(_db);
                let _render = tracing::info_span!("render").entered();
            });
            drop(root);
            if i % 10_000 == 9_999 {
                // Keep the sink's queue from overflowing while filling.
                guard.flush(Duration::from_secs(120)).expect("flushed");
            }
        }
    });
    guard.flush(Duration::from_secs(120)).expect("flushed");
    drop(guard);
    let redis = stats.sink(SinkKind::Redis).expect("redis sink");
    let file = stats.file().expect("file sink");
    assert_eq!(
        (redis.written, redis.dropped, redis.failed),
        (file.written, 0, 0)
    );
    let used = server.command(&["INFO", "memory"]);
    let used = used
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_human:"))
        .unwrap_or("?")
        .to_owned();
    let log = dir.path().join("osprofiler.log");
    let log_bytes = std::fs::metadata(&log).map_or(0, |m| m.len());
    println!(
        "osprof list over Redis: {requests} requests, {} events",
        redis.written
    );
    println!(
        "filled in {:.1} s; store: {used} (INFO memory), log: {:.1} MB",
        filling.elapsed().as_secs_f64(),
        log_bytes as f64 / 1e6
    );

    let log = log.display().to_string();
    let url = server.url();
    let (log_time, log_peak) = best(exe, &["list", &log], runs);
    let (store_time, store_peak) = best(exe, &["list", "--connection-string", &url], runs);
    let kib = |k: Option<u64>| k.map_or("?".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0));
    println!("best of {runs} runs:");
    println!(
        "  osprof list LOG                       {:>7.2} s  peak RSS {}",
        log_time.as_secs_f64(),
        kib(log_peak)
    );
    println!(
        "  osprof list --connection-string URL   {:>7.2} s  peak RSS {}",
        store_time.as_secs_f64(),
        kib(store_peak)
    );
    println!(
        "  store/log: {:.2}x time",
        store_time.as_secs_f64() / log_time.as_secs_f64()
    );
}
