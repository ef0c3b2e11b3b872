//! The counters reach a `metrics` recorder: the layer's, the writer's and
//! its file sink's, and the middleware's, with the values the stats
//! handles read.
#![cfg(feature = "metrics")]

use crate::support::http as http_support;

use std::convert::Infallible;
use std::time::Duration;

use crate::support::recorder::Published;
use http_support::{global, new_token, KEY};
use tower::{Layer as _, Service as _, ServiceExt as _};
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::metrics::MetricsPublisher;
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{HmacKeys, OsProfilerLayer};
use tracing_subscriber::prelude::*;

#[tokio::test]
async fn every_counter_is_published() {
    let (_global_lines, _serial) = global();
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = RollingFile::new(dir.path()).build().unwrap();
    let layer = OsProfilerLayer::new(writer.clone());
    let publisher = MetricsPublisher::new()
        .with_layer(layer.stats())
        .with_writer(writer.stats());
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let middleware = ProfilingLayer::new(HmacKeys::from_comma_separated(KEY));
    let publisher = publisher.with_middleware(middleware.stats());
    let mut service = middleware.layer(tower::service_fn(|_: http::Request<()>| async {
        let _work = tracing::info_span!("handler").entered();
        Ok::<_, Infallible>(http::Response::new(String::new()))
    }));
    let (_, token) = new_token();
    let mut requests = vec![http::Request::get("/").body(()).unwrap()];
    let mut profiled = http::Request::get("/");
    for (name, value) in token.iter() {
        profiled = profiled.header(name, value);
    }
    requests.push(profiled.body(()).unwrap());
    requests.push(
        http::Request::get("/")
            .header("x-trace-info", "forged")
            .header("x-trace-hmac", "0".repeat(40))
            .body(())
            .unwrap(),
    );
    for request in requests {
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        drop(response);
    }
    guard.flush(Duration::from_secs(5)).unwrap();

    let published = Published::from(&publisher);
    let get = |name, label| published.get(name, label);
    assert_eq!(get("osprofiler_points_started", None), 2.0);
    assert_eq!(get("osprofiler_events_refused", None), 0.0);
    assert_eq!(get("osprofiler_sink_written", Some(("sink", "file"))), 4.0);
    assert_eq!(get("osprofiler_requests_profiled", None), 1.0);
    assert_eq!(get("osprofiler_requests_without_token", None), 1.0);
    assert_eq!(
        get(
            "osprofiler_tokens_refused",
            Some(("reason", "bad_signature"))
        ),
        1.0
    );
    assert_eq!(get("osprofiler_points_live", None), 0.0);
}
