//! The Redis sink (feature `redis`): [`Redis`] (its settings), the sink the
//! writer's thread hands events to, and the export thread that writes them
//! into osprofiler's Redis store.
//!
//! | file | owns |
//! |---|---|
//! | this file | [`Redis`], [`Builder::with_redis`], the sink: encodes each event and queues it |
//! | `json.rs` | one event as the JSON document osprofiler's driver stores |
//! | `export.rs` | the export thread: pipelined batches, reconnection with backoff, outages reported once, the counting |
//! | `resp.rs` | the sink's own small Redis client: connection string, bounded replies, a deadline per exchange, the abort at shutdown |
//!
//! The layout is osprofiler 4.4's (its `drivers/redis_driver.py`): every
//! start and every stop is one `LPUSH osprofiler_opt:<base_id> <json>`, so
//! a request is one list, newest event first, and osprofiler's own CLI
//! (`osprofiler trace show --connection-string redis://…`) and `osprof`
//! read it back.
//!
//! # Never in the service's way
//!
//! The writer's thread encodes each event and puts it on a bounded queue
//! without waiting; the export thread alone talks to Redis, with a timeout
//! on every connect, write and read. So a slow, paused or dead Redis costs
//! the service nothing: the queue absorbs it, and what does not fit is
//! dropped and counted. The queue is bounded in events and in bytes (each
//! event's encoded document, which holds its fields), so big span fields
//! cannot make it hold its limit in events times their size.
//!
//! # Every event is counted once
//!
//! Each event taken is, in the end, exactly one of (see
//! [`super::SinkStats`]):
//!
//! * **written**: Redis answered its `LPUSH` with a length;
//! * **dropped**: the sink's queue was full (in events or in bytes: those
//!   are `dropped_over_bytes` too), or shutting down gave up on it before
//!   it was sent;
//! * **failed**: Redis answered its `LPUSH` with an error (a key of another
//!   type, out of memory, a read-only replica…), or the connection broke or
//!   timed out before its `LPUSH` went out whole (Redis runs no command it
//!   has not read whole);
//! * **unconfirmed**: its `LPUSH` went out whole, and the connection broke
//!   or timed out before Redis answered it: Redis may well have stored
//!   it; also the batch in hand when shutting down gave up waiting for the
//!   thread, whose fate is not known. Such events are never sent again:
//!   `LPUSH` is not idempotent, so a resend could store a point twice.
//!
//! While Redis cannot be reached, the batch in hand and the queue behind it
//! wait for a connection (tries at growing intervals, a broken connection
//! included); the outage is reported on standard error once, and its end
//! once, with what it cost.
//!
//! # Shutting down on time
//!
//! The sink's `shutdown` returns a little before the writer's deadline
//! with every event counted: its thread stops sending and reading at the
//! deadline (a read in progress ends within a few milliseconds), and if
//! it is still busy then, the sink counts what the thread holds itself
//! (see `export.rs`) and leaves it to end on its own. Without a
//! connection, shutting down tries once more at once, whatever the
//! backoff, and a failure then ends the delivery (a connection refused; a
//! connection that breaks gets one new try first, as it may have died
//! while idle): an unreachable Redis costs the exit one try, not the flush
//! timeout. What shutting down gave up on is said on standard error.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::builder::{redact_password, SinkConfig};
use super::{Builder, Error, Identity, Sink, SinkCounters, SinkKind, SinkStats};
use crate::point::PointEvent;

mod export;
mod json;
mod resp;

use export::{Entry, Exporter, Shared};

/// The key prefix of osprofiler's list-per-request layout.
pub(crate) const KEY_PREFIX: &str = "osprofiler_opt:";

