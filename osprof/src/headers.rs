//! `osprof headers`: the two headers that ask a service to profile one
//! request, signed with a shared key, written so that they paste into
//! `curl` or a script, with the `base_id` to look the request up by
//! afterwards (`osprof show BASE_ID LOG...`).
//!
//! The key is a secret: [`Key::from_sources`] takes it from a file, an
//! environment variable ([`KEY_ENV`]) or, discouraged, a command-line
//! argument (which any local user sees in the process list and which stays
//! in the shell's history), exactly one of them, and never a blank one.
//!
//! ```
//! use osprof::headers::{sign, write_headers, HeadersFormat, Key};
//! use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Id};
//!
//! let base = Id::parse("6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b")?;
//! let key = Key::new("SECRET_KEY")?;
//! let signed = sign(&key, Some(base), None, HmacAlgorithm::Sha1);
//! let mut out = Vec::new();
//! write_headers(&signed, HeadersFormat::Curl, &mut out)?;
//! assert!(String::from_utf8(out)?.starts_with("-H 'X-Trace-Info: "));
//! // The service holding the key accepts them.
//! let profile = HmacKeys::from_comma_separated("SECRET_KEY")
//!     .verify(signed.headers.trace_info(), signed.headers.trace_hmac())
//!     .unwrap();
//! assert_eq!(profile.trace_info().base_id(), base);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use tracing_osprofiler::token::{HmacAlgorithm, Signer, TraceHeaders, TraceInfo};
use tracing_osprofiler::Id;

use crate::render::escape::{json_compact, text};

/// The environment variable `osprof headers` reads the key from when no
/// `--key-file` (and no `--key`) is given.
pub const KEY_ENV: &str = "OSPROFILER_HMAC_KEY";

/// The longest first line a key file may have: a key is short, and a file
/// that is not a key file (`/dev/zero`) must not be read without end.
pub const MAX_KEY_LEN: usize = 64 * 1024;

/// A shared HMAC key: not blank, without surrounding whitespace (which a
/// service's `hmac_keys` drops too). Its `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(String);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Where a key was taken from, to say so in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// `--key`.
    Argument,
    /// The file given with `--key-file` (`-`: stdin).
    File(PathBuf),
    /// The environment variable [`KEY_ENV`].
    Environment,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Argument => f.write_str("--key"),
            KeySource::File(path) if path.as_os_str() == "-" => f.write_str("--key-file - (stdin)"),
            KeySource::File(path) => {
                write!(f, "the key file {}", text(&path.display().to_string()))
            }
            KeySource::Environment => f.write_str(KEY_ENV),
        }
    }
}

