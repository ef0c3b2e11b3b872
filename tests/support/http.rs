//! Helpers shared by the HTTP tests of every framework (tower, actix-web,
//! the poem recipe): an in-memory line collector behind one global
//! subscriber, token signing, tree checks, servers on loopback, and the one
//! list of tokens every middleware must refuse.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tracing::Instrument as _;
use tracing_osprofiler::format::{parse_line, Phase};
use tracing_osprofiler::{
    HmacAlgorithm, Id, LayerStats, OsProfilerLayer, Signer, TraceHeaders, TraceInfo,
};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// The shared secret every test service accepts.
pub const KEY: &str = "SECRET_KEY";

/// Collects every line the layer writes, in memory.
#[derive(Clone, Default)]
pub struct Collector(Arc<Mutex<Vec<String>>>);

pub struct CollectorWriter(Arc<Mutex<Vec<String>>>);

impl io::Write for CollectorWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf).into_owned();
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines.extend(text.lines().map(str::to_owned));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Collector {
    type Writer = CollectorWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CollectorWriter(Arc::clone(&self.0))
    }
}

impl Collector {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The process-wide subscriber (tokio runs tasks on other threads, so a
/// thread-local default would miss them) and a lock that runs the tests of
/// one binary one at a time, so "no line was written" can be checked.
pub fn global() -> (Collector, Serial) {
    static GLOBAL: OnceLock<(Collector, LayerStats)> = OnceLock::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    let (collector, stats) = GLOBAL.get_or_init(|| {
        let collector = Collector::default();
        let layer = OsProfilerLayer::from_make_writer(collector.clone()).with_fields(true);
        let stats = layer.stats();
        tracing_subscriber::registry()
            .with(layer)
            .with(WarnCounter)
            .init();
        (collector, stats)
    });
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The previous test's server may still be closing the root of its last
    // request (a root closes just after its response is read): let its
    // stop line land before clearing, or it would land in this test's
    // lines. Bounded: a test that leaves a point open on purpose only
    // delays the next one; but a point leaked by mistake delays every later
    // test and fails it far from the cause, so say so when it happens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while stats.points_live() > 0 {
        if std::time::Instant::now() >= deadline {
            eprintln!(
                "support::http::global: {} point(s) still live after 5 s; \
                 a previous test of this binary leaked a span (its lines may \
                 land in this test's)",
                stats.points_live()
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    collector.clear();
    WARNINGS.store(0, Ordering::SeqCst);
    (collector.clone(), Serial(guard))
}

/// Held by a test for its whole run, across awaits: the tests of a binary
/// run one after the other. Each `#[tokio::test]` blocks its own thread on
/// the lock, outside any runtime worker, so no worker is stalled.
pub struct Serial(#[allow(dead_code)] MutexGuard<'static, ()>);

static WARNINGS: AtomicUsize = AtomicUsize::new(0);

/// Warnings the middleware logged since [`global`] was called.
pub fn warnings() -> usize {
    WARNINGS.load(Ordering::SeqCst)
}

struct WarnCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarnCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN && meta.target() == "tracing_osprofiler::http" {
            WARNINGS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Headers for a new request, as a Python client with `profiler.init(KEY)`
/// would send them (`parent_id == base_id`).
pub fn new_token() -> (Id, TraceHeaders) {
    let base = Id::new_v4();
    let headers = Signer::new(KEY, HmacAlgorithm::Sha1).sign(&TraceInfo::new(base, Some(base)));
    (base, headers)
}

/// One trace point rebuilt from its two lines.
#[derive(Debug, Clone)]
pub struct Point {
    pub name: String,
    pub base_id: Id,
    pub parent_id: Id,
    pub trace_id: Id,
    pub duration: f64,
}

/// Parses `lines`, keeps those of `base_id`, and checks that they form one
/// complete tree: every point has exactly one start and one stop with the
/// same ids, and every parent chain ends at a root whose parent is
/// `root_parent` (the caller's point, or `base_id`). Returns the points by
/// trace id. Panics with a description otherwise.
pub fn tree(lines: &[String], base_id: Id, root_parent: Id) -> BTreeMap<Id, Point> {
    let mut starts: HashMap<Id, (String, Id)> = HashMap::new();
    let mut points: BTreeMap<Id, Point> = BTreeMap::new();
    for text in lines {
        let line = parse_line(text.as_bytes()).unwrap_or_else(|e| panic!("bad line {text:?}: {e}"));
        if line.ids.base_id != base_id {
            continue;
        }
        match line.phase {
            Phase::Start => {
                let previous = starts.insert(
                    line.ids.trace_id,
                    (line.name.to_string(), line.ids.parent_id),
                );
                assert!(previous.is_none(), "two starts for {}", line.ids.trace_id);
            }
            Phase::Stop => {
                let point = Point {
                    name: line.name.to_string(),
                    base_id,
                    parent_id: line.ids.parent_id,
                    trace_id: line.ids.trace_id,
                    duration: line.duration.expect("stop has a duration"),
                };
                let previous = points.insert(line.ids.trace_id, point);
                assert!(previous.is_none(), "two stops for {}", line.ids.trace_id);
            }
        }
    }
    assert!(!points.is_empty(), "no point of {base_id}");
    assert_eq!(
        starts.len(),
        points.len(),
        "starts and stops of {base_id} differ"
    );
    for point in points.values() {
        let (name, parent) = starts
            .get(&point.trace_id)
            .unwrap_or_else(|| panic!("stop without start: {point:?}"));
        assert_eq!((name, parent), (&point.name, &point.parent_id));
        let mut at = point;
        let mut hops = 0;
        while at.parent_id != root_parent {
            at = points
                .get(&at.parent_id)
                .unwrap_or_else(|| panic!("{point:?}: parent chain broken at {at:?}"));
            hops += 1;
            assert!(hops < 1000, "parent cycle");
        }
    }
    points
}

/// The one point named `name`.
pub fn only<'a>(points: &'a BTreeMap<Id, Point>, name: &str) -> &'a Point {
    let found: Vec<_> = points.values().filter(|p| p.name == name).collect();
    assert_eq!(found.len(), 1, "points named {name}: {points:#?}");
    found[0]
}

/// Serves `app` on a free loopback port until the runtime ends.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    addr
}

/// The keys every test service accepts.
pub fn keys() -> tracing_osprofiler::HmacKeys {
    tracing_osprofiler::HmacKeys::from_comma_separated(KEY)
}

/// `GET url` with these raw header values (any bytes, so that non-ASCII and
/// non-UTF-8 values reach the server as sent): its status and body.
pub async fn get_with(url: &str, headers: &[(&str, &[u8])]) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).expect("header value"),
        );
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// `GET url` with a new token ([`new_token`]): the token's base_id, and
/// the answer's status and body.
pub async fn get_profiled(url: &str) -> (Id, (u16, String)) {
    let (base, token) = new_token();
    (base, get_with(url, &token_headers(&token)).await)
}

/// A reqwest client with the crate's middleware as it comes: it signs its
/// calls inside a profile, and adds nothing outside one.
pub fn profiling_client() -> reqwest_middleware::ClientWithMiddleware {
    tracing_osprofiler::reqwest::ProfilingMiddleware::new()
        .client_builder(reqwest::Client::builder())
        .expect("a reqwest client")
        .build()
}

/// The body of `GET url` through `client` (one with the crate's reqwest
/// middleware, which signs the call inside a profile); the call must
/// succeed, whatever its status.
pub async fn text_through(client: &reqwest_middleware::ClientWithMiddleware, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("call")
        .text()
        .await
        .expect("body")
}

/// Signed headers as `get_with` takes them.
pub fn token_headers(headers: &TraceHeaders) -> Vec<(&'static str, &[u8])> {
    headers
        .iter()
        .map(|(name, value)| (name, value.as_bytes()))
        .collect()
}

/// One token a middleware must refuse: what it is, the headers that carry
/// it (any bytes), and the counter it lands in (`missing`,
/// `bad_signature`, `malformed` or `oversized`).
#[derive(Debug)]
pub struct Refusal {
    pub what: &'static str,
    pub headers: Vec<(&'static str, Vec<u8>)>,
    pub reason: &'static str,
}

/// Every kind of token a middleware of this crate must refuse, made from
/// `good` (a valid token under [`KEY`]): headers missing, empty, doubled or
/// too long, signatures that do not match, and signed texts that are not
/// a trace info.
pub fn refusals(good: &TraceHeaders) -> Vec<Refusal> {
    use base64::Engine as _;
    use tracing_osprofiler::{X_TRACE_HMAC as HMAC, X_TRACE_INFO as INFO};

    let info = good.trace_info().as_bytes().to_vec();
    let hmac = good.trace_hmac().as_bytes().to_vec();
    let case = |what, headers: &[(&'static str, &[u8])], reason| Refusal {
        what,
        headers: headers.iter().map(|(n, v)| (*n, v.to_vec())).collect(),
        reason,
    };
    // A text signed with KEY: its signature verifies, so only what it says
    // can refuse it.
    let signed = |what, text: String| {
        let hmac = super::hmac_sha1_hex(KEY.as_bytes(), text.as_bytes());
        case(
            what,
            &[(INFO, text.as_bytes()), (HMAC, hmac.as_bytes())],
            "malformed",
        )
    };
    let b64 = |json: &str| base64::engine::general_purpose::URL_SAFE.encode(json);
    let base = Id::new_v4();

    let mut tampered = info.clone();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let other_key = Signer::new("other", HmacAlgorithm::Sha1).sign(&TraceInfo::new_request());
    let (_, other_request) = new_token();
    let wrong_key = Signer::new("WRONG", HmacAlgorithm::Sha1)
        .sign(&TraceInfo::new(Id::new_v4(), None))
        .trace_hmac()
        .to_owned();
    let upper = good.trace_hmac().to_uppercase();
    let mut non_ascii_hmac = hmac.clone();
    non_ascii_hmac[0] = 0xe9;
    let non_utf8_hmac = [&hmac[..hmac.len() - 2], &b"\xe9\xe9"[..]].concat();
    let mut non_utf8_info = info.clone();
    non_utf8_info[0] = 0xff;
    let non_ascii_info = "é".repeat(40);
    let long_info = "A".repeat(5000);
    let long_b64_info = base64::engine::general_purpose::STANDARD.encode("x".repeat(5000));
    let long_hmac = "a".repeat(200);

    vec![
        case("only info", &[(INFO, &info)], "missing"),
        case("only hmac", &[(HMAC, &hmac)], "missing"),
        case("empty info", &[(INFO, b""), (HMAC, &hmac)], "missing"),
        case("empty hmac", &[(INFO, &info), (HMAC, b"")], "missing"),
        case(
            "wrong key",
            &[
                (INFO, other_key.trace_info().as_bytes()),
                (HMAC, other_key.trace_hmac().as_bytes()),
            ],
            "bad_signature",
        ),
        case(
            "signed by a wrong key for another info",
            &[(INFO, &info), (HMAC, wrong_key.as_bytes())],
            "bad_signature",
        ),
        case(
            "another request's signature",
            &[(INFO, &info), (HMAC, other_request.trace_hmac().as_bytes())],
            "bad_signature",
        ),
        case(
            "tampered info",
            &[(INFO, &tampered), (HMAC, &hmac)],
            "bad_signature",
        ),
        case(
            "upper-case hex",
            &[(INFO, &info), (HMAC, upper.as_bytes())],
            "bad_signature",
        ),
        case(
            "non-hex hmac",
            &[(INFO, &info), (HMAC, b"zz")],
            "bad_signature",
        ),
        case(
            "non-ASCII hmac",
            &[(INFO, &info), (HMAC, &non_ascii_hmac)],
            "bad_signature",
        ),
        case(
            "non-UTF-8 hmac",
            &[(INFO, &info), (HMAC, &non_utf8_hmac)],
            "bad_signature",
        ),
        case(
            "non-UTF-8 info",
            &[(INFO, &non_utf8_info), (HMAC, &hmac)],
            "bad_signature",
        ),
        case(
            "non-ASCII info",
            &[(INFO, non_ascii_info.as_bytes()), (HMAC, &hmac)],
            "bad_signature",
        ),
        signed("signed bad base64", "!!!not base64!!!".to_owned()),
        signed("signed non-JSON", b64("not json")),
        signed("signed JSON array", b64("[1, 2]")),
        signed(
            "signed extra key",
            b64(&format!(r#"{{"base_id": "{base}", "hmac_key": "x"}}"#)),
        ),
        signed("signed integer id", b64(r#"{"base_id": 42}"#)),
        signed(
            "signed no base_id",
            b64(&format!(r#"{{"parent_id": "{base}"}}"#)),
        ),
        case(
            "oversized info",
            &[(INFO, long_info.as_bytes()), (HMAC, &hmac)],
            "oversized",
        ),
        case(
            "oversized base64 info",
            &[(INFO, long_b64_info.as_bytes()), (HMAC, &hmac)],
            "oversized",
        ),
        case(
            "oversized hmac",
            &[(INFO, &info), (HMAC, long_hmac.as_bytes())],
            "oversized",
        ),
        case(
            "duplicated info",
            &[(INFO, &info), (INFO, &info), (HMAC, &hmac)],
            "malformed",
        ),
        case(
            "duplicated hmac",
            &[(INFO, &info), (HMAC, &hmac), (HMAC, &hmac)],
            "malformed",
        ),
    ]
}

/// Sends every one of [`refusals`] to `url` (a middleware with `stats`, in
/// front of a handler answering `expected`), one at a time, and checks what
/// any middleware of this crate must do with a token it refuses: the
/// request is served as if it had none, counted under its reason, nothing
/// is written, and the whole flood makes one summary warning. Then the
/// good token they were made from is profiled, so each case failed for its
/// own reason.
pub async fn assert_every_token_refused(
    url: &str,
    stats: &tracing_osprofiler::http::ProfilingStats,
    lines: &Collector,
    expected: &(u16, String),
) {
    let count = |reason: &str| match reason {
        "missing" => stats.requests_without_token(),
        "bad_signature" => stats.tokens_bad_signature(),
        "malformed" => stats.tokens_malformed(),
        "oversized" => stats.tokens_oversized(),
        other => panic!("unknown refusal {other}"),
    };
    let (_, good) = new_token();
    for Refusal {
        what,
        headers,
        reason,
    } in refusals(&good)
    {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, &v[..])).collect();
        let before = count(reason);
        assert_eq!(&get_with(url, &headers).await, expected, "{what}");
        assert_eq!(count(reason), before + 1, "{what} counted as {reason}");
    }
    assert_eq!(
        lines.lines(),
        Vec::<String>::new(),
        "no invalid token wrote a line"
    );
    assert_eq!(stats.requests_profiled(), 0);
    assert_eq!(warnings(), 1, "one summary warning for the whole flood");

    assert_eq!(&get_with(url, &token_headers(&good)).await, expected);
    assert_eq!(stats.requests_profiled(), 1);
}

/// Checks the limit of one profiled request at a time, against a
/// middleware with `stats` and `max_concurrent(1)` in front of the routes
/// of the middleware tests (`url(path)`: `/slow` streams "chunk chunk ",
/// `/` answers "hello 55"): a second signed request while the first body
/// streams is served unprofiled, counted and warned about once; once the
/// first body has ended (its root stop written), the permit is back.
pub async fn assert_over_the_limit_is_served_unprofiled(
    url: impl Fn(&str) -> String,
    stats: &tracing_osprofiler::http::ProfilingStats,
    lines: &Collector,
) {
    let hello = (200, "hello 55".to_owned());
    // The first profiled request holds the only permit while its body
    // streams.
    let (first_base, first) = new_token();
    let mut request = reqwest::Client::new().get(url("/slow"));
    for (name, value) in first.iter() {
        request = request.header(name, value);
    }
    let slow = request.send().await.expect("headers of the slow response");

    let (second_base, second) = new_token();
    assert_eq!(get_with(&url("/"), &token_headers(&second)).await, hello);
    assert_eq!(stats.tokens_over_limit(), 1);
    assert_eq!(warnings(), 1);

    assert_eq!(slow.text().await.expect("slow body"), "chunk chunk ");
    // The permit comes back when the first body ends, just after the
    // client has read it.
    crate::support::eventually_async("the first root's stop written", || {
        lines.lines().iter().any(|l| l.contains("wsgi-stop"))
    })
    .await;
    let (third_base, third) = new_token();
    assert_eq!(get_with(&url("/"), &token_headers(&third)).await, hello);
    assert_eq!(stats.requests_profiled(), 2);

    let all = lines.lines();
    tree(&all, first_base, first_base);
    tree(&all, third_base, third_base);
    assert!(!all.iter().any(|l| l.contains(&second_base.to_string())));
}

/// The tail capture the capture tests of every middleware use: unsigned
/// requests kept when slower than 150 ms or failed.
pub fn capture_slow_or_failed() -> tracing_osprofiler::Capture {
    tracing_osprofiler::CapturePolicy::new()
        .with_keep_slower_than(Some(std::time::Duration::from_millis(150)))
        .with_keep_errors(true)
        .build()
}

/// The roots written (points named `wsgi`), with the text after their name
/// on the start line.
pub fn roots(lines: &[String]) -> Vec<(Id, String)> {
    lines
        .iter()
        .filter_map(|text| {
            let line = parse_line(text.as_bytes()).expect("a line");
            (line.phase == Phase::Start && line.name == "wsgi")
                .then(|| (line.ids.base_id, line.extra.into_owned()))
        })
        .collect()
}

/// Checks [`capture_slow_or_failed`] (its `stats`) behind a middleware
/// (its `profiled` counters), in front of a handler at `url(query)` that
/// does one span `work`, sleeping `delay_ms`, and fails with a 500 when
/// the query is `fail=1`: of three unsigned requests, the fast one leaves
/// nothing, the slow and the failed one are kept whole, each saying why.
pub async fn assert_unsigned_kept_when_slow_or_failed(
    url: impl Fn(&str) -> String,
    stats: &tracing_osprofiler::CaptureStats,
    profiled: &tracing_osprofiler::http::ProfilingStats,
    lines: &Collector,
) {
    let client = reqwest::Client::new();
    let get = |query: &str| {
        let request = client.get(url(query));
        async move { request.send().await.expect("call").status() }
    };

    assert_eq!(get("delay_ms=0").await, 200);
    // The root closes when the response body is done, which may be just
    // after the client has read it: wait for capture's decision, then look.
    crate::support::eventually_async("the fast request decided", || stats.discarded() == 1).await;
    assert!(
        lines.lines().is_empty(),
        "a fast unsigned request writes nothing"
    );
    assert_eq!(get("delay_ms=200").await, 200);
    assert_eq!(get("fail=1").await, 500);
    // A kept tree is written just after its decision, its root's stop last.
    crate::support::eventually_async("all three decided, the kept roots written", || {
        stats.kept_slow() + stats.kept_error() + stats.discarded() >= 3
            && lines
                .lines()
                .iter()
                .filter(|l| l.contains(" wsgi-stop"))
                .count()
                >= 2
    })
    .await;

    assert_eq!(stats.captured(), 3);
    assert_eq!(stats.kept_slow(), 1);
    assert_eq!(stats.kept_error(), 1);
    assert_eq!(stats.discarded(), 1);
    assert_eq!(profiled.requests_profiled(), 0);
    let lines = lines.lines();
    let roots = roots(&lines);
    assert_eq!(roots.len(), 2, "the fast one left nothing: {lines:#?}");
    for (base, _) in &roots {
        let points = tree(&lines, *base, *base);
        let root = only(&points, "wsgi");
        assert_eq!(only(&points, "work").parent_id, root.trace_id);
    }
    for reason in ["slow", "error"] {
        let field = format!(r#""capture.kept":"{reason}""#);
        assert!(
            roots.iter().any(|(_, extra)| extra.contains(&field)),
            "{reason}: {roots:?}"
        );
    }
}

/// The work of the middleware tests' handlers, whatever the framework: a
/// query, then `compute` in a task of its own, instrumented with `load`,
/// spawned by `spawn` (each framework's own, on its own runtime). Returns
/// what `compute` computed (55).
#[tracing::instrument(name = "load", skip_all)]
pub async fn load(
    spawn: impl FnOnce(Pin<Box<dyn Future<Output = u64> + Send>>) -> tokio::task::JoinHandle<u64>,
) -> u64 {
    db_query().await;
    spawn(Box::pin(compute().in_current_span()))
        .await
        .expect("task")
}

/// The query of [`load`].
#[tracing::instrument]
pub async fn db_query() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

/// The part of `load` a spawned task does.
#[tracing::instrument]
pub async fn compute() -> u64 {
    (1..=10).sum()
}

/// Checks the tree of one profiled `/` of the middleware tests (`hello`,
/// whatever the framework), its caller's `base` its base_id and the root's
/// parent: a root `wsgi` under the caller, `load` under the root, and
/// `db_query` and the spawned `compute` under `load`; nothing else. Returns
/// the root.
pub fn assert_hello_tree(points: &BTreeMap<Id, Point>, base: Id) -> &Point {
    let root = only(points, "wsgi");
    assert_eq!(root.parent_id, base, "the root hangs under the caller");
    let load = only(points, "load");
    assert_eq!(load.parent_id, root.trace_id);
    assert_eq!(only(points, "db_query").parent_id, load.trace_id);
    assert_eq!(
        only(points, "compute").parent_id,
        load.trace_id,
        "a spawned task instrumented with the current span joins the tree"
    );
    assert_eq!(points.len(), 4, "{points:#?}");
    root
}

/// The streamed body of the middleware tests' `/slow` route, whatever the
/// framework's body trait: two chunks 150 ms apart, opening a span
/// `body-chunk` for each.
#[derive(Default)]
pub struct SlowChunks {
    sent: u8,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl SlowChunks {
    /// The next chunk, `None` after the second.
    pub fn poll_chunk(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<bytes::Bytes>> {
        use std::future::Future as _;
        if self.sent == 2 {
            return std::task::Poll::Ready(None);
        }
        let sleep = self.sleep.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep(std::time::Duration::from_millis(150)))
        });
        std::task::ready!(sleep.as_mut().poll(cx));
        self.sleep = None;
        self.sent += 1;
        let _chunk = tracing::info_span!("body-chunk").entered();
        std::task::Poll::Ready(Some(bytes::Bytes::from_static(b"chunk ")))
    }
}
