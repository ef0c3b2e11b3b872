//! The timeline: a self-contained SVG flame chart, and an HTML page that
//! embeds it inline next to a table of the points.
//!
//! Time runs left to right (an axis with ticks on top), depth top to
//! bottom: a point's children sit on the rows under it. Siblings that run
//! at the same time each get their own rows, so nothing is drawn over
//! anything else: each subtree is packed as a block into the first rows
//! below its parent that are free for its whole time span, siblings in the
//! order their subtrees begin (see `pack`). Colours follow
//! the log a point came from (one hue per log, varied by name); the
//! critical path has a dark red outline; an unfinished point (start or stop
//! line missing) is grey with a dashed outline. Every bar has a `<title>`
//! tooltip with its name, times, self time and ids. When the log gives
//! busy times, a point whose busy time is known is drawn pale (idle) with
//! a solid part over its busy share, from its left end (the log gives the
//! total, not when it fell); a point without one (a Python service) stays
//! solid, its tooltip saying the busy time is unknown.
//!
//! Nothing is loaded from anywhere: no fonts (generic families only), no
//! scripts, no links. The HTML page carries a Content-Security-Policy that
//! forbids any fetch. Output is deterministic.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use crate::model::{secs_to_micros, Tree};
use crate::steps::step;

use super::pack::{pack, FreeRows};
use super::{busy_cell, escape_xml, fmt_ms, has_busy, logs_legend, point_cells, preorder};
use crate::render::escape;

/// Width of the SVG, in pixels.
const WIDTH: f64 = 1200.0;
/// Left and right margin.
const MARGIN: f64 = 16.0;
/// Where the first row of bars begins, below the title, summary, legend
/// and axis.
const TOP: f64 = 92.0;
/// How much less room the header takes in the HTML page, which has its own
/// title and summary.
const EMBEDDED_SHIFT: f64 = 28.0;
/// Height of a row (bar plus gap).
const ROW: f64 = 22.0;
/// Height of a bar.
const BAR: f64 = 19.0;
/// The narrowest bar drawn, so that a zero-length point stays visible.
const MIN_BAR: f64 = 3.0;
/// Average width of a character of the 12 px label font, to fit labels.
const CHAR_WIDTH: f64 = 6.8;

/// How opaque the idle share of a bar is drawn (its busy share is solid).
const IDLE_OPACITY: f64 = 0.35;

/// One hue per log (degrees), cycled when a request spans more logs.
const HUES: [f64; 6] = [24.0, 205.0, 130.0, 280.0, 48.0, 335.0];

/// Writes `tree` as a standalone SVG flame chart (see the module docs).
///
/// # Errors
///
/// Any error from `out`.
pub fn write_svg(tree: &Tree<'_>, out: &mut dyn Write) -> io::Result<()> {
    write_svg_named(tree, &[], out)
}

/// [`write_svg`], the legend and tooltips naming the logs when `logs` names
/// them.
pub(super) fn write_svg_named(
    tree: &Tree<'_>,
    logs: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    out.write_all(svg(tree, logs, true).as_bytes())
}

/// Writes `tree` as a self-contained HTML page: a summary, the SVG flame
/// chart inline and a table of every point (the text tree's columns).
///
/// # Errors
///
/// Any error from `out`.
pub fn write_html(tree: &Tree<'_>, out: &mut dyn Write) -> io::Result<()> {
    write_html_named(tree, &[], out)
}

