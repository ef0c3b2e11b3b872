//! `osprof`: reading osprofiler / Mistral profiler logs back and turning
//! them into the reports people act on.
//!
//! This crate is the read side of [`tracing_osprofiler`], which services
//! link to write the logs; it owns the [`model`] every report works on
//! (points, requests, trees with self time), the [`read`]ing of inputs
//! (files, stdin, gzip, rotated sets), and the reports the `osprof` tool
//! prints: [`rank`] (time per trace name), [`list`] (one row per request) and
//! [`headers`] (the two headers for profiling one request by hand).
//! [`load_request`] gathers one request for the per-request renderings.
//!
//! Every report streams: memory is bounded by the points open at a time, the
//! distinct names (rank) or requests (list), never by the size of the logs.
//! No input makes a report panic; lines that cannot be read are counted
//! ([`Unreadable`]) and the rest of the log is still used.
//!
//! ```
//! use osprof::{rank, read::Inputs};
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("a.log");
//! std::fs::write(&path, "\
//! 2020-02-27T08:04:25.954502          f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d workflow-set-state-start
//! 2020-02-27T08:04:25.961298 0.006782 f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d workflow-set-state-stop
//! ")?;
//! let inputs = Inputs::from_paths([&path])?;
//! let report = rank::rank(&inputs, &rank::RankOptions::default())?;
//! let mut out = Vec::new();
//! report.write(&mut out)?;
//! assert!(String::from_utf8(out)?.ends_with("0.007        0.007      0.007      1             workflow-set-state\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::collections::HashMap;
use std::fmt;
use std::io;

use tracing_osprofiler::format::{Line, ParseError, Phase, Timestamp};
use tracing_osprofiler::Id;

pub mod headers;
pub mod list;
pub mod model;
pub mod rank;
pub mod read;
mod scan;
pub mod show;
mod table;

use model::{Point, Request};
use read::{Inputs, LineRef};

/// Why a report could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A log could not be opened.
    Open {
        /// The log as named (a path, or `-`).
        name: String,
        /// Why.
        source: io::Error,
    },
    /// A log could not be read to its end (an I/O error, or a corrupt gzip
    /// stream).
    Read {
        /// The log as named (a path, or `-`).
        name: String,
        /// Why.
        source: io::Error,
    },
    /// The report could not be written.
    Write(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open { name, source } => write!(f, "cannot open {name}: {source}"),
            Error::Read { name, source } => write!(f, "cannot read {name}: {source}"),
            Error::Write(e) => write!(f, "cannot write the report: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open { source, .. } | Error::Read { source, .. } => Some(source),
            Error::Write(e) => Some(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Write(e)
    }
}

/// The output form of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned plain text (for `rank`, Mistral's exact layout).
    #[default]
    Text,
    /// A GitHub-flavoured Markdown table.
    Markdown,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object.
    Json,
}

/// How many unreadable lines [`Unreadable`] remembers the place of.
pub const UNREADABLE_KEPT: usize = 5;

/// Lines that could not be read: how many, and where the first few are.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// How many lines (blank lines are not counted).
    pub count: u64,
    /// The first [`UNREADABLE_KEPT`] of them.
    pub first: Vec<LinePlace>,
}

/// Where a line is and why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinePlace {
    /// The log as named.
    pub log: String,
    /// 1-based line number.
    pub line: u64,
    /// Why it could not be read.
    pub reason: String,
}

impl Unreadable {
    fn note(&mut self, inputs: &Inputs, line: &LineRef<'_>, reason: &dyn fmt::Display) {
        self.count += 1;
        if self.first.len() < UNREADABLE_KEPT {
            self.first.push(LinePlace {
                log: inputs
                    .sources()
                    .get(line.source)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                line: line.line_no,
                reason: reason.to_string(),
            });
        }
    }
}

