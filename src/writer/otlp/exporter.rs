//! The OTLP sink's own thread: batches spans, encodes them as one
//! `ExportTraceServiceRequest` (protobuf, gzip when asked), posts them with
//! a blocking HTTP client and retries what a collector may take later.
//!
//! # Why a blocking client on a thread of its own
//!
//! The writer's thread must never wait on a network, and the service may
//! not run tokio at all (or run it on threads this crate does not know). An
//! async client (reqwest, hyper) called from a plain thread panics with
//! "there is no reactor running, must be called from the context of a
//! Tokio runtime", and a runtime made for it would be a second scheduler in
//! the service. So the sink owns one plain thread and uses ureq, a blocking
//! client with its own sockets and timeouts, and rustls for https.
//!
//! # What happens to every span
//!
//! [`OtlpSink::write`] hands the writer's stops over a channel without
//! waiting (the thread makes each a span when it encodes its batch); past
//! the queue limit, in spans or in bytes (stops with big fields), spans are
//! dropped and counted. Every span taken is, in
//! the end, exactly one of: **written**
//! (the collector answered 2xx; spans it said it rejected in a partial
//! success are failed), **failed** (the collector never got them: no
//! connection, or a retryable status still coming after the last retry;
//! any other error status at once), **unconfirmed** (a request went out
//! and no answer came: it timed out, or the connection broke while waiting
//! for the answer; the collector may hold them) or **dropped** (never
//! tried: a full queue, or shutting down gave up on it). The [`Ledger`]
//! makes that exact even when shutting down gives up on a thread stuck in
//! a slow call: whoever counts a span first (the thread, or the shutdown
//! that abandons it) is the only one.
//!
//! # Retries
//!
//! A batch is tried again only when that cannot make a duplicate, or is
//! worth one: after a connection that failed (nothing was sent), a 429,
//! 502, 503 or 504 (the collector said so), or a connection that broke
//! mid-request (a collector that restarted). A request that **timed out**
//! after it was sent is not tried again unless asked
//! ([`Otlp::with_retry_timeouts`](super::Otlp::with_retry_timeouts)): a
//! slow collector is usually still working on it, and sending it again
//! would add its load and store every span twice. Waits between tries
//! double from the backoff up to its cap, each made shorter by a random
//! part of up to half (so that a fleet's services do not retry in step),
//! and no retry starts past the retry time limit after the first try.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

use super::mapping;
use crate::format::Phase;
use crate::point::PointEvent;
use crate::writer::queue::{event_bytes, ByteBudget};
use crate::writer::{Error, Sink, SinkCounters};

/// What the export thread needs to know, taken from
/// [`Otlp`](super::Otlp).
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) url: String,
    pub(super) batch_size: usize,
    pub(super) batch_timeout: Duration,
    pub(super) queue_limit: usize,
    /// The most bytes of stops waiting for the thread (see `event_bytes`).
    pub(super) queue_bytes_limit: u64,
    pub(super) gzip: bool,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) max_retries: u32,
    pub(super) backoff: Duration,
    pub(super) max_backoff: Duration,
    /// No retry starts later than this after a batch's first try.
    pub(super) retry_time_limit: Duration,
    /// Whether a request that timed out after it was sent is tried again.
    pub(super) retry_timeouts: bool,
    pub(super) headers: Vec<(String, String)>,
    /// A TLS configuration of its own (extra roots), or ureq's.
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
}

/// Whether a TCP connection to `url`'s host and port opens within
/// `timeout` (per address); why not.
fn reachable(url: &str, timeout: Duration) -> Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs as _};
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // A port is after the last `:` outside an IPv6 literal's brackets.
    let has_port = authority
        .rfind(':')
        .is_some_and(|at| !authority[at..].contains(']'));
    let target = if has_port {
        authority.to_owned()
    } else if scheme.eq_ignore_ascii_case("https") {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    let addresses = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?;
    let mut last = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => format!("cannot connect to {target}: {e}"),
        None => format!("{target} resolves to no address"),
    })
}

/// The most of a response body read (a partial success is a few bytes).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// Spans taken and not yet counted, and whether shutting down counted them
/// all already.
#[derive(Debug, Default)]
struct Ledger {
    outstanding: u64,
    abandoned: bool,
}

