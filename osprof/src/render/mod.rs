//! How the tabular reports look: the text, Markdown, CSV and JSON
//! renderings of [`rank`](crate::rank) and [`list`](crate::list), and the
//! escaping of text every report's output shares.
//!
//! The reports compute their figures in their own modules; this one only
//! turns finished figures into bytes, so that a change of layout never
//! touches the reading of logs, and the other way round.

use std::fmt::Display;
use std::io::{self, Write};

pub(crate) mod escape;
mod list;
mod rank;

/// How a Markdown or CSV line is laid out: `open`, the cells with `between`
/// between them, `close`. One layout serves a table's header and its rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    open: &'static str,
    between: &'static str,
    close: &'static str,
}

impl Line {
    /// `| a | b |`
    pub(crate) const MARKDOWN: Line = Line {
        open: "| ",
        between: " | ",
        close: " |",
    };

    /// `a,b`
    pub(crate) const CSV: Line = Line {
        open: "",
        between: ",",
        close: "",
    };

    /// Writes `cells` (already escaped) as one line, with its newline.
    pub(crate) fn write<C: Display>(
        self,
        out: &mut dyn Write,
        cells: impl IntoIterator<Item = C>,
    ) -> io::Result<()> {
        out.write_all(self.open.as_bytes())?;
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                out.write_all(self.between.as_bytes())?;
            }
            write!(out, "{cell}")?;
        }
        writeln!(out, "{}", self.close)
    }
}

/// The unit durations are written in by the text, Markdown and CSV forms
/// of `rank` and `list` (`--unit` with the `cli` feature). JSON always
/// holds seconds, at full precision.
///
/// | unit | text, Markdown | CSV | headers |
/// |---|---|---|---|
/// | seconds (default) | 3 decimals | 6 decimals | Mistral's (`Total time`, `total`) |
/// | milliseconds | 3 decimals | 3 decimals | `Total time (ms)`, `total_ms` |
/// | microseconds | 0 decimals | 0 decimals | `Total time (us)`, `total_us` |
///
/// Milliseconds keep a request of a few milliseconds from showing as
/// `0.000`; every unit keeps the microsecond a log's durations have. `list`
/// writes its wall times in seconds with 6 decimals (a request is often
/// shorter than a millisecond), and its text header names the unit in
/// seconds too (`Wall time (s)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum Unit {
    /// Seconds (Mistral's layout).
    #[default]
    #[cfg_attr(feature = "cli", value(name = "s"))]
    Seconds,
    /// Milliseconds.
    #[cfg_attr(feature = "cli", value(name = "ms"))]
    Millis,
    /// Microseconds.
    #[cfg_attr(feature = "cli", value(name = "us"))]
    Micros,
}

impl Unit {
    /// Seconds in this unit.
    #[must_use]
    pub fn of(self, seconds: f64) -> f64 {
        match self {
            Unit::Seconds => seconds,
            Unit::Millis => seconds * 1e3,
            Unit::Micros => seconds * 1e6,
        }
    }

    /// Its symbol: `s`, `ms`, `us`.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::Micros => "us",
        }
    }

    /// Decimals in text and Markdown: down to the microsecond, never more
    /// than Mistral's three.
    pub(crate) fn decimals(self) -> usize {
        match self {
            Unit::Seconds | Unit::Millis => 3,
            Unit::Micros => 0,
        }
    }

    /// Decimals in CSV: exactly to the microsecond.
    pub(crate) fn csv_decimals(self) -> usize {
        match self {
            Unit::Seconds => 6,
            Unit::Millis => 3,
            Unit::Micros => 0,
        }
    }

    /// ` (ms)` after a text header; nothing for seconds, whose headers are
    /// Mistral's.
    pub(crate) fn text_suffix(self) -> String {
        match self {
            Unit::Seconds => String::new(),
            unit => format!(" ({})", unit.symbol()),
        }
    }

    /// `_ms` after a CSV column's name; nothing for seconds.
    pub(crate) fn csv_suffix(self) -> String {
        match self {
            Unit::Seconds => String::new(),
            unit => format!("_{}", unit.symbol()),
        }
    }
}
