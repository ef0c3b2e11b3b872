//! The layer on one thread: which spans become trace points, the ids of the
//! tree they form, the lines written for them, and the headers signed for
//! downstream calls.

use crate::support;

use std::collections::HashSet;
use std::time::Duration;

use support::Capture;
use tracing::{info_span, Instrument};
use tracing_osprofiler::{
    current_trace_headers, HmacAlgorithm, HmacKeys, Id, NameSource, OsProfilerLayer, Profile,
    ProfileExt, Rejection, Signer, TraceInfo,
};
use tracing_subscriber::prelude::*;

fn signer() -> Signer {
    Signer::new("SECRET_KEY", HmacAlgorithm::Sha1)
}

fn no_incoming() -> HashSet<Id> {
    HashSet::new()
}

#[test]
fn nested_spans_form_the_request_tree() {
    let capture = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(capture.clone());
    let stats = layer.stats();
    let subscriber = tracing_subscriber::registry().with(layer);
    let profile = Profile::new(signer());
    let base = profile.trace_info().base_id();
    let mut seen = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let root = profile.start(|| info_span!("request"));
        let _root = root.enter();
        seen.push(("request", root.point_ids().expect("root is a point")));
        {
            let a = info_span!("a").entered();
            seen.push(("a", a.point_ids().unwrap()));
            for name in ["b1", "b2"] {
                let b = if name == "b1" {
                    info_span!("b1")
                } else {
                    info_span!("b2")
                };
                let _b = b.enter();
                seen.push((name, b.point_ids().unwrap()));
                let c = info_span!("c").entered();
                seen.push(("c", c.point_ids().unwrap()));
            }
        }
        assert_eq!(stats.points_live(), 1, "only the root is open");
    });
    assert_eq!(stats.points_live(), 0);
    assert_eq!(stats.points_started(), 6);

    let points = capture.points();
    assert_eq!(points.len(), 6);
    assert_eq!(points.lines, 12);
    let trees = points.check_trees(&no_incoming());
    assert_eq!(trees.len(), 1);
    assert_eq!(trees[&base].len(), 6);

    // The ids the spans report are the ids written.
    for (name, ids) in &seen {
        let point = &points.by_trace[&ids.trace_id];
        assert_eq!(&point.name, name);
        assert_eq!(&point.ids, ids);
    }
    let request = points.named("request");
    assert_eq!(request.ids.base_id, base);
    assert_eq!(
        request.ids.parent_id, base,
        "a root without caller has parent_id == base_id"
    );
    let a = points.named("a");
    assert_eq!(a.ids.parent_id, request.ids.trace_id);
    for b in ["b1", "b2"] {
        assert_eq!(points.named(b).ids.parent_id, a.ids.trace_id);
    }
    let cs: Vec<_> = seen.iter().filter(|(n, _)| *n == "c").collect();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].1.parent_id, points.named("b1").ids.trace_id);
    assert_eq!(cs[1].1.parent_id, points.named("b2").ids.trace_id);
    // The default slow threshold (0.5 s) is not reached here.
    assert!(points.by_trace.values().all(|p| !p.slow));
}

#[test]
fn root_parent_is_the_callers_parent_id() {
    // Vector 2 of trace_headers.json: signed by osprofiler with a parent_id.
    let keys = HmacKeys::new(["my-hmac-key"]);
    let profile = keys
        .verify(
            "eyJiYXNlX2lkIjogImEzYzFlNGIyLTBkOWYtNGM3YS04ZTZiLTVmNGQzYzJiMWEwOSIsICJwYXJlbnRfaWQiOiAiMTExMTExMTEtMjIyMi00MzMzLTg0NDQtNTU1NTU1NTU1NTU1In0=",
            "cbc1ae6d12846224756d8408c89788509d4df57d",
        )
        .unwrap();
    let base = Id::parse("a3c1e4b2-0d9f-4c7a-8e6b-5f4d3c2b1a09").unwrap();
    let parent = Id::parse("11111111-2222-4333-8444-555555555555").unwrap();
    let capture = Capture::new();
    tracing::subscriber::with_default(capture.subscriber(), || {
        profile.start(|| info_span!("wsgi")).in_scope(|| {
            let _db = info_span!("db").entered();
        });
    });
    let points = capture.points();
    points.check_trees(&HashSet::from([parent]));
    let wsgi = points.named("wsgi");
    assert_eq!(wsgi.ids.base_id, base);
    assert_eq!(wsgi.ids.parent_id, parent);
    assert_eq!(points.named("db").ids.parent_id, wsgi.ids.trace_id);
}

