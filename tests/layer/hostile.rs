//! Hostile span names, targets and field values: every line stays one line
//! of exactly the expected tokens, parses back, and keeps its data.

use crate::support;

use support::Capture;
use tracing::info_span;
use tracing_osprofiler::format::sanitize_name;
use tracing_osprofiler::{HmacAlgorithm, NameSource, OsProfilerLayer, Profile, Signer};
use tracing_subscriber::prelude::*;

fn profile() -> Profile {
    Profile::new(Signer::new("k", HmacAlgorithm::Sha1))
}

/// Checks what a whitespace-splitting consumer (Mistral's rank script,
/// `awk`) sees: 6 tokens on a start line without fields, 7 on a stop line,
/// the name in the same place on both.
fn check_tokens(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("lines are UTF-8");
    for line in text.lines() {
        // Python's str.split() splits on Unicode whitespace too.
        let tokens: Vec<&str> = line
            .split(char::is_whitespace)
            .filter(|t| !t.is_empty())
            .collect();
        let name = if tokens[1].len() > 10 {
            assert_eq!(tokens.len(), 5, "{line:?}");
            tokens[4]
        } else {
            // A stop line ends with its busy time, one token after the name.
            assert_eq!(tokens.len(), 7, "{line:?}");
            assert!(tokens[6].starts_with("{\"busy\":"), "{line:?}");
            tokens[5]
        };
        assert!(
            name.ends_with("-start") || name.ends_with("-stop"),
            "{line:?}"
        );
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
    }
}

#[test]
fn hostile_span_names_are_sanitized() {
    let capture = Capture::new();
    tracing::subscriber::with_default(capture.subscriber(), || {
        let root = profile().start(|| info_span!("root"));
        let _root = root.enter();
        let _a = info_span!("two words").entered();
        let _b = info_span!("tab\there").entered();
        let _c = info_span!("line\nbreak\r\nand more").entered();
        let _d = info_span!("nul\0bell\x07esc\x1b[31m").entered();
        let _e = info_span!("unicode\u{2028}sep\u{a0}nbsp\u{85}nel\u{3000}ideo").entered();
        let _f = info_span!("").entered();
        let _g = info_span!("fake-stop").entered();
        let _h = info_span!("fake-start 2020-02-27T08:04:25.789433 0.1").entered();
        let _i = info_span!("naïve-名前-🦀").entered();
        let _j = info_span!("ends-in-marker <- !!!").entered();
    });
    let bytes = capture.bytes();
    check_tokens(&bytes);
    let points = capture.points();
    points.check_trees(&Default::default());
    let names: std::collections::HashSet<String> =
        points.by_trace.values().map(|p| p.name.clone()).collect();
    for original in [
        "two words",
        "tab\there",
        "line\nbreak\r\nand more",
        "nul\0bell\x07esc\x1b[31m",
        "unicode\u{2028}sep\u{a0}nbsp\u{85}nel\u{3000}ideo",
        "",
        "fake-stop",
        "fake-start 2020-02-27T08:04:25.789433 0.1",
        "naïve-名前-🦀",
        "ends-in-marker <- !!!",
    ] {
        let expected = sanitize_name(original);
        assert!(
            names.contains(expected.as_ref()),
            "{expected:?} not in {names:?}"
        );
        assert!(!expected.chars().any(char::is_whitespace));
    }
    assert!(names.contains("unnamed"));
    assert!(names.contains("fake-stop"));
    assert!(names.contains("naïve-名前-🦀"), "non-ASCII names are kept");
    assert!(names.contains("two_words"));
    // The marker-like name is a name, not a slow marker.
    assert!(points.by_trace.values().all(|p| !p.slow));
}

