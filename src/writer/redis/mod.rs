//! The Redis sink (feature `redis`): [`Redis`] (its settings), the sink the
//! writer's thread hands events to, and the export thread that writes them
//! into osprofiler's Redis store.
//!
//! | file | owns |
//! |---|---|
//! | this file | [`Redis`], [`Builder::with_redis`], the sink: encodes each event and queues it |
//! | `json.rs` | one event as the JSON document osprofiler's driver stores |
//! | `export.rs` | the export thread: connection, pipelined batches, reconnection with backoff, the counting |
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
//! dropped and counted.
//!
//! # Every event is counted once
//!
//! Each event taken is, in the end, exactly one of (see
//! [`SinkStats`](super::SinkStats)):
//!
//! * **written**: Redis answered its `LPUSH` with a length;
//! * **dropped**: the sink's queue was full, or shutting down gave up on it
//!   before it was sent;
//! * **failed**: Redis answered its `LPUSH` with an error (a key of another
//!   type, out of memory, a read-only replica…), or the connection broke or
//!   timed out while its batch was on the way. Such a batch is never sent
//!   again: `LPUSH` is not idempotent, and Redis may have applied part of
//!   it, so a resend could store a point twice.
//!
//! While Redis cannot be reached, the batch in hand and the queue behind it
//! wait for a connection (tries at growing intervals); the first failure
//! is reported on standard error once, and the recovery once.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::builder::{redact_password, SinkConfig};
use super::{Builder, Error, Identity, Sink, SinkCounters, SinkKind};
use crate::point::PointEvent;

mod export;
mod json;

use export::{Entry, Exporter, Settled};

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
/// | events sent in one pipelined batch, at most | 1 000 | [`with_batch_size`](Self::with_batch_size) |
/// | longest wait for a connection (and its `AUTH`, `SELECT`) | 1 s | [`with_connect_timeout`](Self::with_connect_timeout) |
/// | longest wait for a batch to be written and answered | 2 s | [`with_io_timeout`](Self::with_io_timeout) |
/// | longest wait between two connection tries | 5 s (from 50 ms, doubling) | [`with_max_backoff`](Self::with_max_backoff) |
///
/// The project, service and host written into each event are the
/// [`Builder`]'s. `rediss://` (TLS) is refused: this build's Redis client
/// has no TLS; reach a TLS-only Redis through a local TLS tunnel.
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
    client: redis::Client,
    ttl: Option<Duration>,
    queue_limit: usize,
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
    /// When the string is not a `redis://` URL the client understands, or
    /// is a `rediss://` one. The message never repeats a password.
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
        let client = redis::Client::open(connection_string).map_err(|error| {
            Error::new(
                format!("cannot send points to {shown}"),
                // The client's messages name the part that is wrong, not
                // the URL; redact anyway, in case a version quotes it.
                redact_in(&error.to_string(), connection_string),
            )
        })?;
        Ok(Redis {
            connection_string: connection_string.to_owned(),
            client,
            ttl: None,
            queue_limit: 65_536,
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

    /// How long writing a batch, or waiting for one of its answers, may
    /// take before the connection counts as broken (at least 1 ms).
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
            .field("batch_size", &self.batch_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// `text` with the password of `connection_string` (if any) replaced.
fn redact_in(text: &str, connection_string: &str) -> String {
    let password = connection_string
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .map(|(credentials, _)| credentials.rsplit(':').next().unwrap_or(credentials))
        .filter(|password| !password.is_empty());
    match password {
        Some(password) => text.replace(password, "***"),
        None => text.to_owned(),
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
        let counters = Arc::new(SinkCounters::new(
            SinkKind::Redis,
            redact_password(&self.connection_string),
        ));
        let (entries, queue) = crossbeam_channel::bounded(self.queue_limit);
        let (stop, stop_requests) = crossbeam_channel::bounded(1);
        let settled = Arc::new(Settled::default());
        let exporter = Exporter::new(
            &self,
            queue.clone(),
            stop_requests,
            Arc::clone(&counters),
            Arc::clone(&settled),
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
            settled,
            accepted: 0,
            counters: Arc::clone(&counters),
            thread: Some(thread),
            scratch: String::with_capacity(512),
        };
        Ok((Box::new(sink), counters))
    }
}

/// The sink on the writer's thread: encodes, queues, counts what the queue
/// refuses.
struct RedisSink {
    stamp: json::Stamp,
    entries: Sender<Entry>,
    /// The receiving end too, to count what is left when the export thread
    /// is gone.
    queue: Receiver<Entry>,
    stop: Option<Sender<Instant>>,
    settled: Arc<Settled>,
    /// Events put on the queue so far.
    accepted: u64,
    counters: Arc<SinkCounters>,
    thread: Option<JoinHandle<()>>,
    scratch: String,
}

impl Sink for RedisSink {
    fn write(&mut self, events: &[PointEvent]) {
        let mut dropped = 0;
        for event in events {
            self.scratch.clear();
            json::write_event(&mut self.scratch, event, &self.stamp);
            let entry = Entry {
                base_id: event.ids.base_id,
                json: self.scratch.as_str().into(),
            };
            match self.entries.try_send(entry) {
                Ok(()) => self.accepted += 1,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => dropped += 1,
            }
        }
        self.counters.dropped(dropped);
    }

    fn flush(&mut self, deadline: Instant) -> bool {
        self.settled.wait_for(self.accepted, deadline)
    }

    fn shutdown(&mut self, deadline: Instant) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.try_send(deadline);
        }
        let finished = self.settled.wait_for_exit(deadline);
        if finished {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        // The thread counts what it leaves; if it is stuck past the
        // deadline (a read that started before the stop), count what is
        // still queued here: each entry is received, and counted, once.
        let left = self.queue.try_iter().count() as u64;
        self.counters.dropped(left);
        self.settled.add(left);
    }
}

impl Drop for RedisSink {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown(Instant::now() + Duration::from_secs(1));
        }
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
            .with_batch_size(0)
            .with_ttl(Duration::ZERO)
            .with_connect_timeout(Duration::ZERO)
            .with_io_timeout(Duration::ZERO)
            .with_max_backoff(Duration::ZERO);
        assert_eq!(redis.queue_limit, 1);
        assert_eq!(redis.batch_size, 1);
        assert_eq!(redis.ttl, Some(Duration::from_secs(1)));
        assert!(redis.connect_timeout > Duration::ZERO);
        assert!(redis.io_timeout > Duration::ZERO);
        assert_eq!(redis.max_backoff, export::FIRST_BACKOFF);
    }
}
