//! The time of a point's start and stop: one monotonic clock read each, and
//! the wall-clock time derived from it.
//!
//! A point needs both clocks at each end: the wall clock for its lines'
//! timestamps, the monotonic clock for its duration. Reading both costs two
//! clock calls per end, the largest share of a profiled span's cost on the
//! application thread. So the wall clock is read only now and then: the
//! offset between the two clocks is kept, and refreshed by the first thread
//! that takes a time more than [`REFRESH`] after the last refresh.
//!
//! On Linux the two clocks run at the same (NTP-slewed) rate, so the offset
//! changes only when the wall clock is *stepped* (`date -s`, a VM resumed,
//! an NTP step). A step shows in the timestamps of the points that start or
//! stop at most [`REFRESH`] after it, instead of at once; durations never
//! see it, as before.
//!
//! On Linux the monotonic reading is `clock_gettime(CLOCK_MONOTONIC)`
//! itself, kept as nanoseconds: the clock `Instant` reads, without the
//! `Instant` arithmetic (a `Duration` since an origin, normalised, then
//! turned back into nanoseconds), which cost about 55 instructions per
//! reading (callgrind) on the busy-time path, where a span's every enter
//! and exit reads the clock. Elsewhere it is `Instant`, counted from an
//! origin early in the process's life.

use std::sync::atomic::{AtomicI64, Ordering};
#[cfg(not(target_os = "linux"))]
use std::sync::OnceLock;
#[cfg(not(target_os = "linux"))]
use std::time::Instant;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::format::Timestamp;

/// How stale the offset between the clocks may get.
pub(super) const REFRESH: Duration = Duration::from_millis(10);

/// `REFRESH` in the nanoseconds the offset is kept in.
const REFRESH_NANOS: i64 = REFRESH.as_nanos() as i64;

/// The instant monotonic readings are counted from (where they are read
/// through `Instant`).
#[cfg(not(target_os = "linux"))]
static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// Wall-clock nanoseconds since the Unix epoch minus the monotonic reading
/// (`read_monotonic`), as of the last refresh.
static OFFSET_NANOS: AtomicI64 = AtomicI64::new(0);

/// The monotonic reading at the last refresh; far below zero before the
/// first one.
static REFRESHED_AT: AtomicI64 = AtomicI64::new(i64::MIN / 2);

/// Both clocks at one moment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Now {
    /// Monotonic nanoseconds (`read_monotonic`): kept as a number, so a
    /// duration is one subtraction.
    monotonic_nanos: i64,
    pub(super) wall: Timestamp,
}

impl Now {
    /// The monotonic time from `earlier` to `self` (zero if `earlier` is
    /// later).
    pub(super) fn since(self, earlier: Now) -> Duration {
        let nanos = self.monotonic_nanos.saturating_sub(earlier.monotonic_nanos);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
    }
}

/// The monotonic time now, in nanoseconds, as [`Now`] counts it: what a point's busy time is
/// measured in when a span is entered and left (one clock read, no wall
/// time needed).
#[inline]
pub(super) fn monotonic_nanos() -> i64 {
    read_monotonic()
}

/// `CLOCK_MONOTONIC` in nanoseconds (since boot, on Linux).
#[cfg(target_os = "linux")]
#[inline]
// `time_t` and `c_long` are `i64` here, `i32` on 32-bit Linux targets.
#[allow(clippy::useless_conversion)]
fn read_monotonic() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the
    // call, which is all `clock_gettime` needs. With such a pointer and
    // `CLOCK_MONOTONIC` (always present on Linux: std's `Instant` reads it)
    // it cannot fail; if it ever did, `ts` stays zero and the durations
    // taken from it saturate at zero rather than go negative.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    i64::from(ts.tv_sec)
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(ts.tv_nsec))
}

/// `Instant` in nanoseconds since the first reading.
#[cfg(not(target_os = "linux"))]
#[inline]
fn read_monotonic() -> i64 {
    let monotonic = Instant::now();
    let origin = *ORIGIN.get_or_init(|| monotonic);
    nanos(monotonic.saturating_duration_since(origin))
}

impl Now {
    /// This moment's [`monotonic_nanos`].
    pub(super) fn monotonic_nanos(self) -> i64 {
        self.monotonic_nanos
    }
}

/// The time now, on both clocks, for one monotonic clock read (two, every
/// [`REFRESH`], on the thread that refreshes the offset).
pub(super) fn now() -> Now {
    let monotonic_nanos = read_monotonic();
    // Relaxed: the two values need not be seen together. A thread that sees
    // a new refresh time with an old offset uses an offset one period
    // stale, which is all this promises anyway.
    let offset =
        if monotonic_nanos.saturating_sub(REFRESHED_AT.load(Ordering::Relaxed)) >= REFRESH_NANOS {
            let offset = wall_nanos_now().saturating_sub(monotonic_nanos);
            OFFSET_NANOS.store(offset, Ordering::Relaxed);
            REFRESHED_AT.store(monotonic_nanos, Ordering::Relaxed);
            offset
        } else {
            OFFSET_NANOS.load(Ordering::Relaxed)
        };
    Now {
        monotonic_nanos,
        wall: Timestamp::from_unix_micros(monotonic_nanos.saturating_add(offset).div_euclid(1_000)),
    }
}

fn wall_nanos_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => nanos(since),
        Err(before) => nanos(before.duration()).saturating_neg(),
    }
}

/// Whole seconds and nanoseconds apart, in 64 bits: `as_nanos` is a
/// 128-bit number, on the path of every profiled span. (Saturates 292
/// years from the epoch.)
fn nanos(duration: Duration) -> i64 {
    let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    secs.saturating_mul(1_000_000_000)
        .saturating_add(i64::from(duration.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_wall_clock_stays_within_a_refresh_of_the_real_one() {
        for _ in 0..1_000 {
            let before = wall_nanos_now() / 1_000;
            let now = now();
            let after = wall_nanos_now() / 1_000;
            let wall = now.wall.unix_micros();
            // The offset was measured at most one period ago; on a machine
            // whose wall clock is not stepped meanwhile it is exact to the
            // few microseconds between two clock reads.
            assert!(
                wall >= before - 1_000 && wall <= after + 1_000,
                "{before} <= {wall} <= {after}"
            );
        }
    }

    #[test]
    fn the_monotonic_reading_is_the_one_the_wall_time_comes_from() {
        let first = now();
        std::thread::sleep(Duration::from_millis(3));
        let second = now();
        let elapsed = nanos(second.since(first)) / 1_000;
        let wall_elapsed = second.wall.unix_micros() - first.wall.unix_micros();
        assert!(
            (elapsed - wall_elapsed).abs() < 1_000,
            "{elapsed} vs {wall_elapsed}"
        );
    }
}
