//! A rolling log file that this crate opens, rotates, prunes and writes
//! itself, with the file handle in hand.
//!
//! The files are named and rotated exactly as tracing-appender's
//! `RollingFileAppender` names and rotates them (`PREFIX.DATE.SUFFIX`, UTC
//! periods), so existing log collection keeps working; but that appender
//! hides its file, and the writer needs it: to cut a line that a full disk
//! left half-written back to the last line boundary (so the next line does
//! not merge into it), to notice a file deleted or replaced under it
//! (`fstat` says the inode has no link left, or the path names another
//! inode), and to keep writing to the old file when the new period's file
//! cannot be created (a read-only directory) instead of losing the lines.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime, Time};

use super::super::Rotation;

/// When the current file was opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Minutely,
    Hourly,
    Daily,
    Weekly,
    Never,
}

impl Period {
    fn of(rotation: &Rotation) -> Period {
        if *rotation == Rotation::MINUTELY {
            Period::Minutely
        } else if *rotation == Rotation::HOURLY {
            Period::Hourly
        } else if *rotation == Rotation::DAILY {
            Period::Daily
        } else if *rotation == Rotation::WEEKLY {
            Period::Weekly
        } else {
            Period::Never
        }
    }

    /// The start of the period holding `now`.
    fn start(self, now: OffsetDateTime) -> OffsetDateTime {
        let midnight = Time::MIDNIGHT;
        match self {
            Period::Minutely => {
                now.replace_time(Time::from_hms(now.hour(), now.minute(), 0).unwrap_or(midnight))
            }
            Period::Hourly => {
                now.replace_time(Time::from_hms(now.hour(), 0, 0).unwrap_or(midnight))
            }
            Period::Daily | Period::Never => now.replace_time(midnight),
            Period::Weekly => {
                let since_sunday = now.weekday().number_days_from_sunday();
                (now - Duration::days(i64::from(since_sunday))).replace_time(midnight)
            }
        }
    }

    /// The start of the next period, `None` for [`Period::Never`].
    fn next(self, start: OffsetDateTime) -> Option<OffsetDateTime> {
        let length = match self {
            Period::Minutely => Duration::minutes(1),
            Period::Hourly => Duration::hours(1),
            Period::Daily => Duration::days(1),
            Period::Weekly => Duration::weeks(1),
            Period::Never => return None,
        };
        start.checked_add(length)
    }

    /// The date part of a file name, as tracing-appender writes it.
    fn date(self, start: OffsetDateTime) -> String {
        let (y, mo, d, h, mi) = (
            start.year(),
            u8::from(start.month()),
            start.day(),
            start.hour(),
            start.minute(),
        );
        match self {
            Period::Minutely => format!("{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}"),
            Period::Hourly => format!("{y:04}-{mo:02}-{d:02}-{h:02}"),
            Period::Daily | Period::Weekly | Period::Never => format!("{y:04}-{mo:02}-{d:02}"),
        }
    }

    /// Whether `text` has the shape of [`date`](Self::date)'s output.
    fn is_date(self, text: &str) -> bool {
        let groups = match self {
            Period::Minutely => 5,
            Period::Hourly => 4,
            Period::Daily | Period::Weekly | Period::Never => 3,
        };
        let parts: Vec<&str> = text.split('-').collect();
        parts.len() == groups
            && parts.iter().enumerate().all(|(i, part)| {
                part.len() == if i == 0 { 4 } else { 2 } && part.bytes().all(|b| b.is_ascii_digit())
            })
    }
}

/// The settings of a rolling log, from [`RollingFile`](super::RollingFile).
#[derive(Debug, Clone)]
pub(super) struct Naming {
    pub(super) directory: PathBuf,
    pub(super) rotation: Rotation,
    pub(super) prefix: String,
    pub(super) suffix: String,
    pub(super) max_files: Option<usize>,
}

