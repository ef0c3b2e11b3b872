//! The OTLP sink (feature `otlp`): every trace point as an OpenTelemetry
//! span, sent over OTLP/HTTP to a collector, Jaeger or Tempo, with the ids
//! and names osprofiler's own `otlp` driver gives its points, so that one
//! request through Python and Rust services is one trace.
//!
//! | file | owns |
//! |---|---|
//! | this file | [`Otlp`]: the endpoint and the settings, connection strings, [`Builder::with_otlp`] |
//! | `mapping.rs` | a point as an OTLP span: ids, name, kind, attributes, outcome, times; the resource |
//! | `exporter.rs` | the sink and its thread: the bounded queue, batches, protobuf and gzip, HTTP, retries and what they may duplicate, counting |
//!
//! docs/fleet.md tells how to point services at a collector, the mapping
//! table, and how to read the counters.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::builder::{redact_password, SinkConfig};
use super::{Builder, Error, Identity, Sink, SinkCounters, SinkKind};

mod exporter;
mod mapping;

/// The settings of the OTLP sink: where the spans go and how they travel.
///
/// | setting | default | setter |
/// |---|---|---|
/// | endpoint | given to [`new`](Self::new): `otlp://`, `http://` or `https://host:port[/path]`, sent to `…/v1/traces` | |
/// | spans in one request | 512 | [`with_batch_size`](Self::with_batch_size) |
/// | longest a span waits for its batch to fill | 1 s | [`with_batch_timeout`](Self::with_batch_timeout) |
/// | spans queued for the export thread (past it: dropped and counted) | 8192 | [`with_queue_limit`](Self::with_queue_limit) |
/// | bytes of spans queued for the export thread, fields included (past it: dropped and counted) | 32 MiB | [`with_queue_bytes_limit`](Self::with_queue_bytes_limit) |
/// | gzip request bodies | off (as osprofiler's exporter) | [`with_gzip`](Self::with_gzip) |
/// | connect timeout | 2 s | [`with_connect_timeout`](Self::with_connect_timeout) |
/// | timeout of one request | 10 s | [`with_request_timeout`](Self::with_request_timeout) |
/// | retries of a request after a connection error, a broken connection, 429, 502, 503, 504 | 3 | [`with_max_retries`](Self::with_max_retries) |
/// | wait before the first retry (doubled each time, less a random part of up to half; a `Retry-After` replaces it) | 250 ms | [`with_backoff`](Self::with_backoff) |
/// | longest wait between tries (`Retry-After` included) | 30 s | [`with_max_backoff`](Self::with_max_backoff) |
/// | no retry starts later than this after a batch's first try | 30 s | [`with_retry_time_limit`](Self::with_retry_time_limit) |
/// | a request that timed out after it was sent is tried again (else: counted unconfirmed) | off | [`with_retry_timeouts`](Self::with_retry_timeouts) |
/// | `service.name` prefix (osprofiler's `[profiler_otlp] service_name_prefix`) | none: `{project}-{service}` | [`with_service_name_prefix`](Self::with_service_name_prefix) |
/// | extra request headers (an `Authorization` for a hosted backend) | none | [`with_header`](Self::with_header) |
/// | certificates trusted for `https` besides the Mozilla roots (a fleet's own CA) | none | [`with_ca_file`](Self::with_ca_file) |
///
/// Every wait is at most a day. The project, service and host come from
/// the [`Builder`]
/// ([`with_project`](Builder::with_project), …).
///
/// ```
/// use std::time::Duration;
/// use tracing_osprofiler::writer::{Otlp, ProfileWriter, RollingFile};
///
/// let dir = tempfile::tempdir()?;
/// let otlp = Otlp::new("otlp://127.0.0.1:4318")?
///     .with_batch_size(256)
///     .with_gzip(true)
///     .with_service_name_prefix("prod");
/// assert_eq!(otlp.url(), "http://127.0.0.1:4318/v1/traces");
/// let (writer, guard) = ProfileWriter::builder()
///     .with_file(RollingFile::new(dir.path()))
///     .with_otlp(otlp)
///     .with_project("nova")
///     .with_service("api")
///     .build()?;
/// # drop(writer);
/// # let _ = guard.flush(Duration::from_millis(10));
/// # drop(guard);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "an Otlp does nothing until it is given to a writer builder"]
pub struct Otlp {
    url: String,
    batch_size: usize,
    batch_timeout: Duration,
    queue_limit: usize,
    queue_bytes_limit: u64,
    gzip: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    retry_time_limit: Duration,
    retry_timeouts: bool,
    service_name_prefix: Option<String>,
    ca_file: Option<PathBuf>,
    headers: Vec<(String, String)>,
}

