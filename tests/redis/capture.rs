//! Tail capture with the Redis sink: a kept request is stored whole, in
//! osprofiler's layout, its root's start saying why in `info.capture`; a
//! discarded one leaves no key; osprofiler's own CLI reads the kept tree.

use std::time::Duration;

use serde_json::Value;
use tracing_osprofiler::point::RequestInfo;
use tracing_osprofiler::writer::Redis;
use tracing_osprofiler::{CapturePolicy, Id, ProfileExt as _};

use crate::support::redis::RedisServer;
use crate::{key, osprofiler_show, Service};

#[test]
fn a_kept_request_is_stored_whole_and_says_why_and_a_discarded_one_leaves_no_key() {
    let server = RedisServer::start();
    let mut service = Service::new(Redis::new(&server.url()).unwrap());
    let capture = CapturePolicy::new()
        // Wide apart from the slow one's sleep, so that a busy machine
        // cannot make the fast one slow.
        .with_keep_slower_than(Some(Duration::from_millis(200)))
        .build();
    let request = |sleep: u64| -> Id {
        service.in_service(|| {
            let info = RequestInfo::new("GET", "/v2/items", "http");
            let root = capture.start_request(info, || tracing::info_span!("wsgi"));
            let base = root.point_ids().expect("captured").base_id;
            root.in_scope(|| {
                let _db = tracing::info_span!("db").entered();
                let _row = tracing::info_span!("row").entered();
                std::thread::sleep(Duration::from_millis(sleep));
            });
            base
        })
    };
    let fast = request(0);
    let slow = request(250);
    service.flush();
    let stats = service.shut_down();
    assert_eq!(stats.events_dropped(), 0);
    assert_eq!(capture.stats().kept_slow(), 1);
    assert_eq!(capture.stats().discarded(), 1);

    assert_eq!(server.keys("*"), vec![key(slow)], "nothing of {fast}");
    let mut docs: Vec<Value> = server
        .lrange(&key(slow))
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
    docs.reverse();
    assert_eq!(
        docs.len(),
        6,
        "3 points, a start and a stop each: {docs:#?}"
    );
    let root_start = docs
        .iter()
        .find(|d| d["name"] == "wsgi-start")
        .expect("the root's start");
    assert_eq!(root_start["info"]["capture"]["kept"], "slow");
    assert_eq!(root_start["info"]["capture"]["truncated"], 0);
    assert_eq!(root_start["info"]["request"]["path"], "/v2/items");
    for doc in docs.iter().filter(|d| d["name"] != "wsgi-start") {
        assert!(doc["info"].get("capture").is_none(), "{doc}");
    }

    // osprofiler's own reader rebuilds the tree.
    let report = osprofiler_show(&server.url(), slow);
    let wsgi = &report["children"][0];
    assert_eq!(wsgi["info"]["name"], "wsgi", "{report:#}");
    assert_eq!(wsgi["children"][0]["info"]["name"], "db", "{report:#}");
    assert_eq!(
        wsgi["children"][0]["children"][0]["info"]["name"], "row",
        "{report:#}"
    );
}
