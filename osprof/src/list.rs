//! `osprof list`: one row per request (`base_id`), slowest first.
//!
//! Per request: the first timestamp (the earliest begin of any of its
//! points), the wall time (from that begin to the latest end), the number of
//! points (a start line and its stop line count once; a stop line whose
//! start was not read counts too), the root name and the logs it appears
//! in. The root is the earliest point whose `parent_id` is the `base_id`
//! (the request's first point in the service that received it); when no
//! point has that parent (the first service's log was not given), the
//! earliest point. Memory grows with the number of requests and the points
//! open at a time, not with the size of the logs.
//!
//! The logs are read a chunk at a time on one thread per core
//! (`source::chunks`): a worker adds up each request's lines in
//! its chunk and matches the starts and stops it holds; a stop whose start
//! is in an earlier chunk is matched by the reading thread, which adds the
//! chunks up in reading order. Every figure is the same whatever the
//! chunks and threads (tests check it).
//!
//! Filters: `base_ids` and `since`/`until` select requests by id and by
//! first timestamp, `name` by root name.

use serde::Serialize;

use crate::model::secs_to_micros;
use std::cmp::Reverse;

use crate::scan::chunk_ids::{ChunkIds, Touched};
use crate::scan::names::{mapped, Interner, WorkerNames};
use crate::scan::{for_each_chunk_line, id_key, key_id, LineParser, U128Map, Unread};
use crate::source::chunks::{read_chunks, Chunk, ChunkOptions, ChunkReader, Done};
use crate::source::Inputs;
use crate::{Error, Filter, Format, Unreadable};
use tracing_osprofiler::format::{Phase, Timestamp, MAX_DURATION_SECS};
use tracing_osprofiler::Id;

/// What `list` sorts by (`--sort` with the `cli` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum ListSort {
    /// Wall time, longest first.
    #[default]
    Wall,
    /// First timestamp, earliest first.
    First,
    /// Number of points, most first.
    Points,
    /// Root name, alphabetical.
    Name,
}

/// What `list` shows and how.
///
/// | setting | default |
/// |---|---|
/// | `sort` | [`ListSort::Wall`] |
/// | `reverse` | off |
/// | `top` | all rows |
/// | `filter` | every request |
/// | `format` | [`Format::Text`] |
/// | `mmap` | off: files are read (the `osprof` tool turns it on) |
/// | `unit` | [`Unit::Seconds`](crate::Unit) |
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListOptions {
    pub(crate) unit: crate::Unit,
    mmap: bool,
    sort: ListSort,
    reverse: bool,
    top: Option<usize>,
    filter: Filter,
    format: Format,
}

impl ListOptions {
    /// Every request, slowest first, as text.
    #[must_use]
    pub fn new() -> Self {
        ListOptions::default()
    }

    /// Sorts by this.
    #[must_use]
    pub fn with_sort(mut self, sort: ListSort) -> Self {
        self.sort = sort;
        self
    }

