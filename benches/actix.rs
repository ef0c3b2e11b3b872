//! The cost of the actix-web middleware, in process (no sockets), beside
//! `benches/http.rs` for the tower one.
//!
//! ```text
//! cargo bench --bench actix --features actix
//! ```
//!
//! One actix-web `App` (a route whose handler opens two nested spans and
//! returns a small body) is called through `actix_web::test::init_service`
//! with a `TestRequest`, and its response body is read to the end, in four
//! setups:
//!
//! * `bare`: the app without the middleware;
//! * `no-op`: the app behind a middleware that only passes the request on
//!   (what any actix middleware costs, for scale);
//! * `unprofiled`: `App::wrap(ProfilingMiddleware)`, requests without a
//!   token (the case the ≤ 1.05 × target is about);
//! * `bad token`: behind the middleware, a token that fails its signature;
//! * `profiled`: behind the middleware, a valid token; three trace points
//!   a request written through `writer::RollingFile` to a temporary
//!   directory.
//!
//! The setups take turns round by round (so load from other processes hits
//! them alike): a warm-up round of each, then `ROUNDS` rounds of each. Each
//! round records its wall time and this thread's CPU time (the app runs on
//! this thread: actix's test service is polled in place); the medians and
//! their ratios to `bare` in the same run are printed.
//!
//! In process, a request costs under a microsecond, so the ratio magnifies
//! the middleware's fixed cost. The second table is the request the ≤ 1.05 ×
//! target is about: a real HTTP/1.1 request over a loopback socket to an
//! actix-web server (one worker each, the two servers taking turns), from a
//! minimal keep-alive client on this thread, without and with the
//! middleware; wall time and the CPU time of the whole process (client and
//! server threads) per request.

#[path = "support/mod.rs"]
mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use actix_web::{web, App, HttpResponse};
use support::{loadavg, median, process_cpu_ns, thread_cpu_clock_ns};
use tracing_osprofiler::actix::ProfilingMiddleware;
use tracing_osprofiler::limit::ProfileLimit;
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, OsProfilerLayer, Signer, TraceInfo};
use tracing_subscriber::prelude::*;

const KEY: &str = "SECRET_KEY";
const REQUESTS_PER_ROUND: u32 = 5_000;
const ROUNDS: usize = 31;
const LOOPBACK_REQUESTS_PER_ROUND: u32 = 1_000;
const LOOPBACK_ROUNDS: usize = 21;

async fn handler() -> HttpResponse {
    let body = {
        let _outer = tracing::info_span!("handler").entered();
        let _inner = tracing::info_span!("render").entered();
        "hello world"
    };
    HttpResponse::Ok().body(body)
}

/// One round: wall and CPU nanoseconds per request.
async fn round<S, B>(app: &S, headers: &[(String, String)]) -> (f64, f64)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
    B::Error: std::fmt::Debug,
{
    let cpu_before = thread_cpu_clock_ns();
    let started = Instant::now();
    for _ in 0..REQUESTS_PER_ROUND {
        let mut request = TestRequest::get().uri("/");
        for (name, value) in headers {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
        let response = app.call(request.to_request()).await.expect("response");
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("body");
        assert_eq!(body.len(), 11);
    }
    let wall = started.elapsed().as_nanos() as f64;
    let cpu = match (cpu_before, thread_cpu_clock_ns()) {
        (Some(before), Some(after)) => after.saturating_sub(before) as f64,
        _ => f64::NAN,
    };
    let per = f64::from(REQUESTS_PER_ROUND);
    (wall / per, cpu / per)
}

/// A middleware that passes requests and responses on untouched.
#[derive(Clone, Copy)]
struct Noop;

struct NoopService<S> {
    inner: S,
}

impl<S, B> actix_web::dev::Transform<S, actix_web::dev::ServiceRequest> for Noop
where
    S: Service<
        actix_web::dev::ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = NoopService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<NoopService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(NoopService { inner: service }))
    }
}

impl<S, R> Service<R> for NoopService<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    actix_web::dev::forward_ready!(inner);

    fn call(&self, request: R) -> Self::Future {
        self.inner.call(request)
    }
}

fn token_headers(key: &str) -> Vec<(String, String)> {
    Signer::new(key, HmacAlgorithm::Sha1)
        .sign(&TraceInfo::new_request())
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Starts an actix-web server with one worker on a free loopback port, on
/// a thread of its own, with or without the middleware; it runs until the
/// process ends.
fn start_server(profiling: Option<ProfilingMiddleware>) -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            // Two factories: "bare" has no middleware at all, not even a
            // disabled one.
            let server = match profiling {
                None => {
                    actix_web::HttpServer::new(|| App::new().route("/", web::get().to(handler)))
                        .workers(1)
                        .disable_signals()
                        .bind(("127.0.0.1", 0))
                        .map(|server| (server.addrs()[0], server.run()))
                }
                Some(profiling) => actix_web::HttpServer::new(move || {
                    App::new()
                        .wrap(profiling.clone())
                        .route("/", web::get().to(handler))
                })
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .map(|server| (server.addrs()[0], server.run())),
            };
            let (addr, server) = server.expect("bind");
            sender.send(addr).expect("main waits");
            server.await.expect("serve");
        });
    });
    receiver.recv().expect("server started")
}

