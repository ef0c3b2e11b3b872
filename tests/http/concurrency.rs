//! 500 concurrent requests over loopback, a third of them profiled: every
//! profiled request's tree is complete and separate, unprofiled requests
//! write nothing.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::support::http as http_support;

use std::collections::HashSet;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http_support::{global, new_token, only, tree, KEY};
use tracing::Instrument as _;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::limit::ProfileLimit;
use tracing_osprofiler::HmacKeys;

#[tracing::instrument]
async fn db_query(n: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(n % 7)).await;
    n * 2
}

#[tracing::instrument]
async fn handler_work(n: u64) -> u64 {
    let spawned = tokio::spawn(db_query(n).in_current_span());
    let local = db_query(n + 1).await;
    spawned.await.expect("task") + local
}

const REQUESTS: u64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_requests_a_third_profiled() {
    let (lines, _serial) = global();
    let layer = ProfilingLayer::new(HmacKeys::from_comma_separated(KEY))
        .with_limit(ProfileLimit::unlimited());
    let stats = layer.stats();
    let app = Router::new()
        .route(
            "/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u64>| async move {
                    handler_work(n).await.to_string()
                },
            ),
        )
        .layer(layer);
    let addr = http_support::serve_axum(app).await;
    let client = reqwest::Client::new();

    let mut tasks = tokio::task::JoinSet::new();
    let mut profiled = Vec::new();
    for n in 0..REQUESTS {
        let mut request = client.get(format!("http://{addr}/{n}"));
        if n % 3 == 0 {
            let (base, headers) = new_token();
            profiled.push(base);
            for (name, value) in headers.iter() {
                request = request.header(name, value);
            }
        }
        tasks.spawn(async move {
            let response = request.send().await.expect("send");
            assert_eq!(response.status(), 200);
            let body = response.text().await.expect("body");
            assert_eq!(body, (4 * n + 2).to_string());
        });
    }
    let all_done = async {
        while let Some(result) = tasks.join_next().await {
            result.expect("request task");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all_done)
        .await
        .expect("500 requests within a minute");

    assert_eq!(profiled.len(), 167);
    assert_eq!(stats.requests_profiled(), 167);
    assert_eq!(stats.requests_without_token(), REQUESTS - 167);

    let all = lines.lines();
    // Four points a request (wsgi, handler_work, two db_query), two lines each.
    assert_eq!(all.len(), 167 * 8, "unprofiled requests wrote nothing");
    let mut trace_ids = HashSet::new();
    for base in &profiled {
        let points = tree(&all, *base, *base);
        assert_eq!(points.len(), 4, "{points:#?}");
        let root = only(&points, "wsgi");
        let work = only(&points, "handler_work");
        assert_eq!(work.parent_id, root.trace_id);
        assert!(points
            .values()
            .filter(|p| p.name == "db_query")
            .all(|p| p.parent_id == work.trace_id));
        for id in points.keys() {
            assert!(trace_ids.insert(*id), "trace id {id} in two requests");
        }
    }
}
