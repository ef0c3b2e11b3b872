//! `osprof` reading osprofiler's Redis store: the same reports from a store
//! as from the log the same requests were written to; points of Python
//! services written by osprofiler's own driver, in both layouts; a hostile
//! store. Each test starts its own `redis-server` (`tests/support/redis.rs`
//! at the workspace's root).
#![cfg(all(feature = "redis", feature = "cli"))]

#[path = "../support/peak.rs"]
mod peak_support;
#[allow(dead_code)]
#[path = "../../../tests/support/python.rs"]
mod python_support;
#[allow(dead_code)]
#[path = "../../../tests/support/redis.rs"]
mod redis_support;

mod hostile;
mod python;
mod same_reports;

use std::process::{Command, Output};
use std::time::Duration;

use tracing::Dispatch;
use tracing_osprofiler::point::RequestInfo;
use tracing_osprofiler::writer::{ProfileWriter, Redis, RollingFile, Rotation, SinkKind};
use tracing_osprofiler::{HmacAlgorithm, Id, OsProfilerLayer, Profile, ProfileExt as _, Signer};
use tracing_subscriber::prelude::*;

/// Runs the `osprof` binary; panics with its stderr unless it succeeds.
pub fn osprof(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_osprof"))
        .args(args)
        .output()
        .expect("run osprof");
    assert!(
        output.status.success(),
        "osprof {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A Rust service writes `requests` requests to a log file (in `dir`) and
/// to the store at `url` (the first with 700 `db` points, 1 406 events:
/// more than a slice); returns their base_ids and the log's path.
pub fn rust_requests(url: &str, dir: &std::path::Path, requests: usize) -> (Vec<Id>, String) {
    let (writer, guard) = ProfileWriter::builder()
        .with_file(RollingFile::new(dir).with_rotation(Rotation::NEVER))
        .with_redis(Redis::new(url).unwrap())
        .with_project("nova")
        .with_service("api")
        .build()
        .unwrap();
    let stats = writer.stats();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry().with(OsProfilerLayer::new(writer).with_fields(true)),
    );
    let bases = tracing::dispatcher::with_default(&dispatch, || {
        (0..requests)
            .map(|i| {
                let profile = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1));
                let root = profile
                    .start_request(RequestInfo::new("GET", "/servers", "http"), || {
                        tracing::info_span!("wsgi")
                    });
                root.in_scope(|| {
                    let _load = tracing::info_span!("load", user = i).entered();
                    // The first request is long: its list is read in
                    // several slices.
                    let dbs = if i == 0 { 700 } else { i % 3 + 1 };
                    for _ in 0..dbs {
                        let _db = tracing::info_span!("db").entered();
                        std::thread::sleep(Duration::from_micros(if i == 0 { 5 } else { 200 }));
                    }
                    drop(_load);
                    let _render = tracing::info_span!("render").entered();
                });
                root.point_ids().unwrap().base_id
            })
            .collect()
    });
    guard.flush(Duration::from_secs(20)).unwrap();
    drop(guard);
    let redis = stats.sink(SinkKind::Redis).unwrap();
    let file = stats.file().unwrap();
    assert_eq!(
        (redis.written, redis.failed, redis.dropped),
        (file.written, 0, 0)
    );
    (bases, dir.join("osprofiler.log").display().to_string())
}
