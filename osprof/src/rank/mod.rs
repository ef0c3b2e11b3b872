//! `osprof rank`: time spent per trace name, Mistral's
//! `rank_profiled_methods.py` report and more.
//!
//! # Mistral's rows, exactly
//!
//! With the default [`RankOptions`], the text output is byte for byte what
//! Mistral's script writes for any log that script reads correctly
//! (docs/protocol.md, *The rank report*): from the `-stop` lines only, per name the total, maximum
//! and average duration and the number of stop lines; sorted by total,
//! descending, ties in the order each name's first stop line was read; the
//! header, 91 dashes, and rows formatted as Python's
//! `'{:<12.3f} {:<10.3f} {:<10.3f} {:<13d} {}'` (Rust's `{:.3}` rounds the
//! binary value correctly, half to even, like Python).
//!
//! Where the script breaks, this report does not: blank, truncated and
//! foreign lines are counted as unreadable and skipped; durations of
//! 1000 s and more count (up to 100 years; longer ones are unreadable); a
//! logging prefix before the timestamp is allowed.
//!
//! # Beyond Mistral
//!
//! * **Self time** (`with_self_time`): per name, the sum over its points of
//!   the wall time no child covers (see [`model`](super::model)): the
//!   point's interval minus the union of its children's intervals, so
//!   concurrent children count once (`model::uncovered_micros`, the one
//!   computation `show` uses too). It is computed while streaming, a chunk
//!   of the logs per core (`self_time`): a child that stops while its
//!   parent is open adds its interval to the parent; children whose
//!   parent is not open then (in another service's log, or outliving their
//!   parent) are added in a second read of the logs, done only when there
//!   are such children. A point whose start
//!   line was not read (a log missing from a rotated set) has no known
//!   children, and all its wall time counts as self time.
//! * **Percentiles** (`with_percentiles`): p50, p95 and p99 of the
//!   durations (nearest rank), each within 0.05% of the exact one and never
//!   above the maximum, in memory that grows with the distinct durations a
//!   name has, not with their number (see `sketch`).
//! * Sorting by any column, `--top N`, the [`Filter`]s, and the
//!   [`Format`]s Markdown, CSV and JSON.
//! * **Unfinished points**, whose `-start` line has no `-stop` line in the
//!   logs, are counted per name apart from the rows. In text and CSV they,
//!   and the unreadable lines, are left out of the output (which stays
//!   Mistral's); the tool prints them on stderr ([`Rank::notes`]).
//!
//! The logs are read a chunk at a time on one thread per core
//! (`source::chunks`): `parallel` without self time, `self_time` with it;
//! every figure is the one of reading the lines one after the other (the
//! tests' `reference`), float sums included.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::secs_to_micros;
use crate::scan::names::Interner;
use crate::scan::{id, Fields, U128Map};
use crate::source::chunks::ChunkOptions;
use crate::source::Inputs;
use crate::{Error, Filter, Format, Unreadable};
use tracing_osprofiler::format::Timestamp;
use tracing_osprofiler::Id;

/// Mistral's header line.
pub const HEADER: &str = "Total time | Max time | Avg time | Occurrences | Trace name";

/// A column of the rank report, to sort by (`--sort` with the `cli`
/// feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum Column {
    /// Sum of the durations.
    #[default]
    Total,
    /// Longest duration.
    Max,
    /// Total divided by occurrences.
    Avg,
    /// Number of stop lines.
    Count,
    /// Sum of the self times (needs self time on).
    #[cfg_attr(feature = "cli", value(name = "self"))]
    SelfTime,
    /// Median duration (needs percentiles on).
    P50,
    /// 95th percentile (needs percentiles on).
    P95,
    /// 99th percentile (needs percentiles on).
    P99,
    /// Sum of the known busy times (needs busy time on; names without any
    /// known busy time last).
    Busy,
    /// The trace name (sorted ascending; every other column descending).
    Name,
}

/// What `rank` computes and how it writes it.
///
/// | setting | default |
/// |---|---|
/// | `self_time` | off |
/// | `percentiles` | off |
/// | `busy` | off |
/// | `sort` | [`Column::Total`], descending |
/// | `reverse` | off (flips the sort order) |
/// | `top` | all rows |
/// | `filter` | keeps every line |
/// | `format` | [`Format::Text`] |
/// | `mmap` | off: files are read (the `osprof` tool turns it on) |
/// | `unit` | [`Unit::Seconds`](crate::Unit) (Mistral's) |
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RankOptions {
    pub(crate) unit: crate::Unit,
    mmap: bool,
    pub(crate) self_time: bool,
    pub(crate) percentiles: bool,
    pub(crate) busy: bool,
    sort: Column,
    reverse: bool,
    top: Option<usize>,
    filter: Filter,
    pub(crate) format: Format,
}

