//! Many threads serving profiled and unprofiled requests at once through one
//! `Dispatch`: no cross-talk between requests, every start has exactly one
//! stop, unprofiled requests write nothing.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier, Mutex};

use support::Capture;
use tracing::{info_span, Dispatch};
use tracing_osprofiler::{
    current_trace_headers, HmacAlgorithm, HmacKeys, Id, OsProfilerLayer, Profile, ProfileExt,
    Signer, TraceInfo,
};
use tracing_subscriber::prelude::*;

const THREADS: u64 = 8;
const REQUESTS_PER_THREAD: u64 = 60;
/// Points per profiled request: the root, three steps each with one inner
/// span, and one span made after a downstream call.
const POINTS_PER_REQUEST: usize = 1 + 3 * 2 + 1;

fn serve(tag: u64, profile: Option<Profile>) -> Option<Id> {
    let root = match profile {
        Some(profile) => profile.start(|| info_span!("request", req = tag)),
        None => info_span!("request", req = tag),
    };
    let base = root.point_ids().map(|ids| ids.base_id);
    root.in_scope(|| {
        for _ in 0..3 {
            let _step = info_span!("step", req = tag).entered();
            std::thread::yield_now();
            let _inner = info_span!("inner", req = tag).entered();
        }
        // What a client would send downstream: this request's ids only.
        support::assert_downstream_headers(current_trace_headers(), base, &tag.to_string());
        let _after = info_span!("after_call", req = tag).entered();
    });
    base
}

#[test]
fn threads_never_mix_requests() {
    let capture = Capture::new();
    let layer = OsProfilerLayer::from_make_writer(capture.clone()).with_fields(true);
    let stats = layer.stats();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let bases: Arc<Mutex<HashMap<Id, u64>>> = Arc::default();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = dispatch.clone();
            let barrier = Arc::clone(&barrier);
            let bases = Arc::clone(&bases);
            std::thread::spawn(move || {
                let _default = tracing::dispatcher::set_default(&dispatch);
                barrier.wait();
                for r in 0..REQUESTS_PER_THREAD {
                    let tag = t * 1000 + r;
                    // Half the requests carry a token (half of those signed
                    // by the caller with a parent id), half do not.
                    let profile = match r % 4 {
                        0 => Some(Profile::new(Signer::new("SECRET_KEY", HmacAlgorithm::Sha1))),
                        1 => {
                            let headers = Signer::new("SECRET_KEY", HmacAlgorithm::Sha256)
                                .sign(&TraceInfo::new(Id::new_v4(), Some(Id::new_v4())));
                            Some(
                                HmacKeys::new(["SECRET_KEY"])
                                    .verify(headers.trace_info(), headers.trace_hmac())
                                    .unwrap(),
                            )
                        }
                        _ => None,
                    };
                    let profiled = profile.is_some();
                    let base = serve(tag, profile);
                    assert_eq!(base.is_some(), profiled);
                    if let Some(base) = base {
                        assert!(bases.lock().unwrap().insert(base, tag).is_none());
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(dispatch);

    let bases = bases.lock().unwrap().clone();
    assert_eq!(bases.len() as u64, THREADS * REQUESTS_PER_THREAD / 2);
    assert_eq!(stats.points_live(), 0);
    assert_eq!(
        stats.points_started(),
        (bases.len() * POINTS_PER_REQUEST) as u64
    );

    let points = capture.points();
    // The incoming parents are the roots' parent ids that are not base ids.
    let incoming: HashSet<Id> = points
        .by_trace
        .values()
        .filter(|p| p.name == "request" && p.ids.parent_id != p.ids.base_id)
        .map(|p| p.ids.parent_id)
        .collect();
    assert_eq!(incoming.len() as u64, THREADS * REQUESTS_PER_THREAD / 4);
    let trees = points.check_trees(&incoming);
    assert_eq!(trees.len(), bases.len());
    for (base, group) in &trees {
        let tag = bases[base];
        assert_eq!(group.len(), POINTS_PER_REQUEST, "request {tag}");
        for point in group {
            let fields: serde_json::Value = serde_json::from_str(&point.start_extra).unwrap();
            assert_eq!(fields["req"], tag, "point {point:?} of request {tag}");
        }
        let roots: Vec<_> = group.iter().filter(|p| p.name == "request").collect();
        assert_eq!(roots.len(), 1);
        let root = roots[0];
        for step in group
            .iter()
            .filter(|p| p.name == "step" || p.name == "after_call")
        {
            assert_eq!(step.ids.parent_id, root.ids.trace_id);
        }
        for inner in group.iter().filter(|p| p.name == "inner") {
            let parent = points.by_trace[&inner.ids.parent_id].clone();
            assert_eq!(parent.name, "step");
        }
    }
}
