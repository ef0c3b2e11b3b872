//! Tail capture at the library level: requests without a token recorded in
//! memory, kept when slow or failed, discarded otherwise; the budgets, two
//! layers, points that outlive the decision, shutdown, and what a captured
//! request signs downstream.

use crate::support;

use std::collections::HashSet;
use std::time::Duration;

use support::{Capture as Lines, Points};
use tracing::{info_span, Span};
use tracing_osprofiler::writer::RollingFile;
use tracing_osprofiler::{
    Capture, CapturePolicy, HmacAlgorithm, OsProfilerLayer, Profile, ProfileExt, Signer,
};
use tracing_subscriber::prelude::*;
use tracing_subscriber::Registry;

fn slow_policy(threshold_ms: u64) -> CapturePolicy {
    CapturePolicy::new().with_keep_slower_than(Some(Duration::from_millis(threshold_ms)))
}

/// A request of a root and `children` points below it, lasting at least
/// `sleep`.
fn request(capture: &Capture, children: usize, sleep: Duration) -> Span {
    let root = capture.start(|| info_span!("job"));
    root.in_scope(|| {
        for _ in 0..children {
            let _child = info_span!("step").entered();
            let _grandchild = info_span!("io").entered();
        }
        std::thread::sleep(sleep);
    });
    root
}

/// Runs `f` with `layer` as the only layer of a subscriber.
fn with_layer<T>(
    layer: impl tracing_subscriber::Layer<Registry> + Send + Sync + 'static,
    f: impl FnOnce() -> T,
) -> T {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f)
}

/// Runs `f` with one layer writing into `lines`, fields off.
fn written_to<T>(lines: &Lines, f: impl FnOnce() -> T) -> T {
    tracing::subscriber::with_default(lines.subscriber(), f)
}

fn no_incoming() -> HashSet<tracing_osprofiler::Id> {
    HashSet::new()
}

