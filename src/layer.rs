//! The [`OsProfilerLayer`]: turns the spans of profiled requests into
//! osprofiler trace points and writes their start and stop lines.
//!
//! This module owns the per-span profile data (kept in the registry's span
//! extensions), the decision whether a new span belongs to a profiled request,
//! starting a profile from code ([`Profile::start`]), and the signed headers
//! for the current span ([`current_trace_headers`], [`ProfileExt`]).
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
//! no trace point is alive anywhere in the process, does one atomic load
//! when the span opens and one when it closes.
//!
//! # Ids and lines
//!
//! A trace point inherits `base_id`; its `parent_id` is its parent's
//! `trace_id` (for a request root, the caller's `parent_id`, or else
//! `base_id`); its `trace_id` is a fresh UUID v4 (never derived from the
//! registry's span id, which is recycled). The `-start` line is written when
//! the span is created, the `-stop` line when it closes, with the duration
//! measured on the monotonic clock, so entering and leaving a span on many
//! polls of a future changes nothing and a wall-clock step cannot produce a
//! negative duration.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write as _;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::span::{self, Attributes};
use tracing::{Dispatch, Metadata, Span, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::format::{JsonFields, PendingLine, Phase, PointIds, PointName, Timestamp};
use crate::token::{Profile, Signer, TraceHeaders, TraceInfo};
use crate::writer::ProfileWriter;

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

/// A [`Layer`] that writes osprofiler trace points for the spans of profiled
/// requests, as Mistral profiler log lines.
///
/// # Configuration
///
/// | setting | default | setter |
/// |---|---|---|
/// | where lines go | the `MakeWriter` given to [`new`](Self::new) | [`with_writer`](Self::with_writer) |
/// | point name | the span name | [`with_name_source`](Self::with_name_source) |
/// | slow marker ` <- !!!` | on stop lines of 0.5 s or more (Mistral's rule) | [`with_slow_threshold`](Self::with_slow_threshold) |
/// | span fields as JSON on start lines | off (fields can hold secrets) | [`with_fields`](Self::with_fields) |
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
pub struct OsProfilerLayer<S, W> {
    make_writer: W,
    /// `make_writer` itself when it is a [`ProfileWriter`]: lines then go to
    /// its thread unformatted (see [`PendingLine`]).
    pending_writer: Option<ProfileWriter>,
    config: Config,
    shared: Arc<Shared>,
    lookup: LookupPoint,
    _subscriber: PhantomData<fn(S)>,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    name_source: NameSource,
    slow_threshold: Option<Duration>,
    record_fields: bool,
}

/// State shared between the layer and the [`LayerStats`] handles.
#[derive(Debug, Default)]
struct Shared {
    /// Live trace points in this layer (also counted in [`ACTIVE`]).
    live_points: AtomicUsize,
    points_started: AtomicU64,
    write_errors: AtomicU64,
    /// Set while the writer is failing, so that an outage is reported once.
    failing: AtomicBool,
}

/// Counters of an [`OsProfilerLayer`], readable while the layer runs.
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

    /// Trace points alive now (started, not yet closed).
    #[must_use]
    pub fn live_points(&self) -> usize {
        self.shared.live_points.load(Ordering::Relaxed)
    }

    /// Lines the writer refused (an I/O error). A failure is reported on
    /// standard error once per outage, not once per line.
    #[must_use]
    pub fn write_errors(&self) -> u64 {
        self.shared.write_errors.load(Ordering::Relaxed)
    }
}

/// The profile data of one trace point, in the span's extensions.
struct Point {
    ids: PointIds,
    started: Instant,
    signer: Signer,
}

/// Type-erased access to the points, so that code holding only a
/// [`Dispatch`] (via [`Span::with_subscriber`]) can read a span's ids.
/// Found through `Layer::downcast_raw`, as tracing-opentelemetry does.
#[derive(Clone, Copy)]
struct LookupPoint(fn(&Dispatch, &span::Id) -> Option<(PointIds, Signer)>);

thread_local! {
    /// The profile that [`Profile::start`] hands to the next span created on
    /// this thread.
    static PENDING_ROOT: Cell<Option<Profile>> = const { Cell::new(None) };
    /// A reusable line buffer, so that writing a line does not allocate.
    static LINE_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Live trace points of every layer in the process, plus threads inside
/// [`Profile::start`]. While it is zero no new span can be a trace point and
/// no closing span can be one, so the hot path for unprofiled spans is this
/// one load.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

impl<S, W> OsProfilerLayer<S, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// A layer that writes to `make_writer`, with the defaults of the table
    /// above.
    ///
    /// Use [`writer::RollingFile`](crate::writer::RollingFile) for a rolling
    /// file written by a background thread: its [`ProfileWriter`] is
    /// recognized, and lines are handed to it unformatted (its thread
    /// formats them). Any other [`MakeWriter`] gets each line formatted, as
    /// one `write_all` call on a fresh writer.
    #[must_use]
    pub fn new(make_writer: W) -> Self {
        OsProfilerLayer {
            pending_writer: as_profile_writer(&make_writer),
            make_writer,
            config: Config {
                name_source: NameSource::SpanName,
                slow_threshold: Some(Duration::from_millis(500)),
                record_fields: false,
            },
            shared: Arc::new(Shared::default()),
            lookup: LookupPoint(lookup_point::<S>),
            _subscriber: PhantomData,
        }
    }
}

