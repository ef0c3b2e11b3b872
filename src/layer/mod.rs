//! The [`OsProfilerLayer`]: turns the spans of profiled requests into
//! osprofiler trace points and hands their start and stop to an output.
//!
//! This module owns the per-span profile data (kept in the registry's span
//! extensions), the decision whether a new span belongs to a profiled request,
//! starting a profile from code ([`Profile::start`]), and the outcome of a
//! point (status code, error). [`ProfileExt`] (in `span_ext.rs`) reads a
//! span's ids and signs headers for calls made from it; [`Output`] (in
//! `output.rs`) is where the points go.
//!
//! # Which spans are profiled
//!
//! A span is a trace point when, at its creation,
//!
//! * it is created inside [`Profile::start`] (it is the root of a request: a
//!   verified token, or trusted code starting a profile), or
//! * its parent, as the registry resolved it (explicit, or the current span),
//!   is a trace point.
//!
//! Every other span is left alone: the layer writes nothing for it and, while
//! the layer has no trace point alive and no thread is inside
//! [`Profile::start`], does three atomic loads when the span opens, is
//! recorded to, holds an event, and closes.
//!
//! # Ids and times
//!
//! A trace point inherits `base_id`; its `parent_id` is its parent's
//! `trace_id` (for a request root, the caller's `parent_id`, or else
//! `base_id`); its `trace_id` is a fresh UUID v4 (never derived from the
//! registry's span id, which is recycled). The start is taken when the span
//! is created, the stop when it closes; the duration is measured on the
//! monotonic clock, so entering and leaving a span on many polls of a future
//! changes nothing and a wall-clock step cannot produce a negative duration.
//! The timestamps are wall-clock time, derived from the same monotonic
//! reading (one clock call per start and per stop; see `clock.rs`): a step
//! of the wall clock shows in them at most 10 ms after it happens.
//!
//! # Busy time
//!
//! A point's busy time is the time during which its span was entered on at
//! least one thread: summed over every poll of a future, counted once while
//! two threads are inside at the same time, 0 for a span never entered,
//! and up to the close for a span closed while entered (docs/protocol.md,
//! *Busy time*). The point counts the threads inside; the monotonic clock
//! is read when the count goes from 0 to 1 and from 1 to 0, under the
//! span's extensions lock, which orders the threads' enters and exits.
//! Enter and exit of a span that is not a point cost the same three loads
//! as its other hooks while the layer has no point alive.
//!
//! With several layers, only the layer that made the point counts its
//! enters and exits: it has the point alive from its creation to its close,
//! so it sees every one of them, whereas another layer may start or stop
//! looking in between (its own points come and go) and would count an
//! enter without its exit.
//!
//! # Several layers in one subscriber
//!
//! Two `OsProfilerLayer`s may sit in one subscriber (one per file, a file
//! and another destination): a span that is a point is one point, with one
//! set of ids and one start and stop time, and every layer writes its own
//! complete start and stop for it. A layer writes the points of the requests
//! whose root it saw: one whose filter hid a root writes nothing of it.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{self, Attributes, Record};
use tracing::{Event, Level, Metadata, Span, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::capture::{CaptureMark, Captured, Decision, Stopped};
use crate::format::{JsonFields, Phase, PointIds, PointName, Timestamp, LEFT_OUT_MEMBER};
use crate::point::{
    nanos_u64, take_pending_call, MaybeBusy, PointEvent, PointFacts, PointKind, RequestInfo,
};
use crate::token::{Profile, Signer};
use crate::writer::ProfileWriter;

mod clock;
mod output;
mod span_ext;

pub use output::{InlineWriter, Output};
#[cfg(any(feature = "tower", feature = "actix"))]
pub(crate) use span_ext::record_outcome;
pub use span_ext::{current_trace_headers, ProfileExt};

/// How a trace point is named in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NameSource {
    /// The span's name (`#[instrument]` uses the function name).
    #[default]
    SpanName,
    /// The span's target and name, joined by `::` (`my_app::db::query`).
    TargetAndName,
}