/// Why no key could be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// No source was given.
    Missing,
    /// More than one source was given.
    Several(Vec<KeySource>),
    /// The key is empty or whitespace only: no service accepts it.
    Blank(KeySource),
    /// The key is not UTF-8 text.
    NotText(KeySource),
    /// The key file's first line is longer than [`MAX_KEY_LEN`].
    TooLong(KeySource),
    /// The key file cannot be read.
    Read {
        /// The file.
        source: KeySource,
        /// Why.
        error: io::Error,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Missing => write!(
                f,
                "no key: give --key-file FILE (its first line), or set {KEY_ENV}; \
                 --key KEY works too but shows the key to every local user"
            ),
            KeyError::Several(sources) => {
                let names: Vec<String> = sources.iter().map(ToString::to_string).collect();
                write!(f, "the key is given by {}: give one", names.join(" and "))?;
                if sources.contains(&KeySource::Environment) {
                    write!(
                        f,
                        " (`env -u {KEY_ENV} osprof ...` leaves the variable out)"
                    )?;
                }
                Ok(())
            }
            KeyError::Blank(source) => write!(
                f,
                "the key from {source} is blank (a blank key signs nothing a service accepts)"
            ),
            KeyError::NotText(source) => write!(f, "the key from {source} is not UTF-8 text"),
            KeyError::TooLong(source) => write!(
                f,
                "the first line of {source} is over {MAX_KEY_LEN} bytes: not a key"
            ),
            KeyError::Read { source, error } => write!(f, "cannot read {source}: {error}"),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Read { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl Key {
    /// A key given as text (from `--key`), without its surrounding
    /// whitespace.
    ///
    /// # Errors
    ///
    /// [`KeyError::Blank`] when nothing but whitespace is left.
    pub fn new(text: impl Into<String>) -> Result<Key, KeyError> {
        Key::checked(text.into(), KeySource::Argument)
    }

    fn checked(text: String, source: KeySource) -> Result<Key, KeyError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(KeyError::Blank(source));
        }
        Ok(Key(if trimmed.len() == text.len() {
            text
        } else {
            trimmed.to_owned()
        }))
    }

    /// The key in the first line of a file (`-`: stdin), without the
    /// line's end and surrounding whitespace; the rest of the file is not
    /// read.
    ///
    /// # Errors
    ///
    /// [`KeyError::Read`] when the file cannot be opened or read,
    /// [`KeyError::TooLong`] when its first line is longer than
    /// [`MAX_KEY_LEN`], [`KeyError::NotText`] when it is not UTF-8,
    /// [`KeyError::Blank`] when it is empty or blank.
    pub fn from_file(path: &Path) -> Result<Key, KeyError> {
        let source = KeySource::File(path.to_path_buf());
        let read = |error| KeyError::Read {
            source: source.clone(),
            error,
        };
        let reader: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path).map_err(read)?)
        };
        let mut line = Vec::new();
        BufReader::new(reader.take(MAX_KEY_LEN as u64 + 1))
            .read_until(b'\n', &mut line)
            .map_err(read)?;
        if line.len() > MAX_KEY_LEN && line.last() != Some(&b'\n') {
            return Err(KeyError::TooLong(source));
        }
        let text = String::from_utf8(line).map_err(|_| KeyError::NotText(source.clone()))?;
        Key::checked(text, source)
    }

    /// The key from exactly one of its three sources: the text of `--key`,
    /// the file of `--key-file`, the value of [`KEY_ENV`] (`env`, as
    /// `std::env::var_os` gives it; set but empty counts as given, and
    /// blank).
    ///
    /// ```
    /// use osprof::headers::{Key, KeyError};
    ///
    /// assert!(Key::from_sources(None, None, Some("k".into())).is_ok());
    /// assert!(matches!(
    ///     Key::from_sources(Some("k".into()), None, Some("k".into())),
    ///     Err(KeyError::Several(_))
    /// ));
    /// assert!(matches!(Key::from_sources(None, None, None), Err(KeyError::Missing)));
    /// assert!(matches!(Key::from_sources(Some(" ".into()), None, None), Err(KeyError::Blank(_))));
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyError::Missing`] when none is given, [`KeyError::Several`]
    /// when more than one is, and the errors of [`Key::new`] and
    /// [`Key::from_file`].
    pub fn from_sources(
        argument: Option<String>,
        file: Option<&Path>,
        env: Option<OsString>,
    ) -> Result<Key, KeyError> {
        let mut given = Vec::new();
        if argument.is_some() {
            given.push(KeySource::Argument);
        }
        if let Some(path) = file {
            given.push(KeySource::File(path.to_path_buf()));
        }
        if env.is_some() {
            given.push(KeySource::Environment);
        }
        if given.len() > 1 {
            return Err(KeyError::Several(given));
        }
        match (argument, file, env) {
            (Some(text), _, _) => Key::new(text),
            (_, Some(path), _) => Key::from_file(path),
            (_, _, Some(value)) => match value.into_string() {
                Ok(text) => Key::checked(text, KeySource::Environment),
                Err(_) => Err(KeyError::NotText(KeySource::Environment)),
            },
            (None, None, None) => Err(KeyError::Missing),
        }
    }

    /// The key's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request signed for profiling: its ids and its two headers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Signed {
    /// The request's id: `osprof show BASE_ID LOG...` once it is done.
    pub base_id: Id,
    /// The parent point, if one was given.
    pub parent_id: Option<Id>,
    /// `X-Trace-Info` and `X-Trace-HMAC`.
    pub headers: TraceHeaders,
}

/// Signs a trace info for `base_id` (a fresh one when `None`) and
/// `parent_id` (none: the service's first point is a root) with `key`.
#[must_use]
pub fn sign(
    key: &Key,
    base_id: Option<Id>,
    parent_id: Option<Id>,
    algorithm: HmacAlgorithm,
) -> Signed {
    let base_id = base_id.unwrap_or_else(Id::new_v4);
    let info = TraceInfo::new(base_id, parent_id);
    Signed {
        base_id,
        parent_id,
        headers: Signer::new(key.as_str(), algorithm).sign(&info),
    }
}

/// `-H 'X-Trace-Info: …' -H 'X-Trace-HMAC: …'`: both values are base64 and
/// hex, so single quotes need no escaping.
#[must_use]
pub fn curl_args(headers: &TraceHeaders) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("-H '{name}: {value}'"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How [`write_headers`] writes a signed request (`--format` of `osprof
/// headers` with the `cli` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum HeadersFormat {
    /// curl arguments: -H 'X-Trace-Info: …' -H 'X-Trace-HMAC: …' (the base_id goes to stderr).
    #[default]
    Curl,
    /// Shell assignments for eval: OSPROF_BASE_ID, OSPROF_TRACE_INFO, OSPROF_TRACE_HMAC.
    Shell,
    /// One JSON object: base_id, parent_id and the two headers.
    Json,
}

