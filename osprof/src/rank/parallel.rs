//! The rank scan without self time, on one thread per core, giving
//! exactly the figures of reading the lines one after the other.
//!
//! This thread cuts the logs into chunks of whole lines: read into
//! buffers, or, with [`RankOptions::with_mmap`] on a plain file, as ranges
//! of windows of the file mapped into memory (no copy at all; see there
//! for the one risk). Workers, one thread per core counting this one
//! (which parses a chunk itself whenever it would otherwise wait), turn a
//! chunk into a [`Summary`]: the stop lines' names and durations in reading
//! order, the unreadable lines, the points started in the chunk and still
//! open at its end, and the ids of its stop lines. This thread adds the
//! summaries up in reading order:
//!
//! * the durations one by one, so every float sum is made in the order the
//!   lines are in (adding per-chunk partial sums would change
//!   the last bits), ties keep the first stop line read, and the
//!   unreadable lines keep their numbers;
//! * the open points by the rule that a start opens a point under its
//!   trace id (replacing one already open) and a stop closes whatever is
//!   open under it: per id only the last of these counts, so a chunk's
//!   effect is "remove every id it touched, then add the ids it left
//!   open". That costs this thread a look-up per open point or per id
//!   touched, whichever is fewer, instead of two per point. Here points
//!   are keyed by [`id_key`] of their trace id, not its value: the same
//!   equality, cheaper to get from the text.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

use crossbeam_channel::{Receiver, Sender};

use super::{keeps, Agg, RankOptions, Scanned};
use crate::scan::names::Interner;
use crate::scan::{id_key, Fields, LineParser, U128Map};
use crate::source::{Inputs, LineRef, Source, MAX_LINE_LEN};
use crate::{Error, Filter};
use tracing_osprofiler::format::{parse_line, ParseError, Phase};

/// Chunks handed out and not yet added up, at most (bounds the memory to a
/// few MiB whatever the input).
const IN_FLIGHT: usize = 16;

/// Whole lines of one log, for a worker.
struct Job {
    seq: u64,
    source: usize,
    /// The log's first chunk: its line numbers start at 1.
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

/// Where a chunk's bytes are.
enum Bytes {
    /// Read into a buffer (handed back for reuse).
    Read(Vec<u8>),
    /// A window of a mapped file (unmapped when its last chunk is done).
    Mapped(Arc<Mmap>),
}

/// The bytes of a mapped file whose lines one window holds (it maps
/// [`MAX_LINE_LEN`] more, for the last of them to end inside it).
pub(super) const WINDOW: usize = 8 << 20;

/// Why a line was not read.
#[derive(Clone, Copy)]
enum Unread {
    TooLong,
    Parse(ParseError),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::TooLong => f.write_str("line too long"),
            Unread::Parse(e) => e.fmt(f),
        }
    }
}

/// What a worker made of a chunk. Names are the worker's indexes.
#[derive(Default)]
struct Summary {
    seq: u64,
    source: usize,
    first: bool,
    worker: usize,
    /// Lines in the chunk (blank and unreadable ones included).
    lines: u64,
    /// Names this worker met for the first time, in its index order, as
    /// read (not converted to UTF-8 yet).
    new_names: Vec<Box<[u8]>>,
    /// (name, duration) of the stop lines kept, in reading order.
    stops: Vec<(u32, f64)>,
    /// (0-based index in the chunk, reason) of the unreadable lines.
    unreadable: Vec<(u64, Unread)>,
    /// The points started in the chunk and not stopped (yet): trace id to
    /// where the start line is (offset, length). A stop removes its id, so
    /// this stays as small as the points open at a time.
    open_here: U128Map<(u32, u32)>,
    /// The trace ids of the chunk's stop lines; with `open_here`, every id
    /// the chunk touched.
    stopped: Vec<u128>,
    /// A Bloom filter of `stopped` (one bit per id), which tells most ids
    /// the chunk did not stop without looking through `stopped`.
    stopped_bits: Vec<u64>,
    /// The entries of `open_here` (the worker's scratch list).
    opens_at: Vec<(u128, (u32, u32))>,
    /// The points the chunk left started: (name, begin, base id).
    opens: Vec<(u128, (u32, i64, u128))>,
    /// The chunk's buffer, handed back for reuse.
    data: Vec<u8>,
}