/// A [`Layer`] that turns the spans of profiled requests into osprofiler
/// trace points.
///
/// # Configuration
///
/// | setting | default | setter |
/// |---|---|---|
/// | where points go | the [`ProfileWriter`] given to [`new`](Self::new), or a `MakeWriter` given to [`from_make_writer`](Self::from_make_writer) | - |
/// | point name | the span name | [`with_name_source`](Self::with_name_source) |
/// | slow marker ` <- !!!` | on stop lines of 0.5 s or more (Mistral's rule is more than 0.5 s) | [`with_slow_threshold`](Self::with_slow_threshold) |
/// | span fields (JSON on start lines, attributes in OTLP) | off (fields can hold secrets) | [`with_fields`](Self::with_fields) |
/// | longest field value or error text kept (longer ones are cut, marked and counted) | 16 KiB | [`with_max_field_bytes`](Self::with_max_field_bytes) |
/// | most a point's fields object holds (further members are left out, marked and counted) | four values at that cap (64 KiB), at least 1 KiB | [`with_max_field_bytes`](Self::with_max_field_bytes) |
///
/// # Where the points go
///
/// [`new`](Self::new) takes a [`ProfileWriter`]: the profiled thread only
/// queues a small record per start and stop, and the writer's own thread
/// formats and writes it to every sink (the rolling file, and with the
/// `otlp` or `redis` features an OpenTelemetry collector or osprofiler's
/// Redis store). [`from_make_writer`](Self::from_make_writer) takes any
/// [`MakeWriter`] instead (a test buffer, `std::io::stderr`): each line is
/// then formatted and written **on the thread that starts or ends the
/// span**, with one `write_all` per line. A `ProfileWriter` wrapped in
/// another `MakeWriter` is such a writer too, so it is no longer written
/// from its own thread; the type of the layer says which path it takes.
///
/// # Example
///
/// ```
/// use tracing_osprofiler::{HmacAlgorithm, OsProfilerLayer, Profile, Signer};
/// use tracing_subscriber::prelude::*;
///
/// let dir = tempfile::tempdir()?;
/// let (writer, _guard) = tracing_osprofiler::writer::RollingFile::new(dir.path()).build()?;
/// let subscriber = tracing_subscriber::registry().with(OsProfilerLayer::new(writer));
///
/// tracing::subscriber::with_default(subscriber, || {
///     // Trusted code (a batch job, a test) starts a profile; a service gets
///     // its `Profile` from a verified token instead.
///     let profile = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1));
///     let root = profile.start(|| tracing::info_span!("nightly-job"));
///     root.in_scope(|| {
///         let _db = tracing::info_span!("db-query").entered();
///     });
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OsProfilerLayer<S, O = ProfileWriter> {
    output: O,
    config: Config,
    shared: Arc<Shared>,
    lookup: span_ext::LookupPoint,
    _subscriber: PhantomData<fn(S)>,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    name_source: NameSource,
    slow_threshold: Option<Duration>,
    record_fields: bool,
    max_field_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name_source: NameSource::SpanName,
            slow_threshold: Some(Duration::from_millis(500)),
            record_fields: false,
            max_field_bytes: JsonFields::DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// State shared between the layer and the [`LayerStats`] handles.
#[derive(Debug)]
struct Shared {
    /// Which layer this is, to the points it makes.
    number: LayerNumber,
    points_started: AtomicU64,
    /// Live points are those started and not stopped: one counter fewer
    /// to update per point. The two also tell the hooks whether the layer
    /// has anything to do (`may_see_points`).
    points_stopped: AtomicU64,
    events_refused: AtomicU64,
    field_values_cut: AtomicU64,
    /// Set while the output refuses events, so that an outage is reported
    /// once.
    failing: AtomicBool,
}

/// Counters of an [`OsProfilerLayer`], readable while the layer runs.
///
/// Every start and stop the layer makes is either handed to its output or
/// counted in [`events_refused`](Self::events_refused); what the output
/// does with it is counted by the output
/// ([`WriterStats`](crate::writer::WriterStats)). A writer whose sinks
/// make each span from its stop alone (OTLP only) is handed no starts.
#[derive(Clone, Debug)]
pub struct LayerStats {
    shared: Arc<Shared>,
}

impl LayerStats {
    /// Trace points started since the layer was built.
    #[must_use]
    pub fn points_started(&self) -> u64 {
        self.shared.points_started.load(Ordering::Relaxed)
    }

    /// Trace points alive now (started, not yet stopped).
    #[must_use]
    pub fn points_live(&self) -> u64 {
        // Stopped first: read the other way round, a point stopped between
        // the two reads could count as stopped but never started.
        let stopped = self.shared.points_stopped.load(Ordering::Relaxed);
        let started = self.shared.points_started.load(Ordering::Relaxed);
        started.saturating_sub(stopped)
    }

    /// Span field values, and error texts, cut at the layer's cap
    /// ([`OsProfilerLayer::with_max_field_bytes`]), and fields left out of
    /// a point's full fields object.
    #[must_use]
    pub fn field_values_cut(&self) -> u64 {
        self.shared.field_values_cut.load(Ordering::Relaxed)
    }

    /// Starts and stops the output refused: an I/O error of a `MakeWriter`,
    /// or a [`ProfileWriter`] that was shut down. A refusal is reported on
    /// standard error once per outage, not once per event.
    #[must_use]
    pub fn events_refused(&self) -> u64 {
        self.shared.events_refused.load(Ordering::Relaxed)
    }
}

/// The profile data of one trace point, in the span's extensions. One per
/// span, whatever the number of layers that write it.
struct Point {
    ids: PointIds,
    started: clock::Now,
    /// The request's signer, on its root point only: the points below find
    /// it up their scope when a call is signed, which is rare, rather than
    /// each holding a reference to it.
    ///
    /// Boxed, as the point's other rare parts, to keep the point within the
    /// 128 bytes the compiler moves inline (see the size check below).
    signer: Option<Box<Signer>>,
    facts: Option<Box<PointFacts>>,
    /// Layers that started this point and have not stopped it yet.
    open_in: u32,
    /// Its busy time while the span runs, then the stop every layer writes.
    timing: Timing,
    /// The request's buffer and decision, when it is captured (an `Arc`
    /// clone per point: a point of a captured request stops into it).
    capture: Option<Arc<Captured>>,
    /// This point is the root of a captured request: its close decides.
    capture_root: bool,
    /// What the first layer to close a captured point did with it: `false`,
    /// handed it to the request's buffer (whose flush writes it for every
    /// layer) or dropped it with a discarded request; `true`, found the
    /// request kept already, so every layer writes its own copy.
    capture_kept_at_stop: Option<bool>,
    /// The fields object already ends a member with `"fields_left_out":
    /// true`: known here so that joining later fields need not search it.
    fields_left_out: bool,
}

// A point is built, moved into the span's extensions (boxed there), and
// read in place; up to 128 bytes each move is inline, above it a call to
// `memcpy` (three per point, about 90 instructions, when it had grown to 184
// bytes: callgrind).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Point>() <= 128);

/// A point's clock: while its span runs, the threads inside it and the busy
/// time so far; once the first layer has closed it, the stop that every
/// layer writes. The two never coexist, so they share the point's bytes.
#[derive(Debug, Clone, Copy)]
enum Timing {
    Running {
        /// The layer that counts enters and exits (the one that made the
        /// point; see "Busy time" in the module docs).
        counted_by: LayerNumber,
        /// How many enters are not yet matched by an exit, over all
        /// threads.
        inside: u32,
        /// When `inside` last went from 0 to 1 (monotonic nanoseconds).
        inside_since: i64,
        /// Busy time of the intervals already closed, in nanoseconds.
        busy_nanos: i64,
    },
    Stopped {
        at: Timestamp,
        duration_nanos: u64,
        busy_nanos: u64,
    },
}

/// A layer's number, unique among the layers of a process (it wraps after
/// 2^32 layers built, far beyond any process's subscribers): how a point
/// knows the layer that counts its busy time, in 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LayerNumber(u32);

impl LayerNumber {
    fn next() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        LayerNumber(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Point {
    /// A point starting now, written by one layer so far (`counted_by`).
    fn start(
        ids: PointIds,
        signer: Option<Signer>,
        facts: Option<PointFacts>,
        counted_by: LayerNumber,
    ) -> Self {
        Point {
            ids,
            started: clock::now(),
            signer: signer.map(Box::new),
            facts: facts.map(Box::new),
            open_in: 1,
            timing: Timing::Running {
                counted_by,
                inside: 0,
                inside_since: 0,
                busy_nanos: 0,
            },
            capture: None,
            capture_root: false,
            capture_kept_at_stop: None,
            fields_left_out: false,
        }
    }

    /// A thread enters (`entering`) or leaves the span, as `layer` saw it:
    /// counted only if `layer` counts this point. Busy from an enter when
    /// none was inside; the interval ends at the exit of the last one
    /// inside. An exit without its enter (a layer added to a subscriber
    /// while the span was entered) changes nothing.
    #[inline]
    fn enter_or_exit(&mut self, layer: LayerNumber, entering: bool) {
        let Timing::Running {
            counted_by,
            inside,
            inside_since,
            busy_nanos,
        } = &mut self.timing
        else {
            return;
        };
        if *counted_by != layer {
            return;
        }
        if entering {
            if *inside == 0 {
                *inside_since = clock::monotonic_nanos();
            }
            *inside = inside.saturating_add(1);
            return;
        }
        match *inside {
            0 => {}
            1 => {
                *inside = 0;
                let interval = clock::monotonic_nanos().saturating_sub(*inside_since);
                *busy_nanos = busy_nanos.saturating_add(interval.max(0));
            }
            _ => *inside -= 1,
        }
    }

    /// The stop, taken by the first layer to close the span (the clock
    /// read now), so that every layer writes the same one: when, the
    /// duration, the busy time (the interval still open included: a span
    /// closed while entered counts up to its close).
    fn stop(&mut self) -> (Timestamp, Duration, Duration) {
        let (at, duration, busy) = match self.timing {
            Timing::Stopped {
                at,
                duration_nanos,
                busy_nanos,
            } => (at, duration_nanos, busy_nanos),
            Timing::Running {
                inside,
                inside_since,
                busy_nanos,
                ..
            } => {
                let now = clock::now();
                let duration = nanos_u64(now.since(self.started));
                let open = if inside > 0 {
                    now.monotonic_nanos().saturating_sub(inside_since).max(0)
                } else {
                    0
                };
                // Never above the duration: enters before the point's start
                // cannot happen, but a clamp costs nothing.
                let busy = u64::try_from(busy_nanos.saturating_add(open))
                    .unwrap_or(0)
                    .min(duration);
                self.timing = Timing::Stopped {
                    at: now.wall,
                    duration_nanos: duration,
                    busy_nanos: busy,
                };
                (now.wall, duration, busy)
            }
        };
        (
            at,
            Duration::from_nanos(duration),
            Duration::from_nanos(busy),
        )
    }

    fn facts_mut(&mut self) -> &mut PointFacts {
        self.facts.get_or_insert_with(Box::default)
    }
}

thread_local! {
    /// The profile (and the request it serves) that [`Profile::start`]
    /// hands to the next span created on this thread.
    // Boxed: every new span takes it, and taking a pointer is cheaper than
    // moving the profile and the request in and out.
    static PENDING_ROOT: Cell<Option<Box<PendingRoot>>> = const { Cell::new(None) };
}

/// What [`Profile::start`] or a [`Capture`](crate::Capture) hands to the
/// next span created on its thread.
struct PendingRoot {
    trace_info: crate::TraceInfo,
    signer: Option<Signer>,
    request: Option<RequestInfo>,
    /// Set for a captured request: its points wait in its buffer.
    capture: Option<Arc<Captured>>,
}

/// Threads inside [`Profile::start`], whose next span may become a root.
static STARTING_ROOTS: AtomicUsize = AtomicUsize::new(0);

impl<S> OsProfilerLayer<S, ProfileWriter>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    /// A layer whose points go to `writer` (see
    /// [`writer::RollingFile`](crate::writer::RollingFile) and
    /// [`ProfileWriter::builder`]), with the defaults of the table above.
    #[must_use]
    pub fn new(writer: ProfileWriter) -> Self {
        OsProfilerLayer::with_output(writer)
    }
}

impl<S, W> OsProfilerLayer<S, InlineWriter<W>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    /// A layer that formats each line on the thread that makes it and
    /// writes it to `make_writer` with one `write_all` call (see "Where the
    /// points go" above).
    #[must_use]
    pub fn from_make_writer(make_writer: W) -> Self {
        OsProfilerLayer::with_output(InlineWriter::new(make_writer))
    }
}

impl<S, O> OsProfilerLayer<S, O>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    O: Output,
{
    fn with_output(output: O) -> Self {
        OsProfilerLayer {
            output,
            config: Config::default(),
            shared: Arc::new(Shared {
                number: LayerNumber::next(),
                points_started: AtomicU64::new(0),
                points_stopped: AtomicU64::new(0),
                events_refused: AtomicU64::new(0),
                field_values_cut: AtomicU64::new(0),
                failing: AtomicBool::new(false),
            }),
            lookup: span_ext::LookupPoint::of::<S>(),
            _subscriber: PhantomData,
        }
    }
}

impl<S, O> OsProfilerLayer<S, O> {
    /// How points are named (default: [`NameSource::SpanName`]).
    #[must_use]
    pub fn with_name_source(mut self, name_source: NameSource) -> Self {
        self.config.name_source = name_source;
        self
    }

    /// Stop lines of points lasting at least `threshold` end with Mistral's
    /// ` <- !!!` marker; `None` turns the marker off (default: 500 ms).
    #[must_use]
    pub fn with_slow_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.config.slow_threshold = threshold;
        self
    }

    /// Records span fields: as a JSON object after the name on start lines,
    /// and as span attributes in OTLP (default: off, since fields can hold
    /// secrets).
    #[must_use]
    pub fn with_fields(mut self, record: bool) -> Self {
        self.config.record_fields = record;
        self
    }

    /// The longest a recorded field value may be, in bytes as written in
    /// JSON (default 16 KiB): a longer one is cut on a character boundary,
    /// ends with `…[cut from N bytes]`, and is counted in
    /// [`LayerStats::field_values_cut`]. A field holding a whole request
    /// body then costs the queues and the sinks at most this much. The
    /// text of an error (an `error` field, an `ERROR` event's message) is
    /// kept to the same length, fields recorded or not.
    ///
    /// A point's whole fields object holds at most four values at this cap
    /// (and at least 1 KiB), so that a span whose fields are recorded again
    /// and again (`Span::record` in a loop) cannot grow without end: a
    /// member past it is left out, counted in
    /// [`LayerStats::field_values_cut`] too, and the object ends with
    /// `"fields_left_out":true`.
    #[must_use]
    pub fn with_max_field_bytes(mut self, bytes: usize) -> Self {
        self.config.max_field_bytes = bytes;
        self
    }

    /// Whether every field is recorded, the cap of a value (an `error`
    /// text too), and the counter of cuts.
    fn field_json(&self) -> FieldJson<'_> {
        FieldJson {
            all: self.config.record_fields,
            max_bytes: self.config.max_field_bytes,
            cut: &self.shared.field_values_cut,
        }
    }

    /// A handle on the layer's counters that stays valid after the layer is
    /// moved into a subscriber.
    #[must_use]
    pub fn stats(&self) -> LayerStats {
        LayerStats {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, O> fmt::Debug for OsProfilerLayer<S, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OsProfilerLayer")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<S, O: Output> OsProfilerLayer<S, O> {
    /// Whether a span may be (or become) one of this layer's points: it has
    /// points alive, or some thread is starting a root. When not, a span's
    /// every hook is these three loads.
    #[inline]
    fn may_see_points(&self) -> bool {
        // Stopped first, with `Acquire` so the second load cannot move
        // before it: `started` only grows, so a point alive throughout
        // always shows as `started > stopped`. Read the other way round,
        // points started and stopped between the two reads could hide it.
        let stopped = self.shared.points_stopped.load(Ordering::Acquire);
        let started = self.shared.points_started.load(Ordering::Relaxed);
        started != stopped || STARTING_ROOTS.load(Ordering::Acquire) != 0
    }

    /// Whether the layer has points alive: a span entered or left can only
    /// be one of its points then (a root is a point from its creation,
    /// before any enter), so its enter and exit need two of
    /// `may_see_points`' three loads.
    #[inline]
    fn has_points_alive(&self) -> bool {
        let stopped = self.shared.points_stopped.load(Ordering::Acquire);
        self.shared.points_started.load(Ordering::Relaxed) != stopped
    }

    /// This layer, as the points it counts the busy time of know it.
    #[inline]
    fn number(&self) -> LayerNumber {
        self.shared.number
    }

    fn point_name(&self, metadata: &'static Metadata<'static>) -> PointName<'static> {
        match self.config.name_source {
            NameSource::SpanName => PointName::new(metadata.name()),
            NameSource::TargetAndName => PointName::with_target(metadata.target(), metadata.name()),
        }
    }

    fn send(&self, event: PointEvent) {
        match self.output.send(event) {
            Ok(()) => {
                if self.shared.failing.load(Ordering::Relaxed)
                    && self.shared.failing.swap(false, Ordering::Relaxed)
                {
                    eprintln!("tracing-osprofiler: the profile output accepts points again");
                }
            }
            Err(error) => {
                self.shared.events_refused.fetch_add(1, Ordering::Relaxed);
                if !self.shared.failing.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "tracing-osprofiler: the profile output refuses points ({error}); \
                         they are counted as refused until it works again"
                    );
                }
            }
        }
    }

    fn start_event(&self, metadata: &'static Metadata<'static>, point: &Point) -> PointEvent {
        PointEvent {
            phase: Phase::Start,
            ids: point.ids,
            name: self.point_name(metadata),
            timestamp: point.started.wall,
            started: point.started.wall,
            duration_nanos: 0,
            busy: MaybeBusy::UNKNOWN,
            slow: false,
            facts: self.facts_for_output(point.facts.as_deref()),
        }
    }

    /// The facts this layer passes on: fields only when it records them.
    fn facts_for_output(&self, facts: Option<&PointFacts>) -> Option<Box<PointFacts>> {
        let facts = facts?;
        if !self.config.record_fields && facts.fields.is_some() {
            let mut facts = facts.clone();
            facts.fields = None;
            return (facts != PointFacts::default()).then(|| Box::new(facts));
        }
        Some(Box::new(facts.clone()))
    }

    /// As `facts_for_output`, for facts nobody else needs.
    fn own_facts_for_output(&self, facts: Option<Box<PointFacts>>) -> Option<Box<PointFacts>> {
        let mut facts = facts?;
        if !self.config.record_fields && facts.fields.is_some() {
            facts.fields = None;
            if *facts == PointFacts::default() {
                return None;
            }
        }
        Some(facts)
    }

    /// Counts a start; the event to send, unless no sink wants starts (an
    /// OTLP-only writer makes each span from its stop).
    fn record_start(
        &self,
        metadata: &'static Metadata<'static>,
        point: &Point,
    ) -> Option<PointEvent> {
        self.shared.points_started.fetch_add(1, Ordering::Relaxed);
        // A captured point's start is rebuilt from its stop if it is kept.
        (point.capture.is_none() && self.output.wants_starts())
            .then(|| self.start_event(metadata, point))
    }

    /// The close of a captured request's root, by one layer (see
    /// `crate::capture`): the first layer decides; each writes its own copy
    /// of a kept tree, the last taking the buffer.
    fn close_captured_root(&self, capture: &Captured, stop: Stopped, last: bool) {
        let Decision::Kept(mark) = capture.decide(&stop) else {
            return;
        };
        let buffered = capture.buffered(last);
        let count = self.kept_event_count(buffered.len() + 1);
        // Made one by one as the output queues them: a tree of hundreds of
        // points is never gathered into a second buffer on this thread.
        let make = |push: &mut dyn FnMut(PointEvent)| {
            let (root_start, root_stop) = self.kept_events(stop, Some(mark));
            if let Some(start) = root_start {
                push(start);
            }
            for stop in buffered {
                let (start, stop) = self.kept_events(stop, None);
                if let Some(start) = start {
                    push(start);
                }
                push(stop);
            }
            push(root_stop);
        };
        self.send_kept(make, count, capture);
    }

    /// The events this layer writes for `points` points of a kept request.
    fn kept_event_count(&self, points: usize) -> u64 {
        let per_point = if self.output.wants_starts() { 2 } else { 1 };
        (points as u64).saturating_mul(per_point)
    }

    /// The start (if this output wants starts) and the stop this layer
    /// writes for a point of a kept request; the root carries `mark`.
    fn kept_events(
        &self,
        stop: Stopped,
        mark: Option<CaptureMark>,
    ) -> (Option<PointEvent>, PointEvent) {
        let mut facts = self.own_facts_for_output(stop.facts);
        if let Some(mark) = mark {
            let facts = facts.get_or_insert_with(Box::default);
            facts.capture = Some(mark);
            if self.config.record_fields {
                let members = mark.json_members();
                facts.fields = Some(match facts.fields.take() {
                    Some(before) if before.len() > 2 => {
                        format!("{},{members}}}", &before[..before.len() - 1]).into()
                    }
                    _ => format!("{{{members}}}").into(),
                });
            }
        }
        let name = self.point_name(stop.metadata);
        let start = self.output.wants_starts().then(|| PointEvent {
            phase: Phase::Start,
            ids: stop.ids,
            name,
            timestamp: stop.started,
            started: stop.started,
            duration_nanos: 0,
            busy: MaybeBusy::UNKNOWN,
            slow: false,
            facts: facts.clone(),
        });
        let slow = self
            .config
            .slow_threshold
            .is_some_and(|threshold| stop.duration >= threshold);
        let stop = stop_event(
            &stop.ids,
            name,
            stop.started,
            stop.stopped,
            stop.duration,
            stop.busy,
            slow,
            facts,
        );
        (start, stop)
    }

    /// Hands a kept tree (or a point of it), `count` events, to the output
    /// in one batch: taken whole or refused whole, and counted.
    fn send_kept(
        &self,
        make: impl FnOnce(&mut dyn FnMut(PointEvent)),
        count: u64,
        capture: &Captured,
    ) {
        match self.output.send_batch(make) {
            Ok(()) => {
                if self.shared.failing.load(Ordering::Relaxed)
                    && self.shared.failing.swap(false, Ordering::Relaxed)
                {
                    eprintln!("tracing-osprofiler: the profile output accepts points again");
                }
            }
            Err(error) => {
                self.shared
                    .events_refused
                    .fetch_add(count, Ordering::Relaxed);
                capture.count_kept_refused();
                if !self.shared.failing.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "tracing-osprofiler: the profile output refuses points ({error}); \
                         they are counted as refused until it works again"
                    );
                }
            }
        }
    }
}

