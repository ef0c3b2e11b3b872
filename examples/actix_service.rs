//! An actix-web service profiled per request: the same flags and routes as
//! `axum_service`, so either can stand in for the other.
//!
//! ```text
//! cargo run --example actix_service --features actix -- \
//!     --listen 127.0.0.1:8080 --log-dir /tmp/osprofiler-logs --hmac-keys SECRET_KEY
//! ```
//!
//! `GET /` does nested `#[instrument]`ed work: two spawned tasks that each
//! make a simulated database call (a sleep: busy time far below wall time),
//! and a `render` span of real CPU work (busy time close to wall time);
//! `GET /?delay_ms=N` makes the work take N ms longer, inside an
//! instrumented span (`slow_work`), and `GET /?fail=1` answers 500 after an
//! `ERROR` event (for tail capture). A request with valid `X-Trace-Info` /
//! `X-Trace-HMAC` headers (from osprofiler's `web.get_trace_id_headers()`,
//! or see docs/http.md for curl) writes its trace points to the log
//! directory; any other request writes nothing, unless tail capture keeps it
//! (`--keep-slower-than`, `--keep-errors`).
//! Stop it with Ctrl-C (the log is flushed on the way out).
//!
//! | flag | default | what |
//! |---|---|---|
//! | `--listen ADDR` | `127.0.0.1:8080` | where to serve |
//! | `--log-dir DIR` | `osprofiler-logs` | the Mistral log (always written) |
//! | `--hmac-keys K1,K2` | `SECRET_KEY` | the keys a token may be signed with |
//! | `--connection-string URL` | none | another sink, as osprofiler's connection string (`otlp://host:port`, `http(s)://…`, `redis://…`); repeatable; each needs its cargo feature |
//! | `--project NAME`, `--service NAME` | `osprofiler`, the executable's name | who the points are from (OTLP `service.name` is `{project}-{service}`) |
//! | `--downstream URL` | none | `GET /` also calls this URL with awc, signed, so the callee's points hang under the call |
//! | `--keep-slower-than DURATION` | off | tail capture: a request without a token is recorded in memory and written only if it took at least this long (`150ms`, `2s`) |
//! | `--keep-errors` | off | tail capture: a request without a token is written if it failed (a 5xx, an `ERROR` event) |

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::work::{load_user, render, slow_work};
use tracing_osprofiler::actix::{AwcProfiling, ProfilingMiddleware};

mod common;

/// Calls the next service; its points hang under this call's `http` point.
#[tracing::instrument(skip(client))]
async fn call_downstream(client: &awc::Client, url: &str) -> String {
    match client.get(url).send().await {
        Ok(response) => format!("downstream answered {}\n", response.status()),
        Err(error) => format!("downstream failed: {error}\n"),
    }
}

/// The value of `name` in the query string, if it is there.
fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

async fn index(
    request: HttpRequest,
    client: web::Data<awc::Client>,
    downstream: web::Data<Option<String>>,
) -> HttpResponse {
    let query = request.query_string();
    if let Some(delay) = query_value(query, "delay_ms").and_then(|v| v.parse().ok()) {
        slow_work(delay).await;
    }
    if query_value(query, "fail").is_some() {
        tracing::error!("failing as asked (?fail)");
        return HttpResponse::InternalServerError().body("failed as asked\n");
    }
    let bytes = load_user(42).await;
    let mut page = render(bytes).await;
    if let Some(url) = downstream.get_ref() {
        page.push_str(&call_downstream(&client, url).await);
    }
    HttpResponse::Ok().body(page)
}

fn main() -> std::process::ExitCode {
    // An error is one sentence with its cause on stderr, not a Debug dump.
    match actix_web::rt::System::new().block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("actix_service: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse("actix_service")?;
    let keys = args.keys()?;
    let _guard = args.init_profiling()?;
    // One middleware, cloned into every worker's App: one limit, one set
    // of counters.
    let mut profiling = ProfilingMiddleware::new(keys).with_method_and_path(true);
    if let Some(capture) = args.capture() {
        profiling = profiling.with_capture(capture);
    }
    let downstream = web::Data::new(args.downstream.clone());
    let server = HttpServer::new(move || {
        // awc clients belong to one worker thread each.
        let client = awc::Client::builder().wrap(AwcProfiling::new()).finish();
        App::new()
            .wrap(profiling.clone())
            .app_data(web::Data::new(client))
            .app_data(downstream.clone())
            .route("/", web::get().to(index))
    })
    .bind(args.listen)
    .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    println!("{}", args.listening(server.addrs()[0]));
    // actix stops on Ctrl-C (SIGINT) by itself, finishing the requests in
    // flight.
    server.run().await?;
    // `_guard` drops here: the log is flushed, and what the other sinks
    // hold is delivered (or counted) within the flush timeout.
    Ok(())
}