impl fmt::Debug for Otlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are credentials more often than not.
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, _)| format!("{name}: ***"))
            .collect();
        f.debug_struct("Otlp")
            .field("url", &self.url)
            .field("batch_size", &self.batch_size)
            .field("batch_timeout", &self.batch_timeout)
            .field("queue_limit", &self.queue_limit)
            .field("queue_bytes_limit", &self.queue_bytes_limit)
            .field("gzip", &self.gzip)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("retry_time_limit", &self.retry_time_limit)
            .field("retry_timeouts", &self.retry_timeouts)
            .field("service_name_prefix", &self.service_name_prefix)
            .field("ca_file", &self.ca_file)
            .field("headers", &headers)
            .finish()
    }
}

impl Otlp {
    /// Spans for the collector at `endpoint`, with the defaults of the table
    /// above:
    ///
    /// * `otlp://host:port[/path]` sends to `http://host:port[/path]/v1/traces`,
    ///   as osprofiler's `otlp` driver does with its connection string;
    /// * `http://…` and `https://…` likewise (https with rustls and the
    ///   Mozilla root certificates; the certificate is always verified);
    /// * an endpoint whose path already ends in `/v1/traces` is taken as it
    ///   is.
    ///
    /// # Errors
    ///
    /// When the endpoint has another scheme, no host, a port that is not a
    /// number, a query, a fragment, or credentials (give those as a header:
    /// [`with_header`](Self::with_header)). The message never repeats a
    /// password.
    pub fn new(endpoint: &str) -> Result<Self, Error> {
        Ok(Otlp {
            url: traces_url(endpoint)?,
            batch_size: 512,
            batch_timeout: Duration::from_secs(1),
            queue_limit: 8192,
            queue_bytes_limit: 32 * 1024 * 1024,
            gzip: false,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            retry_time_limit: Duration::from_secs(30),
            retry_timeouts: false,
            service_name_prefix: None,
            ca_file: None,
            headers: Vec::new(),
        })
    }

    /// The URL the spans are posted to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// At most this many spans in one request (at least 1).
    pub fn with_batch_size(mut self, spans: usize) -> Self {
        self.batch_size = spans.max(1);
        self
    }

    /// A batch that is not full is sent once its oldest span waited this
    /// long.
    pub fn with_batch_timeout(mut self, timeout: Duration) -> Self {
        self.batch_timeout = timeout;
        self
    }

    /// At most this many spans wait for the export thread (at least 1);
    /// more are dropped and counted ([`SinkStats::dropped`](super::SinkStats::dropped)).
    pub fn with_queue_limit(mut self, spans: usize) -> Self {
        self.queue_limit = spans.max(1);
        self
    }

    /// At most this many bytes of spans wait for the export thread (at
    /// least 1), each counted with its fields, so that a collector that is
    /// down or slow cannot make big fields hold the queue limit times their
    /// size. More are dropped and counted
    /// ([`SinkStats::dropped_over_bytes`](super::SinkStats::dropped_over_bytes)).
    pub fn with_queue_bytes_limit(mut self, bytes: u64) -> Self {
        self.queue_bytes_limit = bytes.max(1);
        self
    }

    /// Compresses request bodies with gzip (`Content-Encoding: gzip`).
    pub fn with_gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// The longest wait for a connection to the collector.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest one request may take, connecting included.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many times a batch is tried again after a connection error, a
    /// connection that broke before the answer, or a 429, 502, 503 or 504
    /// answer (0: tried once). A timeout is retried only with
    /// [`with_retry_timeouts`](Self::with_retry_timeouts).
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The wait before the first retry; each retry waits twice as long as
    /// the one before, up to [`with_max_backoff`](Self::with_max_backoff).
    /// A collector's `Retry-After` replaces it.
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The longest wait between two tries, a `Retry-After` included.
    pub fn with_max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// No retry of a batch starts later than this after its first try,
    /// whatever [`with_max_retries`](Self::with_max_retries) allows: what a
    /// collector could not take in that time is counted, and the thread
    /// goes on with newer spans.
    pub fn with_retry_time_limit(mut self, limit: Duration) -> Self {
        self.retry_time_limit = limit;
        self
    }