/// The settings of a sink that writes points into osprofiler's Redis
/// store, the layout osprofiler's own `redis` driver writes and its
/// `osprofiler trace show` reads (one list per request, one JSON document
/// per start and stop).
///
/// | setting | default | setter |
/// |---|---|---|
/// | server | the connection string given to [`new`](Self::new): `redis://[:password@]host[:port][/db]` | |
/// | time to live of each request's key | none (osprofiler sets none) | [`with_ttl`](Self::with_ttl) |
/// | events queued for the export thread | 65 536 | [`with_queue_limit`](Self::with_queue_limit) |
/// | bytes of events queued for the export thread, as encoded, fields included (past it: dropped and counted) | 32 MiB | [`with_queue_bytes_limit`](Self::with_queue_bytes_limit) |
/// | events sent in one pipelined batch, at most | 1 000 | [`with_batch_size`](Self::with_batch_size) |
/// | longest wait for a connection (and its `AUTH`, `SELECT`) | 1 s | [`with_connect_timeout`](Self::with_connect_timeout) |
/// | longest wait for a batch to be written and all its answers read | 2 s | [`with_io_timeout`](Self::with_io_timeout) |
/// | longest wait between two connection tries | 5 s (from 50 ms, doubling after every failed or broken connection) | [`with_max_backoff`](Self::with_max_backoff) |
///
/// The project, service and host written into each event are the
/// [`Builder`]'s. `rediss://` (TLS) is refused: the sink's client has no
/// TLS; reach a TLS-only Redis through a local TLS tunnel. The client reads
/// no reply longer than 4 KiB (the sink's commands are answered by an
/// integer or a short error): a peer that sends more is a broken
/// connection, so a hostile or broken server cannot grow the service's
/// memory.
///
/// ```
/// use std::time::Duration;
/// use tracing_osprofiler::writer::{ProfileWriter, Redis, RollingFile};
///
/// # let dir = tempfile::tempdir()?;
/// let (writer, guard) = ProfileWriter::builder()
///     .with_file(RollingFile::new(dir.path()))
///     .with_redis(Redis::new("redis://:secret@127.0.0.1:6379/0")?.with_ttl(Duration::from_secs(86_400)))
///     .with_project("nova")
///     .with_service("api")
///     .build()?;
/// // A Redis that is down is no error: its sink waits for it, and counts.
/// # drop((writer, guard));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "a Redis does nothing until it is given to a writer builder"]
pub struct Redis {
    connection_string: String,
    target: resp::Target,
    ttl: Option<Duration>,
    queue_limit: usize,
    queue_bytes_limit: u64,
    batch_size: usize,
    connect_timeout: Duration,
    io_timeout: Duration,
    max_backoff: Duration,
}