impl Naming {
    fn file_name(&self, period: Period, start: OffsetDateTime) -> String {
        let parts: Vec<String> = if period == Period::Never {
            vec![self.prefix.clone(), self.suffix.clone()]
        } else {
            vec![self.prefix.clone(), period.date(start), self.suffix.clone()]
        };
        let parts: Vec<&str> = parts
            .iter()
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            // Neither prefix nor suffix with no rotation: a name is needed.
            return "osprofiler.log".to_owned();
        }
        parts.join(".")
    }

    /// Whether `name` is one of this log's rotated files.
    fn is_ours(&self, period: Period, name: &str) -> bool {
        let mut rest = name;
        if !self.prefix.is_empty() {
            let Some(r) = rest
                .strip_prefix(self.prefix.as_str())
                .and_then(|r| r.strip_prefix('.'))
            else {
                return false;
            };
            rest = r;
        }
        if !self.suffix.is_empty() {
            let Some(r) = rest
                .strip_suffix(self.suffix.as_str())
                .and_then(|r| r.strip_suffix('.'))
            else {
                return false;
            };
            rest = r;
        }
        period.is_date(rest)
    }
}

/// The file being written.
#[derive(Debug)]
struct OpenLog {
    file: File,
    path: PathBuf,
    /// Its length, as far as this writer knows (it appends alone).
    len: u64,
    /// When the next period starts (Unix seconds), `None` for no rotation.
    ends_at: Option<i64>,
    /// Its identity on Unix, to notice the path naming another file.
    inode: u64,
}

/// What [`RollingLog::open_for`] did.
#[derive(Debug)]
pub(super) enum Opened {
    /// The file for `now` is open.
    Current,
    /// The new period's file could not be created; the previous file stays
    /// open and is written to.
    KeptPrevious(io::Error),
}

/// What a write did.
#[derive(Debug)]
pub(super) struct Written {
    /// Bytes of the buffer now in the file, ending at a line boundary.
    pub(super) bytes: usize,
    /// Why the rest is not.
    pub(super) error: Option<io::Error>,
}

#[derive(Debug)]
pub(super) struct RollingLog {
    naming: Naming,
    period: Period,
    current: Option<OpenLog>,
    /// The file ends inside a line (a torn write that could not be cut
    /// back, or a file a crashed process left): start on a new line.
    torn: bool,
}

impl RollingLog {
    pub(super) fn new(naming: Naming) -> Self {
        let period = Period::of(&naming.rotation);
        RollingLog {
            naming,
            period,
            current: None,
            torn: false,
        }
    }

    pub(super) fn directory(&self) -> &Path {
        &self.naming.directory
    }

    pub(super) fn is_open(&self) -> bool {
        self.current.is_some()
    }

