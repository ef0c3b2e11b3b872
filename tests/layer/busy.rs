//! Busy time (docs/protocol.md, *Busy time*): the time a point's span was
//! entered on at least one thread, written on its stop line.
//!
//! Every check compares the busy time with bounds the test measures itself
//! around the enters and exits (never a timing threshold): the interval a
//! thread is surely inside gives a lower bound, the interval around it an
//! upper one, and the time the span is surely left (work done outside it)
//! must never count.

use crate::support;

use std::collections::HashSet;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use support::Capture;
use tracing::{info_span, Dispatch, Instrument, Span};
use tracing_osprofiler::format::{parse_line, Phase};
use tracing_osprofiler::{HmacAlgorithm, OsProfilerLayer, Profile};
use tracing_osprofiler::{ProfileExt, Signer};
use tracing_subscriber::prelude::*;

/// The stop line of the point called `name`: its duration and busy time,
/// in seconds.
fn stop_of(capture: &Capture, name: &str) -> (f64, Option<f64>) {
    let bytes = capture.bytes();
    let mut found = Vec::new();
    for raw in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = parse_line(raw).unwrap();
        if line.phase == Phase::Stop && line.name == name {
            found.push((line.duration.unwrap(), line.busy));
        }
    }
    assert_eq!(
        found.len(),
        1,
        "one stop of {name} in {}",
        String::from_utf8_lossy(&bytes)
    );
    found[0]
}

fn profiled_root(name: &'static str) -> Span {
    let root = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
        .start(|| info_span!("root", point = name));
    assert!(root.point_ids().is_some(), "the root is a point");
    root
}

fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// The line holds whole microseconds: bounds measured in nanoseconds are
/// compared with that much slack.
const ROUNDING: f64 = 1e-6;

/// Checks `lower <= busy <= upper` (seconds), give or take [`ROUNDING`].
fn assert_busy_within(busy: f64, lower: f64, upper: f64, why: &str) {
    assert!(
        busy >= lower - ROUNDING && busy <= upper + ROUNDING,
        "{why}: {lower} <= {busy} <= {upper}"
    );
}

#[test]
fn a_span_entered_on_two_threads_at_once_counts_the_overlap_once() {
    let capture = Capture::new();
    let dispatch = capture.dispatch();
    let (lower, upper) = tracing::dispatcher::with_default(&dispatch, || {
        let root = profiled_root("two");
        let shared = root.in_scope(|| info_span!("shared"));
        let step = Arc::new(Barrier::new(2));
        // A enters, then B enters; A leaves 50 ms later, B 50 ms after A.
        let a = {
            let (shared, step) = (shared.clone(), Arc::clone(&step));
            std::thread::spawn(move || {
                let before_enter = Instant::now();
                let entered = shared.enter();
                let after_enter = Instant::now();
                step.wait(); // B may enter
                step.wait(); // B is inside
                std::thread::sleep(Duration::from_millis(50));
                drop(entered);
                step.wait(); // A is out
                (before_enter, after_enter)
            })
        };
        let b = {
            let (shared, step) = (shared.clone(), Arc::clone(&step));
            std::thread::spawn(move || {
                step.wait();
                let entered = shared.enter();
                step.wait();
                step.wait();
                std::thread::sleep(Duration::from_millis(50));
                let before_exit = Instant::now();
                drop(entered);
                (before_exit, Instant::now())
            })
        };
        let (a_before_enter, a_after_enter) = a.join().unwrap();
        let (b_before_exit, b_after_exit) = b.join().unwrap();
        // Left alone for a while: idle, not busy.
        std::thread::sleep(Duration::from_millis(30));
        drop(shared);
        drop(root);
        (
            b_before_exit.duration_since(a_after_enter),
            b_after_exit.duration_since(a_before_enter),
        )
    });
    let (wall, busy) = stop_of(&capture, "shared");
    let busy = busy.expect("a stop line of this crate gives the busy time");
    assert_busy_within(
        busy,
        lower.as_secs_f64(),
        upper.as_secs_f64(),
        "counted twice, the overlap (at least 50 ms) would push it past the upper bound",
    );
    assert!(
        wall - busy >= 0.030 - ROUNDING,
        "idle 30 ms: {wall} - {busy}"
    );
}

