//! Whether a file is a profiler log at all. The reports skip and count the
//! lines they cannot read, so that a log with a few torn or foreign lines
//! still reports; but a file in which no line is a profiler line (a wrong
//! file, the service's own log, a config) is a mistake to name, not an
//! empty report. This module owns that check and its message.

use std::io::{self, BufRead, BufReader, Read};

use tracing_osprofiler::format::parse_line;

use crate::render::escape::text;
use crate::source::{open, Inputs, Source, MAX_LINE_LEN};
use crate::Error;

/// How much of a foreign first line an error quotes.
const QUOTED_CHARS: usize = 80;

/// Checks that every file among `inputs` that holds any line holds a
/// profiler line too. Each file is read up to its first profiler line, which
/// is its first line in a log: cheap for logs; a file with none is read to its
/// end. Stdin and the Redis store are not checked (they cannot be read twice).
///
/// ```
/// use osprof::read::Inputs;
///
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("notes.txt");
/// std::fs::write(&path, "shopping list\nmilk\n")?;
/// let error = osprof::check_logs(&Inputs::from_paths([&path])?).unwrap_err();
/// assert!(error.to_string().contains("is not a profiler log"), "{error}");
/// assert!(error.to_string().contains("\"shopping list\""), "{error}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::NotALog`] for the first file without a profiler line (blank
/// lines do not count; an empty file is fine), [`Error::Open`] or
/// [`Error::Read`] when a file cannot be read.
pub fn check_logs(inputs: &Inputs) -> Result<(), Error> {
    for source in inputs.sources() {
        if let Source::Path(_) = source {
            check_one(source)?;
        }
    }
    Ok(())
}

fn check_one(source: &Source) -> Result<(), Error> {
    let read_error = |e| Error::Read {
        name: source.to_string(),
        source: e,
    };
    let mut reader = BufReader::new(open(source)?);
    let mut first: Option<(u64, String, String)> = None;
    let mut line = Vec::new();
    let mut line_no = 0u64;
    while let Some(oversized) = next_line(&mut reader, &mut line).map_err(read_error)? {
        line_no += 1;
        if line.trim_ascii().is_empty() {
            continue;
        }
        let why = if oversized {
            format!("longer than {MAX_LINE_LEN} bytes")
        } else {
            match parse_line(&line) {
                Ok(_) => return Ok(()),
                Err(why) => why.to_string(),
            }
        };
        if first.is_none() {
            let shown: String = String::from_utf8_lossy(line.trim_ascii())
                .chars()
                .take(QUOTED_CHARS)
                .collect();
            first = Some((line_no, text(&shown).into_owned(), why));
        }
    }
    match first {
        None => Ok(()),
        Some((line, first_line, reason)) => Err(Error::NotALog {
            name: source.to_string(),
            line,
            first_line,
            reason,
        }),
    }
}

/// Reads the next line into `line`, without its `\n`, keeping at most
/// [`MAX_LINE_LEN`] bytes of it: `Some(true)` when it was longer (the rest
/// is skipped), `None` at the end.
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    line.clear();
    let limit = MAX_LINE_LEN as u64 + 1;
    let n = reader.by_ref().take(limit).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(false));
    }
    if line.len() <= MAX_LINE_LEN {
        // The last line, without a `\n`.
        return Ok(Some(false));
    }
    // Skip the rest of an oversized line without holding it.
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        match memchr_newline(buf) {
            Some(at) => {
                reader.consume(at + 1);
                break;
            }
            None => {
                let len = buf.len();
                reader.consume(len);
            }
        }
    }
    line.truncate(MAX_LINE_LEN);
    Ok(Some(true))
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(content: &[u8]) -> Result<(), Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, content).unwrap();
        check_logs(&Inputs::from_paths([&path]).unwrap())
    }

    const LINE: &str = "2026-11-25T20:31:02.118240          0f5c3f0e-7a41-4b09-9c2d-8b5b0f5c3fe1 \
        0f5c3f0e-7a41-4b09-9c2d-8b5b0f5c3fe1 7a410f5c-3f0e-4b09-9c2d-8b5b0f5c3fe1 wsgi-start";

    #[test]
    fn a_log_and_an_empty_file_pass() {
        check(format!("{LINE}\n").as_bytes()).unwrap();
        check(b"").unwrap();
        check(b"\n\n").unwrap();
    }

    #[test]
    fn a_mixed_file_passes() {
        check(format!("junk\nmore junk\n{LINE}\n").as_bytes()).unwrap();
    }

    #[test]
    fn a_file_without_a_profiler_line_is_named_with_its_first_line() {
        let error = check(b"\n  hello world  \nsecond\n").unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::NotALog { line: 2, .. }), "{message}");
        assert!(message.contains("x.log is not a profiler log"), "{message}");
        assert!(message.contains("(line 2) is \"hello world\""), "{message}");
    }

    #[test]
    fn an_oversized_line_is_neither_held_nor_a_log_line() {
        let mut content = vec![b'x'; MAX_LINE_LEN * 3];
        content.extend_from_slice(b"\nshort\n");
        let error = check(&content).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("longer than {MAX_LINE_LEN}")),
            "{message}"
        );
        // Quoted, but cut short.
        assert!(message.len() < 400, "{message}");
        let mut content = vec![b'x'; MAX_LINE_LEN * 3];
        content.extend_from_slice(format!("\n{LINE}").as_bytes());
        check(&content).unwrap();
    }

    #[test]
    fn hostile_text_is_escaped() {
        let message = check(b"\x1b[31mred\x07\n").unwrap_err().to_string();
        assert!(
            !message.contains('\x1b') && !message.contains('\x07'),
            "{message}"
        );
    }
}
