//! A small OTLP/HTTP receiver for trying the OTLP sink on one machine: it
//! takes what a collector takes at `POST /v1/traces` (protobuf or JSON,
//! gzip or not) and prints each trace it receives as a tree.
//!
//! ```text
//! cargo run --example otlp_receiver -- [--listen 127.0.0.1:4318] [--quiet-ms 1000]
//! ```
//!
//! Then point a service's OTLP sink at it, e.g. the example service:
//!
//! ```text
//! cargo run --example axum_service --features tower,reqwest,otlp -- \
//!     --connection-string otlp://127.0.0.1:4318 --project nova --service api
//! eval curl $(osprof headers) http://127.0.0.1:8080/
//! ```
//!
//! A trace is printed once no span of it has come for `--quiet-ms`
//! milliseconds (spans arrive in batches, a service's and its callees'
//! separately), then forgotten; spans of it that come later are printed as
//! a trace again, marked `continued`. Ctrl-C prints what is pending and
//! stops. One trace is one request: its id is the request's `base_id`, so
//! `osprof show BASE_ID LOG...` finds the same request in the logs.
//!
//! ```text
//! trace 0f5c3f0e-7a41-4b09-9c2d-8b5b0f5c3fe1: 3 spans, 21.772 ms, from nova-api
//! WSGI_GET_/  21.772 ms  +0.000 ms  server  nova-api  http.method=GET http.path=/
//!   load_user  13.571 ms  +0.061 ms  internal  nova-api  user=42
//!     db_query  12.102 ms  +0.070 ms  internal  nova-api
//! ```
//!
//! Each line: the span's name, its duration, when it began after the
//! trace's first span, its kind, its service (`service.name`), its
//! attributes, and `ERROR` when its status is an error. Text from the
//! spans is escaped: a span cannot drive the terminal.
//!
//! This is a tool for a desk, not a collector: it keeps nothing, forwards
//! nothing, and listens on loopback unless told otherwise.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message as _;
use serde_json::Value as Json;

const USAGE: &str = "usage: otlp_receiver [--listen ADDR] [--quiet-ms MS]

An OTLP/HTTP receiver that prints each trace it receives as a tree.

  --listen ADDR   where to listen (default 127.0.0.1:4318, OTLP/HTTP's port;
                  127.0.0.1:0 picks a free port)
  --quiet-ms MS   print a trace once none of its spans came for MS
                  milliseconds (default 1000)

Point a sink at it with the connection string otlp://ADDR.";

/// The largest request body taken, compressed or not.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The most spans held before every pending trace is printed at once, so
/// that memory stays bounded whatever is sent.
const MAX_PENDING_SPANS: usize = 200_000;

/// How many printed traces are remembered, to mark their late spans
/// `continued`.
const REMEMBERED: usize = 10_000;

/// The longest attribute value printed whole.
const MAX_VALUE_CHARS: usize = 80;

struct Args {
    listen: SocketAddr,
    quiet: Duration,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args() -> Result<Parsed, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 4318)),
        quiet: Duration::from_millis(1000),
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || {
            iter.next()
                .ok_or(format!("{flag} needs a value (try --help)"))
        };
        match flag.as_str() {
            "--listen" => {
                let text = value()?;
                args.listen = text.parse().map_err(|e| {
                    format!("--listen {text:?}: {e}; give an address such as 127.0.0.1:4318")
                })?;
            }
            "--quiet-ms" => {
                let text = value()?;
                let millis: u64 = text
                    .parse()
                    .map_err(|e| format!("--quiet-ms {text:?}: {e}; give milliseconds"))?;
                args.quiet = Duration::from_millis(millis);
            }
            "-h" | "--help" => return Ok(Parsed::Help),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(Parsed::Run(args))
}

/// One span as received, in the receiver's terms.
#[derive(Debug, Clone)]
struct Received {
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: String,
    kind: &'static str,
    start: u64,
    end: u64,
    service: String,
    attributes: Vec<(String, String)>,
    error: bool,
}

#[derive(Default)]
struct Pending {
    spans: Vec<Received>,
    last: Option<Instant>,
    /// Some of this trace was printed before.
    continued: bool,
}

