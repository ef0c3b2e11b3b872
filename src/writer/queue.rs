//! The bounded queue between the profiled threads and the writer's thread,
//! and its shutdown gate; [`ByteBudget`], the bound in bytes every queue of
//! the writer shares the design of (this one, the OTLP and Redis sinks').
//!
//! # Bounded in events and in bytes
//!
//! A bound in events alone lets a queue of big events (span fields of
//! hundreds of KiB) grow to the limit times their size. Each queue also
//! holds at most so many bytes of what its events own, as [`event_bytes`]
//! estimates them (their facts: fields, an error, a request's path). An
//! event that would pass the byte limit is treated as one that finds the
//! queue full. The events' fixed size is bounded by the limit in events,
//! so an event without facts (the common case without fields) costs the
//! byte bound nothing: no shared counter is touched for it. A queue holds
//! at most `limit × size_of::<PointEvent>() + byte limit`.
//!
//! The gate is what makes shutdown exact under load. A sender announces
//! itself (`in_flight`) before it looks at `closed`; the guard sets `closed`
//! before it looks at `in_flight`. With both in sequentially consistent
//! order, either the sender sees the gate closed and refuses the event (the
//! layer counts it), or the guard sees the sender and waits for it, so its
//! event is in the queue before the writer's last drain. No event can slip
//! in behind that drain and vanish with the queue.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

use crate::point::PointEvent;

/// A bound on the bytes a queue holds, shared by the threads that add to
/// it and the one that takes from it. Whoever takes room gives it back
/// when the event leaves the queue (written, failed or dropped).
#[derive(Debug)]
pub(crate) struct ByteBudget {
    limit: u64,
    used: AtomicU64,
    /// Events refused because they would have passed the limit.
    refused: AtomicU64,
}

#[allow(dead_code)] // `used` serves tests and the sinks built with their feature
impl ByteBudget {
    pub(crate) fn new(limit: u64) -> Self {
        ByteBudget {
            limit: limit.max(1),
            used: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Takes room for `bytes`, or says no when that would pass the limit
    /// (an event bigger than the whole limit never fits). A caller that
    /// then drops the event counts it with [`refuse`](Self::refuse).
    pub(crate) fn try_take(&self, bytes: u64) -> bool {
        if bytes == 0 {
            return true;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&after| after <= self.limit)
            })
            .is_ok()
    }

