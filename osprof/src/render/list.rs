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
        match self.format {
            Format::Text => {
                let wall = format!("Wall time ({})", unit.symbol());
                let w = wall.len().max(12);
                writeln!(
                    out,
                    "{:<36} {:<26} {wall:>w$} {:>7} {:<40} Logs",
                    "Base id", "First timestamp", "Points", "Root name"
                )?;
                for r in &self.requests {
                    writeln!(
                        out,
                        "{:<36} {:<26} {:>w$.p$} {:>7} {:<40} {}",
                        r.base_id,
                        r.first,
                        unit.of(r.wall),
                        r.points,
                        text(&root_cell(r)),
                        text(&self.log_names(r, ","))
                    )?;
                }
                Ok(())
            }
            Format::Markdown => {
                writeln!(
                    out,
                    "| Base id | First timestamp | Wall time ({}) | Points | Root name | Logs |",
                    unit.symbol()
                )?;
                writeln!(out, "|---|---|---:|---:|---|---|")?;
                for r in &self.requests {
                    writeln!(
                        out,
                        "| {} | {} | {:.p$} | {} | {} | {} |",
                        r.base_id,
                        r.first,
                        unit.of(r.wall),
                        r.points,
                        markdown(&root_cell(r)),
                        markdown(&self.log_names(r, ", "))
                    )?;
                }
                if self.unreadable.count > 0 {
                    writeln!(out, "\n{}", markdown(&self.unreadable.to_string()))?;
                }
                Ok(())
            }
            Format::Csv => {
                writeln!(
                    out,
                    "base_id,first,wall{},points,unfinished,root,logs",
                    unit.csv_suffix()
                )?;
                let p = unit.csv_decimals();
                for r in &self.requests {
                    writeln!(
                        out,
                        "{},{},{:.p$},{},{},{},{}",
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

    /// What text and CSV leave out, for stderr: the unreadable lines.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        if self.unreadable.count > 0 {
            vec![text(&self.unreadable.to_string()).into_owned()]
        } else {
            Vec::new()
        }
    }
}
