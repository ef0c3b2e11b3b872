//! `osprof show`: one request rendered for people and for other tools.
//!
//! [`find_request`] gathers the request a [`Selector`] names (a `base_id`,
//! the first characters of one, the latest or the slowest request);
//! [`write()`] renders its [`Tree`] (one request's points, see
//! [`model`](crate::model)) as [`ShowOptions`] say, with one of the writers:
//!
//! | function | format |
//! |---|---|
//! | [`write_text_tree`] | an indented tree for the terminal: start offset, duration, self time, critical path |
//! | [`write_osprofiler_json`] | osprofiler's own report structure (`osprofiler trace show --json`) |
//! | [`write_chrome_trace`] | Chrome trace event JSON, for Perfetto and `chrome://tracing` |
//! | [`write_svg`] | a self-contained SVG flame chart (time on x, depth on y) |
//! | [`write_html`] | a self-contained HTML page: the SVG plus a table of the points |
//!
//! All output is deterministic (same tree, same bytes), and every walk over
//! the tree uses an explicit stack, so a deep tree from a hostile log cannot
//! overflow the call stack.
//!
//! ```
//! use tracing_osprofiler::format::{PointIds, Timestamp};
//! use osprof::model::{Point, Request, Tree};
//! use osprof::show::write_text_tree;
//! use tracing_osprofiler::Id;
//!
//! let base = Id::new_v4();
//! let request = Request {
//!     base_id: base,
//!     points: vec![Point {
//!         name: "wsgi".into(),
//!         ids: PointIds { base_id: base, parent_id: base, trace_id: Id::new_v4() },
//!         start: Some(Timestamp::from_unix_micros(1_000_000)),
//!         stop: Some(Timestamp::from_unix_micros(1_250_000)),
//!         duration: Some(0.25),
//!         busy: None,
//!         source: 0,
//!     }],
//!     sources: vec![0],
//! };
//! let mut out = Vec::new();
//! write_text_tree(&Tree::new(&request), &mut out)?;
//! assert!(String::from_utf8(out).unwrap().contains("250.000"));
//! # Ok::<(), std::io::Error>(())
//! ```

mod chrome;
mod osprofiler_json;
mod pack;
#[cfg(test)]
mod scale;
mod select;
mod timeline;
mod tree;

pub use chrome::write_chrome_trace;
pub use osprofiler_json::write_osprofiler_json;
pub use select::{find_request, find_request_noted, select, Found, SelectError, Selector};
pub use timeline::{write_html, write_svg};
pub use tree::write_text_tree;

use std::borrow::Cow;
use std::io::{self, Write};

use crate::model::{secs_to_micros, Tree};
use crate::render::escape::{self, reorders};

/// The renderings of a request, one per writer of the table above
/// (`--format` of `osprof show` with the `cli` feature, which shows the
/// variants' docs as help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum ShowFormat {
    /// An indented tree for the terminal, with self times and the critical path.
    #[default]
    Tree,
    /// osprofiler's JSON report (`osprofiler trace show --json`).
    Json,
    /// Chrome trace events, for Perfetto or chrome://tracing.
    Chrome,
    /// A self-contained SVG flame chart.
    Svg,
    /// A self-contained HTML page: the flame chart and a table of the points.
    Html,
}

/// How [`write()`] renders a request.
///
/// | setting | default |
/// |---|---|
/// | `format` | [`ShowFormat::Tree`] |
/// | `log_names` | none: logs are numbered only (`log 0`) |
/// | `kept` | none: the tree says nothing of tail capture |
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ShowOptions {
    format: ShowFormat,
    log_names: Vec<String>,
    kept: Option<String>,
}

impl ShowOptions {
    /// The text tree.
    #[must_use]
    pub fn new() -> Self {
        ShowOptions::default()
    }

    /// Renders in this format.
    #[must_use]
    pub fn with_format(mut self, format: ShowFormat) -> Self {
        self.format = format;
        self
    }

    /// Says in the text tree that tail capture kept the request, and why
    /// (`slow`, `error`: [`Found::kept`](select::Found::kept)).
    #[must_use]
    pub fn with_kept(mut self, kept: Option<&str>) -> Self {
        self.kept = kept.map(str::to_owned);
        self
    }

    /// The format it renders in.
    #[must_use]
    pub fn format(&self) -> ShowFormat {
        self.format
    }

    /// Names the logs, in the order given (a point's
    /// [`source`](crate::model::Point::source) indexes them), so that the
    /// legend says which log is `log 0`, `log 1`...: the text tree's last
    /// line (`logs: 0 = api.log, 1 = engine.log`), the timeline's legend
    /// and tooltips, the Chrome trace's process names.
    ///
    /// ```
    /// use osprof::show::ShowOptions;
    /// use osprof::source::Inputs;
    ///
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("api.log");
    /// # std::fs::write(&path, "")?;
    /// let inputs = Inputs::from_paths([&path])?;
    /// let options = ShowOptions::new().with_log_names(inputs.sources().iter().map(ToString::to_string));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_log_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.log_names = names.into_iter().map(Into::into).collect();
        self
    }
}