#[test]
fn unprofiled_spans_write_zero_bytes() {
    let capture = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(capture.clone()).with_fields(true);
    let stats = layer.stats();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let run = || {
            for i in 0..100 {
                let outer = info_span!("request", i).entered();
                let _inner = info_span!("inner").entered();
                tracing::info!(i, "an event");
                drop(outer);
            }
            assert!(current_trace_headers().is_none());
            assert!(tracing::Span::current().point_ids().is_none());
        };
        run();
        assert_eq!(capture.writes(), 0);
        // After a profiled request has come and gone, still nothing.
        Profile::new(signer())
            .start(|| info_span!("profiled"))
            .in_scope(|| {});
        let written = capture.bytes().len();
        assert!(written > 0);
        run();
        assert_eq!(capture.bytes().len(), written);
        // While a profiled request is open elsewhere, spans outside it are
        // still not points.
        let open = Profile::new(signer()).start(|| info_span!("open"));
        let written = capture.bytes().len();
        run();
        assert_eq!(capture.bytes().len(), written);
        drop(open);
    });
    assert_eq!(stats.points_started(), 2);
    let points = capture.points();
    assert_eq!(points.len(), 2);
    points.check_trees(&no_incoming());
}

#[test]
fn explicit_parents_decide_membership() {
    let capture = Capture::new();
    tracing::subscriber::with_default(capture.subscriber(), || {
        let root = Profile::new(signer()).start(|| info_span!("root"));
        // Created outside the root's scope, but with the root as parent.
        let adopted = info_span!(parent: &root, "adopted");
        drop(adopted);
        root.in_scope(|| {
            // Inside the request, but explicitly detached from it.
            let detached = info_span!(parent: None, "detached");
            assert!(detached.point_ids().is_none());
            detached.in_scope(|| {
                let _child = info_span!("child_of_detached").entered();
            });
        });
    });
    let points = capture.points();
    points.check_trees(&no_incoming());
    let names: HashSet<_> = points.by_trace.values().map(|p| p.name.as_str()).collect();
    assert_eq!(names, HashSet::from(["root", "adopted"]));
    assert_eq!(
        points.named("adopted").ids.parent_id,
        points.named("root").ids.trace_id
    );
}

#[test]
fn a_future_polled_many_times_is_one_point() {
    let capture = Capture::new();
    let subscriber = capture.subscriber();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let root = Profile::new(signer()).start(|| info_span!("request"));
        runtime.block_on(
            async {
                let polled = async {
                    for _ in 0..200 {
                        tokio::task::yield_now().await;
                    }
                    let _inner = info_span!("after_yields").entered();
                }
                .instrument(info_span!("polled"));
                polled.await;
            }
            .instrument(root),
        );
    });
    let points = capture.points();
    assert_eq!(points.len(), 3);
    let trees = points.check_trees(&no_incoming());
    assert_eq!(trees.len(), 1);
    let polled = points.named("polled");
    assert_eq!(polled.ids.parent_id, points.named("request").ids.trace_id);
    assert_eq!(
        points.named("after_yields").ids.parent_id,
        polled.ids.trace_id
    );
}

#[test]
fn profile_start_without_the_layer_leaves_nothing_pending() {
    let capture = Capture::new();
    let with_layer = capture.subscriber();
    let without_layer = tracing_subscriber::registry();
    tracing::subscriber::with_default(without_layer, || {
        let span = Profile::new(signer()).start(|| info_span!("nobody_listens"));
        assert!(span.point_ids().is_none());
    });
    // A filter that disables the root: same outcome.
    tracing::subscriber::with_default(
        tracing_subscriber::registry()
            .with(OsProfilerLayer::from_make_writer(capture.clone()))
            .with(tracing_subscriber::filter::LevelFilter::WARN),
        || {
            let span = Profile::new(signer()).start(|| info_span!("filtered"));
            assert!(span.point_ids().is_none());
        },
    );
    tracing::subscriber::with_default(with_layer, || {
        // Must not become a root of the earlier profiles.
        let _later = info_span!("later").entered();
    });
    assert_eq!(capture.writes(), 0);
}

