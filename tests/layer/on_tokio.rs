//! Hundreds of concurrent requests, profiled and not, on a multi-threaded
//! tokio runtime with the subscriber installed globally (hence a test binary
//! of its own): tasks move between worker threads, spans are entered and
//! exited on many polls, spawned tasks join their request, and no request's
//! ids leak into another.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use support::Capture;
use tracing::{info_span, Instrument};
use tracing_osprofiler::{
    current_trace_headers, HmacAlgorithm, Id, OsProfilerLayer, Profile, ProfileExt, Signer,
};
use tracing_subscriber::prelude::*;

const REQUESTS: u64 = 400;
/// Root, two steps with one inner span each, the spawned task's span and
/// one span inside it.
const POINTS_PER_REQUEST: usize = 1 + 2 * 2 + 2;

async fn serve(tag: u64, profiled: bool, all_open: Arc<tokio::sync::Barrier>) -> Option<Id> {
    let root = if profiled {
        Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))
            .start(|| info_span!("request", req = tag))
    } else {
        info_span!("request", req = tag)
    };
    let base = root.point_ids().map(|ids| ids.base_id);
    async move {
        for step in 0..2 {
            async {
                tokio::task::yield_now().await;
                if step == 0 {
                    // Every request is open at once here.
                    all_open.wait().await;
                }
                let inner = info_span!("inner", req = tag);
                tokio::time::sleep(Duration::from_millis(1))
                    .instrument(inner)
                    .await;
            }
            .instrument(info_span!("step", req = tag))
            .await;
        }
        let task = tokio::spawn(
            async move {
                let in_task = info_span!("in_task", req = tag);
                async {
                    tokio::task::yield_now().await;
                    current_trace_headers()
                }
                .instrument(in_task)
                .await
            }
            .instrument(info_span!("spawned", req = tag)),
        );
        let headers = task.await.unwrap();
        support::assert_downstream_headers(headers, base, &tag.to_string());
    }
    .instrument(root)
    .await;
    base
}

#[test]
fn hundreds_of_concurrent_requests_on_a_multi_threaded_runtime() {
    let capture = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(capture.clone()).with_fields(true);
    let stats = layer.stats();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let bases: HashMap<Id, u64> = runtime.block_on(async {
        let all_open = Arc::new(tokio::sync::Barrier::new(REQUESTS as usize));
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|tag| {
                let profiled = tag % 2 == 0;
                let all_open = Arc::clone(&all_open);
                tokio::spawn(async move { (tag, serve(tag, profiled, all_open).await) })
            })
            .collect();
        let mut bases = HashMap::new();
        for task in tasks {
            let (tag, base) = tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("requests finish")
                .unwrap();
            assert_eq!(base.is_some(), tag % 2 == 0);
            if let Some(base) = base {
                assert!(bases.insert(base, tag).is_none());
            }
        }
        bases
    });
    drop(runtime);

    assert_eq!(bases.len() as u64, REQUESTS / 2);
    assert_eq!(stats.points_live(), 0);
    let points = capture.points();
    let trees = points.check_trees(&HashSet::new());
    assert_eq!(trees.len(), bases.len());
    for (base, group) in &trees {
        let tag = bases[base];
        assert_eq!(tag % 2, 0, "an unprofiled request wrote points");
        assert_eq!(group.len(), POINTS_PER_REQUEST, "request {tag}");
        for point in group {
            let fields: serde_json::Value = serde_json::from_str(&point.start_extra).unwrap();
            assert_eq!(fields["req"], tag, "point {point:?} of request {tag}");
            let parent_name = if point.ids.parent_id == *base {
                "(base)".to_owned()
            } else {
                points.by_trace[&point.ids.parent_id].name.clone()
            };
            let expected_parent = match point.name.as_str() {
                "request" => "(base)",
                "step" | "spawned" => "request",
                "inner" => "step",
                "in_task" => "spawned",
                other => panic!("unexpected point {other}"),
            };
            assert_eq!(parent_name, expected_parent, "{point:?}");
        }
    }
}
