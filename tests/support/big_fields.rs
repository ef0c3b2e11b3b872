//! Big span fields for the tests of the sinks' byte bounds (OTLP in
//! `tests/fleet/otlp_bounds.rs`, Redis in `tests/redis/bounds.rs`): one
//! profiled request of many spans, each with one big field, made the same
//! way for every sink, and the flood of them into a sink that never
//! answers, with the process's memory measured around it.

use std::time::Duration;

use tracing::Dispatch;
use tracing_osprofiler::writer::{Builder, SinkKind, SinkStats, WriterGuard};
use tracing_osprofiler::{
    HmacAlgorithm, LayerStats, OsProfilerLayer, Profile, ProfileWriter, Signer,
};
use tracing_subscriber::prelude::*;

use super::memory::resident_bytes;

/// The size of one big field value: 512 KiB, the case.
pub const VALUE: usize = 512 * 1024;

/// One profiled root `upload` with `children` spans `part`, each with a
/// field `body` of `value`.
pub fn upload(children: usize, value: &str) {
    let profile = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1));
    let root = profile.start(|| tracing::info_span!("upload"));
    let _entered = root.enter();
    for part in 0..children {
        let _part = tracing::info_span!("part", part, body = value).entered();
    }
}

/// A subscriber of one layer writing to `writer` that records fields and
/// keeps each value whole up to twice [`VALUE`]: what a bounds test tests
/// is the sink's queue, not the layer's cap. Also the layer's counters.
pub fn keeping_fields_whole(writer: &ProfileWriter) -> (Dispatch, LayerStats) {
    let layer = OsProfilerLayer::new(writer.clone())
        .with_fields(true)
        .with_max_field_bytes(2 * VALUE);
    let stats = layer.stats();
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        stats,
    )
}

/// Builds `builder` (one sink, which never answers; a flush timeout of
/// 500 ms) and uploads one root and `children` spans, each with a whole
/// field of [`VALUE`] bytes; then a flush of 300 ms, which cannot finish
/// (the writer's thread hands everything over to the sink before it
/// flushes). Checks that no value was cut. Returns the writer, its guard,
/// and by how much the process's resident memory grew across the upload
/// and the flush.
pub fn flood_a_silent_sink(builder: Builder, children: usize) -> (ProfileWriter, WriterGuard, u64) {
    let (writer, guard) = builder
        .with_flush_timeout(Duration::from_millis(500))
        .build()
        .expect("writer");
    let (dispatch, layer_stats) = keeping_fields_whole(&writer);
    let value = "x".repeat(VALUE);
    let before = resident_bytes();
    tracing::dispatcher::with_default(&dispatch, || upload(children, &value));
    assert!(
        guard.flush(Duration::from_millis(300)).is_err(),
        "a sink that never answers cannot be flushed"
    );
    let grown = resident_bytes().saturating_sub(before);
    assert_eq!(layer_stats.field_values_cut(), 0);
    (writer, guard, grown)
}

/// Drops `guard` and checks that the sink `kind` of `writer` then counts
/// every one of the `made` events once, and wrote none: its counters.
pub fn shut_down_unwritten(
    writer: &ProfileWriter,
    guard: WriterGuard,
    kind: SinkKind,
    made: u64,
) -> SinkStats {
    drop(guard);
    let sink = writer.stats().sink(kind).expect("the flooded sink");
    assert_eq!(
        sink.written + sink.dropped + sink.failed + sink.unconfirmed,
        made,
        "every event counted once the guard is dropped: {sink:?}"
    );
    assert_eq!(sink.written, 0, "{sink:?}");
    sink
}