    /// Counts `n` events dropped for the limit.
    pub(crate) fn refuse(&self, n: u64) {
        if n > 0 {
            self.refused.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Gives back room taken for `bytes`.
    pub(crate) fn release(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        // Never below zero, whatever a caller gets wrong.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// The bytes held now.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Events refused for the limit so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// What a queued event owns beyond its own fixed size, about: its facts
/// and what they hold on the heap (the fields' JSON, an error message, a
/// request's path and query); 0 without facts. Shared parts (the fields'
/// `Arc`, held by a start and its stop) are counted in each: an upper
/// bound.
pub(crate) fn event_bytes(event: &PointEvent) -> u64 {
    let mut bytes = 0;
    if let Some(facts) = &event.facts {
        bytes += std::mem::size_of_val(&**facts);
        bytes += facts.fields.as_ref().map_or(0, |f| f.len());
        bytes += facts.error.as_ref().map_or(0, String::len);
        if let Some(request) = &facts.request {
            bytes += request.method().len()
                + request.path().len()
                + request.scheme().len()
                + request.query().map_or(0, str::len);
        }
        if let Some(call) = &facts.call {
            bytes += call.method().len() + call.host().len();
        }
    }
    bytes as u64
}

pub(super) struct Queue {
    sender: Sender<PointEvent>,
    /// Kept to count what is left when shutting down gives up.
    receiver: Receiver<PointEvent>,
    lossy: bool,
    max_wait: Duration,
    closed: AtomicBool,
    in_flight: AtomicUsize,
    dropped: AtomicU64,
    /// The bytes queued; the writer's thread gives them back.
    bytes: Arc<ByteBudget>,
    /// The queue stayed full for longer than `max_wait`; reported once.
    stalled: AtomicBool,
}

impl Queue {
    pub(super) fn new(
        capacity: usize,
        max_bytes: u64,
        lossy: bool,
        max_wait: Duration,
    ) -> (Self, Receiver<PointEvent>) {
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        let queue = Queue {
            sender,
            receiver: receiver.clone(),
            lossy,
            max_wait,
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            bytes: Arc::new(ByteBudget::new(max_bytes)),
            stalled: AtomicBool::new(false),
        };
        (queue, receiver)
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Of [`dropped`](Self::dropped), those refused by the byte limit.
    pub(super) fn dropped_over_bytes(&self) -> u64 {
        self.bytes.refused()
    }

    /// The byte bound, for the writer's thread to give room back.
    pub(super) fn budget(&self) -> Arc<ByteBudget> {
        Arc::clone(&self.bytes)
    }

    /// Queues one event, or refuses it once the queue is closed. A full
    /// queue is waited on or dropped from (and counted), never an error.
    pub(super) fn send(&self, event: PointEvent) -> io::Result<()> {
        self.through_gate(|| self.send_open(event))
    }

    /// Queues several events behind one pass of the gate, as `make` makes
    /// them: either all of them reach the queue before the writer's last
    /// drain, or all are refused, unmade (a kept request's tree is written
    /// whole or counted).
    pub(super) fn send_all(&self, make: impl FnOnce(&mut dyn FnMut(PointEvent))) -> io::Result<()> {
        self.through_gate(|| make(&mut |event| self.send_open(event)))
    }

    /// Runs `send` past the shutdown gate (see the module docs), or refuses
    /// without running it once the gate is closed.
    #[inline]
    fn through_gate(&self, send: impl FnOnce()) -> io::Result<()> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = if self.closed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the profile writer was shut down (its WriterGuard was dropped)",
            ))
        } else {
            send();
            Ok(())
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn send_open(&self, event: PointEvent) {
        let size = event_bytes(&event);
        if !self.take_bytes(size) {
            return;
        }
        let event = match self.sender.try_send(event) {
            Ok(()) => {
                if self.stalled.load(Ordering::Relaxed) {
                    self.stalled.store(false, Ordering::Relaxed);
                }
                return;
            }
            // The queue holds a receiver itself: never disconnected.
            Err(TrySendError::Disconnected(_)) => return self.drop_sized(size, None),
            Err(TrySendError::Full(event)) => event,
        };
        if self.lossy {
            return self.drop_sized(size, Some("the profile writer thread falls behind"));
        }
        if self.stalled.load(Ordering::Relaxed) {
            return self.drop_sized(size, None);
        }
        match self.sender.send_timeout(event, self.max_wait) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => {
                self.drop_sized(size, Some("the profile writer thread is stalled"));
            }
            Err(SendTimeoutError::Disconnected(_)) => self.drop_sized(size, None),
        }
    }

    /// Takes room for an event of `size` bytes, as a full queue is
    /// treated: dropped at once when lossy or stalled, else after waiting
    /// up to `max_wait` for the writer's thread to make room. Whether the
    /// event may go on (a refused one is counted).
    fn take_bytes(&self, size: u64) -> bool {
        if self.bytes.try_take(size) {
            return true;
        }
        let refused = if size > self.bytes.limit {
            // Never fits: no use waiting, and no sign of a stalled writer.
            None
        } else if self.lossy {
            Some("the profile writer's queue holds its limit in bytes")
        } else if self.stalled.load(Ordering::Relaxed) {
            None
        } else {
            let until = Instant::now() + self.max_wait;
            loop {
                if self.bytes.try_take(size) {
                    return true;
                }
                if Instant::now() >= until {
                    break Some("the profile writer thread is stalled");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        };
        self.bytes.refuse(1);
        self.drop_event(refused);
        false
    }

    fn drop_sized(&self, size: u64, why: Option<&str>) {
        self.bytes.release(size);
        self.drop_event(why);
    }

    fn drop_event(&self, why: Option<&str>) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(why) = why {
            if !self.stalled.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "tracing-osprofiler: {why}; profile events are dropped and counted until it catches up"
                );
            }
        }
    }

    /// Refuses every event from now on.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Waits until no sender is between the gate and the queue (each is
    /// bounded by `max_wait`), or until `deadline`.
    pub(super) fn wait_for_senders(&self, deadline: Instant) {
        while self.in_flight.load(Ordering::SeqCst) != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Empties the queue, counting every event as dropped; returns how
    /// many there were.
    pub(super) fn discard_queued(&self) -> u64 {
        let mut left = 0;
        while let Ok(event) = self.receiver.try_recv() {
            self.bytes.release(event_bytes(&event));
            left += 1;
        }
        self.dropped.fetch_add(left, Ordering::Relaxed);
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Phase, PointIds, PointName, Timestamp};
    use crate::Id;

    fn event() -> PointEvent {
        let id = Id::new_v4();
        PointEvent {
            phase: Phase::Start,
            ids: PointIds {
                base_id: id,
                parent_id: id,
                trace_id: id,
            },
            name: PointName::new("x"),
            timestamp: Timestamp::now(),
            started: Timestamp::now(),
            duration_nanos: 0,
            busy: crate::point::MaybeBusy::UNKNOWN,
            slow: false,
            facts: None,
        }
    }

    #[test]
    fn a_stalled_queue_drops_and_counts_instead_of_blocking() {
        let (queue, _receiver) = Queue::new(1, u64::MAX, false, Duration::from_millis(20));
        for _ in 0..1_000 {
            queue.send(event()).unwrap();
        }
        // One wait of max_wait, then immediate drops while the queue is full.
        assert_eq!(queue.dropped(), 999);
    }

    fn with_fields(bytes: usize) -> PointEvent {
        let mut event = event();
        event.facts = Some(Box::new(crate::point::PointFacts {
            fields: Some("x".repeat(bytes).into()),
            ..Default::default()
        }));
        event
    }

    #[test]
    fn big_events_find_the_queue_full_at_its_byte_limit() {
        let size = event_bytes(&with_fields(100_000));
        assert!(size > 100_000, "{size}");
        // Room for 3 such events and a small one among 1000 slots.
        let small = event_bytes(&event());
        let (queue, receiver) = Queue::new(1000, 3 * size + small, true, Duration::ZERO);
        for _ in 0..10 {
            queue.send(with_fields(100_000)).unwrap();
        }
        assert_eq!((queue.dropped(), queue.dropped_over_bytes()), (7, 7));
        assert_eq!(queue.bytes.used(), 3 * size);
        // Events without facts cost the byte bound nothing.
        assert_eq!(small, 0);
        queue.send(event()).unwrap();
        assert_eq!(queue.dropped(), 7);
        // Room comes back as the writer's thread gives it back.
        let taken = receiver.try_recv().unwrap();
        queue.bytes.release(event_bytes(&taken));
        queue.send(with_fields(100_000)).unwrap();
        assert_eq!(queue.dropped(), 7);
        // What shutting down discards gives its room back too.
        assert_eq!(queue.discard_queued(), 4);
        assert_eq!(queue.bytes.used(), 0);
    }

    #[test]
    fn a_lossless_queue_waits_for_bytes_then_counts_the_writer_stalled() {
        let size = event_bytes(&with_fields(10_000));
        let (queue, _receiver) = Queue::new(1000, size, false, Duration::from_millis(20));
        for _ in 0..100 {
            queue.send(with_fields(10_000)).unwrap();
        }
        // One wait of max_wait, then immediate drops while stalled.
        assert_eq!((queue.dropped(), queue.dropped_over_bytes()), (99, 99));
        // An event larger than the whole limit never fits, and does not wait.
        let (queue, _receiver) = Queue::new(1000, 1000, false, Duration::from_secs(60));
        queue.send(with_fields(10_000)).unwrap();
        assert_eq!(queue.dropped_over_bytes(), 1);
        assert!(!queue.stalled.load(Ordering::Relaxed));
    }

    #[test]
    fn a_closed_queue_refuses_and_counts_what_was_left() {
        let (queue, _receiver) = Queue::new(10, u64::MAX, true, Duration::ZERO);
        for _ in 0..12 {
            queue.send(event()).unwrap();
        }
        assert_eq!(queue.dropped(), 2);
        queue.close();
        assert!(queue.send(event()).is_err());
        assert_eq!(queue.discard_queued(), 10);
        assert_eq!(queue.dropped(), 12);
    }
}