impl<S, O> OsProfilerLayer<S, O>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    O: Output,
{
    // Out of line: the unprofiled path, inlined into the registry's, is only
    // `may_see_points`.
    #[inline(never)]
    fn new_span_while_active(&self, attrs: &Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let metadata = span.metadata();
        let mut extensions = span.extensions_mut();
        if let Some(point) = extensions.get_mut::<Point>() {
            // Another OsProfilerLayer of this subscriber made it a point.
            point.open_in += 1;
            if self.config.record_fields && point.facts.as_ref().is_none_or(|f| f.fields.is_none())
            {
                record_fields(point, attrs, self.field_json());
            }
            let event = self.record_start(metadata, point);
            drop(extensions);
            if let Some(event) = event {
                self.send(event);
            }
            return;
        }
        let pending_root = PENDING_ROOT.with(Cell::take);
        let pending_call = take_pending_call();
        let mut point = match pending_root.map(|pending| *pending) {
            Some(PendingRoot {
                trace_info: info,
                signer,
                request,
                capture,
            }) => {
                let mut point = Point::start(
                    PointIds {
                        base_id: info.base_id(),
                        parent_id: info.root_parent_id(),
                        trace_id: crate::Id::new_v4(),
                    },
                    signer,
                    request.map(|request| PointFacts {
                        kind: PointKind::Request,
                        request: Some(request),
                        ..PointFacts::default()
                    }),
                    self.number(),
                );
                if let Some(capture) = capture {
                    capture.count_captured();
                    point.capture = Some(capture);
                    point.capture_root = true;
                }
                point
            }
            None => {
                let Some(parent) = span.parent() else { return };
                let parent_extensions = parent.extensions();
                let Some(parent_point) = parent_extensions.get::<Point>() else {
                    return;
                };
                let mut point = Point::start(
                    PointIds {
                        base_id: parent_point.ids.base_id,
                        parent_id: parent_point.ids.trace_id,
                        trace_id: crate::Id::new_v4(),
                    },
                    None,
                    pending_call.map(|call| PointFacts {
                        kind: PointKind::Client,
                        call: Some(call),
                        ..PointFacts::default()
                    }),
                    self.number(),
                );
                point.capture.clone_from(&parent_point.capture);
                point
            }
        };
        if self.config.record_fields || has_outcome_field(metadata) {
            record_fields(&mut point, attrs, self.field_json());
        }
        let event = self.record_start(metadata, &point);
        extensions.insert(point);
        drop(extensions);
        if let Some(event) = event {
            self.send(event);
        }
    }

