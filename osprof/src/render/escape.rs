//! The escaping every report's output shares, so that text read from a
//! log (a trace name, a log's file name) is shown as text and never acts:
//!
//! | output | function | what is escaped |
//! |---|---|---|
//! | plain text (terminal, stderr) | [`text`] | control characters and bidirectional formatting characters, written `\u{1b}` |
//! | Markdown table cells | [`markdown`] | as [`text`], then Markdown's punctuation (`\|`, `` ` ``, `*`, `_`, `[`, `]`, `~`, `\`) with a backslash and HTML's (`<`, `>`, `&`) as entities |
//! | CSV text cells | [`csv`] | as [`text`], then a leading `'` before a formula (`=`, `+`, `-`, `@`, tab, CR), then RFC 4180 quoting |
//! | JSON | [`json_pretty`], [`json_compact`], [`json_str`] | serde's escaping, plus DEL, the C1 controls and the bidirectional formatting characters as `\uXXXX`: the same JSON value, nothing that acts on a terminal |
//!
//! A log name like `ESC ] 0 ; title BEL` would otherwise set the terminal's
//! title when the report is printed, `ESC [ 2 J` clear the screen, a
//! right-to-left override (U+202E) show text in another order than it is,
//! `<script>` run in a Markdown preview that allows HTML, and `=HYPERLINK(…)`
//! run as a formula when the CSV is opened in a spreadsheet.

use std::borrow::Cow;
use std::io::{self, Write};

/// Whether `c` must not reach a terminal as is: a control character (C0,
/// DEL, C1) or a character that reorders the display of text (the
/// bidirectional embeddings, overrides, isolates and marks).
fn acts(c: char) -> bool {
    c.is_control() || reorders(c)
}

/// Whether `c` is one of the bidirectional formatting characters, which
/// change the order text is shown in (`rlo\u{202e}gpj.exe` shows as
/// `rloexe.jpg`).
pub(crate) fn reorders(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// `s` with every control character and bidirectional formatting character
/// written as Rust writes it escaped (`\u{1b}`, `\t`, `\u{202e}`); all other
/// characters, a backslash included, are kept. Borrowed when nothing needs
/// escaping, which is every ordinary name.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if acts(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A CSV text cell (a name, a log's file name; never a number): [`text`],
/// then a leading `'` when the cell starts with `=`, `+`, `-`, `@`, a tab or
/// a carriage return, which a spreadsheet would take for a formula (`-`
/// alone, the name of stdin, is left as is: it is no formula), then quoted
/// when it holds a comma or a quote.
pub(crate) fn csv(field: &str) -> Cow<'_, str> {
    let formula = field.len() > 1 && field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let mut cell = text(field);
    if formula {
        cell = Cow::Owned(format!("'{cell}"));
    }
    if cell.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", cell.replace('"', "\"\"")))
    } else {
        cell
    }
}

/// A Markdown table cell: [`text`], then `\`, `|`, `` ` ``, `*`, `_`, `[`,
/// `]` and `~` escaped with a backslash (no emphasis, code span, link or
/// strike-through, and the cell stays one cell), and `<`, `>`, `&` written
/// as HTML entities (no tag reaches a renderer that allows HTML).
pub(crate) fn markdown(cell: &str) -> Cow<'_, str> {
    let special = |c: char| {
        matches!(
            c,
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '<' | '>' | '&'
        )
    };
    let cell = text(cell);
    if !cell.contains(special) {
        return cell;
    }
    let mut out = String::with_capacity(cell.len() + 8);
    for c in cell.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// serde_json's formatting with the characters that [`text`] escapes and
