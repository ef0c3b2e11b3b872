//! An OTLP/HTTP collector in the test process: axum on its own thread and
//! runtime, decoding every `POST /v1/traces` with opentelemetry-proto's
//! types, answering as a script says (accept, an error status with or
//! without `Retry-After`, a slow answer, a 200 with garbage), and keeping
//! every span it accepted with the resource it came with. It can be stopped
//! and started again on the same port (a collector that goes down).
//!
//! Also: a port nothing listens on, a TCP server that answers garbage
//! instead of HTTP, and checks of the traces received.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::IntoFuture as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// How the collector answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with an empty protobuf response; the spans are kept.
    Accept,
    /// 200 with a partial success rejecting this many spans; all are kept.
    Reject(i64),
    /// This status (and `Retry-After`, if given); nothing is kept.
    Status(u16, Option<String>),
    /// Waits, then accepts.
    Slow(Duration),
    /// 200 with a body that is no protobuf; the spans are kept.
    Garbage,
}

/// One span as received, with its resource's service and host names.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub host: Option<String>,
    pub scope: String,
    pub span: Span,
}

impl Received {
    pub fn trace_id(&self) -> [u8; 16] {
        self.span
            .trace_id
            .as_slice()
            .try_into()
            .expect("16-byte trace id")
    }

    pub fn span_id(&self) -> u64 {
        u64::from_be_bytes(
            self.span
                .span_id
                .as_slice()
                .try_into()
                .expect("8-byte span id"),
        )
    }

    pub fn parent(&self) -> Option<u64> {
        if self.span.parent_span_id.is_empty() {
            None
        } else {
            Some(u64::from_be_bytes(
                self.span
                    .parent_span_id
                    .as_slice()
                    .try_into()
                    .expect("8-byte parent span id"),
            ))
        }
    }

    pub fn attr(&self, key: &str) -> Option<&any_value::Value> {
        attr(&self.span.attributes, key)
    }

    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key)? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }
    }

    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key)? {
            any_value::Value::IntValue(i) => Some(*i),
            _ => None,
        }
    }
}

pub fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    /// What to answer once the script is used up.
    otherwise: Option<Reply>,
    spans: Vec<Received>,
    requests: usize,
    gzipped: usize,
    /// Requests that were not protobuf `ExportTraceServiceRequest`s.
    malformed: Vec<String>,
    headers: Vec<HeaderMap>,
    arrivals: Vec<Instant>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The in-process collector.
pub struct Collector {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<(tokio::sync::oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Collector {
    /// A collector on a free loopback port, accepting everything.
    pub fn start() -> Collector {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind the collector");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let mut collector = Collector {
            addr,
            shared,
            server: None,
        };
        collector.serve(listener);
        collector
    }

    fn serve(&mut self, listener: StdListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::clone(&self.shared);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("test-otlp-collector".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let app = axum::Router::new().route(
                        "/v1/traces",
                        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                            let shared = Arc::clone(&shared);
                            // A task of its own: a client that stops
                            // waiting does not cancel the work, as with a
                            // real collector that read the request.
                            async move {
                                tokio::spawn(receive(shared, headers, body))
                                    .await
                                    .expect("the collector's handler")
                            }
                        }),
                    );
                    // Stopping drops the server and then the runtime, with
                    // every connection task: a crash, not a graceful close.
                    tokio::select! {
                        served = axum::serve(listener, app).into_future() => served.expect("serve"),
                        _ = stopped => {}
                    }
                });
                // Open connections die with the runtime.
                drop(runtime);
            })
            .expect("collector thread");
        self.server = Some((stop, thread));
    }

    /// `otlp://127.0.0.1:PORT`.
    pub fn connection_string(&self) -> String {
        format!("otlp://{}", self.addr)
    }

    /// The OTLP sink to this collector, as [`quick_sink`] makes it.
    pub fn sink(&self) -> tracing_osprofiler::writer::Otlp {
        quick_sink(&self.connection_string())
    }

    /// A node `nova`/`api` exporting to this collector with [`sink`](Self::sink).
    pub fn node(&self) -> Node {
        Node::new(self.sink(), "nova", "api")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next requests as `replies` say, then as before.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().script.extend(replies);
    }

    /// Answers every request after the script this way (default: accept).
    pub fn otherwise(&self, reply: Reply) {
        self.shared.lock().otherwise = Some(reply);
    }

    /// Stops listening (connections are refused) until [`resume`].
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.server.take() {
            let _ = stop.send(());
            thread.join().expect("collector thread");
        }
    }

    /// Listens again on the same port.
    pub fn resume(&mut self) {
        if self.server.is_some() {
            return;
        }
        // The port was ours a moment ago; nothing else binds loopback
        // ports in this test, but a socket in TIME_WAIT may delay it.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match StdListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Every span accepted so far.
    pub fn spans(&self) -> Vec<Received> {
        self.shared.lock().spans.clone()
    }

    pub fn requests(&self) -> usize {
        self.shared.lock().requests
    }

    /// When each request came in.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.shared.lock().arrivals.clone()
    }

    pub fn gzipped(&self) -> usize {
        self.shared.lock().gzipped
    }

    pub fn headers(&self) -> Vec<HeaderMap> {
        self.shared.lock().headers.clone()
    }

    /// Requests that did not decode; none is expected.
    pub fn malformed(&self) -> Vec<String> {
        self.shared.lock().malformed.clone()
    }

    /// Waits until at least `n` spans were accepted (failing the test after
    /// `limit`, so that a missing span is a failure, not a hang); returns
    /// them all.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        let mut state = self.shared.lock();
        while state.spans.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the collector got {} spans of {n} within {limit:?}: {:#?}",
                state.spans.len(),
                state.spans.iter().map(|r| &r.span.name).collect::<Vec<_>>()
            );
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.spans.clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn receive(shared: Arc<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut state = shared.lock();
        state.requests += 1;
        state.arrivals.push(Instant::now());
        state.headers.push(headers.clone());
        state
            .script
            .pop_front()
            .or_else(|| state.otherwise.clone())
            .unwrap_or(Reply::Accept)
    };
    if let Reply::Slow(delay) = &reply {
        tokio::time::sleep(*delay).await;
    }
    let keep = matches!(
        reply,
        Reply::Accept | Reply::Reject(_) | Reply::Slow(_) | Reply::Garbage
    );
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let content_type_ok = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    let decoded = decode(&body, gzip);
    {
        let mut state = shared.lock();
        if gzip {
            state.gzipped += 1;
        }
        match decoded {
            Ok(request) if content_type_ok => {
                if keep {
                    state.spans.extend(flatten(request));
                }
            }
            Ok(_) => state.malformed.push(format!("content type {headers:?}")),
            Err(why) => state.malformed.push(why),
        }
        shared.changed.notify_all();
    }
    match reply {
        Reply::Accept | Reply::Slow(_) => protobuf(ExportTraceServiceResponse::default()),
        Reply::Reject(n) => protobuf(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: "too old".into(),
            }),
        }),
        Reply::Status(code, retry_after) => {
            let mut response = StatusCode::from_u16(code).expect("status").into_response();
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", value.parse().expect("header value"));
            }
            response
        }
        Reply::Garbage => (
            [("content-type", "application/x-protobuf")],
            vec![0xff_u8, 0xff, 0xff, 0xff, 0x0f, 0x42, 0x99],
        )
            .into_response(),
    }
}