    // Out of line, as `new_span_while_active`: one function for enter and
    // exit, which differ only in how the point counts.
    #[inline(never)]
    fn busy_while_active(&self, id: &span::Id, ctx: Context<'_, S>, entering: bool) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(point) = extensions.get_mut::<Point>() {
            point.enter_or_exit(self.number(), entering);
        }
    }

    #[inline(never)]
    fn record_while_active(&self, id: &span::Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(point) = extensions.get_mut::<Point>() else {
            return;
        };
        record_fields(point, values, self.field_json());
    }

    #[inline(never)]
    fn event_while_active(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(point) = extensions.get_mut::<Point>() else {
            return;
        };
        if let Some(capture) = &point.capture {
            capture.saw_error();
        }
        if point.facts.as_ref().is_some_and(|f| f.error.is_some()) {
            return;
        }
        let mut message = ErrorMessage::default();
        event.record(&mut message);
        let text = message.finish(event.metadata().name());
        point.facts_mut().error = Some(self.field_json().error_text(text));
    }

    #[inline(never)]
    fn close_while_active(&self, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(point) = extensions.get_mut::<Point>() else {
            return;
        };
        let (stopped_at, duration, busy) = point.stop();
        point.open_in = point.open_in.saturating_sub(1);
        if point.capture.is_some() {
            let last = point.open_in == 0;
            let (capture, facts) = if last {
                (point.capture.take(), point.facts.take())
            } else {
                (point.capture.clone(), point.facts.clone())
            };
            let stop = Stopped {
                ids: point.ids,
                metadata: span.metadata(),
                started: point.started.wall,
                stopped: stopped_at,
                duration,
                busy,
                facts,
            };
            if point.capture_root {
                drop(extensions);
                if let Some(capture) = capture {
                    self.close_captured_root(&capture, stop, last);
                }
            } else if let Some(capture) = capture {
                // Decided once, by the first layer to close the point, so
                // that each layer writes it exactly once whatever the root
                // does meanwhile on another thread.
                let write = match point.capture_kept_at_stop {
                    None => {
                        let back = capture.stopped(stop);
                        point.capture_kept_at_stop = Some(back.is_some());
                        back
                    }
                    Some(true) => Some(stop),
                    Some(false) => None,
                };
                drop(extensions);
                if let Some(stop) = write {
                    let make = |push: &mut dyn FnMut(PointEvent)| {
                        let (start, stop) = self.kept_events(stop, None);
                        if let Some(start) = start {
                            push(start);
                        }
                        push(stop);
                    };
                    self.send_kept(make, self.kept_event_count(1), &capture);
                }
            }
            self.shared.points_stopped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let slow = self
            .config
            .slow_threshold
            .is_some_and(|threshold| duration >= threshold);
        let name = self.point_name(span.metadata());
        let facts = if point.open_in == 0 {
            // The last layer to stop it: the facts are not needed any more,
            // and the point stays for the registry to drop with the span.
            self.own_facts_for_output(point.facts.take())
        } else {
            self.facts_for_output(point.facts.as_deref())
        };
        let event = stop_event(
            &point.ids,
            name,
            point.started.wall,
            stopped_at,
            duration,
            busy,
            slow,
            facts,
        );
        drop(extensions);
        self.send(event);
        self.shared.points_stopped.fetch_add(1, Ordering::Relaxed);
    }
}

