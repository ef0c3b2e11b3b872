//! Cost per span of exporting over OTLP, as ratios measured in one run.
//!
//! Each iteration is `let s = info_span!("work"); let _e = s.enter();
//! drop(_e); drop(s);` under an entered request root, with six subscribers
//! built in the same process:
//!
//! * (r) the `Registry` with a layer that does nothing: what the span costs
//!   anyway;
//! * (k) the `Registry` with a layer that does only the bookkeeping of a
//!   layer that maps spans to ids (a value in each span's extensions, the
//!   parent's read when a span opens, its own when it closes): the floor
//!   under (o) and (t) alike;
//! * (f) `OsProfilerLayer` in a profiled request, the writer feeding the
//!   Mistral log file alone (`RollingFile`);
//! * (o) the same, the writer feeding the OTLP sink alone (`Otlp`);
//! * (fo) the same, with both sinks (a fleet's usual setup);
//! * (t) `tracing-opentelemetry` with opentelemetry_sdk's
//!   `BatchSpanProcessor` and opentelemetry-otlp's OTLP/HTTP protobuf
//!   exporter (reqwest blocking client), every span sampled.
//!
//! Both exporters send to the same collector: this binary run again as a
//! child process at the lowest CPU priority (it stands in for a collector
//! on another machine, so it neither counts here nor takes turns with the
//! measured threads), which decodes every request and counts the spans per
//! `service.name`. Both batch 512 spans;
//! both queues are made large enough for a whole round, and the run prints
//! how many spans arrived. opentelemetry_sdk 0.29's batch thread sends one
//! batch per trigger (timer, full batch, flush, shutdown) and leaves the
//! rest, so (t) delivers only part of its spans: its background CPU is
//! also given per span received.
//!
//! Rounds run in rotating order; after each round the case's exporter is
//! flushed (`WriterGuard::flush`, `SdkTracerProvider::force_flush`, which
//! may leave a few spans for later: its export CPU is, if anything,
//! under-counted). Per
//! span, the table shows the application thread's wall-clock median and
//! CPU median (`CLOCK_THREAD_CPUTIME_ID`), and the CPU of the background
//! threads by name over the round and its flush (Linux `schedstat`):
//! `tracing-osprofi` (the writer thread), `osprofiler-otlp` (the OTLP
//! sink's export thread), the OpenTelemetry batch thread and reqwest's
//! runtime thread. Then the ratios o/f (target at most 1.25) and o/t
//! (target at most 0.3) on the application thread, each twice: of the
//! whole time per span ("total"), and of what the layer adds to the bare
//! registry ("added": the case less (r), on both sides).
//!
//! Run: `cargo bench --bench otlp --features otlp` (optional arguments:
//! iterations per round, rounds).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;
use support::{cpu_by_thread_name, median, span_loop, thread_cpu_clock_ns};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message as _;
use tracing::{info_span, Dispatch};
use tracing_osprofiler::writer::{Otlp, ProfileWriter, RollingFile, SinkKind, WriterGuard};
use tracing_osprofiler::{HmacAlgorithm, OsProfilerLayer, Profile, Signer};
use tracing_subscriber::prelude::*;

const COLLECTOR_ENV: &str = "OTLP_BENCH_COLLECTOR";

// ---------------------------------------------------------------- collector

/// The child process: an OTLP/HTTP collector on loopback that counts spans
/// per `service.name`; `GET /count` answers `service count` lines.
fn collector_main() {
    // The collector stands in for one on another machine: at the lowest
    // priority, it takes the CPU the measured process leaves, instead of
    // taking turns with its threads on this machine's cores (which would
    // also charge each case for how many spans it exports in its round).
    // SAFETY: setpriority on this process only reads its arguments.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    std::io::stdout().flush().expect("stdout");
    let counts: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let counts = Arc::clone(&counts);
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &counts);
        });
    }
}

fn serve_connection(
    stream: TcpStream,
    counts: &Mutex<BTreeMap<String, u64>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
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
        reader.read_exact(&mut body)?;
        let answer = if request_line.starts_with("GET /count") {
            let text: String = counts
                .lock()
                .expect("counts")
                .iter()
                .map(|(service, n)| format!("{service} {n}\n"))
                .collect();
            text.into_bytes()
        } else {
            if let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) {
                let mut counts = counts.lock().expect("counts");
                for resource_spans in request.resource_spans {
                    let service = resource_spans
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            any_value::Value::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    let n: usize = resource_spans
                        .scope_spans
                        .iter()
                        .map(|s| s.spans.len())
                        .sum();
                    *counts.entry(service).or_default() += n as u64;
                }
            }
            Vec::new()
        };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        )?;
        writer.write_all(&answer)?;
    }
}