/// See [`Summary::touched`].
#[derive(Default)]
struct StoppedLookup {
    scans: usize,
    set: Option<U128Map<()>>,
}

/// Bits of [`Summary::stopped_bits`]: a few per stop line of a chunk.
const STOPPED_BITS: usize = 1 << 14;

impl Summary {
    /// The bit of `stopped_bits` for `id` (ids are random; a crafted log
    /// can only make more of them ask `stopped`).
    #[inline(always)]
    fn stopped_bit(id: u128) -> (usize, u64) {
        let h = ((id as u64) ^ (id >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bit = (h >> (64 - STOPPED_BITS.trailing_zeros())) as usize;
        (bit / 64, 1 << (bit % 64))
    }

    #[inline]
    fn start(&mut self, id: u128, at: (u32, u32)) {
        self.open_here.insert(id, at);
    }

    #[inline]
    fn stop(&mut self, id: u128) {
        self.open_here.remove(&id);
        self.stopped.push(id);
        if self.stopped_bits.is_empty() {
            self.stopped_bits.resize(STOPPED_BITS / 64, 0);
        }
        let (word, bit) = Self::stopped_bit(id);
        self.stopped_bits[word] |= bit;
    }

    /// Whether the chunk has a line about `id`. Ids the Bloom filter
    /// cannot rule out are looked for in `stopped`, one by one for the
    /// first few, then in a set of it built once.
    fn touched(&self, id: u128, lookup: &mut StoppedLookup) -> bool {
        if self.open_here.contains_key(&id) {
            return true;
        }
        let (word, bit) = Self::stopped_bit(id);
        if self.stopped_bits.get(word).is_none_or(|w| w & bit == 0) {
            return false;
        }
        if lookup.scans < 8 {
            lookup.scans += 1;
            return self.stopped.contains(&id);
        }
        lookup
            .set
            .get_or_insert_with(|| self.stopped.iter().map(|&id| (id, ())).collect())
            .contains_key(&id)
    }

    fn clear(&mut self) {
        self.lines = 0;
        self.new_names.clear();
        self.stops.clear();
        self.unreadable.clear();
        self.open_here.clear();
        self.stopped.clear();
        self.stopped_bits.clear();
        self.opens_at.clear();
        self.opens.clear();
        self.data = Vec::new();
    }
}

/// [`super::scan`] with the lines parsed on `workers` threads; see the
/// module docs.
pub(super) fn scan_parallel(
    inputs: &Inputs,
    options: &RankOptions,
    workers: usize,
    chunk_bytes: usize,
    window: usize,
) -> Result<Scanned, Error> {
    let workers = workers.max(1);
    let mut agg = Agg::new(options);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(IN_FLIGHT);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Summary>();
    let (free_tx, free_rx) = crossbeam_channel::unbounded::<Summary>();
    std::thread::scope(|scope| {
        // This thread works too (see `Pipe::receive`): one thread per core.
        // A thread the system refuses is one worker less (with none, this
        // thread does all the work), not a panic.
        for w in 1..workers {
            let (job_rx, done_tx, free_rx) = (job_rx.clone(), done_tx.clone(), free_rx.clone());
            let filter = &options.filter;
            let _ = std::thread::Builder::new()
                .name("osprof-rank".into())
                .spawn_scoped(scope, move || {
                    worker(w, filter, &job_rx, &done_tx, &free_rx)
                });
        }
        drop(done_tx);
        let mut pipe = Pipe {
            agg: &mut agg,
            inputs,
            jobs: Some(job_tx),
            own: (job_rx, Worker::new(0, &options.filter)),
            done: done_rx,
            free: free_tx,
            free_summaries: free_rx,
            sent: 0,
            next: 0,
            waiting: BTreeMap::new(),
            maps: vec![Vec::new(); workers],
            buffers: Vec::new(),
            line_no: 0,
            failed: None,
        };
        let read = read_logs(&mut pipe, chunk_bytes.max(1), window.max(1));
        // No more jobs: the workers end once they are done.
        pipe.jobs = None;
        while pipe.failed.is_none() && pipe.next < pipe.sent {
            pipe.receive();
        }
        read?;
        match pipe.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })?;
    Ok(agg.finish())
}

/// Hands every log, in reading order, to the workers.
fn read_logs(pipe: &mut Pipe<'_, '_>, chunk_bytes: usize, window: usize) -> Result<(), Error> {
    let inputs = pipe.inputs;
    for &i in inputs.reading_order() {
        let Some(source) = inputs.sources().get(i) else {
            continue;
        };
        if pipe.agg.options.mmap {
            if let Some((file, size)) = plain_file(source) {
                map_chunks(pipe, i, source, &file, size, chunk_bytes, window)?;
                continue;
            }
        }
        read_chunks(pipe, i, source, chunk_bytes)?;
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
fn map_chunks(
    pipe: &mut Pipe<'_, '_>,
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
fn read_chunks(
    pipe: &mut Pipe<'_, '_>,
    source_index: usize,
    source: &Source,
    chunk_bytes: usize,
) -> Result<(), Error> {
    let err = |e| Error::Read {
        name: source.to_string(),
        source: e,
    };
    let mut reader = crate::source::open(source)?;
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

/// The adding-up side of [`scan_parallel`], on the reading thread.
struct Pipe<'a, 'o> {
    agg: &'a mut Agg<'o>,
    inputs: &'a Inputs,
    jobs: Option<Sender<Job>>,
    /// The job queue and this thread's own worker (index 0), for the chunks
    /// it takes instead of waiting.
    own: (Receiver<Job>, Worker<'o>),
    done: Receiver<Summary>,
    free: Sender<Summary>,
    free_summaries: Receiver<Summary>,
    /// Chunks sent, and the next one to add up.
    sent: u64,
    next: u64,
    /// Summaries done out of order.
    waiting: BTreeMap<u64, Summary>,
    /// Per worker, its name indexes to the report's.
    maps: Vec<Vec<usize>>,
    /// Buffers of done chunks, for reuse.
    buffers: Vec<Vec<u8>>,
    /// Lines of the current log added up so far.
    line_no: u64,
    failed: Option<Error>,
}

impl Pipe<'_, '_> {
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
    /// thread parses a chunk from the queue itself, if there is one, rather
    /// than sleep: one thread per core, none idle.
    fn receive(&mut self) {
        let sum = loop {
            if let Some(sum) = self.waiting.remove(&self.next) {
                break sum;
            }
            if let Ok(sum) = self.done.try_recv() {
                self.waiting.insert(sum.seq, sum);
                continue;
            }
            let (jobs, worker) = &mut self.own;
            if let Ok(job) = jobs.try_recv() {
                let spare = self.free_summaries.try_recv().unwrap_or_default();
                let sum = worker.run(job, spare);
                self.waiting.insert(sum.seq, sum);
                continue;
            }
            match self.done.recv() {
                Ok(sum) => {
                    self.waiting.insert(sum.seq, sum);
                }
                Err(_) => {
                    self.failed = Some(workers_gone());
                    return;
                }
            }
        };
        self.next += 1;
        if let Err(e) = self.add(&sum) {
            self.failed = Some(e);
        }
        let mut sum = sum;
        let data = std::mem::take(&mut sum.data);
        if data.capacity() > 0 {
            self.buffers.push(data);
        }
        sum.clear();
        // The workers are gone only when the scan is over.
        let _ = self.free.send(sum);
    }

    fn add(&mut self, sum: &Summary) -> Result<(), Error> {
        let inputs = self.inputs;
        let agg = &mut *self.agg;
        let map = self.maps.get_mut(sum.worker).ok_or_else(workers_gone)?;
        for name in &sum.new_names {
            map.push(agg.name(String::from_utf8_lossy(name).as_bytes()));
        }
        let name = |i: u32| map.get(i as usize).copied().unwrap_or(0);
        for &(n, duration) in &sum.stops {
            agg.record(name(n), duration);
        }
        let base = if sum.first { 0 } else { self.line_no };
        self.line_no = base + sum.lines;
        for &(index, why) in &sum.unreadable {
            let line = LineRef {
                source: sum.source,
                line_no: base + index + 1,
                bytes: &[],
                oversized: matches!(why, Unread::TooLong),
            };
            agg.unreadable.note(inputs, &line, &why);
        }
        let open = &mut agg.open;
        if open.len() <= sum.open_here.len() + sum.stopped.len() {
            let mut lookup = StoppedLookup::default();
            open.retain(|&id, _| !sum.touched(id, &mut lookup));
        } else {
            for id in sum.open_here.keys().chain(&sum.stopped) {
                open.remove(id);
            }
        }
        for &(id, (n, begin, base_id)) in &sum.opens {
            open.insert(id, (name(n), begin, base_id));
        }
        Ok(())
    }
}

fn workers_gone() -> Error {
    Error::Read {
        name: String::from("-"),
        source: io::Error::other("a rank worker thread stopped"),
    }
}

/// A worker thread: turns each chunk it takes into a [`Summary`].
fn worker(
    index: usize,
    filter: &Filter,
    jobs: &Receiver<Job>,
    done: &Sender<Summary>,
    free: &Receiver<Summary>,
) {
    let mut worker = Worker::new(index, filter);
    for job in jobs.iter() {
        let sum = worker.run(job, free.try_recv().unwrap_or_default());
        if done.send(sum).is_err() {
            return;
        }
    }
}

/// What turns chunks into summaries, on a worker thread or on the reading
/// thread while it would otherwise wait.
struct Worker<'f> {
    index: usize,
    lines: Lines<'f>,
}

impl<'f> Worker<'f> {
    fn new(index: usize, filter: &'f Filter) -> Self {
        Worker {
            index,
            lines: Lines {
                parser: LineParser::default(),
                names: Interner::default(),
                filter,
            },
        }
    }

    /// The summary of `job`'s chunk, made in `sum` (an empty one).
    fn run(&mut self, job: Job, mut sum: Summary) -> Summary {
        sum.seq = job.seq;
        sum.source = job.source;
        sum.first = job.first;
        sum.worker = self.index;
        let Work {
            bytes,
            begin,
            end,
            oversized_after,
        } = job.work;
        let chunk = match &bytes {
            Bytes::Read(data) => data.get(begin..end),
            Bytes::Mapped(map) => map.get(begin..end),
        }
        .unwrap_or_default();
        self.lines.chunk(chunk, &mut sum);
        if oversized_after {
            self.lines.too_long(&mut sum);
        }
        self.lines.opens(chunk, &mut sum);
        if let Bytes::Read(data) = bytes {
            sum.data = data;
        }
        sum
    }
}

/// A worker's line reader.
struct Lines<'f> {
    parser: LineParser,
    /// The names of this worker's stop lines, as read (not converted to
    /// UTF-8 yet).
    names: Interner,
    filter: &'f Filter,
}

impl Lines<'_> {
    /// The lines of `data` (split as [`Inputs::for_each_line`] splits
    /// them): a line in the writers' layout is split and read in one pass
    /// ([`LineParser::fields_at`]), any other is cut at its `\n` first.
    fn chunk(&mut self, data: &[u8], sum: &mut Summary) {
        let mut start = 0;
        while let Some(text) = data.get(start..).filter(|t| !t.is_empty()) {
            let index = sum.lines;
            sum.lines += 1;
            if let Some((fields, len)) = self.parser.fields_at(text) {
                self.fields(&fields, (start as u32, len as u32), sum);
                start += len + 1;
                continue;
            }
            let len = memchr::memchr(b'\n', text).unwrap_or(text.len());
            self.other_line(&text[..len], index, start, sum);
            start += len + 1;
        }
    }

    fn too_long(&mut self, sum: &mut Summary) {
        sum.unreadable.push((sum.lines, Unread::TooLong));
        sum.lines += 1;
    }

    /// A line in the writers' layout, at `at` (start, length) in the chunk.
    /// A start is kept as where its line is: only the few still open at
    /// the end of the chunk are read again for their name and begin.
    #[inline]
    fn fields(&mut self, fields: &Fields<'_>, at: (u32, u32), sum: &mut Summary) {
        if !keeps(self.filter, fields) {
            return;
        }
        let trace_id = fields.trace_key();
        match fields.phase {
            Phase::Start => {
                sum.start(trace_id, at);
            }
            Phase::Stop => {
                let name = self.name(fields.name, sum);
                sum.stops.push((name, fields.duration.unwrap_or(0.0)));
                sum.stop(trace_id);
            }
        }
    }

    /// Any other line, the `index`-th of the chunk, starting at `start`.
    fn other_line(&mut self, bytes: &[u8], index: u64, start: usize, sum: &mut Summary) {
        if bytes.len() > MAX_LINE_LEN {
            sum.unreadable.push((index, Unread::TooLong));
            return;
        }
        match parse_line(bytes) {
            Ok(line) => {
                if self.filter.keeps(&line) {
                    let trace_id = id_key(line.ids.trace_id);
                    match line.phase {
                        Phase::Start => {
                            let at = (start as u32, bytes.len() as u32);
                            sum.start(trace_id, at);
                        }
                        Phase::Stop => {
                            let name = self.name(line.name.as_bytes(), sum);
                            sum.stops.push((name, line.duration.unwrap_or(0.0)));
                            sum.stop(trace_id);
                        }
                    }
                }
            }
            Err(ParseError::Blank) => {}
            Err(e) => sum.unreadable.push((index, Unread::Parse(e))),
        }
    }

    /// Lists the points the chunk left started, reading their start lines
    /// again (they were read once, so they parse).
    fn opens(&mut self, data: &[u8], sum: &mut Summary) {
        let mut starts = std::mem::take(&mut sum.opens_at);
        starts.extend(sum.open_here.iter().map(|(&id, &at)| (id, at)));
        for &(id, (start, len)) in &starts {
            let Some(bytes) = data.get(start as usize..start as usize + len as usize) else {
                continue;
            };
            let (name, begin, base_id) = if let Some(fields) = self.parser.fields(bytes) {
                let name = self.name(fields.name, sum);
                (name, fields.timestamp.unix_micros(), fields.base_id())
            } else if let Ok(line) = parse_line(bytes) {
                let name = self.name(line.name.as_bytes(), sum);
                (
                    name,
                    line.timestamp.unix_micros(),
                    line.ids.base_id.as_uuid().as_u128(),
                )
            } else {
                continue;
            };
            sum.opens.push((id, (name, begin, base_id)));
        }
        starts.clear();
        sum.opens_at = starts;
    }

    /// The worker's index of a name, by its bytes as read (two names the
    /// lossy UTF-8 conversion makes equal get two indexes here and one
    /// row in the report).
    #[inline]
    fn name(&mut self, name: &[u8], sum: &mut Summary) -> u32 {
        let (n, new) = self.names.intern(name);
        if new {
            sum.new_names.push(name.into());
        }
        n
    }
}
