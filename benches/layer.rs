//! Cost per span of the profiling layer, as ratios measured in one run.
//!
//! Each iteration is `let s = info_span!("work"); let _e = s.enter();
//! drop(_e); drop(s);` (create, enter, exit, close) nested under an entered
//! request root span, under four subscribers built in the same process:
//!
//! * (a) `Registry` + a no-op layer: the floor (a bare `Registry` never
//!   frees closed spans, tokio-rs/tracing#900, so it is no fair baseline);
//! * (b) `Registry` + `OsProfilerLayer`, no profiled request;
//! * (c) `Registry` + `OsProfilerLayer` inside a profiled request, writing
//!   through `writer::RollingFile` (non-blocking, lossless) to a file;
//! * (d) `Registry` + `tracing_subscriber::fmt` with `FmtSpan::NEW |
//!   FmtSpan::CLOSE` through `tracing_appender::non_blocking` to a file.
//!
//! plus (c-sink), (c) writing to `io::sink`, to tell the layer's own cost
//! from the writer's.
//!
//! Rounds run in interleaved order; after each round the writer threads are
//! left to drain. Per span, the table shows the median and minimum
//! wall-clock time on the application thread, the median CPU time of the
//! application thread ("app cpu") and of the whole process, writer threads
//! included ("all cpu", Linux `schedstat`), and the heap allocations on the
//! application thread (a counting wrapper around the system allocator).
//! Then the ratios b/a (target at most 1.10) and c/d (target at most 0.25),
//! on wall-clock medians, and the same on CPU time, which other processes
//! on a busy machine do not inflate.
//!
//! Run: `cargo bench --bench layer` (optional arguments: iterations per
//! round, rounds; `LAYER_BENCH_ONLY=c` runs one case, for a profiler).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use tracing::{info_span, Dispatch, Subscriber};
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{HmacAlgorithm, OsProfilerLayer, Profile, Signer};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;
use tracing_subscriber::Layer;

mod support;
use support::{loadavg, process_cpu_ns, span_loop, thread_cpu_ns};

/// Counts allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: the thread-local may be gone while a thread exits.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn thread_allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Waits until no file under `dir` has grown for 30 ms (at most 5 s): the
/// writer threads have drained their queues and stopped competing for the
/// CPU with the next measurement.
fn wait_for_writers(dir: &std::path::Path) {
    fn size(path: &std::path::Path) -> u64 {
        std::fs::read_dir(path).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = size(dir);
    let mut stable = 0;
    while stable < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        let now = size(dir);
        if now == last {
            stable += 1;
        } else {
            stable = 0;
            last = now;
        }
    }
}

/// A layer that does nothing: with it, the registry frees closed spans.
struct NoopLayer;

impl<S: Subscriber> Layer<S> for NoopLayer {}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    A,
    B,
    C,
    D,
    /// Not part of the targets: (c) with `io::sink` as the writer, to tell
    /// the layer's own cost from the cost of handing lines to a writer.
    CSink,
}

impl Case {
    const ALL: [Case; 5] = [Case::A, Case::B, Case::C, Case::D, Case::CSink];

    fn letter(self) -> &'static str {
        match self {
            Case::A => "a",
            Case::B => "b",
            Case::C => "c",
            Case::D => "d",
            Case::CSink => "c-sink",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Case::A => "(a) Registry + no-op layer",
            Case::B => "(b) Registry + OsProfilerLayer, unprofiled",
            Case::C => "(c) Registry + OsProfilerLayer, profiled, RollingFile",
            Case::D => "(d) Registry + fmt NEW|CLOSE, non_blocking file",
            Case::CSink => "(c-sink) as (c), but writing to io::sink",
        }
    }
}

/// One measured round of one case.
struct Sample {
    /// Wall-clock time per span on the application thread.
    wall: Duration,
    /// CPU time per span on the application thread, if known.
    cpu_ns: Option<f64>,
    /// Heap allocations per span on the application thread.
    allocations: f64,
}

