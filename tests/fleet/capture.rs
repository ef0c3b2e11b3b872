//! Tail capture with the OTLP sink: a kept request reaches the collector as
//! one whole trace with osprofiler's ids, its root carrying `capture.kept`
//! (and `capture.truncated` when points did not fit); a discarded one
//! sends nothing.

use std::time::Duration;

use tracing_osprofiler::point::RequestInfo;
use tracing_osprofiler::{CapturePolicy, Id, ProfileExt as _};

use crate::support::otlp::{named, one_trace, Collector};

#[test]
fn kept_requests_are_whole_traces_that_say_why_and_discarded_ones_send_nothing() {
    let collector = Collector::start();
    let node = collector.node();
    let capture = CapturePolicy::new()
        // Wide apart from the slow one's sleep, so that a busy machine
        // cannot make a fast one slow.
        .with_keep_slower_than(Some(Duration::from_millis(200)))
        .with_keep_errors(true)
        .with_max_points_per_request(2)
        .build();
    let request = |sleep: u64, fail: bool, children: usize| -> Id {
        let _default = node.enter();
        let info = RequestInfo::new("GET", "/servers", "http");
        let root = capture.start_request(info, || {
            tracing::info_span!("wsgi", http.status_code = tracing::field::Empty)
        });
        let base = root.point_ids().expect("captured").base_id;
        root.in_scope(|| {
            for _ in 0..children {
                let _db = tracing::info_span!("db_query").entered();
            }
            std::thread::sleep(Duration::from_millis(sleep));
        });
        root.record("http.status_code", if fail { 502 } else { 200 });
        base
    };
    let discarded = request(0, false, 1);
    let slow = request(250, false, 1);
    let failed = request(0, true, 3);
    node.flush(Duration::from_secs(10));

    let stats = capture.stats();
    assert_eq!(
        (stats.kept_slow(), stats.kept_error(), stats.discarded()),
        (1, 1, 1)
    );
    assert_eq!(stats.truncated(), 1, "the third db_query of the failed one");
    // slow: wsgi, db_query; failed: wsgi, two db_query.
    let spans = collector.wait_for(5, Duration::from_secs(10));
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let trace = |base: Id| {
        spans
            .iter()
            .filter(|s| s.span.trace_id == base.as_uuid().as_bytes().to_vec())
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(trace(discarded).is_empty());
    for (base, reason, points, truncated) in
        [(slow, "slow", 2, None), (failed, "error", 3, Some(1))]
    {
        let spans = trace(base);
        assert_eq!(spans.len(), points, "{spans:#?}");
        let by_id = one_trace(&spans);
        let root = named(&spans, "WSGI_GET_/servers");
        assert_eq!(root.parent(), None);
        assert_eq!(root.str_attr("capture.kept"), Some(reason));
        assert_eq!(root.int_attr("capture.truncated"), truncated);
        for span in spans.iter().filter(|s| s.span.name == "db_query") {
            assert_eq!(span.parent(), Some(root.span_id()));
            assert_eq!(span.attr("capture.kept"), None);
            assert!(by_id.contains_key(&span.span_id()));
        }
    }
    // The log beside it holds the same two trees.
    assert_eq!(node.log_points().len(), 5);
}
