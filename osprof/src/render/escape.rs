//! Cell escaping shared by the tabular reports (Markdown and CSV).

use std::borrow::Cow;

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub(crate) fn csv(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// A Markdown table cell: `|` and `\` escaped, line breaks removed.
pub(crate) fn markdown(cell: &str) -> Cow<'_, str> {
    if cell.contains(['|', '\\', '\n', '\r', '`']) {
        let mut out = String::with_capacity(cell.len() + 4);
        for c in cell.chars() {
            match c {
                '|' | '\\' | '`' => {
                    out.push('\\');
                    out.push(c);
                }
                '\n' | '\r' => out.push(' '),
                c => out.push(c),
            }
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(csv("a,b\"c"), "\"a,b\"\"c\"");
        assert_eq!(csv("plain"), "plain");
        assert_eq!(markdown("a|b"), "a\\|b");
    }
}