/// The per-span loop, under an entered request root.
fn run(dispatch: &Dispatch, case: Case, iterations: u32) -> Sample {
    tracing::dispatcher::with_default(dispatch, || {
        let root = if matches!(case, Case::C | Case::CSink) {
            Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
                .start(|| info_span!("request"))
        } else {
            info_span!("request")
        };
        let _root = root.enter();
        let allocations = thread_allocations();
        let (elapsed, cpu) = span_loop(iterations, thread_cpu_ns);
        let cpu = cpu.map(|ns| ns as f64 / f64::from(iterations));
        let allocations = thread_allocations() - allocations;
        Sample {
            wall: elapsed / iterations,
            cpu_ns: cpu,
            allocations: allocations as f64 / f64::from(iterations),
        }
    })
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse::<u32>().expect("numeric arguments"));
    let iterations = args.next().unwrap_or(20_000);
    let rounds = args.next().unwrap_or(15);
    // `CAPTURE_BENCH_ONLY=Discarded` (a tail-capture case's name) measures
    // that case alone, for a profiler; `CAPTURE_BENCH_ONLY=all` the six
    // tail-capture cases and their ratios, without the other tables.
    if std::env::var_os("CAPTURE_BENCH_ONLY").is_some() {
        capture_cases(iterations, rounds);
        return;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let (profile_writer, profile_guard) = RollingFile::new(dir.path().join("osprofiler"))
        .build()
        .expect("rolling file");
    let fmt_file = std::fs::File::create(dir.path().join("fmt.log")).expect("fmt log file");
    let (fmt_writer, fmt_guard) = tracing_appender::non_blocking(fmt_file);

    let dispatch = |case| match case {
        Case::A => Dispatch::new(tracing_subscriber::registry().with(NoopLayer)),
        Case::B | Case::C => Dispatch::new(
            tracing_subscriber::registry().with(OsProfilerLayer::new(profile_writer.clone())),
        ),
        Case::CSink => Dispatch::new(
            tracing_subscriber::registry().with(OsProfilerLayer::from_make_writer(std::io::sink)),
        ),
        Case::D => Dispatch::new(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
                    .with_writer(fmt_writer.clone()),
            ),
        ),
    };
    // `LAYER_BENCH_ONLY=c` measures one case alone, for a profiler;
    // `LAYER_BENCH_ONLY=busy` the busy-time cases alone.
    let only = std::env::var("LAYER_BENCH_ONLY").ok();
    if only.as_deref() == Some("busy") {
        busy_cases(iterations, rounds);
        return;
    }
    let dispatches: Vec<(Case, Dispatch)> = Case::ALL
        .iter()
        .filter(|c| only.is_none() || only.as_deref() == Some(c.letter()))
        .map(|&c| (c, dispatch(c)))
        .collect();

    // Warm up every path (thread-locals, the writer threads, the files).
    for (case, d) in &dispatches {
        run(d, *case, iterations / 10);
    }
    wait_for_writers(dir.path());

    let n = dispatches.len();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut process_cpu: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut allocations = vec![0.0f64; n];
    for round in 0..rounds {
        // Rotate the order so that no case always follows the same one.
        for k in 0..n {
            let i = (round as usize + k) % n;
            let (case, d) = &dispatches[i];
            let before = process_cpu_ns();
            let sample = run(d, *case, iterations);
            // Writer threads' work counts too: wait until they are done.
            wait_for_writers(dir.path());
            // NaN for a round whose CPU clock read failed: it keeps the
            // rounds of every case aligned, and medians leave it out.
            process_cpu[i].push(cpu_delta(before, process_cpu_ns(), iterations));
            times[i].push(sample.wall);
            cpu[i].push(sample.cpu_ns.unwrap_or(f64::NAN));
            allocations[i] = sample.allocations;
        }
    }
    let cases: Vec<Case> = dispatches.iter().map(|(c, _)| *c).collect();
    drop(dispatches);
    let lines_check = profile_writer.stats().events_dropped();
    drop(profile_guard);
    drop(fmt_guard);

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("tracing-osprofiler layer benchmark");
    println!("iterations per round: {iterations}, rounds: {rounds}, available parallelism: {cpus}");
    println!("load average at the end (1, 5, 15 min): {}", loadavg());
    println!();
    println!(
        "{:<56} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "subscriber (per span)", "median ns", "min ns", "app cpu", "all cpu", "allocs"
    );
    let mut medians = [f64::NAN; 5];
    let mut cpu_medians = [f64::NAN; 5];
    let mut process_medians = [f64::NAN; 5];
    for (i, case) in cases.iter().enumerate() {
        let min = *times[i].iter().min().unwrap();
        let med = median(&mut times[i]);
        medians[*case as usize] = med.as_nanos() as f64;
        let cpu_med = support::median(&cpu[i]);
        cpu_medians[*case as usize] = cpu_med;
        let all_med = support::median(&process_cpu[i]);
        process_medians[*case as usize] = all_med;
        println!(
            "{:<56} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>7.2}",
            case.label(),
            med.as_nanos() as f64,
            min.as_nanos() as f64,
            cpu_med,
            all_med,
            allocations[i],
        );
    }
    if medians[..4].iter().any(|m| m.is_nan()) {
        return;
    }
    let b_over_a = medians[1] / medians[0];
    let c_over_d = medians[2] / medians[3];
    println!();
    println!(
        "b/a = {b_over_a:.3} (target <= 1.10: {})",
        if b_over_a <= 1.10 { "met" } else { "MISSED" }
    );
    println!(
        "c/d = {c_over_d:.3} (target <= 0.25: {})",
        if c_over_d <= 0.25 { "met" } else { "MISSED" }
    );
    // CPU time is not inflated by other processes taking the CPU, so on a
    // busy machine these ratios are the steadier ones.
    println!(
        "on application-thread CPU time: b/a = {:.3}, c/d = {:.3}",
        cpu_medians[1] / cpu_medians[0],
        cpu_medians[2] / cpu_medians[3]
    );
    println!(
        "on CPU time of all threads (writers included): b/a = {:.3}, c/d = {:.3}",
        process_medians[1] / process_medians[0],
        process_medians[2] / process_medians[3]
    );
    println!("profile lines dropped: {lines_check} (lossless writer: must be 0)");
    if only.is_none() {
        capture_cases(iterations, rounds);
        busy_cases(iterations, rounds);
    }
}