struct Shared {
    ledger: Mutex<Ledger>,
    counters: Arc<SinkCounters>,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panic elsewhere while holding it leaves plain numbers behind.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts spans that left the thread's hands; nothing if shutting
    /// down counted them already. Whether the thread should go on.
    fn settle(&self, tally: Tally) -> bool {
        let mut ledger = self.ledger();
        if ledger.abandoned {
            return false;
        }
        let n = tally.written + tally.failed + tally.dropped + tally.unconfirmed;
        ledger.outstanding = ledger.outstanding.saturating_sub(n);
        self.counters.written(tally.written);
        self.counters.failed(tally.failed);
        self.counters.dropped(tally.dropped);
        self.counters.unconfirmed(tally.unconfirmed);
        true
    }
}

/// What became of some spans.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    written: u64,
    failed: u64,
    dropped: u64,
    unconfirmed: u64,
}

impl Tally {
    fn dropped(n: u64) -> Self {
        Tally {
            dropped: n,
            ..Tally::default()
        }
    }

    fn failed(n: u64) -> Self {
        Tally {
            failed: n,
            ..Tally::default()
        }
    }

    /// `n` spans given up on: unconfirmed if a try may have reached the
    /// collector, failed if none did.
    fn given_up(n: u64, maybe_delivered: bool) -> Self {
        if maybe_delivered {
            Tally {
                unconfirmed: n,
                ..Tally::default()
            }
        } else {
            Tally::failed(n)
        }
    }
}

enum Control {
    Flush {
        deadline: Instant,
        done: Sender<bool>,
    },
    Shutdown {
        deadline: Instant,
        done: Sender<()>,
    },
}

impl Control {
    fn deadline(&self) -> Instant {
        match self {
            Control::Flush { deadline, .. } | Control::Shutdown { deadline, .. } => *deadline,
        }
    }
}

/// The sink the writer's thread holds: the sending half of the export
/// thread.
pub(super) struct OtlpSink {
    spans: Sender<Vec<PointEvent>>,
    /// Kept to take back what the thread never took when shutting down
    /// gives up on it.
    leftovers: Receiver<Vec<PointEvent>>,
    control: Sender<Control>,
    shared: Arc<Shared>,
    queue_limit: u64,
    /// The bytes of the stops taken and not yet sent or counted; the
    /// export thread gives them back.
    bytes: Arc<ByteBudget>,
    thread: Option<JoinHandle<()>>,
}

impl OtlpSink {
    pub(super) fn start(
        settings: Settings,
        resource: Resource,
        counters: Arc<SinkCounters>,
    ) -> Result<Self, Error> {
        let (spans, incoming) = crossbeam_channel::unbounded();
        let (control, commands) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            ledger: Mutex::new(Ledger::default()),
            counters,
        });
        let bytes = Arc::new(ByteBudget::new(settings.queue_bytes_limit));
        let mut agent = ureq::AgentBuilder::new();
        if let Some(tls) = &settings.tls {
            agent = agent.tls_config(Arc::clone(tls));
        }
        let agent = agent
            .timeout_connect(settings.connect_timeout)
            // A collector does not redirect; following one would resend the
            // spans somewhere nobody configured.
            .redirects(0)
            .user_agent(concat!("tracing-osprofiler/", env!("CARGO_PKG_VERSION")))
            .build();
        let exporter = Exporter {
            incoming: incoming.clone(),
            commands,
            stashed: None,
            pending: VecDeque::new(),
            oldest: None,
            shared: Arc::clone(&shared),
            bytes: Arc::clone(&bytes),
            agent,
            resource,
            scope: mapping::scope(),
            body: Vec::new(),
            settings,
        };
        let queue_limit = exporter.settings.queue_limit as u64;
        let thread = std::thread::Builder::new()
            // 15 characters: the whole name shows in `top -H` and /proc.
            .name("osprofiler-otlp".into())
            .spawn(move || exporter.run())
            .map_err(|source| Error::io("cannot start the OTLP export thread", source))?;
        Ok(OtlpSink {
            spans,
            leftovers: incoming,
            control,
            shared,
            queue_limit,
            bytes,
            thread: Some(thread),
        })
    }

    /// Counts as dropped everything taken and not counted yet, and tells
    /// the thread, whenever its call returns, that it is all counted.
    fn abandon(&mut self) {
        let mut ledger = self.shared.ledger();
        if !ledger.abandoned {
            ledger.abandoned = true;
            self.shared.counters.dropped(ledger.outstanding);
            ledger.outstanding = 0;
        }
        drop(ledger);
        // Free their memory now; they are counted.
        while let Ok(stops) = self.leftovers.try_recv() {
            self.bytes.release(stops.iter().map(event_bytes).sum());
        }
    }
}