impl<S, W> OsProfilerLayer<S, W> {
    /// Writes to another `MakeWriter`.
    #[must_use]
    pub fn with_writer<W2>(self, make_writer: W2) -> OsProfilerLayer<S, W2>
    where
        W2: for<'w> MakeWriter<'w> + 'static,
    {
        OsProfilerLayer {
            pending_writer: as_profile_writer(&make_writer),
            make_writer,
            config: self.config,
            shared: self.shared,
            lookup: self.lookup,
            _subscriber: PhantomData,
        }
    }

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

    /// Writes span fields as a JSON object after the name on start lines
    /// (default: off, since fields can hold secrets).
    #[must_use]
    pub fn with_fields(mut self, record: bool) -> Self {
        self.config.record_fields = record;
        self
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

impl<S, W> fmt::Debug for OsProfilerLayer<S, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OsProfilerLayer")
            .field("config", &self.config)
            .field(
                "live_points",
                &self.shared.live_points.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

fn as_profile_writer<W: 'static>(make_writer: &W) -> Option<ProfileWriter> {
    (make_writer as &dyn std::any::Any)
        .downcast_ref::<ProfileWriter>()
        .cloned()
}

fn lookup_point<S>(dispatch: &Dispatch, id: &span::Id) -> Option<(PointIds, Signer)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let subscriber = dispatch.downcast_ref::<S>()?;
    let span = subscriber.span(id)?;
    let extensions = span.extensions();
    let point = extensions.get::<Point>()?;
    Some((point.ids, point.signer.clone()))
}

impl<S, W> OsProfilerLayer<S, W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn point_name(&self, metadata: &'static Metadata<'static>) -> PointName<'static> {
        match self.config.name_source {
            NameSource::SpanName => PointName::new(metadata.name()),
            NameSource::TargetAndName => PointName::with_target(metadata.target(), metadata.name()),
        }
    }

    fn write_line(&self, line: PendingLine) {
        let result = match &self.pending_writer {
            Some(writer) => writer.send_pending(line),
            None => LINE_BUFFER.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => {
                    buf.clear();
                    line.write_to(&mut buf);
                    self.make_writer.make_writer().write_all(&buf)
                }
                // Only if the writer itself creates spans that are profiled.
                Err(_) => {
                    let mut buf = Vec::with_capacity(256);
                    line.write_to(&mut buf);
                    self.make_writer.make_writer().write_all(&buf)
                }
            }),
        };
        match result {
            Ok(()) => {
                if self.shared.failing.load(Ordering::Relaxed)
                    && self.shared.failing.swap(false, Ordering::Relaxed)
                {
                    eprintln!("tracing-osprofiler: writing profile lines again");
                }
            }
            Err(error) => {
                self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
                if !self.shared.failing.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "tracing-osprofiler: cannot write profile lines ({error}); \
                         lines are dropped until the writer works again"
                    );
                }
            }
        }
    }

    fn start_point(
        &self,
        metadata: &'static Metadata<'static>,
        point: &Point,
        fields: Option<String>,
    ) {
        ACTIVE.fetch_add(1, Ordering::AcqRel);
        self.shared.live_points.fetch_add(1, Ordering::Relaxed);
        self.shared.points_started.fetch_add(1, Ordering::Relaxed);
        self.write_line(PendingLine {
            phase: Phase::Start,
            timestamp: Timestamp::now(),
            duration: Duration::ZERO,
            ids: point.ids,
            name: self.point_name(metadata),
            fields,
            slow: false,
        });
    }
}

