//! Whether a log is a profiler log at all. The reports skip and count the
//! lines they cannot read, so that a log with a few torn or foreign lines
//! still reports; but a log in which no line is a profiler line (a wrong
//! file, the service's own log, a config) is a mistake to name, not an
//! empty report. This module owns that check, its messages, and the
//! following of what standard input and a Redis store gave.
//!
//! A file is read again for the check (cheap for a log: its first line is
//! a trace point). Standard input and a Redis store cannot be read twice:
//! [`source::open`](crate::source::open) hands them out through
//! [`Sniffing`], which looks at their lines *as the report reads them*
//! (each line until the first trace point, then nothing more), so they are
//! still streamed, and [`check_logs`] judges them afterwards from what was
//! seen. One [`LineSniff`] makes both judgements, so a file and standard
//! input holding the same bytes get the same answer.

use std::io::{self, Read};
use std::ops::Deref;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tracing_osprofiler::format::parse_line;

use crate::render::escape::text;
use crate::source::{open, Inputs, Source, MAX_LINE_LEN};
use crate::Error;

/// How much of a foreign first line an error quotes.
const QUOTED_CHARS: usize = 80;

/// How standard input is named in messages (`-` on the command line).
pub(crate) const STDIN_NAME: &str = "standard input";

/// What the reading of standard input saw: stdin is one stream per
/// process, so this is too.
pub(crate) static STDIN: Seen = Seen::new();

/// Checks that every log among `inputs` that holds any line holds a
/// profiler line too.
///
/// * A file is read up to its first profiler line, which is its first
///   line in a log: cheap for logs; a file with none is read to its end.
/// * Standard input (`-`) is judged by what the readings of it in this
///   process saw (it cannot be read twice): call this *after* a report
///   read `inputs`. Standard input not read to its end yet is not judged.
/// * A Redis store (`Source::Redis`, feature `redis`) read to its end
///   without giving one event is an [`Error::NoEvents`]: the connection
///   string names an empty store, or another database than the services'.
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
/// [`Error::NotALog`] for the first file, or standard input, without a
/// profiler line (blank lines do not count; an empty log is fine),
/// [`Error::NoEvents`] for a store without an event, [`Error::Open`] or
/// [`Error::Read`] when a file cannot be read.
pub fn check_logs(inputs: &Inputs) -> Result<(), Error> {
    check(inputs, true)
}

/// [`check_logs`] without the files: judges only standard input and a
/// Redis store, from what a report saw as it read them, and reads nothing
/// again. Enough after a report that counted no unreadable line, since a
/// file without one cannot fail [`check_logs`]; a store can (an empty one
/// has no line at all).
///
/// # Errors
///
/// As [`check_logs`], for standard input and a store.
pub fn check_streams(inputs: &Inputs) -> Result<(), Error> {
    check(inputs, false)
}

