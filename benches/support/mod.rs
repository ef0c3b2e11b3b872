//! What the benchmarks share: CPU time of this thread and of the whole
//! process from Linux `schedstat`, the load average, medians.
#![allow(dead_code)] // each benchmark uses some of these

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

/// The median of `values` (NaN when there is none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}
