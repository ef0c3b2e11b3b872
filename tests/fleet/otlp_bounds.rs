//! Big span fields and a collector that does not answer (issue #20, item
//! 4): the OTLP sink's queue holds at most its limit in bytes, whatever its
//! limit in spans, and counts what that drops; the layer cuts a field value
//! past its cap, marks it and counts it.

use std::time::Duration;

use tracing_osprofiler::writer::{ProfileWriter, SinkKind};
use tracing_osprofiler::{HmacAlgorithm, Profile, Signer};

use crate::support::big_fields::{flood_a_silent_sink, shut_down_unwritten, upload, VALUE};
use crate::support::otlp::{Collector, Reply};

#[test]
fn big_fields_to_a_silent_collector_hold_the_queue_to_its_byte_limit() {
    // The case: 512 KiB fields to a collector that takes every
    // request and never answers. The queue's limit in spans (8192) would
    // have held them all: 400 spans, 200 MiB.
    let collector = Collector::start();
    collector.otherwise(Reply::Slow(Duration::from_secs(120)));
    let limit: u64 = 16 * 1024 * 1024;
    let children = 399;
    let (writer, guard, grown) = flood_a_silent_sink(
        ProfileWriter::builder().with_otlp(
            collector
                .sink()
                .with_request_timeout(Duration::from_secs(120))
                .with_queue_bytes_limit(limit),
        ),
        children,
    );
    let made = 1 + children as u64;

    let otlp = writer.stats().sink(SinkKind::Otlp).expect("otlp");
    // At most the limit waits, and a batch the thread took (at most the
    // limit too) is in its request body.
    let most_taken = 2 * limit / VALUE as u64 + 2;
    assert!(
        otlp.dropped_over_bytes >= made - most_taken,
        "{otlp:?} of {made}"
    );
    assert_eq!(otlp.dropped, otlp.dropped_over_bytes, "{otlp:?}");
    // Held: about twice the limit (32 MiB), and not the 200 MiB of every
    // span; the margin is for the rest of the test process.
    assert!(
        grown < 110 * 1024 * 1024,
        "the process grew by {} MiB",
        grown / (1024 * 1024)
    );

    shut_down_unwritten(&writer, guard, SinkKind::Otlp, made);
}

#[test]
fn a_field_value_past_the_cap_is_cut_marked_and_counted() {
    let collector = Collector::start();
    let node = collector.node();
    let value = "é".repeat(VALUE / 2);
    tracing::dispatcher::with_default(&node.dispatch, || upload(3, &value));
    node.flush(Duration::from_secs(20));
    // The default cap: 16 KiB.
    assert_eq!(node.layer.field_values_cut(), 3);
    let marker = format!("…[cut from {VALUE} bytes]");

    let log = node.log_points();
    let cut: Vec<_> = log
        .all
        .iter()
        .filter(|line| line.extra.contains(&marker))
        .collect();
    assert_eq!(cut.len(), 3, "three start lines with a cut body");
    for line in cut {
        assert!(line.extra.len() < 16 * 1024 + 200, "{}", line.extra.len());
        // Valid JSON, cut on a character.
        let fields: serde_json::Value = serde_json::from_str(&line.extra).expect("JSON fields");
        let body = fields["body"].as_str().expect("body");
        let kept = body.strip_suffix(&marker).expect("marked");
        assert!(!kept.is_empty() && kept.chars().all(|c| c == 'é'));
    }

    let spans = collector.wait_for(4, Duration::from_secs(10));
    let parts: Vec<_> = spans.iter().filter(|s| s.span.name == "part").collect();
    assert_eq!(parts.len(), 3);
    for part in parts {
        let body = part.str_attr("body").expect("body attribute");
        assert!(body.ends_with(&marker) && body.len() < 16 * 1024 + 100);
    }

    // An error's text is cut too, fields recorded or not: the field's
    // JSON and the span's status, each counted; so is an ERROR event's.
    let failing = node.layer.field_values_cut();
    tracing::dispatcher::with_default(&node.dispatch, || {
        let profile = Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1));
        let root = profile.start(|| tracing::info_span!("failing"));
        let _entered = root.enter();
        let _field = tracing::info_span!("field", error = value.as_str()).entered();
        drop(_field);
        let _event = tracing::info_span!("event").entered();
        tracing::error!(message = value.as_str());
    });
    node.flush(Duration::from_secs(20));
    assert_eq!(node.layer.field_values_cut() - failing, 3);
    let spans = collector.wait_for(7, Duration::from_secs(10));
    for name in ["field", "event"] {
        let span = spans.iter().find(|s| s.span.name == name).expect(name);
        let status = span.span.status.as_ref().expect("an error status");
        assert!(
            status.message.ends_with(&marker) && status.message.len() < 16 * 1024 + 100,
            "{name}: {} bytes",
            status.message.len()
        );
    }
}
