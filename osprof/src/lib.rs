//! `osprof`: reading osprofiler / Mistral profiler logs back and turning
//! them into the reports people act on.
//!
//! This crate is the read side of [`tracing_osprofiler`], which services
//! link to write the logs. Its modules follow the way data goes:
//!
//! | module | owns |
//! |---|---|
//! | [`source`] | where lines come from: files, stdin, gzip, rotated sets, in time order |
//! | `scan` | the fast line scanner (same result as [`parse_line`](tracing_osprofiler::format::parse_line)), its word-at-a-time helpers, hashing and small maps |
//! | [`model`] | points, requests, trees, self time; [`load_request`] gathers one request |
//! | [`Filter`], [`Pattern`], [`parse_time`] | which lines a report looks at |
//! | [`Unreadable`] | the lines no report could read, and why |
//! | [`check_logs`] | whether a file, standard input or a store is a profiler log at all |
//! | [`rank`] | time per trace name (Mistral's report, self time, percentiles) |
//! | [`list`] | one row per request |
//! | [`show`] | one request found (by `base_id`, prefix, latest, slowest) and rendered: tree, osprofiler JSON, Chrome trace, SVG, HTML |
//! | [`headers`] | the two headers for profiling one request by hand, and the key they are signed with |
//! | `render` | how `rank` and `list` are written (text, Markdown, CSV, JSON, in a [`Unit`]); the escaping every output shares |
//! | [`output`] | where a report goes: `-o FILE` or stdout |
//! | `steps` | counting the steps of `show`'s algorithms, for tests that check their complexity |
//!
//! Every report streams: memory is bounded by the points open at a time, the
//! distinct names (rank) or requests (list), never by the size of the logs.
//! No input makes a report panic; lines that cannot be read are counted
//! ([`Unreadable`]) and the rest of the log is still used.
//!
//! ```
//! use osprof::{rank, source::Inputs};
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

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Unit tests share helper files with the integration tests, which name
// this crate `osprof`.
#[cfg(test)]
extern crate self as osprof;

/// The setters `RankOptions` and `ListOptions` share, for the fields of
/// the same names (`reverse`, `top`, `format`, `mmap`): a table's order,
/// length and form, and how its logs are read mean the same in both.
macro_rules! table_setters {
    () => {
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

        /// Writes in this format.
        #[must_use]
        pub fn with_format(mut self, format: $crate::Format) -> Self {
            self.format = format;
            self
        }

        /// Maps plain (not gzip) log files into memory instead of reading
        /// them: no copy of the bytes, which makes the report faster on
        /// large plain files (figures in `docs/performance-report.md`).
        ///
        /// Off by default, because of one risk: if a mapped file is cut
        /// shorter while it is being read (`logrotate` with `copytruncate`,
        /// say), reading the lost bytes raises `SIGBUS`, which ends the
        /// process, whatever it is. Appending to the file is harmless. The
        /// `osprof` tool turns it on (its `--no-mmap` turns it off) and
        /// reports a `SIGBUS` as that error.
        #[must_use]
        pub fn with_mmap(mut self, on: bool) -> Self {
            self.mmap = on;
            self
        }
    };
}

use std::fmt;
use std::io;

mod filter;
pub mod headers;
pub mod list;
pub mod model;
pub mod output;
pub mod rank;
mod render;
mod scan;
pub mod show;
mod sniff;
pub mod source;
mod steps;
#[cfg(test)]
mod test_logs;
mod unreadable;

pub use filter::{parse_time, Filter, Pattern};
pub use model::load_request;
pub use render::Unit;
pub use sniff::{check_logs, check_streams, stdin_was_empty};
pub use unreadable::{LinePlace, Unreadable, UNREADABLE_KEPT};

/// The former name of [`source`], kept so that code written against it
/// still builds.
#[doc(hidden)]
pub use source as read;

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
    /// A file, or standard input, holds lines, and none of them is a
    /// profiler line: it is no profiler log ([`check_logs`]).
    NotALog {
        /// The log as named (`standard input` for `-`).
        name: String,
        /// The 1-based number of its first non-blank line.
        line: u64,
        /// That line, escaped and cut to 80 characters.
        first_line: String,
        /// Why that line is no profiler line.
        reason: String,
    },
    /// A Redis store was read to its end and gave no osprofiler event for
    /// what was asked (the whole store, or one request's key)
    /// ([`check_logs`]).
    NoEvents {
        /// The store as shown (no password), with the request's key when
        /// one was asked for.
        name: String,
        /// Whether one request was asked for, not the whole store.
        one_request: bool,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Open { name, source } => write!(f, "cannot open {name}: {source}"),
            Error::Read { name, source } => write!(f, "cannot read {name}: {source}"),
            Error::Write(e) => write!(f, "cannot write the report: {e}"),
            Error::NotALog {
                name,
                line,
                first_line,
                reason,
            } => write!(
                f,
                "{name} is not a profiler log: none of its lines is a trace point; its first \
                 line (line {line}) is \"{first_line}\" ({reason}). Give the files the writer \
                 makes (osprofiler.YYYY-MM-DD-HH.log) or a Mistral profiler log"
            ),
            Error::NoEvents {
                name,
                one_request: false,
            } => write!(
                f,
                "{name} holds no osprofiler event (no osprofiler_opt:* or osprofiler:* key \
                 with an entry that can be read): check the host, port and database number \
                 (/N) of the connection string"
            ),
            Error::NoEvents {
                name,
                one_request: true,
            } => write!(
                f,
                "{name} holds no osprofiler event of that request: it was not profiled or \
                 not kept, its key expired, or the connection string names another database \
                 (/N) than the services'"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open { source, .. } | Error::Read { source, .. } => Some(source),
            Error::Write(e) => Some(e),
            Error::NotALog { .. } | Error::NoEvents { .. } => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Write(e)
    }
}

/// The output form of a report.
///
/// With the `cli` feature it is a [`clap::ValueEnum`] (`--format text`),
/// which is how the `osprof` tool parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
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

impl Format {
    /// Whether a report in this format holds its notes (unfinished points,
    /// unreadable lines) itself, as Markdown and JSON do. Text and CSV stay
    /// plain tables (Mistral's layout, one header row), so the tool writes
    /// their notes (`Rank::notes`, `List::notes`) to stderr instead.
    #[must_use]
    pub fn holds_notes(self) -> bool {
        matches!(self, Format::Markdown | Format::Json)
    }
}
