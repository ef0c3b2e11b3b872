//! Requests kept by tail capture, written by the real layer: `list` and
//! `show` say which were kept and why; a signed request says nothing.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osprof::list::{list, ListOptions};
use osprof::model::Tree;
use osprof::show::{self, find_request_noted, Selector, ShowOptions};
use osprof::source::Inputs;
use tracing_osprofiler::{
    CapturePolicy, HmacAlgorithm, Id, OsProfilerLayer, Profile, ProfileExt as _, Signer,
};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// A log of one signed request and two captured ones (slow, error); the
/// capture's fast request is discarded.
fn log() -> (tempfile::TempDir, Inputs, [Id; 3]) {
    let buffer = Buffer::default();
    let layer = OsProfilerLayer::from_make_writer(buffer.clone()).with_fields(true);
    let capture = CapturePolicy::new()
        // Wide apart from the slow one's sleep, so that a busy machine
        // cannot make the fast one slow.
        .with_keep_slower_than(Some(Duration::from_millis(200)))
        .with_keep_errors(true)
        .build();
    let ids = tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let signed = Profile::new(Signer::new("k", HmacAlgorithm::Sha1))
            .start(|| tracing::info_span!("signed"));
        let signed_id = signed.point_ids().unwrap().base_id;
        signed.in_scope(|| drop(tracing::info_span!("db")));
        drop(signed);
        drop(capture.start(|| tracing::info_span!("fast")));
        let slow = capture.start(|| tracing::info_span!("slow"));
        let slow_id = slow.point_ids().unwrap().base_id;
        slow.in_scope(|| {
            let _db = tracing::info_span!("db").entered();
            std::thread::sleep(Duration::from_millis(250));
        });
        drop(slow);
        let failed = capture.start(|| tracing::info_span!("failed"));
        let failed_id = failed.point_ids().unwrap().base_id;
        failed.in_scope(|| tracing::error!("boom"));
        drop(failed);
        [signed_id, slow_id, failed_id]
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.log");
    std::fs::write(&path, &*buffer.0.lock().unwrap()).unwrap();
    let inputs = Inputs::from_paths([&path]).unwrap();
    (dir, inputs, ids)
}

#[test]
fn list_says_which_requests_capture_kept_and_why() {
    let (_dir, inputs, [signed, slow, failed]) = log();
    let listed = list(&inputs, &ListOptions::new()).unwrap();
    assert_eq!(listed.requests.len(), 3, "the fast one was discarded");
    let kept = |id: Id| {
        listed
            .requests
            .iter()
            .find(|r| r.base_id == id)
            .unwrap()
            .kept
    };
    assert_eq!(kept(signed), None);
    assert_eq!(kept(slow), Some("slow"));
    assert_eq!(kept(failed), Some("error"));

    let mut text = Vec::new();
    listed.write(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("slow (kept: slow)"), "{text}");
    assert!(text.contains("failed (kept: error)"), "{text}");
    assert!(!text.contains("signed (kept"), "{text}");

    let json = list(
        &inputs,
        &ListOptions::new().with_format(osprof::Format::Json),
    )
    .unwrap();
    let mut out = Vec::new();
    json.write(&mut out).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let rows = value["requests"].as_array().unwrap();
    let row = |id: Id| {
        rows.iter()
            .find(|r| r["base_id"] == id.to_string())
            .unwrap()
    };
    assert_eq!(row(slow)["kept"], "slow");
    assert!(row(signed).get("kept").is_none(), "{}", row(signed));
}

#[test]
fn show_says_a_request_was_kept_by_capture() {
    let (_dir, inputs, [signed, slow, _]) = log();
    for (id, kept) in [(signed, None), (slow, Some("slow"))] {
        let found = find_request_noted(&inputs, &Selector::Id(id)).unwrap();
        assert_eq!(found.kept, kept);
        let tree = Tree::new(&found.request);
        let mut out = Vec::new();
        show::write(&tree, &ShowOptions::new().with_kept(found.kept), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.contains("kept by tail capture: slow"),
            kept.is_some(),
            "{text}"
        );
    }
}