/// Writes `signed` in `format`, one line (three for the shell):
///
/// ```text
/// curl   -H 'X-Trace-Info: eyJ…' -H 'X-Trace-HMAC: 3b1f…'
/// shell  OSPROF_BASE_ID=6f9e3c1a-…
///        OSPROF_TRACE_INFO='eyJ…'
///        OSPROF_TRACE_HMAC='3b1f…'
/// json   {"base_id":"6f9e3c1a-…","parent_id":null,"headers":{"X-Trace-Info":"eyJ…","X-Trace-HMAC":"3b1f…"}}
/// ```
///
/// Every value is a UUID, base64 or hex: nothing a shell or JSON would
/// need to escape.
///
/// # Errors
///
/// Any error of `out`.
pub fn write_headers(
    signed: &Signed,
    format: HeadersFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    let headers = &signed.headers;
    match format {
        HeadersFormat::Curl => writeln!(out, "{}", curl_args(headers)),
        HeadersFormat::Shell => writeln!(
            out,
            "OSPROF_BASE_ID={}\nOSPROF_TRACE_INFO='{}'\nOSPROF_TRACE_HMAC='{}'",
            signed.base_id,
            headers.trace_info(),
            headers.trace_hmac()
        ),
        HeadersFormat::Json => {
            #[derive(Serialize)]
            struct Json<'a> {
                base_id: String,
                parent_id: Option<String>,
                headers: Headers<'a>,
            }
            #[derive(Serialize)]
            struct Headers<'a> {
                #[serde(rename = "X-Trace-Info")]
                info: &'a str,
                #[serde(rename = "X-Trace-HMAC")]
                hmac: &'a str,
            }
            json_compact(
                out,
                &Json {
                    base_id: signed.base_id.to_string(),
                    parent_id: signed.parent_id.map(|p| p.to_string()),
                    headers: Headers {
                        info: headers.trace_info(),
                        hmac: headers.trace_hmac(),
                    },
                },
            )?;
            out.write_all(b"\n")
        }
    }
}

