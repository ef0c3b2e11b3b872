//! What `osprof`'s benchmarks share: the `osprof` binary run to its end
//! in a child process, its time and peak memory measured.
#![allow(dead_code)] // each benchmark uses some of it

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tests/support/peak.rs"]
mod peak;

/// How a run of `osprof` went.
pub struct Run {
    /// From before its start to its end.
    pub took: Duration,
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its peak RSS in KiB (`VmHWM`, the last sample taken before it
    /// ended); `None` where `/proc` has none.
    pub peak_kib: Option<u64>,
}

/// Runs `exe ARGS`, stdout discarded, stderr to `stderr`, sampling its
/// `/proc/<pid>/status` every 2 ms until it exits. `None` when it cannot
/// be started, or runs past 10 minutes (it is killed then).
pub fn run_osprof(exe: &str, args: &[&str], stderr: Stdio) -> Option<Run> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .ok()?;
    let deadline = started + Duration::from_secs(600);
    let mut peak_kib = None;
    loop {
        if let Some(kib) = peak::peak_kib(Some(child.id())) {
            peak_kib = Some(kib);
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                return Some(Run {
                    took: started.elapsed(),
                    success: status.success(),
                    peak_kib,
                })
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}
