//! The bounded queue between the profiled threads and the writer's thread,
//! and its shutdown gate.
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
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

use crate::point::PointEvent;

pub(super) struct Queue {
    sender: Sender<PointEvent>,
    /// Kept to count what is left when shutting down gives up.
    receiver: Receiver<PointEvent>,
    lossy: bool,
    max_wait: Duration,
    closed: AtomicBool,
    in_flight: AtomicUsize,
    dropped: AtomicU64,
    /// The queue stayed full for longer than `max_wait`; reported once.
    stalled: AtomicBool,
}

impl Queue {
    pub(super) fn new(
        capacity: usize,
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
            stalled: AtomicBool::new(false),
        };
        (queue, receiver)
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues one event, or refuses it once the queue is closed. A full
    /// queue is waited on or dropped from (and counted), never an error.
    pub(super) fn send(&self, event: PointEvent) -> io::Result<()> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = if self.closed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the profile writer was shut down (its WriterGuard was dropped)",
            ))
        } else {
            self.send_open(event);
            Ok(())
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Queues several events behind one pass of the gate: either all of
    /// them reach the queue before the writer's last drain, or all are
    /// refused (a kept request's tree is written whole or counted).
    pub(super) fn send_all(&self, events: Vec<PointEvent>) -> io::Result<()> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = if self.closed.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the profile writer was shut down (its WriterGuard was dropped)",
            ))
        } else {
            for event in events {
                self.send_open(event);
            }
            Ok(())
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn send_open(&self, event: PointEvent) {
        let event = match self.sender.try_send(event) {
            Ok(()) => {
                if self.stalled.load(Ordering::Relaxed) {
                    self.stalled.store(false, Ordering::Relaxed);
                }
                return;
            }
            // The queue holds a receiver itself: never disconnected.
            Err(TrySendError::Disconnected(_)) => return self.drop_event(None),
            Err(TrySendError::Full(event)) => event,
        };
        if self.lossy {
            return self.drop_event(Some("the profile writer thread falls behind"));
        }
        if self.stalled.load(Ordering::Relaxed) {
            return self.drop_event(None);
        }
        match self.sender.send_timeout(event, self.max_wait) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => {
                self.drop_event(Some("the profile writer thread is stalled"));
            }
            Err(SendTimeoutError::Disconnected(_)) => self.drop_event(None),
        }
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
        while self.receiver.try_recv().is_ok() {
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
            duration: Duration::ZERO,
            busy: None,
            slow: false,
            facts: None,
        }
    }

    #[test]
    fn a_stalled_queue_drops_and_counts_instead_of_blocking() {
        let (queue, _receiver) = Queue::new(1, false, Duration::from_millis(20));
        for _ in 0..1_000 {
            queue.send(event()).unwrap();
        }
        // One wait of max_wait, then immediate drops while the queue is full.
        assert_eq!(queue.dropped(), 999);
    }

    #[test]
    fn a_closed_queue_refuses_and_counts_what_was_left() {
        let (queue, _receiver) = Queue::new(10, true, Duration::ZERO);
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
