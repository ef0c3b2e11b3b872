//! The `rank` report written out: Mistral's text layout, Markdown, CSV and
//! JSON, and the notes for stderr.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::rank::{Rank, RankOptions, Row};
use crate::render::escape::{csv, json_pretty, markdown, text};
use crate::render::Line;
use crate::{Format, Unit};

impl RankOptions {
    /// Writes durations in this unit in text, Markdown and CSV (see
    /// [`Unit`]); seconds, Mistral's, by default.
    #[must_use]
    pub fn with_unit(mut self, unit: Unit) -> Self {
        self.unit = unit;
        self
    }
}

/// An optional column: its header, whether it counts points (no unit),
/// and how to get its value (`None`: unknown, written `-`, empty in CSV).
type ExtraColumn = (&'static str, bool, fn(&Row) -> Option<f64>);

/// An extra column's value as text, Markdown and CSV write it; `unknown`
/// for a value that is not known, which is never written as 0.
fn cell(col: &ExtraColumn, r: &Row, unit: Unit, decimals: usize, unknown: &str) -> String {
    match ((col.2)(r), col.1) {
        (None, _) => unknown.to_owned(),
        (Some(count), true) => format!("{count:.0}"),
        (Some(secs), false) => format!("{:.decimals$}", unit.of(secs)),
    }
}

impl Rank {
    /// Writes the report in the format of its options.
    ///
    /// # Errors
    ///
    /// Any error of `out`.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        match self.options.format {
            Format::Text => self.write_text(out),
            Format::Markdown => self.write_markdown(out),
            Format::Csv => self.write_csv(out),
            Format::Json => {
                json_pretty(out, self)?;
                out.write_all(b"\n")
            }
        }
    }

    /// The extra columns, as (header, value getter).
    fn extra_columns(&self) -> Vec<ExtraColumn> {
        let mut cols: Vec<ExtraColumn> = Vec::new();
        if self.options.self_time {
            cols.push(("Self time", false, |r| r.self_time));
        }
        if self.options.percentiles {
            cols.push(("p50", false, |r| r.p50));
            cols.push(("p95", false, |r| r.p95));
            cols.push(("p99", false, |r| r.p99));
        }
        if self.options.busy {
            cols.push(("Busy total", false, |r| r.busy.and_then(|b| b.total)));
            cols.push(("Busy avg", false, |r| r.busy.and_then(|b| b.avg)));
            cols.push(("Busy unknown", true, |r| r.busy.map(|b| b.unknown as f64)));
        }
        cols
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let extra = self.extra_columns();
        let unit = self.options.unit;
        let (u, p) = (unit.text_suffix(), unit.decimals());
        // A column is as wide as its header and ` |`, and its widest value
        // (Mistral's widths, 12, 10, 10, 13, for its own headers
        // in seconds; wider for a unit, a longer extra header or a long
        // duration), each header padded to it: every header starts over its
        // values, whatever the unit.
        let mut header = String::new();
        let mut widths = Vec::with_capacity(4 + extra.len());
        let base = [
            ("Total time", 12),
            ("Max time", 10),
            ("Avg time", 10),
            ("Occurrences", 13),
        ];
        let extra_headers = extra.iter().map(|(h, _, _)| (*h, 10));
        for (i, (h, least)) in base.into_iter().chain(extra_headers).enumerate() {
            let name = if i == 3 || (i > 3 && extra[i - 4].1) {
                h.to_owned()
            } else {
                format!("{h}{u}")
            };
            let widest = match i {
                0 => self.rows.iter().map(|r| r.total).fold(0.0, f64::max),
                1 => self.rows.iter().map(|r| r.max).fold(0.0, f64::max),
                2 => self.rows.iter().map(|r| r.avg).fold(0.0, f64::max),
                _ => 0.0,
            };
            let value_width = match i {
                3 => self
                    .rows
                    .iter()
                    .map(|r| r.count)
                    .max()
                    .unwrap_or(0)
                    .to_string()
                    .len(),
                4.. => self
                    .rows
                    .iter()
                    .map(|r| cell(&extra[i - 4], r, unit, p, "-").len())
                    .max()
                    .unwrap_or(0),
                _ => format!("{:.p$}", unit.of(widest)).len(),
            };
            let width = least.max(name.len() + 2).max(value_width);
            header.push_str(&format!("{name:<w$} | ", w = width - 2));
            widths.push(width);
        }
        header.push_str("Trace name");
        writeln!(out, "{header}")?;
        let rule = widths.iter().map(|w| w + 1).sum::<usize>() + 42;
        writeln!(out, "{}", "-".repeat(rule))?;
        for r in &self.rows {
            write!(
                out,
                "{:<w0$.p$} {:<w1$.p$} {:<w2$.p$} {:<w3$} ",
                unit.of(r.total),
                unit.of(r.max),
                unit.of(r.avg),
                r.count,
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            )?;
            for (col, w) in extra.iter().zip(&widths[4..]) {
                write!(out, "{:<w$} ", cell(col, r, unit, p, "-"))?;
            }
            writeln!(out, "{}", text(&r.name))?;
        }
        Ok(())
    }

    fn write_markdown(&self, out: &mut dyn Write) -> io::Result<()> {
        let extra = self.extra_columns();
        let unit = self.options.unit;
        let u = unit.symbol();
        let headers = ["Total time", "Max time", "Avg time"]
            .map(|h| format!("{h} ({u})"))
            .into_iter()
            .chain(["Occurrences".to_owned()])
            .chain(extra.iter().map(|&(h, count, _)| {
                if count {
                    h.to_owned()
                } else {
                    format!("{h} ({u})")
                }
            }))
            .chain(["Trace name".to_owned()]);
        Line::MARKDOWN.write(out, headers)?;
        writeln!(
            out,
            "|---:|---:|---:|---:|{}---|",
            "---:|".repeat(extra.len())
        )?;
        self.write_rows(out, &extra, Line::MARKDOWN, unit.decimals(), "-", markdown)?;
        if !self.unfinished.is_empty() {
            writeln!(
                out,
                "\n**Unfinished points** (a start line and no stop line):\n"
            )?;
            writeln!(out, "| Count | First start | base_id | Trace name |")?;
            writeln!(out, "|---:|---|---|---|")?;
            for u in &self.unfinished {
                writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    u.count,
                    u.first_start,
                    u.base_id,
                    markdown(&u.name)
                )?;
            }
        }
        if self.unreadable.count > 0 {
            writeln!(out, "\n{}", markdown(&self.unreadable.to_string()))?;
        }
        Ok(())
    }

    fn write_csv(&self, out: &mut dyn Write) -> io::Result<()> {
        let extra = self.extra_columns();
        let unit = self.options.unit;
        let u = unit.csv_suffix();
        let headers = ["total", "max", "avg"]
            .map(|h| format!("{h}{u}"))
            .into_iter()
            .chain(["count".to_owned()])
            .chain(extra.iter().map(|&(h, count, _)| {
                let h = h.to_lowercase().replace(' ', "_");
                if count {
                    h
                } else {
                    format!("{h}{u}")
                }
            }))
            .chain(["name".to_owned()]);
        Line::CSV.write(out, headers)?;
        self.write_rows(out, &extra, Line::CSV, unit.csv_decimals(), "", csv)
    }

    /// The rows of the Markdown or CSV table: the `extra` columns its
    /// header named, durations with `decimals`, `unknown` for an extra
    /// value not known, names escaped by `name`.
    fn write_rows(
        &self,
        out: &mut dyn Write,
        extra: &[ExtraColumn],
        line: Line,
        decimals: usize,
        unknown: &str,
        name: fn(&str) -> Cow<'_, str>,
    ) -> io::Result<()> {
        let (unit, p) = (self.options.unit, decimals);
        for r in &self.rows {
            let cells = [r.total, r.max, r.avg]
                .map(|secs| format!("{:.p$}", unit.of(secs)))
                .into_iter()
                .chain([r.count.to_string()])
                .chain(extra.iter().map(|col| cell(col, r, unit, p, unknown)))
                .chain([name(&r.name).into_owned()]);
            line.write(out, cells)?;
        }
        Ok(())
    }

    /// With busy time on and some points without it: how many, and that
    /// the busy columns leave them out.
    fn busy_note(&self) -> Option<String> {
        let (known, unknown) = self
            .rows
            .iter()
            .filter_map(|r| r.busy)
            .fold((0u64, 0u64), |(k, u), b| (k + b.known, u + b.unknown));
        (unknown > 0).then(|| {
            format!(
                "busy time unknown for {unknown} of {} points (their stop lines give none: \
                 Python services, older logs); the busy columns leave them out",
                known + unknown
            )
        })
    }

    /// What text and CSV leave out, for stderr: one line about the
    /// unfinished points and one about the unreadable lines, each only when
    /// there are some.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.unfinished.is_empty() {
            let total: u64 = self.unfinished.iter().map(|u| u.count).sum();
            let mut s = format!(
                "{total} point{} never stopped:",
                if total == 1 { "" } else { "s" }
            );
            for (i, u) in self.unfinished.iter().enumerate() {
                if i == 5 {
                    s.push_str(" ...");
                    break;
                }
                s.push_str(&format!(
                    "{} {} x{} (first at {}, base_id {})",
                    if i == 0 { "" } else { ";" },
                    u.name,
                    u.count,
                    u.first_start,
                    u.base_id
                ));
            }
            notes.push(s);
        }
        if let Some(note) = self.busy_note() {
            notes.push(note);
        }
        if self.unreadable.count > 0 {
            notes.push(self.unreadable.to_string());
        }
        // Names and log names come from the logs: no note may drive the
        // terminal it is printed on.
        notes
            .into_iter()
            .map(|note| text(&note).into_owned())
            .collect()
    }
}