    /// Whether a request that timed out after it was sent is tried again
    /// (default: no). A collector that is slow has usually read the spans
    /// and is still storing them: sending them again adds to its load and
    /// stores them twice. Not retried, they are counted as
    /// [`SinkStats::unconfirmed`](super::SinkStats::unconfirmed); retried,
    /// a batch that times out on every try is too. Turn it on for a
    /// collector that drops requests it cannot answer in time.
    pub fn with_retry_timeouts(mut self, retry: bool) -> Self {
        self.retry_timeouts = retry;
        self
    }

    /// `service.name` becomes `{prefix}-{project}-{service}`, as with
    /// osprofiler's `[profiler_otlp] service_name_prefix`.
    pub fn with_service_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.service_name_prefix = Some(prefix.into());
        self
    }

    /// Trusts the CA certificates in this PEM file for an `https` endpoint,
    /// besides the Mozilla roots: for a collector whose certificate a
    /// fleet's own CA signed. The file is read when the writer is built;
    /// a file that cannot be read, or holds no certificate, fails the
    /// build. The collector's certificate is always verified, against
    /// these roots.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Sends this header with every request (replacing one of the same
    /// name given before). Its value never appears in `Debug` output.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }
}

impl Builder {
    /// Sends every trace point as an OTLP span to a collector (feature
    /// `otlp`); see [`Otlp`].
    #[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
    pub fn with_otlp(self, otlp: Otlp) -> Self {
        self.with_sink(Box::new(otlp))
    }
}

impl SinkConfig for Otlp {
    fn wants_starts(&self) -> bool {
        false
    }

    fn start(
        self: Box<Self>,
        identity: &Identity,
    ) -> Result<(Box<dyn Sink>, Arc<SinkCounters>), Error> {
        for (name, value) in &self.headers {
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let valid_value = value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
            if !valid_name || !valid_value {
                return Err(Error::new(
                    format!("cannot send spans to {}", self.url),
                    format!(
                        "the header {name:?} is not a valid HTTP header (its value is not shown)"
                    ),
                ));
            }
        }
        let tls = match &self.ca_file {
            Some(path) => Some(exporter::tls_trusting(path).map_err(|why| {
                Error::new(
                    format!(
                        "cannot trust the CA file {} for {}",
                        path.display(),
                        self.url
                    ),
                    why,
                )
            })?),
            None => None,
        };
        let counters = Arc::new(SinkCounters::new(SinkKind::Otlp, self.url.clone()));
        // Longer waits mean nothing to an exporter, and would overflow the
        // clock arithmetic of the export thread and of the HTTP client.
        let sane = |d: Duration| d.min(LONGEST_WAIT);
        let resource = mapping::resource(identity, self.service_name_prefix.as_deref());
        let settings = exporter::Settings {
            url: self.url,
            batch_size: self.batch_size,
            batch_timeout: sane(self.batch_timeout),
            queue_limit: self.queue_limit,
            queue_bytes_limit: self.queue_bytes_limit,
            gzip: self.gzip,
            connect_timeout: sane(self.connect_timeout),
            request_timeout: sane(self.request_timeout),
            max_retries: self.max_retries,
            backoff: sane(self.backoff),
            max_backoff: sane(self.max_backoff),
            retry_time_limit: sane(self.retry_time_limit),
            retry_timeouts: self.retry_timeouts,
            headers: self.headers,
            tls,
        };
        let sink = exporter::OtlpSink::start(settings, resource, Arc::clone(&counters))?;
        Ok((Box::new(sink), counters))
    }
}

