//! The writer's thread: takes events off the queue in batches and hands
//! each batch to every sink; flushes and shuts down on the guard's word.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::queue::{event_bytes, ByteBudget};
use super::Sink;
use crate::point::PointEvent;

/// What the [`WriterGuard`](super::WriterGuard) asks of the thread.
pub(super) enum Control {
    /// Write everything queued so far through every sink; answer whether
    /// the sinks finished by `deadline`.
    Flush {
        deadline: Instant,
        done: Sender<bool>,
    },
    /// The queue is closed: write everything left, stop the sinks, end.
    Shutdown { deadline: Instant, done: Sender<()> },
}

/// Events handed to the sinks at once, at most.
const BATCH_EVENTS: usize = 4096;

/// How long the thread naps when the queue is empty, and how many naps in
/// a row before it blocks (see [`Worker::wait`]): 20 ms of naps.
///
/// 5 ms rather than 1: on the 2-vCPU machine of docs/performance.md a
/// profiled span lost about 200 ns of the application thread's wall-clock
/// time to a writer waking every millisecond (time the thread was not
/// running, not its CPU time), and a signed request cost the process about
/// 20 % less CPU at 5 ms than at 1 ms, in larger batches. Between drains the queue holds
/// about what 5 ms of spans make (more while a sink writes a batch), far
/// below its bound, and a line reaches the sinks up to about 5 ms after
/// its event, besides their own time.
const NAP: Duration = Duration::from_millis(5);
const IDLE_NAPS: u32 = 4;

pub(super) struct Worker {
    pub(super) events: Receiver<PointEvent>,
    pub(super) control: Receiver<Control>,
    pub(super) sinks: Vec<Box<dyn Sink>>,
    /// The queue's bound in bytes: room is given back once a batch is
    /// handed over and freed.
    pub(super) bytes: Arc<ByteBudget>,
}

enum Wake {
    Event(PointEvent),
    Control(Control),
    /// Every sender is gone (the writer handles and the guard): nothing
    /// more will come.
    Gone,
}

impl Worker {
    pub(super) fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH_EVENTS);
        loop {
            match self.wait() {
                Wake::Event(first) => {
                    batch.push(first);
                    self.drain(&mut batch);
                }
                Wake::Control(Control::Flush { deadline, done }) => {
                    self.drain(&mut batch);
                    let mut finished = true;
                    for sink in &mut self.sinks {
                        finished &= sink.flush(deadline);
                    }
                    let _ = done.send(finished);
                }
                Wake::Control(Control::Shutdown { deadline, done }) => {
                    self.drain(&mut batch);
                    for sink in &mut self.sinks {
                        sink.shutdown(deadline);
                    }
                    let _ = done.send(());
                    return;
                }
                Wake::Gone => {
                    self.drain(&mut batch);
                    let deadline = Instant::now() + Duration::from_secs(1);
                    for sink in &mut self.sinks {
                        sink.shutdown(deadline);
                    }
                    return;
                }
            }
        }
    }

    /// Hands `batch` and every event queued now to the sinks, in batches.
    fn drain(&mut self, batch: &mut Vec<PointEvent>) {
        loop {
            while batch.len() < BATCH_EVENTS {
                match self.events.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            for sink in &mut self.sinks {
                sink.write(batch);
            }
            let full = batch.len() == BATCH_EVENTS;
            let bytes: u64 = batch.iter().map(event_bytes).sum();
            batch.clear();
            self.bytes.release(bytes);
            if !full {
                return;
            }
        }
    }

    /// Waits for the next event or word from the guard. While events keep
    /// coming, the thread naps between batches instead of blocking on the
    /// queue: a blocked receiver makes every send pay for waking it (a
    /// futex call on the profiled thread), a napping one costs the senders
    /// nothing. After `IDLE_NAPS` empty naps it blocks, so an idle service
    /// has an idle writer thread.
    fn wait(&self) -> Wake {
        for _ in 0..IDLE_NAPS {
            if let Ok(control) = self.control.try_recv() {
                return Wake::Control(control);
            }
            match self.events.try_recv() {
                Ok(event) => return Wake::Event(event),
                Err(TryRecvError::Empty) => std::thread::sleep(NAP),
                Err(TryRecvError::Disconnected) => return Wake::Gone,
            }
        }
        crossbeam_channel::select! {
            recv(self.control) -> control => match control {
                Ok(control) => Wake::Control(control),
                Err(_) => Wake::Gone,
            },
            recv(self.events) -> event => match event {
                Ok(event) => Wake::Event(event),
                Err(_) => Wake::Gone,
            },
        }
    }
}
