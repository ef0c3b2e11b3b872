//! The OTLP sink when the collector is not well: down, answering 503 and
//! coming back, slow, answering garbage, rejecting part of a batch; a full
//! queue; a guard dropped while a call hangs; 10 000 spans through a
//! collector that keeps going down. The service always answers, nothing
//! panics, and every span is written, dropped or failed, exactly once.

use std::time::{Duration, Instant};

use tracing_osprofiler::writer::{Otlp, SinkStats};

use super::otlp::{job, rust_service};
use crate::support::http::{get_with, new_token, token_headers};
use crate::support::otlp::{dead_port, garbage_server, quick_sink, Collector, Node, Reply};

/// An OTLP sink to `endpoint` that gives up fast: short batches, one quick
/// retry.
fn quick(endpoint: &str) -> Otlp {
    quick_sink(endpoint)
        .with_max_retries(1)
        .with_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(50))
        .with_request_timeout(Duration::from_secs(5))
}

fn counts(stats: SinkStats) -> (u64, u64, u64) {
    (stats.written, stats.dropped, stats.failed)
}

/// Makes `jobs` profiled jobs of one root and `children` points on this
/// thread; returns how many points that is.
fn make(node: &Node, jobs: usize, children: usize) -> u64 {
    tracing::dispatcher::with_default(&node.dispatch, || {
        for _ in 0..jobs {
            job(children);
        }
    });
    (jobs * (1 + children)) as u64
}

#[tokio::test]
async fn a_collector_that_is_down_costs_the_service_nothing_and_every_span_is_failed() {
    let node = Node::new(
        quick(&format!("otlp://127.0.0.1:{}", dead_port())),
        "nova",
        "api",
    );
    let _default = node.enter();
    let service = rust_service(None).await;
    for _ in 0..10 {
        let (_, token) = new_token();
        let (status, body) = get_with(&format!("http://{service}/"), &token_headers(&token)).await;
        assert_eq!((status, body.as_str()), (200, "rust ok (3)"));
    }
    node.flush(Duration::from_secs(20));
    let made = node.log_points().len() as u64;
    assert_eq!(made, 30, "wsgi, handle, db_query per request");
    assert_eq!(counts(node.otlp()), (0, 0, made));
    // The file sink is not held up by the network one.
    assert_eq!(node.writer.stats().file().expect("file").written, 2 * made);
}

#[test]
fn a_collector_answering_503_then_recovering_gets_every_span() {
    let collector = Collector::start();
    collector.script([Reply::Status(503, None), Reply::Status(503, None)]);
    let node = Node::new(
        quick(&collector.connection_string()).with_max_retries(3),
        "nova",
        "api",
    );
    let made = make(&node, 1, 4);
    node.flush(Duration::from_secs(10));
    assert_eq!(counts(node.otlp()), (made, 0, 0));
    assert_eq!(collector.requests(), 3, "two refusals, then accepted");
    assert_eq!(collector.spans().len() as u64, made);
}

#[test]
fn a_batch_refused_past_its_retries_is_failed_and_the_next_is_written() {
    let collector = Collector::start();
    collector.script([
        Reply::Status(503, None),
        Reply::Status(429, Some("0".into())),
    ]);
    let node = Node::new(quick(&collector.connection_string()), "nova", "api");
    let first = make(&node, 1, 2);
    node.flush(Duration::from_secs(10));
    assert_eq!(counts(node.otlp()), (0, 0, first));
    let second = make(&node, 1, 3);
    node.flush(Duration::from_secs(10));
    assert_eq!(counts(node.otlp()), (second, 0, first));
    assert_eq!(collector.spans().len() as u64, second);

    // A status no retry mends fails the batch at once.
    collector.script([Reply::Status(400, None)]);
    let third = make(&node, 1, 0);
    node.flush(Duration::from_secs(10));
    assert_eq!(counts(node.otlp()), (second, 0, first + third));
    assert_eq!(collector.requests(), 2 + 1 + 1);
}

#[tokio::test]
async fn a_slow_collector_holds_up_neither_the_service_nor_the_file() {
    let collector = Collector::start();
    collector.otherwise(Reply::Slow(Duration::from_secs(2)));
    let node = Node::new(
        quick(&collector.connection_string())
            .with_request_timeout(Duration::from_millis(300))
            .with_max_retries(0),
        "nova",
        "api",
    );
    let _default = node.enter();
    let service = rust_service(None).await;
    for _ in 0..5 {
        let (_, token) = new_token();
        assert_eq!(
            get_with(&format!("http://{service}/"), &token_headers(&token))
                .await
                .0,
            200
        );
    }
    node.flush(Duration::from_secs(20));
    let made = node.log_points().len() as u64;
    assert_eq!(made, 15);
    let stats = node.otlp();
    assert_eq!(
        (counts(stats), stats.unconfirmed),
        ((0, 0, 0), made),
        "every call timed out after it was sent"
    );

    // Slow, but within the timeout: delivered.
    collector.otherwise(Reply::Slow(Duration::from_millis(100)));
    let node = Node::new(quick(&collector.connection_string()), "nova", "api");
    let made = make(&node, 2, 2);
    node.flush(Duration::from_secs(10));
    assert_eq!(counts(node.otlp()), (made, 0, 0));
}

#[test]
fn garbage_answers_are_failures_or_successes_as_http_says() {
    // Not HTTP at all: a failed try, every time.
    let node = Node::new(
        quick(&format!("otlp://127.0.0.1:{}", garbage_server())),
        "nova",
        "api",
    );
    let made = make(&node, 2, 1);
    node.flush(Duration::from_secs(10));
    assert_eq!(counts(node.otlp()), (0, 0, made));

    // HTTP 200 with a body that is no protobuf: the collector took them.
    let collector = Collector::start();
    collector.otherwise(Reply::Garbage);
    let node = Node::new(quick(&collector.connection_string()), "nova", "api");
    let made = make(&node, 2, 1);
    node.flush(Duration::from_secs(10));
    assert_eq!(counts(node.otlp()), (made, 0, 0));
}

