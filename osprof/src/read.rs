//! Inputs of the reports: files, `-` for stdin, gzip-compressed files
//! (recognized by their magic bytes, whatever their name), and rotated sets.
//!
//! # Order
//!
//! The logs are read one after the other, files ordered by the first
//! timestamp each one contains, so that a rotated set given in any order
//! (`osprof rank osprofiler.*.log*`) is read in time order and a point that
//! starts in one file and stops in the next is matched. Stdin, and files in
//! which no line can be read, come after the dated files, in the order given.
//! Every [`LineRef`] and every [`model::Point`](super::model::Point) still
//! names its log by its index *in the order given*.
//!
//! # Lines
//!
//! Lines are split on `\n` in 1 MiB buffers, read straight into (no
//! allocation or copy per line); a
//! trailing `\r` is left to [`parse_line`], which
//! ignores it. A line longer than [`MAX_LINE_LEN`] cannot be a log line: it
//! is skipped (and counted as unreadable by the reports) without being held
//! in memory, so memory stays bounded whatever the input.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use tracing_osprofiler::format::{parse_line, Timestamp};

use super::Error;

/// The longest line the readers keep; longer ones are skipped whole.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// How much of a file is looked at to find its first timestamp.
const PEEK_LINES: usize = 1000;

/// The decoders' and `open`'s buffer.
const BUF_LEN: usize = 256 * 1024;

/// The line splitter's buffer: lines are handed out straight from it, and
/// its reads (at least `BUF_LEN` long) bypass the `BufReader` of a plain
/// file, so the bytes are copied once, by the kernel.
const CHUNK_LEN: usize = 1024 * 1024;

/// Where one log comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file (gzip or plain).
    Path(PathBuf),
    /// The standard input (`-`), gzip or plain.
    Stdin,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{}", p.display()),
            Source::Stdin => f.write_str("-"),
        }
    }
}

/// The logs a report reads, in the order given and in reading order.
///
/// ```
/// use osprof::read::Inputs;
///
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("a.log");
/// std::fs::write(&path, "not a log line\n")?;
/// let inputs = Inputs::from_paths([&path])?;
/// let mut lines = 0;
/// inputs.for_each_line(|line| lines += line.bytes.len())?;
/// assert_eq!(lines, 14);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Inputs {
    sources: Vec<Source>,
    order: Vec<usize>,
}

/// One line as read, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct LineRef<'a> {
    /// Index of the log in the order given.
    pub source: usize,
    /// 1-based line number within that log.
    pub line_no: u64,
    /// The line without its `\n`; empty for a line longer than
    /// [`MAX_LINE_LEN`], which is then `oversized`.
    pub bytes: &'a [u8],
    /// Whether the line was too long to keep.
    pub oversized: bool,
}

impl Inputs {
    /// Logs named on a command line: `-` is stdin, anything else a path.
    /// Files are opened once here to find their first timestamp; a file that
    /// cannot be opened is an [`Error::Open`].
    pub fn from_args<I, S>(args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let sources = args
            .into_iter()
            .map(|a| {
                let a = a.as_ref();
                if a == "-" {
                    Source::Stdin
                } else {
                    Source::Path(PathBuf::from(a))
                }
            })
            .collect();
        Self::new(sources)
    }

    /// Logs that are all files.
    pub fn from_paths<I, P>(paths: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        Self::new(
            paths
                .into_iter()
                .map(|p| Source::Path(p.as_ref().to_path_buf()))
                .collect(),
        )
    }

    /// The given sources, ordered for reading (see the module docs).
    pub fn new(sources: Vec<Source>) -> Result<Self, Error> {
        let mut keys = Vec::with_capacity(sources.len());
        for (i, source) in sources.iter().enumerate() {
            let first = match source {
                Source::Path(_) => first_timestamp(source)?,
                Source::Stdin => None,
            };
            keys.push((first.is_none(), first, i));
        }
        // Stable on the index: equal first timestamps keep the order given.
        keys.sort();
        Ok(Inputs {
            order: keys.into_iter().map(|(_, _, i)| i).collect(),
            sources,
        })
    }

    /// The sources in the order given.
    #[must_use]
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Indexes into [`sources`](Self::sources) in reading order.
    #[must_use]
    pub fn reading_order(&self) -> &[usize] {
        &self.order
    }

