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
    // `LAYER_BENCH_ONLY=c` measures one case alone, for a profiler.
    let only = std::env::var("LAYER_BENCH_ONLY").ok();
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
            if let (Some(before), Some(after)) = (before, process_cpu_ns()) {
                process_cpu[i].push((after - before) as f64 / f64::from(iterations));
            }
            times[i].push(sample.wall);
            cpu[i].extend(sample.cpu_ns);
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
        cpu[i].sort_by(f64::total_cmp);
        let cpu_med = cpu[i].get(cpu[i].len() / 2).copied().unwrap_or(f64::NAN);
        cpu_medians[*case as usize] = cpu_med;
        process_cpu[i].sort_by(f64::total_cmp);
        let all_med = process_cpu[i]
            .get(process_cpu[i].len() / 2)
            .copied()
            .unwrap_or(f64::NAN);
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
}