/// [`check_logs`], files too when `files`.
fn check(inputs: &Inputs, files: bool) -> Result<(), Error> {
    for source in inputs.sources() {
        match source {
            Source::Path(_) => {
                if files {
                    check_file(source)?;
                }
            }
            Source::Stdin => STDIN.lock().verdict(STDIN_NAME)?,
            #[cfg(feature = "redis")]
            Source::Redis(store) => {
                let seen = store.seen().lock();
                if seen.ended && !seen.found {
                    return Err(Error::NoEvents {
                        name: store.to_string(),
                        one_request: store.one_request(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Whether `inputs` name standard input (`-`) and it was read to its end
/// without a single byte: an empty report, as from an empty file, but on a
/// pipe usually the sign that the command before it failed, which a
/// person cannot see afterwards as they can see an empty file. Call it
/// after a report read `inputs`.
#[must_use]
pub fn stdin_was_empty(inputs: &Inputs) -> bool {
    if !inputs.sources().iter().any(|s| matches!(s, Source::Stdin)) {
        return false;
    }
    let seen = STDIN.lock();
    seen.ended && seen.bytes == 0
}

fn check_file(source: &Source) -> Result<(), Error> {
    let mut reader = open(source)?;
    let mut sniff = LineSniff::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Read {
                    name: source.to_string(),
                    source: e,
                })
            }
        };
        sniff.feed(&buf[..n]);
        if sniff.found {
            return Ok(());
        }
    }
    sniff.finish();
    sniff.verdict(&source.to_string())
}

/// The first foreign line of a log: where, what (escaped, cut), why.
#[derive(Debug)]
struct Foreign {
    line: u64,
    first_line: String,
    reason: String,
}

/// Follows a log's lines, fed in pieces of any size: whether one is a
/// trace point, and the first non-blank one if none is. Holds at most one
/// line of [`MAX_LINE_LEN`] bytes; once a trace point is seen it only
/// counts bytes.
#[derive(Debug)]
pub(crate) struct LineSniff {
    /// The current line's first [`MAX_LINE_LEN`] bytes.
    line: Vec<u8>,
    /// The current line is longer than that.
    oversized: bool,
    line_no: u64,
    bytes: u64,
    found: bool,
    /// The log was read to its end (at least once).
    ended: bool,
    first: Option<Foreign>,
}

impl LineSniff {
    pub(crate) const fn new() -> Self {
        LineSniff {
            line: Vec::new(),
            oversized: false,
            line_no: 0,
            bytes: 0,
            found: false,
            ended: false,
            first: None,
        }
    }

    /// Takes the next bytes of the log.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        self.bytes = self.bytes.saturating_add(data.len() as u64);
        while !self.found && !data.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(at) => {
                    self.push(&data[..at]);
                    self.end_line();
                    data = &data[at + 1..];
                }
                None => {
                    self.push(data);
                    break;
                }
            }
        }
    }

    /// The log ended: its last line, if it had no `\n`, is judged too.
    pub(crate) fn finish(&mut self) {
        if !self.found && (!self.line.is_empty() || self.oversized) {
            self.end_line();
        }
        self.ended = true;
    }

    fn push(&mut self, part: &[u8]) {
        if self.oversized {
            return;
        }
        let room = MAX_LINE_LEN - self.line.len();
        if part.len() > room {
            self.line.extend_from_slice(&part[..room]);
            self.oversized = true;
        } else {
            self.line.extend_from_slice(part);
        }
    }

    fn end_line(&mut self) {
        self.line_no += 1;
        let oversized = std::mem::take(&mut self.oversized);
        if self.line.trim_ascii().is_empty() {
            self.line.clear();
            return;
        }
        let why = if oversized {
            format!("longer than {MAX_LINE_LEN} bytes")
        } else {
            match parse_line(&self.line) {
                Ok(_) => {
                    self.found = true;
                    // Nothing more is looked at: free the line.
                    self.line = Vec::new();
                    self.first = None;
                    return;
                }
                Err(why) => why.to_string(),
            }
        };
        if self.first.is_none() {
            let shown: String = String::from_utf8_lossy(self.line.trim_ascii())
                .chars()
                .take(QUOTED_CHARS)
                .collect();
            self.first = Some(Foreign {
                line: self.line_no,
                first_line: text(&shown).into_owned(),
                reason: why,
            });
        }
        self.line.clear();
    }

    /// [`Error::NotALog`] for a log read to its end that holds lines and
    /// no trace point.
    fn verdict(&self, name: &str) -> Result<(), Error> {
        match &self.first {
            Some(first) if self.ended && !self.found => Err(Error::NotALog {
                name: name.to_owned(),
                line: first.line,
                first_line: first.first_line.clone(),
                reason: first.reason.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// A [`LineSniff`] shared between the reader that feeds it and the check
/// made afterwards.
#[derive(Debug)]
pub(crate) struct Seen(Mutex<LineSniff>);

impl Seen {
    pub(crate) const fn new() -> Self {
        Seen(Mutex::new(LineSniff::new()))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, LineSniff> {
        // A panic elsewhere cannot leave a LineSniff half-updated in a way
        // that matters: it is only a verdict.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Seen {
    fn default() -> Self {
        Seen::new()
    }
}

/// A log's reader that shows each piece it reads to a [`Seen`], and
/// passes it on unchanged: what it reads is not held, nor read again.
pub(crate) struct Sniffing<R, S> {
    inner: R,
    seen: S,
}

impl<R: Read, S: Deref<Target = Seen>> Sniffing<R, S> {
    pub(crate) fn new(inner: R, seen: S) -> Self {
        Sniffing { inner, seen }
    }
}

impl<R: Read, S: Deref<Target = Seen>> Read for Sniffing<R, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if buf.is_empty() {
            return Ok(n);
        }
        let mut seen = self.seen.lock();
        if n == 0 {
            seen.finish();
        } else {
            // Once a trace point was seen, `feed` only counts the bytes.
            seen.feed(&buf[..n]);
        }
        Ok(n)
    }
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
    fn check_streams_reads_no_file_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "shopping list\n").unwrap();
        let inputs = Inputs::from_paths([&path]).unwrap();
        assert!(matches!(check_logs(&inputs), Err(Error::NotALog { .. })));
        check_streams(&inputs).unwrap();
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

    /// `content` read through [`Sniffing`], `piece` bytes at a time, as
    /// standard input is: the verdict, and whether the bytes came through
    /// unchanged.
    fn sniffed(content: &[u8], piece: usize) -> Result<(), Error> {
        let seen = std::sync::Arc::new(Seen::new());
        let mut reader = Sniffing::new(Pieces(content, piece), std::sync::Arc::clone(&seen));
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, content);
        let verdict = seen.lock().verdict("standard input");
        verdict
    }

    /// A reader that gives at most `.1` bytes a read, as a pipe may.
    struct Pieces<'a>(&'a [u8], usize);

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_stream_gets_the_verdict_of_a_file_whatever_its_pieces() {
        let mut oversized = vec![b'x'; MAX_LINE_LEN * 3];
        oversized.extend_from_slice(b"\nshort\n");
        let cases: [&[u8]; 8] = [
            b"",
            b"\n\n",
            b"\n  hello world  \nsecond\n",
            b"no newline at the end",
            b"\x1b[31mred\x07\r\n",
            format!("junk\nmore junk\n{LINE}\n").leak().as_bytes(),
            LINE.as_bytes(),
            oversized.leak(),
        ];
        for content in cases {
            let file = check(content).map_err(|e| e.to_string());
            for piece in [1, 3, 4096, usize::MAX] {
                let stream = sniffed(content, piece).map_err(|e| e.to_string());
                // Same verdict, same message but the name.
                let stream = stream.map_err(|e| e.replace("standard input", "x.log"));
                let file = file
                    .clone()
                    .map_err(|e| e.replace(&e[..e.find(" is not").unwrap()], "x.log"));
                assert_eq!(stream, file, "{piece} bytes a read");
            }
        }
    }

    #[test]
    fn a_stream_not_read_to_its_end_is_not_judged() {
        let seen = Seen::new();
        let mut reader = Sniffing::new(&b"junk\nmore junk\n"[..], &seen);
        let mut buf = [0u8; 5];
        reader.read_exact(&mut buf).unwrap();
        seen.lock().verdict("standard input").unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        let message = seen
            .lock()
            .verdict("standard input")
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(
                "standard input is not a profiler log: none of its lines is a \
                 trace point; its first line (line 1) is \"junk\" ("
            ),
            "{message}"
        );
    }

    #[test]
    fn a_stream_holds_no_more_than_one_line_and_stops_looking_at_a_trace_point() {
        // 10 MiB of junk in lines of 1 KiB, 3 MiB in one line: the line
        // kept never exceeds the limit.
        let mut sniff = LineSniff::new();
        let junk = [vec![b'j'; 1023], vec![b'\n']].concat();
        for _ in 0..10 * 1024 {
            sniff.feed(&junk);
        }
        for _ in 0..3 * 1024 {
            sniff.feed(&[b'k'; 1024]);
            assert!(sniff.line.capacity() <= 2 * MAX_LINE_LEN);
        }
        sniff.feed(format!("\n{LINE}\n").as_bytes());
        assert!(sniff.found && sniff.line.capacity() == 0);
        sniff.feed(b"more junk\n");
        sniff.finish();
        sniff.verdict("x").unwrap();
        assert_eq!(
            sniff.bytes,
            10 * 1024 * 1024 + 3 * 1024 * 1024 + LINE.len() as u64 + 12
        );
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