    /// Calls `f` with every line of every log, in reading order.
    pub fn for_each_line(&self, mut f: impl FnMut(LineRef<'_>)) -> Result<(), Error> {
        let mut buf = Vec::with_capacity(CHUNK_LEN);
        for &i in &self.order {
            let source = &self.sources[i];
            let reader = open(source)?;
            read_lines(reader, i, &mut buf, &mut f).map_err(|e| Error::Read {
                name: source.to_string(),
                source: e,
            })?;
        }
        Ok(())
    }
}

/// Opens a log, decompressing it when it starts with gzip's magic bytes.
pub fn open(source: &Source) -> Result<Box<dyn Read>, Error> {
    let err = |e| Error::Open {
        name: source.to_string(),
        source: e,
    };
    let raw: Box<dyn Read> = match source {
        Source::Path(p) => Box::new(File::open(p).map_err(err)?),
        Source::Stdin => Box::new(io::stdin().lock()),
    };
    let mut reader = BufReader::with_capacity(BUF_LEN, raw);
    let head = loop {
        match reader.fill_buf() {
            Ok(head) => break head,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        }
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            BUF_LEN,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// The first timestamp of a readable line among the first lines of a file.
fn first_timestamp(source: &Source) -> Result<Option<Timestamp>, Error> {
    let reader = open(source)?;
    let mut found = None;
    let mut seen = 0;
    let mut buf = Vec::with_capacity(BUF_LEN);
    let mut stop = false;
    let result = read_lines_until(reader, 0, &mut buf, BUF_LEN, &mut |line| {
        seen += 1;
        if let Ok(parsed) = parse_line(line.bytes) {
            found = Some(parsed.timestamp);
        }
        stop = found.is_some() || seen >= PEEK_LINES;
        stop
    });
    match result {
        Ok(()) => Ok(found),
        // A corrupt tail does not matter for ordering; reading reports it.
        Err(_) if found.is_some() => Ok(found),
        Err(e) => Err(Error::Read {
            name: source.to_string(),
            source: e,
        }),
    }
}

fn read_lines(
    reader: impl Read,
    source: usize,
    buf: &mut Vec<u8>,
    f: &mut impl FnMut(LineRef<'_>),
) -> io::Result<()> {
    read_lines_until(reader, source, buf, CHUNK_LEN, &mut |line| {
        f(line);
        false
    })
}

/// Splits `reader` into lines, reading `len` bytes at a time at most;
/// stops early when `f` returns true. A line longer than [`MAX_LINE_LEN`]
/// is reported as oversized wherever it falls in the buffer.
fn read_lines_until(
    mut reader: impl Read,
    source: usize,
    buf: &mut Vec<u8>,
    len: usize,
    f: &mut impl FnMut(LineRef<'_>) -> bool,
) -> io::Result<()> {
    buf.clear();
    buf.resize(len.max(2 * MAX_LINE_LEN), 0);
    // Bytes [0, filled) hold data; [0, start) of it is consumed.
    let mut filled = 0;
    let mut line_no = 0u64;
    // Inside a line longer than MAX_LINE_LEN, whose rest is being skipped.
    let mut skipping = false;
    loop {
        if filled == buf.len() {
            // No newline in a full buffer: the line is oversized.
            if !skipping {
                line_no += 1;
                let line = LineRef {
                    source,
                    line_no,
                    bytes: &[],
                    oversized: true,
                };
                if f(line) {
                    return Ok(());
                }
            }
            skipping = true;
            filled = 0;
        }
        let n = match reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let eof = n == 0;
        let scan_from = filled;
        filled += n;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[scan_from..filled]) {
            let end = scan_from + nl;
            if skipping {
                skipping = false;
            } else {
                line_no += 1;
                let oversized = end - start > MAX_LINE_LEN;
                let line = LineRef {
                    source,
                    line_no,
                    bytes: if oversized { &[] } else { &buf[start..end] },
                    oversized,
                };
                if f(line) {
                    return Ok(());
                }
            }
            start = end + 1;
        }
        if eof {
            if start < filled && !skipping {
                line_no += 1;
                let oversized = filled - start > MAX_LINE_LEN;
                f(LineRef {
                    source,
                    line_no,
                    bytes: if oversized { &[] } else { &buf[start..filled] },
                    oversized,
                });
            }
            return Ok(());
        }
        if start > 0 {
            buf.copy_within(start..filled, 0);
            filled -= start;
        }
        if skipping {
            // Nothing of a skipped line is kept.
            filled = 0;
        } else if filled > MAX_LINE_LEN {
            // Oversized: reported at the top of the loop, then skipped.
            filled = buf.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(data: &[u8]) -> Vec<(u64, Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        read_lines(data, 0, &mut buf, &mut |l: LineRef<'_>| {
            out.push((l.line_no, l.bytes.to_vec(), l.oversized))
        })
        .unwrap();
        out
    }

    #[test]
    fn splits_lines_across_buffer_boundaries() {
        let mut data = Vec::new();
        for i in 0..100_000 {
            data.extend_from_slice(format!("line {i}\r\n").as_bytes());
        }
        data.extend_from_slice(b"last");
        let lines = lines_of(&data);
        assert_eq!(lines.len(), 100_001);
        assert_eq!(lines[77_777].1, b"line 77777\r");
        assert_eq!(lines[100_000], (100_001, b"last".to_vec(), false));
    }

    #[test]
    fn a_long_line_is_oversized_wherever_it_falls() {
        // Short enough to fit whole in the buffer, longer than the limit.
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE_LEN + 1));
        data.extend_from_slice(b"\nb\n");
        data.extend(std::iter::repeat_n(b'y', MAX_LINE_LEN + 1));
        let lines = lines_of(&data);
        assert_eq!(
            lines,
            vec![
                (1, b"a".to_vec(), false),
                (2, Vec::new(), true),
                (3, b"b".to_vec(), false),
                (4, Vec::new(), true)
            ]
        );
        let mut data = vec![b'z'; MAX_LINE_LEN];
        data.push(b'\n');
        assert_eq!(lines_of(&data), vec![(1, vec![b'z'; MAX_LINE_LEN], false)]);
    }

    #[test]
    fn skips_oversized_lines_and_keeps_counting() {
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * BUF_LEN + 17));
        data.extend_from_slice(b"\nb\n");
        let lines = lines_of(&data);
        assert_eq!(
            lines,
            vec![
                (1, b"a".to_vec(), false),
                (2, Vec::new(), true),
                (3, b"b".to_vec(), false)
            ]
        );
    }
}