// Each argument is a separate fact of the stop, from two callers that hold
// them in different shapes (a point, a captured stop).
#[allow(clippy::too_many_arguments)]
fn stop_event(
    ids: &PointIds,
    name: PointName<'static>,
    started_at: Timestamp,
    stopped_at: Timestamp,
    duration: Duration,
    busy: Duration,
    slow: bool,
    facts: Option<Box<PointFacts>>,
) -> PointEvent {
    PointEvent {
        phase: Phase::Stop,
        ids: *ids,
        name,
        timestamp: stopped_at,
        started: started_at,
        duration_nanos: crate::point::nanos_u64(duration),
        busy: MaybeBusy::known(busy),
        slow,
        facts,
    }
}

impl<S, O> Layer<S> for OsProfilerLayer<S, O>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    O: Output,
{
    #[inline]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.may_see_points() {
            self.new_span_while_active(attrs, id, ctx);
        }
    }

    #[inline]
    fn on_record(&self, id: &span::Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.may_see_points() {
            self.record_while_active(id, values, ctx);
        }
    }

    #[inline]
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() == Level::ERROR && self.may_see_points() {
            self.event_while_active(event, ctx);
        }
    }

    #[inline]
    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.has_points_alive() {
            self.busy_while_active(id, ctx, true);
        }
    }

    #[inline]
    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.has_points_alive() {
            self.busy_while_active(id, ctx, false);
        }
    }

    #[inline]
    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if self.may_see_points() {
            self.close_while_active(&id, ctx);
        }
    }

    // SAFETY: each pointer returned points to a value of exactly the type
    // whose `TypeId` was asked for (the layer itself, or its `LookupPoint`),
    // and lives as long as `self`, as `downcast_raw`'s contract requires.
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<span_ext::LookupPoint>() {
            Some(&self.lookup as *const span_ext::LookupPoint as *const ())
        } else {
            None
        }
    }
}