struct CollectorProcess {
    child: Child,
    port: u16,
}

impl CollectorProcess {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .env(COLLECTOR_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("collector process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let port = line.trim().parse().expect("a port");
        CollectorProcess { child, port }
    }

    fn counts(&self) -> HashMap<String, u64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .write_all(b"GET /count HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .expect("ask");
        let mut reader = BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length: ") {
                length = value.parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        String::from_utf8(body)
            .expect("text")
            .lines()
            .filter_map(|l| {
                let (service, n) = l.rsplit_once(' ')?;
                Some((service.to_owned(), n.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- the floor

/// What any layer that maps spans to another system's ids does per span,
/// and nothing else: keep a value in the span's extensions, read the
/// parent's when the span opens, and its own when it closes
/// (tracing-opentelemetry does this too). Its cost is the floor under
/// every such layer's.
struct Bookkeeping;

#[derive(Clone, Copy)]
struct Ids([u64; 6]);

impl<S> tracing_subscriber::Layer<S> for Bookkeeping
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let Some(parent) = span.parent() else { return };
        let ids = parent.extensions().get::<Ids>().copied();
        span.extensions_mut().insert(ids.unwrap_or(Ids([1; 6])));
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(ids) = extensions.get_mut::<Ids>() {
            ids.0[0] += 1;
            std::hint::black_box(ids);
        }
    }
}

// ---------------------------------------------------------------- measuring

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    Registry,
    Bookkeeping,
    File,
    Otlp,
    FileOtlp,
    OpenTelemetry,
}

impl Case {
    const ALL: [Case; 6] = [
        Case::Registry,
        Case::Bookkeeping,
        Case::File,
        Case::Otlp,
        Case::FileOtlp,
        Case::OpenTelemetry,
    ];

    fn label(self) -> &'static str {
        match self {
            Case::Registry => "(r) Registry + a no-op layer",
            Case::Bookkeeping => "(k) Registry + the bookkeeping alone",
            Case::File => "(f) OsProfilerLayer, file sink",
            Case::Otlp => "(o) OsProfilerLayer, OTLP sink",
            Case::FileOtlp => "(fo) OsProfilerLayer, file + OTLP sinks",
            Case::OpenTelemetry => "(t) tracing-opentelemetry, batch OTLP/HTTP",
        }
    }
}

enum Flush {
    Nothing,
    Writer(WriterGuard),
    Sdk(opentelemetry_sdk::trace::SdkTracerProvider),
}

impl Flush {
    fn flush(&self) {
        match self {
            Flush::Nothing => {}
            Flush::Writer(guard) => guard.flush(Duration::from_secs(30)).expect("flushed"),
            Flush::Sdk(provider) => provider.force_flush().expect("flushed"),
        }
    }
}

struct Setup {
    case: Case,
    dispatch: Dispatch,
    flush: Flush,
    writer: Option<ProfileWriter>,
    /// Spans made, for the final check.
    spans: u64,
    wall: Vec<f64>,
    app_cpu: Vec<f64>,
    background: Vec<HashMap<String, u64>>,
    /// Background CPU of every round, warm-up included, by thread name.
    background_total: HashMap<String, u64>,
}

fn setup(case: Case, port: u16, dir: &std::path::Path) -> Setup {
    let endpoint = format!("otlp://127.0.0.1:{port}");
    let writer = |file: bool, otlp: bool, service: &str| {
        let mut builder = ProfileWriter::builder()
            .with_project("bench")
            .with_service(service);
        if file {
            builder = builder.with_file(RollingFile::new(dir.join(service)));
        }
        if otlp {
            // Room for a whole round: the loop makes spans far faster than
            // any collector takes them, and a drop would flatter the cost.
            builder = builder.with_otlp(
                Otlp::new(&endpoint)
                    .expect("endpoint")
                    .with_queue_limit(1 << 18),
            );
        }
        let (writer, guard) = builder.build().expect("writer");
        let dispatch = Dispatch::new(
            tracing_subscriber::registry().with(OsProfilerLayer::new(writer.clone())),
        );
        (dispatch, Flush::Writer(guard), Some(writer))
    };
    let (dispatch, flush, writer) = match case {
        // A bare `Registry` (no `Layered` around it) never removes closed
        // spans (tokio-rs/tracing#900): with a layer that does nothing, it
        // does what it does under every layer.
        Case::Registry => (
            Dispatch::new(
                tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new()),
            ),
            Flush::Nothing,
            None,
        ),
        Case::Bookkeeping => (
            Dispatch::new(tracing_subscriber::registry().with(Bookkeeping)),
            Flush::Nothing,
            None,
        ),
        Case::File => writer(true, false, "f"),
        Case::Otlp => writer(false, true, "o"),
        Case::FileOtlp => writer(true, true, "fo"),
        Case::OpenTelemetry => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
                .build()
                .expect("exporter");
            let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
                .with_batch_config(
                    opentelemetry_sdk::trace::BatchConfigBuilder::default()
                        .with_max_queue_size(1 << 20)
                        .with_max_export_batch_size(512)
                        .with_scheduled_delay(Duration::from_secs(1))
                        .build(),
                )
                .build();
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_span_processor(processor)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("bench-t")
                        .build(),
                )
                .build();
            let tracer = provider.tracer("bench");
            let dispatch = Dispatch::new(
                tracing_subscriber::registry()
                    .with(tracing_opentelemetry::layer().with_tracer(tracer)),
            );
            (dispatch, Flush::Sdk(provider), None)
        }
    };
    Setup {
        case,
        dispatch,
        flush,
        writer,
        spans: 0,
        wall: Vec::new(),
        app_cpu: Vec::new(),
        background: Vec::new(),
        background_total: HashMap::new(),
    }
}