#[test]
fn downstream_headers_use_the_incoming_key_and_algorithm() {
    // Rotation: two keys accepted at once; each request keeps the key it came with.
    let keys = HmacKeys::from_comma_separated("new-key, old-key");
    let base = Id::new_v4();
    let capture = Capture::new();
    for (key, algorithm) in [
        ("old-key", HmacAlgorithm::Sha256),
        ("new-key", HmacAlgorithm::Sha1),
        ("old-key", HmacAlgorithm::Sha1),
    ] {
        let incoming = Signer::new(key, algorithm).sign(&TraceInfo::new(base, None));
        let profile = keys
            .verify(incoming.trace_info(), incoming.trace_hmac())
            .unwrap();
        assert_eq!(profile.signer(), &Signer::new(key, algorithm));
        tracing::subscriber::with_default(capture.subscriber(), || {
            profile.start(|| info_span!("request")).in_scope(|| {
                let call = info_span!("call_downstream").entered();
                let headers = current_trace_headers().expect("inside a profiled request");
                assert_eq!(headers.trace_hmac().len(), algorithm.hex_len());
                assert_eq!(Some(headers.clone()), call.trace_headers());
                let only_this_key = HmacKeys::new([key]);
                let downstream = only_this_key
                    .verify(headers.trace_info(), headers.trace_hmac())
                    .expect("signed with the request's key");
                assert_eq!(downstream.signer().algorithm(), algorithm);
                let ids = call.point_ids().unwrap();
                assert_eq!(downstream.trace_info().base_id(), base);
                assert_eq!(downstream.trace_info().parent_id(), Some(ids.trace_id));
                // Another key does not verify them; nor does the other algorithm.
                let other = if key == "old-key" {
                    "new-key"
                } else {
                    "old-key"
                };
                assert_eq!(
                    HmacKeys::new([other])
                        .verify(headers.trace_info(), headers.trace_hmac())
                        .unwrap_err(),
                    Rejection::BadSignature
                );
                let without = match algorithm {
                    HmacAlgorithm::Sha1 => only_this_key.with_sha1(false),
                    _ => only_this_key.with_sha256(false),
                };
                assert_eq!(
                    without
                        .verify(headers.trace_info(), headers.trace_hmac())
                        .unwrap_err(),
                    Rejection::BadSignature
                );
                // Headers as (name, value) pairs for any transport.
                let pairs: Vec<_> = headers.iter().collect();
                assert_eq!(pairs[0], ("X-Trace-Info", headers.trace_info()));
                assert_eq!(pairs[1], ("X-Trace-HMAC", headers.trace_hmac()));
            });
        });
    }
    capture.points().check_trees(&no_incoming());
}