/// Spans per request in the tail-capture cases.
const SPANS_PER_REQUEST: u32 = 20;

/// The tail-capture cases, each a loop of whole requests (a root, then
/// `SPANS_PER_REQUEST` spans as in `span_loop`, then the root's close, where
/// a captured request is decided), so that the decision and the buffer's
/// fate are paid for in the figures. Per span: the loop's time over
/// requests × spans.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CaptureCase {
    /// Registry + no-op layer, plain roots: the floor.
    Floor,
    /// OsProfilerLayer, plain roots (no capture, no token).
    Unprofiled,
    /// Signed requests (`Profile::start`), written to a RollingFile.
    Signed,
    /// Captured, then discarded (a threshold no request reaches).
    Discarded,
    /// Captured and kept (threshold 0, no per-second cap), written.
    Kept,
    /// Sampled out of capture (one in `u32::MAX`).
    SampledOut,
}

impl CaptureCase {
    const ALL: [CaptureCase; 6] = [
        CaptureCase::Floor,
        CaptureCase::Unprofiled,
        CaptureCase::Signed,
        CaptureCase::Discarded,
        CaptureCase::Kept,
        CaptureCase::SampledOut,
    ];

    fn label(self) -> &'static str {
        match self {
            CaptureCase::Floor => "(a-req) Registry + no-op layer",
            CaptureCase::Unprofiled => "(b-req) OsProfilerLayer, unprofiled",
            CaptureCase::Signed => "(c-req) signed request, RollingFile",
            CaptureCase::Discarded => "(e) captured, then discarded",
            CaptureCase::Kept => "(f) captured and kept, RollingFile",
            CaptureCase::SampledOut => "(g) sampled out of capture",
        }
    }
}

