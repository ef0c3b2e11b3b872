//! The rank scan without self time on several threads, giving exactly the
//! sequential scan's figures.
//!
//! This thread reads the logs into chunks of whole lines (small enough to
//! stay in a core's cache while a worker parses them). A worker turns a chunk into a [`Summary`]: the stop lines' names and
//! durations in reading order, the unreadable lines, and, per trace id, the
//! last thing the chunk did with it (started or stopped it). This thread
//! adds the summaries up in reading order:
//!
//! * the durations one by one, so every float sum is made in the order the
//!   sequential scan makes it (adding per-chunk partial sums would change
//!   the last bits), ties keep the first stop line read, and the
//!   unreadable lines keep their numbers;
//! * the open points by the rule that a start opens a point under its
//!   trace id (replacing one already open) and a stop closes whatever is
//!   open under it: per id only the last of these counts, so a chunk's
//!   effect is "remove every id it touched, then add the ids it left
//!   started". That costs this thread a look-up per open point or per id
//!   touched, whichever is fewer, instead of two per point.

use std::collections::BTreeMap;
use std::io::{self, Read};

use crossbeam_channel::{Receiver, Sender};

use super::super::read::{Inputs, LineRef, Source, MAX_LINE_LEN};
use super::super::scan::{LineParser, NameMap, U128Map};
use super::super::{Error, Filter};
use super::{keeps, Agg, RankOptions, Scanned};
use crate::format::{parse_line, ParseError, Phase};

/// Chunks handed out and not yet added up, at most (bounds the memory to a
/// few MiB whatever the input).
const IN_FLIGHT: usize = 8;

/// Whole lines of one log, for a worker.
struct Job {
    seq: u64,
    source: usize,
    /// The log's first chunk: its line numbers start at 1.
    first: bool,
    work: Work,
}

/// Whole lines in `data[begin..]` (the bytes before are the end of an
/// oversized line), then one more oversized line if `oversized_after`.
struct Work {
    data: Vec<u8>,
    begin: usize,
    oversized_after: bool,
}

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
    /// Names this worker met for the first time, in its index order.
    new_names: Vec<Box<[u8]>>,
    /// (name, duration) of the stop lines kept, in reading order.
    stops: Vec<(u32, f64)>,
    /// (0-based index in the chunk, reason) of the unreadable lines.
    unreadable: Vec<(u64, Unread)>,
    /// Per trace id the chunk touched: its start (name, begin, base id) if
    /// a start was the last line about it, `None` if a stop was.
    last: U128Map<Option<(u32, i64, u128)>>,
    /// The `Some` entries of `last`, listed by the worker.
    opens: Vec<(u128, (u32, i64, u128))>,
    /// The chunk's buffer, handed back for reuse.
    data: Vec<u8>,
    error: Option<io::Error>,
}

impl Summary {
    fn clear(&mut self) {
        self.lines = 0;
        self.new_names.clear();
        self.stops.clear();
        self.unreadable.clear();
        self.last.clear();
        self.opens.clear();
        self.data = Vec::new();
        self.error = None;
    }
}

