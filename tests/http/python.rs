//! Interop with the real Python osprofiler 4.4.0 over loopback sockets
//! (`support::python_client` runs and checks it, as for actix-web): a
//! Python client profiles a Rust service, and the Rust client profiles a
//! Python WSGI service run with osprofiler's own `WsgiMiddleware`.
#![cfg(all(feature = "tower", feature = "reqwest"))]

use crate::support::http::{global, profiling_client, serve_axum, KEY};
use crate::support::python_client::{
    assert_python_client_profiles, rust_work, WsgiPeer, RUST_BODY,
};

use axum::routing::get;
use axum::Router;
use tracing::Instrument as _;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Profile, ProfileExt as _, Signer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_osprofiler_client_profiles_a_rust_service() {
    let (lines, _serial) = global();
    let layer = ProfilingLayer::new(HmacKeys::from_comma_separated(KEY));
    let stats = layer.stats();
    let app = Router::new()
        .route("/", get(|| async { rust_work().await }))
        .layer(layer);
    let addr = serve_axum(app).await;

    assert_python_client_profiles(&lines, format!("http://{addr}/"), RUST_BODY, "rust_work").await;
    assert_eq!(stats.requests_profiled(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_profiles_a_python_wsgi_service() {
    let (lines, _serial) = global();
    let python = WsgiPeer::start();
    let client = profiling_client();
    let call = || async {
        let response = client.get(python.url()).send().await.expect("call");
        response.text().await.expect("body")
    };

    // Unprofiled first: the Python service must notify nothing.
    assert_eq!(call().await, WsgiPeer::BODY);

    let profile = Profile::new(Signer::new(KEY, HmacAlgorithm::Sha1));
    let root = profile.start(|| tracing::info_span!("rust-job"));
    let base = root.point_ids().expect("a trace point").base_id;
    assert_eq!(call().instrument(root.clone()).await, WsgiPeer::BODY);
    drop(root);

    python.assert_profiled_under(&lines, base, "rust-job");
}