impl RankOptions {
    /// Mistral's report.
    #[must_use]
    pub fn new() -> Self {
        RankOptions::default()
    }

    /// Adds the self-time column.
    #[must_use]
    pub fn with_self_time(mut self, on: bool) -> Self {
        self.self_time = on;
        self
    }

    /// Adds the p50, p95 and p99 columns.
    #[must_use]
    pub fn with_percentiles(mut self, on: bool) -> Self {
        self.percentiles = on;
        self
    }

    /// Adds the busy-time columns: per name the sum and the average of
    /// the busy times the stop lines give, and how many points had none
    /// (left out of both; unknown is not zero).
    #[must_use]
    pub fn with_busy(mut self, on: bool) -> Self {
        self.busy = on;
        self
    }

    /// Sorts by this column.
    #[must_use]
    pub fn with_sort(mut self, column: Column) -> Self {
        self.sort = column;
        self
    }

    /// Reads only the lines `filter` keeps.
    #[must_use]
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    table_setters!();
}

/// One trace name's figures; times in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Row {
    /// Sum of the durations.
    pub total: f64,
    /// Longest duration.
    pub max: f64,
    /// `total / count`.
    pub avg: f64,
    /// Number of stop lines.
    pub count: u64,
    /// Sum of the self times, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_time: Option<f64>,
    /// Median duration, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    /// 95th percentile, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    /// 99th percentile, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    /// The busy time, when asked for (`busy_total`, `busy_avg`,
    /// `busy_known`, `busy_unknown` in JSON).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub busy: Option<BusyStats>,
    /// The trace name.
    pub name: String,
}

/// The busy time of one name's points (seconds): only the points whose
/// stop line gives one count; the others are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BusyStats {
    /// Sum of the known busy times; `None` (JSON `null`) when no point's
    /// is known.
    #[serde(rename = "busy_total")]
    pub total: Option<f64>,
    /// `total` divided by `known`; `None` when no point's is known.
    #[serde(rename = "busy_avg")]
    pub avg: Option<f64>,
    /// Points whose busy time is known.
    #[serde(rename = "busy_known")]
    pub known: u64,
    /// Points whose stop line gives no busy time (Python services, older
    /// logs), left out of `total` and `avg`.
    #[serde(rename = "busy_unknown")]
    pub unknown: u64,
}

/// Points of one name that started and never stopped in the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Unfinished {
    /// The trace name.
    pub name: String,
    /// How many.
    pub count: u64,
    /// The earliest start, in the log's form.
    pub first_start: String,
    /// The `base_id` of the earliest one.
    pub base_id: String,
}

/// The rank report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Rank {
    /// The rows, sorted, cut to `top`.
    pub rows: Vec<Row>,
    /// Points that never stopped, by name (most first).
    pub unfinished: Vec<Unfinished>,
    /// Lines that could not be read.
    pub unreadable: Unreadable,
    #[serde(skip)]
    pub(crate) options: RankOptions,
}

#[derive(Default)]
struct NameStats {
    total: f64,
    max: f64,
    count: u64,
    /// Sequence number of the first stop line, for Mistral's tie order.
    first_stop: u64,
    self_micros: i64,
    durations: Sketch,
    /// Sum of the known busy times, and how many were known.
    busy_total: f64,
    busy_known: u64,
}

/// Above this many child intervals, a parent's list is merged into
/// disjoint intervals, which keeps a long-lived root with many sequential
/// children from growing without bound.
const COMPACT_AT: usize = 256;

/// Reads `inputs` and builds the report (streaming).
///
/// # Errors
///
/// [`Error::Open`] or [`Error::Read`] when a log cannot be opened or
/// read to its end.
pub fn rank(inputs: &Inputs, options: &RankOptions) -> Result<Rank, Error> {
    let Scanned {
        stats,
        open,
        unreadable,
    } = if options.self_time {
        let chunks = ChunkOptions::for_inputs(inputs, options.mmap);
        self_time::scan_with_self_time(inputs, options, &chunks)?
    } else {
        scan(inputs, options)?
    };
    finish(stats, open, unreadable, options)
}

/// What a scan of the logs leaves: per name its figures, the points still
/// open at the end as (name, begin, base id), and the unreadable lines.
struct Scanned {
    stats: Vec<(Box<str>, NameStats)>,
    open: Vec<(usize, i64, Id)>,
    unreadable: Unreadable,
}

/// Adds one stop line's duration (and busy time, when known and asked
/// for) to its name's figures; `seq` numbers the stop lines in reading
/// order. (Durations for percentiles are counted apart, by
/// [`CountedDurations`].)
#[inline]
fn record_stop(st: &mut NameStats, duration: f64, busy: Option<f64>, seq: u64) {
    if st.count == 0 {
        st.first_stop = seq;
    }
    if let Some(busy) = busy {
        st.busy_total += busy;
        st.busy_known += 1;
    }
    st.total += duration;
    if duration > st.max || st.count == 0 {
        st.max = duration;
    }
    st.count += 1;
}