    /// Keeps only the requests `filter` keeps (see the module docs).
    #[must_use]
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    table_setters!();
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RequestRow {
    /// The request's id.
    #[serde(serialize_with = "display")]
    pub base_id: Id,
    /// The earliest begin (written in the log's form).
    #[serde(serialize_with = "display")]
    pub first: Timestamp,
    /// From the earliest begin to the latest end, in seconds; 0 when that
    /// is more than 100 years (`wall_too_long`).
    pub wall: f64,
    /// The request's points span more than 100 years
    /// ([`MAX_DURATION_SECS`],
    /// the bound of a duration): their timestamps cannot all be true (a
    /// clock at year 1 or 9999), so the wall time is unknown and shown as
    /// 0, as for a point missing its stop, and the request is named in
    /// [`List::walls_too_long`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wall_too_long: bool,
    /// Number of points.
    pub points: u64,
    /// Points with a start line and no stop line.
    pub unfinished: u64,
    /// The root point's name.
    pub root: String,
    /// The root point's busy time in seconds (the time its span was
    /// entered on a thread), when its stop line gives one; absent from
    /// JSON when unknown (a Python service, an older log), never 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy: Option<f64>,
    /// Why tail capture kept the request (`slow` or `error`), when its root
    /// says so (a start line's `capture.kept` field, Redis' `info.capture`);
    /// `None` for a request profiled by its caller's token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<&'static str>,
    /// The logs it appears in: indexes into [`List::logs`] (the order
    /// given), so that a name is held once however many requests.
    pub logs: Vec<usize>,
}

/// The list report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct List {
    /// The logs read, as named, in the order given.
    pub logs: Vec<String>,
    /// The requests, sorted, cut to `top`.
    pub requests: Vec<RequestRow>,
    /// Lines that could not be read.
    pub unreadable: Unreadable,
    /// Requests whose points span more than 100 years (before `top` cuts
    /// the rows): their wall time is unknown.
    #[serde(skip_serializing_if = "WallsTooLong::is_empty")]
    pub walls_too_long: WallsTooLong,
    #[serde(skip)]
    pub(crate) format: Format,
    #[serde(skip)]
    pub(crate) unit: crate::Unit,
}

/// Requests whose points span more than 100 years, the bound of a
/// duration: how many, and the first [`UNREADABLE_KEPT`](crate::UNREADABLE_KEPT)
/// of them, as the unreadable lines are reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WallsTooLong {
    /// How many requests.
    pub count: u64,
    /// The first few, in the order of the rows.
    #[serde(serialize_with = "display_all")]
    pub first: Vec<Id>,
}

impl WallsTooLong {
    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn note(&mut self, base_id: Id) {
        self.count += 1;
        if self.first.len() < crate::UNREADABLE_KEPT {
            self.first.push(base_id);
        }
    }
}

impl std::fmt::Display for WallsTooLong {
    /// `1 request spans more than 100 years, its wall time unknown (shown
    /// as 0): f12e…`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = self.count == 1;
        write!(
            f,
            "{} request{} more than 100 years (timestamps that cannot all be true), {} wall time unknown (shown as 0)",
            self.count,
            if one { " spans" } else { "s span" },
            if one { "its" } else { "their" },
        )?;
        for (i, id) in self.first.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            write!(f, "{id}")?;
        }
        if self.count > self.first.len() as u64 {
            f.write_str(", ...")?;
        }
        Ok(())
    }
}

fn display_all<S: serde::Serializer>(ids: &[Id], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(ids.iter().map(ToString::to_string))
}

/// The longest wall time a request may have, in microseconds: 100 years,
/// as a duration.
const MAX_WALL_MICROS: i64 = (MAX_DURATION_SECS * 1e6) as i64;

/// A request's figures as far as read.
#[derive(Debug, Clone)]
struct Acc {
    first: i64,
    last: i64,
    points: u64,
    /// Starts less the stops matched to them (shown as at least 0).
    unfinished: i64,
    root: Option<Root>,
    /// Why tail capture kept it, from a root's start line.
    kept: Option<&'static str>,
    /// (trace id key, busy time) of the stop lines, whose parent is the
    /// request, that give a busy time: the root's is among them.
    root_busy: Vec<(u128, f64)>,
    /// Most requests are in one log: no allocation for them.
    source: usize,
    more_sources: Vec<usize>,
}

/// A candidate for a request's root point.
#[derive(Debug, Clone, Copy)]
struct Root {
    /// Whether its parent is the request.
    of_request: bool,
    begin: i64,
    /// Where its line is in the logs (chunk, line), for ties.
    at: u64,
    /// Its name's index.
    name: u32,
    /// Its trace id key (to find its busy time).
    trace: u128,
}

