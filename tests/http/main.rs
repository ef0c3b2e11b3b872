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

use tower::ServiceExt as _;

/// A GET of `path` with `token`'s headers, called on `service` (a tower
/// service: the middleware around a handler, no server) once it is ready.
pub async fn call<S>(
    service: &mut S,
    path: &str,
    token: &tracing_osprofiler::TraceHeaders,
) -> Result<S::Response, S::Error>
where
    S: tower::Service<http::Request<()>>,
    S::Error: std::fmt::Debug,
{
    let mut builder = http::Request::get(path);
    for (name, value) in token.iter() {
        builder = builder.header(name, value);
    }
    let request = builder.body(()).expect("request");
    service.ready().await.expect("ready").call(request).await
}
