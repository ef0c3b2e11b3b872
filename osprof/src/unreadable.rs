//! The lines no report could read: how many, and where and why for the
//! first few, so that a report is still made from the rest.

use std::fmt;

use crate::scan::Unread;
use crate::source::{Inputs, LineRef};

/// How many unreadable lines [`Unreadable`] remembers the place of.
pub const UNREADABLE_KEPT: usize = 5;

/// Lines that could not be read: how many, and where the first few are.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Unreadable {
    /// How many lines (blank lines are not counted).
    pub count: u64,
    /// The first [`UNREADABLE_KEPT`] of them.
    pub first: Vec<LinePlace>,
}

/// Where a line is and why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LinePlace {
    /// The log as named.
    pub log: String,
    /// 1-based line number.
    pub line: u64,
    /// Why it could not be read.
    pub reason: String,
}

impl Unreadable {
    pub(crate) fn note(&mut self, inputs: &Inputs, line: &LineRef<'_>, reason: &dyn fmt::Display) {
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

    /// Notes a chunk's unreadable `lines`, (index in the chunk, reason), of
    /// a chunk of log `source` that follows `lines_before` of its lines.
    pub(crate) fn note_chunk(
        &mut self,
        inputs: &Inputs,
        source: usize,
        lines_before: u64,
        lines: &[(u64, Unread)],
    ) {
        for &(index, why) in lines {
            let line = LineRef {
                source,
                line_no: lines_before + index + 1,
                bytes: &[],
                oversized: matches!(why, Unread::TooLong),
            };
            self.note(inputs, &line, &why);
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
