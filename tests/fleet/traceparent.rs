//! The W3C `traceparent` header: sent on outgoing calls only when asked,
//! naming the trace and the calling point's span exactly as the OTLP sink
//! exports them; never read: an incoming one does not start profiling.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tracing::Instrument as _;
use tracing_osprofiler::reqwest::ProfilingMiddleware;
use tracing_osprofiler::{HmacAlgorithm, Profile, ProfileExt as _, Signer};

use super::otlp::rust_service;
use crate::support::http::{
    get_with, new_token, profiling_client, serve_axum, text_through, token_headers, KEY,
};
use crate::support::otlp::{one_trace, Collector, Received};

/// A service without profiling that answers with the `traceparent` it got.
async fn echo_service() -> String {
    let app = Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            headers
                .get("traceparent")
                .map(|v| v.to_str().unwrap_or("not text").to_owned())
                .unwrap_or_default()
        }),
    );
    format!("http://{}/", serve_axum(app).await)
}

#[tokio::test]
async fn outgoing_calls_carry_a_traceparent_naming_the_exported_span_only_when_asked() {
    let collector = Collector::start();
    let node = collector.node();
    let _default = node.enter();
    let url = echo_service().await;
    let with = ProfilingMiddleware::new()
        .with_traceparent(true)
        .client_builder(reqwest::Client::builder())
        .expect("a reqwest client")
        .build();
    let without = profiling_client();

    assert_eq!(
        text_through(&with, &url).await,
        "",
        "outside a profile: nothing"
    );

    let profile = Profile::new(Signer::new(KEY, HmacAlgorithm::Sha1));
    let root = profile.start(|| tracing::info_span!("job"));
    let base = root.point_ids().expect("a trace point").base_id;
    let (sent, plain) = async {
        (
            text_through(&with, &url).await,
            text_through(&without, &url).await,
        )
    }
    .instrument(root.clone())
    .await;
    drop(root);
    assert_eq!(plain, "", "off by default");

    node.flush(Duration::from_secs(10));
    let spans = collector.wait_for(3, Duration::from_secs(10));
    one_trace(&spans);
    let mut clients: Vec<&Received> = spans
        .iter()
        .filter(|s| s.span.kind == SpanKind::Client as i32)
        .collect();
    clients.sort_by_key(|s| s.span.start_time_unix_nano);
    assert_eq!(clients.len(), 2);
    let first_call = clients[0];

    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent:?}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], format!("{:032x}", base.as_uuid().as_u128()));
    assert_eq!(parts[1].len(), 32);
    assert_eq!(
        parts[2],
        format!("{:016x}", first_call.span_id()),
        "the calling point's span, as exported"
    );
    assert_eq!(
        u128::from_str_radix(parts[1], 16)
            .expect("hex")
            .to_be_bytes()
            .to_vec(),
        first_call.span.trace_id
    );
    assert_eq!(parts[3], "01", "sampled");
}

#[tokio::test]
async fn an_incoming_traceparent_never_starts_profiling() {
    let collector = Collector::start();
    let node = collector.node();
    let _default = node.enter();
    let service = rust_service(None).await;
    let url = format!("http://{service}/");
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    let (status, _) = get_with(&url, &[("traceparent", traceparent.as_bytes())]).await;
    assert_eq!(status, 200);
    node.flush(Duration::from_secs(10));
    assert_eq!(collector.requests(), 0, "nothing exported");
    assert_eq!(node.log_points().len(), 0, "nothing logged");

    // With a valid token too, the token alone decides the trace.
    let (base, token) = new_token();
    let mut headers = token_headers(&token);
    headers.push(("traceparent", traceparent.as_bytes()));
    assert_eq!(get_with(&url, &headers).await.0, 200);
    node.flush(Duration::from_secs(10));
    let spans = collector.wait_for(3, Duration::from_secs(10));
    one_trace(&spans);
    assert_eq!(spans[0].span.trace_id, base.as_uuid().as_bytes().to_vec());
    let root = spans.iter().find(|s| s.parent().is_none()).expect("root");
    assert_eq!(root.span.name, "WSGI_GET_/");
}
