//! `rank --self`: the self time of every point, on one thread per core.
//!
//! A point's self time needs its begin (its start line) and its children's
//! intervals (their stop lines), which are almost always close to it in
//! the log: a worker reading a chunk ([`crate::source::chunks`]) matches the
//! starts, stops and children it holds, and computes the self time of each
//! point that starts and stops in it. What crosses a chunk's edge goes to
//! the reading thread, which adds the chunks up in reading order with the
//! points still open from earlier chunks:
//!
//! * a stop whose point was not started in the chunk (nor stopped earlier
//!   in it) is an [`Event::Stop`]: its begin and children are those of the
//!   point open from an earlier chunk, if any;
//! * a child interval whose parent is not open in the chunk is an
//!   [`Event::Child`]: it goes to the parent open from an earlier chunk,
//!   or, when no parent is open (another service's log, a child that
//!   outlived its parent), to the children read again in a second pass;
//! * the points the chunk leaves open, with the children they have so far,
//!   become points open for the next chunks; every id the chunk touched is
//!   closed first, as reading the lines one after the other would.
//!
//! The one case a chunk cannot be summarized apart: a stop of a point
//! started in an earlier chunk whose parent started in this chunk (a
//! parent that starts after its child, as only forged or merged logs
//! have). Such a chunk is read again by the reading thread, one line after
//! the other, with the open points of the report itself. The figures are
//! therefore those of reading every line in order (tests check it against
//! that reference on random logs, any number of threads and any chunk
//! size); the float sums are made in line order, as in [`super::parallel`].

use tracing_osprofiler::format::Phase;

use super::sketch::Sketch;
use super::{intern, record_stop, CountedDurations, NameStats, RankOptions, Scanned, COMPACT_AT};
use crate::model::{merge_intervals, secs_to_micros, uncovered_micros};
use crate::scan::chunk_ids::{ChunkIds, Touched};
use crate::scan::names::{mapped, Interner, WorkerNames};
use crate::scan::{
    for_each_chunk_line, id_key, key_id, reread_start, KeyedLine, LineParser, U128Map, Unread,
};
use crate::source::chunks::{read_chunks, Chunk, ChunkOptions, ChunkReader, Done};
use crate::source::Inputs;
use crate::{Error, Filter, Unreadable};

/// Children's intervals (microseconds) by their parent's trace id key.
pub(super) type Children = U128Map<Vec<(i64, i64)>>;

/// The scan with self time: one pass, and a second one with the children
/// whose parent was not open when they stopped, when there are any.
pub(super) fn scan_with_self_time(
    inputs: &Inputs,
    options: &RankOptions,
    chunks: &ChunkOptions,
) -> Result<Scanned, Error> {
    let mut late = Children::default();
    let first = pass(
        inputs,
        options,
        chunks,
        &Children::default(),
        Some(&mut late),
    )?;
    if late.is_empty() {
        return Ok(first);
    }
    pass(inputs, options, chunks, &late, None)
}

/// One read of the logs: `extra` children are added to their parents;
/// children whose parent is not open when they stop go to `late`.
fn pass(
    inputs: &Inputs,
    options: &RankOptions,
    chunks: &ChunkOptions,
    extra: &Children,
    late: Option<&mut Children>,
) -> Result<Scanned, Error> {
    let reader = SelfTimeReader {
        filter: &options.filter,
        extra,
        percentiles: options.percentiles,
        counted: CountedDurations::default(),
    };
    let mut agg = Agg {
        names: Interner::default(),
        stats: Vec::new(),
        open: U128Map::default(),
        late,
        extra,
        stops: 0,
        unreadable: Unreadable::default(),
        options,
        maps: WorkerNames::default(),
        parser: LineParser::default(),
    };
    read_chunks(inputs, &reader, chunks, |done| agg.add(inputs, done))?;
    reader.counted.add_to(&mut agg.names, &mut agg.stats);
    Ok(Scanned {
        stats: agg.stats,
        open: agg
            .open
            .into_values()
            .map(|o| (o.name, o.begin, key_id(o.base)))
            .collect(),
        unreadable: agg.unreadable,
    })
}

/// What happened in a chunk that needs the points open from earlier ones.
#[derive(Debug)]
enum Event {
    /// A stop line whose point was not started in the chunk (nor stopped
    /// earlier in it).
    Stop {
        /// Index of its entry in [`Summary::stops`].
        stop: usize,
        trace: u128,
        parent: u128,
        base: u128,
        /// The stop line's timestamp and the duration, in microseconds.
        at: i64,
        micros: i64,
        /// Whether the parent's id was closed earlier in the chunk.
        parent_closed: bool,
    },
    /// A child's interval whose parent is not open in the chunk.
    Child {
        parent: u128,
        span: (i64, i64),
        /// Whether the parent's id was closed earlier in the chunk (then
        /// only the second pass can use it).
        parent_closed: bool,
        /// Whether the second pass should have it when no parent is open:
        /// not for a request's first point (whose parent is the request).
        late: bool,
    },
}

