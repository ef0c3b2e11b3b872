//! The terminal rendering: one line per point, indented by depth.
//!
//! ```text
//! request 6c3c…: 5 points from 2 logs, wall 120.000 ms
//!     start ms  duration ms      self ms  log     name
//!        0.000      120.000       20.000    0  *  wsgi
//!        5.000       70.000       70.000    0  *    db
//! legend: * critical path  ! unfinished (start or stop line missing)  - unknown; times in ms from the first begin
//! ```
//!
//! When some point's stop line gives its busy time, a `busy ms` column
//! follows the duration (`-` for the points whose line gives none).

use std::collections::HashSet;
use std::io::{self, Write};

use crate::model::Tree;
use crate::render::escape::text;

use super::{busy_cell, fmt_ms, has_busy, logs_legend, point_cells, preorder};

/// Writes `tree` as an indented text tree.
///
/// One line per point in depth-first order (children sorted by begin):
/// start offset from the request's first begin, duration (the stop line's),
/// self time (see [`model`](crate::model)), the index of the log
/// the point was read from, the marks, and the name indented two spaces per
/// level. Marks: `*` the point is on the critical path, `!` its start or
/// stop line is missing. A `-` stands for a value the log does not give
/// (a point without a stop line has no duration). Control and
/// bidirectional formatting characters in names are escaped (`\u{1b}`), as
/// in every text report, so that a log cannot drive the terminal.
///
/// # Errors
///
/// Any error from `out`.
pub fn write_text_tree(tree: &Tree<'_>, out: &mut dyn Write) -> io::Result<()> {
    write(tree, &[], None, out)
}

/// [`write_text_tree`], with a last line naming the logs when `logs` names
/// them (see [`ShowOptions::with_log_names`](super::ShowOptions::with_log_names)).
pub(super) fn write(
    tree: &Tree<'_>,
    logs: &[String],
    kept: Option<&str>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let request = tree.request();
    let first = request.first_micros();
    let wall = match (first, request.last_micros()) {
        // The bound of a duration: timestamps 100 years apart cannot all be
        // true (`Request::wall_too_long`).
        _ if request.wall_too_long() => "unknown (the points span more than 100 years)".to_owned(),
        (Some(a), Some(b)) if b > a => fmt_ms(b.saturating_sub(a)),
        _ => fmt_ms(0),
    };
    let critical: HashSet<usize> = tree.critical_path().into_iter().collect();
    writeln!(
        out,
        "request {}: {} point{} from {} log{}, wall {wall}{}",
        request.base_id,
        request.points.len(),
        plural(request.points.len()),
        request.sources.len(),
        plural(request.sources.len()),
        if request.wall_too_long() { "" } else { " ms" },
    )?;
    if let Some(why) = kept {
        writeln!(
            out,
            "kept by tail capture: {why} (recorded without a token, written when its root closed)"
        )?;
    }
    let busy = has_busy(tree);
    write!(out, "{:>12} {:>12} ", "start ms", "duration ms")?;
    if busy {
        write!(out, "{:>12} ", "busy ms")?;
    }
    writeln!(out, "{:>12} {:>4}     name", "self ms", "log")?;
    for (i, depth) in preorder(tree) {
        let point = tree.point(i);
        let [start, duration, self_time] = point_cells(tree, i, first);
        let marks = format!(
            "{}{}",
            if critical.contains(&i) { '*' } else { ' ' },
            if point.is_finished() { ' ' } else { '!' }
        );
        // Beyond MAX_INDENT levels the depth is written as a number: a
        // pathologically deep log would otherwise make the output quadratic.
        let (indent, deep) = if depth > MAX_INDENT {
            (MAX_INDENT * 2, format!("[depth {depth}] "))
        } else {
            (depth * 2, String::new())
        };
        write!(out, "{start:>12} {duration:>12} ")?;
        if busy {
            write!(out, "{:>12} ", busy_cell(tree, i))?;
        }
        writeln!(
            out,
            "{self_time:>12} {:>4}  {marks}  {:indent$}{deep}{}",
            point.source,
            "",
            text(&point.name),
        )?;
    }
    writeln!(
        out,
        "legend: * critical path  ! unfinished (start or stop line missing)  - unknown; \
         times in ms from the first begin"
    )?;
    if busy {
        writeln!(
            out,
            "busy: the time a point's span was entered on a thread (the rest of its \
             duration it waited); - where its log gives none"
        )?;
    }
    match logs_legend(tree, logs) {
        Some(named) => writeln!(out, "logs: {named}"),
        None => Ok(()),
    }
}

/// The deepest level that is shown by indentation alone.
const MAX_INDENT: usize = 40;

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
