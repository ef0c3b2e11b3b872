//! What the OTLP sink's retries may cost a collector, and what they count
//! (issue #20, item 6): a slow collector gets each batch once and its spans
//! are counted unconfirmed, not failed; retries of timeouts only when
//! asked, backed off; retries bounded by time as well as by number; a
//! connection broken after the request went out is unconfirmed too.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing_osprofiler::writer::Otlp;

use super::otlp::job;
use crate::support::otlp::{dead_port, hangup_server, quick_sink, Collector, Node, Reply};

/// Checks the OTLP sink's (written, dropped, failed, unconfirmed).
fn assert_counts(node: &Node, expected: (u64, u64, u64, u64)) {
    let stats = node.otlp();
    assert_eq!(
        (
            stats.written,
            stats.dropped,
            stats.failed,
            stats.unconfirmed
        ),
        expected,
        "{stats:?}"
    );
}

/// A node `nova`/`api` exporting with `otlp` makes one profiled job of one
/// root and `children` points, and flushes: the node, and how many points.
fn flushed_job(otlp: Otlp, children: usize) -> (Node, u64) {
    let node = Node::new(otlp, "nova", "api");
    tracing::dispatcher::with_default(&node.dispatch, || job(children));
    node.flush(Duration::from_secs(20));
    (node, 1 + children as u64)
}

#[test]
fn a_slow_collector_gets_each_batch_once_and_its_spans_are_unconfirmed() {
    // The case: a collector taking 1 s, a request timeout of
    // 300 ms, the default retries. It was posted every batch 4 times and
    // the crate counted every span failed while the collector stored it 4
    // times.
    let collector = Collector::start();
    collector.otherwise(Reply::Slow(Duration::from_secs(1)));
    let (node, made) = flushed_job(
        collector
            .sink()
            .with_request_timeout(Duration::from_millis(300)),
        99,
    );
    assert_eq!(made, 100);
    assert_counts(&node, (0, 0, 0, made));
    assert_eq!(collector.requests(), 1, "no duplicate of a timed-out batch");
    // The collector did store them, once each.
    let received = collector.wait_for(made as usize, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.requests(), 1);
    let ids: HashSet<u64> = received.iter().map(|s| s.span_id()).collect();
    assert_eq!((received.len(), ids.len()), (100, 100));
}

#[test]
fn timeouts_are_retried_when_asked_with_waits_that_grow() {
    let collector = Collector::start();
    collector.otherwise(Reply::Slow(Duration::from_secs(1)));
    let (node, made) = flushed_job(
        collector
            .sink()
            .with_request_timeout(Duration::from_millis(300))
            .with_retry_timeouts(true)
            .with_max_retries(2)
            .with_backoff(Duration::from_millis(200)),
        4,
    );
    assert_counts(&node, (0, 0, 0, made));
    let arrivals = collector.arrivals();
    assert_eq!(arrivals.len(), 3, "one try and two retries");
    // Each retry waits the request's timeout plus at least half its
    // backoff (200 ms, then 400 ms, each less up to half).
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(300 + 100), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(300 + 200), "{gaps:?}");
}

#[test]
fn retries_stop_at_the_time_limit_whatever_their_number() {
    let collector = Collector::start();
    collector.otherwise(Reply::Status(503, None));
    let (node, made) = flushed_job(
        collector
            .sink()
            .with_max_retries(10_000)
            .with_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(20))
            .with_retry_time_limit(Duration::from_millis(400)),
        2,
    );
    // 503 says the collector did not take them: failed, not unconfirmed.
    assert_counts(&node, (0, 0, made, 0));
    let requests = collector.requests();
    // Waits of at least 10 ms within 400 ms: at most 41 tries.
    assert!((2..=41).contains(&requests), "{requests} tries");
}

#[test]
fn a_connection_broken_after_the_request_went_out_is_unconfirmed() {
    let (port, read) = hangup_server();
    let (node, made) = flushed_job(
        quick_sink(&format!("otlp://127.0.0.1:{port}"))
            .with_max_retries(1)
            .with_backoff(Duration::from_millis(10)),
        3,
    );
    assert_counts(&node, (0, 0, 0, made));
    // A crash mid-request is retried (a restarting collector), once here.
    assert_eq!(read.load(Ordering::SeqCst), 2);

    // Nothing listening: nothing was sent, so failed.
    let (node, made) = flushed_job(
        quick_sink(&format!("otlp://127.0.0.1:{}", dead_port()))
            .with_max_retries(1)
            .with_backoff(Duration::from_millis(10)),
        3,
    );
    assert_counts(&node, (0, 0, made, 0));
}
