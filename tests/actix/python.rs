//! Interop with the real Python osprofiler over loopback sockets, as for
//! the tower middleware (`support::python_client` runs and checks both):
//! the Python client profiles an actix-web service, and an actix handler's
//! awc call profiles a Python WSGI service run with osprofiler's own
//! `WsgiMiddleware`, whose points hang under the Rust call.

use crate::middleware::{get_with, keys};
use crate::server::ActixServer;
use crate::support::http::{get_profiled, global};
use crate::support::python_client::{
    assert_python_client_profiles, rust_work, WsgiPeer, RUST_BODY,
};

use actix_web::web;
use tracing_osprofiler::actix::{AwcProfiling, ProfilingMiddleware};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_osprofiler_client_profiles_an_actix_service() {
    let (lines, _serial) = global();
    let middleware = ProfilingMiddleware::new(keys());
    let stats = middleware.stats();
    let server = ActixServer::start(middleware, |config| {
        config.route("/", web::get().to(rust_work));
    });

    assert_python_client_profiles(&lines, server.url("/"), RUST_BODY, "rust_work").await;
    assert_eq!(stats.requests_profiled(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actix_handler_profiles_a_python_wsgi_service_through_awc() {
    let (lines, _serial) = global();
    let python = WsgiPeer::start();
    let target = python.url();
    let server = ActixServer::start(ProfilingMiddleware::new(keys()), move |config| {
        let target = target.clone();
        config.route(
            "/",
            web::get().to(move || {
                let target = target.clone();
                async move {
                    let client = awc::Client::builder().wrap(AwcProfiling::new()).finish();
                    match client.get(&target).send().await {
                        Ok(mut response) => {
                            let body = response.body().await.unwrap_or_default();
                            String::from_utf8_lossy(&body).into_owned()
                        }
                        Err(error) => format!("call failed: {error}"),
                    }
                }
            }),
        );
    });

    // Unprofiled first: the Python service must notify nothing.
    let answer = (200, WsgiPeer::BODY.to_owned());
    assert_eq!(get_with(&server.url("/"), &[]).await, answer);
    let (base, profiled) = get_profiled(&server.url("/")).await;
    assert_eq!(profiled, answer);

    python.assert_profiled_under(&lines, base, "wsgi");
}
