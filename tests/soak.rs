//! Sustained load with rotation: an axum service on loopback with the
//! middleware and the layer writing a minutely rolling file, under a bounded
//! load of profiled and unprofiled requests that crosses at least one minute
//! boundary. Afterwards every `-start` has its `-stop` across the rotated
//! files, no line is torn, resident memory stayed flat, and the report reader
//! reads the rotated set as one.
//!
//! The run lasts until 12 s past the next minute boundary (between 12 and
//! 72 s); `OSPROFILER_SOAK_SECS=N` runs for N seconds instead (longer soaks).
#![cfg(all(feature = "tower", feature = "reqwest"))]

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;
use osprof::rank::{rank, RankOptions};
use osprof::source::Inputs;
use tracing::Instrument as _;
use tracing_osprofiler::format::{parse_line, Phase};
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::limit::ProfileLimit;
use tracing_osprofiler::writer::{RollingFile, Rotation};
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, OsProfilerLayer, Signer, TraceInfo};
use tracing_subscriber::prelude::*;

use support::memory::resident_bytes;

#[tracing::instrument]
async fn db_query(rows: u64) -> u64 {
    tokio::task::yield_now().await;
    rows
}

#[tracing::instrument]
async fn handler() -> String {
    let first = db_query(3).await;
    let spawned = tokio::spawn(db_query(5).in_current_span());
    let second = spawned.await.unwrap_or(0);
    format!("{}", first + second)
}

fn run_for() -> Duration {
    if let Some(secs) = std::env::var("OSPROFILER_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return Duration::from_secs(secs);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into_minute = now.as_secs_f64() % 60.0;
    Duration::from_secs_f64(60.0 - into_minute + 12.0)
}

#[test]
fn sustained_load_with_minutely_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = RollingFile::new(dir.path())
        .with_rotation(Rotation::MINUTELY)
        .build()
        .unwrap();
    let writer_counters = writer.stats();
    let layer = OsProfilerLayer::new(writer);
    let layer_stats = layer.stats();
    tracing_subscriber::registry().with(layer).init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let profiled = Arc::new(AtomicU64::new(0));
    let unprofiled = Arc::new(AtomicU64::new(0));
    let duration = run_for();
    let minute = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 60
    };
    let first_minute = minute();
    let rss_samples = runtime.block_on(async {
        let app = Router::new().route("/", get(handler)).layer(
            ProfilingLayer::new(HmacKeys::new(["SECRET_KEY"]))
                .with_limit(ProfileLimit::unlimited()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let signer = Signer::new("SECRET_KEY", HmacAlgorithm::Sha1);
        let deadline = Instant::now() + duration;
        let mut clients = Vec::new();
        for worker in 0..8u64 {
            let (client, url, signer) = (client.clone(), url.clone(), signer.clone());
            let (profiled, unprofiled) = (profiled.clone(), unprofiled.clone());
            clients.push(tokio::spawn(async move {
                let mut n = worker;
                while Instant::now() < deadline {
                    n += 1;
                    let mut request = client.get(&url);
                    let is_profiled = n % 3 == 0;
                    if is_profiled {
                        let headers = signer.sign(&TraceInfo::new_request());
                        for (name, value) in headers.iter() {
                            request = request.header(name, value);
                        }
                    }
                    let response = request.send().await.expect("service answers");
                    assert!(response.status().is_success());
                    response.text().await.unwrap();
                    if is_profiled {
                        profiled.fetch_add(1, Ordering::Relaxed);
                    } else {
                        unprofiled.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        let mut samples = Vec::new();
        while Instant::now() < deadline {
            samples.push(resident_bytes() / 1024);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        for client in clients {
            client.await.unwrap();
        }
        samples
    });
    drop(runtime);
    drop(guard);
    let crossed_minutes = minute() - first_minute;

    let profiled = profiled.load(Ordering::Relaxed);
    assert!(profiled > 100, "only {profiled} profiled requests");
    assert_eq!(layer_stats.points_live(), 0);
    assert_eq!(writer_counters.events_dropped(), 0);
    assert_eq!(writer_counters.file().unwrap().failed, 0);

    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() as u64 > crossed_minutes.min(1),
        "the file rotated: {files:?}"
    );

    // Every line parses (none torn or interleaved); each start has one stop.
    let mut open: HashMap<String, (String, usize)> = HashMap::new();
    let mut roots = 0u64;
    let mut lines = 0u64;
    for (index, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'));
        for line in text.lines() {
            lines += 1;
            let parsed = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
            let trace = parsed.ids.trace_id.to_string();
            match parsed.phase {
                Phase::Start => {
                    assert!(open
                        .insert(trace, (parsed.name.into_owned(), index))
                        .is_none());
                }
                Phase::Stop => {
                    let (name, _) = open.remove(&trace).expect("a stop has its start");
                    assert_eq!(name, parsed.name);
                    if name == "wsgi" {
                        roots += 1;
                    }
                }
            }
        }
    }
    assert!(open.is_empty(), "{} points never stopped", open.len());
    assert_eq!(roots, profiled, "one root point per profiled request");
    // Four points per profiled request (wsgi, handler, two db_query), two lines each.
    assert_eq!(lines, profiled * 4 * 2, "unprofiled requests wrote nothing");

    // The reader takes the rotated set as one: nothing unfinished or unreadable.
    let inputs = Inputs::from_paths(&files).unwrap();
    let report = rank(&inputs, &RankOptions::new()).unwrap();
    assert!(report.unfinished.is_empty(), "{:?}", report.unfinished);
    let wsgi = report.rows.iter().find(|r| r.name == "wsgi").unwrap();
    assert_eq!(wsgi.count, profiled);

    // Memory stays flat: after warm-up, resident memory grows by less than
    // 16 MiB over the run.
    let warm = rss_samples.iter().skip(3).copied().collect::<Vec<_>>();
    if let (Some(first), Some(max)) = (warm.first(), warm.iter().max()) {
        assert!(
            max.saturating_sub(*first) < 16 * 1024,
            "RSS grew from {first} KiB to {max} KiB: {rss_samples:?}"
        );
    }
    eprintln!(
        "soak: {:?}, {profiled} profiled and {} unprofiled requests, {} files, {lines} lines, RSS samples (KiB) {rss_samples:?}",
        duration,
        unprofiled.load(Ordering::Relaxed),
        files.len()
    );
}
