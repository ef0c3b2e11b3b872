//! `examples/otlp_receiver.rs`, the receiver docs/fleet.md tells a newcomer
//! to run, as a newcomer runs it: the built example binary, with the OTLP
//! sink pointed at it (protobuf, then gzip), and an OTLP/JSON request sent
//! by hand. Each trace must come out as a tree: the root at the margin, its
//! children indented under it, the service and the attributes on each line.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tracing_osprofiler::writer::Otlp;

use crate::support::examples::{example, lines_of};
use crate::support::otlp::Node;

/// The receiver on a free port; its stdout, line by line.
struct Receiver {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Receiver {
    fn start() -> Receiver {
        let mut child = Command::new(example("otlp_receiver"))
            .args(["--listen", "127.0.0.1:0", "--quiet-ms", "200"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the receiver");
        let lines = lines_of(child.stdout.take().expect("stdout"));
        let mut receiver = Receiver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
        };
        let first = receiver.line();
        let addr = first
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("the receiver's first line: {first:?}"));
        receiver.addr = addr.parse().expect("the address listened on");
        receiver
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the receiver printed nothing within 20 s")
    }

    /// One trace's printout: its header, then its span lines.
    fn trace(&self) -> (String, Vec<String>) {
        let header = self.line();
        assert!(header.starts_with("trace "), "{header}");
        let count: usize = header
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no span count in {header:?}"));
        let spans = (0..count).map(|_| self.line()).collect();
        (header, spans)
    }

    /// The OTLP sink pointed at this receiver.
    fn sink(&self) -> Otlp {
        Otlp::new(&format!("otlp://{}", self.addr)).expect("otlp:// connection string")
    }

