//! The Redis sink's export thread: takes encoded events off the sink's
//! queue, sends them as pipelined `LPUSH`es (one per run of events of the
//! same request), reads every answer, and counts each event as written,
//! failed or unconfirmed; keeps one connection, and reconnects with a
//! growing wait when it cannot connect or the connection breaks.
//!
//! # What a broken connection costs
//!
//! Redis runs a command once it has read it whole, and answers it later.
//! So when a connection breaks (or times out) in the middle of a batch,
//! the events of the commands that went out whole and got no answer may
//! well be stored: they are **unconfirmed**, as the OTLP sink counts a
//! request that went out without an answer. Those of commands that never
//! went out whole cannot have been run: they are **failed**. Neither is
//! sent again (`LPUSH` is not idempotent: a resend could store a point
//! twice).
//!
//! # Counting, exactly once, even when shutting down gives up
//!
//! [`Shared`] holds a ledger: how many events are settled (counted), how
//! many are on the wire, whether the thread has ended, and whether the
//! sink's shutdown gave up on it (*abandoned*). Every count goes through
//! it under one lock: once the sink abandons the thread (its deadline
//! passed while the thread was still busy), the sink counts every event
//! not settled yet (those on the wire as unconfirmed, the others as
//! dropped) and the thread's later counts are ignored. So when the sink's
//! `shutdown` returns, written + dropped + failed + unconfirmed equals the
//! events it took, and no event is counted twice.
//!
//! # Outages, reported once
//!
//! An outage begins with the first connection that cannot be made or that
//! breaks, and is reported then; it ends when Redis has answered every
//! batch for [`STABLE`] with no break, and that is reported with what
//! the outage cost. A Redis that keeps accepting connections and closing
//! them (a flapping proxy, a server that restarts in a loop) is one
//! outage, and it is tried at growing intervals: the wait doubles after
//! every failed connection and every break, and is reset only when the
//! outage ends.
//!
//! # Bounded in bytes
//!
//! The sink takes room in [`Shared::bytes`] for each encoded event it
//! queues; the thread gives it back when the event leaves its hands: its
//! batch answered, ended by a broken connection, or dropped at shutdown.
//! A batch waiting for a connection keeps its room, so the queue and the
//! batch in hand hold at most the limit together. A batch's events are
//! freed as soon as it is packed, so its packed copy on the wire stands in
//! for them; the packing buffer does not keep a big batch's capacity.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::resp::{self, Abort, Broken, Connection, Reply, Target};
use super::{Redis, KEY_PREFIX};
use crate::writer::queue::ByteBudget;
use crate::writer::{SinkCounters, SinkStats};
use crate::Id;

/// The first wait after a failed connection; it doubles up to the
/// configured maximum.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// How long Redis must answer every batch, with no break, for an outage to
/// count as over.
pub(super) const STABLE: Duration = Duration::from_secs(2);

/// The packing buffer's capacity kept from one batch to the next; a bigger
/// batch's is given back once it is sent.
const PACKED_KEPT: usize = 1024 * 1024;

/// One encoded event.
pub(super) struct Entry {
    pub(super) base_id: Id,
    pub(super) json: Box<str>,
}

impl Entry {
    /// The room it takes in [`Shared::bytes`]: its document.
    pub(super) fn bytes(&self) -> u64 {
        self.json.len() as u64
    }
}

/// The room taken by `entries`.
fn bytes_of<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> u64 {
    entries.into_iter().map(Entry::bytes).sum()
}

/// What the sink and its thread share: the ledger, the counters, the
/// abort time, the bound in bytes.
#[derive(Debug)]
pub(super) struct Shared {
    ledger: Mutex<Ledger>,
    changed: Condvar,
    pub(super) counters: Arc<SinkCounters>,
    /// Set when the sink shuts down: every read and write ends by then.
    pub(super) abort: Abort,
    /// The bytes of the events queued or in the thread's hands.
    pub(super) bytes: ByteBudget,
}