/// A point started in the chunk (the start line at `at`, start and
/// length) and not stopped yet, with the children that stopped so far.
#[derive(Debug)]
struct Started {
    at: (u32, u32),
    begin: i64,
    children: Vec<(i64, i64)>,
}

/// What a worker made of a chunk. Names are the worker's indexes.
#[derive(Debug, Default)]
pub(super) struct Summary {
    lines: u64,
    /// Names the worker met for the first time, in its index order.
    new_names: Vec<Box<[u8]>>,
    /// (name, duration, self time in microseconds) of the stop lines kept,
    /// in reading order; the self time of an [`Event::Stop`] is 0 here.
    /// The busy time is the stop line's, when it gives one (kept only when
    /// asked for, where the stops are added up).
    stops: Vec<(u32, f64, i64, Option<f64>)>,
    /// (index in the chunk, reason) of the unreadable lines.
    unreadable: Vec<(u64, Unread)>,
    events: Vec<Event>,
    /// Every id the chunk touched, and the points open in it.
    ids: ChunkIds<Started>,
    /// The points the chunk left open, by trace id key.
    opens: Vec<(u128, LeftOpen)>,
    /// Whether the chunk must be read again in order (see the module docs).
    redo: bool,
}

impl Summary {
    fn clear(&mut self) {
        self.lines = 0;
        self.new_names.clear();
        self.stops.clear();
        self.unreadable.clear();
        self.events.clear();
        self.ids.clear();
        self.opens.clear();
        self.redo = false;
    }
}

/// A point a chunk left open.
#[derive(Debug)]
struct LeftOpen {
    /// The worker's index of its name.
    name: u32,
    begin: i64,
    base: u128,
    children: Vec<(i64, i64)>,
}

/// The workers' side.
struct SelfTimeReader<'a> {
    filter: &'a Filter,
    extra: &'a Children,
    percentiles: bool,
    counted: CountedDurations,
}

/// A worker's state.
pub(super) struct Worker {
    parser: LineParser,
    names: Interner,
    /// The durations by name, when percentiles are asked for.
    durations: Option<Vec<Sketch>>,
    /// Emptied child lists, for reuse.
    pool: Vec<Vec<(i64, i64)>>,
}

impl Worker {
    #[inline]
    fn name(&mut self, name: &[u8], sum: &mut Summary) -> u32 {
        self.names.intern_noted(name, &mut sum.new_names)
    }
}

impl ChunkReader for SelfTimeReader<'_> {
    type Summary = Summary;
    type Worker = Worker;

    fn worker(&self) -> Worker {
        Worker {
            parser: LineParser::default(),
            names: Interner::default(),
            durations: self.percentiles.then(Vec::new),
            pool: Vec::new(),
        }
    }

    fn finish(&self, worker: Worker) {
        if let Some(durations) = worker.durations {
            self.counted.keep(worker.names, durations);
        }
    }

    fn read(&self, worker: &mut Worker, chunk: &Chunk<'_>, sum: &mut Summary) {
        sum.clear();
        let mut parser = std::mem::take(&mut worker.parser);
        let lines = for_each_chunk_line(
            &mut parser,
            chunk.bytes,
            #[inline(always)]
            |index, at, line| match line {
                Err(why) => sum.unreadable.push((index, why)),
                Ok(line) if keeps(self.filter, &line) => match line.phase {
                    Phase::Start => {
                        let children = worker.pool.pop().unwrap_or_default();
                        let begin = line.timestamp.unix_micros();
                        let open = Started {
                            at,
                            begin,
                            children,
                        };
                        if let Some(replaced) = sum.ids.start(line.trace, open) {
                            recycle(&mut worker.pool, replaced.children);
                        }
                    }
                    Phase::Stop => self.stop(worker, &line, sum),
                },
                Ok(_) => {}
            },
        );
        sum.lines = lines;
        if chunk.oversized_after {
            sum.unreadable.push((sum.lines, Unread::TooLong));
            sum.lines += 1;
        }
        // The points left open, their start lines read again for their
        // name and request.
        let Summary {
            ids,
            opens,
            new_names,
            ..
        } = sum;
        for (trace, started) in ids.drain_open() {
            let Some((name, _, base)) = reread_start(&mut parser, chunk.bytes, started.at) else {
                continue;
            };
            let point = LeftOpen {
                name: worker.names.intern_noted(&name, new_names),
                begin: started.begin,
                base,
                children: started.children,
            };
            opens.push((trace, point));
        }
        worker.parser = parser;
    }

    fn lines(sum: &Summary) -> u64 {
        sum.lines
    }
}

