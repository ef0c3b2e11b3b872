//! What a trace point is besides its three ids: its kind, the facts about
//! the request or call it stands for, and how it ended.
//!
//! The Mistral log line needs only the ids, the name and the times. The
//! other sinks say more, as osprofiler's own drivers do: its `otlp` driver
//! names a request root `WSGI_{method}_{path}` and an outgoing call
//! `REQUESTS_{method}_{host}`, gives them the SERVER and CLIENT kinds and
//! marks failures; its `redis` driver stores the request's path, method and
//! scheme with the root's start. This module owns those facts:
//!
//! * [`RequestInfo`]: the incoming request of a root point, handed to
//!   [`Profile::start_request`](crate::Profile::start_request) (the `tower`
//!   middleware does it);
//! * [`ClientCall`]: an outgoing call, handed to [`client_point`]
//!   (the `reqwest` middleware does it);
//! * the outcome, recorded on the span itself: a field `http.status_code`
//!   (a status of 500 or more is a failure), a field `error` (`true`, or a
//!   message), or an event at level `ERROR` inside the span (what
//!   `#[instrument(err)]` emits).
//!
//! The layer turns each point into two events (start and stop),
//! which the writer hands to every sink; the event carries everything a
//! sink needs, so no sink has to pair a stop with its start.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use tracing::Span;

use crate::format::{Phase, PointIds, PointName, Timestamp};

/// What a point stands for, as OpenTelemetry's span kinds say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PointKind {
    /// Work inside the service (every point but the two below).
    #[default]
    Internal,
    /// The root point of an incoming request.
    Request,
    /// A call to another service.
    Client,
}

/// The incoming request a root point serves: what osprofiler's WSGI
/// middleware records (`info.request` in its Redis store, the `http.*`
/// attributes and the `WSGI_{method}_{path}` name in its OTLP driver).
///
/// The query string is kept only when given with
/// [`with_query`](Self::with_query): it often carries secrets.
///
/// ```
/// use tracing_osprofiler::point::RequestInfo;
///
/// let info = RequestInfo::new("GET", "/servers/detail", "https");
/// assert_eq!(info.method(), "GET");
/// assert_eq!(info.query(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    method: String,
    path: String,
    scheme: String,
    query: Option<String>,
}

impl RequestInfo {
    /// A request by its method (`GET`), path (`/servers`) and scheme
    /// (`http` or `https`).
    #[must_use]
    pub fn new(
        method: impl Into<String>,
        path: impl Into<String>,
        scheme: impl Into<String>,
    ) -> Self {
        RequestInfo {
            method: method.into(),
            path: path.into(),
            scheme: scheme.into(),
            query: None,
        }
    }

    /// Keeps the query string too (without the `?`).
    #[must_use]
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// The method, as received.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, without the query string.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `http` or `https`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The query string, when it was asked for.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

/// An outgoing call a client point stands for: what osprofiler's `requests`
/// instrumentation records (`REQUESTS_{method}_{host}`, `http.method`,
/// `http.hostname`, `http.port`).
///
/// ```
/// use tracing_osprofiler::point::ClientCall;
///
/// let call = ClientCall::new("POST", "nova-api.internal", Some(8774));
/// assert_eq!(call.host(), "nova-api.internal");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCall {
    method: String,
    host: String,
    port: Option<u16>,
}

impl ClientCall {
    /// A call by its method, host name (or address) and port.
    #[must_use]
    pub fn new(method: impl Into<String>, host: impl Into<String>, port: Option<u16>) -> Self {
        ClientCall {
            method: method.into(),
            host: host.into(),
            port,
        }
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The host name or address called.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when the URL had one or its scheme implies one.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

thread_local! {
    /// The call that [`client_point`] hands to the next span created on
    /// this thread.
    static PENDING_CALL: Cell<Option<ClientCall>> = const { Cell::new(None) };
}

/// Makes the span created by `make_span` a client point for `call`, if it
/// becomes a trace point at all (that is, inside a profiled request), and
/// returns it.
///
/// Sinks that know span kinds (OTLP) then export it as a CLIENT span named
/// `REQUESTS_{method}_{host}`, as osprofiler names its outgoing calls. The
/// `reqwest` middleware calls this for every call; other HTTP clients can
/// too. Record the response status on the span as a `http.status_code`
/// field (declared with `tracing::field::Empty`) to mark a failed call.
///
/// ```
/// use tracing_osprofiler::point::{client_point, ClientCall};
///
/// let span = client_point(ClientCall::new("GET", "example.internal", Some(80)), || {
///     tracing::info_span!("http", http.status_code = tracing::field::Empty)
/// });
/// // ... make the call inside `span`, then:
/// span.record("http.status_code", 200);
/// ```
pub fn client_point(call: ClientCall, make_span: impl FnOnce() -> Span) -> Span {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            PENDING_CALL.with(Cell::take);
        }
    }
    PENDING_CALL.with(|cell| cell.set(Some(call)));
    let _reset = Reset;
    make_span()
}

/// The call [`client_point`] left for the span being created, if any.
pub(crate) fn take_pending_call() -> Option<ClientCall> {
    PENDING_CALL.with(Cell::take)
}