/// The fields whose values say how a point ended.
const STATUS_CODE_FIELD: &str = "http.status_code";
const ERROR_FIELD: &str = "error";

fn has_outcome_field(metadata: &Metadata<'_>) -> bool {
    let fields = metadata.fields();
    fields.field(STATUS_CODE_FIELD).is_some() || fields.field(ERROR_FIELD).is_some()
}

/// The least a point's fields object may hold, whatever the cap of a
/// value: room for a few small fields.
const MIN_FIELDS_OBJECT_BYTES: usize = 1024;

/// Whether every field is recorded, the cap of a value, and where cuts
/// are counted.
struct FieldJson<'a> {
    all: bool,
    max_bytes: usize,
    cut: &'a AtomicU64,
}

impl FieldJson<'_> {
    /// The most a point's fields object may hold: four values at their
    /// cap. `record()` called again and again on a long-lived span then
    /// cannot grow it without end.
    fn max_object_bytes(&self) -> usize {
        self.max_bytes
            .saturating_mul(4)
            .max(MIN_FIELDS_OBJECT_BYTES)
    }

    /// An error text as kept in the point's facts: cut past the cap, and
    /// counted.
    fn error_text(&self, text: String) -> String {
        match crate::format::cut_text(&text, self.max_bytes) {
            Some(cut) => {
                self.cut.fetch_add(1, Ordering::Relaxed);
                cut
            }
            None => text,
        }
    }
}

