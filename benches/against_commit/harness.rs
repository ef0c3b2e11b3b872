//! One build of the crate, measured the way `benches/layer.rs` measures its
//! busy-time pairs, so that two builds (two commits) can be compared in
//! alternating processes: see `run.sh` beside this file, which builds this
//! harness against each commit. Not a bench target of the workspace (cargo
//! finds only `benches/*.rs` and `benches/*/main.rs`).
//!
//! Three cases, each a loop of `work` spans created, entered, left and
//! closed inside a root (as a `#[instrument]`ed call does), one dispatch
//! each, in rotating order, `ROUNDS` rounds of `SPANS` spans:
//!
//! * floor: `Registry` + a no-op layer;
//! * unprofiled: `Registry` + `OsProfilerLayer`, no profiled request;
//! * signed: the same inside `Profile::start`, written to a `RollingFile`.
//!
//! Prints one line: the medians per span of the application thread's CPU
//! time (ns) for the three cases, then of the whole process's CPU time
//! (the writer's formatting included, until the file stops growing).
//!
//! Arguments: `SPANS` per round (default 20 000), `ROUNDS` (default 11).
//! With `CASE` set in the environment (`0` floor, `1` unprofiled, `2`
//! signed), only that case runs, `ROUNDS` rounds of `SPANS` spans with no
//! warm-up, and nothing is printed: the run for a profiler such as
//! callgrind, where two runs at different `SPANS` differ by exactly
//! `ROUNDS` × the difference in spans (one-time costs cancel out).
//!
//! Uses only the public API the crate has had since 8da30c9
//! (`OsProfilerLayer::new`, `RollingFile::new(dir).build()`,
//! `Profile::new(Signer::new(..)).start(..)`), so that it builds against
//! older trees too.

use std::time::Duration;

use tracing::{info_span, Dispatch};
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{HmacAlgorithm, OsProfilerLayer, Profile, Signer};
use tracing_subscriber::prelude::*;

struct NoopLayer;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

fn cpu_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let spans: u32 = args.next().map_or(20_000, |a| a.parse().expect("SPANS"));
    let rounds: usize = args.next().map_or(11, |a| a.parse().expect("ROUNDS"));
    let only: Option<usize> = std::env::var_os("CASE").map(|c| {
        c.to_str()
            .and_then(|c| c.parse().ok())
            .filter(|&c: &usize| c < 3)
            .expect("CASE must be 0 (floor), 1 (unprofiled) or 2 (signed)")
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let (writer, _guard) = RollingFile::new(dir.path()).build().expect("rolling file");
    let dispatches = [
        Dispatch::new(tracing_subscriber::registry().with(NoopLayer)),
        Dispatch::new(tracing_subscriber::registry().with(OsProfilerLayer::new(writer.clone()))),
        Dispatch::new(tracing_subscriber::registry().with(OsProfilerLayer::new(writer.clone()))),
    ];
    let signer = Signer::new("SECRET_KEY", HmacAlgorithm::Sha1);
    let file_bytes = || -> u64 {
        std::fs::read_dir(dir.path())
            .expect("log directory")
            .flatten()
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum()
    };
    let drained = || {
        let mut last = file_bytes();
        loop {
            std::thread::sleep(Duration::from_millis(30));
            let now = file_bytes();
            if now == last {
                return;
            }
            last = now;
        }
    };
    let round = |case: usize, n: u32| -> (f64, f64) {
        tracing::dispatcher::with_default(&dispatches[case], || {
            let root = if case == 2 {
                Profile::new(signer.clone()).start(|| info_span!("request"))
            } else {
                info_span!("request")
            };
            let entered = root.enter();
            let process_before = cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
            let thread_before = cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID);
            for _ in 0..n {
                let span = info_span!("work");
                let guard = span.enter();
                drop(guard);
                drop(span);
            }
            let thread = cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID) - thread_before;
            drop(entered);
            drop(root);
            if case == 2 {
                drained();
            }
            let process = cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID) - process_before;
            (thread as f64 / f64::from(n), process as f64 / f64::from(n))
        })
    };
    if let Some(case) = only {
        for _ in 0..rounds {
            round(case, spans);
        }
        return;
    }
    for case in 0..3 {
        round(case, spans / 10);
    }
    drained();
    let (mut app, mut all) = (vec![Vec::new(); 3], vec![Vec::new(); 3]);
    for r in 0..rounds {
        for k in 0..3 {
            let case = (r + k) % 3;
            let (a, p) = round(case, spans);
            app[case].push(a);
            all[case].push(p);
        }
    }
    let app: Vec<f64> = app.into_iter().map(median).collect();
    let all: Vec<f64> = all.into_iter().map(median).collect();
    println!(
        "{:.1} {:.1} {:.1} {:.1} {:.1} {:.1}",
        app[0], app[1], app[2], all[0], all[1], all[2]
    );
}
