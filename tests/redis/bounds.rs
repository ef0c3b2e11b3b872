//! Big span fields and a Redis that does not answer (issue #20, item 4):
//! the Redis sink's queue holds at most its limit in bytes, whatever its
//! limit in events, and counts what that drops. The OTLP twin is
//! `tests/fleet/otlp_bounds.rs`.

use std::time::Duration;

use tracing_osprofiler::writer::{ProfileWriter, Redis, SinkKind};

use crate::support::big_fields::{
    flood_a_silent_sink, keeping_fields_whole, shut_down_unwritten, upload, VALUE,
};
use crate::support::redis::{Behaviour, FakeRedis};

const MIB: u64 = 1024 * 1024;

#[test]
fn big_fields_to_a_silent_redis_hold_the_queue_to_its_byte_limit() {
    // The case: 512 KiB fields to a Redis that reads every batch
    // and never answers. The queue's limit in events (65 536) would have
    // held them all: 400 starts of 512 KiB, 200 MiB.
    let fake = FakeRedis::start(Behaviour::Silent);
    let limit = 16 * MIB;
    let children = 399;
    let (writer, guard, grown) = flood_a_silent_sink(
        ProfileWriter::builder().with_redis(
            Redis::new(&fake.url())
                .expect("connection string")
                // Only the byte bound can stop the queue: the batch on the
                // wire waits for its answers for the whole test.
                .with_io_timeout(Duration::from_secs(120))
                .with_queue_bytes_limit(limit),
        ),
        children,
    );
    let made = 2 * (1 + children as u64);
    assert!(
        fake.wait_received(Duration::from_secs(20)),
        "the sink never sent its first batch"
    );

    let redis = writer.stats().sink(SinkKind::Redis).expect("redis");
    // The queue and the batch on the wire together hold at most the limit:
    // at most that many of the big starts were taken; the stops are small
    // and mostly fit.
    let big_taken = limit / VALUE as u64 + 1;
    assert!(
        redis.dropped_over_bytes >= children as u64 - big_taken,
        "{redis:?} of {made}"
    );
    assert!(redis.dropped_over_bytes <= made, "{redis:?} of {made}");
    assert_eq!(redis.dropped, redis.dropped_over_bytes, "{redis:?}");
    assert_eq!(redis.written, 0, "{redis:?}");
    // Held: about the limit (16 MiB; 17 MiB measured), and not the
    // 200 MiB of every start; the margin is for a packed copy on the wire
    // and the allocator.
    assert!(grown < 64 * MIB, "the process grew by {} MiB", grown / MIB);

    let redis = shut_down_unwritten(&writer, guard, SinkKind::Redis, made);
    // The batch on the wire when shutting down went out and got no answer:
    // unconfirmed (Redis may have stored it), never dropped twice.
    assert!(redis.unconfirmed > 0, "{redis:?}");
}

#[test]
fn the_room_of_every_event_is_given_back_once_it_is_written() {
    // A Redis that answers: each batch's room comes back, so a stream of
    // big events much longer than the limit is written whole, batch after
    // batch, with nothing dropped for bytes.
    let fake = FakeRedis::start(Behaviour::Answer);
    let (writer, guard) = ProfileWriter::builder()
        .with_redis(
            Redis::new(&fake.url())
                .expect("connection string")
                .with_queue_bytes_limit(4 * MIB),
        )
        .with_flush_timeout(Duration::from_secs(10))
        .build()
        .expect("writer");
    let (dispatch, _) = keeping_fields_whole(&writer);
    let value = "y".repeat(VALUE);
    let mut made = 0;
    // 5 spans at a time (2.5 MiB, under the limit), 12 times: 30 MiB in
    // all, written only if the room is given back.
    for _ in 0..12 {
        tracing::dispatcher::with_default(&dispatch, || upload(5, &value));
        made += 2 * (1 + 5);
        guard
            .flush(Duration::from_secs(20))
            .expect("Redis answers every batch");
    }
    let redis = writer.stats().sink(SinkKind::Redis).expect("redis");
    assert_eq!(redis.dropped_over_bytes, 0, "{redis:?}");
    assert_eq!(redis.written, made, "{redis:?}");
    drop(guard);
}
