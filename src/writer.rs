//! Where the lines go: a rolling log file written by a background thread.
//!
//! This module owns the convenience that most services want: a
//! [`tracing_appender`] rolling file (rotation, prefix, suffix, how many files
//! to keep), fed through a bounded channel by the threads that profile, and
//! written by one background thread; the [`WriterGuard`] that flushes it; and
//! the counters of lines that were dropped or refused. The layer itself takes
//! any [`MakeWriter`], so none of this is required.
//!
//! Lines are never lost silently, and the service is never stalled for long:
//!
//! * **Lossless, with a bound** (the default): when the writer thread falls
//!   behind by more than the buffered-lines limit, the thread writing a line
//!   waits for room, up to [`RollingFile::with_max_wait`] (500 ms). A writer
//!   still stuck after that (a hung network disk) is declared *stalled*: lines
//!   are dropped and counted, without waiting, until the queue has room again.
//!   So a stuck disk adds at most one wait of that length to the service.
//! * **Lossy** ([`RollingFile::with_lossy`]): lines that find the queue full
//!   are dropped at once and counted.
//! * Lines the file refuses (a full disk, a deleted directory) are counted in
//!   [`ProfileWriter::failed_lines`] and reported on standard error once per
//!   outage. The writer thread checks the directory and the file before
//!   each batch: when either was deleted (or the file replaced), it
//!   re-creates them rather than write into a deleted file, and it retries a
//!   failing file at most once a second, so writing resumes when the
//!   destination comes back.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use tracing_appender::rolling::RollingFileAppender;
pub use tracing_appender::rolling::Rotation;
use tracing_subscriber::fmt::MakeWriter;

use crate::format::PendingLine;

/// Builds a rolling log file written by a background thread, for an
/// [`OsProfilerLayer`](crate::OsProfilerLayer).
///
/// | setting | default | setter |
/// |---|---|---|
/// | directory | given to [`new`](Self::new); created if missing | |
/// | rotation | [`Rotation::HOURLY`] | [`with_rotation`](Self::with_rotation) |
/// | file name prefix | `osprofiler` | [`with_prefix`](Self::with_prefix) |
/// | file name suffix | `log` | [`with_suffix`](Self::with_suffix) |
/// | files kept | all | [`with_max_files`](Self::with_max_files) (at least 2) |
/// | lines queued for the writer thread | 128 000 | [`with_buffered_lines_limit`](Self::with_buffered_lines_limit) |
/// | when the queue is full | wait for room (lossless) | [`with_lossy`](Self::with_lossy) |
/// | longest wait for room before the writer counts as stalled | 500 ms | [`with_max_wait`](Self::with_max_wait) |
/// | how long dropping the guard waits for the queue to be written | 5 s | [`with_flush_timeout`](Self::with_flush_timeout) |
///
/// Files are named `PREFIX.DATE.SUFFIX`, for example
/// `osprofiler.2026-11-25-14.log` (with [`Rotation::NEVER`]: `PREFIX.SUFFIX`).
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
/// // writes every queued line and stops the writer thread.
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
    max_wait: Duration,
    flush_timeout: Duration,
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
            max_wait: Duration::from_millis(500),
            flush_timeout: Duration::from_secs(5),
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

    /// Keeps at most `n` files, deleting the oldest on rotation; `n` is
    /// at least 2. (tracing-appender, which rotates the files, prunes them
    /// to `n - 1` each time the writer opens a file, at start and after
    /// the file or directory was deleted or failed: with 1 it would delete
    /// the file of the current period, lines already written included.)
    pub fn with_max_files(mut self, n: usize) -> Self {
        self.max_files = Some(n.max(2));
        self
    }

    /// Drops lines at once instead of waiting when the queue is full
    /// (default: wait). Dropped lines are counted by
    /// [`ProfileWriter::dropped_lines`].
    pub fn with_lossy(mut self, lossy: bool) -> Self {
        self.lossy = lossy;
        self
    }

    /// How many lines may wait for the writer thread (at least 1).
    pub fn with_buffered_lines_limit(mut self, limit: usize) -> Self {
        self.buffered_lines_limit = limit.max(1);
        self
    }

    /// In lossless mode, the longest a thread waits for room in a full queue
    /// before the writer counts as stalled and lines are dropped (and
    /// counted) until the queue has room again.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How long dropping the [`WriterGuard`] waits for the queued lines to be
    /// written.
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    fn open(&self) -> Result<RollingFileAppender, Error> {
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
        builder.build(&self.directory).map_err(|e| Error {
            context: format!("cannot open a log file in {}", self.directory.display()),
            source: io::Error::other(e),
        })
    }

    /// Creates the directory and the first file and starts the writer thread.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created, the file cannot be opened for
    /// writing, or the thread cannot be started.
    pub fn build(self) -> Result<(ProfileWriter, WriterGuard), Error> {
        let file = self.open()?;
        let counters = Arc::new(Counters::default());
        let (sender, receiver) = crossbeam_channel::bounded(self.buffered_lines_limit);
        let (done_sender, done) = crossbeam_channel::bounded(1);
        let mut worker = Worker {
            receiver,
            file: Some(file),
            needs_reopen: false,
            last_reopen: Instant::now(),
            current: None,
            last_scan: Instant::now(),
            config: self.clone(),
            counters: Arc::clone(&counters),
        };
        worker.current = worker.newest_file();
        let thread = std::thread::Builder::new()
            .name("tracing-osprofiler-writer".into())
            .spawn(move || {
                worker.run();
                let _ = done_sender.send(());
            })
            .map_err(|source| Error {
                context: "cannot start the profile writer thread".into(),
                source,
            })?;
        Ok((
            ProfileWriter {
                sender: sender.clone(),
                lossy: self.lossy,
                max_wait: self.max_wait,
                counters,
            },
            WriterGuard {
                sender,
                done,
                thread: Some(thread),
                timeout: self.flush_timeout,
            },
        ))
    }
}