impl SelfTimeReader<'_> {
    fn stop(&self, worker: &mut Worker, line: &KeyedLine<'_>, sum: &mut Summary) {
        let duration = line.duration.unwrap_or(0.0);
        let micros = secs_to_micros(duration).max(0);
        let at = line.timestamp.unix_micros();
        let name = worker.name(line.name, sum);
        if let Some(durations) = &mut worker.durations {
            CountedDurations::count(durations, name, duration);
        }
        let (begin, mut children) = match sum.ids.stop(line.trace) {
            Touched::Open(started) => (started.begin, started.children),
            Touched::Closed => (
                at.saturating_sub(micros),
                worker.pool.pop().unwrap_or_default(),
            ),
            Touched::Untouched => {
                // Started in an earlier chunk, or never: the reading
                // thread knows.
                let parent_closed = match sum.ids.state(line.parent) {
                    Touched::Open(()) => {
                        sum.redo = true;
                        false
                    }
                    Touched::Closed => true,
                    Touched::Untouched => false,
                };
                sum.stops.push((name, duration, 0, line.busy));
                sum.events.push(Event::Stop {
                    stop: sum.stops.len() - 1,
                    trace: line.trace,
                    parent: line.parent,
                    base: line.base,
                    at,
                    micros,
                    parent_closed,
                });
                return;
            }
        };
        if let Some(more) = self.extra.get(&line.trace) {
            children.extend_from_slice(more);
        }
        let end = begin.saturating_add(micros);
        let self_micros = uncovered_micros(begin, end, &mut children);
        recycle(&mut worker.pool, children);
        sum.stops.push((name, duration, self_micros, line.busy));
        let late = !line.parent_is_base && !line.parent_is_trace;
        if let Some(parent) = sum.ids.open_mut(line.parent) {
            parent.children.push((begin, end));
            if parent.children.len() >= COMPACT_AT {
                merge_intervals(&mut parent.children);
            }
            return;
        }
        let parent_closed = match sum.ids.state(line.parent) {
            Touched::Closed if !late => return,
            Touched::Closed => true,
            _ => false,
        };
        sum.events.push(Event::Child {
            parent: line.parent,
            span: (begin, end),
            parent_closed,
            late,
        });
    }
}

fn recycle(pool: &mut Vec<Vec<(i64, i64)>>, mut children: Vec<(i64, i64)>) {
    children.clear();
    if pool.len() < 64 {
        pool.push(children);
    }
}

/// `Filter::keeps` on a keyed line.
#[inline(always)]
fn keeps(filter: &Filter, line: &KeyedLine<'_>) -> bool {
    filter.keeps_everything() || keeps_keyed(filter, line)
}

#[inline(never)]
fn keeps_keyed(filter: &Filter, line: &KeyedLine<'_>) -> bool {
    (filter.base_ids.is_empty() || filter.base_ids.iter().any(|&id| id_key(id) == line.base))
        && filter.keeps_time(line.timestamp)
        && (filter.name.is_none() || filter.keeps_name(&String::from_utf8_lossy(line.name)))
}

/// A point open in the report: started, not stopped yet.
struct OpenPoint {
    name: usize,
    begin: i64,
    base: u128,
    /// Intervals of the children that stopped so far.
    children: Vec<(i64, i64)>,
}

/// The reading thread's side: the report's figures and open points.
struct Agg<'a, 'o> {
    names: Interner,
    stats: Vec<(Box<str>, NameStats)>,
    open: U128Map<OpenPoint>,
    late: Option<&'a mut Children>,
    extra: &'a Children,
    /// Stop lines added so far.
    stops: u64,
    unreadable: Unreadable,
    options: &'o RankOptions,
    /// Per worker, its name indexes to the report's.
    maps: WorkerNames<usize>,
    /// For chunks read again here.
    parser: LineParser,
}

