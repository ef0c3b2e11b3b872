//! [`Builder`]: which sinks a writer feeds, the bounds of its queue, and
//! who the service is; osprofiler's connection strings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::queue::Queue;
use super::worker::Worker;
use super::{Error, Identity, ProfileWriter, RollingFile, Sink, SinkCounters};
use super::{WriterGuard, WriterStats};

/// What a sink is made from: its settings, until the writer starts it.
pub(crate) trait SinkConfig: fmt::Debug + Send {
    /// Opens the destination (or checks its address) and starts the sink's
    /// threads.
    fn start(
        self: Box<Self>,
        identity: &Identity,
    ) -> Result<(Box<dyn Sink>, Arc<SinkCounters>), Error>;

    /// Whether the sink does anything with a point's start (the file and
    /// Redis write it; OTLP makes a span from the stop alone). When no sink
    /// does, the profiled threads do not queue starts at all.
    fn wants_starts(&self) -> bool {
        true
    }
}

/// Builds a [`ProfileWriter`] that feeds one or more sinks from one queue
/// and one background thread.
///
/// | setting | default | setter |
/// |---|---|---|
/// | sinks | none: add at least one | [`with_file`](Self::with_file), `with_otlp` (feature `otlp`), `with_redis` (feature `redis`), [`with_connection_string`](Self::with_connection_string) |
/// | events queued for the writer thread | 128 000 | [`with_queue_limit`](Self::with_queue_limit) |
/// | bytes queued for the writer thread (events with their fields) | 64 MiB | [`with_queue_bytes_limit`](Self::with_queue_bytes_limit) |
/// | when the queue is full | wait for room (lossless) | [`with_lossy`](Self::with_lossy) |
/// | longest wait for room before the writer counts as stalled | 500 ms | [`with_max_wait`](Self::with_max_wait) |
/// | how long dropping the guard waits for the queue to be written | 5 s | [`with_flush_timeout`](Self::with_flush_timeout) |
/// | project (osprofiler's `project`; OTLP `service.name` is `{project}-{service}`) | `osprofiler` | [`with_project`](Self::with_project) |
/// | service | the executable's name | [`with_service`](Self::with_service) |
/// | host name (osprofiler's `info.host`; OTLP `host.name`) | the system's | [`with_host`](Self::with_host) |
///
/// ```
/// use tracing_osprofiler::writer::{ProfileWriter, RollingFile};
///
/// let dir = tempfile::tempdir()?;
/// let (writer, guard) = ProfileWriter::builder()
///     .with_file(RollingFile::new(dir.path()))
///     .with_project("nova")
///     .with_service("api")
///     .build()?;
/// # drop((writer, guard));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    sinks: Vec<Box<dyn SinkConfig>>,
    project: Option<String>,
    service: Option<String>,
    host: Option<String>,
    queue_limit: usize,
    queue_bytes_limit: u64,
    lossy: bool,
    max_wait: Duration,
    flush_timeout: Duration,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("sinks", &self.sinks)
            .field("project", &self.project)
            .field("service", &self.service)
            .field("host", &self.host)
            .field("queue_limit", &self.queue_limit)
            .field("queue_bytes_limit", &self.queue_bytes_limit)
            .field("lossy", &self.lossy)
            .field("max_wait", &self.max_wait)
            .field("flush_timeout", &self.flush_timeout)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// No sink yet, and the defaults of the table above.
    pub fn new() -> Self {
        Builder {
            sinks: Vec::new(),
            project: None,
            service: None,
            host: None,
            queue_limit: 128_000,
            queue_bytes_limit: 64 * 1024 * 1024,
            lossy: false,
            max_wait: Duration::from_millis(500),
            flush_timeout: Duration::from_secs(5),
        }
    }

    pub(crate) fn with_sink(mut self, sink: Box<dyn SinkConfig>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Writes Mistral log lines to a rolling file.
    pub fn with_file(self, file: RollingFile) -> Self {
        self.with_sink(Box::new(file))
    }

    /// Adds the sink an osprofiler connection string names:
    ///
    /// | connection string | sink | feature |
    /// |---|---|---|
    /// | `otlp://host:port[/path]` | OTLP/HTTP to `http://host:port[/path]/v1/traces`, as osprofiler's `otlp` driver | `otlp` |
    /// | `http(s)://host:port[/path]` | OTLP/HTTP to that URL + `/v1/traces` (a collector behind TLS) | `otlp` |
    /// | `redis://[:password@]host[:port][/db]` | osprofiler's Redis store, with the defaults of `Redis` | `redis` |
    ///
    /// `rediss://` (Redis over TLS) is refused with a clear error: the
    /// Redis client this crate builds with has no TLS.
    ///
    /// # Errors
    ///
    /// When the string is not one of these, is malformed, or needs a
    /// feature this build lacks. The message never repeats a password.
    pub fn with_connection_string(self, connection_string: &str) -> Result<Self, Error> {
        let scheme = connection_string
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
            .ok_or_else(|| {
                Error::new(
                    "not a connection string",
                    format!(
                        "{:?} has no scheme (otlp://, http(s)://, redis://)",
                        redact_password(connection_string)
                    ),
                )
            })?;
        match scheme.as_str() {
            #[cfg(feature = "otlp")]
            "otlp" | "http" | "https" => Ok(self.with_otlp(super::Otlp::new(connection_string)?)),
            #[cfg(not(feature = "otlp"))]
            "otlp" | "http" | "https" => Err(missing_feature(connection_string, "otlp")),
            #[cfg(feature = "redis")]
            "redis" | "rediss" => super::redis::from_connection_string(self, connection_string),
            #[cfg(not(feature = "redis"))]
            "redis" | "rediss" => Err(missing_feature(connection_string, "redis")),
            other => Err(Error::new(
                "unknown connection string",
                format!(
                    "{:?}: the scheme {other:?} is none of otlp, http, https, redis, rediss",
                    redact_password(connection_string)
                ),
            )),
        }
    }

    /// How many events may wait for the writer thread (at least 1).
    pub fn with_queue_limit(mut self, limit: usize) -> Self {
        self.queue_limit = limit.max(1);
        self
    }

    /// How many bytes of events may wait for the writer thread (at least
    /// 1), counting what events own beyond their fixed size (their fields'
    /// JSON, an error message, a request's path; the fixed size is bounded
    /// by [`with_queue_limit`](Self::with_queue_limit)). An event that would pass
    /// it is treated as one that finds the queue full, so that big span
    /// fields cannot make the queue hold its event limit times their size;
    /// those dropped for it are counted in
    /// [`WriterStats::events_dropped_over_bytes`](super::WriterStats::events_dropped_over_bytes).
    pub fn with_queue_bytes_limit(mut self, bytes: u64) -> Self {
        self.queue_bytes_limit = bytes.max(1);
        self
    }

    /// Drops events at once instead of waiting when the queue is full
    /// (default: wait). Dropped events are counted in
    /// [`WriterStats::events_dropped`].
    pub fn with_lossy(mut self, lossy: bool) -> Self {
        self.lossy = lossy;
        self
    }

    /// In lossless mode, the longest a thread waits for room in a full
    /// queue before the writer counts as stalled and events are dropped
    /// (and counted) until the queue has room again.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How long dropping the [`WriterGuard`] waits for the queued events to
    /// be written (`Duration::MAX`: as long as it takes).
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// osprofiler's `project` (default: `osprofiler`).
    pub fn with_project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// osprofiler's `service` (default: the executable's name).
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// The host name the sinks report (default: the system's).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Starts every sink and the writer thread.
    ///
    /// # Errors
    ///
    /// When no sink was added, a sink cannot start (a log directory that
    /// cannot be created, a connection string that does not parse), or the
    /// thread cannot be started. A network service that is down is not an
    /// error: its sink retries, and counts what it cannot deliver.
    pub fn build(self) -> Result<(ProfileWriter, WriterGuard), Error> {
        if self.sinks.is_empty() {
            return Err(Error::new(
                "cannot build a profile writer",
                "no sink: add a file, or a connection string",
            ));
        }
        let mut identity = Identity::from_environment();
        if let Some(project) = self.project {
            identity.project = project;
        }
        if let Some(service) = self.service {
            identity.service = service;
        }
        if let Some(host) = self.host {
            identity.host = host;
        }
        let wants_starts = self.sinks.iter().any(|sink| sink.wants_starts());
        let mut sinks = Vec::with_capacity(self.sinks.len());
        let mut counters = Vec::with_capacity(self.sinks.len());
        for config in self.sinks {
            let (sink, sink_counters) = config.start(&identity)?;
            sinks.push(sink);
            counters.push(sink_counters);
        }
        let (queue, events) = Queue::new(
            self.queue_limit,
            self.queue_bytes_limit,
            self.lossy,
            self.max_wait,
        );
        let queue = Arc::new(queue);
        let (control_sender, control) = crossbeam_channel::bounded(1);
        let worker = Worker {
            events,
            control,
            sinks,
            bytes: queue.budget(),
        };
        let thread = std::thread::Builder::new()
            .name("tracing-osprofiler-writer".into())
            .spawn(move || worker.run())
            .map_err(|source| Error::io("cannot start the profile writer thread", source))?;
        let stats = WriterStats {
            queue: Arc::clone(&queue),
            sinks: counters.into(),
        };
        Ok((
            ProfileWriter {
                queue: Arc::clone(&queue),
                stats,
                wants_starts,
            },
            WriterGuard {
                queue,
                control: control_sender,
                thread: Some(thread),
                timeout: self.flush_timeout,
            },
        ))
    }
}

