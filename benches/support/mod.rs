//! What the benchmarks share: the measured span loop, CPU time of this
//! thread and of the whole process (Linux `schedstat`, or the thread's CPU
//! clock), CPU time by thread name, the load average, medians.
#![allow(dead_code)] // each benchmark uses some of these

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The loop every benchmark measures: `iterations` times `let s =
/// info_span!("work"); let e = s.enter(); drop(e); drop(s);` under the
/// current dispatcher (and whatever span the caller entered). Returns the
/// wall-clock time it took, and the CPU time `cpu_ns` saw pass.
pub fn span_loop(iterations: u32, cpu_ns: impl Fn() -> Option<u64>) -> (Duration, Option<u64>) {
    let cpu_before = cpu_ns();
    let started = Instant::now();
    for _ in 0..iterations {
        let s = tracing::info_span!("work");
        let e = s.enter();
        drop(e);
        drop(s);
    }
    let wall = started.elapsed();
    let cpu = cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    (wall, cpu)
}

/// This thread's CPU time from its CPU clock (`CLOCK_THREAD_CPUTIME_ID`):
/// `schedstat` of a running thread lags by up to a scheduler tick, too
/// coarse for a round of a few milliseconds.
pub fn thread_cpu_clock_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// CPU nanoseconds of this process's threads (Linux `schedstat`), summed
/// by thread name.
pub fn cpu_by_thread_name() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.filter_map(Result::ok) {
        let path = task.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        let Some(ns) = stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        *out.entry(name.trim().to_owned()).or_default() += ns;
    }
    out
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`), so that
/// time spent waiting (preempted by other processes, or blocked on a full
/// queue) can be told apart from the work itself.
pub fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Nanoseconds all threads of this process have spent on a CPU: the
/// application thread and the background threads together.
pub fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// The 1, 5 and 15 minute load averages, for the report's header.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// The median of `values`, NaN values (rounds whose CPU clock read failed)
/// left out (NaN when there is none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