/// Writes `tree` as `options` say.
///
/// # Errors
///
/// Any error from `out`.
pub fn write(tree: &Tree<'_>, options: &ShowOptions, out: &mut dyn Write) -> io::Result<()> {
    let logs = &options.log_names;
    match options.format {
        ShowFormat::Tree => tree::write(tree, logs, options.kept.as_deref(), out),
        ShowFormat::Json => write_osprofiler_json(tree, out),
        ShowFormat::Chrome => chrome::write(tree, logs, out),
        ShowFormat::Svg => timeline::write_svg_named(tree, logs, out),
        ShowFormat::Html => timeline::write_html_named(tree, logs, out),
    }
}

/// `0 = api.log, 1 = engine.log`: the request's logs by number, escaped
/// as text; `None` when the logs have no names.
fn logs_legend(tree: &Tree<'_>, logs: &[String]) -> Option<String> {
    let named: Vec<String> = tree
        .request()
        .sources
        .iter()
        .filter_map(|&s| Some(format!("{s} = {}", escape::text(logs.get(s)?))))
        .collect();
    (!named.is_empty()).then(|| named.join(", "))
}

/// The tree in depth-first pre-order (roots and children sorted by begin):
/// `(point index, depth)`.
fn preorder(tree: &Tree<'_>) -> Vec<(usize, usize)> {
    let mut order = Vec::with_capacity(tree.request().points.len());
    let mut stack: Vec<(usize, usize)> = tree.roots().iter().rev().map(|&r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        order.push((i, depth));
        stack.extend(tree.children(i).iter().rev().map(|&c| (c, depth + 1)));
    }
    order
}

/// The table cells of the point at `index`, in milliseconds: start offset
/// from `first` (the request's first begin), duration, self time; `-`
/// where the log does not tell.
fn point_cells(tree: &Tree<'_>, index: usize, first: Option<i64>) -> [String; 3] {
    let point = tree.point(index);
    let start = match (point.begin_micros(), first) {
        (Some(b), Some(f)) => fmt_ms(b - f),
        _ => "-".to_owned(),
    };
    let duration = point
        .duration
        .map_or_else(|| "-".to_owned(), |d| fmt_ms(secs_to_micros(d)));
    let self_time = if point.begin_micros().is_some() && point.end_micros().is_some() {
        fmt_ms(secs_to_micros(tree.self_secs(index)))
    } else {
        "-".to_owned()
    };
    [start, duration, self_time]
}

/// Whether some point of the tree gives its busy time: only then do the
/// tree, the table and the timeline show it (a log without any stays as it
/// was shown before busy times existed).
fn has_busy(tree: &Tree<'_>) -> bool {
    tree.request().points.iter().any(|p| p.busy.is_some())
}

/// The busy cell of a point: its busy time in ms, or `-` when its stop
/// line gives none (unknown, never 0).
fn busy_cell(tree: &Tree<'_>, index: usize) -> String {
    tree.point(index)
        .busy
        .map_or_else(|| "-".to_owned(), |b| fmt_ms(secs_to_micros(b)))
}

/// Microseconds as milliseconds with three decimals (`1234567` ->
/// `1234.567`), exact: no float rounding.
fn fmt_ms(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Escapes text for XML/HTML content and attribute values. Characters XML
/// 1.0 does not allow at all (most C0 controls, U+FFFE, U+FFFF) become
/// U+FFFD, so that a name from a log can never make the document invalid;
/// the bidirectional formatting characters are written out (`\u{202e}`),
/// as in the text reports, so that no name is shown in another order than
/// it has.
fn escape_xml(text: &str) -> Cow<'_, str> {
    let needs = |c: char| {
        matches!(c, '&' | '<' | '>' | '"' | '\'' | '\u{FFFE}' | '\u{FFFF}')
            || (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || reorders(c)
    };
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            // C1 controls are allowed by XML 1.0 but discouraged; C0 are not.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c if c.is_control() => out.push('\u{FFFD}'),
            c if reorders(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_formatting_is_exact() {
        assert_eq!(fmt_ms(0), "0.000");
        assert_eq!(fmt_ms(1_234_567), "1234.567");
        assert_eq!(fmt_ms(-5), "-0.005");
    }

    #[test]
    fn xml_escaping_covers_markup_and_invalid_characters() {
        assert_eq!(escape_xml("plain-name"), "plain-name");
        assert_eq!(
            escape_xml("<a & \"b\" 'c'>"),
            "&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;"
        );
        assert_eq!(escape_xml("x\u{1}y\u{FFFF}"), "x\u{FFFD}y\u{FFFD}");
        assert_eq!(escape_xml("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape_xml("żółw ✓"), "żółw ✓");
    }
}