fn capture_cases(iterations: u32, rounds: u32) {
    use tracing_osprofiler::CapturePolicy;

    let dir = tempfile::tempdir().expect("temp dir");
    let (writer, guard) = RollingFile::new(dir.path()).build().expect("rolling file");
    let discard = CapturePolicy::new()
        .with_keep_slower_than(Some(Duration::from_secs(3600)))
        .build();
    let keep = CapturePolicy::new()
        .with_keep_slower_than(Some(Duration::ZERO))
        .with_max_kept_per_second(u32::MAX)
        .build();
    let sample = CapturePolicy::new()
        .with_keep_slower_than(Some(Duration::ZERO))
        .with_sample_one_in(u32::MAX)
        .build();
    let signer = Signer::new("SECRET_KEY", HmacAlgorithm::Sha1);
    let layered =
        || Dispatch::new(tracing_subscriber::registry().with(OsProfilerLayer::new(writer.clone())));
    let only = std::env::var("CAPTURE_BENCH_ONLY").ok();
    let dispatches: Vec<(CaptureCase, Dispatch)> = CaptureCase::ALL
        .iter()
        .filter(|c| {
            only.is_none()
                || only.as_deref() == Some("all")
                || only.as_deref() == Some(format!("{c:?}").as_str())
        })
        .map(|&c| {
            let d = match c {
                CaptureCase::Floor => Dispatch::new(tracing_subscriber::registry().with(NoopLayer)),
                _ => layered(),
            };
            (c, d)
        })
        .collect();
    let requests = (iterations / SPANS_PER_REQUEST).max(1);
    let spans = f64::from(requests * SPANS_PER_REQUEST);
    let one_round = |case: CaptureCase, d: &Dispatch, requests: u32| -> (f64, Option<f64>) {
        tracing::dispatcher::with_default(d, || {
            // The thread's CPU clock: `schedstat` lags by up to a tick, too
            // coarse for rounds of a few milliseconds.
            let cpu_before = support::thread_cpu_clock_ns();
            let started = Instant::now();
            for _ in 0..requests {
                let root = match case {
                    CaptureCase::Floor | CaptureCase::Unprofiled => info_span!("request"),
                    CaptureCase::Signed => {
                        Profile::new(signer.clone()).start(|| info_span!("request"))
                    }
                    CaptureCase::Discarded => discard.start(|| info_span!("request")),
                    CaptureCase::Kept => keep.start(|| info_span!("request")),
                    CaptureCase::SampledOut => sample.start(|| info_span!("request")),
                };
                let entered = root.enter();
                for _ in 0..SPANS_PER_REQUEST {
                    let s = info_span!("work");
                    let e = s.enter();
                    drop(e);
                    drop(s);
                }
                drop(entered);
                drop(root);
            }
            let wall = started.elapsed().as_nanos() as f64;
            let cpu = support::thread_cpu_clock_ns()
                .zip(cpu_before)
                .map(|(after, before)| after.saturating_sub(before) as f64);
            (wall, cpu)
        })
    };
    for (case, d) in &dispatches {
        one_round(*case, d, requests / 10 + 1);
    }
    wait_for_writers(dir.path());
    let n = dispatches.len();
    let (mut wall, mut cpu, mut all) = (
        vec![Vec::new(); n],
        vec![Vec::new(); n],
        vec![Vec::new(); n],
    );
    for round in 0..rounds {
        for k in 0..n {
            let i = (round as usize + k) % n;
            let (case, d) = &dispatches[i];
            let before = process_cpu_ns();
            let (w, c) = one_round(*case, d, requests);
            wait_for_writers(dir.path());
            // NaN for a failed CPU clock read keeps the rounds aligned for
            // `paired`.
            all[i].push(
                before
                    .zip(process_cpu_ns())
                    .map_or(f64::NAN, |(b, a)| a.saturating_sub(b) as f64 / spans),
            );
            wall[i].push(w / spans);
            cpu[i].push(c.map_or(f64::NAN, |c| c / spans));
        }
    }
    let cases: Vec<CaptureCase> = dispatches.iter().map(|(c, _)| *c).collect();
    drop(dispatches);
    let dropped = writer.stats().events_dropped();
    drop(guard);

    println!();
    println!(
        "tail capture, per span of requests of {SPANS_PER_REQUEST} spans (root start and close included)"
    );
    let labels: Vec<&str> = cases.iter().map(|c| c.label()).collect();
    print_medians(&labels, &wall, &cpu, &all);
    if cases.len() != CaptureCase::ALL.len() {
        return;
    }
    let [floor, unprofiled, signed, discarded, kept, sampled] = [0, 1, 2, 3, 4, 5];
    // Each ratio is taken round by round (the two cases ran in the same
    // round), then its median: see `paired`.
    let ratio = |x: usize, y: usize, target: f64, what: &str| {
        let r = |k: usize| {
            let series = [&wall, &cpu, &all][k];
            paired(&series[x], &series[y], |x, y| x / y)
        };
        println!(
            "{what:<8} wall {:.3}, app cpu {:.3}, all cpu {:.3} (target <= {target}: {})",
            r(0),
            r(1),
            r(2),
            if r(1) <= target && r(2) <= target {
                "met on cpu"
            } else {
                "MISSED on cpu"
            }
        );
    };
    ratio(discarded, floor, 2.0, "e/a-req");
    ratio(discarded, signed, 0.6, "e/c-req");
    ratio(kept, signed, 1.1, "f/c-req");
    ratio(sampled, floor, 1.03, "g/a-req");
    ratio(sampled, unprofiled, 1.03, "g/b-req");
    println!("capture lines dropped: {dropped} (lossless writer: must be 0)");
}