impl Root {
    /// Better: a point whose parent is the request, then the earliest,
    /// then the first read. One order, whatever order candidates come in.
    fn better_than(&self, other: &Root) -> bool {
        (self.of_request, Reverse(self.begin), Reverse(self.at))
            > (other.of_request, Reverse(other.begin), Reverse(other.at))
    }
}

impl Acc {
    fn new(source: usize) -> Self {
        Acc {
            first: i64::MAX,
            last: i64::MIN,
            points: 0,
            unfinished: 0,
            root: None,
            kept: None,
            root_busy: Vec::new(),
            source,
            more_sources: Vec::new(),
        }
    }

    fn span(&mut self, begin: i64, end: i64) {
        self.first = self.first.min(begin);
        self.last = self.last.max(end);
    }

    /// Whether a root candidate would be better than the one kept.
    fn would_take(&self, root: &Root) -> bool {
        self.root.as_ref().is_none_or(|r| root.better_than(r))
    }

    fn see_source(&mut self, source: usize) {
        if self.source != source && !self.more_sources.contains(&source) {
            self.more_sources.push(source);
        }
    }

    /// Adds a chunk's figures of the same request, its root's name mapped
    /// by `name`.
    fn merge(&mut self, part: &Acc, name: impl Fn(u32) -> u32) {
        self.span(part.first, part.last);
        self.points += part.points;
        self.unfinished += part.unfinished;
        self.kept = self.kept.or(part.kept);
        self.root_busy.extend_from_slice(&part.root_busy);
        if let Some(root) = part.root {
            let root = Root {
                name: name(root.name),
                ..root
            };
            if self.would_take(&root) {
                self.root = Some(root);
            }
        }
    }
}

/// Reads `inputs` and builds the list (streaming).
///
/// # Errors
///
/// [`Error::Open`] or [`Error::Read`] when a log cannot be opened or read
/// to its end.
pub fn list(inputs: &Inputs, options: &ListOptions) -> Result<List, Error> {
    let chunks = ChunkOptions::for_inputs(inputs, options.mmap);
    let (requests, names, unreadable) = scan(inputs, &options.filter, &chunks)?;
    let filter = &options.filter;
    let mut requests: Vec<RequestRow> = requests
        .into_iter()
        .filter(|(_, a)| {
            let first = Timestamp::from_unix_micros(a.first);
            let root = a.root.map(|r| names.text(r.name)).unwrap_or_default();
            filter.keeps_time(first) && filter.keeps_name(&root)
        })
        .map(|(base, a)| {
            let mut logs = a.more_sources;
            logs.push(a.source);
            logs.sort_unstable();
            let span = if a.last > a.first {
                a.last.saturating_sub(a.first)
            } else {
                0
            };
            let wall_too_long = span > MAX_WALL_MICROS;
            let wall = if wall_too_long {
                0.0
            } else {
                span as f64 / 1e6
            };
            RequestRow {
                base_id: key_id(base),
                first: Timestamp::from_unix_micros(a.first),
                wall,
                wall_too_long,
                points: a.points,
                unfinished: a.unfinished.max(0).unsigned_abs(),
                root: a
                    .root
                    .map(|r| names.text(r.name).into_owned())
                    .unwrap_or_default(),
                kept: a.kept,
                busy: a.root.and_then(|r| {
                    a.root_busy
                        .iter()
                        .find(|(trace, _)| *trace == r.trace)
                        .map(|&(_, busy)| busy)
                }),
                logs,
            }
        })
        .collect();
    // Ties in the column are ordered by time, then id (reversed with the
    // column only when sorting by time): one order, whatever the reading.
    requests.sort_unstable_by(|a, b| {
        let column = match options.sort {
            ListSort::Wall => b.wall.total_cmp(&a.wall),
            ListSort::First => std::cmp::Ordering::Equal,
            ListSort::Points => b.points.cmp(&a.points),
            ListSort::Name => a.root.cmp(&b.root),
        };
        let ties = a
            .first
            .cmp(&b.first)
            .then_with(|| a.base_id.cmp(&b.base_id));
        match (options.reverse, options.sort) {
            (false, _) => column.then(ties),
            (true, ListSort::First) => ties.reverse(),
            (true, _) => column.reverse().then(ties),
        }
    });
    let mut walls_too_long = WallsTooLong::default();
    for row in requests.iter().filter(|row| row.wall_too_long) {
        walls_too_long.note(row.base_id);
    }
    if let Some(top) = options.top {
        requests.truncate(top);
    }
    Ok(List {
        logs: inputs.sources().iter().map(ToString::to_string).collect(),
        requests,
        unreadable,
        walls_too_long,
        format: options.format,
        unit: options.unit,
    })
}