impl Sink for OtlpSink {
    fn write(&mut self, events: &[PointEvent]) {
        let stops = || events.iter().filter(|e| e.phase == Phase::Stop);
        // Only this thread adds to the ledger or abandons it; the export
        // thread only takes away, so the room seen here can only grow.
        let room = {
            let ledger = self.shared.ledger();
            if ledger.abandoned {
                self.shared.counters.dropped(stops().count() as u64);
                return;
            }
            self.queue_limit.saturating_sub(ledger.outstanding)
        };
        // The stops themselves go to the export thread, which makes the
        // spans: their memory is then allocated and freed on one thread,
        // and the writer's thread, which the file sink shares, does less.
        let mut batch = Vec::with_capacity(stops().count().min(room as usize));
        let mut dropped = 0u64;
        let mut over_bytes = 0u64;
        let mut batch_bytes = 0u64;
        for event in stops() {
            if (batch.len() as u64) >= room {
                dropped += 1;
                continue;
            }
            let size = event_bytes(event);
            if !self.bytes.try_take(size) {
                over_bytes += 1;
                continue;
            }
            batch_bytes += size;
            batch.push(event.clone());
        }
        self.shared.counters.dropped(dropped);
        self.shared.counters.dropped_over_bytes(over_bytes);
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        // Counted before the thread can see them, so that it never settles
        // spans the ledger does not hold yet.
        self.shared.ledger().outstanding += n;
        // One message per batch of the writer, not one per span: each send
        // may wake the export thread.
        if self.spans.send(batch).is_err() {
            self.bytes.release(batch_bytes);
            self.shared.settle(Tally::dropped(n));
        }
    }

    fn flush(&mut self, deadline: Instant) -> bool {
        let deadline = ahead_of(deadline);
        let (done, finished) = crossbeam_channel::bounded(1);
        if self
            .control
            .send(Control::Flush { deadline, done })
            .is_err()
        {
            return false;
        }
        finished.recv_deadline(deadline).unwrap_or(false)
    }

    fn shutdown(&mut self, deadline: Instant) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = ahead_of(deadline);
        let (done, finished) = crossbeam_channel::bounded(1);
        let sent = self
            .control
            .send(Control::Shutdown { deadline, done })
            .is_ok();
        if sent && finished.recv_deadline(deadline).is_ok() {
            let _ = thread.join();
        } else {
            // Stuck in a call past the deadline (a collector that accepts
            // and never answers): the call ends by its own timeout, and the
            // thread then finds everything counted and stops.
            self.abandon();
        }
    }
}

/// A little before `deadline` (a tenth of the time left, at most 100 ms):
/// the writer's thread has to report back to the guard by `deadline`, and
/// what this sink gives up on must be counted before then.
fn ahead_of(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline - (left / 10).min(Duration::from_millis(100))
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        // The writer shuts its sinks down; a sink dropped without that (a
        // later sink failed to start) stops its thread at once.
        self.shutdown(Instant::now());
    }
}

/// What one try of a request came to.
enum Attempt {
    /// 2xx; how many spans the collector said it rejected.
    Accepted { rejected: u64 },
    /// Worth another try, and the collector does not have the spans: no
    /// connection, or 429, 502, 503, 504 (with the wait it asked for).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The request went out and the connection broke before an answer (a
    /// collector that crashed or restarted): it may have the spans; worth
    /// another try.
    Broken { reason: String },
    /// The request went out and no answer came in time: the collector may
    /// well be working on it; tried again only when asked.
    TimedOut { reason: String },
    /// Will not get better by retrying: any other status, an answer that
    /// is not HTTP.
    Refused { reason: String },
}

