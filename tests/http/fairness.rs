//! The abuse limit is fair: one token replayed in a loop (one `base_id`)
//! takes at most its request's share of the profiling capacity, so other
//! requests are still profiled; and a request whose root the subscriber
//! filters out spends none of it.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::call;
use crate::support::http as http_support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use http_support::{get_with, global, keys, new_token, token_headers, tree};
use tower::Layer as _;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::limit::{ProfileLimit, Rate};
use tracing_osprofiler::OsProfilerLayer;
use tracing_subscriber::prelude::*;

#[tracing::instrument]
async fn work() -> &'static str {
    "done"
}

/// A rate so slow that no token comes back during the test: what the
/// replay spends is gone.
const NO_REFILL: f64 = 0.001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_token_does_not_starve_other_requests() {
    let (lines, _serial) = global();
    // The default limit with a global burst of 8 and no refill to speak of.
    let layer = ProfilingLayer::new(keys())
        .with_limit(ProfileLimit::default().with_rate(Some(Rate::new(NO_REFILL, 8))));
    let stats = layer.stats();
    let app = Router::new().route("/", get(work)).layer(layer);
    let addr = http_support::serve_axum(app).await;
    let url = format!("http://{addr}/");
    let done = (200, "done".to_owned());

    let (replayed_base, replayed) = new_token();
    for _ in 0..20 {
        assert_eq!(get_with(&url, &token_headers(&replayed)).await, done);
    }
    let replays_profiled = stats.requests_profiled();
    assert!(
        (1..8).contains(&replays_profiled),
        "the replayed token got {replays_profiled} of the 8 permits"
    );
    assert_eq!(stats.tokens_over_limit(), 20 - replays_profiled);

    // Other requests, each with its own base_id, are still profiled.
    let mut others = Vec::new();
    for _ in 0..2 {
        let (base, token) = new_token();
        assert_eq!(get_with(&url, &token_headers(&token)).await, done);
        others.push(base);
    }
    assert_eq!(
        stats.requests_profiled(),
        replays_profiled + 2,
        "other requests were refused: {stats:?}"
    );
    let all = lines.lines();
    for base in others {
        tree(&all, base, base);
    }
    let replayed_roots = all
        .iter()
        .filter(|l| l.contains(&replayed_base.to_string()) && l.contains("wsgi-start"))
        .count();
    assert_eq!(u64::try_from(replayed_roots).unwrap(), replays_profiled);
}

#[tokio::test]
async fn a_root_filtered_out_by_the_subscriber_spends_no_rate_token() {
    // Held for the test's run only to keep the binary's tests serial.
    let (_global_lines, _serial) = global();
    let lines = http_support::Collector::default();
    let filter_out_roots = Arc::new(AtomicBool::new(true));
    let filter = {
        let filter_out_roots = Arc::clone(&filter_out_roots);
        tracing_subscriber::filter::filter_fn(move |metadata| {
            !(filter_out_roots.load(Ordering::SeqCst)
                && metadata.target() == "tracing_osprofiler::http")
        })
    };
    // This thread's own subscriber (the runtime is current-thread), so the
    // filter can change between two requests.
    let _default = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(OsProfilerLayer::from_make_writer(lines.clone()))
            .with(filter),
    );

    // One rate token in all.
    let layer = ProfilingLayer::new(keys())
        .with_limit(ProfileLimit::unlimited().with_rate(Some(Rate::new(NO_REFILL, 1))));
    let stats = layer.stats();
    let mut service = layer.layer(tower::service_fn(|_: http::Request<()>| async {
        let _work = tracing::info_span!("handler").entered();
        Ok::<_, Infallible>(http::Response::new(String::from("done")))
    }));
    let (_, first) = new_token();
    let response = call(&mut service, "/", &first).await.expect("response");
    assert!(!response.body().is_profiled(), "the root is filtered out");
    assert_eq!(stats.tokens_disabled_by_filter(), 1, "and counted");
    drop(response);
    assert!(lines.lines().is_empty());

    filter_out_roots.store(false, Ordering::SeqCst);
    let (second_base, second) = new_token();
    let response = call(&mut service, "/", &second).await.expect("response");
    assert!(
        response.body().is_profiled(),
        "the filtered-out request spent the only rate token: {stats:?}"
    );
    drop(response);
    assert_eq!(
        (stats.requests_profiled(), stats.tokens_over_limit()),
        (1, 0)
    );
    tree(&lines.lines(), second_base, second_base);
}
