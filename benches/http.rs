//! The cost of the tower middleware, in process (no sockets).
//!
//! ```text
//! cargo bench --bench http --features tower
//! ```
//!
//! One tower `Service` (a `service_fn` whose handler opens two nested spans
//! and returns a small body) is called with `ready().await` + `call()`, and
//! its response body is read to the end, in four setups:
//!
//! * `bare`: the service alone;
//! * `unprofiled`: behind the `ProfilingLayer`, requests without a token;
//! * `bad token`: behind the layer, a token that fails its signature check;
//! * `profiled`: behind the layer, a valid token; three trace points a
//!   request written through `writer::RollingFile` to a temporary directory.
//!
//! The setups take turns: a warm-up round of each, then several rounds of
//! each, interleaved; the median and the fastest round's ns/request are
//! reported, and their ratios to `bare` in the same run.

use std::convert::Infallible;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt as _, Full};
use tower::{Layer as _, Service, ServiceExt as _};
use tracing_osprofiler::http::ProfilingLayer;
use tracing_osprofiler::limit::ProfileLimit;
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, OsProfilerLayer, Signer, TraceInfo};
use tracing_subscriber::prelude::*;

const KEY: &str = "SECRET_KEY";
const REQUESTS_PER_ROUND: u32 = 5_000;
const ROUNDS: usize = 31;

async fn handler(_request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = {
        let _outer = tracing::info_span!("handler").entered();
        let _inner = tracing::info_span!("render").entered();
        Bytes::from_static(b"hello world")
    };
    Ok(Response::new(Full::new(body)))
}

async fn round<S, B>(service: &mut S, headers: &HeaderMap) -> f64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let started = Instant::now();
    for _ in 0..REQUESTS_PER_ROUND {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.headers_mut() = headers.clone();
        let response = match service.ready().await {
            Ok(ready) => ready.call(request).await,
            Err(never) => match never {},
        };
        let body = match response {
            Ok(response) => response.into_body(),
            Err(never) => match never {},
        };
        let collected = body.collect().await.expect("body").to_bytes();
        assert_eq!(collected.len(), 11);
    }
    started.elapsed().as_nanos() as f64 / f64::from(REQUESTS_PER_ROUND)
}

/// The median and the fastest round: on a busy machine the fastest round is
/// the one least disturbed by other processes.
fn summary(mut rounds: Vec<f64>) -> (f64, f64) {
    rounds.sort_by(f64::total_cmp);
    (rounds[rounds.len() / 2], rounds[0])
}

fn token_headers(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let signed = Signer::new(key, HmacAlgorithm::Sha1).sign(&TraceInfo::new_request());
    for (name, value) in signed.iter() {
        headers.insert(name, value.parse().expect("header value"));
    }
    headers
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (writer, guard) = RollingFile::new(dir.path()).build().expect("writer");
    let layer = OsProfilerLayer::new(writer);
    let layer_stats = layer.stats();
    tracing_subscriber::registry().with(layer).init();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let profiling = ProfilingLayer::new(HmacKeys::from_comma_separated(KEY))
        .with_limit(ProfileLimit::unlimited());
    let stats = profiling.stats();
    let none = HeaderMap::new();
    let valid = token_headers(KEY);
    let forged = token_headers("not the key");

    // The setups take turns round by round, so that load from other
    // processes on the machine hits them alike.
    let (bare, unprofiled, bad, profiled) = runtime.block_on(async {
        let mut bare_service = tower::service_fn(handler);
        let mut unprofiled_service = profiling.layer(tower::service_fn(handler));
        let mut bad_service = profiling.layer(tower::service_fn(handler));
        let mut profiled_service = profiling.layer(tower::service_fn(handler));
        let mut results = [(); 4].map(|()| Vec::with_capacity(ROUNDS));
        for index in 0..=ROUNDS {
            let times = [
                round(&mut bare_service, &none).await,
                round(&mut unprofiled_service, &none).await,
                round(&mut bad_service, &forged).await,
                round(&mut profiled_service, &valid).await,
            ];
            // Round 0 is the warm-up.
            if index > 0 {
                for (result, time) in results.iter_mut().zip(times) {
                    result.push(time);
                }
            }
        }
        let [bare, unprofiled, bad, profiled] = results.map(summary);
        (bare, unprofiled, bad, profiled)
    });
    drop(guard);

    let per_setup = u64::from(REQUESTS_PER_ROUND) * (ROUNDS as u64 + 1);
    assert_eq!(
        stats.requests_profiled(),
        per_setup,
        "every valid request was profiled"
    );
    assert_eq!(stats.tokens_bad_signature(), per_setup);
    assert_eq!(layer_stats.points_started(), 3 * per_setup);

    println!("{REQUESTS_PER_ROUND} requests per round, {ROUNDS} rounds per setup");
    println!(
        "{:<12} {:>14} {:>10} {:>14} {:>10}",
        "setup", "median ns/req", "vs bare", "fastest ns/req", "vs bare"
    );
    for (name, (median, fastest)) in [
        ("bare", bare),
        ("unprofiled", unprofiled),
        ("bad token", bad),
        ("profiled", profiled),
    ] {
        println!(
            "{name:<12} {median:>14.0} {:>9.2}x {fastest:>14.0} {:>9.2}x",
            median / bare.0,
            fastest / bare.1
        );
    }
}