struct Exporter {
    incoming: Receiver<Vec<PointEvent>>,
    commands: Receiver<Control>,
    /// A command that came in while waiting between retries.
    stashed: Option<Control>,
    /// Stops waiting for their batch; each becomes a span when its batch
    /// is encoded.
    pending: VecDeque<PointEvent>,
    /// When the oldest pending span came in.
    oldest: Option<Instant>,
    shared: Arc<Shared>,
    /// Room in bytes, given back as stops leave the queue.
    bytes: Arc<ByteBudget>,
    agent: ureq::Agent,
    resource: Resource,
    scope: InstrumentationScope,
    body: Vec<u8>,
    settings: Settings,
}

impl Exporter {
    fn run(mut self) {
        // Reachability at start: a sink pointed at nothing says so now, as
        // an outage (which the first delivered batch ends), not with the
        // first profiled request. On this thread, so the service's startup
        // never waits for it.
        if let Err(why) = reachable(&self.settings.url, self.settings.connect_timeout) {
            self.shared
                .counters
                .outage(&format_args!("nothing answers there at start: {why}"));
        }
        loop {
            if let Some(command) = self.stashed.take() {
                if !self.obey(command) {
                    return;
                }
                continue;
            }
            if self.pending.len() >= self.settings.batch_size.max(1) {
                if !self.export_batch(None) {
                    return;
                }
                continue;
            }
            let due = self
                .oldest
                .map(|oldest| oldest + self.settings.batch_timeout);
            let mut command = None;
            let mut timed_out = false;
            match due {
                Some(due) => crossbeam_channel::select! {
                    recv(self.incoming) -> spans => match spans {
                        Ok(spans) => self.take(spans),
                        Err(_) => return self.finish(Instant::now() + Duration::from_secs(1)),
                    },
                    recv(self.commands) -> c => command = c.ok(),
                    default(due.saturating_duration_since(Instant::now())) => timed_out = true,
                },
                None => crossbeam_channel::select! {
                    recv(self.incoming) -> spans => match spans {
                        Ok(spans) => self.take(spans),
                        Err(_) => return self.finish(Instant::now() + Duration::from_secs(1)),
                    },
                    recv(self.commands) -> c => command = c.ok(),
                },
            }
            if let Some(command) = command {
                if !self.obey(command) {
                    return;
                }
            } else if timed_out && !self.export_batch(None) {
                return;
            }
        }
    }

    fn take(&mut self, spans: Vec<PointEvent>) {
        if self.pending.is_empty() {
            self.oldest = Some(Instant::now());
        }
        self.pending.extend(spans);
    }

    /// Takes everything queued now.
    fn take_all(&mut self) {
        while let Ok(spans) = self.incoming.try_recv() {
            self.take(spans);
        }
    }

    /// Carries out a flush or a shutdown; whether the thread goes on.
    fn obey(&mut self, command: Control) -> bool {
        match command {
            Control::Flush { deadline, done } => {
                self.take_all();
                let mut alive = true;
                while alive && !self.pending.is_empty() && Instant::now() < deadline {
                    alive = self.export_batch(Some(deadline));
                }
                let _ = done.send(self.pending.is_empty());
                alive
            }
            Control::Shutdown { deadline, done } => {
                self.finish(deadline);
                let _ = done.send(());
                false
            }
        }
    }

    /// Sends what it can by `deadline`, counts the rest as dropped.
    fn finish(&mut self, deadline: Instant) {
        self.take_all();
        let mut alive = true;
        while alive && !self.pending.is_empty() && Instant::now() < deadline {
            alive = self.export_batch(Some(deadline));
        }
        if alive {
            self.take_all();
            let left = self.pending.len() as u64;
            let bytes = self.pending.iter().map(event_bytes).sum();
            self.pending.clear();
            self.bytes.release(bytes);
            self.shared.settle(Tally::dropped(left));
        }
    }