#[allow(dead_code)] // unused in builds with every sink feature
fn missing_feature(connection_string: &str, feature: &str) -> Error {
    Error::new(
        format!(
            "cannot send points to {}",
            redact_password(connection_string)
        ),
        format!("tracing-osprofiler was built without its `{feature}` feature"),
    )
}

/// A connection string as it may be shown in a message or a log, whatever
/// its scheme: the user information (everything before the last `@`, since
/// a password may hold `/`, `?` or `#` unencoded) replaced by `***`, every
/// query value replaced by `***` but those of `db`, `protocol` and
/// `timeout` (`?pass=…` is a password too), and a fragment replaced by
/// `***`. A
/// string without `://` is treated the same way (`user:pw@db` shows as
/// `***@db`).
///
/// ```
/// use tracing_osprofiler::writer::redact_password;
///
/// assert_eq!(redact_password("redis://:hunter2@db:6379/0"), "redis://***@db:6379/0");
/// assert_eq!(redact_password("redis://:Zm9v/YmFy+cXV4@db:6379"), "redis://***@db:6379");
/// assert_eq!(
///     redact_password("redis+unix:///run/redis.sock?db=2&pass=hunter2"),
///     "redis+unix:///run/redis.sock?db=2&pass=***"
/// );
/// assert_eq!(redact_password("mongodb://user:pw@db"), "mongodb://***@db");
/// assert_eq!(redact_password("otlp://collector:4318"), "otlp://collector:4318");
/// ```
#[must_use]
pub fn redact_password(connection_string: &str) -> String {
    let (scheme, rest) = match connection_string.split_once("://") {
        // A "scheme" that is not one (`user:pw@host://…`) is part of what
        // may hold a secret.
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) =>
        {
            (Some(scheme), rest)
        }
        _ => (None, connection_string),
    };
    let mut shown = String::with_capacity(connection_string.len());
    if let Some(scheme) = scheme {
        shown.push_str(scheme);
        shown.push_str("://");
    }
    let rest = match rest.rfind('@') {
        Some(at) => {
            shown.push_str("***@");
            &rest[at + 1..]
        }
        None => rest,
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    shown.push_str(path);
    if let Some(query) = query {
        shown.push('?');
        for (i, parameter) in query.split('&').enumerate() {
            if i > 0 {
                shown.push('&');
            }
            match parameter.split_once('=') {
                Some((name, value))
                    if SHOWN_QUERY_PARAMETERS
                        .iter()
                        .any(|shown| name.eq_ignore_ascii_case(shown))
                        || value.is_empty() =>
                {
                    shown.push_str(name);
                    shown.push('=');
                    shown.push_str(value);
                }
                Some((name, _)) => {
                    shown.push_str(name);
                    shown.push_str("=***");
                }
                // A bare word may be a secret itself.
                None if parameter.is_empty() => {}
                None => shown.push_str("***"),
            }
        }
    }
    if let Some(fragment) = fragment {
        shown.push('#');
        if !fragment.is_empty() {
            shown.push_str("***");
        }
    }
    shown
}

