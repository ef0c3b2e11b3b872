//! Tail capture: requests nobody signed, recorded in memory and kept only
//! when they turn out slow or failed.
//!
//! This module owns the operator's [`CapturePolicy`], the [`Capture`] it
//! builds (shared by the middleware and by code that starts roots of its
//! own), the per-request buffer and its budgets (points per request, bytes
//! over all requests, kept requests per second), the keep or discard
//! decision made when a captured root closes, and the counters of every
//! outcome ([`CaptureStats`]). The layer (`src/layer/mod.rs`) calls into it
//! for the points of a captured request; the writer never sees a point of a
//! request that is discarded.
//!
//! # The life of a captured request
//!
//! 1. [`Capture::start_request`] (the `tower` and `actix` middlewares, for
//!    a request without a valid token) or [`Capture::start`] (a queue consumer, a
//!    batch job): one request in `sample_one_in` is captured, if the memory
//!    budget has room for it; the others are served exactly as without
//!    capture.
//! 2. Its root and every span below it are trace points with osprofiler ids,
//!    as for a signed request, but nothing is handed to the writer: the stop
//!    of each point that ends waits in the request's buffer (its start is
//!    rebuilt from the stop if the request is kept, so a point costs one
//!    buffered record).
//! 3. When the root closes the request is decided: **kept** if it lasted at
//!    least `keep_slower_than`, or (with `keep_errors`) its root answered
//!    with a status of 500 or more, recorded an `error`, or any of its
//!    points held an `ERROR` event or an `error` field; then the per-second
//!    cap applies. Otherwise it is **discarded** and its buffer freed.
//! 4. A kept request is handed to every sink of every layer as one batch:
//!    the whole tree, the root marked with why it was kept and how many
//!    points did not fit in the buffer. Points still open then follow the
//!    decision when they end: written if kept, dropped if discarded.
//!
//! A request both slow and failed is kept as `error`.

use std::fmt;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{Metadata, Span};

use crate::format::{PointIds, Timestamp};
use crate::point::{PointFacts, RequestInfo};
use crate::token::Signer;

/// Why a captured request was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeepReason {
    /// Its root lasted at least the policy's threshold.
    Slow,
    /// It failed: a status of 500 or more, an `error`, an `ERROR` event.
    Error,
}

impl KeepReason {
    /// `slow` or `error`, as the sinks write it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            KeepReason::Slow => "slow",
            KeepReason::Error => "error",
        }
    }
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the root of a kept request says about its capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CaptureMark {
    pub(crate) reason: KeepReason,
    /// Points of the request that did not fit in its buffer.
    pub(crate) truncated: u64,
}

impl CaptureMark {
    /// The JSON members a sink adds to the root's fields or attributes:
    /// `"capture.kept":"slow"` and, when points were left out,
    /// `"capture.truncated":N`.
    pub(crate) fn json_members(&self) -> String {
        if self.truncated == 0 {
            format!("\"{KEPT_KEY}\":\"{}\"", self.reason)
        } else {
            format!(
                "\"{KEPT_KEY}\":\"{}\",\"{TRUNCATED_KEY}\":{}",
                self.reason, self.truncated
            )
        }
    }
}

/// The key of the reason in a kept root's fields, OTLP attributes and Redis
/// info.
pub const KEPT_KEY: &str = "capture.kept";
/// The key of the number of points left out of a kept root's tree.
pub const TRUNCATED_KEY: &str = "capture.truncated";