mod parallel;
mod self_time;
mod sketch;
use parallel::scan_parallel;
use sketch::Sketch;

/// The scan without self time ([`parallel`]): per line only the name, the
/// phase, the duration and the `trace_id` are used, so lines in the
/// writers' layout are split without building a
/// [`Line`](tracing_osprofiler::format::Line); any other line goes through the full
/// parser, as in every report.
fn scan(inputs: &Inputs, options: &RankOptions) -> Result<Scanned, Error> {
    let chunks = ChunkOptions::for_inputs(inputs, options.mmap);
    scan_parallel(
        inputs,
        options,
        chunks.workers,
        chunks.chunk_bytes,
        chunks.window,
    )
}

/// The figures of the scan without self time, added up in reading order.
struct Agg {
    names: Interner,
    stats: Vec<(Box<str>, NameStats)>,
    /// `id_key` of the trace id -> (name, begin, base_id) of the points
    /// started and not stopped yet: as in `scan_with_self_time`, a start
    /// replaces an open point with the same id and a stop closes whatever
    /// is open under it.
    open: U128Map<(usize, i64, u128)>,
    stops: u64,
    unreadable: Unreadable,
}

impl Agg {
    fn new() -> Self {
        Agg {
            names: Interner::default(),
            stats: Vec::new(),
            open: U128Map::default(),
            stops: 0,
            unreadable: Unreadable::default(),
        }
    }

    /// The index of a name, given as the bytes of its (lossy) UTF-8 form.
    #[inline]
    fn name(&mut self, name: &[u8]) -> usize {
        intern(&mut self.names, &mut self.stats, name)
    }

    /// A stop line's duration added to its name's figures.
    #[inline]
    fn record(&mut self, name: usize, duration: f64, busy: Option<f64>) {
        if let Some((_, st)) = self.stats.get_mut(name) {
            record_stop(st, duration, busy, self.stops);
        }
        self.stops += 1;
    }

    fn finish(self) -> Scanned {
        Scanned {
            stats: self.stats,
            open: self
                .open
                .into_values()
                .map(|(name, begin, base)| (name, begin, id(base)))
                .collect(),
            unreadable: self.unreadable,
        }
    }
}

/// `Filter::keeps` on a line's fields; the name is only converted to
/// UTF-8 when a pattern needs it.
#[inline]
fn keeps(filter: &Filter, fields: &Fields<'_>) -> bool {
    (filter.base_ids.is_empty() || filter.keeps_base(id(fields.base_id())))
        && filter.keeps_time(fields.timestamp)
        && (filter.name.is_none() || filter.keeps_name(&String::from_utf8_lossy(fields.name)))
}

/// The index of a name (its lossy UTF-8 form's bytes) in `stats`, which
/// gets a row for each new name.
#[inline]
fn intern(names: &mut Interner, stats: &mut Vec<(Box<str>, NameStats)>, name: &[u8]) -> usize {
    let (n, new) = names.intern(name);
    if new {
        stats.push((String::from_utf8_lossy(name).into(), NameStats::default()));
    }
    n as usize
}

/// Durations the workers counted for percentiles: per worker, its names
/// (by its indexes) and their sketches. Counted where the lines are read,
/// in parallel and in the cache of the core that reads them, and added up
/// at the end: bucket counts add up to the same sketch in any order.
#[derive(Debug, Default)]
struct CountedDurations(std::sync::Mutex<Vec<WorkerDurations>>);

/// One worker's names (by its indexes) and their sketches.
type WorkerDurations = (Vec<Box<[u8]>>, Vec<Sketch>);

impl CountedDurations {
    /// Counts a stop line's duration under the worker's name index `n`.
    #[inline]
    fn count(sketches: &mut Vec<Sketch>, n: u32, duration: f64) {
        let n = n as usize;
        if sketches.len() <= n {
            sketches.resize_with(n + 1, Sketch::default);
        }
        sketches[n].record(secs_to_micros(duration).max(0).unsigned_abs());
    }

    /// Keeps a worker's sketches, with its names.
    fn keep(&self, names: Interner, sketches: Vec<Sketch>) {
        let mut kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.push((names.into_names(), sketches));
    }

    /// Adds the sketches to the names' figures.
    fn add_to(self, names: &mut Interner, stats: &mut Vec<(Box<str>, NameStats)>) {
        let kept = self
            .0
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (worker_names, sketches) in kept {
            for (name, sketch) in worker_names.iter().zip(&sketches) {
                let n = intern(names, stats, String::from_utf8_lossy(name).as_bytes());
                if let Some((_, st)) = stats.get_mut(n) {
                    st.durations.merge(sketch);
                }
            }
        }
    }
}