#[derive(Default)]
struct Traces {
    pending: HashMap<String, Pending>,
    /// Traces printed already, so that later spans say `continued`: the
    /// last [`REMEMBERED`] of them, oldest first, and the same as a set.
    printed: VecDeque<String>,
    printed_set: HashSet<String>,
    held: usize,
}

type Shared = Arc<Mutex<Traces>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Traces> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("otlp_receiver: {error}");
            return ExitCode::FAILURE;
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("otlp_receiver: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot tell the address listened on: {e}"))?;
    println!(
        "listening on http://{addr}/v1/traces (OTLP/HTTP, protobuf or JSON, gzip or not): \
         point a sink at otlp://{addr}"
    );
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::clone(&shared));

    let printer = {
        let shared = Arc::clone(&shared);
        let quiet = args.quiet;
        tokio::spawn(async move {
            let tick = (quiet / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
            loop {
                tokio::time::sleep(tick).await;
                print_quiet(&shared, Some(quiet));
            }
        })
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    printer.abort();
    // What is pending is printed on the way out, whole or not.
    print_quiet(&shared, None);
    served.map_err(|e| format!("serving on {addr} failed: {e}"))
}

/// `POST /v1/traces`: decodes, keeps the spans for printing, and answers as
/// a collector does (an empty export response in the request's encoding).
async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf")
        .to_ascii_lowercase();
    let json = content_type.starts_with("application/json");
    if !json && !content_type.starts_with("application/x-protobuf") {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {content_type:?}: OTLP/HTTP is application/x-protobuf or application/json"),
        );
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = if gzip {
        match gunzip(&body) {
            Ok(body) => body,
            Err(error) => return refuse(StatusCode::BAD_REQUEST, error),
        }
    } else {
        body.to_vec()
    };
    let spans = if json {
        from_json(&body)
    } else {
        ExportTraceServiceRequest::decode(body.as_slice())
            .map(|request| from_protobuf(&request))
            .map_err(|e| format!("not a protobuf ExportTraceServiceRequest: {e}"))
    };
    let spans = match spans {
        Ok(spans) => spans,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, error),
    };
    let flood = {
        let mut traces = lock(&shared);
        let now = Instant::now();
        for span in spans {
            traces.held += 1;
            let continued = traces.printed_set.contains(&span.trace_id);
            let pending = traces.pending.entry(span.trace_id.clone()).or_default();
            pending.continued |= continued;
            pending.last = Some(now);
            pending.spans.push(span);
        }
        traces.held > MAX_PENDING_SPANS
    };
    if flood {
        print_quiet(&shared, None);
    }
    if json {
        ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
            .into_response()
    }
}

fn refuse(status: StatusCode, why: String) -> Response {
    eprintln!("otlp_receiver: refused a request ({status}): {why}");
    (status, why).into_response()
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("Content-Encoding gzip, and the body is no gzip stream: {e}"))?;
    if out.len() > MAX_BODY {
        return Err(format!(
            "the body is over {MAX_BODY} bytes once decompressed"
        ));
    }
    Ok(out)
}

