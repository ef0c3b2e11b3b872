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

/// Connection strings with a secret wherever one can sit (a password
/// holding `/`, `?` or `+`, a query value, an unknown scheme, no scheme at
/// all): no error, `Debug` output or source chain of the builder and the
/// sinks shows it.
#[test]
fn connection_strings_show_no_secret_in_any_error_or_debug() {
    use tracing_osprofiler::writer::{redact_password, Builder};

    const SECRET: &str = "S3CR3T";
    let strings = [
        "redis://:Zm9v/S3CR3T+cXV4@db:6379",
        "redis://user:Zm9v/S3CR3T@db:6379/0",
        "redis://:S3CR3T@db:6379/0?pass=S3CR3T",
        "redis://:S3CR3T@db:notaport",
        "redis://:pa?S3CR3T@db",
        "redis://:pa#S3CR3T@db",
        "rediss://:Zm9v/S3CR3T@db",
        "redis+unix:///run/redis.sock?pass=S3CR3T",
        "unix:///run/redis.sock?db=1&pass=S3CR3T",
        "otlp://user:Zm9v/S3CR3T@host:4318",
        "http://user:S3CR3T@host:4318",
        "https://user:Zm9v/S3CR3T@host",
        "otlp://host:4318/?token=S3CR3T",
        "mongodb://user:S3CR3T@db",
        "mongodb://user:Zm9v/S3CR3T@db/x?authSource=S3CR3T",
        "user:S3CR3T@db:6379",
        "not a url user:S3CR3T@db",
    ];
    let chain = |error: &dyn std::error::Error| {
        let mut text = format!("{error} | {error:?}");
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(&format!(" | {cause} | {cause:?}"));
            source = cause.source();
        }
        text
    };
    let mut checked = 0;
    for string in strings {
        let shown = redact_password(string);
        assert!(!shown.contains(SECRET), "{string} shows as {shown}");
        let mut texts = vec![shown];
        match Builder::new().with_connection_string(string) {
            Ok(builder) => texts.push(format!("{builder:?}")),
            Err(error) => texts.push(chain(&error)),
        }
        #[cfg(feature = "redis")]
        match tracing_osprofiler::writer::Redis::new(string) {
            Ok(redis) => texts.push(format!("{redis:?}")),
            Err(error) => texts.push(chain(&error)),
        }
        #[cfg(feature = "otlp")]
        match tracing_osprofiler::writer::Otlp::new(string) {
            Ok(otlp) => texts.push(format!("{otlp:?}")),
            Err(error) => texts.push(chain(&error)),
        }
        for text in texts {
            assert!(!text.contains(SECRET), "{string}: {text}");
            checked += 1;
        }
    }
    assert!(checked >= strings.len() * 2, "{checked}");
}