/// The query parameters whose values [`redact_password`] shows: the
/// database number, the protocol version and timeouts, which name no
/// secret. Every other value is hidden.
const SHOWN_QUERY_PARAMETERS: &[&str] = &["db", "protocol", "timeout"];

/// `text` (an error message of some library given `connection_string`)
/// with every secret of `connection_string` replaced by `***`: the user
/// information and its password (as written and percent-decoded) and the
/// hidden query values, as [`redact_password`]
/// hides them. For messages this crate does not write itself.
#[must_use]
pub fn hide_connection_secrets(text: &str, connection_string: &str) -> String {
    let rest = connection_string
        .split_once("://")
        .map_or(connection_string, |(_, rest)| rest);
    let mut secrets: Vec<String> = Vec::new();
    if let Some((userinfo, _)) = rest.rsplit_once('@') {
        secrets.push(userinfo.to_owned());
        // The user name is no secret, and replacing a short one everywhere
        // would garble the message.
        if let Some((_, password)) = userinfo.split_once(':') {
            secrets.push(password.to_owned());
        }
    }
    let query = rest.split_once('?').map(|(_, query)| query);
    let query = query.map(|query| query.split('#').next().unwrap_or(query));
    for parameter in query.into_iter().flat_map(|query| query.split('&')) {
        let secret = match parameter.split_once('=') {
            Some((name, _))
                if SHOWN_QUERY_PARAMETERS
                    .iter()
                    .any(|shown| name.eq_ignore_ascii_case(shown)) =>
            {
                continue
            }
            Some((_, value)) => value,
            None => parameter,
        };
        secrets.push(secret.to_owned());
    }
    let decoded: Vec<String> = secrets.iter().filter_map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    // Longest first, so that a secret holding another is replaced whole.
    secrets.retain(|secret| !secret.is_empty() && secret != "***");
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    let mut text = text.to_owned();
    for secret in &secrets {
        text = text.replace(secret.as_str(), "***");
    }
    text
}