impl<S, W> OsProfilerLayer<S, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    // Out of line: the unprofiled path, inlined into the registry's, is only
    // the load of `ACTIVE`.
    #[inline(never)]
    fn new_span_while_active(&self, attrs: &Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let pending_root = PENDING_ROOT.with(Cell::take);
        let Some(span) = ctx.span(id) else { return };
        let point = match pending_root {
            Some(profile) => {
                let info = profile.trace_info();
                Point {
                    ids: PointIds {
                        base_id: info.base_id(),
                        parent_id: info.root_parent_id(),
                        trace_id: crate::Id::new_v4(),
                    },
                    started: Instant::now(),
                    signer: profile.signer().clone(),
                }
            }
            None => {
                let Some(parent) = span.parent() else { return };
                let extensions = parent.extensions();
                let Some(parent_point) = extensions.get::<Point>() else {
                    return;
                };
                Point {
                    ids: PointIds {
                        base_id: parent_point.ids.base_id,
                        parent_id: parent_point.ids.trace_id,
                        trace_id: crate::Id::new_v4(),
                    },
                    started: Instant::now(),
                    signer: parent_point.signer.clone(),
                }
            }
        };
        let fields = if self.config.record_fields {
            let mut visitor = FieldVisitor(JsonFields::new());
            attrs.record(&mut visitor);
            visitor.0.finish()
        } else {
            None
        };
        self.start_point(span.metadata(), &point, fields);
        span.extensions_mut().insert(point);
    }

    #[inline(never)]
    fn close_while_active(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(point) = span.extensions_mut().remove::<Point>() else {
            return;
        };
        let duration = point.started.elapsed();
        let slow = self
            .config
            .slow_threshold
            .is_some_and(|threshold| duration >= threshold);
        self.write_line(PendingLine {
            phase: Phase::Stop,
            timestamp: Timestamp::now(),
            duration,
            ids: point.ids,
            name: self.point_name(span.metadata()),
            fields: None,
            slow,
        });
        self.shared.live_points.fetch_sub(1, Ordering::Relaxed);
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S, W> Layer<S> for OsProfilerLayer<S, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    #[inline]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if ACTIVE.load(Ordering::Acquire) != 0 {
            self.new_span_while_active(attrs, id, ctx);
        }
    }

    #[inline]
    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if ACTIVE.load(Ordering::Acquire) != 0 {
            self.close_while_active(id, ctx);
        }
    }

    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == std::any::TypeId::of::<LookupPoint>() {
            Some(&self.lookup as *const LookupPoint as *const ())
        } else {
            None
        }
    }
}

struct FieldVisitor(JsonFields);

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.str(field.name(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.i64(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.u64(field.name(), value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.f64(field.name(), value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.bool(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.str(field.name(), &format!("{value:?}"));
    }
}

impl Profile {
    /// Makes the span created by `make_root` the root trace point of this
    /// profile, and returns it.
    ///
    /// This is the trusted way in: the middleware calls it for a request whose
    /// token verified, and a batch job, a queue consumer or a test can call it
    /// directly. The root gets this profile's `base_id`, the caller's
    /// `parent_id` (or `base_id`), and a fresh `trace_id`; every span created
    /// below it is a trace point too.
    ///
    /// The first span created inside `make_root` on this thread becomes the
    /// root, so build the span there and nothing else. If no subscriber with
    /// an [`OsProfilerLayer`] sees a new span (for example because a filter
    /// disabled it), nothing is profiled.
    pub fn start(self, make_root: impl FnOnce() -> Span) -> Span {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                PENDING_ROOT.with(Cell::take);
                ACTIVE.fetch_sub(1, Ordering::Release);
            }
        }
        PENDING_ROOT.with(|cell| cell.set(Some(self)));
        ACTIVE.fetch_add(1, Ordering::Release);
        let _reset = Reset;
        make_root()
    }
}

/// Access to the osprofiler data of a [`Span`].
///
/// ```
/// use tracing_osprofiler::ProfileExt;
///
/// // Outside a profiled request there is nothing to pass on.
/// assert!(tracing::Span::current().trace_headers().is_none());
/// ```
pub trait ProfileExt {
    /// The ids of this span's trace point, if it is one.
    fn point_ids(&self) -> Option<PointIds>;

    /// Signed headers for a call made from this span: the request's
    /// `base_id`, `parent_id` = this point's `trace_id`, signed with the
    /// request's key and algorithm. `None` unless the span is a trace point.
    fn trace_headers(&self) -> Option<TraceHeaders>;
}

impl ProfileExt for Span {
    fn point_ids(&self) -> Option<PointIds> {
        lookup(self).map(|(ids, _)| ids)
    }

    fn trace_headers(&self) -> Option<TraceHeaders> {
        lookup(self)
            .map(|(ids, signer)| signer.sign(&TraceInfo::new(ids.base_id, Some(ids.trace_id))))
    }
}

fn lookup(span: &Span) -> Option<(PointIds, Signer)> {
    span.with_subscriber(|(id, dispatch)| {
        let lookup = dispatch.downcast_ref::<LookupPoint>()?;
        (lookup.0)(dispatch, id)
    })
    .flatten()
}

/// Signed headers for a call made from the current span (see
/// [`ProfileExt::trace_headers`]), as `(name, value)` pairs through
/// [`TraceHeaders::iter`]. `None` outside a profiled request.
#[must_use]
pub fn current_trace_headers() -> Option<TraceHeaders> {
    Span::current().trace_headers()
}
