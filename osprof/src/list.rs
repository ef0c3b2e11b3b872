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
//! Filters: `base_ids` and `since`/`until` select requests by id and by
//! first timestamp, `name` by root name.

use std::io::{self, Write};

use serde::Serialize;

use crate::model::secs_to_micros;
use crate::scan::names::Interner;
use crate::scan::{for_each_parsed, IdMap};
use crate::source::Inputs;
use crate::table::{csv, markdown};
use crate::{Error, Filter, Format, Unreadable};
use tracing_osprofiler::format::{Phase, Timestamp};
use tracing_osprofiler::Id;

/// What `list` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
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

    /// Flips the sort order.
    #[must_use]
    pub fn with_reverse(mut self, on: bool) -> Self {
        self.reverse = on;
        self
    }

    /// Keeps only the first `n` rows.
    #[must_use]
    pub fn with_top(mut self, n: Option<usize>) -> Self {
        self.top = n;
        self
    }

    /// Keeps only the requests `filter` keeps (see the module docs).
    #[must_use]
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Writes in this format.
    #[must_use]
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRow {
    /// The request's id.
    #[serde(serialize_with = "display")]
    pub base_id: Id,
    /// The earliest begin (written in the log's form).
    #[serde(serialize_with = "display")]
    pub first: Timestamp,
    /// From the earliest begin to the latest end, in seconds.
    pub wall: f64,
    /// Number of points.
    pub points: u64,
    /// Points with a start line and no stop line.
    pub unfinished: u64,
    /// The root point's name.
    pub root: String,
    /// The logs it appears in: indexes into [`List::logs`] (the order
    /// given), so that a name is held once however many requests.
    pub logs: Vec<usize>,
}

/// The list report.
#[derive(Debug, Clone, Serialize)]
pub struct List {
    /// The logs read, as named, in the order given.
    pub logs: Vec<String>,
    /// The requests, sorted, cut to `top`.
    pub requests: Vec<RequestRow>,
    /// Lines that could not be read.
    pub unreadable: Unreadable,
    #[serde(skip)]
    format: Format,
}

struct Acc {
    first: i64,
    last: i64,
    points: u32,
    unfinished: u32,
    /// (parent is the base, begin, index of the name in the interner).
    root: Option<(bool, i64, u32)>,
    /// Most requests are in one log: no allocation for them.
    source: usize,
    more_sources: Vec<usize>,
}

impl Acc {
    fn see_root(&mut self, is_root: bool, begin: i64, name: &str, names: &mut Interner) {
        let better = match &self.root {
            None => true,
            Some((r, b, _)) => (is_root, std::cmp::Reverse(begin)) > (*r, std::cmp::Reverse(*b)),
        };
        if better {
            self.root = Some((is_root, begin, names.intern(name.as_bytes()).0));
        }
    }
}