#[test]
fn hostile_targets_are_sanitized_too() {
    let capture = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(capture.clone())
        .with_name_source(NameSource::TargetAndName);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        profile()
            .start(|| info_span!(target: "my app\n", "root"))
            .in_scope(|| {
                let _a = info_span!(target: "", "empty_target").entered();
                let _b = info_span!(target: "t", "").entered();
            });
    });
    check_tokens(&capture.bytes());
    let points = capture.points();
    let names: std::collections::HashSet<String> =
        points.by_trace.values().map(|p| p.name.clone()).collect();
    assert!(names.contains("my_app_::root"), "{names:?}");
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn hostile_field_values_stay_inside_their_json() {
    let capture = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(capture.clone()).with_fields(true);
    let nasty = "a\nb\r\"c\"\\d\te\0f\u{2028}g <- !!! 2020-02-27T08:04:25.789433 {\"x\":1}";
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Debugged(&'static str);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        profile()
            .start(|| {
                info_span!(
                    "root",
                    text = nasty,
                    debug = ?Debugged("multi\nline"),
                    nan = f64::NAN,
                    big = u64::MAX,
                    neg = i64::MIN,
                )
            })
            .in_scope(|| {});
    });
    let bytes = capture.bytes();
    assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 2);
    let points = capture.points();
    let root = points.named("root");
    let fields: serde_json::Value = serde_json::from_str(&root.start_extra)
        .unwrap_or_else(|e| panic!("{e}: {}", root.start_extra));
    assert_eq!(fields["text"], nasty);
    assert_eq!(fields["debug"], "Debugged(\"multi\\nline\")");
    assert_eq!(fields["nan"], "NaN");
    assert_eq!(fields["big"], u64::MAX);
    assert_eq!(fields["neg"], i64::MIN);
    assert!(!root.slow, "a marker inside a field is not the slow marker");
}

/// A `worker` span with the field `first = 1`, whose field `round` is
/// recorded `rounds` times, in a request kept by tail capture (so that its
/// start line is made from its stop and shows every field recorded), under
/// a layer with fields on and `max_field_bytes`: the start line's JSON
/// fields, and how many values the layer cut or left out.
fn worker_fields_recorded(max_field_bytes: usize, rounds: u64) -> (String, u64) {
    let lines = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(lines.clone())
        .with_fields(true)
        .with_max_field_bytes(max_field_bytes);
    let stats = layer.stats();
    let capture = tracing_osprofiler::CapturePolicy::new()
        .with_keep_slower_than(Some(std::time::Duration::ZERO))
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        capture.start(|| info_span!("consume")).in_scope(|| {
            let worker = info_span!("worker", round = tracing::field::Empty, first = 1);
            for round in 0..rounds {
                worker.record("round", round);
            }
        });
    });
    let extra = lines.points().named("worker").start_extra.clone();
    (extra, stats.field_values_cut())
}

/// A long-lived span whose fields are recorded again and again (a loop
/// calling `record`) keeps a bounded fields object: four values at their
/// cap (at least 1 KiB), then members are left out, counted, and the object
/// says so once.
#[test]
fn fields_recorded_again_and_again_stay_bounded_and_say_what_was_left_out() {
    let (extra, cut) = worker_fields_recorded(64, 10_000);
    assert!(
        extra.len() <= 1024 + r#","fields_left_out":true"#.len(),
        "{} bytes: {extra}",
        extra.len()
    );
    let fields: serde_json::Value =
        serde_json::from_str(&extra).unwrap_or_else(|e| panic!("{e}: {extra}"));
    assert_eq!(fields["first"], 1, "{extra}");
    assert_eq!(fields["fields_left_out"], true, "{extra}");
    assert_eq!(
        extra.matches("fields_left_out").count(),
        1,
        "said once: {extra}"
    );
    // Every `round` member written is one record; the rest were left out.
    let written = extra.matches("\"round\":").count() as u64;
    assert!(written > 10, "{extra}");
    assert_eq!(cut, 10_000 - written, "{extra}");
}

/// "No cap" said as `usize::MAX`: recording fields later neither overflows
/// (a panic in the service in a debug build) nor leaves every later field
/// out (the sum wrapping to 0 in a release build).
#[test]
fn the_largest_field_cap_records_every_field() {
    let (extra, cut) = worker_fields_recorded(usize::MAX, 3);
    assert_eq!(extra.matches("\"round\":").count(), 3, "{extra}");
    assert!(!extra.contains("fields_left_out"), "{extra}");
    assert_eq!(cut, 0, "{extra}");
}
