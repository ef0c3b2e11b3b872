//! The Redis sink against a real `redis-server` (one per test, started and
//! killed by `support::redis`) and the real Python osprofiler: the layout
//! osprofiler 4.4 writes and reads, the counters when Redis is down,
//! restarted, paused or hostile, and one tree across a Rust and a Python
//! service in osprofiler's own CLI.
#![cfg(feature = "redis")]

#[path = "../support/mod.rs"]
mod support;

mod bounds;
mod capture;
mod faults;
mod hostile;
mod layout;
mod python;

use std::path::PathBuf;
use std::time::Duration;

use tracing::Dispatch;
use tracing_osprofiler::point::RequestInfo;
use tracing_osprofiler::writer::{
    ProfileWriter, Redis, RollingFile, Rotation, SinkKind, SinkStats, WriterGuard, WriterStats,
};
use tracing_osprofiler::{HmacAlgorithm, Id, OsProfilerLayer, Profile, ProfileExt as _, Signer};
use tracing_subscriber::prelude::*;

/// One profiled service writing to a log file and to Redis, its subscriber
/// kept apart from other tests' (a thread-local default).
pub struct Service {
    pub writer: ProfileWriter,
    guard: Option<WriterGuard>,
    pub log_dir: tempfile::TempDir,
    dispatch: Dispatch,
    /// Start and stop events made so far.
    pub events: u64,
}

impl Service {
    pub fn new(redis: Redis) -> Service {
        Self::with_flush_timeout(redis, Duration::from_secs(10))
    }

    pub fn with_flush_timeout(redis: Redis, flush_timeout: Duration) -> Service {
        let log_dir = tempfile::tempdir().expect("tempdir");
        let (writer, guard) = ProfileWriter::builder()
            .with_file(RollingFile::new(log_dir.path()).with_rotation(Rotation::NEVER))
            .with_redis(redis)
            .with_project("rust-project")
            .with_service("rust-a")
            .with_host("rust-host")
            .with_flush_timeout(flush_timeout)
            .build()
            .expect("writer");
        let subscriber = tracing_subscriber::registry()
            .with(OsProfilerLayer::new(writer.clone()).with_fields(true));
        Service {
            writer,
            guard: Some(guard),
            log_dir,
            dispatch: Dispatch::new(subscriber),
            events: 0,
        }
    }

    /// Runs `f` with this service's subscriber.
    pub fn in_service<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    /// One profiled request: a root `wsgi` for `GET /v2/items?limit=1`
    /// and `children` points `db` under it, each with a `row` under it.
    pub fn request(&mut self, children: usize) -> Id {
        let base = self.in_service(|| {
            let profile = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1));
            let request = RequestInfo::new("GET", "/v2/items", "http").with_query("limit=1");
            let root = profile.start_request(request, || tracing::info_span!("wsgi"));
            let base = root.point_ids().expect("a trace point").base_id;
            root.in_scope(|| {
                for i in 0..children {
                    let _db = tracing::info_span!("db", statement = "SELECT 1", i).entered();
                    let _row = tracing::info_span!("row").entered();
                }
            });
            base
        });
        self.events += 2 * (1 + 2 * children as u64);
        base
    }

    pub fn flush(&self) {
        self.guard
            .as_ref()
            .expect("running")
            .flush(Duration::from_secs(20))
            .expect("flushed");
    }

    /// Flushes, waiting at most `timeout`.
    pub fn flush_within(
        &self,
        timeout: Duration,
    ) -> Result<(), tracing_osprofiler::writer::FlushTimedOut> {
        self.guard.as_ref().expect("running").flush(timeout)
    }

    pub fn stats(&self) -> WriterStats {
        self.writer.stats()
    }

    pub fn redis_stats(&self) -> SinkStats {
        self.stats().sink(SinkKind::Redis).expect("a redis sink")
    }

    /// Drops the guard (shutting the writer down) and returns the final
    /// counters.
    pub fn shut_down(&mut self) -> WriterStats {
        let stats = self.stats();
        drop(self.guard.take());
        stats
    }

    /// The log file's text.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).expect("log file")
    }

    pub fn log_path(&self) -> PathBuf {
        self.log_dir.path().join("osprofiler.log")
    }

    /// Every event made is counted exactly once by both sinks, and the
    /// queue in front of them dropped nothing.
    pub fn assert_counted(&self, stats: &WriterStats) -> SinkStats {
        assert_eq!(stats.events_dropped(), 0, "the writer's queue dropped");
        let file = stats.file().expect("file sink");
        assert_eq!(file.written, self.events, "file: {file:?}");
        let redis = stats.sink(SinkKind::Redis).expect("redis sink");
        assert_eq!(
            redis.written + redis.dropped + redis.failed + redis.unconfirmed,
            self.events,
            "redis counters: {redis:?}"
        );
        redis
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        drop(self.guard.take());
    }
}

/// osprofiler's own CLI: its `trace show --json` output for `base`.
pub fn osprofiler_show(connection_string: &str, base: Id) -> serde_json::Value {
    let output = support::python::run_python(
        "import sys\nfrom osprofiler.cmd.shell import main\nsys.exit(main())",
        &[
            "trace",
            "show",
            "--json",
            "--connection-string",
            connection_string,
            &base.to_string(),
        ],
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "osprofiler trace show --json: {e}\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The key of a request's events.
pub fn key(base: Id) -> String {
    format!("osprofiler_opt:{base}")
}