/// The busy-time cases (issue #22): what counting enters and exits adds,
/// measured side by side. Each case is `span_loop`'s span under an entered
/// root, with (`enter`) and without (`no enter`) the span's enter and exit;
/// the difference is what an enter and an exit cost under that subscriber.
/// What busy time adds to a profiled span is that difference above the
/// floor's, plus what the `{"busy":…}` of its stop line costs to format,
/// measured on the line writer alone (with and without a busy time).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BusyCase {
    Floor,
    FloorNoEnter,
    Unprofiled,
    UnprofiledNoEnter,
    Profiled,
    ProfiledNoEnter,
    ProfiledFile,
    ProfiledFileNoEnter,
}

impl BusyCase {
    const ALL: [BusyCase; 8] = [
        BusyCase::Floor,
        BusyCase::FloorNoEnter,
        BusyCase::Unprofiled,
        BusyCase::UnprofiledNoEnter,
        BusyCase::Profiled,
        BusyCase::ProfiledNoEnter,
        BusyCase::ProfiledFile,
        BusyCase::ProfiledFileNoEnter,
    ];

    fn label(self) -> &'static str {
        match self {
            BusyCase::Floor => "(a) Registry + no-op layer, enter",
            BusyCase::FloorNoEnter => "(a-ne) as (a), no enter",
            BusyCase::Unprofiled => "(b) OsProfilerLayer, unprofiled, enter",
            BusyCase::UnprofiledNoEnter => "(b-ne) as (b), no enter",
            BusyCase::Profiled => "(c-sink) OsProfilerLayer, profiled, io::sink, enter",
            BusyCase::ProfiledNoEnter => "(c-sink-ne) as (c-sink), no enter",
            BusyCase::ProfiledFile => "(c) OsProfilerLayer, profiled, RollingFile, enter",
            BusyCase::ProfiledFileNoEnter => "(c-ne) as (c), no enter",
        }
    }

    fn enters(self) -> bool {
        matches!(
            self,
            BusyCase::Floor | BusyCase::Unprofiled | BusyCase::Profiled | BusyCase::ProfiledFile
        )
    }

    fn profiled(self) -> bool {
        matches!(
            self,
            BusyCase::Profiled
                | BusyCase::ProfiledNoEnter
                | BusyCase::ProfiledFile
                | BusyCase::ProfiledFileNoEnter
        )
    }
}

/// One monotonic clock read as a number of nanoseconds, the way the layer
/// read it before (an `Instant` since an origin, through `Duration`) and
/// the way it reads it on Linux now (`clock_gettime(CLOCK_MONOTONIC)`, see
/// src/layer/clock.rs): median ns per read over `rounds`, alternating.
fn clock_reads(iterations: u32, rounds: u32) -> (f64, f64) {
    let origin = Instant::now();
    let via_instant = || -> i64 {
        let d = Instant::now().saturating_duration_since(origin);
        (d.as_secs() as i64) * 1_000_000_000 + i64::from(d.subsec_nanos())
    };
    let raw = || -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    let once = |instant: bool| -> f64 {
        let started = Instant::now();
        let mut sum = 0i64;
        for _ in 0..iterations {
            sum = sum.wrapping_add(if instant { via_instant() } else { raw() });
        }
        std::hint::black_box(sum);
        started.elapsed().as_nanos() as f64 / f64::from(iterations)
    };
    alternating_medians(rounds, once)
}

/// Prints one row per case (`labels[i]`): the medians of its wall-clock,
/// application-thread CPU and all-threads CPU samples, per span; returns
/// them.
fn print_medians(
    labels: &[&str],
    wall: &[Vec<f64>],
    cpu: &[Vec<f64>],
    all: &[Vec<f64>],
) -> Vec<[f64; 3]> {
    println!(
        "{:<56} {:>9} {:>9} {:>9}",
        "subscriber (per span)", "median ns", "app cpu", "all cpu"
    );
    let med: Vec<[f64; 3]> = (0..labels.len())
        .map(|i| {
            [
                support::median(&wall[i]),
                support::median(&cpu[i]),
                support::median(&all[i]),
            ]
        })
        .collect();
    for (label, m) in labels.iter().zip(&med) {
        println!("{label:<56} {:>9.0} {:>9.0} {:>9.0}", m[0], m[1], m[2]);
    }
    med
}

