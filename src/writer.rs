//! Where the lines go: a rolling log file behind a non-blocking writer.
//!
//! This module owns the convenience that most services want: a
//! [`tracing_appender`] rolling file (rotation, prefix, suffix, how many files
//! to keep) written by a background thread, the [`WriterGuard`] that flushes
//! it, and the counters of lines that were dropped or could not be written.
//! The layer itself takes any [`MakeWriter`], so none of this is required.
//!
//! Lines are never lost silently:
//!
//! * **Lossless** (the default): when the background thread falls behind by
//!   more than the buffered-lines limit, the thread writing a line waits.
//! * **Lossy** ([`RollingFile::with_lossy`]): such lines are dropped instead,
//!   and [`ProfileWriter::dropped_lines`] counts them.
//! * A line the file refuses (a full disk, say) is counted in
//!   [`ProfileWriter::failed_lines`] and reported on standard error once per
//!   outage. The I/O happens on the background thread, so a failing or slow
//!   disk never makes the service's own threads fail.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::RollingFileAppender;
pub use tracing_appender::rolling::Rotation;
use tracing_subscriber::fmt::MakeWriter;

/// Builds a rolling, non-blocking log file for an
/// [`OsProfilerLayer`](crate::OsProfilerLayer).
///
/// | setting | default | setter |
/// |---|---|---|
/// | directory | given to [`new`](Self::new); created if missing | |
/// | rotation | [`Rotation::HOURLY`] | [`with_rotation`](Self::with_rotation) |
/// | file name prefix | `osprofiler` | [`with_prefix`](Self::with_prefix) |
/// | file name suffix | `log` | [`with_suffix`](Self::with_suffix) |
/// | files kept | all | [`with_max_files`](Self::with_max_files) |
/// | when the writer thread falls behind | wait (lossless) | [`with_lossy`](Self::with_lossy) |
/// | lines buffered before that | 128 000 | [`with_buffered_lines_limit`](Self::with_buffered_lines_limit) |
///
/// Files are named `PREFIX.DATE.SUFFIX`, for example
/// `osprofiler.2026-11-25-14.log`.
///
/// ```
/// use tracing_osprofiler::writer::{RollingFile, Rotation};
///
/// let dir = tempfile::tempdir()?;
/// let (writer, guard) = RollingFile::new(dir.path())
///     .with_rotation(Rotation::DAILY)
///     .with_prefix("api")
///     .with_max_files(7)
///     .build()?;
/// // Keep `guard` alive for as long as lines are written: dropping it
/// // flushes the file and stops the writer thread.
/// # drop((writer, guard));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a RollingFile does nothing until `build` is called"]
pub struct RollingFile {
    directory: PathBuf,
    rotation: Rotation,
    prefix: String,
    suffix: String,
    max_files: Option<usize>,
    lossy: bool,
    buffered_lines_limit: usize,
}

impl RollingFile {
    /// Files in `directory`, with the defaults of the table above.
    pub fn new(directory: impl AsRef<Path>) -> Self {
        RollingFile {
            directory: directory.as_ref().to_path_buf(),
            rotation: Rotation::HOURLY,
            prefix: "osprofiler".to_owned(),
            suffix: "log".to_owned(),
            max_files: None,
            lossy: false,
            buffered_lines_limit: 128_000,
        }
    }

    /// How often a new file is started.
    pub fn with_rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// The start of each file name.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The end of each file name (without the dot).
    pub fn with_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = suffix.into();
        self
    }

    /// Keeps at most `n` files, deleting the oldest on rotation.
    pub fn with_max_files(mut self, n: usize) -> Self {
        self.max_files = Some(n);
        self
    }

    /// Drops lines instead of waiting when the writer thread falls behind
    /// (default: wait). Dropped lines are counted by
    /// [`ProfileWriter::dropped_lines`].
    pub fn with_lossy(mut self, lossy: bool) -> Self {
        self.lossy = lossy;
        self
    }

    /// How many lines may wait for the writer thread.
    pub fn with_buffered_lines_limit(mut self, limit: usize) -> Self {
        self.buffered_lines_limit = limit;
        self
    }

    /// Creates the directory and the first file and starts the writer thread.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created or the file cannot be opened for
    /// writing.
    pub fn build(self) -> Result<(ProfileWriter, WriterGuard), Error> {
        std::fs::create_dir_all(&self.directory).map_err(|source| Error {
            context: format!("cannot create log directory {}", self.directory.display()),
            source,
        })?;
        let mut builder = RollingFileAppender::builder()
            .rotation(self.rotation.clone())
            .filename_prefix(self.prefix.clone())
            .filename_suffix(self.suffix.clone());
        if let Some(n) = self.max_files {
            builder = builder.max_log_files(n);
        }
        let appender = builder.build(&self.directory).map_err(|e| Error {
            context: format!("cannot open a log file in {}", self.directory.display()),
            source: io::Error::other(e),
        })?;
        let failures = Arc::new(Failures::default());
        let (non_blocking, guard) = NonBlockingBuilder::default()
            .lossy(self.lossy)
            .buffered_lines_limit(self.buffered_lines_limit)
            .thread_name("tracing-osprofiler-writer")
            .finish(ReportingWriter {
                inner: appender,
                failures: Arc::clone(&failures),
            });
        let dropped = non_blocking.error_counter();
        Ok((
            ProfileWriter {
                inner: non_blocking,
                dropped,
                failures,
            },
            WriterGuard { _worker: guard },
        ))
    }
}

