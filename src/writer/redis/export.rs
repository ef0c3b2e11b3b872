//! The Redis sink's export thread: takes encoded events off the sink's
//! queue, sends them as pipelined `LPUSH`es (one per run of events of the
//! same request), reads every answer, and counts each event as written or
//! failed; keeps one connection, and reconnects with a growing wait when
//! it breaks.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::{Redis, KEY_PREFIX};
use crate::writer::SinkCounters;
use crate::Id;

/// The first wait after a failed connection; it doubles up to the
/// configured maximum.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// How long before the shutdown deadline the thread stops trying.
const EXIT_MARGIN: Duration = Duration::from_millis(20);

/// One encoded event.
pub(super) struct Entry {
    pub(super) base_id: Id,
    pub(super) json: Box<str>,
}

/// How many events the export thread (or the sink, at shutdown) has
/// accounted for, and whether the thread has ended: what `flush` and
/// `shutdown` wait on.
#[derive(Debug, Default)]
pub(super) struct Settled {
    progress: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Progress {
    pub(super) settled: u64,
    pub(super) exited: bool,
}

impl Settled {
    pub(super) fn add(&self, n: u64) {
        if n == 0 {
            return;
        }
        let mut progress = self.lock();
        progress.settled += n;
        self.changed.notify_all();
    }