/// The median over rounds of `f(x[r], y[r])`, the two cases measured in
/// the same round `r`; a round where either is NaN (its CPU clock read
/// failed) is left out (NaN without rounds).
fn paired(x: &[f64], y: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    let values: Vec<f64> = x
        .iter()
        .zip(y)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(&x, &y)| f(x, y))
        .collect();
    support::median(&values)
}

/// CPU nanoseconds per span between two reads of a CPU clock, NaN when
/// either read failed.
fn cpu_delta(before: Option<u64>, after: Option<u64>, spans: u32) -> f64 {
    before.zip(after).map_or(f64::NAN, |(b, a)| {
        a.saturating_sub(b) as f64 / f64::from(spans)
    })
}

/// `once(true)` and `once(false)` warmed up, then run `rounds` times each
/// in alternating order (so neither always runs first): their medians, in
/// that order.
fn alternating_medians(rounds: u32, mut once: impl FnMut(bool) -> f64) -> (f64, f64) {
    once(true);
    once(false);
    let (mut yes, mut no) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let first = round % 2 == 0;
        let x = once(first);
        let y = once(!first);
        let (t, f) = if first { (x, y) } else { (y, x) };
        yes.push(t);
        no.push(f);
    }
    (support::median(&yes), support::median(&no))
}