#[test]
fn https_to_a_plain_http_collector_fails_and_never_falls_back() {
    let collector = Collector::start();
    let node = Node::new(
        quick(&format!("https://{}", collector.addr())),
        "nova",
        "api",
    );
    let made = make(&node, 1, 1);
    node.flush(Duration::from_secs(10));
    assert_eq!(counts(node.otlp()), (0, 0, made));
    assert!(
        collector.spans().is_empty() && collector.requests() == 0,
        "nothing went out in the clear"
    );
}

#[test]
fn a_partial_success_fails_only_the_rejected_spans() {
    let collector = Collector::start();
    collector.script([Reply::Reject(2)]);
    let node = Node::new(
        quick(&collector.connection_string()).with_batch_size(100),
        "nova",
        "api",
    );
    let made = make(&node, 1, 4);
    node.flush(Duration::from_secs(10));
    assert_eq!(collector.requests(), 1, "one batch");
    assert_eq!(counts(node.otlp()), (made - 2, 0, 2));
}

#[test]
fn a_full_queue_drops_and_counts() {
    let collector = Collector::start();
    collector.otherwise(Reply::Slow(Duration::from_millis(500)));
    let node = Node::new(
        quick(&collector.connection_string())
            .with_queue_limit(5)
            .with_batch_size(5),
        "nova",
        "api",
    );
    let made = make(&node, 1, 99);
    node.flush(Duration::from_secs(20));
    let (written, dropped, failed) = counts(node.otlp());
    assert_eq!(node.otlp().unconfirmed, 0);
    assert_eq!(written + dropped + failed, made);
    assert_eq!(failed, 0);
    assert!(dropped > 0, "at most 5 spans wait: {written} written");
    assert_eq!(collector.spans().len() as u64, written);
}

#[test]
fn dropping_the_guard_while_a_call_hangs_counts_everything_in_time() {
    let collector = Collector::start();
    collector.otherwise(Reply::Slow(Duration::from_secs(60)));
    let mut node = Node::with_builder(
        tracing_osprofiler::ProfileWriter::builder()
            .with_otlp(
                quick(&collector.connection_string())
                    .with_request_timeout(Duration::from_secs(60))
                    .with_batch_size(4),
            )
            .with_flush_timeout(Duration::from_millis(500)),
        "nova",
        "api",
    );
    let made = make(&node, 5, 3);
    let started = Instant::now();
    drop(node.guard.take());
    let took = started.elapsed();
    let (written, dropped, failed) = counts(node.otlp());
    let unconfirmed = node.otlp().unconfirmed;
    assert_eq!(
        written + dropped + failed + unconfirmed,
        made,
        "all counted when drop returns"
    );
    assert_eq!(written, 0);
    // Not a speed check: a drop that waited for the hung call would take
    // the call's 60 s.
    assert!(took < Duration::from_secs(30), "drop took {took:?}");
}

#[test]
fn ten_thousand_spans_through_a_flapping_collector_are_all_accounted_for() {
    let mut collector = Collector::start();
    let node = Node::new(
        Otlp::new(&collector.connection_string())
            .expect("endpoint")
            .with_batch_size(200)
            .with_batch_timeout(Duration::from_millis(10))
            .with_queue_limit(3000)
            .with_max_retries(2)
            .with_backoff(Duration::from_millis(5))
            .with_max_backoff(Duration::from_millis(40))
            .with_connect_timeout(Duration::from_millis(500))
            .with_request_timeout(Duration::from_secs(2)),
        "nova",
        "api",
    );
    let makers: Vec<_> = (0..4)
        .map(|_| {
            let dispatch = node.dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for _ in 0..250 {
                        job(9);
                        // Spread the jobs over the flaps.
                        std::thread::sleep(Duration::from_micros(500));
                    }
                });
            })
        })
        .collect();
    // Down, up with refusals, up: again and again while the jobs run.
    let mut flaps = 0;
    while makers.iter().any(|m| !m.is_finished()) {
        collector.stop();
        std::thread::sleep(Duration::from_millis(30));
        collector.resume();
        collector.script([Reply::Status(503, None), Reply::Status(502, None)]);
        std::thread::sleep(Duration::from_millis(40));
        flaps += 1;
    }
    for maker in makers {
        maker.join().expect("maker");
    }
    assert!(flaps > 0);
    node.flush(Duration::from_secs(60));

    let made = 4 * 250 * 10;
    assert_eq!(node.log_points().len(), made, "the file has every point");
    let (written, dropped, failed) = counts(node.otlp());
    let unconfirmed = node.otlp().unconfirmed;
    assert_eq!(
        written + dropped + failed + unconfirmed,
        made as u64,
        "written {written}, dropped {dropped}, failed {failed}, unconfirmed {unconfirmed}"
    );
    assert!(written > 0);
    // What the collector holds: at least every span counted as written
    // (a batch whose answer a crash cut off may be held and is counted
    // unconfirmed), each one made here, none twice beyond such retries.
    let received: std::collections::HashSet<u64> =
        collector.spans().iter().map(|s| s.span_id()).collect();
    assert!(
        received.len() as u64 >= written,
        "{} received, {written} written",
        received.len()
    );
    let made_ids: std::collections::HashSet<u64> = node
        .log_points()
        .by_trace
        .keys()
        .map(|id| id.low_u64())
        .collect();
    assert!(received.is_subset(&made_ids));
}
