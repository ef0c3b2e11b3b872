//! An axum service profiled per request: point any client at it.
//!
//! ```text
//! cargo run --example axum_service --features tower,reqwest -- \
//!     --listen 127.0.0.1:8080 --log-dir /tmp/osprofiler-logs --hmac-keys SECRET_KEY
//! ```
//!
//! `GET /` does nested `#[instrument]`ed work: two spawned tasks that each
//! make a simulated database call. A request with valid `X-Trace-Info` /
//! `X-Trace-HMAC` headers (from osprofiler's `web.get_trace_id_headers()`,
//! or see docs/http.md for curl) writes its trace points to the log
//! directory; any other request writes nothing. Stop it with Ctrl-C (the log
//! is flushed on the way out).
//!
//! A fleet (docs/fleet.md): two instances, the first calling the second,
//! both sending spans to an OpenTelemetry collector as well as to their logs:
//!
//! ```text
//! cargo run --example axum_service --features tower,reqwest,otlp -- \
//!     --listen 127.0.0.1:8081 --project cinder --service volume \
//!     --connection-string otlp://127.0.0.1:4318
//! cargo run --example axum_service --features tower,reqwest,otlp -- \
//!     --listen 127.0.0.1:8080 --project nova --service api \
//!     --connection-string otlp://127.0.0.1:4318 --downstream http://127.0.0.1:8081/
//! ```
//!
//! | flag | default | what |
//! |---|---|---|
//! | `--listen ADDR` | `127.0.0.1:8080` | where to serve |
//! | `--log-dir DIR` | `osprofiler-logs` | the Mistral log (always written) |
//! | `--hmac-keys K1,K2` | `SECRET_KEY` | the keys a token may be signed with |
//! | `--connection-string URL` | none | another sink, as osprofiler's connection string (`otlp://host:port`, `http(s)://…`, `redis://…`); repeatable; each needs its cargo feature |
//! | `--project NAME`, `--service NAME` | `osprofiler`, the executable's name | who the points are from (OTLP `service.name` is `{project}-{service}`) |
//! | `--downstream URL` | none | `GET /` also calls this URL, signed, so the callee's points hang under the call |
//! | `--keep-slower-than DURATION` | off | tail capture: a request without a token is recorded in memory and written only if it took at least this long (`150ms`, `2s`) |
//! | `--keep-errors` | off | tail capture: a request without a token is written if it failed (a 5xx, an `ERROR` event) |
//!
//! `GET /?delay_ms=N` makes the handler's work take N ms longer, inside an
//! instrumented span (`slow_work`): with `--keep-slower-than 150ms`,
//! `curl 'http://127.0.0.1:8080/?delay_ms=200'` is written without any
//! token, and `curl http://127.0.0.1:8080/` is not. `GET /?fail=1` answers
//! 500.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::work::{load_user, render, slow_work};
use reqwest_middleware::ClientWithMiddleware;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::reqwest::ProfilingMiddleware;

mod common;

/// Calls the next service; its points hang under this call's `http` point.
#[tracing::instrument(skip(client))]
async fn call_downstream(client: &ClientWithMiddleware, url: &str) -> String {
    match client.get(url).send().await {
        Ok(response) => format!("downstream answered {}\n", response.status()),
        Err(error) => format!("downstream failed: {error}\n"),
    }
}

#[derive(Clone)]
struct App {
    client: ClientWithMiddleware,
    downstream: Option<String>,
}

async fn index(
    State(app): State<App>,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    if let Some(delay) = query.get("delay_ms").and_then(|v| v.parse().ok()) {
        slow_work(delay).await;
    }
    if query.contains_key("fail") {
        tracing::error!("failing as asked (?fail)");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed as asked\n".into(),
        );
    }
    (StatusCode::OK, page(&app).await)
}

async fn page(app: &App) -> String {
    let bytes = load_user(42).await;
    let mut page = render(bytes).await;
    if let Some(url) = &app.downstream {
        page.push_str(&call_downstream(&app.client, url).await);
    }
    page
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // An error is one sentence with its cause on stderr, not a Debug dump.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("axum_service: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse("axum_service")?;
    let keys = args.keys()?;
    let _guard = args.init_profiling()?;
    // The client is built with `redirect::Policy::none()` forced: the
    // middleware follows redirects itself, each hop checked against its
    // destinations.
    let client = ProfilingMiddleware::new()
        .client_builder(reqwest::Client::builder())?
        .build();
    let mut profiling = ProfilingLayer::new(keys).with_method_and_path(true);
    if let Some(capture) = args.capture() {
        profiling = profiling.with_capture(capture);
    }
    let app = Router::new()
        .route("/", get(index))
        .with_state(App {
            client,
            downstream: args.downstream.clone(),
        })
        .layer(profiling);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    println!("{}", args.listening(listener.local_addr()?));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // `_guard` drops here: the log is flushed, and what the other sinks
    // hold is delivered (or counted) within the flush timeout.
    Ok(())
}