/// The longest any of the sink's waits may be: a day.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The URL to post spans to, from an endpoint or connection string.
fn traces_url(endpoint: &str) -> Result<String, Error> {
    let invalid = |why: String| {
        Error::new(
            format!("invalid OTLP endpoint {:?}", redact_password(endpoint)),
            why,
        )
    };
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| invalid("no scheme: use otlp://, http:// or https://".to_owned()))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        // osprofiler's driver replaces the scheme with http.
        "otlp" | "http" => "http",
        "https" => "https",
        other => {
            return Err(invalid(format!(
                "the scheme {other:?} is none of otlp, http, https"
            )))
        }
    };
    if rest.contains(['?', '#']) {
        return Err(invalid("a query or fragment has no place here".to_owned()));
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "it contains spaces or control characters".to_owned(),
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(invalid(
            "credentials in the URL are not sent; give them as a header (Otlp::with_header)"
                .to_owned(),
        ));
    }
    let port = match authority.strip_prefix('[') {
        // [v6]:port
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| invalid("an IPv6 address without its `]`".to_owned()))?;
            if host.is_empty() {
                return Err(invalid("no host".to_owned()));
            }
            match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(|| {
                    invalid("something other than a port after the IPv6 address".to_owned())
                })?),
            }
        }
        None => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(invalid("no host".to_owned()));
            }
            port
        }
    };
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Err(invalid(format!(
                "the port {port:?} is not a number up to 65535"
            )));
        }
    }
    let path = path.trim_end_matches('/');
    let url = if path.ends_with("/v1/traces") {
        format!("{scheme}://{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}/v1/traces")
    };
    // ureq's own parser has the last word, so that a URL it would refuse
    // at the first export is refused now.
    ureq::Agent::new()
        .post(&url)
        .request_url()
        .map_err(|e| invalid(e.to_string()))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn endpoints_as_osprofiler_reads_them() {
        let url = |s| traces_url(s).unwrap();
        assert_eq!(
            url("otlp://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            url("OTLP://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            url("otlp://collector:4318/otel"),
            "http://collector:4318/otel/v1/traces"
        );
        assert_eq!(url("http://collector"), "http://collector/v1/traces");
        assert_eq!(
            url("https://tempo.example.com:443/v1/traces"),
            "https://tempo.example.com:443/v1/traces"
        );
        assert_eq!(url("http://[::1]:4318"), "http://[::1]:4318/v1/traces");
    }

    #[test]
    fn bad_endpoints_are_clear_errors_without_passwords() {
        let err = |s| traces_url(s).unwrap_err().to_string();
        assert!(err("collector:4318").contains("no scheme"));
        assert!(err("grpc://collector:4317").contains("none of otlp"));
        assert!(err("otlp://:4318").contains("no host"));
        assert!(err("otlp://collector:http").contains("not a number"));
        assert!(err("otlp://collector:99999").contains("not a number"));
        assert!(err("otlp://collector:4318/?token=1").contains("query"));
        assert!(err("otlp://c ollector").contains("spaces"));
        assert!(err("otlp://[::1:4318").contains("IPv6"));
        let with_password = err("https://user:hunter2@collector:4318");
        assert!(with_password.contains("credentials"), "{with_password}");
        assert!(!with_password.contains("hunter2"), "{with_password}");
    }

    #[test]
    fn debug_hides_header_values() {
        let otlp = Otlp::new("otlp://collector:4318")
            .unwrap()
            .with_header("Authorization", "Bearer hunter2")
            .with_header("authorization", "Bearer hunter3");
        let text = format!("{otlp:?}");
        assert!(!text.contains("hunter"), "{text}");
        assert!(text.contains("authorization: ***"), "{text}");
        assert_eq!(otlp.headers.len(), 1);
    }

    #[test]
    fn endless_waits_are_a_day() {
        // Duration::MAX would overflow `Instant` arithmetic on the export
        // thread: the sink must start, take spans and stop.
        let otlp = Otlp::new(&format!("otlp://127.0.0.1:{}", dead_port()))
            .unwrap()
            .with_batch_timeout(Duration::MAX)
            .with_backoff(Duration::MAX)
            .with_max_backoff(Duration::MAX)
            .with_connect_timeout(Duration::MAX)
            .with_request_timeout(Duration::MAX)
            .with_max_retries(0);
        let (writer, guard) = Builder::new().with_otlp(otlp).build().unwrap();
        let profile = crate::Profile::new(crate::Signer::new("k", crate::HmacAlgorithm::Sha1));
        let subscriber =
            tracing_subscriber::registry().with(crate::OsProfilerLayer::new(writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            drop(profile.start(|| tracing::info_span!("job")));
        });
        guard.flush(Duration::from_secs(20)).unwrap();
        let stats = writer.stats().sink(SinkKind::Otlp).unwrap();
        assert_eq!((stats.written, stats.dropped, stats.failed), (0, 0, 1));
    }

    fn dead_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn invalid_headers_fail_the_build_without_their_value() {
        let otlp = Otlp::new("otlp://127.0.0.1:9")
            .unwrap()
            .with_header("X-Token", "secret\nInjected: yes");
        let err = Builder::new()
            .with_otlp(otlp)
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("X-Token"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
