//! Where the points go: a bounded queue, a background thread, and the sinks
//! it writes to.
//!
//! This module owns everything between the layer and the destinations, split
//! the way tracing-appender splits its own writer:
//!
//! | file | owns |
//! |---|---|
//! | `builder.rs` | [`Builder`]: which sinks, the queue's bounds, the service's identity; connection strings |
//! | `queue.rs` | the bounded queue the profiled threads send to, and its shutdown gate |
//! | this file | [`ProfileWriter`] (the handle the layer holds), [`WriterGuard`], the counters |
//! | `worker.rs` | the background thread: batches events and hands them to every sink |
//! | `sink.rs` | what a sink is, and its counters and outage reports |
//! | `file/` | the Mistral log file sink: [`RollingFile`], its own rolling file |
//! | `otlp/` | the OTLP/HTTP sink (feature `otlp`): `Otlp`, spans made as osprofiler's `otlp` driver makes them, its export thread |
//! | `redis/` | osprofiler's Redis store (feature `redis`): `Redis`, its export thread, the JSON osprofiler stores |
//! | `error.rs` | [`Error`] |
//!
//! A profiled thread only queues a small record per start and stop; the
//! writer's thread formats it and hands it to each sink. The file sink
//! writes it there; sinks that talk to a network service (OTLP, Redis) have
//! a thread of their own, so a slow collector never holds up the file.
//!
//! # Nothing is lost silently, and the service is never stalled for long
//!
//! * **Lossless, with a bound** (the default): when the writer thread falls
//!   behind by more than the queue's limit, the thread writing an event
//!   waits for room, up to [`Builder::with_max_wait`] (500 ms). A writer
//!   still stuck after that (a hung network disk) is declared *stalled*:
//!   events are dropped and counted, without waiting, until the queue has
//!   room again. So a stuck disk adds at most one wait of that length to the
//!   service.
//! * **Lossy** ([`Builder::with_lossy`]): events that find the queue full
//!   are dropped at once and counted.
//! * Every event the queue accepted is handed to every sink, which writes
//!   it or counts it ([`SinkStats`]): a full disk, a deleted directory, a
//!   collector that is down. Each outage is reported on standard error once,
//!   and once more when it ends.
//! * Shutting down ([`WriterGuard`]) closes the queue first: an event sent
//!   afterwards is refused (the layer counts it in
//!   [`LayerStats::events_refused`](crate::LayerStats::events_refused)), and
//!   every event accepted before is written or counted, whatever the load.
//!
//! # On the way out
//!
//! Dropping the [`WriterGuard`] writes what is queued, waiting at most the
//! flush timeout. A process that ends with [`std::process::exit`], a
//! `panic = "abort"`, or a leaked guard never runs that drop, and what is
//! still queued is lost: call [`WriterGuard::flush`] (or drop the guard)
//! before such an exit.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::point::PointEvent;

mod builder;
mod error;
mod file;
#[cfg(feature = "otlp")]
mod otlp;
mod queue;
#[cfg(feature = "redis")]
mod redis;
mod sink;
mod worker;

pub use builder::{hide_connection_secrets, redact_password, Builder};
pub use error::Error;
pub use file::RollingFile;
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub use otlp::Otlp;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::Redis;
pub(crate) use sink::{Identity, Sink, SinkCounters};
pub use sink::{SinkKind, SinkStats};
pub use tracing_appender::rolling::Rotation;

use queue::Queue;
use worker::Control;

/// The handle an [`OsProfilerLayer`](crate::OsProfilerLayer) sends points
/// through, made by [`RollingFile::build`] or [`ProfileWriter::builder`].
/// Cloning it is cheap; every clone feeds the same queue.
#[derive(Clone)]
pub struct ProfileWriter {
    queue: Arc<Queue>,
    stats: WriterStats,
    /// Some sink writes starts (see `SinkConfig::wants_starts`).
    wants_starts: bool,
}

impl ProfileWriter {
    /// A writer with several sinks, queue settings and the service's
    /// identity: see [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The writer's counters.
    #[must_use]
    pub fn stats(&self) -> WriterStats {
        self.stats.clone()
    }

    /// Queues one start or stop for the writer's thread: the layer's fast
    /// path, which keeps formatting and I/O off the profiled threads.
    pub(crate) fn send_event(&self, event: PointEvent) -> io::Result<()> {
        self.queue.send(event)
    }

    /// Queues the events of a kept request whole, or refuses them whole.
    pub(crate) fn send_events(
        &self,
        make: impl FnOnce(&mut dyn FnMut(PointEvent)),
    ) -> io::Result<()> {
        self.queue.send_all(make)
    }

    /// Whether any sink does something with a point's start.
    pub(crate) fn wants_starts(&self) -> bool {
        self.wants_starts
    }
}

impl fmt::Debug for ProfileWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileWriter")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The counters of a [`ProfileWriter`] and of each of its sinks, readable
/// while it runs (for a metrics endpoint). Cloning shares them.
///
/// Every event the layer hands over is, in the end, exactly one of:
/// dropped by the queue ([`events_dropped`](Self::events_dropped)), or
/// handed to every sink, where it is written, dropped, failed or
/// unconfirmed ([`SinkStats`]). Events still on their way are in none of these yet.
#[derive(Clone)]
pub struct WriterStats {
    queue: Arc<Queue>,
    sinks: Arc<[Arc<SinkCounters>]>,
}