/// `text` with `%XX` escapes decoded, `None` if it has none or they make no
/// UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets_whatever_the_scheme_and_wherever_they_sit() {
        for (given, shown) in [
            ("redis://:Zm9v/YmFy+cXV4@db:6379", "redis://***@db:6379"),
            ("redis://:Zm9v/YmFy+cXV4@db:6379/2", "redis://***@db:6379/2"),
            ("otlp://user:Zm9v/YmFy@host:4318", "otlp://***@host:4318"),
            ("redis://:pa?ss#word@db", "redis://***@db"),
            (
                "redis+unix:///run/redis.sock?pass=hunter2",
                "redis+unix:///run/redis.sock?pass=***",
            ),
            (
                "unix:///run/redis.sock?db=1&user=u&pass=hunter2&token",
                "unix:///run/redis.sock?db=1&user=***&pass=***&***",
            ),
            ("mongodb://user:pw@db", "mongodb://***@db"),
            (
                "postgres://u:p@db/x?sslpassword=s3#frag",
                "postgres://***@db/x?sslpassword=***#***",
            ),
            ("user:hunter2@db:6379", "***@db:6379"),
            ("us:er:pw@host://x", "***@host://x"),
            ("no scheme", "no scheme"),
            ("", ""),
            (
                "redis://db:6379/0?protocol=resp3",
                "redis://db:6379/0?protocol=resp3",
            ),
        ] {
            assert_eq!(redact_password(given), shown, "{given}");
        }
    }

    #[test]
    fn connection_secrets_are_hidden_in_foreign_messages() {
        let text = "cannot open redis://al%69ce:Zm9v/YmFy@db?pass=hunter2: user alice, password Zm9v/YmFy, pass hunter2";
        let hidden =
            hide_connection_secrets(text, "redis://al%69ce:Zm9v/YmFy@db?pass=hunter2&db=2");
        for secret in ["al%69ce:Zm9v", "Zm9v/YmFy", "hunter2"] {
            assert!(!hidden.contains(secret), "{secret} in {hidden}");
        }
        assert!(hidden.contains("@db"), "{hidden}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_password("redis://:hunter2@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(redact_password("redis://user:pw@db"), "redis://***@db");
        assert_eq!(
            redact_password("otlp://collector:4318"),
            "otlp://collector:4318"
        );
    }

    #[test]
    fn unknown_schemes_and_missing_features_are_clear_errors() {
        let err = Builder::new()
            .with_connection_string("ftp://x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"ftp\" is none of"), "{err}");
        let err = Builder::new()
            .with_connection_string("no scheme")
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no scheme"), "{err}");
        assert!(Builder::new().build().is_err());
    }
}
