//! The Mistral log file sink: [`RollingFile`] (its settings) and the sink
//! that formats each event as one line and writes whole lines to a rolling
//! file, on the writer's thread.
//!
//! Lines are written in batches, one `write` call per batch where the file
//! takes it whole. When it does not (a disk that fills in the middle of a
//! batch), the lines that reached the file are counted as written, the
//! rest as failed, and a line cut short is cut off again, so the file
//! always ends at a line boundary and the next line never merges into a
//! fragment. After a failure the file is tried again at most once a second;
//! meanwhile lines are counted as failed without touching the disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::builder::SinkConfig;
use super::{Error, Identity, ProfileWriter, Rotation, Sink, SinkCounters, SinkKind, WriterGuard};
use crate::point::PointEvent;

mod rolling;

use rolling::{Naming, Opened, RollingLog};

/// The settings of a rolling Mistral log file, written by a background
/// thread for an [`OsProfilerLayer`](crate::OsProfilerLayer).
///
/// | setting | default | setter |
/// |---|---|---|
/// | directory | given to [`new`](Self::new); created if missing | |
/// | rotation (UTC periods) | [`Rotation::HOURLY`] | [`with_rotation`](Self::with_rotation) |
/// | file name prefix | `osprofiler` | [`with_prefix`](Self::with_prefix) |
/// | file name suffix | `log` | [`with_suffix`](Self::with_suffix) |
/// | files kept | all | [`with_max_files`](Self::with_max_files) |
///
/// Files are named `PREFIX.DATE.SUFFIX` as tracing-appender names them,
/// for example `osprofiler.2026-11-25-14.log` (with [`Rotation::NEVER`]:
/// `PREFIX.SUFFIX`). [`build`](Self::build) makes a writer with this file
/// as its only sink and the queue's defaults; [`ProfileWriter::builder`]
/// combines it with other sinks and other queue settings.
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
/// // Keep `guard` alive for as long as points are written: dropping it
/// // writes every queued line and stops the writer thread.
/// # drop((writer, guard));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a RollingFile does nothing until it is built or given to a writer builder"]
pub struct RollingFile {
    directory: PathBuf,
    rotation: Rotation,
    prefix: String,
    suffix: String,
    max_files: Option<usize>,
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

    /// Keeps at most `n` files (at least 1, the current one), deleting the
    /// oldest when a new one is started.
    pub fn with_max_files(mut self, n: usize) -> Self {
        self.max_files = Some(n.max(1));
        self
    }

    /// A writer with this file as its only sink and the queue's defaults
    /// (see [`Builder`](super::Builder)).
    ///
    /// # Errors
    ///
    /// When the directory cannot be created, the file cannot be opened for
    /// writing, or the writer thread cannot be started.
    pub fn build(self) -> Result<(ProfileWriter, WriterGuard), Error> {
        ProfileWriter::builder().with_file(self).build()
    }

    fn naming(&self) -> Naming {
        Naming {
            directory: self.directory.clone(),
            rotation: self.rotation.clone(),
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            max_files: self.max_files,
        }
    }
}

impl SinkConfig for RollingFile {
    fn start(
        self: Box<Self>,
        _identity: &Identity,
    ) -> Result<(Box<dyn Sink>, Arc<SinkCounters>), Error> {
        let sink = FileSink::open(&self, OffsetDateTime::now_utc)?;
        let counters = Arc::clone(&sink.counters);
        Ok((Box::new(sink), counters))
    }
}

/// A batch is written once it holds this many bytes, or the batch of
/// events ends.
const BATCH_BYTES: usize = 256 * 1024;

/// The shortest time between two tries of a failing file.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct FileSink {
    log: RollingLog,
    buf: Vec<u8>,
    lines: u64,
    counters: Arc<SinkCounters>,
    /// Set after a failure: until then, lines are failed without a try.
    retry_at: Option<Instant>,
    /// The new period's file could not be created (reported once).
    kept_previous: bool,
    clock: fn() -> OffsetDateTime,
}

impl FileSink {
    fn open(config: &RollingFile, clock: fn() -> OffsetDateTime) -> Result<Self, Error> {
        std::fs::create_dir_all(&config.directory).map_err(|source| {
            Error::io(
                format!("cannot create log directory {}", config.directory.display()),
                source,
            )
        })?;
        let mut log = RollingLog::new(config.naming());
        log.open_for(clock()).map_err(|source| {
            Error::io(
                format!(
                    "cannot open a profile log in {}",
                    config.directory.display()
                ),
                source,
            )
        })?;
        Ok(FileSink {
            log,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            lines: 0,
            counters: Arc::new(SinkCounters::new(
                SinkKind::File,
                config.directory.display().to_string(),
            )),
            retry_at: None,
            kept_previous: false,
            clock,
        })
    }

    fn write_out(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        if lines == 0 {
            return;
        }
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            self.counters.failed(lines);
            self.buf.clear();
            return;
        }
        match self.log.open_for((self.clock)()) {
            Ok(Opened::Current) => self.kept_previous = false,
            Ok(Opened::KeptPrevious(error)) => {
                if !self.kept_previous {
                    self.kept_previous = true;
                    eprintln!(
                        "tracing-osprofiler: cannot start a new profile log in {} ({error}); \
                         lines go on into the previous file until it can",
                        self.log.directory().display()
                    );
                }
            }
            Err(error) => {
                self.fail(lines, &error);
                self.buf.clear();
                return;
            }
        }
        let written = self.log.write_lines(&self.buf);
        match written.error {
            None => {
                self.counters.written(lines);
                self.counters.recovered();
                self.retry_at = None;
            }
            Some(error) => {
                let whole = self.buf[..written.bytes]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
                self.counters.written(whole);
                self.fail(lines - whole, &error);
                self.log.close();
            }
        }
        self.buf.clear();
    }

    fn fail(&mut self, lines: u64, error: &std::io::Error) {
        self.counters.failed(lines);
        self.counters.outage(error);
        self.retry_at = Some(Instant::now() + RETRY_INTERVAL);
    }
}

impl Sink for FileSink {
    fn write(&mut self, events: &[PointEvent]) {
        for event in events {
            event.write_line(&mut self.buf);
            self.lines += 1;
            if self.buf.len() >= BATCH_BYTES {
                self.write_out();
            }
        }
        self.write_out();
    }

    fn flush(&mut self, _deadline: Instant) -> bool {
        self.write_out();
        if self.log.is_open() {
            if let Err(error) = self.log.flush() {
                self.counters.outage(&error);
            }
        }
        true
    }

    fn shutdown(&mut self, deadline: Instant) {
        self.flush(deadline);
    }
}

#[cfg(test)]
mod tests;
