//! The [`ProfilingLayer`] (a tower `Layer`), its configuration, the admission
//! decision for one request, and the [`ProfilingStats`] counters.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::Request;
use tracing::callsite::{Callsite, Identifier};
use tracing::field::{FieldSet, Value};
use tracing::level_filters::LevelFilter;
use tracing::metadata::Kind;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Span};

use super::service::ProfilingService;
use crate::limit::{ProfileLimit, ProfileLimiter, ProfilePermit};
use crate::token::{HmacKeys, Rejection};

/// The default name of the root point: osprofiler's WSGI middleware names its
/// root point `wsgi`, and reports and tools built for osprofiler look for it.
pub const DEFAULT_ROOT_NAME: &str = "wsgi";

/// The target of the root span and of the summary warnings.
const TARGET: &str = "tracing_osprofiler::http";

/// The fields the root span declares; values are recorded only when
/// [`ProfilingLayer::with_method_and_path`] is on.
const ROOT_FIELDS: &[&str] = &["http.method", "http.path"];

/// A tower [`Layer`](tower_layer::Layer) that serves requests carrying a
/// valid profile token inside a profiled root span (see the
/// [module docs](super)).
///
/// # Configuration
///
/// | setting | default | setter |
/// |---|---|---|
/// | accepted keys and algorithms | given to [`new`](Self::new) | - |
/// | root point name | `wsgi` (osprofiler's) | [`with_root_name`](Self::with_root_name) |
/// | method and path as root span fields | off | [`with_method_and_path`](Self::with_method_and_path) |
/// | query string, trace headers | never recorded | - |
/// | profiled requests at once | 64 | [`with_limit`](Self::with_limit) |
/// | profiled requests per second | 100, burst 100 | [`with_limit`](Self::with_limit) |
/// | summary warning of refused tokens | at most once a minute | [`with_warn_interval`](Self::with_warn_interval) |
///
/// Method and path become span fields of the root; the
/// [`OsProfilerLayer`](crate::OsProfilerLayer) writes them on the start line
/// only if its own `with_fields(true)` is on too.
///
/// Clones share their limiter and counters, so a layer applied to every
/// route of a router still has one limit.
#[derive(Clone)]
pub struct ProfilingLayer {
    shared: Arc<Shared>,
}

#[derive(Clone)]
pub(crate) struct Shared {
    keys: HmacKeys,
    root_name: Cow<'static, str>,
    method_and_path: bool,
    limiter: ProfileLimiter,
    stats: ProfilingStats,
    warn_interval: Duration,
    /// The root span's callsite, made once per configuration: tracing span
    /// names are static, so a configurable name needs its own callsite.
    root: Arc<OnceLock<&'static RootCallsite>>,
}

impl fmt::Debug for ProfilingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilingLayer")
            .field("keys", &self.shared.keys)
            .field("root_name", &self.shared.root_name)
            .field("method_and_path", &self.shared.method_and_path)
            .field("limiter", &self.shared.limiter)
            .field("warn_interval", &self.shared.warn_interval)
            .finish_non_exhaustive()
    }
}

impl ProfilingLayer {
    /// A layer that accepts tokens verified by `keys`, with the defaults of
    /// the table above.
    #[must_use]
    pub fn new(keys: HmacKeys) -> Self {
        ProfilingLayer {
            shared: Arc::new(Shared {
                keys,
                root_name: Cow::Borrowed(DEFAULT_ROOT_NAME),
                method_and_path: false,
                limiter: ProfileLimit::default().build(),
                stats: ProfilingStats::new(),
                warn_interval: Duration::from_secs(60),
                root: Arc::new(OnceLock::new()),
            }),
        }
    }

    fn update(mut self, change: impl FnOnce(&mut Shared)) -> Self {
        change(Arc::make_mut(&mut self.shared));
        self
    }

    /// Names the root point (default: `wsgi`). The name is sanitized like
    /// every point name when written.
    ///
    /// Each distinct configuration leaks one small callsite the first time it
    /// serves a profiled request (tracing needs `'static` metadata), so build
    /// layers at startup, not per request.
    #[must_use]
    pub fn with_root_name(self, name: impl Into<Cow<'static, str>>) -> Self {
        let name = name.into();
        self.update(|shared| {
            shared.root_name = name;
            shared.root = Arc::new(OnceLock::new());
        })
    }

    /// Records the request method and path (never the query string) as the
    /// root span's `http.method` and `http.path` fields (default: off).
    #[must_use]
    pub fn with_method_and_path(self, record: bool) -> Self {
        self.update(|shared| shared.method_and_path = record)
    }

