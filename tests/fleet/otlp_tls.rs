//! https to a collector whose certificate a fleet's own CA signed: trusted
//! with `Otlp::with_ca_file`, refused (and every span counted as failed)
//! without it; a CA file that cannot be used fails the writer's build.
//!
//! The certificates in `tls/` were made once with openssl (the CA's key
//! thrown away), valid until 2126: `ca.pem`, a self-signed CA, and
//! `server.pem` / `server.key`, for `localhost` and `127.0.0.1`, signed by
//! it.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing_osprofiler::writer::{Otlp, ProfileWriter};

use super::otlp::job;
use crate::support::otlp::{quick_sink, Node};

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fleet/tls")
        .join(name)
}

/// An OTLP/HTTP collector behind TLS, with the test CA's server
/// certificate: counts the spans it is sent and the handshakes that failed.
struct TlsCollector {
    port: u16,
    spans: Arc<AtomicU64>,
    refused_handshakes: Arc<AtomicU64>,
}

impl TlsCollector {
    fn start() -> TlsCollector {
        let certificates = CertificateDer::pem_file_iter(tls_file("server.pem"))
            .expect("server.pem")
            .collect::<Result<Vec<_>, _>>()
            .expect("a certificate");
        let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).expect("server.key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(certificates, key)
                .expect("the server certificate"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let spans = Arc::new(AtomicU64::new(0));
        let refused_handshakes = Arc::new(AtomicU64::new(0));
        let (counted, refused) = (Arc::clone(&spans), Arc::clone(&refused_handshakes));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, counted, refused) = (
                    Arc::clone(&config),
                    Arc::clone(&counted),
                    Arc::clone(&refused),
                );
                std::thread::spawn(move || serve(config, stream, &counted, &refused));
            }
        });
        TlsCollector {
            port,
            spans,
            refused_handshakes,
        }
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// Answers every request of one connection with 200, counting its spans.
fn serve(
    config: Arc<rustls::ServerConfig>,
    stream: TcpStream,
    spans: &AtomicU64,
    refused_handshakes: &AtomicU64,
) {
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, stream);
    // The handshake first, so that a client that refuses the certificate
    // (it sends an alert and hangs up) is told apart from one that is done.
    let handshake = tls.conn.complete_io(&mut tls.sock);
    if handshake.is_err() || tls.conn.is_handshaking() {
        refused_handshakes.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut reader = BufReader::new(tls);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) {
            let n: usize = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            spans.fetch_add(n as u64, Ordering::Relaxed);
        }
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
        let stream = reader.get_mut();
        if stream.write_all(answer.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
    }
}

fn otlp(endpoint: &str) -> Otlp {
    quick_sink(endpoint)
        .with_max_retries(0)
        .with_request_timeout(Duration::from_secs(5))
}

/// One job of a root and two steps: 3 points.
fn three_points(node: &Node) -> u64 {
    tracing::dispatcher::with_default(&node.dispatch, || job(2));
    3
}

#[test]
fn a_collector_signed_by_the_fleets_ca_is_trusted_with_its_ca_file() {
    let collector = TlsCollector::start();
    let node = Node::new(
        otlp(&collector.endpoint()).with_ca_file(tls_file("ca.pem")),
        "nova",
        "api",
    );
    let made = three_points(&node);
    node.flush(Duration::from_secs(10));
    let stats = node.otlp();
    assert_eq!((stats.written, stats.dropped, stats.failed), (made, 0, 0));
    assert_eq!(collector.spans.load(Ordering::Relaxed), made);
}

#[test]
fn without_the_ca_file_the_certificate_is_refused_and_every_span_failed() {
    let collector = TlsCollector::start();
    let node = Node::new(otlp(&collector.endpoint()), "nova", "api");
    let made = three_points(&node);
    node.flush(Duration::from_secs(10));
    let stats = node.otlp();
    assert_eq!((stats.written, stats.dropped, stats.failed), (0, 0, made));
    assert_eq!(collector.spans.load(Ordering::Relaxed), 0);
    // The collector's side of the refused handshake ends on its own thread.
    crate::support::eventually("the refused handshake seen by the collector", || {
        collector.refused_handshakes.load(Ordering::Relaxed) >= 1
    });
}

#[test]
fn a_ca_file_that_cannot_be_used_fails_the_build_and_names_it() {
    for (file, why) in [
        ("missing.pem", "No such file"),
        // PEM, but a key: no certificate in it.
        ("server.key", "no PEM certificate"),
    ] {
        let path = tls_file(file);
        let error = ProfileWriter::builder()
            .with_otlp(
                Otlp::new("https://127.0.0.1:4318")
                    .unwrap()
                    .with_ca_file(&path),
            )
            .build()
            .expect_err("a CA file that cannot be used");
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains(why),
            "{message}"
        );
    }
}
