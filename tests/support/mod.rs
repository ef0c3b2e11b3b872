//! The helpers of every integration test binary, one module tree:
//!
//! | module | what |
//! |---|---|
//! | this file | a capturing `MakeWriter`, a checker that parses every captured line back and verifies the trace trees, an independent HMAC, the downstream-header check |
//! | [`python`] | the real Python osprofiler (a venv made on first use) |
//! | [`http`] | one global subscriber for the HTTP tests, tokens, servers on loopback |
//! | [`python_client`] | the Python osprofiler client calling a Rust service, a Python WSGI service called by a Rust client, and the checks of their trees, whatever the framework |
//! | [`memory`] | the resident memory of the test process |
//! | [`child`] | this test binary run again to run one of its ignored tests alone |
//! | [`big_fields`] | one request of spans with big fields, the same for every sink's bounds test, and its flood into a sink that never answers |
//! | [`examples`] | the crate's example binaries, and their output line by line |
//! | [`recorder`] | what a `MetricsPublisher` publishes, read back |
//! | [`redis`] | a real `redis-server` per test, and raw commands into it |
//! | [`system`] | programs from Debian packages some tests need; a missing one fails the test, naming the package |
//! | [`otlp`] | an in-process OTLP/HTTP collector, faulty peers, trace checks |
#![allow(dead_code, unused_imports)]

pub mod big_fields;
pub mod child;
pub mod examples;
#[cfg(all(feature = "tower", feature = "reqwest"))]
pub mod http;
pub mod memory;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod python;
#[cfg(all(feature = "tower", feature = "reqwest"))]
pub mod python_client;
#[cfg(feature = "metrics")]
pub mod recorder;
pub mod redis;
pub mod system;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tracing_osprofiler::format::{parse_line, Phase, PointIds};
use tracing_osprofiler::Id;
use tracing_subscriber::fmt::MakeWriter;

/// Collects every `write` call in one buffer and checks that each call
/// carries exactly one whole line (so lines from several threads can never
/// tear into each other).
#[derive(Clone, Default)]
pub struct Capture {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<AtomicUsize>,
    torn: Arc<Mutex<Vec<String>>>,
}

pub struct CaptureWriter<'a>(&'a Capture);

impl io::Write for CaptureWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.writes.fetch_add(1, Ordering::Relaxed);
        let newlines = buf.iter().filter(|&&b| b == b'\n').count();
        if newlines != 1 || buf.last() != Some(&b'\n') {
            self.0
                .torn
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(buf).into_owned());
        }
        self.0.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(self)
    }
}

impl Capture {
    pub fn new() -> Self {
        Capture::default()
    }

    /// Everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }

    /// A subscriber of one layer (fields off) writing into this capture.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry().with(tracing_osprofiler::OsProfilerLayer::from_make_writer(
            self.clone(),
        ))
    }

    /// [`subscriber`](Self::subscriber) as a `Dispatch`.
    pub fn dispatch(&self) -> tracing::Dispatch {
        tracing::Dispatch::new(self.subscriber())
    }

    /// Number of `write` calls so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }

    /// Parses everything written, asserting one write per line.
    pub fn points(&self) -> Points {
        let torn = self.torn.lock().unwrap().clone();
        assert!(
            torn.is_empty(),
            "writes that were not exactly one line: {torn:?}"
        );
        let bytes = self.bytes();
        let points = Points::parse(&bytes);
        assert_eq!(self.writes(), points.lines, "one write call per line");
        points
    }
}

/// One line, owned.
#[derive(Debug, Clone)]
pub struct OwnedLine {
    pub ids: PointIds,
    pub name: String,
    pub phase: Phase,
    pub duration: Option<f64>,
    pub slow: bool,
    pub extra: String,
    pub micros: i64,
}

/// A trace point rebuilt from its start and stop lines.
#[derive(Debug, Clone)]
pub struct Point {
    pub ids: PointIds,
    pub name: String,
    pub duration: f64,
    pub slow: bool,
    /// What followed the name on the start line (fields as JSON).
    pub start_extra: String,
}

/// Every point of a log, checked: each start has exactly one stop with the
/// same ids and name, and trace ids are unique.
#[derive(Debug, Default)]
pub struct Points {
    pub lines: usize,
    pub all: Vec<OwnedLine>,
    pub by_trace: HashMap<Id, Point>,
}