enum Message {
    /// A line formatted by the caller (any `write` through `MakeWriter`).
    Line(Vec<u8>),
    /// A line from the layer, formatted on the writer thread.
    Pending(PendingLine),
    Shutdown,
}

#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicUsize,
    failed: AtomicU64,
    /// The queue stayed full for longer than `max_wait`.
    stalled: AtomicBool,
    /// The destination refuses lines; reported once per outage.
    failing: AtomicBool,
}

impl Counters {
    fn drop_line(&self, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if !self.stalled.swap(true, Ordering::Relaxed) {
            eprintln!(
                "tracing-osprofiler: {why}; profile lines are dropped and counted until it catches up"
            );
        }
    }
}

/// The `MakeWriter` that [`RollingFile::build`] returns; give it to
/// [`OsProfilerLayer::new`](crate::OsProfilerLayer::new). Each `write` call
/// queues one line.
#[derive(Clone)]
pub struct ProfileWriter {
    sender: Sender<Message>,
    lossy: bool,
    max_wait: Duration,
    counters: Arc<Counters>,
}

impl ProfileWriter {
    /// Lines dropped before reaching the writer thread: a full queue in lossy
    /// mode, or a stalled writer in lossless mode.
    #[must_use]
    pub fn dropped_lines(&self) -> usize {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Lines the file refused (a full disk, a directory that could not be
    /// re-created).
    #[must_use]
    pub fn failed_lines(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// A handle that reads the same counters, for a metrics endpoint.
    #[must_use]
    pub fn counters(&self) -> WriterCounters {
        WriterCounters {
            counters: Arc::clone(&self.counters),
        }
    }

    /// Queues a line for the writer thread to format: the layer's fast path,
    /// which keeps formatting and copying off the profiled threads.
    pub(crate) fn send_pending(&self, line: PendingLine) -> io::Result<()> {
        self.send(Message::Pending(line))
    }

    fn send(&self, message: Message) -> io::Result<()> {
        let message = match self.sender.try_send(message) {
            Ok(()) => {
                if self.counters.stalled.load(Ordering::Relaxed) {
                    self.counters.stalled.store(false, Ordering::Relaxed);
                }
                return Ok(());
            }
            Err(TrySendError::Disconnected(_)) => return Err(writer_gone()),
            Err(TrySendError::Full(message)) => message,
        };
        if self.lossy {
            self.counters
                .drop_line("the profile writer thread falls behind");
            return Ok(());
        }
        if self.counters.stalled.load(Ordering::Relaxed) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        match self.sender.send_timeout(message, self.max_wait) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => {
                self.counters
                    .drop_line("the profile writer thread is stalled");
                Ok(())
            }
            Err(SendTimeoutError::Disconnected(_)) => Err(writer_gone()),
        }
    }
}

fn writer_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the profile writer thread has stopped (its WriterGuard was dropped)",
    )
}