    fn exit(&self) {
        self.lock().exited = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        // The lock guards two counters that no panic leaves inconsistent.
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until `done` holds or `deadline` passes; the progress then,
    /// if `done` held.
    pub(super) fn wait_until(
        &self,
        deadline: Instant,
        done: impl Fn(&Progress) -> bool,
    ) -> Option<Progress> {
        let mut progress = self.lock();
        loop {
            if done(&progress) {
                return Some(*progress);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            progress = self
                .changed
                .wait_timeout(progress, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    pub(super) fn wait_for(&self, target: u64, deadline: Instant) -> bool {
        self.wait_until(deadline, |p| p.settled >= target || p.exited)
            .is_some_and(|p| p.settled >= target)
    }

    pub(super) fn wait_for_exit(&self, deadline: Instant) -> bool {
        self.wait_until(deadline, |p| p.exited).is_some()
    }
}

pub(super) struct Exporter {
    client: redis::Client,
    ttl_secs: Option<u64>,
    batch_size: usize,
    connect_timeout: Duration,
    io_timeout: Duration,
    max_backoff: Duration,
    queue: Receiver<Entry>,
    stop_requests: Receiver<Instant>,
    counters: Arc<SinkCounters>,
    settled: Arc<Settled>,
    connection: Option<redis::Connection>,
    /// No connection is tried before this.
    next_try: Instant,
    backoff: Duration,
    /// Set once the sink shuts down: deliver what can be until then.
    stop: Option<Instant>,
    /// The kinds of refusal reported so far (command and error code).
    refusals_reported: Vec<String>,
    /// The commands of one batch, packed (reused from batch to batch).
    packed: Vec<u8>,
}

/// `*n\r\n`: a RESP array of `n` elements follows.
fn pack_array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `$len\r\nbytes\r\n`: one RESP bulk string.
fn pack_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Distinct kinds of refusal reported, at most.
const MAX_REFUSALS_REPORTED: usize = 16;

impl Exporter {
    pub(super) fn new(
        settings: &Redis,
        queue: Receiver<Entry>,
        stop_requests: Receiver<Instant>,
        counters: Arc<SinkCounters>,
        settled: Arc<Settled>,
    ) -> Self {
        Exporter {
            client: settings.client.clone(),
            ttl_secs: settings.ttl.map(|ttl| ttl.as_secs().max(1)),
            batch_size: settings.batch_size,
            connect_timeout: settings.connect_timeout,
            io_timeout: settings.io_timeout,
            max_backoff: settings.max_backoff,
            queue,
            stop_requests,
            counters,
            settled,
            connection: None,
            next_try: Instant::now(),
            backoff: FIRST_BACKOFF,
            stop: None,
            refusals_reported: Vec::new(),
            packed: Vec::new(),
        }
    }

    pub(super) fn run(mut self) {
        let mut batch: Vec<Entry> = Vec::with_capacity(self.batch_size);
        loop {
            if batch.is_empty() && !self.take(&mut batch) {
                break;
            }
            if self.stop.is_some_and(|deadline| Instant::now() >= deadline) {
                break;
            }
            if self.connection.is_none() && !self.connect() {
                continue;
            }
            self.send(&mut batch);
        }
        // Shutting down: what was not sent by the deadline is dropped.
        let left = batch.len() as u64 + self.queue.try_iter().count() as u64;
        self.counters.dropped(left);
        self.settled.add(left);
        self.settled.exit();
    }

    /// Fills `batch` with the next events, waiting for the first one
    /// unless shutting down; false when there is nothing more to send.
    fn take(&mut self, batch: &mut Vec<Entry>) -> bool {
        if self.stop.is_none() {
            crossbeam_channel::select! {
                recv(self.queue) -> entry => match entry {
                    Ok(entry) => batch.push(entry),
                    // The sink is gone without a shutdown (cannot happen:
                    // its Drop shuts down); nothing more will come.
                    Err(_) => return false,
                },
                recv(self.stop_requests) -> deadline => {
                    self.stopping(deadline.unwrap_or_else(|_| Instant::now()));
                }
            }
        }
        while batch.len() < self.batch_size {
            match self.queue.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        !batch.is_empty() || self.stop.is_none()
    }

    /// Waits out the backoff (or until the stop's deadline), then tries to
    /// connect once; whether there is a connection.
    fn connect(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next_try {
            let until = match self.stop {
                Some(deadline) => self.next_try.min(deadline),
                None => self.next_try,
            };
            if self.stop.is_none() {
                match self.stop_requests.recv_deadline(until) {
                    Ok(deadline) => self.stopping(deadline),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.stopping(Instant::now()),
                }
            } else {
                std::thread::sleep(until.saturating_duration_since(now));
            }
            return false;
        }
        let timeout = self.capped(self.connect_timeout);
        match self.client.get_connection_with_timeout(timeout) {
            Ok(connection) => {
                self.connection = Some(connection);
                self.backoff = FIRST_BACKOFF;
                true
            }
            Err(error) => {
                self.counters.outage(&error);
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(self.max_backoff);
                false
            }
        }
    }

    /// Shutting down by `deadline`: the thread ends a little before it, so
    /// that the sink sees it end and every event is counted by then.
    fn stopping(&mut self, deadline: Instant) {
        let now = Instant::now();
        let margin = EXIT_MARGIN.min(deadline.saturating_duration_since(now) / 4);
        self.stop = Some(deadline.checked_sub(margin).unwrap_or(deadline).max(now));
    }

    /// `timeout`, or less when shutting down so as to end by the deadline.
    fn capped(&self, timeout: Duration) -> Duration {
        let capped = match self.stop {
            Some(deadline) => timeout.min(deadline.saturating_duration_since(Instant::now())),
            None => timeout,
        };
        // Zero means "no timeout" to a socket.
        capped.max(Duration::from_millis(1))
    }

    /// Sends `batch` on the connection and counts every event; empties it.
    fn send(&mut self, batch: &mut Vec<Entry>) {
        // Out of `self` while in use; put back unless it broke.
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        // One LPUSH per run of events of one request, in queue order: the
        // list holds them newest first, as one LPUSH per event would. The
        // commands are packed here (RESP arrays of bulk strings), straight
        // from the encoded events, into one reused buffer.
        let mut runs: Vec<(usize, bool)> = Vec::new(); // (events, is an EXPIRE)
        let mut key = String::with_capacity(KEY_PREFIX.len() + Id::TEXT_LEN);
        let ttl = self.ttl_secs.map(|secs| secs.to_string());
        self.packed.clear();
        let mut i = 0;
        while i < batch.len() {
            let base_id = batch[i].base_id;
            let mut end = i + 1;
            while end < batch.len() && batch[end].base_id == base_id {
                end += 1;
            }
            key.clear();
            key.push_str(KEY_PREFIX);
            let mut buf = [0u8; Id::TEXT_LEN];
            key.push_str(base_id.encode(&mut buf));
            pack_array(&mut self.packed, 2 + end - i);
            pack_bulk(&mut self.packed, b"LPUSH");
            pack_bulk(&mut self.packed, key.as_bytes());
            for entry in &batch[i..end] {
                pack_bulk(&mut self.packed, entry.json.as_bytes());
            }
            runs.push((end - i, false));
            if let Some(ttl) = &ttl {
                pack_array(&mut self.packed, 3);
                pack_bulk(&mut self.packed, b"EXPIRE");
                pack_bulk(&mut self.packed, key.as_bytes());
                pack_bulk(&mut self.packed, ttl.as_bytes());
                runs.push((0, true));
            }
            i = end;
        }
        let events = batch.len() as u64;
        batch.clear();

        let timeout = Some(self.capped(self.io_timeout));
        let result = connection
            .set_write_timeout(timeout)
            .and_then(|()| connection.set_read_timeout(timeout))
            .and_then(|()| connection.send_packed_command(&self.packed));
        if let Err(error) = result {
            self.broken(events, &error);
            return;
        }
        let (mut written, mut failed) = (0u64, 0u64);
        for (k, &(n, is_expire)) in runs.iter().enumerate() {
            match connection.recv_response() {
                Ok(redis::Value::ServerError(error)) => {
                    // An EXPIRE refused after its LPUSH went through leaves
                    // the events written.
                    failed += n as u64;
                    // (Redis's error type is not exported: convert it.)
                    let error = redis::RedisError::from(error);
                    self.refused(if is_expire { "EXPIRE" } else { "LPUSH" }, &error);
                }
                Ok(_) => written += n as u64,
                Err(error) => {
                    let unanswered: u64 = runs[k..].iter().map(|&(n, _)| n as u64).sum();
                    self.counters.written(written);
                    self.counters.failed(failed);
                    self.settled.add(written + failed);
                    self.broken(unanswered, &error);
                    return;
                }
            }
        }
        self.connection = Some(connection);
        self.counters.written(written);
        self.counters.failed(failed);
        self.settled.add(events);
        self.counters.recovered();
    }

    /// Reports a command Redis refused, once per kind of refusal: a key of
    /// another type refuses every event of its request, and is no outage.
    fn refused(&mut self, command: &str, error: &redis::RedisError) {
        let code = format!("{command} {}", error.code().unwrap_or("?"));
        if self.refusals_reported.len() < MAX_REFUSALS_REPORTED
            && !self.refusals_reported.contains(&code)
        {
            eprintln!(
                "tracing-osprofiler: Redis refuses {command} ({error}); such events are \
                 counted as failed (reported once)"
            );
            self.refusals_reported.push(code);
        }
    }

    /// The connection broke (or timed out) with `events` whose fate is
    /// unknown: they are failed, and the next batch tries a new
    /// connection at once.
    fn broken(&mut self, events: u64, error: &redis::RedisError) {
        self.connection = None;
        self.counters.failed(events);
        self.settled.add(events);
        self.counters.outage(error);
        self.next_try = Instant::now();
    }
}
