//! The resident memory of the test process, which the tests of the sinks'
//! byte bounds (OTLP and Redis) measure around a flood of big fields.

/// The resident memory of this process, in bytes, from `VmRSS` in
/// `/proc/self/status` (Linux; anywhere else the test fails, it never
/// passes without having measured).
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}
