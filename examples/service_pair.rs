//! Two Rust services, A calling B over loopback, each with its own log; one
//! profiled request joins both logs under one `base_id`.
//!
//! ```text
//! cargo run --all-features --example service_pair -- [--log-dir DIR] [--hmac-keys KEY]
//! ```
//!
//! This is the README's main job. Run without `--role`, the example starts
//! itself twice as child processes (`--role b`, then `--role a` pointed at
//! B), sends A two unprofiled requests (one fast, one 200 ms slower: A's
//! tail capture keeps the slow one) and one profiled request, stops both
//! services (they stop when their stdin closes, flushing their logs), and
//! prints where the logs went, their lines, the rank report, and the
//! profiled request rebuilt from both logs as one tree.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use osprof::list::{list, ListOptions};
use osprof::load_request;
use osprof::model::Tree;
use osprof::rank::{rank, RankOptions};
use osprof::read::Inputs;
use osprof::show::write_text_tree;
use tracing_osprofiler::format::parse_line;
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::reqwest::ProfilingMiddleware;
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{
    CapturePolicy, HmacAlgorithm, HmacKeys, Id, OsProfilerLayer, Signer, TraceInfo,
};
use tracing_subscriber::prelude::*;

type Error = Box<dyn std::error::Error>;

#[derive(Default)]
struct Args {
    role: Option<String>,
    log_dir: Option<PathBuf>,
    hmac_keys: Option<String>,
    downstream: Option<String>,
}

const USAGE: &str = "usage: service_pair [--log-dir DIR] [--hmac-keys KEY]";

fn parse_args() -> Result<Args, Error> {
    let mut args = Args::default();
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        if matches!(flag.as_str(), "-h" | "--help") {
            // Asked for: the usage on stdout, and success.
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = iter.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--role" => args.role = Some(value),
            "--log-dir" => args.log_dir = Some(PathBuf::from(value)),
            "--hmac-keys" => args.hmac_keys = Some(value),
            "--downstream" => args.downstream = Some(value),
            other => return Err(format!("unknown argument {other:?}; {USAGE}").into()),
        }
    }
    Ok(args)
}