/// Visits `values` into the point: the outcome fields always, every field
/// into the JSON object when `fields.all` is set.
fn record_fields(point: &mut Point, values: &impl RecordValues, fields: FieldJson<'_>) {
    let marked_before = point.fields_left_out;
    let facts = point.facts_mut();
    // The object as merged below is `before` and `added` less one brace
    // each plus a comma: `added` may take what `before` left of the cap,
    // plus one byte.
    let room = match &facts.fields {
        Some(before) => fields
            .max_object_bytes()
            .saturating_add(1)
            .saturating_sub(before.len()),
        None => fields.max_object_bytes(),
    };
    let mut visitor = FieldVisitor {
        facts,
        json: fields.all.then(|| {
            JsonFields::with_max_value_bytes(fields.max_bytes).with_max_object_bytes(room)
        }),
        fields: &fields,
    };
    values.record_into(&mut visitor);
    let FieldVisitor { facts, json, .. } = visitor;
    let mut left_out = false;
    if let Some(json) = &json {
        left_out = json.members_left_out() > 0;
        let cut = json.values_cut() + json.members_left_out();
        if cut > 0 {
            fields.cut.fetch_add(cut, Ordering::Relaxed);
        }
    }
    if let Some(added) = json.and_then(JsonFields::finish) {
        match &facts.fields {
            // Fields recorded later join the object; a repeated name keeps
            // its last value, as JSON readers do. The object says once that
            // members were left out. A full object (`Span::record` in a
            // loop) stays the same `Arc`: nothing is copied.
            Some(before) => {
                if let Some(joined) = join_fields(before, &added, marked_before) {
                    facts.fields = Some(joined.into());
                }
            }
            None => facts.fields = Some(added.into()),
        }
    }
    point.fields_left_out |= left_out;
    if point.facts.as_deref() == Some(&PointFacts::default()) {
        point.facts = None;
    }
}

/// `before` and `added`, two JSON objects, as one, or `None` when `added`
/// brings nothing `before` lacks; the `fields_left_out` member, already in
/// `before` when `marked_before`, is kept once.
fn join_fields(before: &str, added: &str, marked_before: bool) -> Option<String> {
    let added = added.strip_suffix('}')?;
    let added = if marked_before {
        added.strip_suffix(LEFT_OUT_MEMBER).unwrap_or(added)
    } else {
        added
    };
    // What is left of `added` starts with `{` and ends with `,` or `{`
    // when its last member was the marker.
    let added = added.strip_prefix('{').unwrap_or(added);
    let added = added.strip_suffix(',').unwrap_or(added);
    if added.is_empty() {
        return None;
    }
    Some(format!("{},{added}}}", &before[..before.len() - 1]))
}

/// `Attributes` and `Record` both visit their values.
trait RecordValues {
    fn record_into(&self, visitor: &mut dyn Visit);
}

impl RecordValues for Attributes<'_> {
    fn record_into(&self, visitor: &mut dyn Visit) {
        self.record(visitor);
    }
}

impl RecordValues for Record<'_> {
    fn record_into(&self, visitor: &mut dyn Visit) {
        self.record(visitor);
    }
}

struct FieldVisitor<'a> {
    facts: &'a mut PointFacts,
    json: Option<JsonFields>,
    fields: &'a FieldJson<'a>,
}