    /// Sends a job from `project`/`service` through `otlp` and checks the
    /// tree this receiver prints for it.
    fn assert_prints_a_job(&self, otlp: Otlp, project: &str, service: &str) {
        let base_id = send_job(otlp, project, service);
        let (header, spans) = self.trace();
        assert_job_tree(&header, &spans, &base_id, &format!("{project}-{service}"));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A root `job` and two `step`s under it, profiled and sent by `otlp`.
fn send_job(otlp: Otlp, project: &str, service: &str) -> String {
    let node = Node::new(otlp, project, service);
    let base_id = tracing::dispatcher::with_default(&node.dispatch, || {
        let profile = tracing_osprofiler::Profile::new(tracing_osprofiler::Signer::new(
            crate::support::http::KEY,
            tracing_osprofiler::HmacAlgorithm::Sha1,
        ));
        let base_id = profile.trace_info().base_id().to_string();
        let root = profile.start(|| tracing::info_span!("job"));
        let _entered = root.enter();
        for step in 0..2 {
            let _step = tracing::info_span!("step", step).entered();
        }
        base_id
    });
    node.flush(Duration::from_secs(10));
    let stats = node.otlp();
    assert_eq!((stats.written, stats.failed), (3, 0), "{stats:?}");
    base_id
}

fn assert_job_tree(header: &str, spans: &[String], base_id: &str, service: &str) {
    assert!(
        header.starts_with(&format!("trace {base_id}: 3 spans, ")),
        "{header}"
    );
    assert!(header.ends_with(&format!("from {service}")), "{header}");
    assert!(spans[0].starts_with("job  "), "{spans:#?}");
    assert!(
        spans[0].contains(&format!("  internal  {service}")),
        "{spans:#?}"
    );
    for (n, line) in spans[1..].iter().enumerate() {
        assert!(line.starts_with("  step  "), "{spans:#?}");
        assert!(line.contains(&format!("step={n}")), "{spans:#?}");
    }
}

#[test]
fn the_example_receiver_prints_each_trace_as_a_tree() {
    let receiver = Receiver::start();
    receiver.assert_prints_a_job(receiver.sink(), "nova", "api");
    receiver.assert_prints_a_job(receiver.sink().with_gzip(true), "cinder", "volume");

    // OTLP/JSON, as an SDK configured for http/json sends it: a root with
    // an error status and a child, hex ids, times as strings.
    let json = r#"{"resourceSpans":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"glance-registry"}}]},
      "scopeSpans":[{"scope":{"name":"osprofiler"},"spans":[
        {"traceId":"5E1F00000000400080000000000BA5E0","spanId":"0000000000000001",
         "name":"WSGI_GET_/images","kind":2,
         "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000120000000",
         "attributes":[{"key":"http.method","value":{"stringValue":"GET"}},
                       {"key":"status_code","value":{"intValue":"500"}}],
         "status":{"code":2}},
        {"traceId":"5e1f00000000400080000000000ba5e0","spanId":"0000000000000002",
         "parentSpanId":"0000000000000001","name":"db\u001b[2J","kind":"SPAN_KIND_INTERNAL",
         "startTimeUnixNano":1700000000010000000,"endTimeUnixNano":1700000000030000000}
      ]}]}]}"#;
    let answer = post(receiver.addr, "application/json", json.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (header, spans) = receiver.trace();
    assert_eq!(
        header,
        "trace 5e1f0000-0000-4000-8000-0000000ba5e0: 2 spans, 120.000 ms, from glance-registry"
    );
    assert_eq!(
        spans[0],
        "WSGI_GET_/images  120.000 ms  +0.000 ms  server  glance-registry  \
         http.method=GET status_code=500  ERROR"
    );
    // Escaped: a span's text cannot clear the terminal.
    assert_eq!(
        spans[1],
        "  db\\u{1b}[2J  20.000 ms  +10.000 ms  internal  glance-registry"
    );

    // What is no OTLP export is refused with a reason, and the receiver
    // goes on.
    let answer = post(receiver.addr, "application/x-protobuf", b"\xff\xff\xff");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = post(receiver.addr, "text/plain", b"hello");
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    receiver.assert_prints_a_job(receiver.sink(), "nova", "api");
}

#[test]
fn the_example_receiver_answers_help_and_bad_flags() {
    let help = Command::new(example("otlp_receiver"))
        .arg("--help")
        .output()
        .expect("run the receiver");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: otlp_receiver"));
    let bad = Command::new(example("otlp_receiver"))
        .args(["--listen", "nowhere"])
        .output()
        .expect("run the receiver");
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.starts_with("otlp_receiver: --listen \"nowhere\": "),
        "{stderr}"
    );
}

/// A raw HTTP/1.1 POST to `/v1/traces`; the whole answer.
fn post(addr: SocketAddr, content_type: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the receiver");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("write the request");
    stream.write_all(body).expect("write the body");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// A sink pointed at nothing says so when the service starts, on stderr,
/// with the connection string's password left out; not with the first
/// profiled request, which this service never gets.
#[test]
fn a_sink_pointed_at_nothing_says_so_at_start() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
        // Closed here: nothing listens on it.
    };
    let mut cases = vec![(
        format!("otlp://127.0.0.1:{port}"),
        format!("the otlp sink cannot deliver to http://127.0.0.1:{port}/v1/traces (nothing answers there at start: "),
    )];
    #[cfg(feature = "redis")]
    cases.push((
        format!("redis://:hunter2@127.0.0.1:{port}"),
        format!("the redis sink cannot deliver to redis://***@127.0.0.1:{port} ("),
    ));
    for (connection_string, said) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(example("axum_service"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--connection-string",
                &connection_string,
            ])
            .arg("--log-dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example service");
        let lines = lines_of(child.stderr.take().expect("stderr"));
        let line = lines.recv_timeout(Duration::from_secs(10));
        let _ = child.kill();
        let _ = child.wait();
        let line = line.unwrap_or_else(|_| {
            panic!("{connection_string}: nothing on stderr within 10 s of the start")
        });
        assert!(
            line.starts_with(&format!("tracing-osprofiler: {said}")),
            "{connection_string}: {line}"
        );
        assert!(!line.contains("hunter2"), "{line}");
    }
}