/// Reads `inputs` and builds the list (streaming).
pub fn list(inputs: &Inputs, options: &ListOptions) -> Result<List, Error> {
    let mut requests: IdMap<Acc> = IdMap::default();
    // trace_id -> begin of the points open now.
    let mut open: IdMap<i64> = IdMap::default();
    let mut unreadable = Unreadable::default();
    let mut names = Interner::default();
    let filter = &options.filter;
    for_each_parsed(inputs, &mut unreadable, |source, line| {
        let base = line.ids.base_id;
        if !filter.keeps_base(base) {
            return;
        }
        let t = line.timestamp.unix_micros();
        let acc = requests.entry(base).or_insert_with(|| Acc {
            first: i64::MAX,
            last: i64::MIN,
            points: 0,
            unfinished: 0,
            root: None,
            source,
            more_sources: Vec::new(),
        });
        if acc.source != source && !acc.more_sources.contains(&source) {
            acc.more_sources.push(source);
        }
        let is_root = line.ids.parent_id == base;
        match line.phase {
            Phase::Start => {
                acc.points = acc.points.saturating_add(1);
                acc.unfinished = acc.unfinished.saturating_add(1);
                open.insert(line.ids.trace_id, t);
                acc.first = acc.first.min(t);
                acc.last = acc.last.max(t);
                acc.see_root(is_root, t, &line.name, &mut names);
            }
            Phase::Stop => {
                let micros = secs_to_micros(line.duration.unwrap_or(0.0));
                let begin = match open.remove(&line.ids.trace_id) {
                    Some(begin) => {
                        acc.unfinished = acc.unfinished.saturating_sub(1);
                        begin
                    }
                    None => {
                        acc.points = acc.points.saturating_add(1);
                        let begin = t.saturating_sub(micros);
                        acc.see_root(is_root, begin, &line.name, &mut names);
                        begin
                    }
                };
                acc.first = acc.first.min(begin);
                acc.last = acc.last.max(begin.saturating_add(micros));
            }
        }
    })?;
    let mut requests: Vec<RequestRow> = requests
        .into_iter()
        .filter(|(_, a)| {
            let first = Timestamp::from_unix_micros(a.first);
            let root = a.root.map(|r| names.text(r.2)).unwrap_or_default();
            filter.keeps_time(first) && filter.keeps_name(&root)
        })
        .map(|(base, a)| {
            let mut logs = a.more_sources;
            logs.push(a.source);
            logs.sort_unstable();
            let wall = if a.last > a.first {
                (a.last - a.first) as f64 / 1e6
            } else {
                0.0
            };
            RequestRow {
                base_id: base,
                first: Timestamp::from_unix_micros(a.first),
                wall,
                points: u64::from(a.points),
                unfinished: u64::from(a.unfinished),
                root: a
                    .root
                    .map(|r| names.text(r.2).into_owned())
                    .unwrap_or_default(),
                logs,
            }
        })
        .collect();
    // A fixed order first (time, then id) so that ties are deterministic.
    requests.sort_by(|a, b| {
        a.first
            .cmp(&b.first)
            .then_with(|| a.base_id.cmp(&b.base_id))
    });
    requests.sort_by(|a, b| {
        let ord = match options.sort {
            ListSort::Wall => b.wall.total_cmp(&a.wall),
            ListSort::First => std::cmp::Ordering::Equal,
            ListSort::Points => b.points.cmp(&a.points),
            ListSort::Name => a.root.cmp(&b.root),
        };
        if options.reverse {
            ord.reverse()
        } else {
            ord
        }
    });
    if options.reverse && options.sort == ListSort::First {
        requests.reverse();
    }
    if let Some(top) = options.top {
        requests.truncate(top);
    }
    Ok(List {
        logs: inputs.sources().iter().map(ToString::to_string).collect(),
        requests,
        unreadable,
        format: options.format,
    })
}

fn display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

impl List {
    fn log_names(&self, row: &RequestRow, separator: &str) -> String {
        row.logs
            .iter()
            .filter_map(|&i| self.logs.get(i).map(String::as_str))
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// Writes the list in the format of its options.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        match self.format {
            Format::Text => {
                writeln!(
                    out,
                    "{:<36} {:<26} {:>12} {:>7} {:<40} Logs",
                    "Base id", "First timestamp", "Wall time", "Points", "Root name"
                )?;
                for r in &self.requests {
                    writeln!(
                        out,
                        "{:<36} {:<26} {:>12.3} {:>7} {:<40} {}",
                        r.base_id,
                        r.first,
                        r.wall,
                        r.points,
                        r.root,
                        self.log_names(r, ",")
                    )?;
                }
                Ok(())
            }
            Format::Markdown => {
                writeln!(
                    out,
                    "| Base id | First timestamp | Wall time (s) | Points | Root name | Logs |"
                )?;
                writeln!(out, "|---|---|---:|---:|---|---|")?;
                for r in &self.requests {
                    writeln!(
                        out,
                        "| {} | {} | {:.3} | {} | {} | {} |",
                        r.base_id,
                        r.first,
                        r.wall,
                        r.points,
                        markdown(&r.root),
                        markdown(&self.log_names(r, ", "))
                    )?;
                }
                if self.unreadable.count > 0 {
                    writeln!(out, "\n{}", markdown(&self.unreadable.to_string()))?;
                }
                Ok(())
            }
            Format::Csv => {
                writeln!(out, "base_id,first,wall,points,unfinished,root,logs")?;
                for r in &self.requests {
                    writeln!(
                        out,
                        "{},{},{:.6},{},{},{},{}",
                        r.base_id,
                        r.first,
                        r.wall,
                        r.points,
                        r.unfinished,
                        csv(&r.root),
                        csv(&self.log_names(r, ";"))
                    )?;
                }
                Ok(())
            }
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, self)?;
                out.write_all(b"\n")
            }
        }
    }

    /// What text and CSV leave out, for stderr: the unreadable lines.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        if self.unreadable.count > 0 {
            vec![self.unreadable.to_string()]
        } else {
            Vec::new()
        }
    }
}