    /// The path of the file being written.
    #[cfg(test)]
    pub(super) fn path(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// Forgets the open file (after a failure): the next
    /// [`open_for`](Self::open_for) opens it again.
    pub(super) fn close(&mut self) {
        self.current = None;
    }

    /// Makes sure the file for `now` is open: rotates when its period is
    /// over, and opens it again (re-creating the directory) when it was
    /// deleted or replaced, so lines never go into a deleted file.
    pub(super) fn open_for(&mut self, now: OffsetDateTime) -> io::Result<Opened> {
        let due = self.current.as_ref().is_some_and(|current| {
            current
                .ends_at
                .is_some_and(|ends| now.unix_timestamp() >= ends)
        });
        if self.current.as_ref().is_some_and(is_gone) {
            self.current = None;
        }
        if self.current.is_some() && !due {
            return Ok(Opened::Current);
        }
        match self.open_new(now) {
            Ok(()) => Ok(Opened::Current),
            Err(error) if self.current.is_some() => {
                // Keep the previous period's file rather than lose lines;
                // try again with the next batch.
                Ok(Opened::KeptPrevious(error))
            }
            Err(error) => Err(error),
        }
    }

    fn open_new(&mut self, now: OffsetDateTime) -> io::Result<()> {
        let start = self.period.start(now);
        let path = self
            .naming
            .directory
            .join(self.naming.file_name(self.period, start));
        fs::create_dir_all(&self.naming.directory)?;
        let file = OpenOptions::new().append(true).create(true).open(&path)?;
        let metadata = file.metadata()?;
        let len = metadata.len();
        self.torn = len > 0 && !ends_with_newline(&path, len);
        self.current = Some(OpenLog {
            inode: inode(&metadata),
            file,
            path,
            len,
            ends_at: self.period.next(start).map(OffsetDateTime::unix_timestamp),
        });
        if let Some(max_files) = self.naming.max_files {
            self.prune(max_files);
        }
        Ok(())
    }

    /// Deletes the oldest files of this log so that at most `max_files`
    /// remain, the current one included.
    fn prune(&self, max_files: usize) {
        let Some(current) = &self.current else { return };
        let Ok(entries) = fs::read_dir(&self.naming.directory) else {
            return;
        };
        let mut older: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| self.naming.is_ours(self.period, name))
            })
            .map(|entry| entry.path())
            .filter(|path| *path != current.path)
            .collect();
        // Dates in the names sort as the periods do.
        older.sort();
        let keep = max_files.saturating_sub(1);
        let excess = older.len().saturating_sub(keep);
        for path in &older[..excess] {
            if let Err(error) = fs::remove_file(path) {
                eprintln!(
                    "tracing-osprofiler: cannot remove the old profile log {}: {error}",
                    path.display()
                );
            }
        }
    }

    /// Appends `buf`, whole lines, to the open file. On an error, what was
    /// written of a line that is not complete is cut off again, so the file
    /// always ends at a line boundary; if even that fails, the next write
    /// starts with a line break, so no two lines merge.
    pub(super) fn write_lines(&mut self, buf: &[u8]) -> Written {
        let Some(current) = self.current.as_mut() else {
            return Written {
                bytes: 0,
                error: Some(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no log file is open",
                )),
            };
        };
        if self.torn {
            match write_fully(&mut current.file, b"\n") {
                (1, None) => {
                    current.len += 1;
                    self.torn = false;
                }
                (_, error) => {
                    return Written {
                        bytes: 0,
                        error: error.or_else(|| Some(io::ErrorKind::WriteZero.into())),
                    }
                }
            }
        }
        let (written, error) = write_fully(&mut current.file, buf);
        let Some(error) = error else {
            current.len += written as u64;
            return Written {
                bytes: written,
                error: None,
            };
        };
        let whole = buf[..written]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let whole_len = current.len + whole as u64;
        if whole < written && current.file.set_len(whole_len).is_err() {
            self.torn = true;
            current.len += written as u64;
        } else {
            current.len = whole_len;
        }
        Written {
            bytes: whole,
            error: Some(error),
        }
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some(current) => current.file.flush(),
            None => Ok(()),
        }
    }
}

/// Writes as much of `buf` as the file takes: how much, and the error that
/// stopped it.
fn write_fully(file: &mut impl Write, buf: &[u8]) -> (usize, Option<io::Error>) {
    let mut written = 0;
    while written < buf.len() {
        match file.write(&buf[written..]) {
            Ok(0) => return (written, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Some(e)),
        }
    }
    (written, None)
}

/// Whether the file's last byte is a line break (an unreadable file is
/// taken as ending well: nothing is gained by a blank line).
fn ends_with_newline(path: &Path, len: u64) -> bool {
    let mut last = [0u8; 1];
    let read = File::open(path).and_then(|mut reader| {
        reader.seek(SeekFrom::Start(len - 1))?;
        reader.read_exact(&mut last)
    });
    read.is_err() || last[0] == b'\n'
}

/// Whether the open file was deleted, or its path now names another file.
fn is_gone(current: &OpenLog) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if current.file.metadata().is_ok_and(|m| m.nlink() == 0) {
            return true;
        }
        match fs::metadata(&current.path) {
            Ok(metadata) => metadata.ino() != current.inode,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }
    #[cfg(not(unix))]
    {
        !current.path.exists()
    }
}

