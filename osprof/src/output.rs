//! Where a report goes: a file (`-o FILE`) or stdout, as the `osprof` tool
//! writes it.
//!
//! A file is created (or truncated), written through a buffer, flushed,
//! and synced to disk when it is a regular file; a device (`-o /dev/null`,
//! a terminal) has nothing to sync, and saying so is not an error. On
//! stdout a closed pipe (`osprof rank LOG | head`) ends the report without
//! an error: the reader has what it wanted.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why a report could not be written out.
#[derive(Debug)]
#[non_exhaustive]
pub enum OutputError {
    /// The file could not be created.
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing, flushing or syncing failed.
    Write {
        /// The file, or `None` for stdout.
        path: Option<PathBuf>,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::Create { path, source } => {
                write!(f, "cannot create {}: {source}", path.display())
            }
            OutputError::Write {
                path: Some(path),
                source,
            } => write!(f, "cannot write {}: {source}", path.display()),
            OutputError::Write { path: None, source } => {
                write!(f, "cannot write to stdout: {source}")
            }
        }
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OutputError::Create { source, .. } | OutputError::Write { source, .. } => Some(source),
        }
    }
}

/// Writes through `write` to `path`, or to stdout when `None` (see the
/// module docs).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("report.txt");
/// osprof::output::write_to(Some(&path), |out| out.write_all(b"rows\n"))?;
/// assert_eq!(std::fs::read(&path)?, b"rows\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`OutputError::Create`] when the file cannot be created,
/// [`OutputError::Write`] when `write`, the flush or the sync fails (but
/// not for a closed pipe on stdout).
pub fn write_to(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), OutputError> {
    match path {
        Some(path) => {
            let file = File::create(path).map_err(|source| OutputError::Create {
                path: path.to_path_buf(),
                source,
            })?;
            let mut out = BufWriter::new(file);
            write(&mut out)
                .and_then(|()| out.flush())
                .and_then(|()| match out.get_ref().metadata() {
                    Ok(m) if m.is_file() => out.get_ref().sync_all(),
                    _ => Ok(()),
                })
                .map_err(|source| OutputError::Write {
                    path: Some(path.to_path_buf()),
                    source,
                })
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            match write(&mut out).and_then(|()| out.flush()) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                r => r.map_err(|source| OutputError::Write { path: None, source }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_devices_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "an older, longer content").unwrap();
        write_to(Some(&path), |out| out.write_all(b"new\n")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        #[cfg(unix)]
        write_to(Some(Path::new("/dev/null")), |out| out.write_all(b"x")).unwrap();
        let err = write_to(Some(&dir.path().join("no/such/dir")), |_| Ok(())).unwrap_err();
        assert!(err.to_string().starts_with("cannot create "), "{err}");
        let err = write_to(Some(&path), |_| Err(io::Error::other("full"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot write {}: full", path.display())
        );
    }
}
