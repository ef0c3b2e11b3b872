//! Reading the logs a chunk at a time on one thread per core, for the
//! reports that can read a chunk of lines apart from the others and add
//! the results up in reading order.
//!
//! The reading thread cuts the logs, in reading order, into chunks of
//! whole lines of about 1 MiB: read into reused buffers, or, when asked
//! and for a plain file, as ranges of windows of the file mapped into
//! memory (no copy at all; see [`RankOptions::with_mmap`] for the one
//! risk). Workers, one thread per core counting the reading thread (which
//! reads a chunk itself whenever it would otherwise wait), turn each chunk
//! into a report's summary ([`ChunkReader`]); the reading thread hands the
//! summaries back to the report *in reading order* ([`Done`]), with the
//! numbers of their lines and their bytes, and at most [`IN_FLIGHT`]
//! chunks are out at a time, which bounds the memory whatever the input.
//! The lines are the ones [`Inputs::for_each_line`] gives, with the same
//! numbers, lines longer than [`MAX_LINE_LEN`] included (as oversized).
//!
//! [`RankOptions::with_mmap`]: crate::rank::RankOptions::with_mmap

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use memmap2::{Mmap, MmapOptions};

use super::{Inputs, Source, MAX_LINE_LEN};
use crate::Error;

/// Chunks handed out and not yet added up, at most.
pub(crate) const IN_FLIGHT: usize = 16;

/// Lines handed to a worker at a time, in bytes.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// The bytes of a mapped file whose lines one window holds (it maps
/// [`MAX_LINE_LEN`] more, for the last of them to end inside it).
pub(crate) const WINDOW: usize = 8 << 20;

/// Above this many bytes of files, chunks are read on one thread per
/// core; below, by the reading thread alone.
pub(crate) const PARALLEL_FROM: u64 = 16 << 20;

/// How [`read_chunks`] cuts and reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkOptions {
    /// Threads reading chunks, the calling one included.
    pub(crate) workers: usize,
    /// About how many bytes of lines a chunk has.
    pub(crate) chunk_bytes: usize,
    /// How many bytes of lines a mapped window holds.
    pub(crate) window: usize,
    /// Whether plain files are mapped rather than read.
    pub(crate) mmap: bool,
}

impl ChunkOptions {
    /// One thread per core for inputs of at least [`PARALLEL_FROM`] bytes
    /// of files, the calling thread alone for smaller ones (or stdin).
    pub(crate) fn for_inputs(inputs: &Inputs, mmap: bool) -> Self {
        let size: Option<u64> = inputs
            .sources()
            .iter()
            .map(|s| match s {
                Source::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
                _ => None,
            })
            .sum();
        let workers = if size.is_some_and(|s| s >= PARALLEL_FROM) {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            1
        };
        ChunkOptions {
            workers,
            chunk_bytes: CHUNK_BYTES,
            window: WINDOW,
            mmap,
        }
    }
}

/// What a report makes of one chunk, on any thread.
pub(crate) trait ChunkReader: Sync {
    /// A chunk's summary; reused from chunk to chunk.
    type Summary: Default + Send;
    /// A worker's own state, kept from chunk to chunk.
    type Worker: Send;

    /// A new worker's state.
    fn worker(&self) -> Self::Worker;

    /// Reads `chunk` into `sum`, which may hold an earlier chunk's summary.
    fn read(&self, worker: &mut Self::Worker, chunk: &Chunk<'_>, sum: &mut Self::Summary);

    /// How many lines `sum` covers, oversized ones included.
    fn lines(sum: &Self::Summary) -> u64;

    /// Takes a worker's state when it has read its last chunk (what it
    /// kept apart from the summaries, for the report to add up after
    /// [`read_chunks`]).
    fn finish(&self, worker: Self::Worker) {
        let _ = worker;
    }
}

/// Whole lines of one log.
#[derive(Debug)]
pub(crate) struct Chunk<'a> {
    /// The chunk's number, in reading order.
    pub(crate) seq: u64,
    /// The lines, each ended by `\n` but maybe the last.
    pub(crate) bytes: &'a [u8],
    /// Whether one more line, too long to keep, follows them.
    pub(crate) oversized_after: bool,
}

/// A chunk's summary, handed back in reading order.
#[derive(Debug)]
pub(crate) struct Done<'a, S> {
    /// The summary.
    pub(crate) summary: &'a mut S,
    /// Which worker made it (0 is the reading thread): its own indexes.
    pub(crate) worker: usize,
    /// The log (index in the order given).
    pub(crate) source: usize,
    /// Lines of that log before the chunk's first.
    pub(crate) lines_before: u64,
    /// The chunk itself.
    pub(crate) chunk: Chunk<'a>,
}