/// [`write_html`], the legends and tooltips naming the logs when `logs`
/// names them.
pub(super) fn write_html_named(
    tree: &Tree<'_>,
    logs: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    let request = tree.request();
    let first = request.first_micros();
    let critical: HashSet<usize> = tree.critical_path().into_iter().collect();
    let mut html = String::new();
    let base = request.base_id;
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="tracing-osprofiler osprof show">
<title>osprofiler request {base}</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; margin: 16px; color: #1a1a1a; background: #fff; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }}
p.summary {{ margin: 0 0 12px; color: #444; }}
svg {{ max-width: 100%; height: auto; display: block; }}
table {{ border-collapse: collapse; margin-top: 16px; font-size: 13px; }}
th, td {{ padding: 2px 10px; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }}
th {{ text-align: left; background: #f3f3f3; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; font-family: "DejaVu Sans Mono", monospace; }}
tr.critical td {{ font-weight: bold; }}
tr.critical td.mark {{ color: #a0001c; }}
tr.unfinished td {{ color: #777; font-style: italic; }}
</style>
</head>
<body>
<h1>osprofiler request <code>{base}</code></h1>
<p class="summary">{}</p>
"#,
        escape_xml(&summary(tree)),
    );
    html.push_str(&svg(tree, logs, false));
    let busy = has_busy(tree);
    html.push_str("<table>\n<thead><tr><th>start ms</th><th>duration ms</th>");
    if busy {
        html.push_str("<th>busy ms</th>");
    }
    html.push_str(
        "<th>self ms</th>\
         <th>log</th><th></th><th>name</th></tr></thead>\n<tbody>\n",
    );
    for (i, depth) in preorder(tree) {
        let point = tree.point(i);
        let [start, duration, self_time] = point_cells(tree, i, first);
        let mut class = Vec::new();
        let mut marks = String::new();
        if critical.contains(&i) {
            class.push("critical");
            marks.push('*');
        }
        if !point.is_finished() {
            class.push("unfinished");
            marks.push('!');
        }
        let _ = writeln!(
            html,
            "<tr class=\"{}\"><td class=\"num\">{start}</td><td class=\"num\">{duration}</td>\
             {}<td class=\"num\">{self_time}</td><td class=\"num\">{}</td><td class=\"mark\">{marks}</td>\
             <td style=\"padding-left:{}px\">{}</td></tr>",
            class.join(" "),
            if busy {
                format!("<td class=\"num\">{}</td>", busy_cell(tree, i))
            } else {
                String::new()
            },
            point.source,
            10 + 16 * depth.min(40),
            escape_xml(&point.name),
        );
    }
    html.push_str(
        "</tbody>\n</table>\n<p class=\"summary\">* critical path &#160; ! unfinished \
         (start or stop line missing) &#160; - unknown; times in ms from the first begin</p>\n",
    );
    if let Some(named) = logs_legend(tree, logs) {
        let _ = writeln!(
            html,
            "<p class=\"summary\">logs: {}</p>",
            escape_xml(&named)
        );
    }
    html.push_str("</body>\n</html>\n");
    out.write_all(html.as_bytes())
}

fn summary(tree: &Tree<'_>) -> String {
    let request = tree.request();
    let unfinished = request.points.iter().filter(|p| !p.is_finished()).count();
    let mut text = format!(
        "{} point{} from {} log{}, wall {} ms",
        request.points.len(),
        if request.points.len() == 1 { "" } else { "s" },
        request.sources.len(),
        if request.sources.len() == 1 { "" } else { "s" },
        fmt_ms(secs_to_micros(request.wall_secs())),
    );
    if unfinished > 0 {
        let _ = write!(text, ", {unfinished} unfinished");
    }
    text
}

/// Where each point goes: its row, and its time span relative to the
/// request's first begin (`None` when the point has no time at all).
pub(super) struct Layout {
    pub(super) row: Vec<usize>,
    pub(super) span: Vec<Option<(i64, i64)>>,
    pub(super) rows: usize,
}

/// Packs the tree into rows (see the module docs). Iterative, bottom-up
/// then top-down, so that any depth works.
pub(super) fn layout(tree: &Tree<'_>) -> Layout {
    let n = tree.request().points.len();
    let first = tree.request().first_micros().unwrap_or(0);
    let span: Vec<Option<(i64, i64)>> = (0..n)
        .map(|i| {
            let p = tree.point(i);
            let begin = p.begin_micros()? - first;
            Some((
                begin,
                p.end_micros().map_or(begin, |e| e - first).max(begin),
            ))
        })
        .collect();
    let order = preorder(tree);
    // Bottom-up: each subtree's height (rows) and time envelope, and each
    // child's row offset from its parent. Siblings' heights add up to at
    // most n rows.
    let mut height = vec![1usize; n];
    let mut envelope: Vec<Option<(i64, i64)>> = span.clone();
    let mut offset = vec![0usize; n];
    let mut free = FreeRows::new(n);
    for &(i, _) in order.iter().rev() {
        let children = tree.children(i);
        let used = pack(children, &height, &envelope, &mut offset, &mut free);
        height[i] = 1 + used;
        for &c in children {
            envelope[i] = merge(envelope[i], envelope[c]);
        }
        for c in children {
            offset[*c] += 1;
        }
    }
    let rows = pack(tree.roots(), &height, &envelope, &mut offset, &mut free);
    let mut row = vec![0usize; n];
    for &(i, depth) in &order {
        if depth == 0 {
            row[i] = offset[i];
        }
        for &c in tree.children(i) {
            row[c] = row[i] + offset[c];
        }
    }
    Layout { row, span, rows }
}

fn merge(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The SVG document (without the XML declaration, so that HTML can embed
/// it); `standalone` adds the title and summary lines the page otherwise
/// shows.
fn svg(tree: &Tree<'_>, logs: &[String], standalone: bool) -> String {
    let shift = if standalone { 0.0 } else { EMBEDDED_SHIFT };
    let top = TOP - shift;
    let request = tree.request();
    let layout = layout(tree);
    let critical: HashSet<usize> = tree.critical_path().into_iter().collect();
    let total = layout
        .span
        .iter()
        .flatten()
        .map(|&(_, e)| e)
        .max()
        .unwrap_or(0)
        .max(1);
    let plot = WIDTH - 2.0 * MARGIN;
    let x = |t: i64| MARGIN + t as f64 / total as f64 * plot;
    let height = top + layout.rows.max(1) as f64 * ROW + 14.0;
    let base = request.base_id;

    let mut s = String::with_capacity(4096 + request.points.len() * 600);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        "<title>osprofiler request {base}</title>\n<desc>Flame chart of one request: time on x, depth on y. Written by tracing-osprofiler (osprof show).</desc>"
    );
    let _ = writeln!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    if standalone {
        let _ = writeln!(
            s,
            "<text x=\"{MARGIN}\" y=\"24\" font-size=\"16\" font-weight=\"bold\" fill=\"#1a1a1a\">Request {base}</text>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{MARGIN}\" y=\"44\" fill=\"#444444\">{}</text>",
            escape_xml(&summary(tree))
        );
    }

    // Legend, right-aligned on the summary line: one swatch per log, then
    // the critical-path and unfinished styles.
    let mut legend: Vec<(String, String, &str)> = request
        .sources
        .iter()
        .map(|&src| {
            (
                // The file's own name, the directories left to the tooltips.
                match logs.get(src) {
                    Some(log) => {
                        let file = Path::new(log)
                            .file_name()
                            .map_or_else(|| log.clone(), |f| f.to_string_lossy().into_owned());
                        let file =
                            fit_label(&escape::text(&file), 24.0 * CHAR_WIDTH).unwrap_or_default();
                        format!("log {src}: {file}")
                    }
                    None => format!("log {src}"),
                },
                format!(
                    "fill=\"{}\" stroke=\"#000000\" stroke-opacity=\"0.3\"",
                    colour(src, "")
                ),
                "",
            )
        })
        .collect();
    legend.push((
        "critical path".into(),
        "fill=\"#ffffff\" stroke=\"#a0001c\" stroke-width=\"2.5\"".into(),
        "",
    ));
    legend.push((
        "unfinished".into(),
        "fill=\"#d9d9d9\" stroke=\"#555555\"".into(),
        " stroke-dasharray=\"3 2\"",
    ));
    let busy = has_busy(tree);
    if busy {
        legend.push((
            "idle share (pale)".into(),
            format!(
                "fill=\"{}\" fill-opacity=\"{IDLE_OPACITY}\" stroke=\"#000000\" stroke-opacity=\"0.3\"",
                colour(request.sources.first().copied().unwrap_or(0), "")
            ),
            "",
        ));
    }
    let legend_width: f64 = legend
        .iter()
        .map(|(label, _, _)| 26.0 + label.chars().count() as f64 * CHAR_WIDTH)
        .sum();
    let mut lx = WIDTH - MARGIN - legend_width;
    for (label, style, dash) in &legend {
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{}\" width=\"14\" height=\"12\" rx=\"2\" {style}{dash}/><text x=\"{:.1}\" y=\"{}\" fill=\"#444444\">{}</text>",
            34.0 - shift,
            lx + 18.0,
            44.0 - shift,
            escape_xml(label)
        );
        lx += 26.0 + label.chars().count() as f64 * CHAR_WIDTH;
    }

    // Axis: ticks at 1, 2 or 5 times a power of ten, about eight of them.
    let step = tick_step(total);
    let axis_y = 70.0 - shift;
    let _ = writeln!(
        s,
        "<line x1=\"{MARGIN}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#888888\"/>",
        WIDTH - MARGIN
    );
    let mut t = 0;
    while t <= total {
        let tx = x(t);
        let anchor = if t == 0 {
            "start"
        } else if tx > WIDTH - MARGIN - 30.0 {
            "end"
        } else {
            "middle"
        };
        let _ = writeln!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"{axis_y}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#eeeeee\"/><line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#888888\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"#444444\" font-size=\"11\">{} ms</text>",
            height - 10.0,
            axis_y - 4.0,
            axis_y + 4.0,
            axis_y - 8.0,
            tick_label(t),
        );
        t += step;
    }

    let bar = |i: usize| {
        layout.span[i].map(|(begin, end)| (x(begin), x(begin) + (x(end) - x(begin)).max(MIN_BAR)))
    };
    // Each row's bars, to keep labels written beside a bar off the others.
    let mut bars = RowBars::new(layout.rows);
    for i in 0..layout.span.len() {
        if let (Some(b), Some(&row)) = (bar(i), layout.row.get(i)) {
            bars.add(row, b);
        }
    }
    bars.sort();
    for (i, _) in preorder(tree) {
        let (Some((begin, _)), Some((x0, x1))) = (layout.span[i], bar(i)) else {
            continue;
        };
        let point = tree.point(i);
        let w = x1 - x0;
        let y = top + layout.row[i] as f64 * ROW;
        let on_path = critical.contains(&i);
        let (fill, stroke) = if !point.is_finished() {
            (
                "#d9d9d9".to_owned(),
                "stroke=\"#555555\" stroke-width=\"1\" stroke-dasharray=\"3 2\"",
            )
        } else if on_path {
            (
                colour(point.source, &point.name),
                "stroke=\"#a0001c\" stroke-width=\"2.5\"",
            )
        } else {
            (
                colour(point.source, &point.name),
                "stroke=\"#ffffff\" stroke-width=\"1\"",
            )
        };
        let busy_line = match point.busy {
            _ if !busy => String::new(),
            Some(b) => format!(
                "\nbusy {} ms (entered on a thread), idle {} ms",
                busy_cell(tree, i),
                fmt_ms(
                    secs_to_micros(point.duration.unwrap_or(b))
                        .saturating_sub(secs_to_micros(b))
                        .max(0)
                )
            ),
            None => "\nbusy unknown (its log gives none)".to_owned(),
        };
        let mut tip = format!(
            "{}\nstart +{} ms, duration {} ms, self {} ms{busy_line}\nlog {}{}\ntrace_id {}\nparent_id {}",
            point.name,
            fmt_ms(begin),
            point
                .duration
                .map_or_else(|| "-".to_owned(), |d| fmt_ms(secs_to_micros(d))),
            fmt_ms(secs_to_micros(tree.self_secs(i))),
            point.source,
            logs.get(point.source)
                .map_or_else(String::new, |log| format!(": {}", escape::text(log))),
            point.ids.trace_id,
            point.ids.parent_id,
        );
        if on_path {
            tip.push_str("\non the critical path");
        }
        match (point.start, point.stop) {
            (Some(_), None) => tip.push_str("\nunfinished: no stop line"),
            (None, _) => tip.push_str("\nunfinished: no start line"),
            _ => {}
        }
        // A known busy time: the bar pale (the point waited), and solid
        // over the busy share of its length, from its left end (the log
        // gives the busy total, not when it fell).
        let busy_share = match (point.busy, point.duration) {
            (Some(b), Some(d)) if point.is_finished() && d > 0.0 => Some((b / d).clamp(0.0, 1.0)),
            (Some(_), Some(_)) if point.is_finished() => Some(1.0),
            _ => None,
        };
        let opacity = if busy_share.is_some() {
            format!(" fill-opacity=\"{IDLE_OPACITY}\"")
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "<g><title>{}</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR}\" rx=\"2\" fill=\"{fill}\"{opacity} {stroke}/>",
            escape_xml(&tip)
        );
        if let Some(share) = busy_share {
            let _ = write!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>",
                y + 1.5,
                (w * share).max(0.0),
                BAR - 3.0,
            );
        }
        if let Some(label) = fit_label(&point.name, w - 8.0) {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#1a1a1a\">{}</text>",
                x0 + 4.0,
                y + 14.0,
                escape_xml(&label)
            );
        } else {
            // Too narrow for its name (a zero-length unfinished point, a
            // short call): write the name beside the bar, right or left,
            // where nothing else on the row is drawn.
            let text_w = point.name.chars().count().min(40) as f64 * CHAR_WIDTH;
            let right = (x0 + w + 3.0, x0 + w + 3.0 + text_w);
            let left = (x0 - 3.0 - text_w, x0 - 3.0);
            let free = |(a, b): (f64, f64)| {
                a >= MARGIN && b <= WIDTH - MARGIN && bars.free(layout.row[i], a, b)
            };
            let place = if free(right) {
                Some((right.0, "start"))
            } else if free(left) {
                Some((left.1, "end"))
            } else {
                None
            };
            if let (Some((tx, anchor)), Some(label)) =
                (place, fit_label(&point.name, 40.0 * CHAR_WIDTH))
            {
                let _ = write!(
                    s,
                    "<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#555555\">{}</text>",
                    y + 14.0,
                    escape_xml(&label)
                );
            }
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

/// The bars of each row, to find room for a label beside a bar: per row,
/// the bars sorted by their left edge and the rightmost right edge so far,
/// so that whether `a..b` meets a bar is one binary search (a row may hold
/// every point of a request).
pub(super) struct RowBars {
    rows: Vec<Vec<(f64, f64)>>,
    reach: Vec<Vec<f64>>,
}

impl RowBars {
    pub(super) fn new(rows: usize) -> Self {
        RowBars {
            rows: vec![Vec::new(); rows],
            reach: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, row: usize, bar: (f64, f64)) {
        if let Some(list) = self.rows.get_mut(row) {
            list.push(bar);
        }
    }

    pub(super) fn sort(&mut self) {
        self.reach = self
            .rows
            .iter_mut()
            .map(|list| {
                list.sort_by(|p, q| p.0.total_cmp(&q.0));
                step(list.len());
                let mut right = f64::NEG_INFINITY;
                list.iter()
                    .map(|&(_, d)| {
                        right = right.max(d);
                        right
                    })
                    .collect()
            })
            .collect();
    }

    /// Whether no bar of `row` overlaps `a..b`: none that begins before `b`
    /// ends after `a`.
    pub(super) fn free(&self, row: usize, a: f64, b: f64) -> bool {
        let (Some(list), Some(reach)) = (self.rows.get(row), self.reach.get(row)) else {
            return true;
        };
        step(1 + list.len().max(1).ilog2() as usize);
        let before = list.partition_point(|&(c, _)| c < b);
        before == 0 || reach[before - 1] <= a
    }
}

/// The tick step in microseconds: 1, 2 or 5 times a power of ten, giving
/// at most about eight ticks over `total`.
fn tick_step(total: i64) -> i64 {
    let raw = (total / 8).max(1);
    let mut magnitude = 1i64;
    while magnitude.saturating_mul(10) <= raw {
        magnitude *= 10;
    }
    for factor in [1, 2, 5, 10] {
        let step = magnitude.saturating_mul(factor);
        if step >= raw {
            return step;
        }
    }
    magnitude.saturating_mul(10)
}

/// Microseconds as milliseconds without trailing zeros (`1500` -> `1.5`).
fn tick_label(micros: i64) -> String {
    let ms = fmt_ms(micros);
    ms.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The name, cut with an ellipsis to fit `room` pixels; `None` if not even
/// two characters fit.
fn fit_label(name: &str, room: f64) -> Option<String> {
    let fits = (room / CHAR_WIDTH).floor();
    if fits < 2.0 {
        return None;
    }
    let fits = fits as usize;
    let count = name.chars().count();
    if count <= fits {
        return Some(name.to_owned());
    }
    let mut cut: String = name.chars().take(fits - 1).collect();
    cut.push('\u{2026}');
    Some(cut)
}

/// The fill for a point: the log's hue, lightness varied by the name so
/// that neighbouring bars differ (FNV-1a: stable across runs and builds).
fn colour(source: usize, name: &str) -> String {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let hue = HUES[source % HUES.len()] + (hash % 17) as f64 - 8.0;
    let lightness = if name.is_empty() {
        0.62
    } else {
        0.60 + ((hash >> 8) % 13) as f64 / 100.0
    };
    hsl_to_hex(hue, 0.72, lightness)
}

fn hsl_to_hex(hue: f64, saturation: f64, lightness: f64) -> String {
    let c = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let h = hue.rem_euclid(360.0) / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = lightness - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(120_000), 20_000);
        assert_eq!(tick_step(1_000_000), 200_000);
        assert_eq!(tick_step(7), 1);
        assert_eq!(tick_label(20_000), "20");
        assert_eq!(tick_label(1_500), "1.5");
        assert_eq!(tick_label(0), "0");
    }

    #[test]
    fn labels_are_cut_to_fit() {
        assert_eq!(fit_label("wsgi", 100.0).as_deref(), Some("wsgi"));
        assert_eq!(
            fit_label("abcdefghij", 6.8 * 4.0).as_deref(),
            Some("abc\u{2026}")
        );
        assert_eq!(fit_label("abcdefghij", 10.0), None);
    }

    #[test]
    fn colours_are_hex() {
        assert_eq!(hsl_to_hex(0.0, 1.0, 0.5), "#ff0000");
        assert_eq!(hsl_to_hex(240.0, 1.0, 0.5), "#0000ff");
        assert_eq!(colour(0, "x").len(), 7);
    }
}