    /// Exports the oldest batch of pending spans; whether the thread goes
    /// on (not when shutting down abandoned it).
    fn export_batch(&mut self, mut deadline: Option<Instant>) -> bool {
        let n = self.pending.len().min(self.settings.batch_size.max(1));
        if n == 0 {
            self.oldest = None;
            return true;
        }
        let mut bytes = 0;
        let spans: Vec<Span> = self
            .pending
            .drain(..n)
            .filter_map(|event| {
                bytes += event_bytes(&event);
                mapping::span(&event)
            })
            .collect();
        self.oldest = if self.pending.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        // Only stops are queued, and every stop is a span.
        debug_assert_eq!(spans.len(), n);
        let count = n as u64;
        let encoded = self.encode(spans);
        // The stops are freed, their spans too (the body holds the batch
        // now): their room is free for new stops while this one is tried.
        self.bytes.release(bytes);
        if let Err(error) = encoded {
            self.shared.counters.outage(&error);
            return self.shared.settle(Tally::failed(count));
        }
        let mut backoff = self.settings.backoff;
        let mut tries = 0u32;
        // Some try may have reached the collector (sent, then no answer).
        let mut maybe_delivered = false;
        let first_try = Instant::now();
        let retry_until = first_try
            .checked_add(self.settings.retry_time_limit)
            .unwrap_or(first_try);
        loop {
            let timeout = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        // Never tried again within the deadline.
                        return self.shared.settle(if tries == 0 {
                            Tally::dropped(count)
                        } else {
                            Tally::given_up(count, maybe_delivered)
                        });
                    }
                    left.min(self.settings.request_timeout)
                }
                None => self.settings.request_timeout,
            };
            tries += 1;
            let (reason, retry_after) = match self.post(timeout) {
                Attempt::Accepted { rejected } => {
                    let rejected = rejected.min(count);
                    if rejected > 0 {
                        self.shared.counters.outage(&format!(
                            "the collector rejected {rejected} of {count} spans"
                        ));
                    } else {
                        self.shared.counters.recovered();
                    }
                    return self.shared.settle(Tally {
                        written: count - rejected,
                        failed: rejected,
                        ..Tally::default()
                    });
                }
                Attempt::Refused { reason } => {
                    self.shared.counters.outage(&reason);
                    return self.shared.settle(Tally::given_up(count, maybe_delivered));
                }
                Attempt::TimedOut { reason } if !self.settings.retry_timeouts => {
                    self.shared.counters.outage(&format!(
                        "{reason}; the request was sent, so its spans are counted as unconfirmed \
                         and not sent again"
                    ));
                    return self.shared.settle(Tally::given_up(count, true));
                }
                Attempt::TimedOut { reason } | Attempt::Broken { reason } => {
                    maybe_delivered = true;
                    (reason, None)
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                } => (reason, retry_after),
            };
            let wait = retry_after
                .unwrap_or_else(|| jittered(backoff))
                .min(self.settings.max_backoff);
            let retry_at = Instant::now() + wait;
            if tries > self.settings.max_retries || retry_at > retry_until {
                self.shared.counters.outage(&reason);
                return self.shared.settle(Tally::given_up(count, maybe_delivered));
            }
            if !self.pause(wait, &mut deadline) {
                // The deadline comes before the next try.
                self.shared.counters.outage(&reason);
                return self.shared.settle(Tally::given_up(count, maybe_delivered));
            }
            backoff = backoff.saturating_mul(2).min(self.settings.max_backoff);
        }
    }

    /// Waits `wait` before a retry, listening for a flush or shutdown (kept
    /// for later, its deadline applied to this batch now). Whether the
    /// retry can still be made before the deadline.
    fn pause(&mut self, wait: Duration, deadline: &mut Option<Instant>) -> bool {
        let until = Instant::now() + wait;
        loop {
            if deadline.is_some_and(|deadline| until >= deadline) {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            if self.stashed.is_some() {
                std::thread::sleep(left);
                continue;
            }
            match self.commands.recv_timeout(left) {
                Ok(command) => {
                    let limit = command.deadline();
                    *deadline = Some(deadline.map_or(limit, |d| d.min(limit)));
                    self.stashed = Some(command);
                }
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => {
                    // The sink is gone without a word: a second to finish.
                    let limit = Instant::now() + Duration::from_secs(1);
                    *deadline = Some(deadline.map_or(limit, |d| d.min(limit)));
                    std::thread::sleep(left.min(Duration::from_secs(1)));
                    return deadline.is_some_and(|d| Instant::now() < d);
                }
            }
        }
    }

    /// Encodes `spans` into `self.body`, gzipped when asked.
    fn encode(&mut self, spans: Vec<Span>) -> Result<(), std::io::Error> {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        self.body.clear();
        if self.settings.gzip {
            let plain = request.encode_to_vec();
            let mut encoder = flate2::write::GzEncoder::new(
                std::mem::take(&mut self.body),
                flate2::Compression::fast(),
            );
            encoder.write_all(&plain)?;
            self.body = encoder.finish()?;
        } else {
            request
                .encode(&mut self.body)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        }
        Ok(())
    }

    /// One try: posts `self.body`.
    fn post(&self, timeout: Duration) -> Attempt {
        let mut request = self
            .agent
            .post(&self.settings.url)
            .timeout(timeout)
            .set("Content-Type", "application/x-protobuf");
        if self.settings.gzip {
            request = request.set("Content-Encoding", "gzip");
        }
        for (name, value) in &self.settings.headers {
            request = request.set(name, value);
        }
        match request.send_bytes(&self.body) {
            Ok(response) if (200..300).contains(&response.status()) => Attempt::Accepted {
                rejected: rejected_spans(response),
            },
            Ok(response) => Attempt::Refused {
                reason: format!("the collector answered HTTP {}", response.status()),
            },
            Err(ureq::Error::Status(code, response)) => {
                let reason = format!("the collector answered HTTP {code}");
                if matches!(code, 429 | 502 | 503 | 504) {
                    Attempt::Retry {
                        reason,
                        retry_after: response.header("Retry-After").and_then(retry_after),
                    }
                } else {
                    Attempt::Refused { reason }
                }
            }
            Err(ureq::Error::Transport(transport)) => classify(&transport),
        }
    }
}

