//! The peak resident memory of a process (`VmHWM`, since its `exec`),
//! which the tests and benchmarks of `osprof`'s memory bounds read.

/// `VmHWM` of process `pid` (this process for `None`) in KiB, from
/// `/proc/<pid>/status`; `None` where it cannot be read (the process
/// ended, or no Linux `/proc`).
pub fn peak_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