impl Agg<'_, '_> {
    fn add(&mut self, inputs: &Inputs, done: Done<'_, Summary>) -> Result<(), Error> {
        let sum = &mut *done.summary;
        let (names, stats) = (&mut self.names, &mut self.stats);
        let map = self.maps.add(done.worker, &sum.new_names, |name| {
            intern(names, stats, name)
        });
        self.unreadable
            .note_chunk(inputs, done.source, done.lines_before, &sum.unreadable);
        if sum.redo {
            self.read_in_order(done.chunk.bytes);
            return Ok(());
        }
        // Out of `self` while `self` adds the stops up; put back below.
        let map = std::mem::take(map);
        let name = |n: u32| mapped(&map, n);
        for &(n, duration, self_micros, busy) in &sum.stops {
            if let Some((_, st)) = self.stats.get_mut(name(n)) {
                // The workers count the durations for percentiles.
                let busy = busy.filter(|_| self.options.busy);
                record_stop(st, duration, busy, self.stops);
                st.self_micros = st.self_micros.saturating_add(self_micros);
            }
            self.stops += 1;
        }
        for event in &sum.events {
            match *event {
                Event::Stop {
                    stop,
                    trace,
                    parent,
                    base,
                    at,
                    micros,
                    parent_closed,
                } => {
                    let n = sum.stops.get(stop).map_or(0, |s| name(s.0));
                    let span = self.close(n, trace, at, micros);
                    let late = parent != base && parent != trace;
                    self.child(parent, span, parent_closed, late);
                }
                Event::Child {
                    parent,
                    span,
                    parent_closed,
                    late,
                } => self.child(parent, span, parent_closed, late),
            }
        }
        // Every id the chunk touched is closed, then the ones it left open
        // are opened (per id only the last line counts).
        if self.open.len() <= sum.ids.len() {
            self.open.retain(|&id, _| !sum.ids.touched(id));
        } else {
            for id in sum.ids.ids() {
                self.open.remove(&id);
            }
        }
        for (trace, left) in sum.opens.drain(..) {
            let point = OpenPoint {
                name: name(left.name),
                begin: left.begin,
                base: left.base,
                children: left.children,
            };
            self.open.insert(trace, point);
        }
        self.maps.put_back(done.worker, map);
        Ok(())
    }

    /// Closes the point `trace` at `at` after `micros`: adds its self time
    /// to name `n`, and returns its interval.
    fn close(&mut self, n: usize, trace: u128, at: i64, micros: i64) -> (i64, i64) {
        let (begin, mut children) = match self.open.remove(&trace) {
            Some(o) => (o.begin, o.children),
            None => (at.saturating_sub(micros), Vec::new()),
        };
        if let Some(more) = self.extra.get(&trace) {
            children.extend_from_slice(more);
        }
        let end = begin.saturating_add(micros);
        let self_micros = uncovered_micros(begin, end, &mut children);
        if let Some((_, st)) = self.stats.get_mut(n) {
            st.self_micros = st.self_micros.saturating_add(self_micros);
        }
        (begin, end)
    }

    /// A child's interval: to its parent if open (and not closed since),
    /// else to the second pass when `late`.
    fn child(&mut self, parent: u128, span: (i64, i64), parent_closed: bool, late: bool) {
        if !parent_closed {
            if let Some(p) = self.open.get_mut(&parent) {
                p.children.push(span);
                if p.children.len() >= COMPACT_AT {
                    merge_intervals(&mut p.children);
                }
                return;
            }
        }
        if late {
            if let Some(late) = self.late.as_deref_mut() {
                late.entry(parent).or_default().push(span);
            }
        }
    }

    /// A chunk read here one line after the other, with the report's open
    /// points (its unreadable lines are already counted).
    fn read_in_order(&mut self, bytes: &[u8]) {
        let mut parser = std::mem::take(&mut self.parser);
        for_each_chunk_line(&mut parser, bytes, |_, _, line| {
            let Ok(line) = line else {
                return;
            };
            if !keeps(&self.options.filter, &line) {
                return;
            }
            let name = String::from_utf8_lossy(line.name);
            let n = intern(&mut self.names, &mut self.stats, name.as_bytes());
            match line.phase {
                Phase::Start => {
                    let point = OpenPoint {
                        name: n,
                        begin: line.timestamp.unix_micros(),
                        base: line.base,
                        children: Vec::new(),
                    };
                    self.open.insert(line.trace, point);
                }
                Phase::Stop => {
                    let duration = line.duration.unwrap_or(0.0);
                    if let Some((_, st)) = self.stats.get_mut(n) {
                        // The worker that read the chunk counted the
                        // durations for percentiles.
                        let busy = line.busy.filter(|_| self.options.busy);
                        record_stop(st, duration, busy, self.stops);
                    }
                    self.stops += 1;
                    let micros = secs_to_micros(duration).max(0);
                    let span = self.close(n, line.trace, line.timestamp.unix_micros(), micros);
                    let late = !line.parent_is_base && !line.parent_is_trace;
                    self.child(line.parent, span, false, late);
                }
            }
        });
        self.parser = parser;
    }
}