/// What a transport error says about the request: whether it went out.
fn classify(transport: &ureq::Transport) -> Attempt {
    use ureq::ErrorKind;
    let reason = transport.to_string();
    match transport.kind() {
        // ureq sends the request and then reads the answer on the same
        // socket; an I/O error is past the connection, so the request
        // (or part of it) may have reached the collector.
        ErrorKind::Io => {
            let timed_out = std::error::Error::source(transport)
                .and_then(|e| e.downcast_ref::<std::io::Error>())
                .is_some_and(|e| {
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    )
                });
            if timed_out {
                Attempt::TimedOut { reason }
            } else {
                Attempt::Broken { reason }
            }
        }
        // The peer answered, but not in HTTP: no collector.
        ErrorKind::BadStatus | ErrorKind::BadHeader => Attempt::Refused { reason },
        // No connection (refused, DNS, TLS handshake, proxy): nothing was
        // sent.
        _ => Attempt::Retry {
            reason,
            retry_after: None,
        },
    }
}

/// `backoff` less a random part of up to half of it, so that services
/// that failed together do not retry together.
fn jittered(backoff: Duration) -> Duration {
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    // A fraction in [0, 1) with 16 bits: plenty for a wait.
    let fraction = f64::from((random & 0xffff) as u32) / 65536.0;
    backoff.saturating_sub(backoff.mul_f64(fraction / 2.0))
}

/// A TLS client configuration that trusts the Mozilla roots (as ureq's
/// own does) and every certificate in the PEM file at `path`.
pub(super) fn tls_trusting(
    path: &Path,
) -> Result<Arc<rustls::ClientConfig>, Box<dyn std::error::Error + Send + Sync>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;

    let pem = std::fs::read(path)?;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0;
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        roots.add(certificate?)?;
        added += 1;
    }
    if added == 0 {
        return Err("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    // ring, as ureq's own configuration: the provider is named, so that
    // another crate of the service enabling a second one changes nothing.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The `rejected_spans` of a partial success, if the body is one; 0 for
/// an empty body, or one that is not a protobuf response at all (the spans
/// were accepted: 2xx says so).
fn rejected_spans(response: ureq::Response) -> u64 {
    let is_protobuf = response
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("application/x-protobuf"));
    if !is_protobuf {
        return 0;
    }
    let mut body = Vec::new();
    if response
        .into_reader()
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut body)
        .is_err()
    {
        return 0;
    }
    ExportTraceServiceResponse::decode(body.as_slice())
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub(super) fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let now = time::OffsetDateTime::now_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 0 "), Some(Duration::ZERO));
        // A date in the past: retry now.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        // A date to come: wait until then.
        let wait = retry_after("Fri, 01 Jan 2100 00:00:00 GMT").unwrap();
        assert!(wait > Duration::from_secs(70 * 365 * 24 * 3600));
        assert_eq!(retry_after("soon"), None);
        assert_eq!(retry_after("-1"), None);
    }
}