#[test]
fn a_slow_request_is_kept_whole_and_a_fast_one_leaves_nothing() {
    let lines = Lines::new();
    let layer = OsProfilerLayer::from_make_writer(lines.clone()).with_fields(true);
    let layer_stats = layer.stats();
    // Wide apart, so that a busy machine cannot make the fast one slow.
    let capture = slow_policy(200).build();
    let stats = capture.stats();
    with_layer(layer, || {
        let fast = request(&capture, 3, Duration::ZERO);
        assert!(fast.point_ids().is_some(), "a captured root is a point");
        drop(fast);
        assert!(lines.bytes().is_empty(), "a fast request writes nothing");
        let slow = request(&capture, 3, Duration::from_millis(250));
        assert!(
            lines.bytes().is_empty(),
            "nothing is written before the root closes"
        );
        drop(slow);
    });
    assert_eq!(stats.captured(), 2);
    assert_eq!(stats.kept_slow(), 1);
    assert_eq!(stats.kept_error(), 0);
    assert_eq!(stats.discarded(), 1);
    assert_eq!(stats.truncated(), 0);
    assert_eq!(stats.bytes_in_use(), 0, "every buffer was given back");
    assert_eq!(layer_stats.points_live(), 0);

    let points = lines.points();
    assert_eq!(points.len(), 7, "root, 3 steps, 3 io: {points:?}");
    let trees = points.check_trees(&no_incoming());
    assert_eq!(trees.len(), 1);
    let root = points.named("job");
    assert_eq!(root.ids.parent_id, root.ids.base_id);
    assert!(root.duration >= 0.25, "{}", root.duration);
    assert!(
        root.start_extra.contains(r#""capture.kept":"slow""#),
        "the root says why: {:?}",
        root.start_extra
    );
    assert!(!root.start_extra.contains("capture.truncated"));
    for point in points.by_trace.values().filter(|p| p.name != "job") {
        assert!(
            !point.start_extra.contains("capture"),
            "only the root carries the mark: {point:?}"
        );
    }
}

#[test]
fn without_fields_a_kept_line_is_the_same_as_a_signed_one() {
    let lines = Lines::new();
    let capture = slow_policy(0).build();
    written_to(&lines, || drop(request(&capture, 1, Duration::ZERO)));
    let points = lines.points();
    assert_eq!(points.len(), 3);
    for point in points.by_trace.values() {
        assert_eq!(point.start_extra, "", "fields stay off: {point:?}");
    }
}

#[test]
fn a_failed_request_is_kept_as_an_error() {
    let lines = Lines::new();
    let layer = OsProfilerLayer::from_make_writer(lines.clone()).with_fields(true);
    let capture = CapturePolicy::new().with_keep_errors(true).build();
    let stats = capture.stats();
    with_layer(layer, || {
        // An ERROR event deep inside the request.
        capture.start(|| info_span!("consume")).in_scope(|| {
            let _db = info_span!("db").entered();
            tracing::error!("the database went away");
        });
        // A status of 500 on the root.
        let root = capture
            .start(|| info_span!("wsgi", http.status_code = tracing::field::Empty))
            .entered();
        root.record("http.status_code", 503);
        drop(root);
        // A 404 is no error.
        let root = capture
            .start(|| info_span!("fine", http.status_code = tracing::field::Empty))
            .entered();
        root.record("http.status_code", 404);
        drop(root);
    });
    assert_eq!(stats.captured(), 3);
    assert_eq!(stats.kept_error(), 2);
    assert_eq!(stats.discarded(), 1);
    let points = lines.points();
    assert_eq!(points.len(), 3, "consume, db, wsgi: {points:?}");
    for root in ["consume", "wsgi"] {
        let root = points.named(root);
        assert!(
            root.start_extra.contains(r#""capture.kept":"error""#),
            "{root:?}"
        );
    }
}

#[test]
fn errors_are_not_kept_unless_asked() {
    let lines = Lines::new();
    let capture = slow_policy(10_000).build();
    let stats = capture.stats();
    written_to(&lines, || {
        capture.start(|| info_span!("consume")).in_scope(|| {
            tracing::error!("failed");
        });
    });
    assert_eq!(stats.discarded(), 1);
    assert!(lines.bytes().is_empty());
}

#[test]
fn points_beyond_the_per_request_cap_are_counted_and_the_tree_says_so() {
    let lines = Lines::new();
    let layer = OsProfilerLayer::from_make_writer(lines.clone()).with_fields(true);
    let capture = slow_policy(0).with_max_points_per_request(5).build();
    let stats = capture.stats();
    with_layer(layer, || {
        // 20 points below the root: 5 fit.
        drop(request(&capture, 10, Duration::ZERO));
    });
    assert_eq!(stats.kept_slow(), 1);
    assert_eq!(stats.truncated(), 15);
    let points = lines.points();
    assert_eq!(points.len(), 6, "the root and the 5 buffered points");
    let root = points.named("job");
    assert!(
        root.start_extra.contains(r#""capture.truncated":15"#),
        "{:?}",
        root.start_extra
    );
}

#[test]
fn over_the_memory_budget_a_request_is_not_captured_and_points_are_not_buffered() {
    let lines = Lines::new();
    written_to(&lines, || {
        // What one open request holds before any point is buffered.
        let probe = slow_policy(0).build();
        let root = probe.start(|| info_span!("probe"));
        let per_request = probe.stats().bytes_in_use();
        assert!(per_request > 0);
        drop(root);
        // Room for one request's own state, not for a second one.
        let capture = slow_policy(0)
            .with_memory_budget(per_request + per_request / 2)
            .build();
        let stats = capture.stats();
        let first = capture.start(|| info_span!("first"));
        assert!(first.point_ids().is_some(), "the first one fits");
        let second = capture.start(|| info_span!("second"));
        assert!(
            second.point_ids().is_none(),
            "over the budget: served as without capture"
        );
        first.in_scope(|| {
            let _child = info_span!("child").entered();
        });
        drop(second);
        drop(first);
        assert_eq!(stats.captured(), 1);
        assert_eq!(stats.over_budget(), 1);
        assert_eq!(
            stats.truncated(),
            1,
            "the child did not fit in the budget either"
        );
        assert_eq!(stats.kept_slow(), 1);
        assert_eq!(stats.bytes_in_use(), 0);
    });
    let points = lines.points();
    assert_eq!(points.len(), 2, "the probe, and the first root alone");
    points.named("first");
}

#[test]
fn kept_requests_per_second_are_capped_and_counted() {
    let lines = Lines::new();
    let capture = slow_policy(0).with_max_kept_per_second(2).build();
    let stats = capture.stats();
    written_to(&lines, || {
        for _ in 0..5 {
            drop(request(&capture, 1, Duration::ZERO));
        }
    });
    assert_eq!(stats.captured(), 5);
    assert_eq!(stats.kept_slow(), 2);
    assert_eq!(stats.rate_limited(), 3);
    assert_eq!(stats.discarded(), 0);
    assert_eq!(lines.points().len(), 6, "two trees of three points");
}

#[test]
fn one_request_in_n_is_captured() {
    let lines = Lines::new();
    let capture = slow_policy(0).with_sample_one_in(3).build();
    let stats = capture.stats();
    let mut captured = 0;
    written_to(&lines, || {
        for _ in 0..9 {
            let root = request(&capture, 0, Duration::ZERO);
            captured += usize::from(root.point_ids().is_some());
        }
    });
    assert_eq!(captured, 3);
    assert_eq!(stats.captured(), 3);
    assert_eq!(stats.sampled_out(), 6);
    assert_eq!(lines.points().len(), 3);
}

#[test]
fn two_layers_each_write_the_same_kept_tree_and_nothing_of_a_discarded_one() {
    let (a, b) = (Lines::new(), Lines::new());
    let capture = slow_policy(200).build();
    let stats = capture.stats();
    let subscriber = tracing_subscriber::registry()
        .with(OsProfilerLayer::from_make_writer(a.clone()))
        .with(OsProfilerLayer::from_make_writer(b.clone()).with_fields(true));
    tracing::subscriber::with_default(subscriber, || {
        drop(request(&capture, 2, Duration::ZERO));
        drop(request(&capture, 2, Duration::from_millis(250)));
    });
    assert_eq!(stats.captured(), 2);
    assert_eq!(stats.kept_slow(), 1);
    assert_eq!(stats.discarded(), 1);
    assert_eq!(stats.bytes_in_use(), 0);
    let (a, b) = (a.points(), b.points());
    assert_eq!(a.len(), 5);
    let mut ids_a: Vec<_> = a.by_trace.values().map(|p| p.ids).collect();
    let mut ids_b: Vec<_> = b.by_trace.values().map(|p| p.ids).collect();
    ids_a.sort_by_key(|ids| ids.trace_id);
    ids_b.sort_by_key(|ids| ids.trace_id);
    assert_eq!(ids_a, ids_b, "one tree, written by each layer");
    assert_eq!(a.named("job").start_extra, "", "fields off on the first");
    assert!(b.named("job").start_extra.contains("capture.kept"));
}

#[test]
fn points_that_end_after_the_decision_follow_it() {
    let lines = Lines::new();
    let capture = slow_policy(200).build();
    let stats = capture.stats();
    written_to(&lines, || {
        for (sleep, name) in [(250, "kept"), (0, "discarded")] {
            let root = capture.start(|| match name {
                "kept" => info_span!("kept"),
                _ => info_span!("discarded"),
            });
            // Work that outlives its request (a task still running).
            let late = root.in_scope(|| info_span!("late"));
            std::thread::sleep(Duration::from_millis(sleep));
            drop(root);
            drop(late);
        }
    });
    assert_eq!(stats.kept_slow(), 1);
    assert_eq!(stats.discarded(), 1);
    let points = lines.points();
    assert_eq!(points.len(), 2, "kept and its late point: {points:?}");
    assert_eq!(
        points.named("late").ids.parent_id,
        points.named("kept").ids.trace_id
    );
}

#[test]
fn signed_requests_are_written_as_before_beside_captured_ones() {
    let lines = Lines::new();
    let capture = slow_policy(10_000).build();
    let stats = capture.stats();
    written_to(&lines, || {
        let signed =
            Profile::new(Signer::new("k", HmacAlgorithm::Sha1)).start(|| info_span!("signed"));
        signed.in_scope(|| drop(request(&capture, 1, Duration::ZERO)));
        drop(signed);
    });
    // Inside a signed request, `capture.start` still makes its own root.
    assert_eq!(stats.discarded(), 1);
    assert_eq!(lines.points().len(), 1);
    lines.points().named("signed");
}

#[test]
fn a_captured_request_signs_no_downstream_call_unless_the_policy_opts_in() {
    let lines = Lines::new();
    let unsigned = slow_policy(0).build();
    let signer = Signer::new("FLEET_KEY", HmacAlgorithm::Sha1);
    let signed = slow_policy(0).with_signed_downstream(Some(signer)).build();
    written_to(&lines, || {
        unsigned.start(|| info_span!("a")).in_scope(|| {
            let call = info_span!("call").entered();
            assert!(call.point_ids().is_some());
            assert!(call.trace_headers().is_none(), "no signer by default");
            assert!(tracing_osprofiler::current_trace_headers().is_none());
        });
        signed.start(|| info_span!("b")).in_scope(|| {
            let call = info_span!("call").entered();
            let ids = call.point_ids().unwrap();
            let headers = call.trace_headers().expect("opted in");
            let (info, hmac) = (headers.trace_info(), headers.trace_hmac());
            let profile = tracing_osprofiler::HmacKeys::new(["FLEET_KEY"])
                .verify(info, hmac)
                .expect("signed with the policy's key");
            assert_eq!(profile.trace_info().base_id(), ids.base_id);
            assert_eq!(profile.trace_info().parent_id(), Some(ids.trace_id));
        });
    });
}

#[test]
fn shutdown_while_captured_requests_are_open_writes_a_kept_tree_whole_or_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = RollingFile::new(dir.path()).build().unwrap();
    let writer_stats = writer.stats();
    let layer = OsProfilerLayer::new(writer);
    let layer_stats = layer.stats();
    let capture = slow_policy(0).build();
    let stats = capture.stats();
    let subscriber = tracing_subscriber::registry().with(layer);
    let mut guard = Some(guard);
    tracing::subscriber::with_default(subscriber, || {
        // Kept before the shutdown: written whole.
        drop(request(&capture, 4, Duration::ZERO));
        // Open across the shutdown: refused whole when it is kept.
        let open = capture.start(|| info_span!("open"));
        open.in_scope(|| {
            for _ in 0..4 {
                let _step = info_span!("step").entered();
            }
        });
        drop(guard.take());
        drop(open);
    });
    assert_eq!(stats.kept_slow(), 2);
    assert_eq!(stats.kept_refused(), 1);
    assert_eq!(
        layer_stats.events_refused(),
        10,
        "the open request's 5 starts and 5 stops"
    );
    assert_eq!(writer_stats.events_dropped(), 0);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let points = Points::parse(&bytes);
    assert_eq!(
        points.len(),
        9,
        "the first tree, whole: root, 4 steps, 4 io"
    );
    assert!(points.by_trace.values().all(|p| p.name != "open"));
}

#[test]
fn with_two_layers_a_point_that_ends_after_the_decision_is_written_once_by_each() {
    let (a, b) = (Lines::new(), Lines::new());
    let capture = slow_policy(0).build();
    let subscriber = tracing_subscriber::registry()
        .with(OsProfilerLayer::from_make_writer(a.clone()))
        .with(OsProfilerLayer::from_make_writer(b.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let root = capture.start(|| info_span!("root"));
        let (early, late) = root.in_scope(|| (info_span!("early"), info_span!("late")));
        drop(early);
        drop(root);
        // Kept by now: the late point is written by each layer, once.
        drop(late);
    });
    for lines in [a, b] {
        let points = lines.points();
        assert_eq!(points.len(), 3, "{points:?}");
        let root = points.named("root").ids.trace_id;
        assert_eq!(points.named("early").ids.parent_id, root);
        assert_eq!(points.named("late").ids.parent_id, root);
    }
}