/// The `MakeWriter` that [`RollingFile::build`] returns; give it to
/// [`OsProfilerLayer::new`](crate::OsProfilerLayer::new).
#[derive(Clone)]
pub struct ProfileWriter {
    inner: NonBlocking,
    dropped: ErrorCounter,
    failures: Arc<Failures>,
}

impl ProfileWriter {
    /// Lines dropped because the writer thread had fallen behind (lossy mode
    /// only; always 0 when lossless).
    #[must_use]
    pub fn dropped_lines(&self) -> usize {
        self.dropped.dropped_lines()
    }

    /// Lines the file refused (for example, a full disk).
    #[must_use]
    pub fn failed_lines(&self) -> u64 {
        self.failures.lines.load(Ordering::Relaxed)
    }

    /// A handle that reads the same counters, for a metrics endpoint.
    #[must_use]
    pub fn counters(&self) -> WriterCounters {
        WriterCounters {
            dropped: self.dropped.clone(),
            failures: Arc::clone(&self.failures),
        }
    }
}

impl fmt::Debug for ProfileWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileWriter")
            .field("dropped_lines", &self.dropped_lines())
            .field("failed_lines", &self.failed_lines())
            .finish()
    }
}

impl<'a> MakeWriter<'a> for ProfileWriter {
    type Writer = NonBlocking;

    fn make_writer(&'a self) -> Self::Writer {
        self.inner.clone()
    }
}

/// The counters of a [`ProfileWriter`], cheap to clone.
#[derive(Clone)]
pub struct WriterCounters {
    dropped: ErrorCounter,
    failures: Arc<Failures>,
}

impl WriterCounters {
    /// See [`ProfileWriter::dropped_lines`].
    #[must_use]
    pub fn dropped_lines(&self) -> usize {
        self.dropped.dropped_lines()
    }

    /// See [`ProfileWriter::failed_lines`].
    #[must_use]
    pub fn failed_lines(&self) -> u64 {
        self.failures.lines.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for WriterCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterCounters")
            .field("dropped_lines", &self.dropped_lines())
            .field("failed_lines", &self.failed_lines())
            .finish()
    }
}

/// Flushes every buffered line and stops the writer thread when dropped.
///
/// Keep it alive for as long as the service runs, typically by binding it in
/// `main`. **Do not bind it to `_`**: `let _ = ...` drops it at once, and
/// lines written afterwards are lost.
#[must_use = "dropping the guard stops the writer thread: bind it to a named variable"]
pub struct WriterGuard {
    _worker: WorkerGuard,
}

impl fmt::Debug for WriterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriterGuard")
    }
}

#[derive(Debug, Default)]
struct Failures {
    lines: AtomicU64,
    failing: AtomicBool,
}

/// Runs on the writer thread: counts and reports refused lines, since
/// tracing-appender's worker discards write errors silently.
struct ReportingWriter<W> {
    inner: W,
    failures: Arc<Failures>,
}

impl<W: Write> Write for ReportingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The worker hands over one line per call.
        match self.inner.write_all(buf) {
            Ok(()) => {
                if self.failures.failing.swap(false, Ordering::Relaxed) {
                    eprintln!("tracing-osprofiler: the profile log accepts lines again");
                }
                Ok(buf.len())
            }
            Err(error) => {
                self.failures.lines.fetch_add(1, Ordering::Relaxed);
                if !self.failures.failing.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "tracing-osprofiler: cannot write to the profile log ({error}); \
                         lines are counted as failed until it works again"
                    );
                }
                // Report success to the worker: the line is accounted for,
                // and an error would only make it abandon the batch.
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Err(error) = self.inner.flush() {
            if !self.failures.failing.swap(true, Ordering::Relaxed) {
                eprintln!("tracing-osprofiler: cannot flush the profile log ({error})");
            }
        }
        Ok(())
    }
}

/// An error building the writer: what was being done, and the I/O error.
#[derive(Debug)]
pub struct Error {
    context: String,
    source: io::Error,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn refused_lines_are_counted() {
        let failures = Arc::new(Failures::default());
        let mut writer = ReportingWriter {
            inner: Full,
            failures: Arc::clone(&failures),
        };
        for _ in 0..3 {
            assert_eq!(writer.write(b"line\n").unwrap(), 5);
        }
        assert_eq!(failures.lines.load(Ordering::Relaxed), 3);
        assert!(failures.failing.load(Ordering::Relaxed));
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let err = RollingFile::new("/proc/self/cannot-create-here").build().unwrap_err();
        assert!(err.to_string().starts_with("cannot create log directory /proc/self/cannot-create-here: "), "{err}");
    }
}