fn protobuf(message: ExportTraceServiceResponse) -> Response {
    (
        [("content-type", "application/x-protobuf")],
        message.encode_to_vec(),
    )
        .into_response()
}

fn decode(body: &[u8], gzip: bool) -> Result<ExportTraceServiceRequest, String> {
    let plain = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .map_err(|e| format!("gzip: {e}"))?;
        out
    } else {
        body.to_vec()
    };
    ExportTraceServiceRequest::decode(plain.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Received> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let attributes = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let text = |key| match attr(&attributes, key) {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        };
        let service = text("service.name").unwrap_or_default();
        let host = text("host.name");
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for span in scope_spans.spans {
                out.push(Received {
                    service: service.clone(),
                    host: host.clone(),
                    scope: scope.clone(),
                    span,
                });
            }
        }
    }
    out
}

/// A loopback port nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A TCP server that answers every connection with bytes that are not
/// HTTP and closes it; runs until the process ends. Returns its port.
pub fn garbage_server() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::Builder::new()
        .name("test-garbage-server".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"\x00\x01garbage, not HTTP at all\r\n\r\n\xff\xfe");
            }
        })
        .expect("garbage thread");
    port
}

/// A TCP server that reads each request whole (its headers and the body
/// its `Content-Length` announces) and closes the connection without an
/// answer: a collector that crashes on every request after reading it.
/// Runs until the process ends. Returns its port and the count of requests
/// read whole.
pub fn hangup_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&read);
    std::thread::Builder::new()
        .name("test-hangup-server".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if read_request(&mut stream) {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                // Dropped: closed with no answer.
            }
        })
        .expect("hangup thread");
    (port, read)
}