fn display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// What a worker made of a chunk. Names are the worker's indexes.
#[derive(Debug, Default)]
struct Summary {
    lines: u64,
    new_names: Vec<Box<[u8]>>,
    unreadable: Vec<(u64, Unread)>,
    /// Each request's figures in the chunk, and its `base_id` key.
    requests: Vec<(u128, Acc)>,
    /// Indexes into `requests` by `base_id` key.
    request_index: U128Map<u32>,
    /// Every trace id the chunk touched, with the begin of the open ones.
    ids: ChunkIds<i64>,
    /// The points the chunk left open: trace id key and begin.
    opens: Vec<(u128, i64)>,
    /// Stops whose start was not in the chunk (nor an earlier stop).
    stops: Vec<Stop>,
}

/// A stop line for the reading thread to match.
#[derive(Debug, Clone, Copy)]
struct Stop {
    base: u128,
    trace: u128,
    at: i64,
    micros: i64,
    /// Its root candidacy, were no start open for it.
    root: Root,
}

/// The workers' side.
struct ListReader {
    /// The keys of the requests the filter keeps (all when empty).
    base_keys: Vec<u128>,
}

/// A worker's state.
struct Worker {
    parser: LineParser,
    names: Interner,
}

impl ChunkReader for ListReader {
    type Summary = Summary;
    type Worker = Worker;

    fn worker(&self) -> Worker {
        Worker {
            parser: LineParser::default(),
            names: Interner::default(),
        }
    }