impl fmt::Debug for ProfileWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileWriter")
            .field("lossy", &self.lossy)
            .field("dropped_lines", &self.dropped_lines())
            .field("failed_lines", &self.failed_lines())
            .finish()
    }
}

impl<'a> MakeWriter<'a> for ProfileWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { writer: self }
    }
}

/// Queues each `write` as one line; returned by [`ProfileWriter`]'s
/// `MakeWriter` implementation.
#[derive(Debug)]
pub struct LineWriter<'a> {
    writer: &'a ProfileWriter,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.send(Message::Line(buf.to_vec()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The counters of a [`ProfileWriter`], cheap to clone.
#[derive(Clone)]
pub struct WriterCounters {
    counters: Arc<Counters>,
}

impl WriterCounters {
    /// See [`ProfileWriter::dropped_lines`].
    #[must_use]
    pub fn dropped_lines(&self) -> usize {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// See [`ProfileWriter::failed_lines`].
    #[must_use]
    pub fn failed_lines(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
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

/// Writes every queued line and stops the writer thread when dropped (waiting
/// at most the flush timeout, 5 s by default).
///
/// Keep it alive for as long as the service runs, typically by binding it in
/// `main`. **Do not bind it to `_`**: `let _ = ...` drops it at once, and
/// lines written afterwards are refused (and counted by the layer's
/// [`LayerStats::write_errors`](crate::LayerStats::write_errors)).
#[must_use = "dropping the guard stops the writer thread: bind it to a named variable"]
pub struct WriterGuard {
    sender: Sender<Message>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    timeout: Duration,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + self.timeout;
        // Behind every line queued so far, so the worker writes them first.
        if self
            .sender
            .send_deadline(Message::Shutdown, deadline)
            .is_err()
        {
            return;
        }
        if self.done.recv_deadline(deadline).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        } else {
            eprintln!(
                "tracing-osprofiler: the profile writer did not finish within {:?}; \
                 queued lines may be lost",
                self.timeout
            );
        }
    }
}

impl fmt::Debug for WriterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterGuard")
            .field("flush_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The background thread: writes lines in batches and keeps the destination
/// healthy.
struct Worker {
    receiver: Receiver<Message>,
    file: Option<RollingFileAppender>,
    needs_reopen: bool,
    last_reopen: Instant,
    /// The file being written to, as found in the directory after opening
    /// (and followed across rotations), with its identity: a file deleted
    /// or replaced under the writer is noticed before the next batch.
    current: Option<(PathBuf, FileId)>,
    last_scan: Instant,
    config: RollingFile,
    counters: Arc<Counters>,
}

const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// How often the directory is listed to follow a rotation.
const SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// What tells one file from another at the same path: the inode on Unix;
/// elsewhere only whether the path exists.
type FileId = u64;

fn file_id(path: &Path) -> io::Result<FileId> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(0)
    }
}

/// How long the writer thread naps when the queue is empty, and how many
/// naps in a row before it blocks (see `Worker::next_message`).
const NAP: Duration = Duration::from_millis(1);
const IDLE_NAPS: u32 = 20;

/// A batch is written once it holds this many bytes, or the queue is empty.
const BATCH_BYTES: usize = 256 * 1024;

/// Whole lines waiting for one `write` call.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    lines: u64,
}

impl Batch {
    fn push(&mut self, write_line: impl FnOnce(&mut Vec<u8>)) {
        write_line(&mut self.buf);
        self.lines += 1;
    }
}

