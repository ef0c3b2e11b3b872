//! OpenStack [osprofiler]-style per-request profiling for services built on
//! [`tracing`].
//!
//! A request that carries a valid HMAC-signed profile token (osprofiler's
//! `X-Trace-Info` / `X-Trace-HMAC` headers) is profiled: every span opened
//! while serving it becomes an osprofiler trace point with a `base_id`,
//! `parent_id` and `trace_id`, and gets a `-start` and a `-stop` line in the
//! Mistral profiler log format. Requests without a valid token write nothing
//! and cost almost nothing, unless the operator turns on tail capture
//! ([`CapturePolicy`]): then they are recorded in memory and written only if
//! slow or failed. Calls to other services carry new signed headers, so one
//! request can be followed across services, Rust or Python.
//!
//! # Quick start
//!
//! ```
//! use tracing_osprofiler::{writer::RollingFile, HmacKeys, OsProfilerLayer};
//! use tracing_subscriber::prelude::*;
//!
//! # let dir = tempfile::tempdir()?;
//! # let log_dir = dir.path();
//! // 1. Lines go to a rolling file written by a background thread.
//! let (writer, _guard) = RollingFile::new(log_dir).build()?;
//! // 2. One layer in the subscriber stack.
//! tracing_subscriber::registry()
//!     .with(OsProfilerLayer::new(writer))
//!     .init();
//!
//! // 3. A request whose token verifies is served inside a profiled root span
//! //    (the `tower` feature's middleware does this for HTTP).
//! let keys = HmacKeys::from_comma_separated("SECRET_KEY");
//! # let info = "eyJiYXNlX2lkIjogIjZmOWUzYzFhLTJiNGQtNGU4Zi05YTBiLTFjMmQzZTRmNWE2YiJ9";
//! # let hmac = "d29648d0dacbf236f51755e51cc054eb5350b57a";
//! if let Ok(profile) = keys.verify(info, hmac) {
//!     let root = profile.start(|| tracing::info_span!("wsgi"));
//!     let _entered = root.enter();
//!     // every span opened here (`#[instrument]`, `info_span!`) is a trace point
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//!
//! | module | owns |
//! |---|---|
//! | [`capture`] | tail capture: requests without a token recorded in memory, kept when slow or failed |
//! | [`ids`] | the UUID ids: which forms are accepted, how they are written |
//! | [`token`] | signing and verifying the two headers; keys and algorithms |
//! | [`layer`] | the [`Layer`](tracing_subscriber::Layer): which spans are points, their ids, start, stop and outcome |
//! | [`format`](mod@format) | the Mistral log line, written and parsed in one place |
//! | [`writer`] | the queue, the writer's thread and its sinks (the rolling log file first), the guard, the counters |
//! | [`limit`] | how many requests may be profiled: concurrency, rate, and each request's and key's share |
//! | [`point`] | what a point is besides its ids: kind, request or call facts, outcome |
#![cfg_attr(
    feature = "tower",
    doc = "| [`http`] | the tower middleware and header injection for `http` types |"
)]
#![cfg_attr(
    feature = "metrics",
    doc = "| [`metrics`] | the counters published through the `metrics` facade |"
)]
#![cfg_attr(
    feature = "reqwest",
    doc = "| [`reqwest`] | profiling outgoing reqwest calls |"
)]
#![cfg_attr(
    feature = "actix",
    doc = "| [`actix`] | the actix-web middleware and the awc client middleware |"
)]
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tower` | no | the `http` module: a tower `Layer`/`Service` for http 1.x servers (axum, hyper, tonic) |
//! | `reqwest` | no | the `reqwest` module: a reqwest-middleware that signs outgoing calls (turns `tower` on too) |
//! | `actix` | no | the `actix` module: an actix-web 4 middleware (`App::wrap`) and an awc middleware that signs outgoing calls; the `http` module's destination policy and counters, without tower |
//! | `metrics` | no | the `metrics` module: every counter published through the `metrics` facade |
//! | `otlp` | no | `writer::Otlp`: every trace point also sent as an OpenTelemetry span over OTLP/HTTP, as osprofiler's `otlp` driver sends them (docs/fleet.md) |
//! | `redis` | no | `writer::Redis`: every start and stop also written to osprofiler's Redis store, as its `redis` driver writes them, by a small client of the crate's own (no dependency; docs/fleet.md) |
//!
//! No feature is on by default: a service that only wants the layer and
//! the log file needs none.
//!
//! [osprofiler]: https://docs.openstack.org/osprofiler/latest/
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
pub mod capture;
pub mod format;
#[cfg(any(feature = "tower", feature = "actix"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "actix"))))]
pub mod http;
pub mod ids;
pub mod layer;
pub mod limit;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod point;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
pub mod token;
pub mod writer;

pub use capture::{Capture, CapturePolicy, CaptureStats, KeepReason};
pub use ids::Id;
pub use layer::{current_trace_headers, LayerStats, NameSource, OsProfilerLayer, ProfileExt};
pub use token::{
    BlankKeyError, HmacAlgorithm, HmacKey, HmacKeys, Profile, Rejection, Signer, TraceHeaders,
    TraceInfo, X_TRACE_HMAC, X_TRACE_INFO,
};
pub use writer::ProfileWriter;

// The README's Quick start is a whole program: it must keep compiling.
#[cfg(all(doctest, feature = "tower"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