/// The operator's tail-capture settings; [`build`](Self::build) makes the
/// [`Capture`] to give to the middleware
/// (`ProfilingLayer::with_capture`) or to call for roots of your own.
///
/// Capture is off unless a `Capture` is built and used: a service without
/// one records only signed requests.
///
/// | setting | default | setter |
/// |---|---|---|
/// | keep a request whose root lasted at least | never (`None`) | [`with_keep_slower_than`](Self::with_keep_slower_than) |
/// | keep a failed request (status ≥ 500, `error`, `ERROR` event) | no | [`with_keep_errors`](Self::with_keep_errors) |
/// | capture one request in | 1 (every request) | [`with_sample_one_in`](Self::with_sample_one_in) |
/// | points buffered per request (the rest counted, the tree marked truncated) | 1000 | [`with_max_points_per_request`](Self::with_max_points_per_request) |
/// | memory of all requests being captured (beyond it new ones are not captured) | 16 MiB | [`with_memory_budget`](Self::with_memory_budget) |
/// | kept requests per second (the rest discarded and counted) | 10 | [`with_max_kept_per_second`](Self::with_max_kept_per_second) |
/// | signer of the downstream calls of a captured request | none: not signed | [`with_signed_downstream`](Self::with_signed_downstream) |
///
/// A policy that keeps nothing (neither threshold nor errors) is reported on
/// standard error when built: it would cost CPU and keep nothing.
///
/// ```
/// use std::time::Duration;
/// use tracing_osprofiler::CapturePolicy;
///
/// let capture = CapturePolicy::new()
///     .with_keep_slower_than(Some(Duration::from_millis(150)))
///     .with_keep_errors(true)
///     .build();
/// assert_eq!(capture.stats().captured(), 0);
/// ```
#[derive(Clone)]
#[must_use = "a CapturePolicy does nothing until built and used"]
pub struct CapturePolicy {
    keep_slower_than: Option<Duration>,
    keep_errors: bool,
    sample_one_in: u32,
    max_points_per_request: usize,
    memory_budget: usize,
    max_kept_per_second: u32,
    signed_downstream: Option<Signer>,
}

impl Default for CapturePolicy {
    fn default() -> Self {
        CapturePolicy {
            keep_slower_than: None,
            keep_errors: false,
            sample_one_in: 1,
            max_points_per_request: 1000,
            memory_budget: 16 * 1024 * 1024,
            max_kept_per_second: 10,
            signed_downstream: None,
        }
    }
}

impl fmt::Debug for CapturePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapturePolicy")
            .field("keep_slower_than", &self.keep_slower_than)
            .field("keep_errors", &self.keep_errors)
            .field("sample_one_in", &self.sample_one_in)
            .field("max_points_per_request", &self.max_points_per_request)
            .field("memory_budget", &self.memory_budget)
            .field("max_kept_per_second", &self.max_kept_per_second)
            // The signer holds a key: say only whether there is one.
            .field("signed_downstream", &self.signed_downstream.is_some())
            .finish()
    }
}

impl CapturePolicy {
    /// A policy with the defaults of the table above.
    pub fn new() -> Self {
        CapturePolicy::default()
    }

    /// Keeps a request whose root lasted at least `threshold` (`None`:
    /// never for its duration).
    pub fn with_keep_slower_than(mut self, threshold: Option<Duration>) -> Self {
        self.keep_slower_than = threshold;
        self
    }

    /// Keeps a request that failed: its root's status of 500 or more or
    /// `error`, or an `ERROR` event or `error` field in any of its points.
    pub fn with_keep_errors(mut self, keep: bool) -> Self {
        self.keep_errors = keep;
        self
    }

    /// Captures one request in `n` (the first, then every `n`th); the others
    /// cost what an unprofiled request costs. `0` is taken as `1`.
    pub fn with_sample_one_in(mut self, n: u32) -> Self {
        self.sample_one_in = n.max(1);
        self
    }

    /// At most `max` points of one request wait in memory; the points beyond
    /// are counted, and a kept tree says how many it lacks.
    pub fn with_max_points_per_request(mut self, max: usize) -> Self {
        self.max_points_per_request = max;
        self
    }

    /// The memory, in bytes, that all requests being captured may hold
    /// together (their buffered points, and a fixed share per request).
    /// Beyond it a new request is not captured and a point is not buffered,
    /// both counted.
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// At most `max` captured requests are kept in any one second (counted
    /// from the first kept one); the others are discarded and counted as
    /// rate limited, so that a service slowing down as a whole does not
    /// flood its sinks. `0` keeps none.
    pub fn with_max_kept_per_second(mut self, max: u32) -> Self {
        self.max_kept_per_second = max;
        self
    }