fn main() -> std::process::ExitCode {
    // An error is one sentence with its cause on stderr, not a Debug dump.
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("service_pair: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let args = parse_args()?;
    let keys = args
        .hmac_keys
        .clone()
        .unwrap_or_else(|| "SECRET_KEY".to_owned());
    match args.role.as_deref() {
        None => orchestrate(args.log_dir, &keys),
        Some(role @ ("a" | "b")) => {
            let log_dir = args.log_dir.ok_or("--log-dir is required with --role")?;
            tokio::runtime::Runtime::new()?.block_on(serve(role, &log_dir, &keys, args.downstream))
        }
        Some(other) => Err(format!("--role {other:?}: expected a or b").into()),
    }
}

// ---- the two services -------------------------------------------------

/// Stands in for a database round trip: it waits, so its busy time (the
/// span entered on a thread) is far below its wall time.
#[tracing::instrument(skip_all)]
async fn db_query(millis: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    millis
}

/// Real CPU work (a checksum over the rows): its busy time is close to its
/// wall time.
#[tracing::instrument]
fn checksum(rows: u64) -> u64 {
    let mut sum = rows;
    for i in 0..1_500_000u64 {
        sum = std::hint::black_box(sum.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    sum
}

#[tracing::instrument]
async fn b_lookup() -> String {
    let rows = db_query(7).await;
    std::hint::black_box(checksum(rows));
    format!("B looked up {rows} rows")
}

#[tracing::instrument(skip_all)]
async fn a_call_b(client: &reqwest_middleware::ClientWithMiddleware, url: &str) -> String {
    match client.get(url).send().await {
        Ok(response) => response.text().await.unwrap_or_else(|e| e.to_string()),
        Err(error) => format!("B failed: {error}"),
    }
}

/// The extra work `GET /?delay_ms=N` asks A for.
#[tracing::instrument]
async fn slow_work(delay_ms: u64) {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
}

#[tracing::instrument(skip_all)]
async fn a_handle(
    client: reqwest_middleware::ClientWithMiddleware,
    url: String,
    delay_ms: Option<u64>,
) -> String {
    if let Some(delay) = delay_ms {
        slow_work(delay).await;
    }
    let cached = db_query(3).await;
    let from_b = a_call_b(&client, &url).await;
    format!("A read {cached} rows; {from_b}\n")
}

async fn serve(
    role: &str,
    log_dir: &Path,
    keys: &str,
    downstream: Option<String>,
) -> Result<(), Error> {
    let (writer, _guard) = RollingFile::new(log_dir).build()?;
    tracing_subscriber::registry()
        // Fields on: a request kept by tail capture says why on its root's
        // start line (`{"capture.kept":"slow"}`), which `osprof list` reads.
        .with(OsProfilerLayer::new(writer).with_fields(true))
        .init();
    // Requests without a token are recorded in memory and written only if
    // they took 150 ms or more (tail capture).
    let capture = CapturePolicy::new()
        .with_keep_slower_than(Some(Duration::from_millis(150)))
        .build();
    let layer = ProfilingLayer::new(HmacKeys::from_comma_separated(keys)).with_capture(capture);
    let app = if role == "a" {
        let url = downstream.ok_or("--downstream is required for --role a")?;
        // The client is built with `redirect::Policy::none()` forced: the
        // middleware follows redirects itself, each hop checked against its
        // destinations.
        let client = ProfilingMiddleware::new()
            .client_builder(reqwest::Client::builder())?
            .build();
        Router::new().route(
            "/",
            get(move |Query(query): Query<HashMap<String, String>>| {
                let delay = query.get("delay_ms").and_then(|v| v.parse().ok());
                a_handle(client.clone(), url.clone(), delay)
            }),
        )
    } else {
        Router::new().route("/", get(b_lookup))
    }
    .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    // Stop when the parent closes our stdin, so the log guard flushes.
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stdin_closed.await;
        })
        .await?;
    Ok(())
}

// ---- the orchestrator -------------------------------------------------

struct Service {
    child: Child,
    port: u16,
}

impl Service {
    fn start(
        role: &str,
        log_dir: &Path,
        keys: &str,
        downstream: Option<&str>,
    ) -> Result<Self, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find this program to start service {role}: {e}"))?;
        let mut command = Command::new(exe);
        command
            .args(["--role", role, "--hmac-keys", keys, "--log-dir"])
            .arg(log_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(url) = downstream {
            command.args(["--downstream", url]);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start service {role}: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let port = match line.trim().parse() {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                return Err(format!("service {role} did not start").into());
            }
        };
        Ok(Service { child, port })
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Reached only on an early return: do not leave a child behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A directory of the example's own, removed when the example ends, on
/// success or error, unless the user named it.
struct LogRoot {
    path: PathBuf,
    temporary: bool,
}

impl Drop for LogRoot {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
            println!(
                "
(the logs were in {}, a temporary directory, removed now: \
                 pass --log-dir DIR to keep them)",
                self.path.display()
            );
        }
    }
}

fn orchestrate(log_dir: Option<PathBuf>, keys: &str) -> Result<(), Error> {
    let root = match log_dir {
        Some(path) => LogRoot {
            path,
            temporary: false,
        },
        None => LogRoot {
            path: std::env::temp_dir()
                .join(format!("osprofiler-service-pair-{}", std::process::id())),
            temporary: true,
        },
    };
    let (dir_a, dir_b) = (root.path.join("a"), root.path.join("b"));
    for dir in [&dir_a, &dir_b] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    }

    let b = Service::start("b", &dir_b, keys, None)?;
    let b_url = format!("http://127.0.0.1:{}/", b.port);
    let a = Service::start("a", &dir_a, keys, Some(&b_url))?;
    let a_url = format!("http://127.0.0.1:{}/", a.port);

    let first_key = keys.split(',').next().unwrap_or(keys).trim().to_owned();
    let info = TraceInfo::new_request();
    let headers = Signer::new(first_key, HmacAlgorithm::Sha1).sign(&info);
    let runtime = tokio::runtime::Runtime::new()?;
    let (plain, slow, profiled) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let plain = client.get(&a_url).send().await?.text().await?;
        let slow_url = format!("{a_url}?delay_ms=200");
        let slow = client.get(&slow_url).send().await?.text().await?;
        let mut request = client.get(&a_url);
        for (name, value) in headers.iter() {
            request = request.header(name, value);
        }
        let profiled = request.send().await?.text().await?;
        Ok::<_, reqwest::Error>((plain, slow, profiled))
    })?;
    a.stop();
    b.stop();

    print!(
        "unprofiled call: {plain}unprofiled call taking 200 ms more: {slow}profiled call:   {profiled}"
    );
    println!("profiled request: base_id {}", info.base_id());
    show_logs(&[("A", &dir_a), ("B", &dir_b)], info.base_id())
}

/// Prints what the two logs say: their lines, Mistral's rank table with
/// self time, and the profiled request rebuilt from both logs as one tree.
/// Every report is the library function `osprof` calls.
fn show_logs(services: &[(&str, &Path)], base_id: Id) -> Result<(), Error> {
    let mut files = Vec::new();
    for (service, dir) in services {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)?;
            let lines = text.lines().count();
            let foreign = text
                .lines()
                .filter_map(|l| parse_line(l.as_bytes()).ok())
                .filter(|l| l.ids.base_id != base_id)
                .count();
            // A keeps the slow unsigned request; its call to B carries no
            // token (a captured request signs nothing), so B writes none.
            let why = if foreign == 0 {
                "the unprofiled calls wrote nothing here"
            } else {
                "the slow unprofiled call, kept by tail capture; the fast one wrote nothing"
            };
            println!(
                "\nservice {service} logged {lines} lines to {} ({foreign} from other requests: \
                 {why})",
                path.display()
            );
            for line in text.lines() {
                println!("  {line}");
            }
            files.push(path);
        }
    }
    let inputs = Inputs::from_paths(&files)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n$ osprof list LOGS")?;
    list(&inputs, &ListOptions::new())?.write(&mut out)?;
    // Busy time: the sleeping database calls wait, the checksum works.
    writeln!(out, "\n$ osprof rank --self --busy LOGS")?;
    rank(
        &inputs,
        &RankOptions::new().with_self_time(true).with_busy(true),
    )?
    .write(&mut out)?;
    writeln!(out, "\n$ osprof show {base_id} LOGS")?;
    let request = load_request(&inputs, base_id)?.ok_or("the profiled request is in no log")?;
    write_text_tree(&Tree::new(&request), &mut out)?;
    Ok(())
}