impl Redis {
    /// A sink for the server `connection_string` names, with the defaults
    /// of the table above. Nothing is connected yet.
    ///
    /// # Errors
    ///
    /// When the string is not a `redis://[[user]:password@]host[:port][/db]`
    /// URL (a query string included), or is a `rediss://` one. The message
    /// never repeats a password.
    pub fn new(connection_string: &str) -> Result<Self, Error> {
        let shown = redact_password(connection_string);
        let scheme = connection_string
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("redis") => {}
            Some("rediss") => {
                return Err(Error::new(
                    format!("cannot send points to {shown}"),
                    "TLS (rediss://) is not supported by this build's Redis client; \
                     use redis:// through a local TLS tunnel",
                ))
            }
            _ => {
                return Err(Error::new(
                    format!("cannot send points to {shown}"),
                    "not a redis://[:password@]host[:port][/db] connection string",
                ))
            }
        }
        let target = resp::Target::parse(connection_string)
            .map_err(|why| Error::new(format!("cannot send points to {shown}"), why))?;
        Ok(Redis {
            connection_string: connection_string.to_owned(),
            target,
            ttl: None,
            queue_limit: 65_536,
            queue_bytes_limit: 32 * 1024 * 1024,
            batch_size: 1_000,
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(2),
            max_backoff: Duration::from_secs(5),
        })
    }

    /// Gives each request's key this time to live, renewed with every batch
    /// that adds to it (`EXPIRE`, whole seconds, at least 1). osprofiler
    /// sets none: its keys stay until deleted.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl.max(Duration::from_secs(1)));
        self
    }

    /// How many events may wait for the export thread (at least 1); more
    /// are dropped and counted.
    pub fn with_queue_limit(mut self, limit: usize) -> Self {
        self.queue_limit = limit.max(1);
        self
    }

    /// At most this many bytes of events wait for the export thread (at
    /// least 1), each counted as its encoded document (its fields
    /// included), so that a Redis that is down or slow cannot make big
    /// fields hold the queue limit times their size. More are dropped and
    /// counted ([`SinkStats::dropped_over_bytes`](super::SinkStats::dropped_over_bytes)).
    pub fn with_queue_bytes_limit(mut self, bytes: u64) -> Self {
        self.queue_bytes_limit = bytes.max(1);
        self
    }

    /// How many events one pipelined round trip carries at most (at
    /// least 1).
    pub fn with_batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }

    /// How long a connection (with its `AUTH` and `SELECT`) may take
    /// (at least 1 ms).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long writing a batch and reading all its answers may take
    /// before the connection counts as broken (at least 1 ms).
    pub fn with_io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The longest wait between two tries to connect (at least 50 ms).
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff.max(export::FIRST_BACKOFF);
        self
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field(
                "connection_string",
                &redact_password(&self.connection_string),
            )
            .field("ttl", &self.ttl)
            .field("queue_limit", &self.queue_limit)
            .field("queue_bytes_limit", &self.queue_bytes_limit)
            .field("batch_size", &self.batch_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl Builder {
    /// Writes the points into osprofiler's Redis store as well (feature
    /// `redis`); the same as [`with_connection_string`](Self::with_connection_string)
    /// with a `redis://` string, with the settings of [`Redis`].
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn with_redis(self, redis: Redis) -> Self {
        self.with_sink(Box::new(redis))
    }
}

/// The `redis://` arm of [`Builder::with_connection_string`].
pub(super) fn from_connection_string(
    builder: Builder,
    connection_string: &str,
) -> Result<Builder, Error> {
    Ok(builder.with_redis(Redis::new(connection_string)?))
}

impl SinkConfig for Redis {
    fn start(
        self: Box<Self>,
        identity: &Identity,
    ) -> Result<(Box<dyn Sink>, Arc<SinkCounters>), Error> {
        let destination = redact_password(&self.connection_string);
        let counters = Arc::new(SinkCounters::new(SinkKind::Redis, destination.clone()));
        let (entries, queue) = crossbeam_channel::bounded(self.queue_limit);
        let (stop, stop_requests) = crossbeam_channel::bounded(1);
        let shared = Arc::new(Shared::new(Arc::clone(&counters), self.queue_bytes_limit));
        let exporter = Exporter::new(
            &self,
            destination.clone(),
            queue.clone(),
            stop_requests,
            Arc::clone(&shared),
        );
        let thread = std::thread::Builder::new()
            .name("tracing-osprofiler-redis".into())
            .spawn(move || exporter.run())
            .map_err(|source| Error::io("cannot start the Redis sink's thread", source))?;
        let sink = RedisSink {
            stamp: json::Stamp::new(identity),
            entries,
            queue,
            stop: Some(stop),
            shared,
            accepted: 0,
            counters: Arc::clone(&counters),
            destination,
            thread: Some(thread),
            scratch: String::with_capacity(512),
        };
        Ok((Box::new(sink), counters))
    }
}

/// The sink on the writer's thread: encodes, queues, counts what the queue
/// refuses; at shutdown, stops its thread by the deadline.
struct RedisSink {
    stamp: json::Stamp,
    entries: Sender<Entry>,
    /// The receiving end too, to free what is left when the export thread
    /// is abandoned.
    queue: Receiver<Entry>,
    /// `None` once shut down.
    stop: Option<Sender<Instant>>,
    shared: Arc<Shared>,
    /// Events put on the queue so far.
    accepted: u64,
    counters: Arc<SinkCounters>,
    /// The connection string without its password.
    destination: String,
    thread: Option<JoinHandle<()>>,
    scratch: String,
}

/// A little before `deadline` (a tenth of the time left, at most 100 ms):
/// the writer's thread has to report back to the guard by `deadline`, with
/// what this sink gave up on counted.
fn ahead_of(deadline: Instant) -> Instant {
    let now = Instant::now();
    let left = deadline.saturating_duration_since(now);
    deadline
        .checked_sub((left / 10).min(Duration::from_millis(100)))
        .unwrap_or(deadline)
        .max(now)
}

/// How long before the sink gives up the export thread is told to stop:
/// time for it to count what it leaves and end.
fn exit_margin(give_up: Instant) -> Instant {
    let now = Instant::now();
    let left = give_up.saturating_duration_since(now);
    give_up
        .checked_sub((left / 4).min(Duration::from_millis(20)))
        .unwrap_or(give_up)
        .max(now)
}

impl Sink for RedisSink {
    fn write(&mut self, events: &[PointEvent]) {
        if self.stop.is_none() {
            // Shut down: nothing is sent any more.
            self.counters.dropped(events.len() as u64);
            return;
        }
        let (mut dropped, mut over_bytes) = (0, 0);
        for event in events {
            self.scratch.clear();
            json::write_event(&mut self.scratch, event, &self.stamp);
            // Room for the document itself: what the queue holds.
            let size = self.scratch.len() as u64;
            if !self.shared.bytes.try_take(size) {
                over_bytes += 1;
                continue;
            }
            let entry = Entry {
                base_id: event.ids.base_id,
                json: self.scratch.as_str().into(),
            };
            match self.entries.try_send(entry) {
                Ok(()) => self.accepted += 1,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.shared.bytes.release(size);
                    dropped += 1;
                }
            }
        }
        self.counters.dropped(dropped);
        self.counters.dropped_over_bytes(over_bytes);
    }

    fn flush(&mut self, deadline: Instant) -> bool {
        self.shared.wait_for(self.accepted, ahead_of(deadline))
    }

    fn shutdown(&mut self, deadline: Instant) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        let before = self.counters.snapshot();
        let give_up = ahead_of(deadline);
        let exit_by = exit_margin(give_up);
        // Reads and writes in progress end by then, and the thread stops
        // trying and counts what it leaves.
        self.shared.abort.set(exit_by);
        let _ = stop.try_send(exit_by);
        if self.shared.wait_for_exit(give_up) {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        } else {
            // Still busy (a connect, a name lookup): count what it holds
            // now; it ends on its own, its counts void. Never joined.
            self.shared.abandon(self.accepted);
            drop(self.thread.take());
        }
        // Free what the thread left (already counted).
        while let Ok(entry) = self.queue.try_recv() {
            self.shared.bytes.release(entry.bytes());
        }
        self.report_losses(before);
    }
}

