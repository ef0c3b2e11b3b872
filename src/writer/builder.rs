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
    /// 1): an event counts its own size and what it owns (its fields'
    /// JSON, an error message, a request's path). An event that would pass
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

/// A connection string as it may be shown in a message or a log: the
/// credentials before the `@` replaced by `***`.
///
/// ```
/// use tracing_osprofiler::writer::redact_password;
///
/// assert_eq!(redact_password("redis://:hunter2@db:6379/0"), "redis://***@db:6379/0");
/// assert_eq!(redact_password("otlp://collector:4318"), "otlp://collector:4318");
/// ```
#[must_use]
pub fn redact_password(connection_string: &str) -> String {
    let Some((scheme, rest)) = connection_string.split_once("://") else {
        return connection_string.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => connection_string.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