/// Events the thread is done with, by what became of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    /// Answered by Redis with a length.
    pub(super) written: u64,
    /// Refused by Redis, or never sent whole on a connection that broke.
    pub(super) failed: u64,
    /// Sent whole on a connection that broke before their answer.
    pub(super) unconfirmed: u64,
    /// Never sent: shutting down gave up on them.
    pub(super) dropped: u64,
}

impl Tally {
    fn total(self) -> u64 {
        self.written + self.failed + self.unconfirmed + self.dropped
    }
}

#[derive(Debug, Default)]
struct Ledger {
    /// Events counted (written, dropped, failed or unconfirmed).
    settled: u64,
    /// Events of the batch on the wire, not counted yet.
    on_the_wire: u64,
    exited: bool,
    abandoned: bool,
}

impl Shared {
    pub(super) fn new(counters: Arc<SinkCounters>, bytes_limit: u64) -> Self {
        Shared {
            ledger: Mutex::new(Ledger::default()),
            changed: Condvar::new(),
            counters,
            abort: Abort::default(),
            bytes: ByteBudget::new(bytes_limit),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // Plain numbers: no panic leaves them inconsistent.
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts events the thread is done with; false (and nothing counted)
    /// when the sink has abandoned the thread, which then stops.
    fn settle(&self, tally: Tally) -> bool {
        let mut ledger = self.ledger();
        if ledger.abandoned {
            return false;
        }
        self.counters.written(tally.written);
        self.counters.failed(tally.failed);
        self.counters.unconfirmed(tally.unconfirmed);
        self.counters.dropped(tally.dropped);
        ledger.settled += tally.total();
        ledger.on_the_wire = 0;
        self.changed.notify_all();
        true
    }

    /// `n` events are about to go out; false when abandoned.
    fn on_the_wire(&self, n: u64) -> bool {
        let mut ledger = self.ledger();
        ledger.on_the_wire = n;
        !ledger.abandoned
    }

    fn exit(&self) {
        self.ledger().exited = true;
        self.changed.notify_all();
    }

    /// Waits until `done` holds or `deadline` passes; whether it held.
    fn wait_until(&self, deadline: Instant, done: impl Fn(&Ledger) -> bool) -> bool {
        let mut ledger = self.ledger();
        loop {
            if done(&ledger) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            ledger = self
                .changed
                .wait_timeout(ledger, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until `accepted` events are settled (by `deadline`).
    pub(super) fn wait_for(&self, accepted: u64, deadline: Instant) -> bool {
        self.wait_until(deadline, |l| l.settled >= accepted || l.exited);
        self.ledger().settled >= accepted
    }

    /// Waits until the thread has ended (by `deadline`).
    pub(super) fn wait_for_exit(&self, deadline: Instant) -> bool {
        self.wait_until(deadline, |l| l.exited)
    }

    /// Gives up on the thread unless it has ended: counts every event not
    /// settled yet of the `accepted` ones (those on the wire as
    /// unconfirmed: their fate is unknown; the others as dropped), and
    /// makes the thread's later counts void.
    pub(super) fn abandon(&self, accepted: u64) {
        let mut ledger = self.ledger();
        if ledger.exited || ledger.abandoned {
            return;
        }
        ledger.abandoned = true;
        let outstanding = accepted.saturating_sub(ledger.settled);
        let unconfirmed = ledger.on_the_wire.min(outstanding);
        self.counters.unconfirmed(unconfirmed);
        self.counters.dropped(outstanding - unconfirmed);
        ledger.settled += outstanding;
        ledger.on_the_wire = 0;
        self.changed.notify_all();
    }

    /// Whether the thread has been abandoned.
    pub(super) fn abandoned(&self) -> bool {
        self.ledger().abandoned
    }
}

/// An outage in progress: since when, and what it has cost so far.
struct Outage {
    since: Instant,
    at_start: SinkStats,
    failed_connections: u64,
    broken_connections: u64,
    /// Every batch answered since then, no break.
    delivering_since: Option<Instant>,
}

pub(super) struct Exporter {
    target: Target,
    /// The connection string without its password, for the reports.
    destination: String,
    ttl_secs: Option<u64>,
    batch_size: usize,
    queue_limit: usize,
    queue_bytes_limit: u64,
    connect_timeout: Duration,
    io_timeout: Duration,
    max_backoff: Duration,
    queue: Receiver<Entry>,
    stop_requests: Receiver<Instant>,
    shared: Arc<Shared>,
    connection: Option<Connection>,
    /// No connection is tried before this.
    next_try: Instant,
    backoff: Duration,
    /// Set once the sink shuts down: deliver what can be until then.
    stop: Option<Instant>,
    /// A broken connection got its one new try while shutting down.
    retried_at_stop: bool,
    outage: Option<Outage>,
    /// The kinds of refusal reported so far (command and error code).
    refusals_reported: Vec<String>,
    /// The commands of one batch, packed (reused from batch to batch).
    packed: Vec<u8>,
}

/// One command of a packed batch.
struct Run {
    /// The events it carries (none for an `EXPIRE`).
    events: u64,
    is_expire: bool,
    /// Where it ends in the packed batch.
    end: usize,
}

impl Run {
    fn events_of(runs: &[Run]) -> u64 {
        runs.iter().map(|run| run.events).sum()
    }

    /// The batch `runs` broke after its first `sent` bytes went out: the
    /// commands that went out whole may have been run (unconfirmed), the
    /// others cannot have been (failed).
    fn cut_at(runs: &[Run], sent: usize) -> Tally {
        let whole = runs.partition_point(|run| run.end <= sent);
        Tally {
            unconfirmed: Run::events_of(&runs[..whole]),
            failed: Run::events_of(&runs[whole..]),
            ..Tally::default()
        }
    }
}

/// Distinct kinds of refusal reported, at most.
const MAX_REFUSALS_REPORTED: usize = 16;

impl Exporter {
    pub(super) fn new(
        settings: &Redis,
        destination: String,
        queue: Receiver<Entry>,
        stop_requests: Receiver<Instant>,
        shared: Arc<Shared>,
    ) -> Self {
        Exporter {
            target: settings.target.clone(),
            destination,
            ttl_secs: settings.ttl.map(|ttl| ttl.as_secs().max(1)),
            batch_size: settings.batch_size,
            queue_limit: settings.queue_limit,
            queue_bytes_limit: settings.queue_bytes_limit,
            connect_timeout: settings.connect_timeout,
            io_timeout: settings.io_timeout,
            max_backoff: settings.max_backoff,
            queue,
            stop_requests,
            shared,
            connection: None,
            next_try: Instant::now(),
            backoff: FIRST_BACKOFF,
            stop: None,
            retried_at_stop: false,
            outage: None,
            refusals_reported: Vec::new(),
            packed: Vec::new(),
        }
    }

    pub(super) fn run(mut self) {
        // Reachability at start: a sink pointed at nothing says so now (the
        // outage line), not with the first profiled request. On this
        // thread, so the service's startup never waits; the connection is
        // kept for the first batch.
        self.connect();
        let mut batch: Vec<Entry> = Vec::with_capacity(self.batch_size);
        loop {
            if batch.is_empty() && !self.take(&mut batch) {
                break;
            }
            if self.stop.is_some_and(|stop| Instant::now() >= stop) {
                break;
            }
            if self.connection.is_none() && !self.connect() {
                continue;
            }
            if !self.send(&mut batch) {
                break;
            }
        }
        // Shutting down: what was not sent by the deadline is dropped.
        let mut left = batch.len() as u64;
        let mut bytes = bytes_of(&batch);
        drop(batch);
        for entry in self.queue.try_iter() {
            left += 1;
            bytes += entry.bytes();
        }
        self.shared.bytes.release(bytes);
        self.shared.settle(Tally {
            dropped: left,
            ..Tally::default()
        });
        self.shared.exit();
    }

    /// Fills `batch` with the next events, waiting for the first one
    /// unless shutting down; false when there is nothing more to send.
    fn take(&mut self, batch: &mut Vec<Entry>) -> bool {
        while self.stop.is_none() {
            // An outage whose connection has delivered long enough ends
            // even when no event comes.
            let ends = self
                .outage
                .as_ref()
                .and_then(|o| o.delivering_since)
                .map_or_else(crossbeam_channel::never, |since| {
                    crossbeam_channel::at(since + STABLE)
                });
            crossbeam_channel::select! {
                recv(self.queue) -> entry => match entry {
                    Ok(entry) => {
                        batch.push(entry);
                        break;
                    }
                    // The sink is gone without a shutdown (cannot happen:
                    // its Drop shuts down); nothing more will come.
                    Err(_) => return false,
                },
                recv(self.stop_requests) -> stop => {
                    self.stopping(stop.unwrap_or_else(|_| Instant::now()));
                }
                recv(ends) -> _ => self.delivered(),
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

    /// Waits out the backoff (or until the stop), then tries to connect
    /// once; whether there is a connection.
    fn connect(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next_try {
            match self.stop {
                None => match self.stop_requests.recv_deadline(self.next_try) {
                    Ok(stop) => self.stopping(stop),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.stopping(now),
                },
                // No try left before the deadline: give up now, not at it
                // (an unreachable Redis does not hold up the shutdown).
                Some(stop) if self.next_try >= stop => self.stop = Some(now),
                Some(_) => std::thread::sleep(self.next_try.saturating_duration_since(now)),
            }
            return false;
        }
        let deadline = now + self.capped(self.connect_timeout);
        match Connection::open(&self.target, deadline, &self.shared.abort) {
            Ok(connection) => {
                self.connection = Some(connection);
                true
            }
            Err(error) => {
                self.failing(&error, false);
                if let Some(outage) = &mut self.outage {
                    outage.failed_connections += 1;
                }
                false
            }
        }
    }

    /// Shutting down by `stop`: without a connection, one more try at once,
    /// whatever the backoff (Redis may be back); see [`failing`](Self::failing).
    fn stopping(&mut self, stop: Instant) {
        self.stop = Some(stop);
        if self.connection.is_none() {
            self.next_try = Instant::now();
        }
    }

    /// `timeout`, or less when shutting down so as to end by the stop.
    fn capped(&self, timeout: Duration) -> Duration {
        let capped = match self.stop {
            Some(stop) => timeout.min(stop.saturating_duration_since(Instant::now())),
            None => timeout,
        };
        capped.max(Duration::from_millis(1))
    }

    /// Sends `batch` on the connection and counts every event; empties it
    /// and gives its room back. False when the sink has abandoned the
    /// thread.
    fn send(&mut self, batch: &mut Vec<Entry>) -> bool {
        let bytes = bytes_of(batch.iter());
        let going_on = self.exchange(batch);
        if self.packed.capacity() > PACKED_KEPT {
            self.packed = Vec::with_capacity(PACKED_KEPT);
        }
        if batch.is_empty() {
            // Given back once its packed copy is gone too.
            self.shared.bytes.release(bytes);
        }
        going_on
    }

    /// [`send`](Self::send) without the room (without a connection, the
    /// batch is left as it is).
    fn exchange(&mut self, batch: &mut Vec<Entry>) -> bool {
        // Out of `self` while in use; put back unless it broke.
        let Some(mut connection) = self.connection.take() else {
            return true;
        };
        // One LPUSH per run of events of one request, in queue order: the
        // list holds them newest first, as one LPUSH per event would. The
        // commands are packed here (RESP arrays of bulk strings), straight
        // from the encoded events, into one reused buffer.
        let mut runs: Vec<Run> = Vec::new();
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
            resp::pack_array(&mut self.packed, 2 + end - i);
            resp::pack_bulk(&mut self.packed, b"LPUSH");
            resp::pack_bulk(&mut self.packed, key.as_bytes());
            for entry in &batch[i..end] {
                resp::pack_bulk(&mut self.packed, entry.json.as_bytes());
            }
            runs.push(Run {
                events: (end - i) as u64,
                is_expire: false,
                end: self.packed.len(),
            });
            if let Some(ttl) = &ttl {
                resp::pack(
                    &mut self.packed,
                    &[b"EXPIRE", key.as_bytes(), ttl.as_bytes()],
                );
                runs.push(Run {
                    events: 0,
                    is_expire: true,
                    end: self.packed.len(),
                });
            }
            i = end;
        }
        let events = batch.len() as u64;
        batch.clear();
        if !self.shared.on_the_wire(events) {
            return false;
        }

        // One deadline for the whole batch: written and every answer read.
        let deadline = Instant::now() + self.capped(self.io_timeout);
        let shared = Arc::clone(&self.shared);
        let abort = &shared.abort;
        let mut sent = 0;
        if let Err(error) = connection.send_counted(&self.packed, deadline, abort, &mut sent) {
            return self.broken(Run::cut_at(&runs, sent), &error);
        }
        let mut tally = Tally::default();
        for (k, run) in runs.iter().enumerate() {
            match connection.reply(deadline, abort) {
                // An EXPIRE refused after its LPUSH went through leaves
                // the events written.
                Ok(Reply::Done) => tally.written += run.events,
                Ok(Reply::Refused(message)) => {
                    tally.failed += run.events;
                    self.refused(if run.is_expire { "EXPIRE" } else { "LPUSH" }, &message);
                }
                Err(error) => {
                    // Every command went out: the unanswered ones may
                    // have been run.
                    tally.unconfirmed = Run::events_of(&runs[k..]);
                    return self.broken(tally, &error);
                }
            }
        }
        self.connection = Some(connection);
        let going_on = self.shared.settle(tally);
        self.delivering();
        going_on
    }

    /// Reports a command Redis refused, once per kind of refusal: a key of
    /// another type refuses every event of its request, and is no outage.
    fn refused(&mut self, command: &str, message: &str) {
        let code = format!("{command} {}", Reply::code(message));
        if self.refusals_reported.len() < MAX_REFUSALS_REPORTED
            && !self.refusals_reported.contains(&code)
        {
            eprintln!(
                "tracing-osprofiler: Redis at {} refuses {command} ({}); such events are \
                 counted as failed (reported once)",
                self.destination,
                message.escape_debug()
            );
            self.refusals_reported.push(code);
        }
    }

    /// The connection broke (or timed out) in the middle of a batch,
    /// counted as `tally`: what went out without an answer is unconfirmed,
    /// what never went out whole is failed, and neither is sent again (see
    /// the module docs). The next connection waits for the backoff. False
    /// when abandoned.
    fn broken(&mut self, tally: Tally, error: &Broken) -> bool {
        self.connection = None;
        // The outage first: an outage this break begins counts its events.
        self.failing(error, true);
        if let Some(outage) = &mut self.outage {
            outage.broken_connections += 1;
        }
        self.shared.settle(tally)
    }

    /// A connection could not be made or broke: begins an outage (reported
    /// once) or goes on with it, and waits longer before the next try. When
    /// shutting down, gives up at once: what is left is dropped now rather
    /// than at the deadline (an unreachable Redis does not hold up the
    /// service's exit).
    ///
    /// A connection that `broke` gets one new try at once when shutting
    /// down (it may have died while idle, and Redis be back since).
    fn failing(&mut self, error: &Broken, broke: bool) {
        let now = Instant::now();
        match &mut self.outage {
            Some(outage) => outage.delivering_since = None,
            None => {
                eprintln!(
                    "tracing-osprofiler: the redis sink cannot deliver to {} ({error}); \
                     events wait in its queue (at most {} events, {} bytes) and are written \
                     when Redis is back, those that find the queue full are counted as dropped, \
                     the events of a batch that went out on a connection that broke before \
                     Redis answered are counted as unconfirmed (Redis may have stored them; \
                     never sent again); reported once, and once when it ends",
                    self.destination, self.queue_limit, self.queue_bytes_limit
                );
                self.outage = Some(Outage {
                    since: now,
                    at_start: self.shared.counters.snapshot(),
                    failed_connections: 0,
                    broken_connections: 0,
                    delivering_since: None,
                });
            }
        }
        self.next_try = now + self.backoff;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        if self.stop.is_some() {
            if broke && !self.retried_at_stop {
                self.retried_at_stop = true;
                self.next_try = now;
            } else {
                self.stop = Some(now);
            }
        }
    }

    /// A batch was answered: during an outage, the outage ends once Redis
    /// has answered for [`STABLE`].
    fn delivering(&mut self) {
        let Some(outage) = &mut self.outage else {
            return;
        };
        let now = Instant::now();
        let since = *outage.delivering_since.get_or_insert(now);
        if now.duration_since(since) >= STABLE {
            self.delivered();
        }
    }

    /// Ends the outage, with a report of what it cost.
    fn delivered(&mut self) {
        let Some(outage) = self.outage.take() else {
            return;
        };
        let now = self.shared.counters.snapshot();
        let failed = now.failed - outage.at_start.failed;
        let unconfirmed = now.unconfirmed - outage.at_start.unconfirmed;
        let dropped = now.dropped - outage.at_start.dropped;
        let lasted = outage
            .delivering_since
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(outage.since);
        eprintln!(
            "tracing-osprofiler: the redis sink delivers to {} again, after {:.1} s of \
             outage ({} failed connection tries, {} broken connections): {unconfirmed} \
             events were on a connection that broke (unconfirmed: Redis may have stored \
             them; never sent again), {failed} failed (refused, or never sent whole on a \
             broken connection), {dropped} were dropped (queue full), the others waited \
             and were written",
            self.destination,
            lasted.as_secs_f64(),
            outage.failed_connections,
            outage.broken_connections,
        );
        self.backoff = FIRST_BACKOFF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::SinkKind;

    /// Written, failed, unconfirmed and dropped, in that order.
    fn counts(shared: &Shared) -> (u64, u64, u64, u64) {
        let stats = shared.counters.snapshot();
        (
            stats.written,
            stats.failed,
            stats.unconfirmed,
            stats.dropped,
        )
    }

    fn shared() -> Shared {
        Shared::new(
            Arc::new(SinkCounters::new(SinkKind::Redis, "test".into())),
            1024,
        )
    }

    #[test]
    fn an_abandoned_thread_is_counted_once_by_the_sink_and_its_later_counts_are_void() {
        let shared = shared();
        // 30 events taken; 10 written; a batch of 8 on the wire.
        assert!(shared.settle(Tally {
            written: 10,
            ..Tally::default()
        }));
        assert!(shared.on_the_wire(8));
        assert!(!shared.wait_for(30, Instant::now()));
        shared.abandon(30);
        // The batch on the wire may have been stored: unconfirmed.
        let stats = shared.counters.snapshot();
        assert_eq!(counts(&shared), (10, 0, 8, 12));
        assert!(shared.wait_for(30, Instant::now()));
        // The thread comes back from its call: nothing more is counted,
        // and it is told to stop.
        assert!(!shared.settle(Tally {
            written: 8,
            ..Tally::default()
        }));
        assert!(!shared.on_the_wire(1));
        assert_eq!(shared.counters.snapshot(), stats);
        // A second abandon changes nothing.
        shared.abandon(30);
        assert_eq!(shared.counters.snapshot(), stats);
    }

    #[test]
    fn a_batch_cut_short_is_unconfirmed_up_to_its_last_whole_command() {
        // LPUSH of 3 events (bytes 0..100), its EXPIRE (..130), LPUSH of 2
        // (..200).
        let runs = [
            Run {
                events: 3,
                is_expire: false,
                end: 100,
            },
            Run {
                events: 0,
                is_expire: true,
                end: 130,
            },
            Run {
                events: 2,
                is_expire: false,
                end: 200,
            },
        ];
        let cut = |sent| {
            let t = Run::cut_at(&runs, sent);
            (t.unconfirmed, t.failed)
        };
        assert_eq!(cut(0), (0, 5));
        assert_eq!(cut(99), (0, 5));
        assert_eq!(cut(100), (3, 2));
        assert_eq!(cut(199), (3, 2));
        assert_eq!(cut(200), (5, 0));
    }

    #[test]
    fn a_thread_that_ended_is_not_abandoned() {
        let shared = shared();
        assert!(shared.settle(Tally {
            written: 3,
            failed: 1,
            unconfirmed: 4,
            dropped: 2,
        }));
        shared.exit();
        assert!(shared.wait_for_exit(Instant::now()));
        shared.abandon(10);
        assert_eq!(counts(&shared), (3, 1, 4, 2));
        assert!(!shared.abandoned());
    }
}