/// A job for a worker.
struct Job {
    seq: u64,
    source: usize,
    first: bool,
    work: Work,
}

/// Whole lines in `bytes[begin..end]`, then one more oversized line if
/// `oversized_after`.
struct Work {
    bytes: Bytes,
    begin: usize,
    end: usize,
    oversized_after: bool,
}

impl Work {
    fn chunk(&self, seq: u64) -> Chunk<'_> {
        let bytes = match &self.bytes {
            Bytes::Read(data) => data.get(self.begin..self.end),
            Bytes::Mapped(map) => map.get(self.begin..self.end),
        };
        Chunk {
            seq,
            bytes: bytes.unwrap_or_default(),
            oversized_after: self.oversized_after,
        }
    }
}

/// Where a chunk's bytes are.
enum Bytes {
    /// Read into a buffer (handed back for reuse).
    Read(Vec<u8>),
    /// A window of a mapped file (unmapped when its last chunk is done).
    Mapped(Arc<Mmap>),
}

/// A job done: the job and its summary.
struct Envelope<S> {
    job: Job,
    worker: usize,
    summary: S,
}

/// Reads `inputs` a chunk at a time with `reader` on
/// `options.workers` threads, and calls `add` with each chunk's summary,
/// in reading order, on this thread. Stops at the first error, from
/// reading or from `add`.
pub(crate) fn read_chunks<R, A>(
    inputs: &Inputs,
    reader: &R,
    options: &ChunkOptions,
    add: A,
) -> Result<(), Error>
where
    R: ChunkReader,
    A: FnMut(Done<'_, R::Summary>) -> Result<(), Error>,
{
    let workers = options.workers.max(1);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(IN_FLIGHT);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Envelope<R::Summary>>();
    let (free_tx, free_rx) = crossbeam_channel::unbounded::<R::Summary>();
    std::thread::scope(|scope| {
        // A thread the system refuses is one worker less (with none, this
        // thread does all the work), not a panic.
        for w in 1..workers {
            let (job_rx, done_tx, free_rx) = (job_rx.clone(), done_tx.clone(), free_rx.clone());
            let _ = std::thread::Builder::new()
                .name("osprof-read".into())
                .spawn_scoped(scope, move || {
                    let mut state = reader.worker();
                    for job in job_rx.iter() {
                        let mut summary = free_rx.try_recv().unwrap_or_default();
                        reader.read(&mut state, &job.work.chunk(job.seq), &mut summary);
                        let done = Envelope {
                            job,
                            worker: w,
                            summary,
                        };
                        if done_tx.send(done).is_err() {
                            break;
                        }
                    }
                    reader.finish(state);
                });
        }
        drop(done_tx);
        let mut pipe = Pipe {
            inputs,
            reader,
            add,
            jobs: Some(job_tx),
            own: (job_rx, reader.worker()),
            done: done_rx,
            free: free_tx,
            free_summaries: free_rx,
            sent: 0,
            next: 0,
            waiting: BTreeMap::new(),
            buffers: Vec::new(),
            line_no: 0,
            failed: None,
        };
        let read = read_logs(&mut pipe, options);
        // No more jobs: the workers end once they are done.
        pipe.jobs = None;
        while pipe.failed.is_none() && pipe.next < pipe.sent {
            pipe.receive();
        }
        let failed = pipe.failed.take();
        reader.finish(pipe.own.1);
        read?;
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

/// Hands every log, in reading order, to the workers.
fn read_logs<R: ChunkReader, A: FnMut(Done<'_, R::Summary>) -> Result<(), Error>>(
    pipe: &mut Pipe<'_, '_, R, A>,
    options: &ChunkOptions,
) -> Result<(), Error> {
    let inputs = pipe.inputs;
    let (chunk_bytes, window) = (options.chunk_bytes.max(1), options.window.max(1));
    for &i in inputs.reading_order() {
        let Some(source) = inputs.sources().get(i) else {
            continue;
        };
        if options.mmap {
            if let Some((file, size)) = plain_file(source) {
                map_chunks(pipe, i, source, &file, size, chunk_bytes, window)?;
                continue;
            }
        }
        read_file_chunks(pipe, i, source, chunk_bytes)?;
    }
    Ok(())
}

/// A regular file that is not gzip, and its size: one to map.
fn plain_file(source: &Source) -> Option<(File, u64)> {
    let Source::Path(path) = source else {
        return None;
    };
    let mut file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut magic = [0u8; 2];
    let n = read_full(&mut file, &mut magic).ok()?;
    if n == 2 && magic == [0x1f, 0x8b] {
        return None;
    }
    Some((file, meta.len()))
}

/// Cuts a mapped file into chunks of whole lines of about `chunk_bytes`:
/// the lines [`Inputs::for_each_line`] gives, with the same numbers. The
/// file is mapped the lines of `window` bytes (see [`WINDOW`]) at a time,
/// so that only the windows chunks in flight use are mapped (and count in
/// the process's memory).
fn map_chunks<R: ChunkReader, A: FnMut(Done<'_, R::Summary>) -> Result<(), Error>>(
    pipe: &mut Pipe<'_, '_, R, A>,
    source_index: usize,
    source: &Source,
    file: &File,
    size: u64,
    chunk_bytes: usize,
    window: usize,
) -> Result<(), Error> {
    let err = |e| Error::Read {
        name: source.to_string(),
        source: e,
    };
    let mut pos = 0u64;
    let mut first = true;
    // Inside a line longer than `MAX_LINE_LEN`, already counted.
    let mut skipping = false;
    while pos < size && pipe.failed.is_none() {
        let len = usize::try_from(size - pos)
            .unwrap_or(usize::MAX)
            .min(window + MAX_LINE_LEN + 1);
        // SAFETY: the map is read-only and only read as bytes. It is
        // undefined behaviour in Rust's terms only if the file changes
        // under it: appended bytes are not seen (`len` was fixed from the
        // size), and a file cut shorter makes reading the lost pages raise
        // SIGBUS, which is why the library maps only when asked (see
        // `RankOptions::with_mmap`).
        let map = unsafe { MmapOptions::new().offset(pos).len(len).map(file) }.map_err(err)?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        let map = Arc::new(map);
        let at_eof = pos + len as u64 == size;
        let mut at = 0;
        if skipping {
            match memchr::memchr(b'\n', &map) {
                Some(p) => {
                    skipping = false;
                    at = p + 1;
                }
                None => {
                    pos += len as u64;
                    continue;
                }
            }
        }
        // Lines that start before `cut` are this window's.
        let cut = window.min(len);
        while at < cut && pipe.failed.is_none() {
            let want = (at + chunk_bytes).min(cut);
            let end = match memchr::memrchr(b'\n', &map[at..want]) {
                Some(p) => at + p + 1,
                // One line from `at` to past `want`.
                None => {
                    // (Past `want` when the line is already too long.)
                    let limit = len.min(at + MAX_LINE_LEN + 1).max(want);
                    match memchr::memchr(b'\n', &map[want..limit]) {
                        Some(p) => want + p + 1,
                        None if at_eof && len - at <= MAX_LINE_LEN => len,
                        None => {
                            // Longer than the limit: counted once, its
                            // bytes skipped.
                            let work = Work {
                                bytes: Bytes::Mapped(Arc::clone(&map)),
                                begin: at,
                                end: at,
                                oversized_after: true,
                            };
                            pipe.send(source_index, first, work);
                            first = false;
                            skipping = true;
                            at = limit;
                            break;
                        }
                    }
                }
            };
            let work = Work {
                bytes: Bytes::Mapped(Arc::clone(&map)),
                begin: at,
                end,
                oversized_after: false,
            };
            pipe.send(source_index, first, work);
            first = false;
            at = end;
        }
        pos += at as u64;
    }
    Ok(())
}

/// Reads one log here into chunks of whole lines of about `chunk_bytes`,
/// cut after the last `\n`, the rest carried to the next chunk. The lines
/// are the ones [`Inputs::for_each_line`] gives, with the same numbers.
fn read_file_chunks<R: ChunkReader, A: FnMut(Done<'_, R::Summary>) -> Result<(), Error>>(
    pipe: &mut Pipe<'_, '_, R, A>,
    source_index: usize,
    source: &Source,
    chunk_bytes: usize,
) -> Result<(), Error> {
    let err = |e| Error::Read {
        name: source.to_string(),
        source: e,
    };
    let mut reader = super::open(source)?;
    let mut carry: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut first = true;
    while pipe.failed.is_none() {
        // Buffers keep their length (zero-filled once), and reads of the
        // whole chunk size go past the `BufReader` straight into them.
        let mut data = pipe.buffers.pop().unwrap_or_default();
        let need = carry.len() + chunk_bytes;
        if data.len() < need {
            data.resize(need, 0);
        }
        data[..carry.len()].copy_from_slice(&carry);
        let got = read_full(&mut reader, &mut data[carry.len()..need]).map_err(err)?;
        let mut end = carry.len() + got;
        carry.clear();
        let eof = got < chunk_bytes;
        let mut begin = 0;
        if skipping {
            match memchr::memchr(b'\n', &data[..end]) {
                Some(p) => {
                    skipping = false;
                    begin = p + 1;
                }
                None => {
                    pipe.buffers.push(data);
                    if eof {
                        break;
                    }
                    continue;
                }
            }
        }
        let mut oversized_after = false;
        if !eof {
            let tail = memchr::memrchr(b'\n', &data[begin..end]).map_or(begin, |p| begin + p + 1);
            if end - tail > MAX_LINE_LEN {
                // A line longer than the limit so far: counted once (after
                // this chunk's lines), its bytes skipped.
                oversized_after = true;
                skipping = true;
            } else {
                carry.extend_from_slice(&data[tail..end]);
            }
            end = tail;
        }
        if end > begin || oversized_after {
            let work = Work {
                bytes: Bytes::Read(data),
                begin,
                end,
                oversized_after,
            };
            pipe.send(source_index, first, work);
            first = false;
        } else {
            pipe.buffers.push(data);
        }
        if eof {
            break;
        }
    }
    Ok(())
}

/// Fills `buf` from `reader`; fewer bytes only at the end of the input.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The reading thread's side of [`read_chunks`].
struct Pipe<'a, 'r, R: ChunkReader, A> {
    inputs: &'a Inputs,
    reader: &'r R,
    add: A,
    jobs: Option<Sender<Job>>,
    /// The job queue and this thread's own worker state, for the chunks
    /// it reads instead of waiting.
    own: (Receiver<Job>, R::Worker),
    done: Receiver<Envelope<R::Summary>>,
    free: Sender<R::Summary>,
    free_summaries: Receiver<R::Summary>,
    /// Chunks sent, and the next one to add up.
    sent: u64,
    next: u64,
    /// Summaries done out of order.
    waiting: BTreeMap<u64, Envelope<R::Summary>>,
    /// Buffers of done chunks, for reuse.
    buffers: Vec<Vec<u8>>,
    /// Lines of the current log added up so far.
    line_no: u64,
    failed: Option<Error>,
}

impl<R: ChunkReader, A: FnMut(Done<'_, R::Summary>) -> Result<(), Error>> Pipe<'_, '_, R, A> {
    /// Sends a job, first adding up done chunks while too many are in
    /// flight.
    fn send(&mut self, source: usize, first: bool, work: Work) {
        while self.failed.is_none() && self.sent - self.next >= IN_FLIGHT as u64 {
            self.receive();
        }
        if self.failed.is_some() {
            return;
        }
        let job = Job {
            seq: self.sent,
            source,
            first,
            work,
        };
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => self.sent += 1,
            _ => self.failed = Some(workers_gone()),
        }
    }

    /// Waits for chunk `next` and adds it up. While it is not done, this
    /// thread reads a chunk from the queue itself, if there is one, rather
    /// than sleep: one thread per core, none idle.
    fn receive(&mut self) {
        let done = loop {
            if let Some(done) = self.waiting.remove(&self.next) {
                break done;
            }
            if let Ok(done) = self.done.try_recv() {
                self.waiting.insert(done.job.seq, done);
                continue;
            }
            let (jobs, state) = &mut self.own;
            if let Ok(job) = jobs.try_recv() {
                let mut summary = self.free_summaries.try_recv().unwrap_or_default();
                self.reader
                    .read(state, &job.work.chunk(job.seq), &mut summary);
                let done = Envelope {
                    job,
                    worker: 0,
                    summary,
                };
                self.waiting.insert(done.job.seq, done);
                continue;
            }
            match self.done.recv() {
                Ok(done) => {
                    self.waiting.insert(done.job.seq, done);
                }
                Err(_) => {
                    self.failed = Some(workers_gone());
                    return;
                }
            }
        };
        self.next += 1;
        let Envelope {
            job,
            worker,
            mut summary,
        } = done;
        let lines_before = if job.first { 0 } else { self.line_no };
        self.line_no = lines_before + R::lines(&summary);
        let added = (self.add)(Done {
            summary: &mut summary,
            worker,
            source: job.source,
            lines_before,
            chunk: job.work.chunk(job.seq),
        });
        if let Err(e) = added {
            self.failed = Some(e);
        }
        if let Bytes::Read(data) = job.work.bytes {
            self.buffers.push(data);
        }
        // The workers are gone only when the reading is over.
        let _ = self.free.send(summary);
    }
}

fn workers_gone() -> Error {
    Error::Read {
        name: String::from("-"),
        source: io::Error::other("a worker thread stopped"),
    }
}