/// What the tool says on stderr after writing the headers: the `base_id`,
/// for the formats that do not hold it (curl arguments), so that the
/// request can be found once it is done.
#[must_use]
pub fn note(signed: &Signed, format: HeadersFormat) -> Option<String> {
    (format == HeadersFormat::Curl).then(|| {
        format!(
            "base_id {0} (once the request is done: osprof show {0} LOG...)",
            signed.base_id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        f
    }

    #[test]
    fn key_files_give_their_first_line_trimmed() {
        for (content, key) in [
            (&b"SECRET\n"[..], "SECRET"),
            (b"  SECRET \r\nsecond line\n", "SECRET"),
            (b"SECRET", "SECRET"),
            (b"s e c\tret\n", "s e c\tret"),
        ] {
            let f = file(content);
            assert_eq!(Key::from_file(f.path()).unwrap().as_str(), key);
        }
    }

    #[test]
    fn blank_unreadable_and_odd_key_files_are_refused() {
        for content in [&b""[..], b"\n", b"   \r\n", b"\nSECRET\n"] {
            let f = file(content);
            let err = Key::from_file(f.path()).unwrap_err();
            assert!(matches!(err, KeyError::Blank(_)), "{content:?}: {err}");
            assert!(err.to_string().contains("is blank"), "{err}");
        }
        let f = file(b"\xff\xfe\n");
        assert!(matches!(
            Key::from_file(f.path()),
            Err(KeyError::NotText(_))
        ));
        let long = vec![b'k'; MAX_KEY_LEN + 1];
        let f = file(&long);
        assert!(matches!(
            Key::from_file(f.path()),
            Err(KeyError::TooLong(_))
        ));
        let mut just = vec![b'k'; MAX_KEY_LEN];
        just.push(b'\n');
        let f = file(&just);
        assert_eq!(
            Key::from_file(f.path()).unwrap().as_str().len(),
            MAX_KEY_LEN
        );
        let err = Key::from_file(Path::new("/nonexistent/key")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read the key file /nonexistent/key: "),
            "{err}"
        );
    }

    #[test]
    fn exactly_one_source() {
        let f = file(b"FROM_FILE\n");
        let env = || Some(OsString::from("FROM_ENV"));
        let arg = || Some("FROM_ARG".to_owned());
        let key = |a, p, e| Key::from_sources(a, p, e).map(|k| k.as_str().to_owned());
        assert_eq!(key(arg(), None, None).unwrap(), "FROM_ARG");
        assert_eq!(key(None, Some(f.path()), None).unwrap(), "FROM_FILE");
        assert_eq!(key(None, None, env()).unwrap(), "FROM_ENV");
        for (a, p, e) in [
            (arg(), Some(f.path()), None),
            (arg(), None, env()),
            (None, Some(f.path()), env()),
            (arg(), Some(f.path()), env()),
        ] {
            let err = Key::from_sources(a, p, e).unwrap_err();
            assert!(matches!(err, KeyError::Several(_)), "{err}");
        }
        let err = Key::from_sources(arg(), None, env()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the key is given by --key and OSPROFILER_HMAC_KEY: give one \
             (`env -u OSPROFILER_HMAC_KEY osprof ...` leaves the variable out)"
        );
        let err = Key::from_sources(None, None, None).unwrap_err();
        assert!(err.to_string().starts_with("no key: give --key-file FILE"));
        let blank = Key::from_sources(None, None, Some(OsString::new())).unwrap_err();
        assert_eq!(
            blank.to_string(),
            "the key from OSPROFILER_HMAC_KEY is blank (a blank key signs nothing a service accepts)"
        );
        assert!(matches!(
            Key::new(" \t"),
            Err(KeyError::Blank(KeySource::Argument))
        ));
        assert_eq!(Key::new(" k ").unwrap().as_str(), "k");
        assert_eq!(format!("{:?}", Key::new("SECRET").unwrap()), "Key(..)");
    }

    #[test]
    fn every_format_holds_what_a_script_needs() {
        let base = Id::parse("6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b").unwrap();
        let key = Key::new("SECRET_KEY").unwrap();
        let signed = sign(&key, Some(base), None, HmacAlgorithm::Sha1);
        let (info, hmac) = (signed.headers.trace_info(), signed.headers.trace_hmac());
        let written = |format| {
            let mut out = Vec::new();
            write_headers(&signed, format, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            written(HeadersFormat::Curl),
            format!("-H 'X-Trace-Info: {info}' -H 'X-Trace-HMAC: {hmac}'\n")
        );
        assert_eq!(
            written(HeadersFormat::Shell),
            format!(
                "OSPROF_BASE_ID={base}\nOSPROF_TRACE_INFO='{info}'\nOSPROF_TRACE_HMAC='{hmac}'\n"
            )
        );
        let json: serde_json::Value = serde_json::from_str(&written(HeadersFormat::Json)).unwrap();
        assert_eq!(json["base_id"], base.to_string());
        assert_eq!(json["parent_id"], serde_json::Value::Null);
        assert_eq!(json["headers"]["X-Trace-Info"], info);
        assert_eq!(json["headers"]["X-Trace-HMAC"], hmac);
        assert!(note(&signed, HeadersFormat::Curl)
            .unwrap()
            .contains(&base.to_string()));
        assert_eq!(note(&signed, HeadersFormat::Json), None);
        let fresh = sign(&key, None, Some(base), HmacAlgorithm::Sha256);
        assert_ne!(fresh.base_id, base);
        assert_eq!(fresh.parent_id, Some(base));
    }
}