/// The facts of a point beyond its ids and times; most points have none,
/// so events carry them boxed and only when there are some.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PointFacts {
    pub(crate) kind: PointKind,
    pub(crate) request: Option<RequestInfo>,
    pub(crate) call: Option<ClientCall>,
    /// The span's fields as one JSON object (only when the layer records
    /// fields): those given at creation, then those recorded later.
    pub(crate) fields: Option<Arc<str>>,
    /// A `http.status_code` recorded on the span.
    pub(crate) status_code: Option<u16>,
    /// Why the point failed: an `error` field, or the message of an
    /// `ERROR` event inside it.
    pub(crate) error: Option<String>,
    /// On the root of a request kept by tail capture: why, and how many
    /// points its tree lacks (`crate::capture`).
    pub(crate) capture: Option<crate::capture::CaptureMark>,
}

// Read by the sinks that export kinds and outcomes (OTLP, Redis).
#[cfg_attr(not(any(feature = "otlp", feature = "redis")), allow(dead_code))]
impl PointFacts {
    /// Whether the point counts as failed: an error was recorded, or the
    /// request or call answered with a status of 500 or more.
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some() || self.status_code.is_some_and(|code| code >= 500)
    }
}

/// One start or stop of a trace point, as the layer hands it to a writer.
///
/// A stop event carries the start's wall-clock time and the monotonic
/// duration, so a sink that exports whole spans (OTLP) needs no state to
/// pair it with its start.
#[derive(Debug, Clone)]
// `started` and the facts are read by the OTLP and Redis sinks.
#[cfg_attr(not(any(feature = "otlp", feature = "redis")), allow(dead_code))]
pub(crate) struct PointEvent {
    pub(crate) phase: Phase,
    pub(crate) ids: PointIds,
    pub(crate) name: PointName<'static>,
    /// When this event happened: the start, or the stop.
    pub(crate) timestamp: Timestamp,
    /// Only for a stop: the wall-clock time of the start.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))] // the OTLP sink reads it
    pub(crate) started: Timestamp,
    /// Only for a stop: the duration, from the monotonic clock, in
    /// nanoseconds (8 bytes, not a `Duration`'s 16: see the size check
    /// below). Read through [`duration`](Self::duration).
    pub(crate) duration_nanos: u64,
    /// Only for a stop: the busy time (the span entered on at least one
    /// thread), from the same clock, at most `duration`; unknown when not
    /// measured (unknown is not zero). Read through [`busy`](Self::busy).
    pub(crate) busy: MaybeBusy,
    /// Only for a stop: the point lasted at least the slow threshold.
    pub(crate) slow: bool,
    pub(crate) facts: Option<Box<PointFacts>>,
}

// The layer moves every event twice on the application thread (into the
// writer's queue, and the queue's slot); up to 128 bytes the compiler moves
// it inline, above that through a call to `memcpy`: 16 bytes more cost a
// signed span 4 such calls, about 120 instructions (callgrind). Hence the
// duration and busy time in nanoseconds.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<PointEvent>() <= 128);

/// A duration in whole nanoseconds, saturating 584 years on.
pub(crate) fn nanos_u64(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A busy time, or unknown, in the 8 bytes of its nanoseconds
/// (`Option<Duration>` takes 16): see the size check above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaybeBusy(u64);

impl MaybeBusy {
    /// Not measured: the event is a start.
    pub(crate) const UNKNOWN: MaybeBusy = MaybeBusy(u64::MAX);

    /// A measured busy time (capped 584 years on, below the unknown mark).
    pub(crate) fn known(busy: Duration) -> MaybeBusy {
        MaybeBusy(nanos_u64(busy).min(u64::MAX - 1))
    }

    /// The busy time, `None` when unknown.
    pub(crate) fn get(self) -> Option<Duration> {
        (self != MaybeBusy::UNKNOWN).then(|| Duration::from_nanos(self.0))
    }
}

#[cfg_attr(not(any(feature = "otlp", feature = "redis")), allow(dead_code))]
impl PointEvent {
    /// The duration of a stop (zero for a start).
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_nanos)
    }

    /// The busy time, when it was measured.
    pub(crate) fn busy(&self) -> Option<Duration> {
        self.busy.get()
    }

    /// The time the point waited (its duration minus its busy time), when
    /// its busy time is known.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))] // read by the OTLP sink
    pub(crate) fn idle(&self) -> Option<Duration> {
        Some(self.duration().saturating_sub(self.busy()?))
    }

    /// The span fields as one JSON object, if the layer recorded them.
    pub(crate) fn fields(&self) -> Option<&str> {
        self.facts.as_ref()?.fields.as_deref()
    }

    /// The point's name as the log writes it (sanitized, without
    /// `-start` / `-stop`).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn name_text(&self) -> String {
        let mut out = Vec::with_capacity(32);
        self.name.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The point's kind ([`PointKind::Internal`] without facts).
    #[allow(dead_code)] // read by the OTLP sink
    pub(crate) fn kind(&self) -> PointKind {
        self.facts.as_ref().map_or(PointKind::Internal, |f| f.kind)
    }
}

impl PointEvent {
    /// Appends this event as one Mistral log line, with its `\n`.
    pub(crate) fn write_line(&self, out: &mut Vec<u8>) {
        match self.phase {
            Phase::Start => {
                crate::format::write_start(out, self.timestamp, &self.ids, self.name, self.fields())
            }
            Phase::Stop => crate::format::write_stop_with_busy(
                out,
                self.timestamp,
                self.duration(),
                self.busy(),
                &self.ids,
                self.name,
                self.slow,
            ),
        }
    }
}