/// The report from a scan's figures.
fn finish(
    stats: Vec<(Box<str>, NameStats)>,
    open: Vec<(usize, i64, Id)>,
    unreadable: Unreadable,
    options: &RankOptions,
) -> Result<Rank, Error> {
    let mut unfinished: HashMap<usize, (u64, i64, Id)> = HashMap::new();
    for (name, begin, base) in open {
        let e = unfinished.entry(name).or_insert((0, begin, base));
        e.0 += 1;
        if begin < e.1 {
            e.1 = begin;
            e.2 = base;
        }
    }
    let mut unfinished: Vec<Unfinished> = unfinished
        .into_iter()
        .map(|(name, (count, first, base))| Unfinished {
            name: stats[name].0.to_string(),
            count,
            first_start: Timestamp::from_unix_micros(first).to_string(),
            base_id: base.to_string(),
        })
        .collect();
    unfinished.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));

    let mut rows: Vec<(u64, Row)> = stats
        .into_iter()
        .filter(|(_, s)| s.count > 0)
        .map(|(name, s)| {
            // The middle of the bucket, never beyond the real maximum.
            let q = |q: f64| {
                options
                    .percentiles
                    .then(|| s.durations.quantile(q))
                    .flatten()
                    .map(|micros| (micros as f64 / 1e6).min(s.max))
            };
            (
                s.first_stop,
                Row {
                    total: s.total,
                    max: s.max,
                    avg: s.total / s.count as f64,
                    count: s.count,
                    self_time: options.self_time.then(|| s.self_micros as f64 / 1e6),
                    p50: q(0.5),
                    p95: q(0.95),
                    p99: q(0.99),
                    busy: options.busy.then(|| {
                        let known = s.busy_known > 0;
                        BusyStats {
                            total: known.then_some(s.busy_total),
                            avg: known.then(|| s.busy_total / s.busy_known as f64),
                            known: s.busy_known,
                            unknown: s.count - s.busy_known,
                        }
                    }),
                    name: name.into_string(),
                },
            )
        })
        .collect();
    // Ties keep first-seen order: sort by the first stop line, then stably
    // by the column.
    rows.sort_by_key(|(first, _)| *first);
    let key = |r: &Row| -> f64 {
        match options.sort {
            Column::Total => r.total,
            Column::Max => r.max,
            Column::Avg => r.avg,
            Column::Count => r.count as f64,
            Column::SelfTime => r.self_time.unwrap_or(0.0),
            Column::P50 => r.p50.unwrap_or(0.0),
            Column::P95 => r.p95.unwrap_or(0.0),
            Column::P99 => r.p99.unwrap_or(0.0),
            // Unknown sorts after every known total, even 0.
            Column::Busy => r.busy.and_then(|b| b.total).unwrap_or(f64::NEG_INFINITY),
            Column::Name => 0.0,
        }
    };
    rows.sort_by(|(_, a), (_, b)| {
        let ord = if options.sort == Column::Name {
            a.name.cmp(&b.name)
        } else {
            key(b).total_cmp(&key(a))
        };
        if options.reverse {
            ord.reverse()
        } else {
            ord
        }
    });
    let mut rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    if let Some(top) = options.top {
        rows.truncate(top);
    }
    Ok(Rank {
        rows,
        unfinished,
        unreadable,
        options: options.clone(),
    })
}

/// The reference the threaded scans are checked against: every line
/// through `format::parse_line`, one after the other, self time included.
#[cfg(test)]
mod reference {
    use super::*;
    use crate::model::{merge_intervals, uncovered_micros};
    use crate::scan::for_each_parsed;

    type IdMap<V> = std::collections::HashMap<Id, V>;
    use tracing_osprofiler::format::Phase;
    use tracing_osprofiler::Id;

    struct Open {
        name: usize,
        base: Id,
        begin: i64,
        /// Intervals of the children that stopped so far.
        children: Vec<(i64, i64)>,
    }

    /// The scan with self time, which follows each point's children.
    ///
    /// A child that stops while its parent is open adds its interval to the
    /// parent. One whose parent is not open then (it lives in another
    /// service's log, read before or after the parent's, or it outlived its
    /// parent) is kept aside, and if there is any, the logs are read a second
    /// time with those intervals among their parents' children, so that self
    /// time is the model's (and `osprof show`'s) across logs too.
    pub(super) fn scan(inputs: &Inputs, options: &RankOptions) -> Result<Scanned, Error> {
        let mut late = IdMap::default();
        let first = self_time_pass(inputs, options, &IdMap::default(), Some(&mut late))?;
        if late.is_empty() {
            return Ok(first);
        }
        self_time_pass(inputs, options, &late, None)
    }

    /// Children's intervals by their parent's trace id.
    type Children = IdMap<Vec<(i64, i64)>>;

