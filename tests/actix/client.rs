//! Outgoing calls from actix handlers: awc with `AwcProfiling` and reqwest
//! with the reqwest middleware carry headers signed for their `http` point,
//! only to the destinations the policy allows, on every redirect hop.

use crate::middleware::{get_with, keys};
use crate::server::ActixServer;
use crate::support::http as http_support;

use actix_web::{web, HttpRequest, HttpResponse};
use http_support::{get_profiled, global, only, profiling_client, tree};
use tracing_osprofiler::actix::{AwcProfiling, ProfilingMiddleware};
use tracing_osprofiler::http::Destinations;

#[tracing::instrument]
async fn callee_work() {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
}

/// Says whether the request came with a token.
async fn signed_or_not(request: HttpRequest) -> &'static str {
    callee_work().await;
    if request.headers().contains_key("x-trace-info") {
        "signed"
    } else {
        "unsigned"
    }
}

/// A profiled service with `/b` (says whether it was signed) and
/// `/redirect` (sends the caller to `redirect_to`).
fn callee(redirect_to: String) -> ActixServer {
    ActixServer::start(ProfilingMiddleware::new(keys()), move |config| {
        let location = redirect_to.clone();
        config.route("/b", web::get().to(signed_or_not)).route(
            "/redirect",
            web::get().to(move || {
                let location = location.clone();
                async move {
                    HttpResponse::Found()
                        .insert_header(("location", location))
                        .finish()
                }
            }),
        );
    })
}

async fn call_with_awc(url: String, destinations: Destinations) -> String {
    let client = awc::Client::builder()
        .wrap(AwcProfiling::new().with_destinations(destinations))
        .finish();
    let mut response = match client.get(&url).send().await {
        Ok(response) => response,
        Err(error) => return format!("call failed: {error}"),
    };
    let body = response.body().await.unwrap_or_default();
    String::from_utf8_lossy(&body).into_owned()
}

/// A profiled caller whose `/awc` calls `target` with awc under
/// `destinations`, and `/reqwest` with reqwest.
fn caller(target: String, destinations: Destinations) -> ActixServer {
    ActixServer::start(ProfilingMiddleware::new(keys()), move |config| {
        let (awc_target, reqwest_target) = (target.clone(), target.clone());
        let destinations = destinations.clone();
        config
            .route(
                "/awc",
                web::get().to(move || call_with_awc(awc_target.clone(), destinations.clone())),
            )
            .route(
                "/reqwest",
                web::get().to(move || {
                    let url = reqwest_target.clone();
                    async move {
                        let client = profiling_client();
                        match client.get(&url).send().await {
                            Ok(response) => response.text().await.unwrap_or_default(),
                            Err(error) => format!("call failed: {error}"),
                        }
                    }
                }),
            );
    })
}

/// A's root, its `http` client point, B's root under it, B's work under
/// that: one tree.
fn assert_joined(lines: &[String], base: tracing_osprofiler::Id) {
    let points = tree(lines, base, base);
    let roots: Vec<_> = points.values().filter(|p| p.name == "wsgi").collect();
    assert_eq!(roots.len(), 2, "{points:#?}");
    let http = only(&points, "http");
    let caller_root = roots
        .iter()
        .find(|r| r.parent_id == base)
        .expect("the caller's root");
    assert_eq!(http.parent_id, caller_root.trace_id);
    let callee_root = roots
        .iter()
        .find(|r| r.parent_id == http.trace_id)
        .expect("the callee's root hangs under the client point");
    assert_eq!(only(&points, "callee_work").parent_id, callee_root.trace_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awc_calls_carry_headers_signed_for_their_http_point() {
    let (lines, _serial) = global();
    let b = callee(String::new());
    let a = caller(b.url("/b"), Destinations::internal());

    let (base, answer) = get_profiled(&a.url("/awc")).await;
    assert_eq!(answer, (200, "signed".to_owned()));
    assert_joined(&lines.lines(), base);

    // Unprofiled: the call is made, without a token, and nothing written.
    lines.clear();
    assert_eq!(
        get_with(&a.url("/awc"), &[]).await,
        (200, "unsigned".to_owned())
    );
    assert_eq!(lines.lines(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_calls_from_actix_handlers_are_signed() {
    let (lines, _serial) = global();
    let b = callee(String::new());
    let a = caller(b.url("/b"), Destinations::internal());
    let (base, answer) = get_profiled(&a.url("/reqwest")).await;
    assert_eq!(answer, (200, "signed".to_owned()));
    assert_joined(&lines.lines(), base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awc_sends_no_token_where_the_policy_does_not_allow_it() {
    let (lines, _serial) = global();
    let b = callee(String::new());
    let a = caller(b.url("/b"), Destinations::none());
    let (base, answer) = get_profiled(&a.url("/awc")).await;
    assert_eq!(answer, (200, "unsigned".to_owned()));
    // The call still has its point; the callee wrote nothing.
    let points = tree(&lines.lines(), base, base);
    let root = only(&points, "wsgi");
    assert_eq!(only(&points, "http").parent_id, root.trace_id);
    assert_eq!(points.len(), 2, "{points:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redirect_hop_is_checked_against_the_policy() {
    let (lines, _serial) = global();
    // C is on another port than B; only B's port may get the token.
    let c = callee(String::new());
    let b = callee(c.url("/b"));
    let allowed = Destinations::hosts([format!("127.0.0.1:{}", b.addr.port())]).expect("host");
    let a = caller(b.url("/redirect"), allowed);
    let (base, answer) = get_profiled(&a.url("/awc")).await;
    assert_eq!(
        answer,
        (200, "unsigned".to_owned()),
        "the hop to C carried no token"
    );
    // B (the allowed first hop) was signed and profiled under the first
    // `http` point; C wrote nothing.
    let points = tree(&lines.lines(), base, base);
    let roots = points.values().filter(|p| p.name == "wsgi").count();
    assert_eq!(roots, 2, "A and B only: {points:#?}");
    assert!(
        !points.values().any(|p| p.name == "callee_work"),
        "C was not profiled: {points:#?}"
    );
}