/// [`super::scan`] with the lines parsed on `workers` threads; see the
/// module docs.
pub(super) fn scan_parallel(
    inputs: &Inputs,
    options: &RankOptions,
    workers: usize,
    chunk_bytes: usize,
) -> Result<Scanned, Error> {
    let mut agg = Agg::new(options);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(IN_FLIGHT);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Summary>();
    let (free_tx, free_rx) = crossbeam_channel::unbounded::<Summary>();
    std::thread::scope(|scope| {
        let mut started = 0;
        for w in 0..workers {
            let (job_rx, done_tx, free_rx) = (job_rx.clone(), done_tx.clone(), free_rx.clone());
            let filter = &options.filter;
            // A thread the system refuses is one worker less, not a panic.
            let spawned = std::thread::Builder::new()
                .name("osprof-rank".into())
                .spawn_scoped(scope, move || {
                    worker(w, filter, &job_rx, &done_tx, &free_rx)
                });
            started += usize::from(spawned.is_ok());
        }
        drop((done_tx, job_rx));
        if started == 0 {
            return inputs.for_each_line(|line| agg.line(inputs, line));
        }
        let mut pipe = Pipe {
            agg: &mut agg,
            inputs,
            jobs: Some(job_tx),
            done: done_rx,
            free: free_tx,
            sent: 0,
            next: 0,
            waiting: BTreeMap::new(),
            maps: vec![Vec::new(); workers],
            buffers: Vec::new(),
            line_no: 0,
            failed: None,
        };
        let read = read_logs(&mut pipe, chunk_bytes.max(1));
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
fn read_logs(pipe: &mut Pipe<'_, '_>, chunk_bytes: usize) -> Result<(), Error> {
    let inputs = pipe.inputs;
    for &i in inputs.reading_order() {
        let Some(source) = inputs.sources().get(i) else {
            continue;
        };
        read_chunks(pipe, i, source, chunk_bytes)?;
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
    let want = chunk_bytes as u64;
    let mut reader = super::super::read::open(source)?;
    let mut carry: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut first = true;
    while pipe.failed.is_none() {
        let mut data = pipe.buffers.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(&carry);
        carry.clear();
        let n = (&mut reader)
            .take(want)
            .read_to_end(&mut data)
            .map_err(err)?;
        let eof = (n as u64) < want;
        let mut begin = 0;
        if skipping {
            match memchr::memchr(b'\n', &data) {
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
            let tail = memchr::memrchr(b'\n', &data[begin..]).map_or(begin, |p| begin + p + 1);
            if data.len() - tail > MAX_LINE_LEN {
                // A line longer than the limit so far: counted once (after
                // this chunk's lines), its bytes skipped.
                oversized_after = true;
                skipping = true;
            } else {
                carry.extend_from_slice(&data[tail..]);
            }
            data.truncate(tail);
        }
        if data.len() > begin || oversized_after {
            let work = Work {
                data,
                begin,
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

/// The adding-up side of [`scan_parallel`], on the reading thread.
struct Pipe<'a, 'o> {
    agg: &'a mut Agg<'o>,
    inputs: &'a Inputs,
    jobs: Option<Sender<Job>>,
    done: Receiver<Summary>,
    free: Sender<Summary>,
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

    /// Waits for chunk `next` and adds it up.
    fn receive(&mut self) {
        let sum = loop {
            if let Some(sum) = self.waiting.remove(&self.next) {
                break sum;
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
        if let Some(e) = &sum.error {
            return Err(Error::Read {
                name: inputs
                    .sources()
                    .get(sum.source)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                source: io::Error::new(e.kind(), e.to_string()),
            });
        }
        let agg = &mut *self.agg;
        let map = self.maps.get_mut(sum.worker).ok_or_else(workers_gone)?;
        for name in &sum.new_names {
            map.push(agg.name(name));
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
        if open.len() <= sum.last.len() {
            open.retain(|id, _| !sum.last.contains_key(id));
        } else {
            for id in sum.last.keys() {
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

/// A worker: turns each chunk it takes into a [`Summary`].
fn worker(
    index: usize,
    filter: &Filter,
    jobs: &Receiver<Job>,
    done: &Sender<Summary>,
    free: &Receiver<Summary>,
) {
    let mut lines = Lines {
        parser: LineParser::default(),
        names: NameMap::default(),
        filter,
    };
    for job in jobs.iter() {
        let mut sum = free.try_recv().unwrap_or_default();
        sum.seq = job.seq;
        sum.source = job.source;
        sum.first = job.first;
        sum.worker = index;
        let Work {
            data,
            begin,
            oversized_after,
        } = job.work;
        lines.chunk(data.get(begin..).unwrap_or_default(), &mut sum);
        if oversized_after {
            lines.too_long(&mut sum);
        }
        sum.data = data;
        sum.opens.extend(
            sum.last
                .iter()
                .filter_map(|(&id, &start)| start.map(|s| (id, s))),
        );
        if done.send(sum).is_err() {
            return;
        }
    }
}

/// A worker's line reader.
struct Lines<'f> {
    parser: LineParser,
    names: NameMap<u32>,
    filter: &'f Filter,
}

impl Lines<'_> {
    /// The lines of `data` (split as [`Inputs::for_each_line`] splits them).
    fn chunk(&mut self, data: &[u8], sum: &mut Summary) {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            self.line(&data[start..nl], sum);
            start = nl + 1;
        }
        if start < data.len() {
            self.line(&data[start..], sum);
        }
    }

    fn too_long(&mut self, sum: &mut Summary) {
        sum.unreadable.push((sum.lines, Unread::TooLong));
        sum.lines += 1;
    }

    #[inline]
    fn line(&mut self, bytes: &[u8], sum: &mut Summary) {
        if bytes.len() > MAX_LINE_LEN {
            self.too_long(sum);
            return;
        }
        let index = sum.lines;
        sum.lines += 1;
        if let Some(fields) = self.parser.fields(bytes) {
            let lossy;
            let name = if fields.name.is_ascii() {
                fields.name
            } else {
                lossy = String::from_utf8_lossy(fields.name);
                lossy.as_bytes()
            };
            if keeps(self.filter, &fields, name) {
                let name = self.name(name, sum);
                match fields.phase {
                    Phase::Start => self.start(
                        name,
                        fields.trace_id(),
                        fields.timestamp.unix_micros(),
                        fields.base_id(),
                        sum,
                    ),
                    Phase::Stop => {
                        self.stop(name, fields.trace_id(), fields.duration.unwrap_or(0.0), sum);
                    }
                }
            }
            return;
        }
        match parse_line(bytes) {
            Ok(line) => {
                if self.filter.keeps(&line) {
                    let name = self.name(line.name.as_bytes(), sum);
                    let trace_id = line.ids.trace_id.as_uuid().as_u128();
                    match line.phase {
                        Phase::Start => self.start(
                            name,
                            trace_id,
                            line.timestamp.unix_micros(),
                            line.ids.base_id.as_uuid().as_u128(),
                            sum,
                        ),
                        Phase::Stop => self.stop(name, trace_id, line.duration.unwrap_or(0.0), sum),
                    }
                }
            }
            Err(ParseError::Blank) => {}
            Err(e) => sum.unreadable.push((index, Unread::Parse(e))),
        }
    }

    /// The worker's index of a name (its lossy UTF-8 bytes).
    #[inline]
    fn name(&mut self, name: &[u8], sum: &mut Summary) -> u32 {
        if let Some(&n) = self.names.get(name) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.insert(name.into(), n);
        sum.new_names.push(name.into());
        n
    }

    #[inline]
    fn start(&mut self, name: u32, trace_id: u128, begin: i64, base_id: u128, sum: &mut Summary) {
        sum.last.insert(trace_id, Some((name, begin, base_id)));
    }

    #[inline]
    fn stop(&mut self, name: u32, trace_id: u128, duration: f64, sum: &mut Summary) {
        sum.stops.push((name, duration));
        sum.last.insert(trace_id, None);
    }
}