/// JSON allows raw (DEL, C1, bidirectional formatting) written as
/// `\uXXXX` too: the same JSON value, valid JSON, and nothing in it that
/// acts on a terminal when the file is printed.
struct Quiet<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for Quiet<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| acts(c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            // All of them are in the Basic Multilingual Plane: one \u each.
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    // Everything else as the wrapped formatter does it.
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Writes `value` as indented JSON (serde_json's pretty layout), escaped as
/// the module docs say.
pub(crate) fn json_pretty<T: serde::Serialize + ?Sized>(
    out: &mut dyn Write,
    value: &T,
) -> io::Result<()> {
    let formatter = Quiet(serde_json::ser::PrettyFormatter::new());
    let mut serializer = serde_json::Serializer::with_formatter(out, formatter);
    value.serialize(&mut serializer).map_err(io::Error::from)
}

/// Writes `value` as compact JSON, escaped as the module docs say.
pub(crate) fn json_compact<T: serde::Serialize + ?Sized>(
    out: &mut dyn Write,
    value: &T,
) -> io::Result<()> {
    let formatter = Quiet(serde_json::ser::CompactFormatter);
    let mut serializer = serde_json::Serializer::with_formatter(out, formatter);
    value.serialize(&mut serializer).map_err(io::Error::from)
}

/// `value` as a JSON string literal, escaped as the module docs say.
pub(crate) fn json_str(value: &str) -> String {
    // Most strings (ids, ordinary names) need no escape at all.
    if !value.chars().any(|c| c == '"' || c == '\\' || acts(c)) {
        let mut out = String::with_capacity(value.len() + 2);
        out.push('"');
        out.push_str(value);
        out.push('"');
        return out;
    }
    let mut out = Vec::with_capacity(value.len() + 2);
    // Writing a string to a Vec cannot fail.
    let _ = json_compact(&mut out, value);
    String::from_utf8(out).unwrap_or_else(|_| String::from("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_borrowed_unchanged() {
        for name in ["engine-start-workflow", "caf\u{e9}", "x::y", "a\\b", "-"] {
            assert!(matches!(text(name), Cow::Borrowed(_)), "{name}");
            assert!(matches!(csv(name), Cow::Borrowed(_)), "{name}");
        }
        assert!(matches!(markdown("db-query"), Cow::Borrowed(_)));
    }

    #[test]
    fn text_escapes_what_drives_a_terminal() {
        assert_eq!(text("t\u{1b}]0;pwned\u{7}"), "t\\u{1b}]0;pwned\\u{7}");
        assert_eq!(text("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(text("a\tb\r\n"), "a\\tb\\r\\n");
        assert_eq!(text("del\u{7f} csi\u{9b}"), "del\\u{7f} csi\\u{9b}");
        assert_eq!(text("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(text("\u{2066}\u{200f}"), "\\u{2066}\\u{200f}");
    }

    #[test]
    fn csv_neutralises_formulas_in_text_cells() {
        assert_eq!(csv("a,b\"c"), "\"a,b\"\"c\"");
        assert_eq!(csv("plain"), "plain");
        assert_eq!(
            csv("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv("+1+2"), "'+1+2");
        assert_eq!(csv("-2+3"), "'-2+3");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("\tx"), "'\\tx");
        assert_eq!(csv("\rx"), "'\\rx");
        assert_eq!(csv("-"), "-");
        assert_eq!(csv("a=b"), "a=b");
        assert_eq!(csv("e\u{1b}[2J"), "e\\u{1b}[2J");
    }

    #[test]
    fn markdown_escapes_markup_and_html() {
        assert_eq!(markdown("a|b"), "a\\|b");
        assert_eq!(
            markdown("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(markdown("__init__"), "\\_\\_init\\_\\_");
        assert_eq!(markdown("[x](http://e)"), "\\[x\\](http://e)");
        assert_eq!(markdown("a&amp;"), "a&amp;amp;");
        assert_eq!(markdown("e\u{1b}[2J"), "e\\\\u{1b}\\[2J");
    }

    #[test]
    fn json_is_the_same_value_without_raw_controls() {
        let name = "a\u{1b}[2J\u{7f}\u{9b}\u{202e}\"\\\u{e9}\u{1F600}";
        let literal = json_str(name);
        assert!(!literal.chars().any(acts), "{literal}");
        assert_eq!(serde_json::from_str::<String>(&literal).unwrap(), name);
        assert_eq!(json_str("plain"), "\"plain\"");
        let value = serde_json::json!({"name": name, "list": [1, 2.5]});
        for pretty in [false, true] {
            let mut out = Vec::new();
            if pretty {
                json_pretty(&mut out, &value).unwrap();
            } else {
                json_compact(&mut out, &value).unwrap();
            }
            let text = String::from_utf8(out).unwrap();
            assert!(!text.chars().any(|c| acts(c) && c != '\n'), "{text}");
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).unwrap(),
                value
            );
        }
        let mut plain = Vec::new();
        json_pretty(&mut plain, &serde_json::json!({"a": [1, {"b": null}]})).unwrap();
        assert_eq!(
            plain,
            serde_json::to_vec_pretty(&serde_json::json!({"a": [1, {"b": null}]})).unwrap()
        );
    }
}