impl WriterStats {
    /// Starts and stops dropped before reaching the writer's thread: a full
    /// queue in lossy mode, a stalled writer in lossless mode, or events
    /// still queued when shutting down gave up.
    #[must_use]
    pub fn events_dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Of [`events_dropped`](Self::events_dropped), those that found the
    /// queue at its limit in bytes
    /// ([`Builder::with_queue_bytes_limit`]).
    #[must_use]
    pub fn events_dropped_over_bytes(&self) -> u64 {
        self.queue.dropped_over_bytes()
    }

    /// Each sink's counters, in the order the sinks were added.
    pub fn sinks(&self) -> impl Iterator<Item = SinkStats> + '_ {
        self.sinks.iter().map(|counters| counters.snapshot())
    }

    /// The counters of the first sink of this kind, if there is one.
    #[must_use]
    pub fn sink(&self, kind: SinkKind) -> Option<SinkStats> {
        self.sinks().find(|stats| stats.kind == kind)
    }

    /// The counters of the log file sink, if there is one (lines).
    #[must_use]
    pub fn file(&self) -> Option<SinkStats> {
        self.sink(SinkKind::File)
    }
}

impl fmt::Debug for WriterStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterStats")
            .field("events_dropped", &self.events_dropped())
            .field(
                "events_dropped_over_bytes",
                &self.events_dropped_over_bytes(),
            )
            .field("sinks", &self.sinks().collect::<Vec<_>>())
            .finish()
    }
}

/// Writes every queued event and stops the writer's thread when dropped
/// (waiting at most the flush timeout, 5 s by default).
///
/// Keep it alive for as long as the service runs, typically by binding it in
/// `main`. **Do not bind it to `_`**: `let _ = ...` drops it at once, and
/// points made afterwards are refused (and counted by the layer's
/// [`LayerStats::events_refused`](crate::LayerStats::events_refused)).
///
/// ```
/// use std::time::Duration;
/// use tracing_osprofiler::writer::RollingFile;
///
/// let dir = tempfile::tempdir()?;
/// let (writer, guard) = RollingFile::new(dir.path()).build()?;
/// // ... serve ...
/// // Before `std::process::exit`, which runs no destructor:
/// guard.flush(Duration::from_secs(2))?;
/// # drop(writer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the guard stops the writer thread: bind it to a named variable"]
pub struct WriterGuard {
    queue: Arc<Queue>,
    control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
    timeout: Duration,
}

impl WriterGuard {
    /// Writes (or counts) every event queued before the call, through every
    /// sink (a network sink delivers what it holds), waiting at most
    /// `timeout`. The writer keeps running.
    ///
    /// # Errors
    ///
    /// [`FlushTimedOut`] when the sinks were not done within `timeout`;
    /// they go on in the background.
    pub fn flush(&self, timeout: Duration) -> Result<(), FlushTimedOut> {
        let deadline = Instant::now().checked_add(timeout);
        let (done, finished) = crossbeam_channel::bounded(1);
        let sent = match deadline {
            Some(deadline) => self
                .control
                .send_deadline(Control::Flush { deadline, done }, deadline)
                .is_ok(),
            None => self
                .control
                .send(Control::Flush {
                    deadline: far_future(),
                    done,
                })
                .is_ok(),
        };
        let flushed = sent
            && match deadline {
                Some(deadline) => finished.recv_deadline(deadline).unwrap_or(false),
                None => finished.recv().unwrap_or(false),
            };
        if flushed {
            Ok(())
        } else {
            Err(FlushTimedOut { timeout })
        }
    }
}

/// A deadline no wait reaches, for `Duration::MAX` timeouts.
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600))
        .unwrap_or(now)
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let deadline = Instant::now()
            .checked_add(self.timeout)
            .unwrap_or_else(far_future);
        // Nothing enters the queue from here on; wait for the senders that
        // got in before, so that every event they queued is behind this
        // point and gets written.
        self.queue.close();
        self.queue.wait_for_senders(deadline);
        let (done, finished) = crossbeam_channel::bounded(1);
        let finished_in_time = self
            .control
            .send_deadline(Control::Shutdown { deadline, done }, deadline)
            .is_ok()
            && finished.recv_deadline(deadline).is_ok();
        if finished_in_time {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        // Whatever is still queued now will never be written: count it.
        let left = self.queue.discard_queued();
        if !finished_in_time || left > 0 {
            eprintln!(
                "tracing-osprofiler: the profile writer did not finish within {:?}; \
                 {left} queued events are counted as dropped{}",
                self.timeout,
                // The events its thread holds are not in the queue: they
                // are counted by the sink that holds them, when it lets go.
                if finished_in_time {
                    ""
                } else {
                    "; those its thread still holds are counted when the sink holding \
                     them lets go"
                }
            );
        }
    }
}

impl fmt::Debug for WriterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterGuard")
            .field("flush_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// [`WriterGuard::flush`] did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushTimedOut {
    timeout: Duration,
}

impl fmt::Display for FlushTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the profile writer did not write its queue within {:?}",
            self.timeout
        )
    }
}

impl std::error::Error for FlushTimedOut {}