/// One round: the per-span loop under a root, then the flush.
fn round(setup: &mut Setup, iterations: u32, record: bool) {
    let cpu_before = cpu_by_thread_name();
    let (wall, app_cpu) = tracing::dispatcher::with_default(&setup.dispatch, || {
        let root = match setup.case {
            Case::OpenTelemetry | Case::Registry | Case::Bookkeeping => info_span!("request"),
            _ => Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
                .start(|| info_span!("request")),
        };
        let entered = root.enter();
        let (wall, cpu) = span_loop(iterations, thread_cpu_clock_ns);
        drop(entered);
        drop(root);
        (wall, cpu.unwrap_or(0))
    });
    setup.spans += u64::from(iterations) + 1;
    setup.flush.flush();
    let cpu_after = cpu_by_thread_name();
    for (name, after) in &cpu_after {
        let before = cpu_before.get(name).copied().unwrap_or(0);
        *setup.background_total.entry(name.clone()).or_default() += after.saturating_sub(before);
    }
    if record {
        let n = f64::from(iterations);
        setup.wall.push(wall.as_nanos() as f64 / n);
        setup.app_cpu.push(app_cpu as f64 / n);
        let mut delta = HashMap::new();
        for (name, after) in cpu_after {
            let before = cpu_before.get(&name).copied().unwrap_or(0);
            delta.insert(name, after.saturating_sub(before));
        }
        setup.background.push(delta);
    }
}

