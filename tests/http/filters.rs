//! Filters and profiling: the most common set-up, an `EnvFilter` on the
//! whole subscriber with `RUST_LOG` unset, disables the INFO root span, so a
//! valid token cannot be profiled. That is counted and reported, never
//! silent; the same filter on the log-printing layer only leaves profiling
//! alone (the set-up the README shows).
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::call;
use crate::support::http as http_support;

use std::convert::Infallible;

use http_support::{global, new_token, tree, Collector, KEY};
use tower::Layer as _;
use tracing_osprofiler::http::{ProfilingLayer, ProfilingStats};
use tracing_osprofiler::{HmacKeys, OsProfilerLayer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Serves two requests with a token through the middleware on this
/// thread's subscriber; whether each was profiled, and the counters.
async fn serve_two() -> (Vec<bool>, ProfilingStats) {
    let layer = ProfilingLayer::new(HmacKeys::from_comma_separated(KEY));
    let stats = layer.stats();
    let mut service = layer.layer(tower::service_fn(|_: http::Request<()>| async {
        let _work = tracing::info_span!("handler").entered();
        Ok::<_, Infallible>(http::Response::new(String::from("done")))
    }));
    let mut profiled = Vec::new();
    for _ in 0..2 {
        let (_, token) = new_token();
        let response = call(&mut service, "/", &token).await.expect("response");
        profiled.push(response.body().is_profiled());
    }
    (profiled, stats)
}

/// `EnvFilter` as `from_default_env` builds it with `RUST_LOG` unset.
fn unset_rust_log() -> EnvFilter {
    EnvFilter::builder().parse_lossy("")
}

#[tokio::test]
async fn a_global_env_filter_disables_profiling_visibly() {
    // Held only to keep the binary's tests serial.
    let (_global_lines, _serial) = global();
    let lines = Collector::default();
    let _default = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(unset_rust_log())
            .with(OsProfilerLayer::from_make_writer(lines.clone()))
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink)),
    );
    let (profiled, stats) = serve_two().await;
    assert_eq!(profiled, [false, false]);
    assert!(lines.lines().is_empty());
    assert_eq!(stats.tokens_disabled_by_filter(), 2, "{stats:?}");
    assert_eq!(stats.requests_profiled(), 0);
    assert_eq!(stats.tokens_refused(), 2, "a refusal like the others");
}

#[tokio::test]
async fn the_same_filter_on_the_log_layer_leaves_profiling_alone() {
    let (_global_lines, _serial) = global();
    let lines = Collector::default();
    let _default = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(OsProfilerLayer::from_make_writer(lines.clone()))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(unset_rust_log()),
            ),
    );
    let (profiled, stats) = serve_two().await;
    assert_eq!(profiled, [true, true]);
    assert_eq!(stats.tokens_disabled_by_filter(), 0);
    assert_eq!(stats.requests_profiled(), 2);
    let all = lines.lines();
    assert_eq!(all.len(), 8, "two points per request: {all:#?}");
    let base = tracing_osprofiler::format::parse_line(all[0].as_bytes())
        .unwrap()
        .ids
        .base_id;
    tree(&all, base, base);
}