impl fmt::Display for Unreadable {
    /// `3 unreadable lines (a.log:4: truncated line, ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} unreadable line{}",
            self.count,
            if self.count == 1 { "" } else { "s" }
        )?;
        for (i, place) in self.first.iter().enumerate() {
            f.write_str(if i == 0 { " (" } else { ", " })?;
            write!(f, "{}:{}: {}", place.log, place.line, place.reason)?;
        }
        if !self.first.is_empty() {
            if self.count > self.first.len() as u64 {
                f.write_str(", ...")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Parses each line of `inputs`, counting the unreadable ones, and calls `f`
/// with the readable ones.
fn for_each_parsed(
    inputs: &Inputs,
    unreadable: &mut Unreadable,
    mut f: impl FnMut(usize, Line<'_>),
) -> Result<(), Error> {
    let mut parser = scan::LineParser::default();
    inputs.for_each_line(|line| {
        if line.oversized {
            unreadable.note(inputs, &line, &"line too long");
            return;
        }
        match parser.parse(line.bytes) {
            Ok(parsed) => f(line.source, parsed),
            Err(ParseError::Blank) => {}
            Err(e) => unreadable.note(inputs, &line, &e),
        }
    })
}

/// A `*`/`?` wildcard pattern over trace names (`engine-*`); without a
/// wildcard it must match the whole name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<char>);

impl Pattern {
    /// A pattern from its text.
    #[must_use]
    pub fn new(pattern: &str) -> Self {
        Pattern(pattern.chars().collect())
    }

    /// Whether `name` matches.
    ///
    /// ```
    /// use osprof::Pattern;
    /// assert!(Pattern::new("engine-*-complete").matches("engine-on-action-complete"));
    /// assert!(!Pattern::new("engine").matches("engine-start"));
    /// ```
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        // Iterative glob with one backtrack point: linear in practice, never
        // exponential.
        let p = &self.0;
        let n: Vec<char> = name.chars().collect();
        let (mut pi, mut ni) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
                pi += 1;
                ni += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ni));
                pi += 1;
            } else if let Some((sp, sn)) = star {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

/// Which lines a report looks at. The default keeps everything.
///
/// | setting | default | keeps |
/// |---|---|---|
/// | `base_ids` | empty: all | lines of these requests |
/// | `name` | none: all | lines whose trace name matches |
/// | `since` | none | lines at or after this time |
/// | `until` | none | lines before this time |
#[derive(Debug, Clone, Default)]
pub struct Filter {
    base_ids: Vec<Id>,
    name: Option<Pattern>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

impl Filter {
    /// Keeps everything.
    #[must_use]
    pub fn new() -> Self {
        Filter::default()
    }

    /// Keeps only these requests (all when empty).
    #[must_use]
    pub fn with_base_ids(mut self, ids: Vec<Id>) -> Self {
        self.base_ids = ids;
        self
    }

    /// Keeps only names matching `pattern`.
    #[must_use]
    pub fn with_name(mut self, pattern: Option<Pattern>) -> Self {
        self.name = pattern;
        self
    }

    /// Keeps only lines at or after `since`.
    #[must_use]
    pub fn with_since(mut self, since: Option<Timestamp>) -> Self {
        self.since = since;
        self
    }

    /// Keeps only lines before `until`.
    #[must_use]
    pub fn with_until(mut self, until: Option<Timestamp>) -> Self {
        self.until = until;
        self
    }

    fn keeps_base(&self, base_id: Id) -> bool {
        self.base_ids.is_empty() || self.base_ids.contains(&base_id)
    }

    fn keeps_time(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    fn keeps_name(&self, name: &str) -> bool {
        self.name.as_ref().is_none_or(|p| p.matches(name))
    }

    fn keeps(&self, line: &Line<'_>) -> bool {
        self.keeps_base(line.ids.base_id)
            && self.keeps_time(line.timestamp)
            && self.keeps_name(&line.name)
    }
}

/// Reads a time given on a command line: `YYYY-MM-DDTHH:MM:SS[.ffffff]`
/// (UTC; a space may replace the `T`, a trailing `Z` is allowed), or a
/// date alone (`YYYY-MM-DD`, midnight).
///
/// ```
/// use osprof::parse_time;
/// let t = parse_time("2020-02-27T08:04:25.5").unwrap();
/// assert_eq!(t.to_string(), "2020-02-27T08:04:25.500000");
/// assert_eq!(parse_time("2020-02-27").unwrap().to_string(), "2020-02-27T00:00:00.000000");
/// assert!(parse_time("yesterday").is_none());
/// ```
#[must_use]
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (text, "00:00:00"),
    };
    let mut d = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u8>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = format!("{frac:0<6}").parse::<u32>().ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(year).ok()?,
        time::Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let dt = date.with_hms_micro(h, m, s, micros).ok()?.assume_utc();
    Some(Timestamp::from(dt))
}

/// Gathers the points of one request from `inputs`, keeping only that
/// request's lines in memory; `None` when no line has that `base_id`.
/// Starts and stops are matched by `trace_id` across all logs.
pub fn load_request(inputs: &Inputs, base_id: Id) -> Result<Option<Request>, Error> {
    let mut points: Vec<Point> = Vec::new();
    let mut by_trace: HashMap<Id, usize> = HashMap::new();
    let mut sources: Vec<usize> = Vec::new();
    let mut unreadable = Unreadable::default();
    for_each_parsed(inputs, &mut unreadable, |source, line| {
        if line.ids.base_id != base_id {
            return;
        }
        if !sources.contains(&source) {
            sources.push(source);
        }
        let i = *by_trace.entry(line.ids.trace_id).or_insert_with(|| {
            points.push(Point {
                name: line.name.to_string(),
                ids: line.ids,
                start: None,
                stop: None,
                duration: None,
                source,
            });
            points.len() - 1
        });
        let point = &mut points[i];
        match line.phase {
            Phase::Start => point.start = Some(line.timestamp),
            Phase::Stop => {
                point.stop = Some(line.timestamp);
                point.duration = line.duration;
            }
        }
    })?;
    if points.is_empty() {
        return Ok(None);
    }
    sources.sort_unstable();
    Ok(Some(Request {
        base_id,
        points,
        sources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        for (p, n, m) in [
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("?x", "yx", true),
            ("db-*", "db-query", true),
            ("*-stop", "a-stop-x", false),
        ] {
            assert_eq!(Pattern::new(p).matches(n), m, "{p} {n}");
        }
    }

    #[test]
    fn times() {
        assert!(parse_time("2020-02-30").is_none());
        assert!(parse_time("2020-02-27T25:00:00").is_none());
        assert!(parse_time("2020-02-27T08:04:25.1234567").is_none());
        assert_eq!(
            parse_time("2020-02-27 08:04").unwrap().to_string(),
            "2020-02-27T08:04:00.000000"
        );
    }
}
