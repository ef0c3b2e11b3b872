//! The profiling layer: which spans become trace points, their ids and
//! lines, under threads, tokio and hostile names, with the real writer.
//!
//! One test binary per area (as tracing-subscriber groups its own), so the
//! suite links a handful of binaries instead of one per file.

#[path = "../support/mod.rs"]
mod support;

mod busy;
mod capture;
mod concurrency;
mod hostile;
mod on_tokio;
mod tree;
mod writer;
