//! HTTP: the tower middleware on axum, hyper and tonic servers, the reqwest
//! middleware between services, and interop with the real Python
//! osprofiler over loopback sockets.
//!
//! The tests of this binary share one global subscriber and run one at a
//! time (`support::http::global`).
#![cfg(all(feature = "tower", feature = "reqwest"))]

#[path = "../support/mod.rs"]
mod support;

mod capture;
mod concurrency;
mod destinations;
mod fairness;
mod filters;
mod grpc;
mod metrics;
mod middleware;
mod pair;
mod python;
mod redirects;