    /// Limits how many requests are profiled (default:
    /// [`ProfileLimit::default`], 64 at once and 100 per second).
    #[must_use]
    pub fn with_limit(self, limit: ProfileLimit) -> Self {
        self.update(|shared| shared.limiter = limit.build())
    }

    /// The shortest time between two summary warnings about refused tokens
    /// (default: one minute). Counts are always in [`stats`](Self::stats).
    #[must_use]
    pub fn with_warn_interval(self, interval: Duration) -> Self {
        self.update(|shared| shared.warn_interval = interval)
    }

    /// A handle on the counters, shared by every service this layer makes.
    #[must_use]
    pub fn stats(&self) -> ProfilingStats {
        self.shared.stats.clone()
    }
}

impl<S> tower_layer::Layer<S> for ProfilingLayer {
    type Service = ProfilingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProfilingService::new(inner, Arc::clone(&self.shared))
    }
}

impl Shared {
    /// Decides whether `request` is profiled: if so, its root span (not yet
    /// entered) and the permit to hold until its response is finished.
    pub(crate) fn admit<B>(&self, request: &Request<B>) -> Option<(Span, ProfilePermit)> {
        let stats = &self.stats.counters;
        let profile = match super::profile_from_headers(&self.keys, request.headers()) {
            Ok(profile) => profile,
            Err(rejection) => {
                let counter = match rejection {
                    Rejection::Missing => {
                        stats.missing.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    Rejection::Oversized => &stats.oversized,
                    Rejection::BadSignature => &stats.bad_signature,
                    _ => &stats.malformed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                self.maybe_warn();
                return None;
            }
        };
        let metadata = self.root_metadata();
        if !root_enabled(metadata) {
            // Filtered out by the subscriber: nothing would be written, so
            // it must not spend a permit or a rate token either.
            return None;
        }
        let Some(permit) = self.limiter.try_acquire_for(&profile) else {
            stats.over_limit.fetch_add(1, Ordering::Relaxed);
            self.maybe_warn();
            return None;
        };
        let span = profile.start(|| self.root_span(metadata, request));
        if span.is_disabled() {
            return None;
        }
        stats.profiled.fetch_add(1, Ordering::Relaxed);
        Some((span, permit))
    }

    fn root_metadata(&self) -> &'static Metadata<'static> {
        self.root
            .get_or_init(|| RootCallsite::leak(&self.root_name))
            .metadata()
    }

    fn root_span<B>(&self, metadata: &'static Metadata<'static>, request: &Request<B>) -> Span {
        let fields = metadata.fields();
        let mut iter = fields.iter();
        let (Some(method), Some(path)) = (iter.next(), iter.next()) else {
            return Span::none();
        };
        if self.method_and_path {
            let method_value = request.method().as_str();
            let path_value = request.uri().path();
            Span::new(
                metadata,
                &fields.value_set(&[
                    (&method, Some(&method_value as &dyn Value)),
                    (&path, Some(&path_value as &dyn Value)),
                ]),
            )
        } else {
            Span::new(
                metadata,
                &fields.value_set(&[(&method, None), (&path, None)]),
            )
        }
    }

    /// At most one warning per interval, with the totals, so that a flood of
    /// bad tokens cannot flood the operator's log.
    fn maybe_warn(&self) {
        let counters = &self.stats.counters;
        let now = u64::try_from(counters.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = counters.last_warn.load(Ordering::Relaxed);
        let interval = u64::try_from(self.warn_interval.as_millis()).unwrap_or(u64::MAX);
        if last != NEVER && now.saturating_sub(last) < interval {
            return;
        }
        if counters
            .last_warn
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let stats = &self.stats;
        tracing::warn!(
            target: TARGET,
            oversized = stats.oversized(),
            bad_signature = stats.bad_signature(),
            malformed = stats.malformed(),
            over_limit = stats.over_limit(),
            profiled = stats.profiled(),
            "profile tokens refused since start, requests served unprofiled (next summary in {:?} at the earliest)",
            self.warn_interval,
        );
    }
}

fn root_enabled(metadata: &'static Metadata<'static>) -> bool {
    if LevelFilter::current() < *metadata.level() {
        return false;
    }
    tracing::dispatcher::get_default(|dispatch| dispatch.enabled(metadata))
}

const NEVER: u64 = u64::MAX;

/// A root span callsite with a name chosen at run time.
pub(crate) struct RootCallsite {
    metadata: OnceLock<Metadata<'static>>,
}

/// Stands in for the metadata in the impossible case that it is read before
/// it is set, so that no path panics.
static FALLBACK_CALLSITE: RootCallsite = RootCallsite {
    metadata: OnceLock::new(),
};

impl RootCallsite {
    fn leak(name: &str) -> &'static RootCallsite {
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let callsite: &'static RootCallsite = Box::leak(Box::new(RootCallsite {
            metadata: OnceLock::new(),
        }));
        let _ = callsite.metadata.set(Metadata::new(
            name,
            TARGET,
            Level::INFO,
            Some(file!()),
            Some(line!()),
            Some(module_path!()),
            FieldSet::new(ROOT_FIELDS, Identifier(callsite)),
            Kind::SPAN,
        ));
        tracing_core::callsite::register(callsite);
        callsite
    }
}

