//! What the sink stores: exactly osprofiler 4.4's layout, event for event
//! the lines of the log file written beside it.

use std::time::Duration;

use serde_json::Value;
use tracing_osprofiler::format::{parse_line, Phase};
use tracing_osprofiler::writer::{ProfileWriter, Redis};

use crate::support::redis::RedisServer;
use crate::{key, Service};

/// The store's documents of `base`, in the order they were pushed.
fn documents(server: &RedisServer, base: tracing_osprofiler::Id) -> Vec<Value> {
    let mut docs: Vec<Value> = server
        .lrange(&key(base))
        .iter()
        .map(|text| serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}")))
        .collect();
    docs.reverse();
    docs
}

#[test]
fn each_start_and_stop_is_one_lpush_of_osprofilers_document_matching_the_log_line() {
    let server = RedisServer::start();
    let mut service = Service::new(Redis::new(&server.url()).unwrap());
    let bases: Vec<_> = (0..3).map(|i| service.request(i + 1)).collect();
    service.flush();
    let stats = service.shut_down();
    let redis = service.assert_counted(&stats);
    assert_eq!(
        (redis.written, redis.dropped, redis.failed),
        (service.events, 0, 0)
    );

    // One key per request, nothing else.
    let mut expected_keys: Vec<String> = bases.iter().map(|b| key(*b)).collect();
    expected_keys.sort();
    assert_eq!(server.keys("*"), expected_keys);
    assert_eq!(
        server.command(&["TTL", &key(bases[0])]),
        ":-1",
        "no TTL by default"
    );

    let log = service.log();
    for base in bases {
        let lines: Vec<_> = log
            .lines()
            .map(|l| parse_line(l.as_bytes()).unwrap())
            .filter(|l| l.ids.base_id == base)
            .collect();
        let docs = documents(&server, base);
        assert_eq!(docs.len(), lines.len());
        for (doc, line) in docs.iter().zip(&lines) {
            let object = doc.as_object().unwrap();
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            let mut sorted_expected = [
                "name",
                "base_id",
                "trace_id",
                "parent_id",
                "timestamp",
                "info",
                "project",
                "service",
            ];
            sorted_expected.sort_unstable();
            assert_eq!(keys, sorted_expected, "{doc}");
            assert_eq!(
                doc["name"],
                format!("{}{}", line.name, line.phase.suffix()),
                "{doc}"
            );
            assert_eq!(doc["base_id"], line.ids.base_id.to_string());
            assert_eq!(doc["parent_id"], line.ids.parent_id.to_string());
            assert_eq!(doc["trace_id"], line.ids.trace_id.to_string());
            // %Y-%m-%dT%H:%M:%S.%f, UTC, the log line's own timestamp.
            assert_eq!(doc["timestamp"], line.timestamp.to_string());
            assert_eq!(doc["project"], "rust-project");
            assert_eq!(doc["service"], "rust-a");
            assert_eq!(doc["info"]["host"], "rust-host");
            match line.phase {
                Phase::Start if line.name == "wsgi" => {
                    assert_eq!(
                        doc["info"]["request"],
                        serde_json::json!({
                            "path": "/v2/items", "query": "limit=1",
                            "method": "GET", "scheme": "http"
                        })
                    );
                }
                Phase::Start => {
                    assert!(doc["info"].get("request").is_none(), "{doc}");
                    if line.name == "db" {
                        assert_eq!(doc["info"]["fields"]["statement"], "SELECT 1");
                    }
                }
                Phase::Stop => {
                    // The log's duration, to the microsecond.
                    let duration = doc["info"]["duration"].as_f64().expect("duration");
                    assert_eq!(
                        format!("{duration:.6}"),
                        format!("{:.6}", line.duration.unwrap())
                    );
                    assert!(doc["info"].get("etype").is_none());
                }
            }
        }
    }
}

#[test]
fn password_database_and_ttl_are_honoured() {
    let server = RedisServer::start_with_password("s3cret pass");
    let url = format!("redis://:s3cret%20pass@127.0.0.1:{}/3", server.port());
    let mut service = Service::new(Redis::new(&url).unwrap().with_ttl(Duration::from_secs(600)));
    let base = service.request(2);
    service.flush();
    let stats = service.shut_down();
    let redis = service.assert_counted(&stats);
    assert_eq!(redis.written, service.events);

    let replies = server.commands(&[
        &["LLEN", &key(base)],
        &["SELECT", "3"],
        &["LLEN", &key(base)],
        &["TTL", &key(base)],
    ]);
    assert_eq!(replies[0], ":0", "nothing in database 0");
    assert_eq!(replies[2], format!(":{}", service.events));
    let ttl: i64 = replies[3][1..].parse().unwrap();
    assert!((1..=600).contains(&ttl), "TTL {ttl}");
}

#[test]
fn a_wrong_password_is_an_outage_counted_not_an_error() {
    let server = RedisServer::start_with_password("right");
    let url = format!("redis://:wrong@127.0.0.1:{}", server.port());
    let mut service =
        Service::with_flush_timeout(Redis::new(&url).unwrap(), Duration::from_millis(500));
    service.request(1);
    let stats = service.shut_down();
    let redis = service.assert_counted(&stats);
    assert_eq!(redis.written, 0);
}

#[test]
fn the_connection_string_selects_the_sink() {
    let server = RedisServer::start();
    let (writer, guard) = ProfileWriter::builder()
        .with_connection_string(&server.url())
        .unwrap()
        .build()
        .unwrap();
    assert!(writer
        .stats()
        .sink(tracing_osprofiler::writer::SinkKind::Redis)
        .is_some());
    drop(guard);

    let err = ProfileWriter::builder()
        .with_connection_string("rediss://:topsecret@127.0.0.1:1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS"), "{err}");
    assert!(!err.contains("topsecret"), "{err}");
}