    fn read(&self, worker: &mut Worker, chunk: &Chunk<'_>, sum: &mut Summary) {
        sum.new_names.clear();
        sum.unreadable.clear();
        sum.requests.clear();
        sum.request_index.clear();
        sum.ids.clear();
        sum.opens.clear();
        sum.stops.clear();
        let Worker { parser, names } = worker;
        // Lines of one request mostly follow each other.
        let mut last: Option<(u128, usize)> = None;
        let lines = for_each_chunk_line(
            parser,
            chunk.bytes,
            #[inline(always)]
            |index, at_len, line| {
                let line = match line {
                    Ok(line) => line,
                    Err(why) => return sum.unreadable.push((index, why)),
                };
                if !self.base_keys.is_empty() && !self.base_keys.contains(&line.base) {
                    return;
                }
                let t = line.timestamp.unix_micros();
                let at = match last {
                    Some((base, at)) if base == line.base => at,
                    _ => {
                        let next = sum.requests.len();
                        let at = *sum
                            .request_index
                            .entry(line.base)
                            .or_insert(u32::try_from(next).unwrap_or(u32::MAX))
                            as usize;
                        if at == next {
                            sum.requests.push((line.base, Acc::new(0)));
                        }
                        last = Some((line.base, at));
                        at
                    }
                };
                let Some((_, acc)) = sum.requests.get_mut(at) else {
                    return;
                };
                let mut candidate = |begin: i64, acc: &mut Acc| {
                    let mut root = Root {
                        of_request: line.parent_is_base,
                        begin,
                        at: chunk.seq << 32 | index,
                        name: 0,
                        trace: line.trace,
                    };
                    if acc.would_take(&root) {
                        root.name = names.intern_noted(line.name, &mut sum.new_names);
                        acc.root = Some(root);
                    }
                };
                match line.phase {
                    Phase::Start => {
                        if line.parent_is_base {
                            // A request's first point: did capture keep it?
                            let (from, len) = (at_len.0 as usize, at_len.1 as usize);
                            if let Some(text) = chunk.bytes.get(from..from + len) {
                                acc.kept = acc.kept.or(kept_by_capture(text));
                            }
                        }
                        acc.points += 1;
                        acc.unfinished += 1;
                        acc.span(t, t);
                        candidate(t, acc);
                        sum.ids.start(line.trace, t);
                    }
                    Phase::Stop => {
                        if let (true, Some(busy)) = (line.parent_is_base, line.busy) {
                            acc.root_busy.push((line.trace, busy));
                        }
                        let micros = secs_to_micros(line.duration.unwrap_or(0.0));
                        match sum.ids.stop(line.trace) {
                            Touched::Open(begin) => {
                                acc.unfinished -= 1;
                                acc.span(begin, begin.saturating_add(micros));
                            }
                            Touched::Closed => {
                                acc.points += 1;
                                let begin = t.saturating_sub(micros);
                                acc.span(begin, begin.saturating_add(micros));
                                candidate(begin, acc);
                            }
                            Touched::Untouched => {
                                let n = names.intern_noted(line.name, &mut sum.new_names);
                                sum.stops.push(Stop {
                                    base: line.base,
                                    trace: line.trace,
                                    at: t,
                                    micros,
                                    root: Root {
                                        of_request: line.parent_is_base,
                                        begin: t.saturating_sub(micros),
                                        at: chunk.seq << 32 | index,
                                        name: n,
                                        trace: line.trace,
                                    },
                                });
                            }
                        }
                    }
                }
            },
        );
        sum.lines = lines;
        if chunk.oversized_after {
            sum.unreadable.push((sum.lines, Unread::TooLong));
            sum.lines += 1;
        }
        let Summary { ids, opens, .. } = sum;
        opens.extend(ids.drain_open());
    }

    fn lines(sum: &Summary) -> u64 {
        sum.lines
    }
}

/// Reads the logs: each request's figures by `base_id` key, the root
/// names, the unreadable lines.
fn scan(
    inputs: &Inputs,
    filter: &Filter,
    chunks: &ChunkOptions,
) -> Result<(U128Map<Acc>, Interner, Unreadable), Error> {
    let reader = ListReader {
        base_keys: filter.base_ids.iter().map(|&id| id_key(id)).collect(),
    };
    let mut requests: U128Map<Acc> = U128Map::default();
    // trace_id key -> begin of the points open now.
    let mut open: U128Map<i64> = U128Map::default();
    let mut unreadable = Unreadable::default();
    let mut names = Interner::default();
    let mut maps = WorkerNames::default();
    read_chunks(inputs, &reader, chunks, |done: Done<'_, Summary>| {
        let sum = &mut *done.summary;
        let map = maps.add(done.worker, &sum.new_names, |name| names.intern(name).0);
        let name = |n: u32| mapped(map, n);
        unreadable.note_chunk(inputs, done.source, done.lines_before, &sum.unreadable);
        for (base, part) in sum.requests.drain(..) {
            let acc = requests
                .entry(base)
                .or_insert_with(|| Acc::new(done.source));
            acc.see_source(done.source);
            acc.merge(&part, name);
        }
        for stop in &sum.stops {
            let Some(acc) = requests.get_mut(&stop.base) else {
                continue;
            };
            match open.remove(&stop.trace) {
                Some(begin) => {
                    acc.unfinished -= 1;
                    acc.span(begin, begin.saturating_add(stop.micros));
                }
                None => {
                    acc.points += 1;
                    let begin = stop.at.saturating_sub(stop.micros);
                    acc.span(begin, begin.saturating_add(stop.micros));
                    let root = Root {
                        name: name(stop.root.name),
                        ..stop.root
                    };
                    if acc.would_take(&root) {
                        acc.root = Some(root);
                    }
                }
            }
        }
        // Every id the chunk touched is closed, then the ones it left open
        // are opened.
        if open.len() <= sum.ids.len() {
            open.retain(|&id, _| !sum.ids.touched(id));
        } else {
            for id in sum.ids.ids() {
                open.remove(&id);
            }
        }
        open.extend(sum.opens.iter().copied());
        Ok(())
    })?;
    Ok((requests, names, unreadable))
}