fn main() {
    if std::env::var_os(COLLECTOR_ENV).is_some() {
        collector_main();
        return;
    }
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse::<u32>().expect("numeric arguments"));
    let iterations = args.next().unwrap_or(20_000);
    let rounds = args.next().unwrap_or(10);

    let collector = CollectorProcess::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut setups: Vec<Setup> = Case::ALL
        .iter()
        .map(|&case| setup(case, collector.port, dir.path()))
        .collect();
    for setup in &mut setups {
        round(setup, iterations / 5, false);
    }
    let n = setups.len();
    for r in 0..rounds as usize {
        for k in 0..n {
            round(&mut setups[(r + k) % n], iterations, true);
        }
    }

    // opentelemetry_sdk's force_flush may return before the last spans are
    // sent; its shutdown sends them all. The writers are flushed already.
    for setup in &setups {
        if let Flush::Sdk(provider) = &setup.flush {
            provider.shutdown().expect("shutdown");
        }
    }
    let counts = collector.counts();
    println!("tracing-osprofiler OTLP benchmark");
    println!(
        "iterations per round: {iterations}, rounds: {rounds}, available parallelism: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "{:<46} {:>9} {:>9} {:>12} {:>12} {:>12}",
        "per span", "wall ns", "app cpu", "writer cpu", "export cpu", "all bg cpu"
    );
    let mut wall = HashMap::new();
    let mut cpu = HashMap::new();
    for setup in &setups {
        let per_span = |names: &[&str]| {
            let values: Vec<f64> = setup
                .background
                .iter()
                .map(|delta| {
                    let total: u64 = delta
                        .iter()
                        .filter(|(name, _)| names.is_empty() || names.contains(&name.as_str()))
                        .map(|(_, ns)| *ns)
                        .sum();
                    total as f64 / f64::from(iterations)
                })
                .collect();
            median(&values)
        };
        let (writer_cpu, export_cpu) = match setup.case {
            Case::Registry | Case::Bookkeeping => (f64::NAN, f64::NAN),
            Case::OpenTelemetry => (
                f64::NAN,
                // The batch thread encodes and hands bodies to reqwest's
                // runtime thread, which sends them.
                per_span(&["OpenTelemetry.T", "reqwest-interna"]),
            ),
            _ => (
                per_span(&["tracing-osprofi"]),
                per_span(&["osprofiler-otlp"]),
            ),
        };
        // Everything but the application thread (this main thread).
        let main_name = std::fs::read_to_string("/proc/thread-self/comm")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let all_bg: Vec<f64> = setup
            .background
            .iter()
            .map(|delta| {
                delta
                    .iter()
                    .filter(|(name, _)| **name != main_name)
                    .map(|(_, ns)| *ns)
                    .sum::<u64>() as f64
                    / f64::from(iterations)
            })
            .collect();
        let w = median(&setup.wall);
        let c = median(&setup.app_cpu);
        wall.insert(setup.case as usize, w);
        cpu.insert(setup.case as usize, c);
        println!(
            "{:<46} {:>9.0} {:>9.0} {:>12.0} {:>12.0} {:>12.0}",
            setup.case.label(),
            w,
            c,
            writer_cpu,
            export_cpu,
            median(&all_bg)
        );
    }
    let ratio = |a: Case, b: Case, of: &HashMap<usize, f64>| of[&(a as usize)] / of[&(b as usize)];
    // What a layer adds to a span: its time less the bare registry's.
    let added = |a: Case, b: Case, of: &HashMap<usize, f64>| {
        let r = of[&(Case::Registry as usize)];
        (of[&(a as usize)] - r) / (of[&(b as usize)] - r)
    };
    let verdict = |value: f64, target: f64| if value <= target { "met" } else { "MISSED" };
    println!();
    println!("ratios on the application thread: CPU time (wall clock); 'added' is less (r)");
    for (label, a, b, target) in [
        ("o/f", Case::Otlp, Case::File, 1.25),
        ("o/t", Case::Otlp, Case::OpenTelemetry, 0.30),
        ("fo/f", Case::FileOtlp, Case::File, f64::NAN),
        ("k/t", Case::Bookkeeping, Case::OpenTelemetry, f64::NAN),
        ("k/o", Case::Bookkeeping, Case::Otlp, f64::NAN),
    ] {
        let total = ratio(a, b, &cpu);
        let extra = added(a, b, &cpu);
        let goal = if target.is_nan() {
            String::new()
        } else {
            format!(
                "  target <= {target}: total {}, added {}",
                verdict(total, target),
                verdict(extra, target)
            )
        };
        println!(
            "{label:<5} total {total:.3} ({:.3}), added {extra:.3} ({:.3}){goal}",
            ratio(a, b, &wall),
            added(a, b, &wall),
        );
    }
    println!();
    // Every span must have arrived, or the comparison would flatter a
    // side that dropped some.
    for setup in &setups {
        let (service, exported) = match (setup.case, &setup.writer) {
            (Case::OpenTelemetry, _) => ("bench-t", None),
            (case, Some(writer)) => (
                match case {
                    Case::Otlp => "bench-o",
                    Case::FileOtlp => "bench-fo",
                    _ => "",
                },
                writer.stats().sink(SinkKind::Otlp),
            ),
            _ => ("", None),
        };
        if service.is_empty() {
            continue;
        }
        let received = counts.get(service).copied().unwrap_or(0);
        let export_names: &[&str] = match setup.case {
            Case::OpenTelemetry => &["OpenTelemetry.T", "reqwest-interna"],
            _ => &["tracing-osprofi", "osprofiler-otlp"],
        };
        let export_ns: u64 = setup
            .background_total
            .iter()
            .filter(|(name, _)| export_names.contains(&name.as_str()))
            .map(|(_, ns)| *ns)
            .sum();
        println!(
            "{}: {} spans made, {received} received by the collector{}; \
             background CPU (writer + export) per span received: {:.0} ns",
            setup.case.label(),
            setup.spans,
            exported.map_or(String::new(), |s| format!(
                " (sink: {} written, {} dropped, {} failed)",
                s.written, s.dropped, s.failed
            )),
            export_ns as f64 / received.max(1) as f64
        );
    }
}