    /// Signs the downstream calls of captured requests with `signer`
    /// (default: `None`, they are not signed).
    ///
    /// A captured request has no token, and when it calls another service
    /// nobody knows yet whether it will be kept. Signing its calls makes the
    /// downstream services profile them in full (a signed request is always
    /// written), whether or not this service keeps the request: only for
    /// fleets that accept that volume. See docs/security.md.
    pub fn with_signed_downstream(mut self, signer: Option<Signer>) -> Self {
        self.signed_downstream = signer;
        self
    }

    /// The [`Capture`] of this policy.
    pub fn build(self) -> Capture {
        if self.keep_slower_than.is_none() && !self.keep_errors {
            eprintln!(
                "tracing-osprofiler: the capture policy keeps no request (set a threshold with \
                 with_keep_slower_than or keep errors with with_keep_errors)"
            );
        }
        Capture {
            inner: Arc::new(Inner {
                policy: self,
                counters: Counters::default(),
                bytes_in_use: AtomicUsize::new(0),
                sampled: AtomicU64::new(0),
                rate: Mutex::new(RateWindow {
                    since: None,
                    kept: 0,
                }),
            }),
        }
    }
}

/// A built [`CapturePolicy`]: starts captured roots and counts what became
/// of them. Cheap to clone (clones share the budget and the counters).
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Inner>,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("policy", &self.inner.policy)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Capture {
    /// A handle on the counters, valid as long as anyone holds it.
    #[must_use]
    pub fn stats(&self) -> CaptureStats {
        CaptureStats {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Makes the span created by `make_root` the root of a captured request
    /// (if this request is sampled and the memory budget has room), and
    /// returns it: for roots that are not HTTP requests, such as a queue
    /// consumer's message.
    ///
    /// As with [`Profile::start`](crate::Profile::start), build the span in
    /// `make_root` and nothing else. A request that is not captured gets the
    /// span as `make_root` made it, unprofiled.
    pub fn start(&self, make_root: impl FnOnce() -> Span) -> Span {
        self.start_inner(None, make_root)
    }

    /// As [`start`](Self::start), for the root of an incoming request: a
    /// kept request's root carries its method, path and scheme to the sinks
    /// that record them, as a signed one does.
    pub fn start_request(&self, request: RequestInfo, make_root: impl FnOnce() -> Span) -> Span {
        self.start_inner(Some(request), make_root)
    }

    fn start_inner(&self, request: Option<RequestInfo>, make_root: impl FnOnce() -> Span) -> Span {
        match self.admit() {
            Some(captured) => self.start_admitted(captured, request, make_root),
            None => make_root(),
        }
    }

    /// Whether the next request is captured: sampled in, and the memory
    /// budget has room for it (each refusal counted). The middlewares ask
    /// before building a root span, so a request that is not captured costs
    /// no span.
    pub(crate) fn admit(&self) -> Option<Arc<Captured>> {
        let inner = &self.inner;
        let n = u64::from(inner.policy.sample_one_in);
        if n > 1 && inner.sampled.fetch_add(1, Ordering::Relaxed) % n != 0 {
            inner.counters.sampled_out.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let Some(captured) = Captured::new(Arc::clone(inner)) else {
            inner.counters.over_budget.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        Some(Arc::new(captured))
    }

    /// Starts the root of a request [`admit`](Self::admit) let in.
    pub(crate) fn start_admitted(
        &self,
        captured: Arc<Captured>,
        request: Option<RequestInfo>,
        make_root: impl FnOnce() -> Span,
    ) -> Span {
        let signer = self.inner.policy.signed_downstream.clone();
        crate::layer::start_captured(captured, signer, request, make_root)
    }
}

/// The counters of a [`Capture`].
///
/// Every captured request ends as exactly one of kept (slow or error),
/// discarded, or rate limited, once its root closes; `captured` minus those
/// is the number open now.
#[derive(Clone)]
pub struct CaptureStats {
    inner: Arc<Inner>,
}

impl fmt::Debug for CaptureStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureStats")
            .field("captured", &self.captured())
            .field("kept_slow", &self.kept_slow())
            .field("kept_error", &self.kept_error())
            .field("discarded", &self.discarded())
            .field("rate_limited", &self.rate_limited())
            .field("truncated", &self.truncated())
            .field("over_budget", &self.over_budget())
            .field("sampled_out", &self.sampled_out())
            .field("kept_refused", &self.kept_refused())
            .field("bytes_in_use", &self.bytes_in_use())
            .finish()
    }
}

macro_rules! counter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(&self) -> u64 {
            self.inner.counters.$name.load(Ordering::Relaxed)
        }
    };
}