impl Worker {
    fn run(mut self) {
        let mut batch = Batch::default();
        while let Some(first) = self.next_message() {
            self.check_destination();
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Line(line) => batch.push(|buf| buf.extend_from_slice(&line)),
                    Message::Pending(line) => batch.push(|buf| line.write_to(buf)),
                    Message::Shutdown => {
                        self.write_batch(&mut batch);
                        self.flush();
                        return;
                    }
                }
                if batch.buf.len() >= BATCH_BYTES {
                    self.write_batch(&mut batch);
                }
                next = self.receiver.try_recv().ok();
            }
            self.write_batch(&mut batch);
            self.flush();
        }
        self.write_batch(&mut batch);
        self.flush();
    }

    /// Waits for the next message. While lines keep coming, the thread naps
    /// between batches instead of blocking on the channel: a blocked
    /// receiver makes every send pay for waking it (a futex call on the
    /// profiled thread), a napping one costs the senders nothing. After
    /// `IDLE_NAPS` empty naps it blocks, so an idle service has an idle
    /// writer thread.
    fn next_message(&self) -> Option<Message> {
        for _ in 0..IDLE_NAPS {
            match self.receiver.try_recv() {
                Ok(message) => return Some(message),
                Err(crossbeam_channel::TryRecvError::Empty) => std::thread::sleep(NAP),
                Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
            }
        }
        self.receiver.recv().ok()
    }

    /// Re-opens the file when the directory or the file itself has gone
    /// or been replaced (writes to a deleted file would succeed and
    /// vanish), or the file failed, at most once a second.
    fn check_destination(&mut self) {
        let gone = !self.config.directory.is_dir() || self.file_gone();
        if gone {
            // Never write into a deleted file: those lines would be lost
            // silently.
            self.file = None;
        }
        if !(gone || self.needs_reopen || self.file.is_none())
            || self.last_reopen.elapsed() < REOPEN_INTERVAL
        {
            return;
        }
        self.last_reopen = Instant::now();
        match self.config.open() {
            Ok(file) => {
                self.file = Some(file);
                self.needs_reopen = false;
                self.current = self.newest_file();
            }
            Err(error) => self.report_failure(&error),
        }
    }

    /// Whether the file being written to was deleted or replaced; follows
    /// a rotation to the newer file (at once when the older one is pruned,
    /// otherwise once a second).
    fn file_gone(&mut self) -> bool {
        if self.last_scan.elapsed() >= SCAN_INTERVAL {
            self.follow_rotation();
        }
        let Some((path, id)) = &self.current else {
            return false;
        };
        match file_id(path) {
            Ok(now) => now != *id,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Pruned after a rotation (`with_max_files`), or deleted.
                let before = path.clone();
                self.follow_rotation();
                self.current
                    .as_ref()
                    .is_none_or(|(path, _)| *path <= before)
            }
            Err(_) => false,
        }
    }

    /// Moves `current` to a newer file of this writer, if there is one.
    fn follow_rotation(&mut self) {
        self.last_scan = Instant::now();
        if let Some(newest) = self.newest_file() {
            if self
                .current
                .as_ref()
                .is_none_or(|(path, _)| newest.0 > *path)
            {
                self.current = Some(newest);
            }
        }
    }

    /// The newest file of this writer in the directory: the greatest name
    /// with its prefix and suffix (tracing-appender names files
    /// `prefix.date.suffix`, dates in an order that sorts).
    fn newest_file(&self) -> Option<(PathBuf, FileId)> {
        let config = &self.config;
        let newest = std::fs::read_dir(&config.directory)
            .ok()?
            .filter_map(Result::ok)
            .filter(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                name.starts_with(config.prefix.as_str()) && name.ends_with(config.suffix.as_str())
            })
            .map(|entry| entry.path())
            .max()?;
        let id = file_id(&newest).ok()?;
        Some((newest, id))
    }

    /// Writes whole lines with one `write` call per batch (a few thousand
    /// lines under load), so the writer thread costs little CPU beside the
    /// service's; a refused batch counts all its lines as failed.
    fn write_batch(&mut self, batch: &mut Batch) {
        if batch.lines == 0 {
            return;
        }
        let lines = std::mem::take(&mut batch.lines);
        let result = match self.file.as_mut() {
            Some(file) => file.write_all(&batch.buf),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no log file is open",
            )),
        };
        batch.buf.clear();
        match result {
            Ok(()) => {
                if self.counters.failing.swap(false, Ordering::Relaxed) {
                    eprintln!("tracing-osprofiler: the profile log accepts lines again");
                }
            }
            Err(error) => {
                self.counters.failed.fetch_add(lines, Ordering::Relaxed);
                if self.file.is_some() {
                    self.needs_reopen = true;
                    self.report_failure(&error);
                }
            }
        }
    }

    fn report_failure(&self, error: &dyn fmt::Display) {
        if !self.counters.failing.swap(true, Ordering::Relaxed) {
            eprintln!(
                "tracing-osprofiler: cannot write to the profile log in {} ({error}); \
                 lines are counted as failed until it works again",
                self.config.directory.display()
            );
        }
    }

    fn flush(&mut self) {
        if let Some(file) = self.file.as_mut() {
            if let Err(error) = file.flush() {
                self.needs_reopen = true;
                self.report_failure(&error);
            }
        }
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

    fn lines_in(dir: &Path) -> Vec<String> {
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            lines.extend(text.lines().map(str::to_owned));
        }
        lines
    }

    fn write(writer: &ProfileWriter, text: &str) {
        writer.make_writer().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn guard_drop_writes_every_queued_line() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, guard) = RollingFile::new(dir.path()).build().unwrap();
        for i in 0..10_000 {
            write(&writer, &format!("line {i}\n"));
        }
        drop(guard);
        assert_eq!(lines_in(dir.path()).len(), 10_000);
        assert!(writer.make_writer().write_all(b"late\n").is_err());
    }

    #[test]
    fn a_deleted_directory_is_recreated() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("logs");
        let (writer, guard) = RollingFile::new(&dir)
            .with_rotation(Rotation::NEVER)
            .build()
            .unwrap();
        write(&writer, "before\n");
        std::thread::sleep(Duration::from_millis(50));
        std::fs::remove_dir_all(&dir).unwrap();
        // The first batch after the deletion is refused, not written into the
        // deleted file; from the next reopen on, lines land in the new directory.
        std::thread::sleep(REOPEN_INTERVAL);
        write(&writer, "after\n");
        drop(guard);
        assert_eq!(lines_in(&dir), vec!["after".to_string()]);
        assert_eq!(writer.failed_lines(), 0);
    }

    #[test]
    fn a_deleted_file_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, guard) = RollingFile::new(dir.path())
            .with_rotation(Rotation::NEVER)
            .build()
            .unwrap();
        let file = dir.path().join("osprofiler.log");
        write(&writer, "before\n");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(lines_in(dir.path()), vec!["before".to_string()]);
        std::fs::remove_file(&file).unwrap();
        // The deletion is seen before the next batch, which goes to a new
        // file (re-opened at most once a second).
        std::thread::sleep(REOPEN_INTERVAL);
        write(&writer, "after\n");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "after\n");
        // Replaced by another file (a new inode: the writer still holds
        // the old one open): lines go to the file at the path.
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, "someone else's\n").unwrap();
        std::thread::sleep(REOPEN_INTERVAL);
        write(&writer, "again\n");
        drop(guard);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "someone else's\nagain\n"
        );
        assert_eq!(writer.failed_lines(), 0);
    }

    #[test]
    fn a_stalled_queue_drops_and_counts_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let writer = ProfileWriter {
            sender,
            lossy: false,
            max_wait: Duration::from_millis(20),
            counters: Arc::default(),
        };
        let started = Instant::now();
        for _ in 0..1_000 {
            write(&writer, "x\n");
        }
        // One wait of max_wait, then immediate drops while the queue is full.
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(writer.dropped_lines(), 999);
        drop((receiver, dir));
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let err = RollingFile::new("/proc/self/cannot-create-here")
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot create log directory /proc/self/cannot-create-here: "),
            "{err}"
        );
    }
}
