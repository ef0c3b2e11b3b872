//! Where a layer's points go: the [`Output`] trait, implemented by the
//! [`ProfileWriter`] (the fast path: events are queued for the writer's own
//! thread) and by [`InlineWriter`] (any `MakeWriter`, one formatted line
//! per `write_all`, on the calling thread).
//!
//! The trait is sealed: the layer's type names its path, so a writer cannot
//! silently move formatting onto the service's threads.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write as _};

use tracing_subscriber::fmt::MakeWriter;

use crate::point::PointEvent;
use crate::writer::ProfileWriter;

/// Where an [`OsProfilerLayer`](super::OsProfilerLayer) sends its points:
/// a [`ProfileWriter`] or an [`InlineWriter`]. Sealed.
pub trait Output: sealed::Sealed + Send + Sync + 'static {}

// The methods take the crate's own event type: the trait is public only as
// a bound, and nobody outside the crate can implement or call it.
#[allow(private_interfaces, private_bounds)]
mod sealed {
    pub trait Sealed {
        /// Takes one start or stop; an error means the event was not taken
        /// (the layer counts it).
        fn send(&self, event: crate::point::PointEvent) -> std::io::Result<()>;

        /// Whether starts are wanted at all (a stop carries everything a
        /// span needs).
        fn wants_starts(&self) -> bool {
            true
        }

        /// Takes a kept request's events whole, or refuses them whole (the
        /// writer was shut down): never a part of them. `make` hands them
        /// one by one to the function it is given, as they are made: a
        /// kept tree is never gathered into a second buffer on the
        /// service's thread. A `ProfileWriter` that refuses the batch does
        /// not make it at all; a `MakeWriter` makes every event and stops
        /// writing at its first I/O error.
        fn send_batch(
            &self,
            make: impl FnOnce(&mut dyn FnMut(crate::point::PointEvent)),
        ) -> std::io::Result<()>;
    }
}

impl Output for ProfileWriter {}

#[allow(private_interfaces, private_bounds)]
impl sealed::Sealed for ProfileWriter {
    fn send(&self, event: PointEvent) -> io::Result<()> {
        self.send_event(event)
    }

    fn wants_starts(&self) -> bool {
        ProfileWriter::wants_starts(self)
    }

    fn send_batch(&self, make: impl FnOnce(&mut dyn FnMut(PointEvent))) -> io::Result<()> {
        self.send_events(make)
    }
}

/// Writes each start and stop as one Mistral line through a
/// [`MakeWriter`], formatted on the thread that starts or ends the span,
/// with one `write_all` call per line (so lines of several threads never
/// tear into each other with writers that write whole buffers at once).
///
/// Made by [`OsProfilerLayer::from_make_writer`](super::OsProfilerLayer::from_make_writer);
/// for tests, `std::io::stderr`, or a writer of your own. A service wants a
/// [`ProfileWriter`] instead, which does this work on its own thread.
pub struct InlineWriter<W> {
    make_writer: W,
}

impl<W> InlineWriter<W> {
    pub(super) fn new(make_writer: W) -> Self {
        InlineWriter { make_writer }
    }
}

impl<W> fmt::Debug for InlineWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineWriter").finish_non_exhaustive()
    }
}

thread_local! {
    /// A reusable line buffer, so that writing a line does not allocate.
    static LINE_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl<W> Output for InlineWriter<W> where W: for<'w> MakeWriter<'w> + Send + Sync + 'static {}

#[allow(private_interfaces, private_bounds)]
impl<W> sealed::Sealed for InlineWriter<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fn send(&self, event: PointEvent) -> io::Result<()> {
        LINE_BUFFER.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                event.write_line(&mut buf);
                self.make_writer.make_writer().write_all(&buf)
            }
            // Only if the writer itself creates spans that are profiled.
            Err(_) => {
                let mut buf = Vec::with_capacity(256);
                event.write_line(&mut buf);
                self.make_writer.make_writer().write_all(&buf)
            }
        })
    }

    fn send_batch(&self, make: impl FnOnce(&mut dyn FnMut(PointEvent))) -> io::Result<()> {
        // Still one `write_all` per line, as promised above: a `MakeWriter`
        // has no shutdown to be whole against, only its own I/O errors. The
        // first one ends the batch.
        let mut result = Ok(());
        make(&mut |event| {
            if result.is_ok() {
                result = self.send(event);
            }
        });
        result
    }
}