/// Prints (and forgets) the traces quiet for `quiet`, or all with `None`.
fn print_quiet(shared: &Shared, quiet: Option<Duration>) {
    let ready: Vec<(String, Pending)> = {
        let mut traces = lock(shared);
        let now = Instant::now();
        let ids: Vec<String> = traces
            .pending
            .iter()
            .filter(|(_, p)| match (quiet, p.last) {
                (None, _) => true,
                (Some(quiet), Some(last)) => now.duration_since(last) >= quiet,
                (Some(_), None) => true,
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut ready = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(pending) = traces.pending.remove(&id) {
                traces.held = traces.held.saturating_sub(pending.spans.len());
                if traces.printed_set.insert(id.clone()) {
                    traces.printed.push_back(id.clone());
                    if traces.printed.len() > REMEMBERED {
                        if let Some(oldest) = traces.printed.pop_front() {
                            traces.printed_set.remove(&oldest);
                        }
                    }
                }
                ready.push((id, pending));
            }
        }
        ready
    };
    if ready.is_empty() {
        return;
    }
    let mut ready = ready;
    // Oldest first.
    ready.sort_by_key(|(_, p)| p.spans.iter().map(|s| s.start).min().unwrap_or(0));
    let mut text = String::new();
    for (id, pending) in &ready {
        write_tree(&mut text, id, pending);
    }
    print!("{text}");
}

/// One trace as a tree: a span's children are the spans whose parent it
/// is, by start time; a span whose parent is not among them is a root.
fn write_tree(out: &mut String, trace_id: &str, pending: &Pending) {
    let spans = &pending.spans;
    let first = spans.iter().map(|s| s.start).min().unwrap_or(0);
    let last = spans.iter().map(|s| s.end).max().unwrap_or(first);
    let mut services: Vec<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let _ = writeln!(
        out,
        "trace {}{}: {} span{}, {:.3} ms, from {}",
        as_base_id(trace_id),
        if pending.continued {
            " (continued)"
        } else {
            ""
        },
        spans.len(),
        if spans.len() == 1 { "" } else { "s" },
        millis(last.saturating_sub(first)),
        services.join(", ")
    );
    let by_id: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span.parent.as_deref().and_then(|p| by_id.get(p)) {
            Some(&parent) if parent != i => children.entry(parent).or_default().push(i),
            _ => roots.push(i),
        }
    }
    let by_start = |list: &mut Vec<usize>| list.sort_by_key(|&i| (spans[i].start, i));
    by_start(&mut roots);
    for list in children.values_mut() {
        by_start(list);
    }
    // Depth first, without recursion (a forged trace may be deep); a span
    // is printed once even if the parents form a cycle.
    let mut printed = vec![false; spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    let write_one = |out: &mut String, i: usize, depth: usize| {
        let span = &spans[i];
        let _ = write!(
            out,
            "{:indent$}{}  {:.3} ms  +{:.3} ms  {}  {}",
            "",
            escape(&span.name),
            millis(span.end.saturating_sub(span.start)),
            millis(span.start.saturating_sub(first)),
            span.kind,
            escape(&span.service),
            indent = 2 * depth
        );
        if !span.attributes.is_empty() {
            out.push(' ');
        }
        for (key, value) in &span.attributes {
            let _ = write!(out, " {}={}", escape(key), escape(value));
        }
        if span.error {
            out.push_str("  ERROR");
        }
        out.push('\n');
    };
    loop {
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut printed[i], true) {
                continue;
            }
            write_one(out, i, depth);
            if let Some(kids) = children.get(&i) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
        // Spans only reachable through a parent cycle.
        match printed.iter().position(|p| !p) {
            Some(i) => stack.push((i, 0)),
            None => break,
        }
    }
}

fn millis(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// A 32-digit trace id as osprofiler's `base_id` (a UUID) when it is one.
fn as_base_id(hex: &str) -> String {
    if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    } else {
        escape(hex)
    }
}

/// Text from a span, safe to print: control and bidirectional characters
/// escaped, cut to [`MAX_VALUE_CHARS`].
fn escape(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == MAX_VALUE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control()
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// ---- protobuf ----------------------------------------------------------

fn from_protobuf(request: &ExportTraceServiceRequest) -> Vec<Received> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| any_text(kv.value.as_ref()))
            .unwrap_or_else(|| "unknown service".to_owned());
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                out.push(Received {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
                    name: span.name.clone(),
                    kind: kind_name(i64::from(span.kind)),
                    start: span.start_time_unix_nano,
                    end: span.end_time_unix_nano,
                    service: service.clone(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv: &KeyValue| (kv.key.clone(), any_text(kv.value.as_ref())))
                        .collect(),
                    // STATUS_CODE_ERROR
                    error: span.status.as_ref().is_some_and(|s| s.code == 2),
                });
            }
        }
    }
    out
}

