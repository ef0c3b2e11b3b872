//! The counters of the layer, the writer and the middleware, published
//! through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`), so that a Prometheus, StatsD or OpenTelemetry exporter
//! installed by the service picks them up with no glue.
//!
//! The counters live in this crate's own atomics, read at any time through
//! [`LayerStats`], [`WriterStats`] and `ProfilingStats`; a
//! [`MetricsPublisher`] copies them into the installed recorder, once per
//! [`publish`](MetricsPublisher::publish) or every interval from a thread of
//! its own ([`spawn`](MetricsPublisher::spawn)). Nothing is added to the
//! path of a span.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `osprofiler_points_started` | counter | | trace points started ([`LayerStats::points_started`]) |
//! | `osprofiler_points_live` | gauge | | trace points open now |
//! | `osprofiler_events_refused` | counter | | starts and stops the output refused (writer shut down, I/O error of a `MakeWriter`) |
//! | `osprofiler_field_values_cut` | counter | | span field values and error texts cut at the layer's cap, and fields left out of a full fields object ([`LayerStats::field_values_cut`]) |
//! | `osprofiler_events_dropped` | counter | | starts and stops the writer's queue dropped (full, lossy or stalled) |
//! | `osprofiler_events_dropped_over_bytes` | counter | | of those, dropped at the queue's limit in bytes |
//! | `osprofiler_sink_written` | counter | `sink` = `file`, `otlp`, `redis` | delivered, in the sink's unit (lines, spans, events) |
//! | `osprofiler_sink_dropped` | counter | `sink` | never tried: the sink's queue was full, or shutting down gave up |
//! | `osprofiler_sink_dropped_over_bytes` | counter | `sink` | of those, dropped at the sink queue's limit in bytes |
//! | `osprofiler_sink_failed` | counter | `sink` | tried and failed for good |
//! | `osprofiler_sink_unconfirmed` | counter | `sink` | sent, and no answer said whether they were taken (a timeout or a broken connection after sending) |
//! | `osprofiler_requests_profiled` | counter | | requests served profiled (`tower` or `actix` feature) |
//! | `osprofiler_requests_without_token` | counter | | requests without a token |
//! | `osprofiler_tokens_refused` | counter | `reason` = `oversized`, `bad_signature`, `malformed`, `over_limit`, `disabled_by_filter` | requests with a token served unprofiled, by why |
//!
//! | `osprofiler_capture_captured` | counter | | requests recorded by tail capture ([`CaptureStats`]) |
//! | `osprofiler_capture_requests` | counter | `outcome` = `kept_slow`, `kept_error`, `discarded`, `rate_limited` | what became of them once their root closed |
//! | `osprofiler_capture_not_captured` | counter | `reason` = `over_budget`, `sampled_out` | requests without a token that capture left alone |
//! | `osprofiler_capture_points_truncated` | counter | | points not buffered: over the per-request cap or the memory budget |
//! | `osprofiler_capture_kept_refused` | counter | | kept trees a writer refused whole (shut down) |
//! | `osprofiler_capture_bytes` | gauge | | memory held by the requests being captured |
//!
//! Several handles of one kind (two layers, two writers) add up.
//!
//! ```
//! use std::time::Duration;
//! use tracing_osprofiler::metrics::MetricsPublisher;
//! use tracing_osprofiler::writer::RollingFile;
//! use tracing_osprofiler::OsProfilerLayer;
//! # use tracing_subscriber::Registry;
//!
//! let dir = tempfile::tempdir()?;
//! let (writer, _guard) = RollingFile::new(dir.path()).build()?;
//! let layer: OsProfilerLayer<Registry> = OsProfilerLayer::new(writer.clone());
//! let _publisher = MetricsPublisher::new()
//!     .with_layer(layer.stats())
//!     .with_writer(writer.stats())
//!     .spawn(Duration::from_secs(10))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::capture::CaptureStats;
use crate::layer::LayerStats;
use crate::writer::{SinkKind, WriterStats};

/// Copies the counters it was given into the installed `metrics` recorder.
/// See the [module docs](self) for the metrics.
#[derive(Clone, Default)]
#[must_use = "a MetricsPublisher publishes nothing until `publish` or `spawn` is called"]
pub struct MetricsPublisher {
    layers: Vec<LayerStats>,
    writers: Vec<WriterStats>,
    captures: Vec<CaptureStats>,
    #[cfg(any(feature = "tower", feature = "actix"))]
    middlewares: Vec<crate::http::ProfilingStats>,
}

impl fmt::Debug for MetricsPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("MetricsPublisher");
        debug
            .field("layers", &self.layers.len())
            .field("writers", &self.writers.len())
            .field("captures", &self.captures.len());
        #[cfg(any(feature = "tower", feature = "actix"))]
        debug.field("middlewares", &self.middlewares.len());
        debug.finish()
    }
}

impl MetricsPublisher {
    /// A publisher of nothing yet.
    pub fn new() -> Self {
        MetricsPublisher::default()
    }

    /// Publishes a layer's counters.
    pub fn with_layer(mut self, stats: LayerStats) -> Self {
        self.layers.push(stats);
        self
    }

    /// Publishes a writer's counters and its sinks'.
    pub fn with_writer(mut self, stats: WriterStats) -> Self {
        self.writers.push(stats);
        self
    }

    /// Publishes a tail capture's counters ([`CaptureStats`]).
    pub fn with_capture(mut self, stats: CaptureStats) -> Self {
        self.captures.push(stats);
        self
    }

    /// Publishes the middleware's counters.
    #[cfg(any(feature = "tower", feature = "actix"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "actix"))))]
    pub fn with_middleware(mut self, stats: crate::http::ProfilingStats) -> Self {
        self.middlewares.push(stats);
        self
    }