/// One round of keep-alive GETs on `stream`: wall and process-CPU
/// nanoseconds per request.
fn loopback_round(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> (f64, f64) {
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";
    let cpu_before = process_cpu_ns();
    let started = Instant::now();
    for _ in 0..LOOPBACK_REQUESTS_PER_ROUND {
        stream.write_all(REQUEST).expect("send");
        buffer.clear();
        let mut chunk = [0u8; 1024];
        // The response: its head, then `content-length` bytes of body.
        let complete = loop {
            let read = stream.read(&mut chunk).expect("receive");
            assert!(read > 0, "the server closed the connection");
            buffer.extend_from_slice(&chunk[..read]);
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&buffer[..end]).expect("an ASCII head");
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .and_then(|value| value.trim().parse().ok())
                    .expect("content-length");
                if buffer.len() >= end + 4 + length {
                    break &buffer[end + 4..end + 4 + length];
                }
            }
        };
        assert_eq!(complete, b"hello world");
    }
    let wall = started.elapsed().as_nanos() as f64;
    let cpu = match (cpu_before, process_cpu_ns()) {
        (Some(before), Some(after)) => after.saturating_sub(before) as f64,
        _ => f64::NAN,
    };
    let per = f64::from(LOOPBACK_REQUESTS_PER_ROUND);
    (wall / per, cpu / per)
}

fn loopback(profiling: ProfilingMiddleware) {
    let connect = |addr| {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
    };
    let mut bare = connect(start_server(None));
    let mut wrapped = connect(start_server(Some(profiling)));
    let mut buffer = Vec::with_capacity(1024);
    let mut results = [(); 2].map(|()| Vec::with_capacity(LOOPBACK_ROUNDS));
    for index in 0..=LOOPBACK_ROUNDS {
        let times = [
            loopback_round(&mut bare, &mut buffer),
            loopback_round(&mut wrapped, &mut buffer),
        ];
        if index > 0 {
            for (result, time) in results.iter_mut().zip(times) {
                result.push(time);
            }
        }
    }
    print_table(
        &format!(
            "over loopback: {LOOPBACK_REQUESTS_PER_ROUND} requests per round, \
             {LOOPBACK_ROUNDS} rounds per setup; load average {}",
            loadavg()
        ),
        "process CPU",
        &["bare", "unprofiled"],
        &results,
    );
}

/// Prints the medians of each setup's rounds and their ratios to the first.
fn print_table(title: &str, cpu: &str, names: &[&str], results: &[Vec<(f64, f64)>]) {
    let medians: Vec<(f64, f64)> = results
        .iter()
        .map(|rounds| {
            let wall: Vec<f64> = rounds.iter().map(|r| r.0).collect();
            let cpu: Vec<f64> = rounds.iter().map(|r| r.1).collect();
            (median(&wall), median(&cpu))
        })
        .collect();
    let (base_wall, base_cpu) = medians[0];
    println!("{title}");
    println!(
        "{:<12} {:>14} {:>10} {:>18} {:>10}",
        "setup",
        "wall ns/req",
        "vs bare",
        format!("{cpu} ns/req"),
        "vs bare"
    );
    for (name, (wall, cpu)) in names.iter().zip(medians) {
        println!(
            "{name:<12} {wall:>14.0} {:>9.3}x {cpu:>18.0} {:>9.3}x",
            wall / base_wall,
            cpu / base_cpu
        );
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (writer, guard) = RollingFile::new(dir.path()).build().expect("writer");
    let layer = OsProfilerLayer::new(writer);
    let layer_stats = layer.stats();
    tracing_subscriber::registry().with(layer).init();

    let profiling = ProfilingMiddleware::new(HmacKeys::from_comma_separated(KEY))
        .with_limit(ProfileLimit::unlimited());
    let stats = profiling.stats();
    let none = Vec::new();
    let valid = token_headers(KEY);
    let forged = token_headers("not the key");

    let results = actix_web::rt::System::new().block_on(async {
        let bare = test::init_service(App::new().route("/", web::get().to(handler))).await;
        let noop =
            test::init_service(App::new().wrap(Noop).route("/", web::get().to(handler))).await;
        let wrapped = test::init_service(
            App::new()
                .wrap(profiling.clone())
                .route("/", web::get().to(handler)),
        )
        .await;
        let mut results = [(); 5].map(|()| Vec::with_capacity(ROUNDS));
        for index in 0..=ROUNDS {
            let times = [
                round(&bare, &none).await,
                round(&noop, &none).await,
                round(&wrapped, &none).await,
                round(&wrapped, &forged).await,
                round(&wrapped, &valid).await,
            ];
            // Round 0 is the warm-up.
            if index > 0 {
                for (result, time) in results.iter_mut().zip(times) {
                    result.push(time);
                }
            }
        }
        results
    });

    let per_setup = u64::from(REQUESTS_PER_ROUND) * (ROUNDS as u64 + 1);
    assert_eq!(
        stats.requests_profiled(),
        per_setup,
        "every valid request was profiled"
    );
    assert_eq!(stats.tokens_bad_signature(), per_setup);
    assert_eq!(stats.requests_without_token(), per_setup);
    assert_eq!(layer_stats.points_started(), 3 * per_setup);

    print_table(
        &format!(
            "in process: {REQUESTS_PER_ROUND} requests per round, {ROUNDS} rounds per setup; \
             load average {}",
            loadavg()
        ),
        "thread CPU",
        &["bare", "no-op", "unprofiled", "bad token", "profiled"],
        &results,
    );
    println!();
    loopback(profiling);
    drop(guard);
}
