//! The layer writing through real files: flush on guard drop, two layers in
//! one subscriber, shutdown under load, a full disk, and lossy mode's
//! dropped-event count. (Rotation and pruning follow a clock that the unit
//! tests of `writer::file` step; `tests/soak.rs` crosses a real minute.)

use crate::support;

use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::Points;
use tracing::info_span;
use tracing_osprofiler::writer::{ProfileWriter, RollingFile, Rotation};
use tracing_osprofiler::{HmacAlgorithm, OsProfilerLayer, Profile, Signer};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Serves one profiled request of `1 + children` points.
fn request(children: usize) {
    let root = Profile::new(Signer::new("k", HmacAlgorithm::Sha1)).start(|| info_span!("request"));
    let _root = root.enter();
    for _ in 0..children {
        let _child = info_span!("child").entered();
    }
}

fn with_layer(writer: ProfileWriter, f: impl FnOnce()) {
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(OsProfilerLayer::new(writer)),
        f,
    );
}

fn read_dir_sorted(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn dropping_the_guard_flushes_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = RollingFile::new(dir.path())
        .with_prefix("api")
        .with_suffix("prof")
        .build()
        .unwrap();
    let stats = writer.stats();
    with_layer(writer, || {
        for _ in 0..500 {
            request(3);
        }
    });
    drop(guard);
    let files = read_dir_sorted(dir.path());
    assert_eq!(files.len(), 1);
    let (name, bytes) = &files[0];
    // PREFIX.YYYY-MM-DD-HH.SUFFIX
    assert!(
        name.starts_with("api.") && name.ends_with(".prof"),
        "{name}"
    );
    assert_eq!(
        name.len(),
        "api.".len() + "2026-11-25-20".len() + ".prof".len(),
        "{name}"
    );
    let points = Points::parse(bytes);
    assert_eq!(points.len(), 500 * 4);
    assert_eq!(points.check_trees(&Default::default()).len(), 500);
    assert_eq!(stats.events_dropped(), 0);
    let file = stats.file().unwrap();
    assert_eq!((file.written, file.dropped, file.failed), (4_000, 0, 0));
}

#[test]
fn two_layers_in_one_subscriber_each_write_every_point() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (w1, g1) = RollingFile::new(dirs[0].path()).build().unwrap();
    let (w2, g2) = RollingFile::new(dirs[1].path()).build().unwrap();
    let (l1, l2) = (OsProfilerLayer::new(w1), OsProfilerLayer::new(w2));
    let (s1, s2) = (l1.stats(), l2.stats());
    let subscriber = tracing_subscriber::registry().with(l1).with(l2);
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..10 {
            request(2);
        }
    });
    drop((g1, g2));
    let files: Vec<Vec<u8>> = dirs
        .iter()
        .map(|dir| read_dir_sorted(dir.path()).remove(0).1)
        .collect();
    let (a, b) = (Points::parse(&files[0]), Points::parse(&files[1]));
    assert_eq!((a.len(), b.len()), (30, 30));
    assert_eq!(a.check_trees(&Default::default()).len(), 10);
    // One point, one set of ids and times: both files hold the same lines.
    assert_eq!(files[0], files[1]);
    for stats in [s1, s2] {
        assert_eq!((stats.points_started(), stats.points_live()), (30, 0));
        assert_eq!(stats.events_refused(), 0);
    }
}

