//! Secrets: keys never appear in `Debug` output, errors or logs, and the
//! trace headers (and the query string) never appear in any line this crate
//! writes, even with every recording option on, nor in the middleware's own
//! warnings.
#![cfg(feature = "tower")]

use crate::support;

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use tower::ServiceExt as _;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, OsProfilerLayer, Signer, TraceInfo};
use tracing_subscriber::prelude::*;

use support::Capture;

const KEY: &str = "k3y-that-must-n0t-leak";

#[tracing::instrument(fields(secret_looking = "value"))]
async fn handler() -> &'static str {
    "ok"
}

#[tokio::test]
async fn neither_keys_nor_headers_nor_query_reach_any_log() {
    let profile_lines = Capture::new();
    let app_log = Capture::new();
    let subscriber = tracing_subscriber::registry()
        .with(OsProfilerLayer::from_make_writer(profile_lines.clone()).with_fields(true))
        // The service's own log, at every level, to see the middleware's warnings.
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(app_log.clone())
                .with_ansi(false),
        );
    let _default = tracing::subscriber::set_default(subscriber);

    let keys = HmacKeys::new([KEY, "second-secret"]);
    let middleware = ProfilingLayer::new(keys.clone())
        .with_method_and_path(true)
        .with_warn_interval(Duration::ZERO);
    let app = Router::new()
        .route("/items", get(handler))
        .layer(middleware.clone());

    let headers = Signer::new(KEY, HmacAlgorithm::Sha1).sign(&TraceInfo::new_request());
    let forged = Signer::new("not-the-key", HmacAlgorithm::Sha1).sign(&TraceInfo::new_request());
    for (info, hmac) in [
        (headers.trace_info(), headers.trace_hmac()),
        (forged.trace_info(), forged.trace_hmac()),
    ] {
        let request = Request::get("/items?api_token=sekrit-query")
            .header("X-Trace-Info", info)
            .header("X-Trace-HMAC", hmac)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success());
        let _ = axum::body::to_bytes(response.into_body(), 1 << 16).await;
    }
    assert_eq!(middleware.stats().requests_profiled(), 1);
    assert_eq!(middleware.stats().tokens_bad_signature(), 1);

    let profile = String::from_utf8(profile_lines.bytes()).unwrap();
    let app_text = String::from_utf8(app_log.bytes()).unwrap();
    assert!(
        profile.contains("wsgi-start"),
        "the request was profiled:\n{profile}"
    );
    assert!(
        profile.contains("/items"),
        "the path was recorded when asked:\n{profile}"
    );
    assert!(
        app_text.contains("WARN"),
        "the refused token was reported:\n{app_text}"
    );
    for (what, text) in [("profile log", &profile), ("service log", &app_text)] {
        for secret in [
            KEY,
            "second-secret",
            headers.trace_info(),
            headers.trace_hmac(),
            forged.trace_info(),
            forged.trace_hmac(),
            "sekrit-query",
            "api_token",
        ] {
            assert!(!text.contains(secret), "{what} leaks {secret:?}:\n{text}");
        }
    }

    // Debug output of everything that holds a key.
    let signer = Signer::new(KEY, HmacAlgorithm::Sha256);
    for debug in [
        format!("{keys:?}"),
        format!("{middleware:?}"),
        format!("{signer:?}"),
        format!(
            "{:?}",
            keys.verify(headers.trace_info(), headers.trace_hmac())
        ),
        format!("{headers:?}"),
    ] {
        assert!(!debug.contains(KEY), "{debug}");
        assert!(!debug.contains(headers.trace_hmac()), "{debug}");
    }
}