fn busy_cases(iterations: u32, rounds: u32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (file_writer, file_guard) = RollingFile::new(dir.path()).build().expect("rolling file");
    let dispatches: Vec<(BusyCase, Dispatch)> = BusyCase::ALL
        .iter()
        .map(|&c| {
            let d = match c {
                BusyCase::Floor | BusyCase::FloorNoEnter => {
                    Dispatch::new(tracing_subscriber::registry().with(NoopLayer))
                }
                BusyCase::ProfiledFile | BusyCase::ProfiledFileNoEnter => Dispatch::new(
                    tracing_subscriber::registry().with(OsProfilerLayer::new(file_writer.clone())),
                ),
                _ => Dispatch::new(
                    tracing_subscriber::registry()
                        .with(OsProfilerLayer::from_make_writer(std::io::sink)),
                ),
            };
            (c, d)
        })
        .collect();
    let one_round = |case: BusyCase, d: &Dispatch, n: u32| -> (f64, Option<f64>) {
        tracing::dispatcher::with_default(d, || {
            let root = if case.profiled() {
                Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
                    .start(|| info_span!("request"))
            } else {
                info_span!("request")
            };
            let _root = root.enter();
            // The thread's CPU clock: a round of a few milliseconds is too
            // short for `schedstat`, which lags by up to a tick.
            let cpu_before = support::thread_cpu_clock_ns();
            let started = Instant::now();
            if case.enters() {
                for _ in 0..n {
                    let s = info_span!("work");
                    let e = s.enter();
                    drop(e);
                    drop(s);
                }
            } else {
                for _ in 0..n {
                    let s = info_span!("work");
                    drop(std::hint::black_box(s));
                }
            }
            let wall = started.elapsed().as_nanos() as f64 / f64::from(n);
            let cpu = support::thread_cpu_clock_ns()
                .zip(cpu_before)
                .map(|(after, before)| after.saturating_sub(before) as f64 / f64::from(n));
            (wall, cpu)
        })
    };
    for (case, d) in &dispatches {
        one_round(*case, d, iterations / 10 + 1);
    }
    wait_for_writers(dir.path());
    let n = dispatches.len();
    let (mut wall, mut cpu) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    // The CPU time of every thread, the writer's included (which formats
    // the lines of (c)), until the writer has drained.
    let mut all = vec![Vec::new(); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round as usize + k) % n;
            let (case, d) = &dispatches[i];
            let before = process_cpu_ns();
            let (w, c) = one_round(*case, d, iterations);
            wait_for_writers(dir.path());
            // NaN for a failed CPU clock read keeps the rounds aligned for
            // `paired`.
            all[i].push(cpu_delta(before, process_cpu_ns(), iterations));
            wall[i].push(w);
            cpu[i].push(c.unwrap_or(f64::NAN));
        }
    }
    drop(dispatches);
    let dropped = file_writer.stats().events_dropped();
    drop(file_guard);
    // The stop line's formatting, with and without its busy time.
    let (line_plain, line_busy) = {
        use tracing_osprofiler::format::{write_stop, write_stop_with_busy, PointIds, PointName};
        let ids = PointIds {
            base_id: tracing_osprofiler::Id::new_v4(),
            parent_id: tracing_osprofiler::Id::new_v4(),
            trace_id: tracing_osprofiler::Id::new_v4(),
        };
        let at = tracing_osprofiler::format::Timestamp::now();
        let d = Duration::from_nanos(1_234_567);
        let mut out = Vec::with_capacity(256);
        let once = |busy: bool| {
            let started = Instant::now();
            for _ in 0..iterations {
                out.clear();
                if busy {
                    let b = Some(Duration::from_nanos(234_567));
                    write_stop_with_busy(&mut out, at, d, b, &ids, PointName::new("work"), false);
                } else {
                    write_stop(&mut out, at, d, &ids, PointName::new("work"), false);
                }
                std::hint::black_box(&out);
            }
            started.elapsed().as_nanos() as f64 / f64::from(iterations)
        };
        let (busy, plain) = alternating_medians(rounds, once);
        (plain, busy)
    };

    let (clock_instant, clock_raw) = clock_reads(iterations, rounds);

    println!();
    println!("busy time: enter and exit, side by side (per span)");
    let labels = BusyCase::ALL.map(BusyCase::label);
    let med = print_medians(&labels, &wall, &cpu, &all);
    println!(
        "{:<56} {:>9.0}\n{:<56} {:>9.0}",
        "stop line formatted, without busy time",
        line_plain,
        "stop line formatted, with busy time",
        line_busy
    );
    println!(
        "{:<56} {:>9.1}\n{:<56} {:>9.1}",
        "monotonic read: Instant since an origin, as nanoseconds",
        clock_instant,
        "monotonic read: clock_gettime, as nanoseconds (the layer)",
        clock_raw
    );
    let [a, a_ne, b, b_ne, c, c_ne, cf, cf_ne] = [0, 1, 2, 3, 4, 5, 6, 7];
    // The pairs' differences and ratios are taken round by round (the two
    // cases of a pair run in the same round, though with the rotating order
    // not always one right after the other), then their median: what
    // drifts from round to round (load, clock speed) cancels out, where a
    // difference of two medians would add it up.
    for (k, clock, series) in [(0, "wall", &wall), (1, "app cpu", &cpu)] {
        let m = |i: usize| med[i][k];
        let diff = |x: usize, y: usize| paired(&series[x], &series[y], |x, y| x - y);
        let floor_enter = diff(a, a_ne);
        let added = diff(c, c_ne) - floor_enter + (line_busy - line_plain);
        let before = m(c) - added;
        let b_over_a = paired(&series[b], &series[a], |x, y| x / y);
        println!(
            "on {clock}: b/a = {:.3} (target <= 1.03: {}); enter+exit: floor {:.0} ns, \
             unprofiled {:.0} ns, profiled {:.0} ns; busy time adds {:.0} ns to a profiled \
             span of {:.0} ns: {:.1} % (target <= 15 %: {})",
            b_over_a,
            if b_over_a <= 1.03 { "met" } else { "MISSED" },
            floor_enter,
            diff(b, b_ne),
            diff(c, c_ne),
            added,
            before,
            100.0 * added / before,
            if added / before <= 0.15 {
                "met"
            } else {
                "MISSED"
            },
        );
    }
    // The whole process's CPU per profiled span, the writer thread's
    // formatting included (both (c) rows write a busy time, so its cost is
    // added as measured on the line writer).
    {
        let m = |i: usize| med[i][2];
        let floor_enter = paired(&cpu[a], &cpu[a_ne], |x, y| x - y);
        let enter_exit = paired(&all[cf], &all[cf_ne], |x, y| x - y);
        let added = enter_exit - floor_enter + (line_busy - line_plain);
        let before = m(cf) - added;
        println!(
            "on all cpu, RollingFile: enter+exit {:.0} ns; busy time adds {:.0} ns to a profiled \
             span of {:.0} ns of the process's CPU: {:.1} % (target <= 15 %: {})",
            enter_exit,
            added,
            before,
            100.0 * added / before,
            if added / before <= 0.15 {
                "met"
            } else {
                "MISSED"
            },
        );
        println!("busy lines dropped: {dropped} (lossless writer: must be 0)");
    }
}