impl Points {
    pub fn parse(bytes: &[u8]) -> Points {
        let mut all = Vec::new();
        for raw in bytes.split(|&b| b == b'\n') {
            if raw.is_empty() {
                continue;
            }
            let line = parse_line(raw).unwrap_or_else(|e| {
                panic!(
                    "line does not parse ({e}): {:?}",
                    String::from_utf8_lossy(raw)
                )
            });
            all.push(OwnedLine {
                ids: line.ids,
                name: line.name.into_owned(),
                phase: line.phase,
                duration: line.duration,
                slow: line.slow,
                extra: line.extra.into_owned(),
                micros: line.timestamp.unix_micros(),
            });
        }
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "last line unterminated"
        );
        let mut starts: HashMap<Id, &OwnedLine> = HashMap::new();
        let mut stops: HashMap<Id, &OwnedLine> = HashMap::new();
        for line in &all {
            let map = match line.phase {
                Phase::Start => &mut starts,
                Phase::Stop => &mut stops,
            };
            if let Some(previous) = map.insert(line.ids.trace_id, line) {
                panic!("trace_id used twice: {previous:?} and {line:?}");
            }
        }
        let mut by_trace = HashMap::new();
        for (trace_id, start) in &starts {
            let stop = stops
                .get(trace_id)
                .unwrap_or_else(|| panic!("start without stop: {start:?}"));
            assert_eq!(start.ids, stop.ids, "stop ids differ from start ids");
            assert_eq!(start.name, stop.name, "stop name differs from start name");
            let duration = stop.duration.expect("stop lines have a duration");
            assert!(duration >= 0.0);
            assert!(
                stop.micros >= start.micros - 1_000,
                "stop written long before start: {start:?} {stop:?}"
            );
            by_trace.insert(
                *trace_id,
                Point {
                    ids: start.ids,
                    name: start.name.clone(),
                    duration,
                    slow: stop.slow,
                    start_extra: start.extra.clone(),
                },
            );
        }
        for (trace_id, stop) in &stops {
            assert!(
                starts.contains_key(trace_id),
                "stop without start: {stop:?}"
            );
        }
        Points {
            lines: all.len(),
            all,
            by_trace,
        }
    }

    /// Checks the trees: within a base_id, each parent_id is the base_id, one
    /// of `incoming` (parent ids a caller sent), or the trace_id of another
    /// point of the same base_id; every parent chain ends there without a
    /// cycle. Returns the points grouped by base_id.
    pub fn check_trees(&self, incoming: &HashSet<Id>) -> HashMap<Id, Vec<Point>> {
        for point in self.by_trace.values() {
            let mut current = point;
            let mut steps = 0;
            loop {
                let parent = current.ids.parent_id;
                if parent == point.ids.base_id || incoming.contains(&parent) {
                    break;
                }
                let Some(up) = self.by_trace.get(&parent) else {
                    panic!("parent {parent} of {point:?} is neither a point, the base_id, nor an incoming parent");
                };
                assert_eq!(
                    up.ids.base_id, point.ids.base_id,
                    "parent in another request"
                );
                current = up;
                steps += 1;
                assert!(
                    steps <= self.by_trace.len(),
                    "cycle in parent chain of {point:?}"
                );
            }
        }
        let mut groups: HashMap<Id, Vec<Point>> = HashMap::new();
        for point in self.by_trace.values() {
            groups
                .entry(point.ids.base_id)
                .or_default()
                .push(point.clone());
        }
        groups
    }

    /// The single point called `name`.
    pub fn named(&self, name: &str) -> &Point {
        let mut found = self.by_trace.values().filter(|p| p.name == name);
        let point = found.next().unwrap_or_else(|| panic!("no point {name}"));
        assert!(found.next().is_none(), "several points {name}");
        point
    }

    pub fn len(&self) -> usize {
        self.by_trace.len()
    }
}

/// How long [`eventually`] waits: generous, as the tests share a loaded
/// machine; a condition that holds returns at once, so passing tests do
/// not pay for it.
pub const EVENTUALLY: std::time::Duration = std::time::Duration::from_secs(20);

/// Polls `done` until it holds, failing the test with `what` after
/// [`EVENTUALLY`]: for what another thread or process finishes after the
/// call the test made has returned (a root closed after its response was
/// read), instead of a fixed sleep that a busy machine outlasts.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + EVENTUALLY;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not {what} after {EVENTUALLY:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// [`eventually`] for async tests: sleeps on the runtime, not the thread.
pub async fn eventually_async(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + EVENTUALLY;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not {what} after {EVENTUALLY:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Lower-case hex HMAC-SHA1, computed here rather than by the crate, so that
/// tests can sign any text (forged-but-signed tokens) and check the crate's
/// own signing against an independent computation.
pub fn hmac_sha1_hex(key: &[u8], msg: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
    mac.update(msg);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks what a request would send downstream: signed headers exactly when
/// the request is profiled (`base` is its `base_id`), verifying under
/// `SECRET_KEY` into this request's `base_id` and no other.
pub fn assert_downstream_headers(
    headers: Option<tracing_osprofiler::TraceHeaders>,
    base: Option<Id>,
    request: &str,
) {
    match (headers, base) {
        (Some(headers), Some(base)) => {
            let downstream = tracing_osprofiler::HmacKeys::new(["SECRET_KEY"])
                .verify(headers.trace_info(), headers.trace_hmac())
                .unwrap();
            assert_eq!(downstream.trace_info().base_id(), base, "request {request}");
        }
        (None, None) => {}
        other => panic!("request {request}: headers and profiling disagree: {other:?}"),
    }
}
