//! The `list` report written out: text, Markdown, CSV and JSON, and the
//! notes for stderr.

use std::io::{self, Write};

use crate::list::{List, ListOptions, RequestRow};
use crate::render::escape::{csv, json_pretty, markdown, text};
use crate::{Format, Unit};

impl ListOptions {
    /// Writes wall times in this unit in text, Markdown and CSV (see
    /// [`Unit`]); seconds by default.
    #[must_use]
    pub fn with_unit(mut self, unit: Unit) -> Self {
        self.unit = unit;
        self
    }
}

/// The root's name, and why tail capture kept the request if it did:
/// `wsgi (kept: slow)`. JSON has `kept` as a member of its own.
fn root_cell(row: &RequestRow) -> std::borrow::Cow<'_, str> {
    match row.kept {
        Some(why) => format!("{} (kept: {why})", row.root).into(),
        None => row.root.as_str().into(),
    }
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
    ///
    /// # Errors
    ///
    /// Any error of `out`.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let unit = self.unit;
        // A request's wall time to the microsecond, which is what the logs
        // hold: in seconds that takes six decimals (a 0.235 ms request is
        // 0.000235, not 0.000), and the header always names the unit.
        let p = match unit {
            Unit::Seconds => 6,
            unit => unit.decimals(),
        };
        // The root's busy time, in a column of its own when some request
        // has one; `-` (empty in CSV) where unknown, never 0.
        let busy = self.requests.iter().any(|r| r.busy.is_some());
        let busy_cell = |r: &RequestRow, p: usize, unknown: &str| {
            r.busy
                .map_or_else(|| unknown.to_owned(), |b| format!("{:.p$}", unit.of(b)))
        };
        match self.format {
            Format::Text => {
                let wall = format!("Wall time ({})", unit.symbol());
                let w = wall.len().max(12);
                let busy_header = format!("Busy ({})", unit.symbol());
                let bw = busy_header.len().max(12);
                write!(
                    out,
                    "{:<36} {:<26} {wall:>w$} ",
                    "Base id", "First timestamp"
                )?;
                if busy {
                    write!(out, "{busy_header:>bw$} ")?;
                }
                writeln!(out, "{:>7} {:<40} Logs", "Points", "Root name")?;
                for r in &self.requests {
                    write!(
                        out,
                        "{:<36} {:<26} {:>w$.p$} ",
                        r.base_id,
                        r.first,
                        unit.of(r.wall)
                    )?;
                    if busy {
                        write!(out, "{:>bw$} ", busy_cell(r, p, "-"))?;
                    }
                    writeln!(
                        out,
                        "{:>7} {:<40} {}",
                        r.points,
                        text(&root_cell(r)),
                        text(&self.log_names(r, ","))
                    )?;
                }
                Ok(())
            }
            Format::Markdown => {
                let (busy_header, busy_rule) = if busy {
                    (format!(" Busy ({}) |", unit.symbol()), "---:|")
                } else {
                    (String::new(), "")
                };
                writeln!(
                    out,
                    "| Base id | First timestamp | Wall time ({}) |{busy_header} Points | Root name | Logs |",
                    unit.symbol()
                )?;
                writeln!(out, "|---|---|---:|{busy_rule}---:|---|---|")?;
                for r in &self.requests {
                    let busy = if busy {
                        format!(" {} |", busy_cell(r, p, "-"))
                    } else {
                        String::new()
                    };
                    writeln!(
                        out,
                        "| {} | {} | {:.p$} |{busy} {} | {} | {} |",
                        r.base_id,
                        r.first,
                        unit.of(r.wall),
                        r.points,
                        markdown(&root_cell(r)),
                        markdown(&self.log_names(r, ", "))
                    )?;
                }
                for note in self.note_texts() {
                    writeln!(out, "\n{}", markdown(&note))?;
                }
                Ok(())
            }
            Format::Csv => {
                let busy_header = if busy {
                    format!("busy{},", unit.csv_suffix())
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "base_id,first,wall{},{busy_header}points,unfinished,root,logs",
                    unit.csv_suffix()
                )?;
                let p = unit.csv_decimals();
                for r in &self.requests {
                    let busy = if busy {
                        format!("{},", busy_cell(r, p, ""))
                    } else {
                        String::new()
                    };
                    writeln!(
                        out,
                        "{},{},{:.p$},{busy}{},{},{},{}",
                        r.base_id,
                        r.first,
                        unit.of(r.wall),
                        r.points,
                        r.unfinished,
                        csv(&root_cell(r)),
                        csv(&self.log_names(r, ";"))
                    )?;
                }
                Ok(())
            }
            Format::Json => {
                json_pretty(out, self)?;
                out.write_all(b"\n")
            }
        }
    }

    /// What text and CSV leave out, for stderr: the unreadable lines, the
    /// requests whose wall time is unknown (spanning more than 100 years).
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        self.note_texts()
            .iter()
            .map(|note| text(note).into_owned())
            .collect()
    }

    fn note_texts(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.unreadable.count > 0 {
            notes.push(self.unreadable.to_string());
        }
        if !self.walls_too_long.is_empty() {
            notes.push(self.walls_too_long.to_string());
        }
        notes
    }
}
