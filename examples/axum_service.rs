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
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use reqwest_middleware::ClientWithMiddleware;
use tracing::Instrument as _;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::reqwest::ProfilingMiddleware;
use tracing_osprofiler::writer::{ProfileWriter, RollingFile};
use tracing_osprofiler::{CapturePolicy, HmacKeys, OsProfilerLayer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

struct Args {
    listen: SocketAddr,
    log_dir: PathBuf,
    hmac_keys: String,
    connection_strings: Vec<String>,
    project: Option<String>,
    service: Option<String>,
    downstream: Option<String>,
    keep_slower_than: Option<Duration>,
    keep_errors: bool,
}

const USAGE: &str = "usage: axum_service [--listen ADDR] [--log-dir DIR] [--hmac-keys K1,K2] \
    [--connection-string URL]... [--project NAME] [--service NAME] [--downstream URL] \
    [--keep-slower-than DURATION] [--keep-errors]";

/// `150ms`, `2s`, `1.5s`, `500us`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?}: give a unit (ms, s, us)"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number and a unit"))?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        _ => return Err(format!("{text:?}: the unit is one of s, ms, us")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        log_dir: PathBuf::from("osprofiler-logs"),
        hmac_keys: "SECRET_KEY".to_owned(),
        connection_strings: Vec::new(),
        project: None,
        service: None,
        downstream: None,
        keep_slower_than: None,
        keep_errors: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?;
            }
            "--log-dir" => args.log_dir = PathBuf::from(value()?),
            "--hmac-keys" => args.hmac_keys = value()?,
            "--connection-string" => args.connection_strings.push(value()?),
            "--project" => args.project = Some(value()?),
            "--service" => args.service = Some(value()?),
            "--downstream" => args.downstream = Some(value()?),
            "--keep-slower-than" => {
                args.keep_slower_than = Some(
                    parse_duration(&value()?).map_err(|e| format!("--keep-slower-than: {e}"))?,
                );
            }
            "--keep-errors" => args.keep_errors = true,
            "-h" | "--help" => {
                // Asked for: the usage on stdout, and success.
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

#[tracing::instrument(skip_all)]
async fn db_query(statement: &'static str, millis: u64) -> usize {
    // Stands in for a database round trip: it waits, so its busy time is
    // far below its wall time.
    tokio::time::sleep(Duration::from_millis(millis)).await;
    statement.len()
}

#[tracing::instrument]
async fn fetch_profile(user: u32) -> usize {
    db_query("SELECT * FROM profiles WHERE user_id = ?", 12).await
}

#[tracing::instrument]
async fn fetch_permissions(user: u32) -> usize {
    db_query("SELECT * FROM grants WHERE user_id = ?", 8).await
}

#[tracing::instrument]
async fn load_user(user: u32) -> usize {
    // Spawned tasks carry the current span along, so their points hang
    // under `load_user`.
    let profile = tokio::spawn(fetch_profile(user).in_current_span());
    let permissions = tokio::spawn(fetch_permissions(user).in_current_span());
    profile.await.unwrap_or(0) + permissions.await.unwrap_or(0)
}

/// Real CPU work (a checksum of the page): unlike `db_query`, which
/// waits, its busy time is close to its wall time (`osprof rank --busy`).
#[tracing::instrument]
async fn render(bytes: usize) -> String {
    let mut sum = bytes as u64;
    for i in 0..1_500_000u64 {
        sum = std::hint::black_box(sum.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    format!(
        "hello, user 42 ({bytes} bytes of data, checksum {:04x})\n",
        sum & 0xffff
    )
}

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

/// The extra work `GET /?delay_ms=N` asks for.
#[tracing::instrument]
async fn slow_work(delay_ms: u64) {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
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
    let args = parse_args()?;
    let mut builder = ProfileWriter::builder().with_file(RollingFile::new(&args.log_dir));
    for connection_string in &args.connection_strings {
        builder = builder.with_connection_string(connection_string)?;
    }
    if let Some(project) = &args.project {
        builder = builder.with_project(project);
    }
    if let Some(service) = &args.service {
        builder = builder.with_service(service);
    }
    let (writer, _guard) = builder.build()?;
    tracing_subscriber::registry()
        // Fields on start lines: the root's method and path, `user = 42`.
        .with(OsProfilerLayer::new(writer).with_fields(true))
        // The middleware's summary warnings about refused tokens.
        // Colours only on a terminal: none in a file or a pipe.
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(LevelFilter::WARN),
        )
        .init();

    let keys = HmacKeys::from_comma_separated(&args.hmac_keys);
    if keys.is_empty() {
        return Err("--hmac-keys: no key given".into());
    }
    // The client is built with `redirect::Policy::none()` forced: the
    // middleware follows redirects itself, each hop checked against its
    // destinations.
    let client = ProfilingMiddleware::new()
        .client_builder(reqwest::Client::builder())?
        .build();
    let mut profiling = ProfilingLayer::new(keys).with_method_and_path(true);
    if args.keep_slower_than.is_some() || args.keep_errors {
        // Requests without a token are recorded in memory and written only
        // when slow or failed (docs/configuration.md, "Tail capture").
        profiling = profiling.with_capture(
            CapturePolicy::new()
                .with_keep_slower_than(args.keep_slower_than)
                .with_keep_errors(args.keep_errors)
                .build(),
        );
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
    println!(
        "listening on http://{}/ ; profiled requests are logged in {}{}",
        listener.local_addr()?,
        args.log_dir.display(),
        // Connection strings may hold passwords: not printed.
        match args.connection_strings.len() {
            0 => String::new(),
            n => format!(" and sent to {n} more sink(s)"),
        }
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // `_guard` drops here: the log is flushed, and what the other sinks
    // hold is delivered (or counted) within the flush timeout.
    Ok(())
}
