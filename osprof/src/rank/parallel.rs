//! The rank scan without self time, on one thread per core, giving
//! exactly the figures of reading the lines one after the other.
//!
//! The logs are read a chunk at a time on one thread per core
//! ([`crate::source::chunks`]). A worker turns a chunk into a [`Summary`]:
//! the stop lines' names and durations in reading order, the unreadable
//! lines, the points started in the chunk and still open at its end, and
//! the ids of its stop lines. The reading thread adds the summaries up in
//! reading order:
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

use super::sketch::Sketch;
use super::{keeps, Agg, CountedDurations, RankOptions, Scanned};
use crate::scan::names::{mapped, Interner, WorkerNames};
use crate::scan::{id_key, Fields, LineParser, U128Map, Unread};
use crate::source::chunks::{read_chunks, Chunk, ChunkOptions, ChunkReader, Done};
use crate::source::{Inputs, MAX_LINE_LEN};
use crate::Error;
use crate::Filter;
use tracing_osprofiler::format::{parse_line, ParseError, Phase};

/// What a worker made of a chunk. Names are the worker's indexes.
#[derive(Default)]
pub(super) struct Summary {
    /// Lines in the chunk (blank and unreadable ones included).
    lines: u64,
    /// Names this worker met for the first time, in its index order, as
    /// read (not converted to UTF-8 yet).
    new_names: Vec<Box<[u8]>>,
    /// (name, duration, busy time when asked for) of the stop lines kept,
    /// in reading order.
    stops: Vec<(u32, f64, Option<f64>)>,
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
    }
}

/// [`super::scan`]: the chunks read on `workers` threads; see the module
/// docs.
pub(super) fn scan_parallel(
    inputs: &Inputs,
    options: &RankOptions,
    workers: usize,
    chunk_bytes: usize,
    window: usize,
) -> Result<Scanned, Error> {
    let mut agg = Agg::new();
    let mut maps = WorkerNames::default();
    let chunks = ChunkOptions {
        workers,
        chunk_bytes,
        window,
        mmap: options.mmap,
    };
    let reader = StopReader {
        filter: &options.filter,
        percentiles: options.percentiles,
        busy: options.busy,
        counted: CountedDurations::default(),
    };
    read_chunks(inputs, &reader, &chunks, |done| {
        add(&mut agg, &mut maps, inputs, done)
    })?;
    reader.counted.add_to(&mut agg.names, &mut agg.stats);
    Ok(agg.finish())
}

/// Adds a chunk's summary to the report's figures; `maps` has per worker
/// its name indexes to the report's.
fn add(
    agg: &mut Agg,
    maps: &mut WorkerNames<usize>,
    inputs: &Inputs,
    done: Done<'_, Summary>,
) -> Result<(), Error> {
    let sum = &*done.summary;
    let map = maps.add(done.worker, &sum.new_names, |name| agg.name(name));
    let name = |i: u32| mapped(map, i);
    for &(n, duration, busy) in &sum.stops {
        agg.record(name(n), duration, busy);
    }
    agg.unreadable
        .note_chunk(inputs, done.source, done.lines_before, &sum.unreadable);
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

/// Reads a chunk's stop lines and the starts it leaves open.
struct StopReader<'f> {
    filter: &'f Filter,
    percentiles: bool,
    busy: bool,
    counted: CountedDurations,
}

impl<'f> ChunkReader for StopReader<'f> {
    type Summary = Summary;
    type Worker = Lines<'f>;

    fn worker(&self) -> Lines<'f> {
        Lines {
            parser: LineParser::default(),
            names: Interner::default(),
            durations: self.percentiles.then(Vec::new),
            busy: self.busy,
            filter: self.filter,
        }
    }

    fn finish(&self, lines: Lines<'f>) {
        if let Some(durations) = lines.durations {
            self.counted.keep(lines.names, durations);
        }
    }

    fn read(&self, lines: &mut Lines<'f>, chunk: &Chunk<'_>, sum: &mut Summary) {
        sum.clear();
        lines.chunk(chunk.bytes, sum);
        if chunk.oversized_after {
            lines.too_long(sum);
        }
        lines.opens(chunk.bytes, sum);
    }

    fn lines(sum: &Summary) -> u64 {
        sum.lines
    }
}

/// A worker's line reader.
struct Lines<'f> {
    parser: LineParser,
    /// The names of this worker's stop lines, as read (not converted to
    /// UTF-8 yet).
    names: Interner,
    /// The durations by name, when percentiles are asked for.
    durations: Option<Vec<Sketch>>,
    /// Whether the busy times are asked for.
    busy: bool,
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
                let duration = fields.duration.unwrap_or(0.0);
                if let Some(durations) = &mut self.durations {
                    CountedDurations::count(durations, name, duration);
                }
                // Read only when asked for: Mistral's report costs what it did.
                let busy = if self.busy { fields.busy() } else { None };
                sum.stops.push((name, duration, busy));
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
                            let duration = line.duration.unwrap_or(0.0);
                            if let Some(durations) = &mut self.durations {
                                CountedDurations::count(durations, name, duration);
                            }
                            let busy = line.busy.filter(|_| self.busy);
                            sum.stops.push((name, duration, busy));
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
        self.names.intern_noted(name, &mut sum.new_names)
    }
}