    /// One read of the logs for [`scan_with_self_time`]: `extra` children are
    /// added to their parents; children whose parent is not open when they
    /// stop go to `late`.
    fn self_time_pass(
        inputs: &Inputs,
        options: &RankOptions,
        extra: &Children,
        mut late: Option<&mut Children>,
    ) -> Result<Scanned, Error> {
        let mut names = Interner::default();
        let mut stats: Vec<(Box<str>, NameStats)> = Vec::new();
        let mut open: IdMap<Open> = IdMap::default();
        let mut stops = 0u64;
        let mut unreadable = Unreadable::default();
        let filter = &options.filter;
        for_each_parsed(inputs, &mut unreadable, |_, line| {
            if !filter.keeps(&line) {
                return;
            }
            let name = intern(&mut names, &mut stats, line.name.as_bytes());
            match line.phase {
                Phase::Start => {
                    open.insert(
                        line.ids.trace_id,
                        Open {
                            name,
                            base: line.ids.base_id,
                            begin: line.timestamp.unix_micros(),
                            children: Vec::new(),
                        },
                    );
                }
                Phase::Stop => {
                    let duration = line.duration.unwrap_or(0.0);
                    let st = &mut stats[name].1;
                    record_stop(st, duration, line.busy.filter(|_| options.busy), stops);
                    if options.percentiles {
                        st.durations
                            .record(secs_to_micros(duration).max(0).unsigned_abs());
                    }
                    let micros = secs_to_micros(duration).max(0);
                    stops += 1;
                    let opened = open.remove(&line.ids.trace_id);
                    let (begin, mut children) = match opened {
                        Some(o) => (o.begin, o.children),
                        None => (
                            line.timestamp.unix_micros().saturating_sub(micros),
                            Vec::new(),
                        ),
                    };
                    if let Some(more) = extra.get(&line.ids.trace_id) {
                        children.extend_from_slice(more);
                    }
                    let end = begin.saturating_add(micros);
                    st.self_micros =
                        st.self_micros
                            .saturating_add(uncovered_micros(begin, end, &mut children));
                    let ids = &line.ids;
                    let siblings = match open.get_mut(&ids.parent_id) {
                        Some(parent) => Some(&mut parent.children),
                        // A root's parent is its request (`base_id`).
                        None if ids.parent_id != ids.base_id && ids.parent_id != ids.trace_id => {
                            late.as_deref_mut()
                                .map(|late| late.entry(ids.parent_id).or_default())
                        }
                        None => None,
                    };
                    if let Some(siblings) = siblings {
                        siblings.push((begin, end));
                        if siblings.len() >= COMPACT_AT {
                            merge_intervals(siblings);
                        }
                    }
                }
            }
        })?;
        Ok(Scanned {
            stats,
            open: open
                .into_values()
                .map(|o| (o.name, o.begin, o.base))
                .collect(),
            unreadable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log with every kind of line: writers' layout, other forms the
    /// full parser takes, unreadable, blank, oversized, non-UTF-8 names,
    /// points that never stop and stops that never started.
    fn mixed_log(seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut x = seed | 1;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let names: [&[u8]; 6] = [
            b"a",
            b"db-query",
            b"caf\xc3\xa9",
            b"bad\xff",
            b"bad\xfe",
            b"x::y",
        ];
        let mut open: Vec<(u64, usize)> = Vec::new();
        for i in 0..3000u64 {
            let micros = 100_000 + i * 7;
            let ts = format!(
                "2020-02-27T08:04:{:02}.{:06}",
                micros / 1_000_000 % 60,
                micros % 1_000_000
            );
            let r = rnd();
            let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7";
            let id = |t: u64| format!("00000000-0000-4000-8000-{t:012x}");
            match r % 20 {
                0 => out.extend_from_slice(b"garbage line"),
                1 => {}
                2 => out.extend(std::iter::repeat_n(b'z', crate::source::MAX_LINE_LEN + 5)),
                3 => out.extend_from_slice(
                    format!("prefix {ts} 0.5 {base} {base} {} a-stop", id(r % 50)).as_bytes(),
                ),
                4 => out.extend_from_slice(
                    format!("{ts} 1e-3 {base} {base} {} db-query-stop", id(r % 50)).as_bytes(),
                ),
                5..=11 => {
                    let t = rnd() % 5000;
                    let n = (r / 32) as usize % names.len();
                    open.push((t, n));
                    out.extend_from_slice(
                        format!("{ts}          {base} {base} {} ", id(t)).as_bytes(),
                    );
                    out.extend_from_slice(names[n]);
                    out.extend_from_slice(b"-start");
                }
                _ => {
                    let (t, n) = if open.is_empty() || r % 7 == 0 {
                        (rnd() % 5000, (r / 32) as usize % names.len())
                    } else {
                        open.swap_remove((r / 64) as usize % open.len())
                    };
                    let d = (rnd() % 3_000_000) as f64 / 1e6;
                    out.extend_from_slice(format!("{ts} {d} {base} {base} {} ", id(t)).as_bytes());
                    out.extend_from_slice(names[n]);
                    out.extend_from_slice(b"-stop");
                    if r % 3 == 0 {
                        out.extend_from_slice(b"  <- !!! {}");
                    } else if r % 5 < 3 {
                        // A busy time, believable or not (longer than `d`).
                        let busy = d * (r % 7) as f64 / 5.0;
                        let marker = if r % 5 == 1 { "  <- !!!" } else { "" };
                        out.extend_from_slice(format!("{marker} {{\"busy\":{busy}}}").as_bytes());
                    }
                }
            }
            out.push(b'\n');
        }
        out
    }

    /// The report as the scan with self time makes it, without that
    /// column: every line through `format::parse_line`, one after the
    /// other; the reference the threaded scan is checked against.
    fn full_parser_report(inputs: &Inputs, options: &RankOptions) -> Rank {
        let Scanned {
            stats,
            open,
            unreadable,
        } = reference::scan(inputs, options).unwrap();
        finish(stats, open, unreadable, options).unwrap()
    }

    #[test]
    fn threaded_scan_gives_the_full_parsers_figures() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        std::fs::write(&a, mixed_log(1)).unwrap();
        std::fs::write(&b, mixed_log(2)).unwrap();
        let c = dir.path().join("c.log.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&c).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut gz, &mixed_log(3)).unwrap();
        gz.finish().unwrap();
        let inputs = Inputs::from_paths([&a, &b, &c]).unwrap();
        for options in [
            RankOptions::new(),
            RankOptions::new().with_mmap(true),
            RankOptions::new().with_percentiles(true),
            RankOptions::new().with_busy(true),
            RankOptions::new().with_filter(
                Filter::new()
                    .with_name(Some(crate::Pattern::new("*a*")))
                    .with_since(crate::parse_time("2020-02-27T08:00:00.110000")),
            ),
        ] {
            let whole = full_parser_report(&inputs, &options);
            assert!(whole.unreadable.count > 0 && !whole.unfinished.is_empty());
            assert!(whole.rows.iter().any(|r| r.name.contains('\u{fffd}')));
            if options.busy {
                assert!(whole
                    .rows
                    .iter()
                    .any(|r| r.busy.is_some_and(|b| b.known > 0 && b.unknown > 0)));
            }
            // The report as `rank` makes it (this thread alone: small logs).
            let report = rank(&inputs, &options).unwrap();
            assert_eq!(report.rows, whole.rows);
            assert_eq!(report.unfinished, whole.unfinished);
            assert_eq!(report.unreadable, whole.unreadable);
            for (workers, chunk, window) in [
                (1, 4096, 4096),
                (2, 4096, 100_000),
                (2, 70_000, 12_288),
                (3, 200_000, 150_000),
                (2, 1 << 20, crate::source::chunks::WINDOW),
            ] {
                let Scanned {
                    stats,
                    open,
                    unreadable,
                } = scan_parallel(&inputs, &options, workers, chunk, window).unwrap();
                let parallel = finish(stats, open, unreadable, &options).unwrap();
                let case = format!("{workers} {chunk} {window} {:?}", options.mmap);
                assert_eq!(parallel.rows, whole.rows, "{case}");
                assert_eq!(parallel.unfinished, whole.unfinished, "{case}");
                assert_eq!(parallel.unreadable, whole.unreadable, "{case}");
            }
        }
    }

    /// Lines longer than a chunk (and than the limit), with and without a
    /// newline at the end of the log, in every way of reading.
    #[test]
    fn lines_longer_than_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7";
        let line = |t: u32| {
            format!("2020-02-27T08:04:25.000001 0.5 {base} {base} 00000000-0000-4000-8000-{t:012x} a-stop\n")
        };
        for (name, tail) in [("ends.log", "\n"), ("open.log", "")] {
            let mut log = Vec::new();
            for t in 0..50 {
                log.extend_from_slice(line(t).as_bytes());
                if t % 10 == 3 {
                    log.extend(std::iter::repeat_n(b'y', 3 << 20));
                    log.push(b'\n');
                }
            }
            log.extend(std::iter::repeat_n(b'z', 200_000));
            log.extend_from_slice(tail.as_bytes());
            let path = dir.path().join(name);
            std::fs::write(&path, &log).unwrap();
            let inputs = Inputs::from_paths([&path]).unwrap();
            let whole = full_parser_report(&inputs, &RankOptions::new());
            assert_eq!(whole.unreadable.count, 6);
            assert_eq!(whole.rows[0].count, 50);
            for mmap in [false, true] {
                let options = RankOptions::new().with_mmap(mmap);
                for (chunk, window) in [
                    (4096, 4096),
                    (1 << 20, 1 << 20),
                    (1 << 20, crate::source::chunks::WINDOW),
                ] {
                    let Scanned {
                        stats,
                        open,
                        unreadable,
                    } = scan_parallel(&inputs, &options, 2, chunk, window).unwrap();
                    let parallel = finish(stats, open, unreadable, &options).unwrap();
                    let case = format!("{name} {mmap} {chunk} {window}");
                    assert_eq!(parallel.rows, whole.rows, "{case}");
                    assert_eq!(parallel.unreadable, whole.unreadable, "{case}");
                }
            }
        }
    }

    /// A log of random lines: the writers' starts and stops over a few ids
    /// (so some repeat) and names, mangled ones, random bytes, blank,
    /// CRLF and (rarely) too long lines, maybe no final newline.
    fn random_log() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let line = prop_oneof![
            6 => (any::<bool>(), 0u32..40, 0usize..4, 0u32..3_000_000).prop_map(|(stop, t, n, d)| {
                let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7";
                let name = ["a", "db-query", "caf\u{e9}", "x::y"][n];
                let ts = "2020-02-27T08:04:25.000001";
                let id = format!("00000000-0000-4000-8000-{t:012x}");
                if stop {
                    format!("{ts} {}.{:06} {base} {base} {id} {name}-stop", d / 1_000_000, d % 1_000_000)
                } else {
                    format!("{ts}          {base} {base} {id} {name}-start")
                }
                .into_bytes()
            }),
            1 => proptest::collection::vec(any::<u8>(), 0..200),
            1 => Just(Vec::new()),
            1 => (0usize..2).prop_map(|n| vec![b'w'; [70_000, 1_500][n]]),
        ];
        (
            proptest::collection::vec((line, any::<bool>()), 1..120),
            any::<bool>(),
        )
            .prop_map(|(lines, last_newline)| {
                let mut out = Vec::new();
                for (line, crlf) in lines {
                    out.extend_from_slice(&line);
                    if crlf {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                }
                if !last_newline {
                    out.pop();
                }
                out
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn threaded_scan_is_the_full_parsers_on_random_logs(
            log in random_log(),
            chunk in 64usize..20_000,
            window in 1usize..40_000,
            workers in 1usize..4,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("random.log");
            std::fs::write(&path, &log).unwrap();
            let inputs = Inputs::from_paths([&path]).unwrap();
            let whole = full_parser_report(&inputs, &RankOptions::new());
            for mmap in [false, true] {
                let options = RankOptions::new().with_mmap(mmap);
                let Scanned { stats, open, unreadable } =
                    scan_parallel(&inputs, &options, workers, chunk, window).unwrap();
                let parallel = finish(stats, open, unreadable, &options).unwrap();
                proptest::prop_assert_eq!(&parallel.rows, &whole.rows);
                proptest::prop_assert_eq!(&parallel.unfinished, &whole.unfinished);
                proptest::prop_assert_eq!(&parallel.unreadable, &whole.unreadable);
            }
        }
    }

    /// Self time across two services' logs (A's `http` client point calls
    /// B, whose `wsgi` root is its child) and for a child that outlives its
    /// parent: subtracted as `osprof show`'s model subtracts it, whatever
    /// order the logs are given in.
    #[test]
    fn self_time_subtracts_children_in_other_logs() {
        let dir = tempfile::tempdir().unwrap();
        let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7";
        let id = |n: u32| format!("00000000-0000-4000-8000-{n:012x}");
        let line =
            |s: u32, micros: u32, dur: Option<f64>, parent: &str, trace: &str, name: &str| {
                let ts = format!("2020-02-27T08:04:{s:02}.{micros:06}");
                match dur {
                    Some(d) => format!("{ts} {d:.6} {base} {parent} {trace} {name}-stop\n"),
                    None => format!("{ts}          {base} {parent} {trace} {name}-start\n"),
                }
            };
        // A: wsgi 0..10 s, under it http 1..5 s (calls B) and task 6..9.5 s,
        // whose child `late` runs 9..12 s (it outlives both).
        let a = [
            line(0, 0, None, base, &id(1), "wsgi"),
            line(1, 0, None, &id(1), &id(2), "http"),
            line(5, 0, Some(4.0), &id(1), &id(2), "http"),
            line(6, 0, None, &id(1), &id(3), "task"),
            line(9, 0, None, &id(3), &id(4), "late"),
            line(9, 500_000, Some(3.5), &id(1), &id(3), "task"),
            line(10, 0, Some(10.0), base, &id(1), "wsgi"),
            line(12, 0, Some(3.0), &id(3), &id(4), "late"),
        ]
        .concat();
        // B: its wsgi 2..4 s, child of A's http.
        let b = [
            line(2, 0, None, &id(2), &id(10), "b-wsgi"),
            line(4, 0, Some(2.0), &id(2), &id(10), "b-wsgi"),
        ]
        .concat();
        let a_path = dir.path().join("a.log");
        let b_path = dir.path().join("b.log");
        std::fs::write(&a_path, a).unwrap();
        std::fs::write(&b_path, b).unwrap();
        let options = RankOptions::new().with_self_time(true);
        for paths in [[&a_path, &b_path], [&b_path, &a_path]] {
            let report = rank(&Inputs::from_paths(paths).unwrap(), &options).unwrap();
            let self_time = |name: &str| {
                report
                    .rows
                    .iter()
                    .find(|r| r.name == name)
                    .and_then(|r| r.self_time)
                    .unwrap()
            };
            // http: 4 s less B's 2 s.
            assert_eq!(self_time("http"), 2.0);
            // task: 3.5 s less `late` from 9 s to its end at 9.5 s.
            assert_eq!(self_time("task"), 3.0);
            // wsgi: 10 s less http (1..5) and task (6..9.5).
            assert_eq!(self_time("wsgi"), 2.5);
            assert_eq!(self_time("b-wsgi"), 2.0);
            assert_eq!(self_time("late"), 3.0);
        }
    }

    #[test]
    fn python_rounding_half_even_on_binary_value() {
        // Python: '{:.3f}'.format(x) for these x gives these strings.
        for (x, s) in [
            (0.0005, "0.001"),
            (0.0015, "0.002"),
            (0.0025, "0.003"),
            (2.675, "2.675"),
            (1.0005, "1.000"),
            (0.1235, "0.123"),
            (0.0045, "0.004"),
            (1234.5675, "1234.568"),
        ] {
            assert_eq!(format!("{x:.3}"), s, "{x}");
        }
    }

    /// A log of random points with random parents among them (children
    /// in other chunks, parents that start after their children, ids
    /// reused, stops without starts), some lines mangled.
    fn random_tree_log() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use crate::test_logs::{log_of, point_line, trace_id};
        use proptest::prelude::*;
        let point = (
            any::<bool>(),
            0u32..30,
            0u32..31,
            0usize..3,
            0u32..2_000_000,
            0u32..3_000_000,
        )
            .prop_map(|(stop, t, p, n, at, d)| {
                let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7";
                // Parent 30 is the request itself.
                let parent = if p == 30 {
                    base.to_owned()
                } else {
                    trace_id(p)
                };
                point_line(stop, t, base, &parent, n, at, d)
            });
        log_of(point)
    }

    fn self_time_report(
        inputs: &Inputs,
        options: &RankOptions,
        workers: usize,
        chunk: usize,
    ) -> Rank {
        let chunks = ChunkOptions {
            workers,
            chunk_bytes: chunk,
            window: 3 * chunk,
            mmap: options.mmap,
        };
        let Scanned {
            stats,
            open,
            unreadable,
        } = self_time::scan_with_self_time(inputs, options, &chunks).unwrap();
        finish(stats, open, unreadable, options).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn threaded_self_time_is_the_full_parsers_on_random_logs(
            logs in proptest::collection::vec(random_tree_log(), 1..3),
            chunk in 64usize..6_000,
            workers in 1usize..4,
            mmap in proptest::bool::ANY,
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
            let options = RankOptions::new()
                .with_self_time(true)
                .with_percentiles(true)
                .with_busy(true)
                .with_mmap(mmap);
            let whole = full_parser_report(&inputs, &options);
            let threaded = self_time_report(&inputs, &options, workers, chunk);
            proptest::prop_assert_eq!(&threaded.rows, &whole.rows);
            proptest::prop_assert_eq!(&threaded.unfinished, &whole.unfinished);
            proptest::prop_assert_eq!(&threaded.unreadable, &whole.unreadable);
        }
    }

    #[test]
    fn threaded_self_time_gives_the_full_parsers_figures_on_mixed_logs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        std::fs::write(&a, mixed_log(7)).unwrap();
        let inputs = Inputs::from_paths([&a]).unwrap();
        for options in [
            RankOptions::new().with_self_time(true),
            RankOptions::new().with_self_time(true).with_busy(true),
            RankOptions::new()
                .with_self_time(true)
                .with_filter(Filter::new().with_name(Some(crate::Pattern::new("*a*")))),
        ] {
            let whole = full_parser_report(&inputs, &options);
            assert!(whole.unreadable.count > 0 && !whole.unfinished.is_empty());
            for (workers, chunk) in [(1, 4096), (2, 700), (3, 100_000)] {
                let threaded = self_time_report(&inputs, &options, workers, chunk);
                assert_eq!(threaded.rows, whole.rows, "{workers} {chunk}");
                assert_eq!(threaded.unfinished, whole.unfinished);
                assert_eq!(threaded.unreadable, whole.unreadable);
            }
        }
    }
}