    /// Sets every metric to the counters' current values.
    pub fn publish(&self) {
        let sum = |f: fn(&LayerStats) -> u64| self.layers.iter().map(f).sum::<u64>();
        metrics::counter!("osprofiler_points_started").absolute(sum(LayerStats::points_started));
        // A gauge is a float; counts of open points fit it exactly.
        metrics::gauge!("osprofiler_points_live").set(sum(LayerStats::points_live) as f64);
        metrics::counter!("osprofiler_events_refused").absolute(sum(LayerStats::events_refused));
        metrics::counter!("osprofiler_field_values_cut")
            .absolute(sum(LayerStats::field_values_cut));
        metrics::counter!("osprofiler_events_dropped").absolute(
            self.writers
                .iter()
                .map(WriterStats::events_dropped)
                .sum::<u64>(),
        );
        metrics::counter!("osprofiler_events_dropped_over_bytes").absolute(
            self.writers
                .iter()
                .map(WriterStats::events_dropped_over_bytes)
                .sum::<u64>(),
        );
        for kind in [SinkKind::File, SinkKind::Otlp, SinkKind::Redis] {
            let sinks: Vec<_> = self
                .writers
                .iter()
                .flat_map(|writer| {
                    writer
                        .sinks()
                        .filter(|s| s.kind == kind)
                        .collect::<Vec<_>>()
                })
                .collect();
            if sinks.is_empty() {
                continue;
            }
            let label = kind.as_str();
            metrics::counter!("osprofiler_sink_written", "sink" => label)
                .absolute(sinks.iter().map(|s| s.written).sum());
            metrics::counter!("osprofiler_sink_dropped", "sink" => label)
                .absolute(sinks.iter().map(|s| s.dropped).sum());
            metrics::counter!("osprofiler_sink_dropped_over_bytes", "sink" => label)
                .absolute(sinks.iter().map(|s| s.dropped_over_bytes).sum());
            metrics::counter!("osprofiler_sink_failed", "sink" => label)
                .absolute(sinks.iter().map(|s| s.failed).sum());
            metrics::counter!("osprofiler_sink_unconfirmed", "sink" => label)
                .absolute(sinks.iter().map(|s| s.unconfirmed).sum());
        }
        #[cfg(any(feature = "tower", feature = "actix"))]
        self.publish_middleware();
        self.publish_capture();
    }

    fn publish_capture(&self) {
        if self.captures.is_empty() {
            return;
        }
        type Count = fn(&CaptureStats) -> u64;
        let sum = |f: Count| self.captures.iter().map(f).sum::<u64>();
        metrics::counter!("osprofiler_capture_captured").absolute(sum(CaptureStats::captured));
        let outcomes: [(&'static str, Count); 4] = [
            ("kept_slow", CaptureStats::kept_slow),
            ("kept_error", CaptureStats::kept_error),
            ("discarded", CaptureStats::discarded),
            ("rate_limited", CaptureStats::rate_limited),
        ];
        for (outcome, count) in outcomes {
            metrics::counter!("osprofiler_capture_requests", "outcome" => outcome)
                .absolute(sum(count));
        }
        let skipped: [(&'static str, Count); 2] = [
            ("over_budget", CaptureStats::over_budget),
            ("sampled_out", CaptureStats::sampled_out),
        ];
        for (reason, count) in skipped {
            metrics::counter!("osprofiler_capture_not_captured", "reason" => reason)
                .absolute(sum(count));
        }
        metrics::counter!("osprofiler_capture_points_truncated")
            .absolute(sum(CaptureStats::truncated));
        metrics::counter!("osprofiler_capture_kept_refused")
            .absolute(sum(CaptureStats::kept_refused));
        metrics::gauge!("osprofiler_capture_bytes").set(
            self.captures
                .iter()
                .map(CaptureStats::bytes_in_use)
                .sum::<usize>() as f64,
        );
    }

    #[cfg(any(feature = "tower", feature = "actix"))]
    fn publish_middleware(&self) {
        use crate::http::ProfilingStats;
        if self.middlewares.is_empty() {
            return;
        }
        let sum = |f: fn(&ProfilingStats) -> u64| self.middlewares.iter().map(f).sum::<u64>();
        metrics::counter!("osprofiler_requests_profiled")
            .absolute(sum(ProfilingStats::requests_profiled));
        metrics::counter!("osprofiler_requests_without_token")
            .absolute(sum(ProfilingStats::requests_without_token));
        type Count = fn(&ProfilingStats) -> u64;
        let reasons: [(&'static str, Count); 5] = [
            ("oversized", ProfilingStats::tokens_oversized),
            ("bad_signature", ProfilingStats::tokens_bad_signature),
            ("malformed", ProfilingStats::tokens_malformed),
            ("over_limit", ProfilingStats::tokens_over_limit),
            (
                "disabled_by_filter",
                ProfilingStats::tokens_disabled_by_filter,
            ),
        ];
        for (reason, count) in reasons {
            metrics::counter!("osprofiler_tokens_refused", "reason" => reason).absolute(sum(count));
        }
    }

    /// Publishes every `interval` from a thread of its own, until the
    /// returned guard is dropped (which publishes once more). The thread
    /// reads the global recorder, so install the exporter first.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub fn spawn(self, interval: Duration) -> io::Result<PublisherGuard> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tracing-osprofiler-metrics".into())
            .spawn(move || loop {
                self.publish();
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        self.publish();
                        return;
                    }
                }
            })?;
        Ok(PublisherGuard {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Stops a [`MetricsPublisher`]'s thread when dropped, after one last
/// publication.
#[must_use = "dropping the guard stops publishing"]
pub struct PublisherGuard {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for PublisherGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherGuard").finish_non_exhaustive()
    }
}

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
