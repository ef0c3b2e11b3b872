//! actix-web: the `actix` feature's middleware on a real actix-web server
//! over loopback sockets (every token case, the streamed body, concurrent
//! requests), outgoing calls signed by awc and by reqwest from actix
//! handlers, and interop with the real Python osprofiler.
//!
//! The tests of this binary share one global subscriber and run one at a
//! time (`support::http::global`).
#![cfg(all(feature = "actix", feature = "tower", feature = "reqwest"))]

#[path = "../support/mod.rs"]
mod support;

mod capture;
mod client;
mod example;
mod middleware;
mod python;
mod server;