impl CaptureStats {
    counter!(
        /// Requests captured: their root became a trace point recorded in
        /// memory.
        captured
    );
    counter!(
        /// Captured requests kept because they were slow (and did not fail).
        kept_slow
    );
    counter!(
        /// Captured requests kept because they failed.
        kept_error
    );
    counter!(
        /// Captured requests neither slow nor failed: dropped from memory,
        /// nothing written.
        discarded
    );
    counter!(
        /// Captured requests that met the policy but were over the cap of
        /// kept requests per second, and were discarded.
        rate_limited
    );
    counter!(
        /// Points of captured requests that were not buffered: over the
        /// per-request cap, or over the memory budget.
        truncated
    );
    counter!(
        /// Requests not captured because the memory budget was spent.
        over_budget
    );
    counter!(
        /// Requests not captured because of `sample_one_in`.
        sampled_out
    );
    counter!(
        /// Kept trees a layer's output refused whole (its writer was shut
        /// down): one per layer and tree; the events are also in the
        /// layer's `events_refused`.
        kept_refused
    );

    /// Captured requests kept, for either reason.
    #[must_use]
    pub fn kept(&self) -> u64 {
        self.kept_slow() + self.kept_error()
    }

    /// Bytes held now by the requests being captured.
    #[must_use]
    pub fn bytes_in_use(&self) -> usize {
        self.inner.bytes_in_use.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Counters {
    captured: AtomicU64,
    kept_slow: AtomicU64,
    kept_error: AtomicU64,
    discarded: AtomicU64,
    rate_limited: AtomicU64,
    truncated: AtomicU64,
    over_budget: AtomicU64,
    sampled_out: AtomicU64,
    kept_refused: AtomicU64,
}

struct Inner {
    policy: CapturePolicy,
    counters: Counters,
    bytes_in_use: AtomicUsize,
    /// Requests seen, for `sample_one_in`.
    sampled: AtomicU64,
    rate: Mutex<RateWindow>,
}

/// The second the kept cap counts in.
struct RateWindow {
    since: Option<Instant>,
    kept: u32,
}

impl Inner {
    /// Takes `bytes` from the budget, unless that would exceed it.
    fn reserve(&self, bytes: usize) -> bool {
        let budget = self.policy.memory_budget;
        self.bytes_in_use
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= budget)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        if bytes != 0 {
            self.bytes_in_use.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Whether one more request may be kept this second.
    fn allow_kept(&self) -> bool {
        let max = self.policy.max_kept_per_second;
        if max == 0 {
            return false;
        }
        let mut window = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match window.since {
            Some(since) if now.duration_since(since) < Duration::from_secs(1) => {
                if window.kept >= max {
                    return false;
                }
                window.kept += 1;
            }
            _ => {
                window.since = Some(now);
                window.kept = 1;
            }
        }
        true
    }
}

/// The bytes a captured request holds before any point: its state and the
/// root's record.
const REQUEST_BYTES: usize = mem::size_of::<Captured>() + mem::size_of::<Stopped>();

/// The budget a request takes at a time, so that buffering a point rarely
/// touches the shared counter.
const CHUNK_BYTES: usize = 16 * 1024;

/// The stop of a point of a captured request, as the layer hands it over:
/// everything a layer needs to write its start and stop later.
#[derive(Clone)]
pub(crate) struct Stopped {
    pub(crate) ids: PointIds,
    pub(crate) metadata: &'static Metadata<'static>,
    pub(crate) started: Timestamp,
    pub(crate) stopped: Timestamp,
    pub(crate) duration: Duration,
    pub(crate) busy: Duration,
    /// All the facts the point gathered (each layer keeps what it writes).
    pub(crate) facts: Option<Box<PointFacts>>,
}

impl Stopped {
    fn heap_bytes(&self) -> usize {
        let Some(facts) = &self.facts else { return 0 };
        let request = facts.request.as_ref().map_or(0, |r| {
            r.method().len() + r.path().len() + r.scheme().len() + r.query().map_or(0, str::len)
        });
        let call = facts
            .call
            .as_ref()
            .map_or(0, |c| c.method().len() + c.host().len());
        mem::size_of::<PointFacts>()
            + request
            + call
            + facts.fields.as_ref().map_or(0, |f| f.len())
            + facts.error.as_ref().map_or(0, String::len)
    }
}

/// What became of a captured request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Its root is open.
    Pending,
    /// Written, with this mark on its root.
    Kept(CaptureMark),
    /// Dropped.
    Discarded,
}

/// One captured request: its buffer and its decision, shared by all its
/// points (each holds an `Arc`).
pub(crate) struct Captured {
    capture: Arc<Inner>,
    /// An `ERROR` event was seen in one of its points.
    error_seen: AtomicBool,
    state: Mutex<State>,
}

struct State {
    decision: Decision,
    buffer: Vec<Stopped>,
    truncated: u64,
    /// Bytes of the budget this request took, and how many it uses.
    reserved: usize,
    used: usize,
}

impl Captured {
    fn new(capture: Arc<Inner>) -> Option<Self> {
        if !capture.reserve(REQUEST_BYTES) {
            return None;
        }
        Some(Captured {
            capture,
            error_seen: AtomicBool::new(false),
            state: Mutex::new(State {
                decision: Decision::Pending,
                buffer: Vec::new(),
                truncated: 0,
                reserved: REQUEST_BYTES,
                used: REQUEST_BYTES,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent state: every
        // change is one assignment or push.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The root became a trace point: the request is captured.
    pub(crate) fn count_captured(&self) {
        self.capture
            .counters
            .captured
            .fetch_add(1, Ordering::Relaxed);
    }

    /// An `ERROR` event happened in one of its points.
    pub(crate) fn saw_error(&self) {
        if !self.error_seen.load(Ordering::Relaxed) {
            self.error_seen.store(true, Ordering::Relaxed);
        }
    }

    /// A point below the root stopped (the first layer to close it says
    /// so, once). Returns
    /// the stop back when the request is kept already, for the caller to
    /// write; buffers it while the request is open; drops it when discarded.
    pub(crate) fn stopped(&self, stop: Stopped) -> Option<Stopped> {
        if stop.facts.as_ref().is_some_and(|f| f.error.is_some()) {
            self.saw_error();
        }
        let mut state = self.lock();
        match state.decision {
            Decision::Pending => {}
            Decision::Kept(_) => return Some(stop),
            Decision::Discarded => return None,
        }
        let policy = &self.capture.policy;
        if state.buffer.len() >= policy.max_points_per_request {
            return self.truncate(state);
        }
        let bytes = mem::size_of::<Stopped>() + stop.heap_bytes();
        if state.used + bytes > state.reserved {
            let chunk = CHUNK_BYTES.max(bytes);
            if !self.capture.reserve(chunk) {
                return self.truncate(state);
            }
            state.reserved += chunk;
        }
        state.used += bytes;
        if state.buffer.capacity() == 0 {
            // Most requests hold tens of points: skip the first doublings
            // (each a copy of the whole buffer) on the request's thread.
            state
                .buffer
                .reserve_exact(policy.max_points_per_request.min(32));
        }
        state.buffer.push(stop);
        None
    }

    /// Leaves a point out of the request's buffer (its cap or the memory
    /// budget): the tree will say it is truncated.
    fn truncate(&self, mut state: std::sync::MutexGuard<'_, State>) -> Option<Stopped> {
        state.truncated += 1;
        drop(state);
        self.capture
            .counters
            .truncated
            .fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Decides the request when its root stops (the first layer to close
    /// the root decides; the others read the decision).
    pub(crate) fn decide(&self, root: &Stopped) -> Decision {
        let mut state = self.lock();
        if state.decision != Decision::Pending {
            return state.decision;
        }
        let policy = &self.capture.policy;
        let counters = &self.capture.counters;
        let failed = policy.keep_errors
            && (self.error_seen.load(Ordering::Relaxed)
                || root.facts.as_ref().is_some_and(|f| f.failed()));
        let slow = policy
            .keep_slower_than
            .is_some_and(|threshold| root.duration >= threshold);
        let reason = if failed {
            Some(KeepReason::Error)
        } else if slow {
            Some(KeepReason::Slow)
        } else {
            None
        };
        state.decision = match reason {
            Some(reason) if self.capture.allow_kept() => {
                match reason {
                    KeepReason::Error => &counters.kept_error,
                    KeepReason::Slow => &counters.kept_slow,
                }
                .fetch_add(1, Ordering::Relaxed);
                Decision::Kept(CaptureMark {
                    reason,
                    truncated: state.truncated,
                })
            }
            Some(_) => {
                counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                Decision::Discarded
            }
            None => {
                counters.discarded.fetch_add(1, Ordering::Relaxed);
                Decision::Discarded
            }
        };
        let decision = state.decision;
        if decision == Decision::Discarded {
            self.free(&mut state);
        }
        decision
    }

    /// The buffered stops of a kept request: cloned for every layer but the
    /// last to close the root, which takes them (and frees the budget).
    pub(crate) fn buffered(&self, take: bool) -> Vec<Stopped> {
        let mut state = self.lock();
        if take {
            let buffer = mem::take(&mut state.buffer);
            self.free(&mut state);
            buffer
        } else {
            state.buffer.clone()
        }
    }

    /// A layer's output refused a kept tree.
    pub(crate) fn count_kept_refused(&self) {
        self.capture
            .counters
            .kept_refused
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Gives back what the buffer took of the budget, keeping the fixed
    /// share of the request until it is dropped.
    fn free(&self, state: &mut State) {
        state.buffer = Vec::new();
        self.capture.release(state.reserved - REQUEST_BYTES);
        state.reserved = REQUEST_BYTES;
        state.used = REQUEST_BYTES;
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.capture.release(state.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_cap_counts_per_second() {
        let capture = CapturePolicy::new()
            .with_keep_errors(true)
            .with_max_kept_per_second(2)
            .build();
        assert!(capture.inner.allow_kept());
        assert!(capture.inner.allow_kept());
        assert!(!capture.inner.allow_kept());
        let none = CapturePolicy::new().with_max_kept_per_second(0).build();
        assert!(!none.inner.allow_kept());
    }

    #[test]
    fn the_budget_refuses_a_request_that_does_not_fit() {
        let capture = CapturePolicy::new()
            .with_keep_errors(true)
            .with_memory_budget(REQUEST_BYTES)
            .build();
        let first = Captured::new(Arc::clone(&capture.inner)).expect("fits");
        assert!(Captured::new(Arc::clone(&capture.inner)).is_none());
        assert_eq!(capture.stats().bytes_in_use(), REQUEST_BYTES);
        drop(first);
        assert_eq!(capture.stats().bytes_in_use(), 0);
    }

    #[test]
    fn debug_hides_the_downstream_key() {
        let policy = CapturePolicy::new()
            .with_signed_downstream(Some(Signer::new("TOP-SECRET", crate::HmacAlgorithm::Sha1)));
        let text = format!("{policy:?}");
        assert!(!text.contains("TOP-SECRET"), "{text}");
        assert!(text.contains("signed_downstream: true"), "{text}");
    }
}
