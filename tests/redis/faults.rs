//! Redis misbehaving: down at start, killed and restarted mid-run, asleep,
//! paused, holding a key of another type. The service goes on, nothing
//! panics, and every event is written, dropped, failed or unconfirmed,
//! exactly once.

use std::time::{Duration, Instant};

use tracing_osprofiler::writer::Redis;

use crate::support::redis::RedisServer;
use crate::{key, Service};

#[test]
fn redis_down_at_start_costs_the_service_nothing_and_every_event_is_counted() {
    let url = format!("redis://127.0.0.1:{}", RedisServer::unused_port());
    let mut service = Service::with_flush_timeout(
        Redis::new(&url).unwrap().with_queue_limit(50),
        Duration::from_millis(300),
    );
    for _ in 0..40 {
        service.request(3);
    }
    let stats = service.shut_down();
    let redis = service.assert_counted(&stats);
    // Nothing was ever sent, so nothing failed: the queue (50) and the
    // batch in hand waited for a connection, the rest was dropped at once,
    // and shutting down dropped what had waited.
    assert_eq!((redis.written, redis.failed), (0, 0), "{redis:?}");
    assert_eq!(redis.dropped, service.events);
}

#[test]
fn a_restarted_redis_gets_the_events_that_waited_for_it() {
    let mut server = RedisServer::start();
    let mut service = Service::new(
        Redis::new(&server.url())
            .unwrap()
            .with_max_backoff(Duration::from_millis(100)),
    );
    for _ in 0..20 {
        service.request(2);
    }
    service.flush();
    let before_kill = service.redis_stats();
    assert_eq!(before_kill.written, service.events);

    server.kill();
    let during: Vec<_> = (0..20).map(|_| service.request(2)).collect();
    // The events wait in the sink's queue while Redis is away.
    server.restart();
    let after: Vec<_> = (0..20)
        .map(|_| {
            let base = service.request(2);
            // One batch each: only the first can meet the dead connection.
            service.flush();
            base
        })
        .collect();
    let stats = service.shut_down();
    let redis = service.assert_counted(&stats);
    assert_eq!(redis.dropped, 0, "{redis:?}");

    // "Written" means in the store: the new server holds what was written
    // after the kill, and perhaps some unconfirmed events (a batch whose
    // connection broke may have been applied in part).
    let stored = stored(&server);
    let written_after = redis.written - before_kill.written;
    assert!(
        written_after <= stored && stored <= written_after + redis.unconfirmed,
        "stored {stored}, {redis:?}"
    );
    // The batch that met the dead connection is the only loss: the
    // requests made after the restart, past the first, are all there.
    for base in &after[1..] {
        assert_eq!(server.lrange(&key(*base)).len(), 10);
    }
    // A request made while Redis went away may have lost the events that
    // met the dead connection, never got one twice.
    for base in &during {
        let n = server.lrange(&key(*base)).len();
        assert!(n <= 10, "{n} events of a request");
    }
}

/// Events in the store, over every key of the layout.
fn stored(server: &RedisServer) -> u64 {
    server
        .keys("osprofiler_opt:*")
        .iter()
        .map(|k| server.lrange(k).len() as u64)
        .sum()
}

#[test]
fn a_paused_redis_is_waited_for_and_the_service_does_not_wait() {
    let server = RedisServer::start();
    // An io timeout well past the pause (the default, 2 s, is only 0.5 s
    // past it: too little for a busy machine).
    let mut service = Service::new(
        Redis::new(&server.url())
            .unwrap()
            .with_io_timeout(Duration::from_secs(6)),
    );
    service.request(1);
    service.flush();
    // CLIENT PAUSE ALL: Redis answers nobody for 1.5 s, less than the
    // sink's io timeout: its batch waits, and nothing fails.
    let pause = Duration::from_millis(1500);
    // Taken before the command reaches Redis, so the pause ends after
    // `paused_at + pause`: requests done by then ran while Redis was paused,
    // whatever the machine's load (a probe's timeout could not tell a
    // paused Redis from a slow one).
    let paused_at = Instant::now();
    assert_eq!(
        server.command(&["CLIENT", "PAUSE", &pause.as_millis().to_string(), "ALL"]),
        "+OK"
    );
    for _ in 0..200 {
        service.request(2);
    }
    assert!(
        paused_at.elapsed() < pause,
        "the requests ran while Redis was paused: the service did not wait for it"
    );
    service.flush();
    let stats = service.shut_down();
    let redis = service.assert_counted(&stats);
    assert_eq!(
        (redis.dropped, redis.failed, redis.unconfirmed),
        (0, 0, 0),
        "{redis:?}"
    );
    assert_eq!(stored(&server), service.events);
}

