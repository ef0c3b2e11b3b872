//! What a sink is: a destination the writer's thread hands every batch of
//! events to, with its counters and its once-per-outage reports.
//!
//! A sink owns its I/O and its failures: the writer's thread never waits on
//! a network. The file sink writes on the writer's thread (a local file is
//! fast or failing, and both are handled there); a sink that talks to a
//! server (OTLP, Redis) keeps a bounded queue and a thread of its own, and
//! counts what it cannot take.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::point::PointEvent;

/// A destination of the writer's thread.
pub(crate) trait Sink: Send {
    /// Takes a batch of events, in the order they were queued. Never
    /// blocks on a remote service.
    fn write(&mut self, events: &[PointEvent]);

    /// Delivers (or counts) everything taken so far, waiting at most until
    /// `deadline`; whether it finished.
    fn flush(&mut self, deadline: Instant) -> bool;

    /// Delivers what it can until `deadline`, counts the rest as dropped,
    /// and stops its threads.
    fn shutdown(&mut self, deadline: Instant);
}

/// Kinds of sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SinkKind {
    /// The Mistral log file ([`RollingFile`](super::RollingFile)); counts
    /// lines.
    File,
    /// An OpenTelemetry collector over OTLP/HTTP (feature `otlp`); counts
    /// spans (one per trace point, made from its stop).
    Otlp,
    /// osprofiler's Redis store (feature `redis`); counts events (one per
    /// start and one per stop).
    Redis,
}

impl SinkKind {
    /// `file`, `otlp` or `redis`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            SinkKind::File => "file",
            SinkKind::Otlp => "otlp",
            SinkKind::Redis => "redis",
        }
    }
}

impl fmt::Display for SinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The counters of one sink at one moment, in the sink's unit (see
/// [`SinkKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Which sink.
    pub kind: SinkKind,
    /// Delivered: written to the file, accepted by the collector or the
    /// store.
    pub written: u64,
    /// Never tried: the sink's own queue was full, or shutting down gave
    /// up on them.
    pub dropped: u64,
    /// Of `dropped`, those that found the sink's queue at its limit in
    /// bytes (big span fields).
    pub dropped_over_bytes: u64,
    /// Tried and failed for good: refused by the file system, or the
    /// service was unreachable or refused them after every retry.
    pub failed: u64,
    /// Sent, but no answer said whether they were taken: the request timed
    /// out, or the connection broke, after it went out (OTLP); the
    /// connection broke or timed out after their `LPUSH` went out whole,
    /// or shutting down gave up on the batch in hand (Redis). The service
    /// may hold them; they were not sent again.
    pub unconfirmed: u64,
}

/// The live counters of one sink, shared with [`WriterStats`](super::WriterStats).
#[derive(Debug)]
pub(crate) struct SinkCounters {
    kind: SinkKind,
    /// Where it writes, for the outage reports (a directory, a URL without
    /// credentials).
    destination: String,
    written: AtomicU64,
    dropped: AtomicU64,
    dropped_over_bytes: AtomicU64,
    failed: AtomicU64,
    unconfirmed: AtomicU64,
    failing: AtomicBool,
}

#[allow(dead_code)] // `dropped`, `dropped_over_bytes`, `unconfirmed`, `is_failing` serve the network sinks
impl SinkCounters {
    pub(crate) fn new(kind: SinkKind, destination: String) -> Self {
        SinkCounters {
            kind,
            destination,
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dropped_over_bytes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            unconfirmed: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    pub(crate) fn snapshot(&self) -> SinkStats {
        SinkStats {
            kind: self.kind,
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            dropped_over_bytes: self.dropped_over_bytes.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            unconfirmed: self.unconfirmed.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn written(&self, n: u64) {
        if n > 0 {
            self.written.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn dropped(&self, n: u64) {
        if n > 0 {
            self.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn failed(&self, n: u64) {
        if n > 0 {
            self.failed.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts `n` dropped because the sink's queue was at its byte limit
    /// (in `dropped` too).
    pub(crate) fn dropped_over_bytes(&self, n: u64) {
        if n > 0 {
            self.dropped.fetch_add(n, Ordering::Relaxed);
            self.dropped_over_bytes.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn unconfirmed(&self, n: u64) {
        if n > 0 {
            self.unconfirmed.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Reports an outage on standard error, once until [`recovered`](Self::recovered).
    pub(crate) fn outage(&self, error: &dyn fmt::Display) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            eprintln!(
                "tracing-osprofiler: the {} sink cannot deliver to {} ({error}); \
                 what it cannot deliver is counted in its stats (failed, or unconfirmed \
                 when sent without an answer) until it works again",
                self.kind, self.destination
            );
        }
    }

    /// Ends an outage (reported once).
    pub(crate) fn recovered(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            eprintln!(
                "tracing-osprofiler: the {} sink delivers to {} again",
                self.kind, self.destination
            );
        }
    }

    /// Whether an outage is going on.
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

/// Who writes the points, for sinks that say it (OTLP's `service.name`,
/// the `project`, `service` and `info.host` of osprofiler's Redis events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) project: String,
    pub(crate) service: String,
    pub(crate) host: String,
}

impl Identity {
    pub(crate) fn from_environment() -> Self {
        Identity {
            project: "osprofiler".to_owned(),
            service: executable_name().unwrap_or_else(|| "service".to_owned()),
            host: host_name().unwrap_or_else(|| "localhost".to_owned()),
        }
    }
}

fn executable_name() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.file_stem()?.to_string_lossy().into_owned())
}

/// The host name without a dependency: the kernel's on Linux, else the
/// usual environment variables.
fn host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned());
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|name| !name.is_empty())
}