#[test]
fn shutdown_under_load_writes_or_counts_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = ProfileWriter::builder()
        .with_file(RollingFile::new(dir.path()).with_rotation(Rotation::NEVER))
        .with_queue_limit(1_000)
        .build()
        .unwrap();
    let stats = writer.stats();
    let layer = OsProfilerLayer::new(writer);
    let layer_stats = layer.stats();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let dispatch = dispatch.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    while !stop.load(Ordering::Relaxed) {
                        request(3);
                    }
                });
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    drop(guard);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    // Points open at the shutdown have a start and no stop: read line by line.
    let mut lines = 0;
    for (_, bytes) in read_dir_sorted(dir.path()) {
        assert!(bytes.is_empty() || bytes.ends_with(b"\n"));
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            tracing_osprofiler::format::parse_line(line).unwrap();
            lines += 1;
        }
    }
    let file = stats.file().unwrap();
    let made = 2 * layer_stats.points_started();
    assert!(
        layer_stats.events_refused() > 0,
        "points made after shutdown"
    );
    assert_eq!(
        lines, file.written,
        "every line counted as written is there"
    );
    assert_eq!(
        file.written
            + file.failed
            + file.dropped
            + stats.events_dropped()
            + layer_stats.events_refused(),
        made,
        "every event is written or counted: {stats:?} {layer_stats:?}"
    );
}

#[test]
fn an_endless_flush_timeout_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = ProfileWriter::builder()
        .with_file(RollingFile::new(dir.path()))
        .with_flush_timeout(Duration::MAX)
        .build()
        .unwrap();
    with_layer(writer.clone(), || request(1));
    guard.flush(Duration::MAX).unwrap();
    drop(guard);
    assert_eq!(writer.stats().file().unwrap().written, 4);
}

/// A `MakeWriter` over `/dev/full`: every write fails with ENOSPC.
struct DevFull(File);

impl<'a> MakeWriter<'a> for DevFull {
    type Writer = &'a File;

    fn make_writer(&'a self) -> &'a File {
        &self.0
    }
}

#[test]
fn a_full_disk_behind_a_plain_make_writer_is_counted_not_fatal() {
    let full = File::options().write(true).open("/dev/full").unwrap();
    let layer = OsProfilerLayer::from_make_writer(DevFull(full));
    let stats = layer.stats();
    let started = Instant::now();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..1_000 {
            request(1);
        }
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(stats.points_started(), 2_000);
    assert_eq!(
        stats.events_refused(),
        4_000,
        "every refused line is counted"
    );
    assert_eq!(stats.points_live(), 0);
}

#[test]
fn a_full_disk_behind_the_rolling_file_is_counted_not_fatal() {
    // The log file is a symlink to /dev/full (never rotated, so its name is
    // known in advance): the writer thread's writes fail with ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("full.log")).unwrap();
    let (writer, guard) = RollingFile::new(dir.path())
        .with_rotation(Rotation::NEVER)
        .with_prefix("full")
        .build()
        .unwrap();
    let stats = writer.stats();
    let started = Instant::now();
    with_layer(writer, || {
        for _ in 0..1_000 {
            request(1);
        }
    });
    drop(guard);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(stats.file().unwrap().failed, 4_000);
    assert_eq!(stats.file().unwrap().written, 0);
    assert_eq!(stats.events_dropped(), 0);
}

#[test]
fn lossy_mode_counts_every_dropped_line() {
    // The file is a FIFO whose reader does not read until the requests are
    // done, so the writer thread blocks and the small buffer overflows.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.log");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut file = File::open(fifo).unwrap();
            go_rx.recv().unwrap();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let (writer, guard) = ProfileWriter::builder()
        .with_file(
            RollingFile::new(dir.path())
                .with_rotation(Rotation::NEVER)
                .with_prefix("slow"),
        )
        .with_lossy(true)
        .with_queue_limit(16)
        .build()
        .unwrap();
    let stats = writer.stats();
    let requests = 5_000;
    let started = Instant::now();
    with_layer(writer, || {
        for _ in 0..requests {
            request(1);
        }
    });
    // Lossy: the blocked file never made a request wait.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let dropped = stats.events_dropped();
    assert!(dropped > 0, "the buffer must have overflowed");
    go_tx.send(()).unwrap();
    drop(guard);
    let bytes = reader.join().unwrap();
    // Every line is either in the file, whole, or counted as dropped.
    let written = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        tracing_osprofiler::format::parse_line(line).unwrap();
    }
    assert_eq!(written + stats.events_dropped(), requests * 4);
    assert_eq!(stats.file().unwrap().written, written);
    assert_eq!(stats.file().unwrap().failed, 0);
}