impl RedisSink {
    /// Says on standard error what shutting down gave up on, if anything.
    fn report_losses(&self, before: SinkStats) {
        let after = self.counters.snapshot();
        let dropped = after.dropped - before.dropped;
        let failed = after.failed - before.failed;
        let unconfirmed = after.unconfirmed - before.unconfirmed;
        if dropped + failed + unconfirmed == 0 {
            return;
        }
        eprintln!(
            "tracing-osprofiler: shutting down, the redis sink gave up on {} events it could \
             not deliver to {} by the writer's flush deadline: {dropped} never sent (counted \
             as dropped), {unconfirmed} sent without an answer (counted as unconfirmed: \
             Redis may have stored them), {failed} refused or never sent whole (counted as \
             failed); in all {} written, {} dropped, {} failed, {} unconfirmed{}",
            dropped + failed + unconfirmed,
            self.destination,
            after.written,
            after.dropped,
            after.failed,
            after.unconfirmed,
            if self.shared.abandoned() {
                "; its thread was still waiting on Redis and ends on its own"
            } else {
                ""
            }
        );
    }
}

impl Drop for RedisSink {
    fn drop(&mut self) {
        // The writer shuts its sinks down; a sink dropped without that (a
        // later sink failed to start) stops its thread at once. Never a
        // second shutdown with a fresh deadline.
        self.shutdown(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_are_checked_and_never_shown_with_their_password() {
        let redis = Redis::new("redis://:hunter2@db.internal:6380/3").unwrap();
        let shown = format!("{redis:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.internal:6380/3"), "{shown}");

        let err = Redis::new("rediss://:hunter2@db:6380")
            .unwrap_err()
            .to_string();
        assert!(err.contains("TLS"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");

        let err = Redis::new("redis://:hunter2@db:notaport")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");

        let err = Builder::new()
            .with_connection_string("REDIS://:pw@[::1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn settings_have_floors() {
        let redis = Redis::new("redis://127.0.0.1")
            .unwrap()
            .with_queue_limit(0)
            .with_queue_bytes_limit(0)
            .with_batch_size(0)
            .with_ttl(Duration::ZERO)
            .with_connect_timeout(Duration::ZERO)
            .with_io_timeout(Duration::ZERO)
            .with_max_backoff(Duration::ZERO);
        assert_eq!(redis.queue_limit, 1);
        assert_eq!(redis.queue_bytes_limit, 1);
        assert_eq!(redis.batch_size, 1);
        assert_eq!(redis.ttl, Some(Duration::from_secs(1)));
        assert!(redis.connect_timeout > Duration::ZERO);
        assert!(redis.io_timeout > Duration::ZERO);
        assert_eq!(redis.max_backoff, export::FIRST_BACKOFF);
    }
}