#[test]
fn a_span_never_entered_is_zero_busy_not_unknown() {
    let capture = Capture::new();
    let dispatch = capture.dispatch();
    tracing::dispatcher::with_default(&dispatch, || {
        let root = profiled_root("never");
        let never = root.in_scope(|| info_span!("never_entered"));
        std::thread::sleep(Duration::from_millis(5));
        drop(never);
        drop(root);
    });
    let text = String::from_utf8(capture.bytes()).unwrap();
    assert!(
        text.lines()
            .any(|l| l.ends_with(r#" never_entered-stop {"busy":0.000000}"#)),
        "{text}"
    );
    let (wall, busy) = stop_of(&capture, "never_entered");
    assert!(wall >= 0.005);
    assert_eq!(busy, Some(0.0));
    // The root was never entered either (only `in_scope` of its creation
    // above, which is an enter: so it is busy, briefly).
    let (root_wall, root_busy) = stop_of(&capture, "root");
    assert!(root_busy.unwrap() < root_wall);
}

#[test]
fn a_span_polled_a_thousand_times_sums_every_poll_and_nothing_between() {
    let capture = Capture::new();
    let dispatch = capture.dispatch();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (inside, outside, polls) = tracing::dispatcher::with_default(&dispatch, || {
        let root = profiled_root("polled");
        let polled = root.in_scope(|| info_span!("polled"));
        let inside = Arc::new(Mutex::new(Duration::ZERO));
        let polls = Arc::new(Mutex::new(0u32));
        let work = {
            let (inside, polls) = (Arc::clone(&inside), Arc::clone(&polls));
            async move {
                for _ in 0..1_000 {
                    let start = Instant::now();
                    *polls.lock().unwrap() += 1;
                    spin(Duration::from_micros(20));
                    *inside.lock().unwrap() += start.elapsed();
                    tokio::task::yield_now().await;
                }
            }
            .instrument(polled)
        };
        // Polled in turn with `work`, outside its span.
        let other = async {
            let mut outside = Duration::ZERO;
            for _ in 0..1_000 {
                let start = Instant::now();
                spin(Duration::from_micros(20));
                outside += start.elapsed();
                tokio::task::yield_now().await;
            }
            outside
        };
        let ((), outside) = runtime.block_on(async { tokio::join!(work, other) });
        drop(root);
        let inside = *inside.lock().unwrap();
        let polls = *polls.lock().unwrap();
        (inside, outside, polls)
    });
    assert_eq!(polls, 1_000);
    let (wall, busy) = stop_of(&capture, "polled");
    let busy = busy.unwrap();
    assert_busy_within(
        busy,
        inside.as_secs_f64(),
        wall - outside.as_secs_f64(),
        "every poll counts, the other future's polls do not",
    );
}

#[test]
fn a_span_moved_between_threads_by_a_multi_threaded_runtime() {
    let capture = Capture::new();
    let dispatch = capture.dispatch();
    let runtime = {
        let dispatch = dispatch.clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .on_thread_start(move || {
                // For the life of the thread; the runtime's threads end
                // with it.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            })
            .build()
            .unwrap()
    };
    let (inside, waited, threads) = tracing::dispatcher::with_default(&dispatch, || {
        let root = profiled_root("moved");
        let moved = root.in_scope(|| info_span!("moved"));
        let result = runtime.block_on(async {
            tokio::spawn(
                async {
                    let mut threads = HashSet::new();
                    let mut inside = Duration::ZERO;
                    let mut waited = Duration::ZERO;
                    // Until the task has run on two workers (the blocking
                    // pool's wake-ups land on any of them), and a while.
                    for i in 0..10_000 {
                        let start = Instant::now();
                        threads.insert(std::thread::current().id());
                        spin(Duration::from_micros(300));
                        inside += start.elapsed();
                        // Sleeps on another thread, this span left.
                        waited += tokio::task::spawn_blocking(|| {
                            let start = Instant::now();
                            std::thread::sleep(Duration::from_millis(2));
                            start.elapsed()
                        })
                        .await
                        .unwrap();
                        if threads.len() >= 2 && i >= 20 {
                            break;
                        }
                    }
                    (inside, waited, threads.len())
                }
                .instrument(moved),
            )
            .await
            .unwrap()
        });
        drop(root);
        result
    });
    drop(runtime);
    assert!(threads >= 2, "the task ran on {threads} worker(s) only");
    let (wall, busy) = stop_of(&capture, "moved");
    let busy = busy.unwrap();
    assert_busy_within(
        busy,
        inside.as_secs_f64(),
        wall - waited.as_secs_f64(),
        "every turn counts, the blocking sleeps are idle",
    );
}

#[test]
fn two_layers_write_one_busy_time_counted_once() {
    let first = Capture::new();
    let second = Capture::new();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(OsProfilerLayer::from_make_writer(first.clone()))
            .with(OsProfilerLayer::from_make_writer(second.clone())),
    );
    let (lower, upper) = tracing::dispatcher::with_default(&dispatch, || {
        let root = profiled_root("layers");
        let span = root.in_scope(|| info_span!("twice"));
        let before_enter = Instant::now();
        let entered = span.enter();
        let after_enter = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        // Nested on the same thread: still one interval.
        span.in_scope(|| std::thread::sleep(Duration::from_millis(5)));
        let before_exit = Instant::now();
        drop(entered);
        let after_exit = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        drop(span);
        drop(root);
        (
            before_exit.duration_since(after_enter),
            after_exit.duration_since(before_enter),
        )
    });
    let (wall_1, busy_1) = stop_of(&first, "twice");
    let (wall_2, busy_2) = stop_of(&second, "twice");
    assert_eq!(
        (wall_1, busy_1),
        (wall_2, busy_2),
        "one stop for both layers"
    );
    let busy = busy_1.unwrap();
    assert_busy_within(
        busy,
        lower.as_secs_f64(),
        upper.as_secs_f64(),
        "one interval",
    );
    assert!(wall_1 - busy >= 0.020 - ROUNDING);
}

#[test]
fn a_second_layer_whose_own_points_come_and_go_does_not_skew_the_count() {
    // The second layer's filter hides the root: it writes nothing of this
    // request, and sees the shared span's enters and exits only while some
    // point of its own is alive.
    let first = Capture::new();
    let second = Capture::new();
    let dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(OsProfilerLayer::from_make_writer(first.clone()))
            .with(
                OsProfilerLayer::from_make_writer(second.clone()).with_filter(
                    tracing_subscriber::filter::filter_fn(|m| m.name() != "hidden_root"),
                ),
            ),
    );
    let (lower, upper) = tracing::dispatcher::with_default(&dispatch, || {
        let root = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
            .start(|| info_span!("hidden_root"));
        let span = root.in_scope(|| info_span!("watched"));
        let before_enter = Instant::now();
        let entered = span.enter();
        let after_enter = Instant::now();
        // A request only the second layer would also write starts...
        let other = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
            .start(|| info_span!("other_root"));
        std::thread::sleep(Duration::from_millis(10));
        let before_exit = Instant::now();
        drop(entered);
        let after_exit = Instant::now();
        // ... and ends: the second layer stops looking.
        drop(other);
        std::thread::sleep(Duration::from_millis(20));
        // The other way round: it looks at the enter, not at the exit.
        let other = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
            .start(|| info_span!("other_root"));
        let before_enter_2 = Instant::now();
        let entered = span.enter();
        let after_enter_2 = Instant::now();
        drop(other);
        std::thread::sleep(Duration::from_millis(5));
        let before_exit_2 = Instant::now();
        drop(entered);
        let after_exit_2 = Instant::now();
        // Idle: an enter counted without its exit would make this busy.
        std::thread::sleep(Duration::from_millis(20));
        drop(span);
        drop(root);
        (
            before_exit.duration_since(after_enter) + before_exit_2.duration_since(after_enter_2),
            after_exit.duration_since(before_enter) + after_exit_2.duration_since(before_enter_2),
        )
    });
    let (wall, busy) = stop_of(&first, "watched");
    let busy = busy.unwrap();
    assert_busy_within(
        busy,
        lower.as_secs_f64(),
        upper.as_secs_f64(),
        "the enters and exits the first layer saw",
    );
    assert!(wall - busy >= 0.040 - ROUNDING, "{wall} {busy}");
    // (Whether the second layer writes `watched` depends on other tests of
    // this binary starting roots at the same time: not checked here.)
    drop(second);
}