#[test]
fn a_redis_asleep_past_the_io_timeout_fails_the_batch_in_flight_only() {
    let server = RedisServer::start();
    let mut service = Service::new(
        Redis::new(&server.url())
            .unwrap()
            .with_io_timeout(Duration::from_millis(200))
            .with_connect_timeout(Duration::from_millis(200))
            .with_max_backoff(Duration::from_millis(100)),
    );
    service.request(1);
    service.flush();
    let sleeper = server.sleep_in_background(Duration::from_secs(2));
    // Let the DEBUG SLEEP reach the server before the requests; a DEBUG
    // SLEEP refused (the sleeper's panic) or over before it was seen fails
    // the test rather than spinning here for ever.
    while server_is_awake(&server) {
        if sleeper.is_finished() {
            sleeper.join().expect("DEBUG SLEEP");
            panic!("Redis slept and woke before the test saw it asleep");
        }
    }
    for _ in 0..100 {
        service.request(2);
    }
    assert!(
        !sleeper.is_finished(),
        "the requests ran while Redis slept: the service did not wait for it"
    );
    sleeper.join().unwrap();
    // After the sleep: one more request, delivered.
    let last = service.request(2);
    service.flush();
    let stats = service.shut_down();
    let redis = service.assert_counted(&stats);
    assert_eq!(redis.dropped, 0, "{redis:?}");
    assert_eq!(server.lrange(&key(last)).len(), 10);
    // A batch that timed out after it went out is unconfirmed: Redis runs
    // it when it wakes. The store holds the written events and perhaps
    // those (a batch that never went out whole is failed, and not there).
    let stored = stored(&server);
    assert!(
        redis.written <= stored && stored <= redis.written + redis.unconfirmed,
        "stored {stored}, {redis:?}"
    );
}

/// How long an awake server may take to answer a PING: far more than an
/// awake Redis needs even on a loaded machine (one slow but awake, read as
/// asleep, would let the test go on before its DEBUG SLEEP began), and
/// short against the 2 s sleep, so that most of it is left once seen.
const AWAKE_WITHIN: Duration = Duration::from_millis(500);

/// Whether the server answers a PING within [`AWAKE_WITHIN`].
fn server_is_awake(server: &RedisServer) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", server.port())) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(AWAKE_WITHIN));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok()
}

#[test]
fn a_key_of_another_type_fails_its_requests_events_only() {
    use tracing_osprofiler::{HmacAlgorithm, Profile, ProfileExt as _, Signer, TraceInfo};

    let server = RedisServer::start();
    let mut service = Service::new(Redis::new(&server.url()).unwrap());
    let first = service.request(1);
    service.flush();
    // Someone made the request's key a string; then a caller reuses the
    // request's token: its LPUSH gets WRONGTYPE.
    assert_eq!(server.command(&["DEL", &key(first)]), ":1");
    assert_eq!(server.command(&["SET", &key(first), "not a list"]), "+OK");
    let again = service.in_service(|| {
        let profile = Profile::with_trace_info(
            TraceInfo::new(first, None),
            Signer::new("K", HmacAlgorithm::Sha1),
        );
        let root = profile.start(|| tracing::info_span!("again"));
        root.point_ids().unwrap().base_id
    });
    assert_eq!(again, first);
    service.events += 2;
    let other = service.request(1);
    service.flush();
    let stats = service.shut_down();
    let redis = service.assert_counted(&stats);
    assert_eq!((redis.failed, redis.dropped), (2, 0), "{redis:?}");
    assert_eq!(server.command(&["GET", &key(first)]), "$not a list");
    assert_eq!(server.lrange(&key(other)).len(), 6);
}