fn inode(metadata: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        metadata.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        let format = time::format_description::well_known::Rfc3339;
        OffsetDateTime::parse(text, &format).unwrap()
    }

    fn naming(dir: &Path, rotation: Rotation, max_files: Option<usize>) -> Naming {
        Naming {
            directory: dir.to_path_buf(),
            rotation,
            prefix: "osprofiler".into(),
            suffix: "log".into(),
            max_files,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_files_as_tracing_appender_does() {
        let dir = Path::new("/logs");
        let now = at("2026-11-25T14:37:12Z");
        for (rotation, name) in [
            (Rotation::MINUTELY, "osprofiler.2026-11-25-14-37.log"),
            (Rotation::HOURLY, "osprofiler.2026-11-25-14.log"),
            (Rotation::DAILY, "osprofiler.2026-11-25.log"),
            // 2026-11-25 is a Wednesday: weeks start on Sunday.
            (Rotation::WEEKLY, "osprofiler.2026-11-22.log"),
            (Rotation::NEVER, "osprofiler.log"),
        ] {
            let naming = naming(dir, rotation.clone(), None);
            let period = Period::of(&rotation);
            assert_eq!(naming.file_name(period, period.start(now)), name);
            assert!(
                period == Period::Never || naming.is_ours(period, name),
                "{name}"
            );
        }
    }

    #[test]
    fn rotates_on_the_period_and_prunes_to_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RollingLog::new(naming(dir.path(), Rotation::MINUTELY, Some(2)));
        std::fs::write(dir.path().join("unrelated.txt"), "keep\n").unwrap();
        for (minute, line) in [("00", "a"), ("00", "b"), ("01", "c"), ("02", "d")] {
            log.open_for(at(&format!("2026-11-25T14:{minute}:30Z")))
                .unwrap();
            assert!(log
                .write_lines(format!("{line}\n").as_bytes())
                .error
                .is_none());
        }
        assert_eq!(
            names(dir.path()),
            [
                "osprofiler.2026-11-25-14-01.log",
                "osprofiler.2026-11-25-14-02.log",
                "unrelated.txt"
            ]
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("osprofiler.2026-11-25-14-02.log")).unwrap(),
            "d\n"
        );
    }

    #[test]
    fn a_deleted_or_replaced_file_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RollingLog::new(naming(dir.path(), Rotation::NEVER, None));
        let now = at("2026-11-25T14:00:00Z");
        log.open_for(now).unwrap();
        let path = log.path().unwrap().to_path_buf();
        log.write_lines(b"one\n");
        fs::remove_file(&path).unwrap();
        log.open_for(now).unwrap();
        log.write_lines(b"two\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        fs::remove_file(&path).unwrap();
        fs::write(&path, "someone else's\n").unwrap();
        log.open_for(now).unwrap();
        log.write_lines(b"three\n");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "someone else's\nthree\n"
        );
        fs::remove_dir_all(dir.path()).unwrap();
        log.open_for(now).unwrap();
        log.write_lines(b"four\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "four\n");
    }

    #[test]
    fn a_file_left_inside_a_line_is_continued_on_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osprofiler.log");
        fs::write(&path, "complete\nhalf a li").unwrap();
        let mut log = RollingLog::new(naming(dir.path(), Rotation::NEVER, None));
        log.open_for(at("2026-11-25T14:00:00Z")).unwrap();
        log.write_lines(b"next\n");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "complete\nhalf a li\nnext\n"
        );
    }

    /// A writer that takes `room` bytes, then fails like a full disk.
    struct ShortWrites {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for ShortWrites {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let n = buf.len().min(self.room).min(7);
            self.taken.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn short_writes_are_followed_to_the_error() {
        let mut out = ShortWrites {
            taken: Vec::new(),
            room: 20,
        };
        let (n, error) = write_fully(&mut out, b"0123456789\nabcdefghij\nrest\n");
        assert_eq!(n, 20);
        assert_eq!(error.unwrap().raw_os_error(), Some(28));
        assert_eq!(out.taken, b"0123456789\nabcdefghi");
    }
}