/// Why capture kept a request, read from its root's start line: the
/// `"capture.kept":"slow"` or `"error"` member of the line's fields
/// (tracing-osprofiler writes it there when fields are on).
pub(crate) fn kept_by_capture(line: &[u8]) -> Option<&'static str> {
    const KEY: &[u8] = b"\"capture.kept\":\"";
    let at = memchr::memmem::find(line, KEY)?;
    let value = &line[at + KEY.len()..];
    if value.starts_with(b"slow\"") {
        Some("slow")
    } else if value.starts_with(b"error\"") {
        Some("error")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_logs::{log_of, point_line, trace_id};
    use proptest::prelude::*;

    /// Random points of a few requests, with random parents (some the
    /// request), reused ids, stops without starts, mangled lines.
    fn random_log() -> impl Strategy<Value = Vec<u8>> {
        let point = (
            any::<bool>(),
            0u32..30,
            0u32..4,
            any::<bool>(),
            0usize..3,
            0u32..2_000_000,
            0u32..3_000_000,
        )
            .prop_map(|(stop, t, b, of_request, n, at, d)| {
                let base = format!("10000000-0000-4000-8000-{b:012x}");
                let parent = if of_request {
                    base.clone()
                } else {
                    trace_id(t / 2)
                };
                point_line(stop, t, &base, &parent, n, at, d)
            });
        log_of(point)
    }

    /// Each request as (id, first and last, points, unfinished, root,
    /// logs), sorted, and the number of unreadable lines.
    type Listed = (Vec<(String, String, u64, u64, String, Vec<usize>)>, u64);

    fn listed(inputs: &Inputs, chunks: &ChunkOptions) -> Listed {
        let (requests, names, unreadable) = scan(inputs, &Filter::new(), chunks).unwrap();
        let mut rows: Vec<_> = requests
            .into_iter()
            .map(|(base, a)| {
                let mut logs = a.more_sources.clone();
                logs.push(a.source);
                logs.sort_unstable();
                (
                    key_id(base).to_string(),
                    format!("{} {}", a.first, a.last),
                    a.points,
                    a.unfinished.max(0).unsigned_abs(),
                    a.root
                        .map(|r| names.text(r.name).into_owned())
                        .unwrap_or_default(),
                    logs,
                )
            })
            .collect();
        rows.sort();
        (rows, unreadable.count)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The list is the same whatever the chunks and threads: as if the
        /// logs were read in one chunk by one thread.
        #[test]
        fn chunks_and_threads_do_not_change_the_list(
            logs in prop::collection::vec(random_log(), 1..3),
            chunk in 64usize..6_000,
            workers in 1usize..4,
            mmap in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let paths: Vec<_> = logs
                .iter()
                .enumerate()
                .map(|(i, log)| {
                    let path = dir.path().join(format!("{i}.log"));
                    std::fs::write(&path, log).unwrap();
                    path
                })
                .collect();
            let inputs = Inputs::from_paths(&paths).unwrap();
            let whole = ChunkOptions { workers: 1, chunk_bytes: 1 << 20, window: 8 << 20, mmap: false };
            let cut = ChunkOptions { workers, chunk_bytes: chunk, window: 3 * chunk, mmap };
            prop_assert_eq!(listed(&inputs, &cut), listed(&inputs, &whole));
        }
    }
}
