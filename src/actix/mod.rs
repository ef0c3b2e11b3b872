//! Profiling actix-web services: a middleware for incoming requests and an
//! awc middleware that signs outgoing calls.
//!
//! This module owns the actix-web side only: [`ProfilingMiddleware`] (an
//! actix `Transform`, given to `App::wrap`) and its [`ProfilingService`]
//! (`middleware.rs`), the [`ResponseFuture`] and [`ResponseBody`] that carry
//! a request's root point through actix's `Future` and `MessageBody` until
//! its response body is finished (`response.rs`; what they do with the root
//! is `crate::http`'s framework-neutral code, shared with the tower
//! middleware), the root span of an actix request ([`MakeRootSpan`]), and
//! [`AwcProfiling`], the awc client middleware (`client.rs`). What
//! happens to a request's token (verify with several keys, the fair limit,
//! the root's facts, the counters, the refusal summaries) is decided by the
//! same code as for the tower middleware, so a request is profiled, refused
//! and counted alike behind either, and its root point looks the same in a
//! report. It needs neither tower nor the `http` 1.x types: actix-web 4 has
//! its own.
//!
//! # Incoming requests
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use tracing_osprofiler::actix::ProfilingMiddleware;
//! use tracing_osprofiler::HmacKeys;
//!
//! # async fn run() -> std::io::Result<()> {
//! let profiling = ProfilingMiddleware::new(HmacKeys::from_comma_separated("SECRET_KEY"));
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(profiling.clone())
//!         .route("/", web::get().to(|| async { "hello" }))
//! })
//! .bind(("127.0.0.1", 8080))?
//! .run()
//! .await
//! # }
//! ```
//!
//! Clones share their limit and counters, so one middleware cloned into
//! every worker's `App` (as above) still has one limit. A request is
//! profiled when it has exactly one `X-Trace-Info` and exactly one
//! `X-Trace-HMAC` header, they verify under the configured keys, and the
//! limit admits it; it is then served inside a root span named `wsgi`
//! (osprofiler's name) that lasts until the response body is finished or
//! dropped. Every other request (no token, a forged, duplicated,
//! oversized or non-ASCII one) is served exactly as without the middleware.
//! The middleware makes no error response of its own and never panics on
//! what a client sends.
//!
//! # Outgoing requests
//!
//! An awc client built with [`AwcProfiling`] opens an `http` client point
//! around each call made inside a profiled request and signs it for that
//! point, if the [`Destinations`](crate::http::Destinations) policy allows
//! the destination (by default internal addresses and names only). It sits
//! below awc's redirect handling, so every hop of a redirected call is
//! checked again:
//!
//! ```
//! use tracing_osprofiler::actix::AwcProfiling;
//!
//! let client = awc::Client::builder().wrap(AwcProfiling::new()).finish();
//! # drop(client);
//! ```
//!
//! A reqwest client with the `reqwest` feature's middleware signs calls
//! made from actix handlers the same way.

mod client;
mod middleware;
mod response;

pub use crate::http::{DefaultRootSpan, ProfilingStats, DEFAULT_ROOT_NAME};
pub use client::{AwcProfiling, AwcProfilingService, ClientFuture};
pub use middleware::{MakeRootSpan, ProfilingMiddleware, ProfilingService};
pub use response::{ResponseBody, ResponseFuture};