impl Callsite for RootCallsite {
    fn set_interest(&self, _interest: Interest) {
        // Interest is asked of the dispatcher on every request instead
        // (`root_enabled`); profiled requests are rare enough.
    }

    fn metadata(&self) -> &Metadata<'static> {
        match self.metadata.get() {
            Some(metadata) => metadata,
            None => FALLBACK_CALLSITE.metadata.get_or_init(|| {
                Metadata::new(
                    DEFAULT_ROOT_NAME,
                    TARGET,
                    Level::INFO,
                    None,
                    None,
                    None,
                    FieldSet::new(ROOT_FIELDS, Identifier(&FALLBACK_CALLSITE)),
                    Kind::SPAN,
                )
            }),
        }
    }
}

/// Counters of a [`ProfilingLayer`]: how many requests were profiled and why
/// tokens were refused. Readable at any time; cloning shares them.
///
/// `missing` is the normal case of a request without a token and is not a
/// refusal. Refusals (`oversized`, `bad_signature`, `malformed`,
/// `over_limit`) are also summed up in a `tracing` warning at most once per
/// interval, never once per request.
#[derive(Clone)]
pub struct ProfilingStats {
    counters: Arc<Counters>,
}

struct Counters {
    missing: AtomicU64,
    oversized: AtomicU64,
    bad_signature: AtomicU64,
    malformed: AtomicU64,
    over_limit: AtomicU64,
    profiled: AtomicU64,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last summary warning, or `NEVER`.
    last_warn: AtomicU64,
}

impl ProfilingStats {
    fn new() -> Self {
        ProfilingStats {
            counters: Arc::new(Counters {
                missing: AtomicU64::new(0),
                oversized: AtomicU64::new(0),
                bad_signature: AtomicU64::new(0),
                malformed: AtomicU64::new(0),
                over_limit: AtomicU64::new(0),
                profiled: AtomicU64::new(0),
                epoch: Instant::now(),
                last_warn: AtomicU64::new(NEVER),
            }),
        }
    }

    /// Requests without a token (the normal case, not a refusal).
    #[must_use]
    pub fn missing(&self) -> u64 {
        self.counters.missing.load(Ordering::Relaxed)
    }

    /// Tokens refused because a header was too long.
    #[must_use]
    pub fn oversized(&self) -> u64 {
        self.counters.oversized.load(Ordering::Relaxed)
    }

    /// Tokens whose signature did not verify (wrong key, tampering, bad hex,
    /// non-ASCII, disabled algorithm).
    #[must_use]
    pub fn bad_signature(&self) -> u64 {
        self.counters.bad_signature.load(Ordering::Relaxed)
    }

    /// Tokens that were duplicated, or signed but not a valid trace info.
    #[must_use]
    pub fn malformed(&self) -> u64 {
        self.counters.malformed.load(Ordering::Relaxed)
    }

    /// Valid tokens refused by the [`ProfileLimit`].
    #[must_use]
    pub fn over_limit(&self) -> u64 {
        self.counters.over_limit.load(Ordering::Relaxed)
    }

    /// Requests served profiled.
    #[must_use]
    pub fn profiled(&self) -> u64 {
        self.counters.profiled.load(Ordering::Relaxed)
    }

    /// All refusals: oversized, bad signature, malformed and over limit.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.oversized() + self.bad_signature() + self.malformed() + self.over_limit()
    }
}

impl fmt::Debug for ProfilingStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilingStats")
            .field("missing", &self.missing())
            .field("oversized", &self.oversized())
            .field("bad_signature", &self.bad_signature())
            .field("malformed", &self.malformed())
            .field("over_limit", &self.over_limit())
            .field("profiled", &self.profiled())
            .finish()
    }
}
