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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tracing::Instrument as _;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{HmacKeys, OsProfilerLayer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

struct Args {
    listen: SocketAddr,
    log_dir: PathBuf,
    hmac_keys: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        log_dir: PathBuf::from("osprofiler-logs"),
        hmac_keys: "SECRET_KEY".to_owned(),
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
            "-h" | "--help" => {
                return Err(
                    "usage: axum_service [--listen ADDR] [--log-dir DIR] [--hmac-keys K1,K2]"
                        .to_owned(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

#[tracing::instrument(skip_all)]
async fn db_query(statement: &'static str, millis: u64) -> usize {
    // Stands in for a database round trip.
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

#[tracing::instrument]
async fn render(bytes: usize) -> String {
    format!("hello, user 42 ({bytes} bytes of data)\n")
}

async fn index() -> String {
    let bytes = load_user(42).await;
    render(bytes).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (writer, _guard) = RollingFile::new(&args.log_dir).build()?;
    tracing_subscriber::registry()
        // Fields on start lines: the root's method and path, `user = 42`.
        .with(OsProfilerLayer::new(writer).with_fields(true))
        // The middleware's summary warnings about refused tokens.
        .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::WARN))
        .init();

    let keys = HmacKeys::from_comma_separated(&args.hmac_keys);
    if keys.is_empty() {
        return Err("--hmac-keys: no key given".into());
    }
    let app = Router::new()
        .route("/", get(index))
        .layer(ProfilingLayer::new(keys).with_method_and_path(true));

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "listening on http://{}/ ; profiled requests are logged in {}",
        listener.local_addr()?,
        args.log_dir.display()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // `_guard` drops here and flushes the log.
    Ok(())
}