fn any_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| any_text(Some(v))).collect();
            format!("[{}]", items.join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let items: Vec<String> = kv
                .values
                .iter()
                .map(|kv| format!("{}={}", kv.key, any_text(kv.value.as_ref())))
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

fn kind_name(kind: i64) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

// ---- JSON (OTLP/JSON: lowerCamelCase keys, hex ids, 64-bit integers as
// strings or numbers, enums as numbers or names) ---------------------------

fn from_json(body: &[u8]) -> Result<Vec<Received>, String> {
    let root: Json = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let resource_spans = field(&root, "resourceSpans")
        .and_then(Json::as_array)
        .ok_or("a JSON body without resourceSpans: not an OTLP trace export")?;
    let mut out = Vec::new();
    for resource_spans in resource_spans {
        let service = field(resource_spans, "resource")
            .and_then(|r| field(r, "attributes"))
            .and_then(Json::as_array)
            .and_then(|attrs| {
                attrs
                    .iter()
                    .find(|kv| kv.get("key").and_then(Json::as_str) == Some("service.name"))
            })
            .map(|kv| json_any_text(kv.get("value")))
            .unwrap_or_else(|| "unknown service".to_owned());
        let scopes = field(resource_spans, "scopeSpans")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for scope in scopes {
            let spans = field(scope, "spans")
                .and_then(Json::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for span in spans {
                let text = |key: &str| field(span, key).and_then(Json::as_str).unwrap_or("");
                let parent = text("parentSpanId").to_ascii_lowercase();
                out.push(Received {
                    trace_id: text("traceId").to_ascii_lowercase(),
                    span_id: text("spanId").to_ascii_lowercase(),
                    parent: (!parent.is_empty()).then_some(parent),
                    name: text("name").to_owned(),
                    kind: match field(span, "kind") {
                        Some(Json::String(name)) => match name.as_str() {
                            "SPAN_KIND_INTERNAL" => "internal",
                            "SPAN_KIND_SERVER" => "server",
                            "SPAN_KIND_CLIENT" => "client",
                            "SPAN_KIND_PRODUCER" => "producer",
                            "SPAN_KIND_CONSUMER" => "consumer",
                            _ => "unspecified",
                        },
                        Some(kind) => kind_name(kind.as_i64().unwrap_or(0)),
                        None => "unspecified",
                    },
                    start: json_u64(field(span, "startTimeUnixNano")),
                    end: json_u64(field(span, "endTimeUnixNano")),
                    service: service.clone(),
                    attributes: field(span, "attributes")
                        .and_then(Json::as_array)
                        .map(|attrs| {
                            attrs
                                .iter()
                                .map(|kv| {
                                    (
                                        kv.get("key")
                                            .and_then(Json::as_str)
                                            .unwrap_or("")
                                            .to_owned(),
                                        json_any_text(kv.get("value")),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    error: field(span, "status")
                        .and_then(|s| field(s, "code"))
                        .is_some_and(|code| {
                            code.as_i64() == Some(2) || code.as_str() == Some("STATUS_CODE_ERROR")
                        }),
                });
            }
        }
    }
    Ok(out)
}

/// `object[key]`, also under the key's snake_case spelling, which some
/// exporters write.
fn field<'a>(object: &'a Json, key: &str) -> Option<&'a Json> {
    object.get(key).or_else(|| {
        let snake: String = key
            .chars()
            .flat_map(|c| {
                if c.is_ascii_uppercase() {
                    vec!['_', c.to_ascii_lowercase()]
                } else {
                    vec![c]
                }
            })
            .collect();
        object.get(snake)
    })
}

fn json_u64(value: Option<&Json>) -> u64 {
    match value {
        Some(Json::String(s)) => s.parse().unwrap_or(0),
        Some(n) => n.as_u64().unwrap_or(0),
        None => 0,
    }
}

fn json_any_text(value: Option<&Json>) -> String {
    let Some(Json::Object(map)) = value else {
        return String::new();
    };
    match map.iter().next() {
        Some((_, Json::String(s))) => s.clone(),
        Some((_, Json::Object(inner))) => {
            // arrayValue {values: [...]} or kvlistValue {values: [...]}
            let items: Vec<String> = inner
                .get("values")
                .and_then(Json::as_array)
                .map(|values| {
                    values
                        .iter()
                        .map(|v| match v.get("key").and_then(Json::as_str) {
                            Some(key) => format!("{key}={}", json_any_text(v.get("value"))),
                            None => json_any_text(Some(v)),
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("[{}]", items.join(","))
        }
        Some((_, other)) => other.to_string(),
        None => String::new(),
    }
}