impl FieldVisitor<'_> {
    fn status_code(&mut self, field: &Field, value: Option<u64>) {
        if field.name() == STATUS_CODE_FIELD {
            self.facts.status_code = value.and_then(|v| u16::try_from(v).ok());
        }
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == ERROR_FIELD {
            self.facts.error = Some(self.fields.error_text(value.to_owned()));
        }
        if let Some(json) = &mut self.json {
            json.str(field.name(), value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.status_code(field, u64::try_from(value).ok());
        if let Some(json) = &mut self.json {
            json.i64(field.name(), value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.status_code(field, Some(value));
        if let Some(json) = &mut self.json {
            json.u64(field.name(), value);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(json) = &mut self.json {
            json.f64(field.name(), value);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == ERROR_FIELD {
            self.facts.error = value.then(|| "error".to_owned());
        }
        if let Some(json) = &mut self.json {
            json.bool(field.name(), value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if field.name() == ERROR_FIELD {
            self.facts.error = Some(self.fields.error_text(value.to_string()));
        }
        if let Some(json) = &mut self.json {
            json.str(field.name(), &value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == ERROR_FIELD {
            self.facts.error = Some(self.fields.error_text(text.clone()));
        }
        if let Some(json) = &mut self.json {
            json.str(field.name(), &text);
        }
    }
}

/// The message of an `ERROR` event: its `error` field (what
/// `#[instrument(err)]` records), else its message, else its name.
#[derive(Default)]
struct ErrorMessage {
    error: Option<String>,
    message: Option<String>,
}

impl ErrorMessage {
    fn finish(self, event_name: &str) -> String {
        self.error
            .or(self.message)
            .unwrap_or_else(|| event_name.to_owned())
    }
}

impl Visit for ErrorMessage {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "error" => self.error = Some(value.to_owned()),
            "message" => self.message = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if field.name() == "error" {
            self.error = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "error" => self.error = Some(format!("{value:?}")),
            "message" => self.message = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl Profile {
    /// Makes the span created by `make_root` the root trace point of this
    /// profile, and returns it.
    ///
    /// This is the trusted way in: a batch job, a queue consumer or a test
    /// calls it directly, and the `tower` middleware calls
    /// [`start_request`](Self::start_request) for a request whose token
    /// verified. The root gets this profile's `base_id`, the caller's
    /// `parent_id` (or `base_id`), and a fresh `trace_id`; every span
    /// created below it is a trace point too.
    ///
    /// The first span created inside `make_root` on this thread becomes the
    /// root, so build the span there and nothing else. If no subscriber with
    /// an [`OsProfilerLayer`] sees a new span (for example because a filter
    /// disabled it), nothing is profiled: check with
    /// [`ProfileExt::point_ids`] on the returned span.
    pub fn start(self, make_root: impl FnOnce() -> Span) -> Span {
        start_root(self, None, make_root)
    }

    /// As [`start`](Self::start), for the root of an incoming request:
    /// sinks that record the request (OTLP, Redis) get its method, path and
    /// scheme, as osprofiler's WSGI middleware records them.
    pub fn start_request(self, request: RequestInfo, make_root: impl FnOnce() -> Span) -> Span {
        start_root(self, Some(request), make_root)
    }
}

fn start_root(
    profile: Profile,
    request: Option<RequestInfo>,
    make_root: impl FnOnce() -> Span,
) -> Span {
    let pending = PendingRoot {
        trace_info: *profile.trace_info(),
        signer: Some(profile.signer().clone()),
        request,
        capture: None,
    };
    start_pending(pending, make_root)
}

/// Starts the root of a captured request (see [`Capture::start`](crate::Capture::start)):
/// a fresh `base_id`, no caller, downstream calls signed only by the
/// policy's opt-in signer.
pub(crate) fn start_captured(
    capture: Arc<Captured>,
    signer: Option<Signer>,
    request: Option<RequestInfo>,
    make_root: impl FnOnce() -> Span,
) -> Span {
    let pending = PendingRoot {
        trace_info: crate::TraceInfo::new_request(),
        signer,
        request,
        capture: Some(capture),
    };
    start_pending(pending, make_root)
}

fn start_pending(pending: PendingRoot, make_root: impl FnOnce() -> Span) -> Span {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            PENDING_ROOT.with(Cell::take);
            STARTING_ROOTS.fetch_sub(1, Ordering::Release);
        }
    }
    PENDING_ROOT.with(|cell| cell.set(Some(Box::new(pending))));
    STARTING_ROOTS.fetch_add(1, Ordering::Release);
    let _reset = Reset;
    make_root()
}

#[cfg(test)]
mod tests {
    use super::join_fields;

    #[test]
    fn joined_fields_say_once_that_members_were_left_out() {
        let marked = r#"{"a":1,"fields_left_out":true}"#;
        let join = |before: &str, added: &str| {
            join_fields(before, added, before.contains(r#""fields_left_out""#))
        };
        assert_eq!(
            join(r#"{"a":1}"#, r#"{"b":2}"#).as_deref(),
            Some(r#"{"a":1,"b":2}"#)
        );
        assert_eq!(
            join(r#"{"a":1}"#, r#"{"b":2,"fields_left_out":true}"#).as_deref(),
            Some(r#"{"a":1,"b":2,"fields_left_out":true}"#)
        );
        // Nothing new: the object stays as it is (no copy).
        assert_eq!(join(marked, r#"{"fields_left_out":true}"#), None);
        assert_eq!(join(marked, "{}"), None);
        assert_eq!(
            join(marked, r#"{"b":2,"fields_left_out":true}"#).as_deref(),
            Some(r#"{"a":1,"fields_left_out":true,"b":2}"#)
        );
        for joined in [
            join(r#"{"a":1}"#, r#"{"fields_left_out":true}"#),
            join(marked, r#"{"b":2}"#),
        ] {
            let joined = joined.expect("something added");
            let value: serde_json::Value = serde_json::from_str(&joined).expect(&joined);
            assert_eq!(value["fields_left_out"], true, "{joined}");
        }
    }
}
