//! Faults, crashes, clock steps and secrets, with the real layer and writer.
//! The long load test with rotation lives in `tests/soak.rs`, a binary of its
//! own, because it measures the resident memory of its process.

#[path = "../support/mod.rs"]
mod support;

mod clock;
mod crash;
mod disk;
mod faults;
mod secrets;

use std::time::{Duration, Instant};

use tracing_osprofiler::writer::ProfileWriter;
use tracing_osprofiler::{HmacAlgorithm, LayerStats, OsProfilerLayer, Profile, Signer};
use tracing_subscriber::prelude::*;

/// Runs `requests` profiled requests of `spans` nested spans each; returns
/// the slowest request's latency.
pub fn serve(requests: usize, spans: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..requests {
        let started = Instant::now();
        let root = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
            .start(|| tracing::info_span!("wsgi"));
        root.in_scope(|| {
            for _ in 0..spans {
                let _s = tracing::info_span!("work").entered();
            }
        });
        drop(root);
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// Runs `f` with the layer writing to `writer` (fields off) as the only
/// layer of a subscriber; `f` gets the layer's counters.
pub fn with_layer<T>(writer: ProfileWriter, f: impl FnOnce(&LayerStats) -> T) -> T {
    let layer = OsProfilerLayer::new(writer);
    let stats = layer.stats();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || f(&stats))
}