/// Reads one HTTP request with a `Content-Length` body; whether it came
/// whole.
fn read_request(stream: &mut std::net::TcpStream) -> bool {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return true;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// Checks that `spans` form exactly one trace with exactly one root and
/// every parent among them; returns the spans by span id.
pub fn one_trace(spans: &[Received]) -> HashMap<u64, Received> {
    assert!(!spans.is_empty(), "no span");
    let traces: HashSet<[u8; 16]> = spans.iter().map(Received::trace_id).collect();
    assert_eq!(traces.len(), 1, "spans of several traces: {spans:#?}");
    let mut by_id = HashMap::new();
    for span in spans {
        let previous = by_id.insert(span.span_id(), span.clone());
        assert!(previous.is_none(), "span id {:x} twice", span.span_id());
    }
    let roots: Vec<&Received> = spans.iter().filter(|s| s.parent().is_none()).collect();
    assert_eq!(
        roots.len(),
        1,
        "one root expected: {:#?}",
        roots.iter().map(|r| &r.span.name).collect::<Vec<_>>()
    );
    for span in spans {
        if let Some(parent) = span.parent() {
            assert!(
                by_id.contains_key(&parent),
                "the parent {parent:x} of {} ({}) is not in the trace",
                span.span.name,
                span.service
            );
        }
    }
    by_id
}

/// Checks that `spans`, received by `collector`, are `count` spans of
/// exactly one trace, the one of the osprofiler request `base` (its
/// base_id is the trace id), and that nothing the collector received was
/// malformed; returns the spans by span id (see [`one_trace`]).
pub fn one_trace_of(
    collector: &Collector,
    spans: &[Received],
    count: usize,
    base: tracing_osprofiler::Id,
) -> HashMap<u64, Received> {
    assert_eq!(spans.len(), count, "{spans:#?}");
    assert!(
        collector.malformed().is_empty(),
        "{:?}",
        collector.malformed()
    );
    let by_id = one_trace(spans);
    assert_eq!(spans[0].span.trace_id, base.as_uuid().as_bytes().to_vec());
    by_id
}

/// The one span named `name`.
pub fn named<'a>(spans: &'a [Received], name: &str) -> &'a Received {
    let found: Vec<&Received> = spans.iter().filter(|s| s.span.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "spans named {name}: {:#?}",
        spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
    );
    found[0]
}

/// The OTLP sink to `endpoint` with its batches sent after 20 ms, not the
/// default 1 s: a test waits for them.
pub fn quick_sink(endpoint: &str) -> tracing_osprofiler::writer::Otlp {
    tracing_osprofiler::writer::Otlp::new(endpoint)
        .expect("endpoint")
        .with_batch_timeout(Duration::from_millis(20))
}

/// A service's profiling set up as a real one would: a writer with the
/// Mistral log file and the OTLP sink, and a subscriber with the layer
/// (fields on). Install it on a thread with [`Node::enter`].
pub struct Node {
    pub writer: tracing_osprofiler::ProfileWriter,
    pub layer: tracing_osprofiler::LayerStats,
    pub guard: Option<tracing_osprofiler::writer::WriterGuard>,
    pub dispatch: tracing::Dispatch,
    pub log_dir: tempfile::TempDir,
}

impl Node {
    /// `project`/`service` on host `test-host`, the file sink and `otlp`.
    pub fn new(otlp: tracing_osprofiler::writer::Otlp, project: &str, service: &str) -> Node {
        Node::with_builder(
            tracing_osprofiler::ProfileWriter::builder().with_otlp(otlp),
            project,
            service,
        )
    }

    /// Adds the file sink, the identity and a layer to `builder`.
    pub fn with_builder(
        builder: tracing_osprofiler::writer::Builder,
        project: &str,
        service: &str,
    ) -> Node {
        Node::with_field_cap(
            builder,
            project,
            service,
            tracing_osprofiler::format::JsonFields::DEFAULT_MAX_VALUE_BYTES,
        )
    }

    /// As [`with_builder`](Self::with_builder), the layer keeping field
    /// values of up to `max_field_bytes`.
    pub fn with_field_cap(
        builder: tracing_osprofiler::writer::Builder,
        project: &str,
        service: &str,
        max_field_bytes: usize,
    ) -> Node {
        use tracing_subscriber::prelude::*;
        let log_dir = tempfile::tempdir().expect("tempdir");
        let (writer, guard) = builder
            .with_file(
                tracing_osprofiler::writer::RollingFile::new(log_dir.path())
                    .with_rotation(tracing_osprofiler::writer::Rotation::NEVER),
            )
            .with_project(project)
            .with_service(service)
            .with_host("test-host")
            .build()
            .expect("build the writer");
        let layer = tracing_osprofiler::OsProfilerLayer::new(writer.clone())
            .with_fields(true)
            .with_max_field_bytes(max_field_bytes);
        let layer_stats = layer.stats();
        let subscriber = tracing_subscriber::registry().with(layer);
        Node {
            writer,
            layer: layer_stats,
            guard: Some(guard),
            dispatch: tracing::Dispatch::new(subscriber),
            log_dir,
        }
    }

    /// Makes this node's subscriber the current thread's default.
    pub fn enter(&self) -> tracing::dispatcher::DefaultGuard {
        tracing::dispatcher::set_default(&self.dispatch)
    }

    /// Flushes every sink, failing the test if that takes over `limit`.
    pub fn flush(&self, limit: Duration) {
        self.guard
            .as_ref()
            .expect("guard")
            .flush(limit)
            .expect("the writer flushes in time");
    }

    /// The OTLP sink's counters.
    pub fn otlp(&self) -> tracing_osprofiler::writer::SinkStats {
        self.writer
            .stats()
            .sink(tracing_osprofiler::writer::SinkKind::Otlp)
            .expect("an OTLP sink")
    }

    /// Every point of the Mistral log, read back.
    pub fn log_points(&self) -> super::Points {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.log_dir.path()).expect("log dir") {
            bytes.extend(std::fs::read(entry.expect("entry").path()).expect("read log"));
        }
        super::Points::parse(&bytes)
    }
}