#[test]
fn oversized_headers_are_rejected_before_any_hmac_work() {
    use hmac::Mac;
    // A token whose signature is valid but whose info is over the limit: the
    // verdict is Oversized, not Ok, so the size check comes first.
    let json = format!(
        r#"{{"base_id": "{}"{}}}"#,
        Id::new_v4(),
        " ".repeat(tracing_osprofiler::token::MAX_TRACE_INFO_LEN)
    );
    let info = base64_url(json.as_bytes());
    assert!(info.len() > tracing_osprofiler::token::MAX_TRACE_INFO_LEN);
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"SECRET_KEY").unwrap();
    mac.update(info.as_bytes());
    let hmac: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let keys = HmacKeys::new(["SECRET_KEY"]);
    assert_eq!(keys.verify(&info, &hmac).unwrap_err(), Rejection::Oversized);
    // An oversized signature header too.
    let long_hmac = format!("{hmac}{}", " ".repeat(200));
    assert_eq!(
        keys.verify("e30=", &long_hmac).unwrap_err(),
        Rejection::Oversized
    );
    // With many keys, rejecting an oversized header costs no more than one
    // with a single key: no HMAC is computed. A loose bound, robust on a
    // loaded machine: the 1 000 rejections take about a millisecond, while
    // trying 10 000 keys each (ten million HMACs) would take seconds.
    let many = HmacKeys::new((0..10_000).map(|i| format!("key-{i}")));
    let started = std::time::Instant::now();
    for _ in 0..1_000 {
        assert_eq!(many.verify(&info, &hmac).unwrap_err(), Rejection::Oversized);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

#[test]
fn fields_slow_marker_and_names() {
    let capture = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(capture.clone())
        .with_fields(true)
        .with_slow_threshold(Some(Duration::from_millis(20)))
        .with_name_source(NameSource::TargetAndName);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let root = Profile::new(signer())
            .start(|| info_span!(target: "svc", "request", user = "alice", n = 3_u64, ok = true));
        root.in_scope(|| {
            let _slow = info_span!(target: "svc::db", "query", rows = -2_i64).entered();
            std::thread::sleep(Duration::from_millis(30));
        });
        drop(root);
        Profile::new(signer())
            .start(|| info_span!(target: "svc", "no_fields"))
            .in_scope(|| {});
    });
    let points = capture.points();
    points.check_trees(&no_incoming());
    let request = points.named("svc::request");
    let fields: serde_json::Value = serde_json::from_str(&request.start_extra).unwrap();
    assert_eq!(
        fields,
        serde_json::json!({"user": "alice", "n": 3, "ok": true})
    );
    let query = points.named("svc::db::query");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&query.start_extra).unwrap(),
        serde_json::json!({"rows": -2})
    );
    assert!(query.slow && request.slow);
    assert!(query.duration >= 0.03);
    let quiet = points.named("svc::no_fields");
    assert!(!quiet.slow);
    assert_eq!(quiet.start_extra, "");
    // Fields are off by default.
    let capture = Capture::new();
    tracing::subscriber::with_default(capture.subscriber(), || {
        Profile::new(signer())
            .start(|| info_span!("r", secret = "hunter2"))
            .in_scope(|| {});
    });
    assert!(!String::from_utf8(capture.bytes())
        .unwrap()
        .contains("hunter2"));
}

#[test]
fn a_per_layer_filter_skips_spans_without_breaking_the_tree() {
    use tracing_subscriber::filter::filter_fn;
    let capture = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(capture.clone())
        .with_filter(filter_fn(|metadata| metadata.name() != "skipped"));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        Profile::new(signer())
            .start(|| info_span!("root"))
            .in_scope(|| {
                let skipped = info_span!("skipped").entered();
                assert!(skipped.point_ids().is_none());
                let inner = info_span!("inner").entered();
                let ids = inner.point_ids().expect("a point below a filtered span");
                let headers = current_trace_headers().expect("headers below a filtered span");
                let downstream = HmacKeys::new(["SECRET_KEY"])
                    .verify(headers.trace_info(), headers.trace_hmac())
                    .unwrap();
                assert_eq!(downstream.trace_info().parent_id(), Some(ids.trace_id));
            });
    });
    let points = capture.points();
    points.check_trees(&no_incoming());
    assert_eq!(points.len(), 2);
    // The filtered span is skipped: `inner` hangs from `root`.
    assert_eq!(
        points.named("inner").ids.parent_id,
        points.named("root").ids.trace_id
    );
}

#[test]
fn headers_are_found_wherever_the_layer_sits_in_the_stack() {
    fn check(subscriber: impl tracing::Subscriber + Send + Sync) {
        tracing::subscriber::with_default(subscriber, || {
            Profile::new(signer())
                .start(|| info_span!("root"))
                .in_scope(|| {
                    let _inner = info_span!("inner").entered();
                    assert!(current_trace_headers().is_some());
                });
        });
    }
    // The layer on top of another layer, and under one.
    let capture = Capture::new();
    check(
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
            .with(OsProfilerLayer::from_make_writer(capture.clone())),
    );
    check(
        tracing_subscriber::registry()
            .with(OsProfilerLayer::from_make_writer(capture.clone()))
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink)),
    );
    assert_eq!(capture.points().len(), 4);
}
