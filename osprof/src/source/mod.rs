//! Where the reports' lines come from: files, `-` for stdin,
//! gzip-compressed files (recognized by their magic bytes, whatever their
//! name), rotated sets, and osprofiler's Redis store (feature `redis`,
//! `redis.rs`: its events as the lines a log would hold). Any new kind of
//! input belongs here, as a [`Source`].
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
//! allocation or copy per line); a trailing `\r` is left to [`parse_line`],
//! which ignores it. A line longer than [`MAX_LINE_LEN`] cannot be a log line: it
//! is skipped (and counted as unreadable by the reports) without being held
//! in memory, so memory stays bounded whatever the input.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
#[cfg(feature = "redis")]
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use tracing_osprofiler::format::{parse_line, Timestamp};

use crate::sniff::{self, Sniffing};
use crate::Error;

pub(crate) mod chunks;
mod lines;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisSource;
use lines::{read_lines, read_lines_until, CHUNK_LEN};

/// The longest line the readers keep; longer ones are skipped whole.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// How much of a file is looked at to find its first timestamp.
const PEEK_LINES: usize = 1000;

/// The decoders' and `open`'s buffer.
pub(crate) const BUF_LEN: usize = 256 * 1024;

/// Where one log comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A file (gzip or plain).
    Path(PathBuf),
    /// The standard input (`-`), gzip or plain.
    Stdin,
    /// osprofiler's Redis store, or one request in it.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis(RedisSource),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{}", p.display()),
            Source::Stdin => f.write_str("-"),
            #[cfg(feature = "redis")]
            Source::Redis(store) => store.fmt(f),
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
#[non_exhaustive]
pub struct Inputs {
    sources: Vec<Source>,
    order: Vec<usize>,
}

/// One line as read, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
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
    ///
    /// # Errors
    ///
    /// [`Error::Open`] or [`Error::Read`] when a file cannot be opened or
    /// its first lines read.
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
    ///
    /// # Errors
    ///
    /// As [`from_args`](Self::from_args).
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
    ///
    /// # Errors
    ///
    /// As [`from_args`](Self::from_args).
    pub fn new(sources: Vec<Source>) -> Result<Self, Error> {
        let mut keys = Vec::with_capacity(sources.len());
        for (i, source) in sources.iter().enumerate() {
            let first = match source {
                Source::Path(_) => first_timestamp(source)?,
                // Read after the dated files, in the order given.
                _ => None,
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
    ///
    /// # Errors
    ///
    /// [`Error::Open`] or [`Error::Read`] when a log cannot be opened or
    /// read to its end (the lines before are handed to `f`).
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
///
/// # Errors
///
/// [`Error::Open`] when it cannot be opened or its first bytes read.
pub fn open(source: &Source) -> Result<Box<dyn Read>, Error> {
    let err = |e| Error::Open {
        name: source.to_string(),
        source: e,
    };
    let raw: Box<dyn Read> = match source {
        Source::Path(p) => Box::new(File::open(p).map_err(err)?),
        Source::Stdin => Box::new(io::stdin().lock()),
        // What a store gives is followed for `check_logs` as it is read.
        #[cfg(feature = "redis")]
        Source::Redis(store) => {
            return Ok(Box::new(Sniffing::new(
                store.open()?,
                Arc::clone(store.seen()),
            )))
        }
    };
    let mut reader = BufReader::with_capacity(BUF_LEN, raw);
    let head = loop {
        match reader.fill_buf() {
            Ok(head) => break head,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        }
    };
    let decoded: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            BUF_LEN,
            MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    };
    if let Source::Stdin = source {
        // Stdin cannot be read twice: its (decoded) lines are followed
        // for `check_logs` as the report reads them.
        return Ok(Box::new(Sniffing::new(decoded, &sniff::STDIN)));
    }
    Ok(decoded)
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
