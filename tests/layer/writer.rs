//! The layer writing through real files: flush on guard drop, rotation, a
//! full disk, a deleted directory, and lossy mode's dropped-line count.

use crate::support;

use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use support::Points;
use tracing::info_span;
use tracing_osprofiler::writer::{RollingFile, Rotation};
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

fn with_layer<W>(writer: W, f: impl FnOnce())
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
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
    let counters = writer.counters();
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
    assert_eq!(counters.dropped_lines(), 0);
    assert_eq!(counters.failed_lines(), 0);
}

/// Sleeps until the wall clock is just past the start of the next minute.
fn sleep_into_next_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_minute = now.as_millis() % 60_000;
    std::thread::sleep(Duration::from_millis((60_000 - into_minute + 300) as u64));
}

/// Rotation, file pruning and a directory deleted under the writer, in one
/// test so that the suite waits for a minute boundary only once.
#[test]
fn rotation_pruning_and_a_deleted_directory() {
    // Start early enough in a minute that the first batch lands in one file.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    if now.as_secs() % 60 > 40 {
        sleep_into_next_minute();
    }
    let rotating = tempfile::tempdir().unwrap();
    let pruned = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let doomed = parent.path().join("logs");
    let build = |dir: &Path, max_files: Option<usize>| {
        let builder = RollingFile::new(dir).with_rotation(Rotation::MINUTELY);
        match max_files {
            Some(n) => builder.with_max_files(n),
            None => builder,
        }
        .build()
        .unwrap()
    };
    let (w_rotating, g_rotating) = build(rotating.path(), None);
    // 1 is taken as 2 (see `with_max_files`).
    let (w_pruned, g_pruned) = build(pruned.path(), Some(1));
    let (w_doomed, g_doomed) = build(&doomed, None);
    let doomed_counters = w_doomed.counters();

    with_layer(w_rotating.clone(), || request(1));
    with_layer(w_pruned.clone(), || request(1));
    with_layer(w_doomed.clone(), || {
        request(1);
        // Delete the directory while lines are being written: nothing may
        // panic, block or slow the request path down.
        let started = Instant::now();
        let deleter = {
            let doomed = doomed.clone();
            std::thread::spawn(move || std::fs::remove_dir_all(doomed).unwrap())
        };
        for _ in 0..2_000 {
            request(2);
        }
        deleter.join().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    });
    // Let the writer thread take the lines before the minute turns.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!doomed.exists());

    sleep_into_next_minute();
    with_layer(w_rotating, || request(2));
    with_layer(w_pruned, || request(2));
    with_layer(w_doomed, || request(2));
    drop((g_rotating, g_pruned, g_doomed));

    // Two files, one per minute, each holding whole requests.
    let files = read_dir_sorted(rotating.path());
    assert_eq!(
        files.len(),
        2,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, bytes), points) in files.iter().zip([2, 3]) {
        assert!(
            name.starts_with("osprofiler.") && name.ends_with(".log"),
            "{name}"
        );
        assert_eq!(Points::parse(bytes).len(), points, "{name}");
    }
    // with_max_files(1) keeps 2 files: the file of each minute, whole.
    let files = read_dir_sorted(pruned.path());
    assert_eq!(files.len(), 2);
    assert_eq!(Points::parse(&files[0].1).len(), 2);
    assert_eq!(Points::parse(&files[1].1).len(), 3);
    // The deleted directory is there again: the newest file holds the new
    // minute's request, whole. Lines written around the deletion are either
    // in a file of the recreated directory or counted as failed (some may
    // have gone into the deleted file before the writer noticed); every line
    // that is there parses.
    let files = read_dir_sorted(&doomed);
    let (newest, bytes) = files.last().expect("the directory is recreated");
    assert_eq!(Points::parse(bytes).len(), 3, "{newest}");
    let mut lines_there = 0;
    for (_, bytes) in &files {
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            tracing_osprofiler::format::parse_line(line).unwrap();
            lines_there += 1;
        }
    }
    let total = 2 * (2 + 2_000 * 3 + 3);
    assert!(
        lines_there + doomed_counters.failed_lines() as usize <= total,
        "{lines_there} lines in files, {} failed, {total} written",
        doomed_counters.failed_lines()
    );
    assert_eq!(doomed_counters.dropped_lines(), 0);
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
    let layer = OsProfilerLayer::new(DevFull(full));
    let stats = layer.stats();
    let started = Instant::now();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..1_000 {
            request(1);
        }
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(stats.points_started(), 2_000);
    assert_eq!(stats.write_errors(), 4_000, "every refused line is counted");
    assert_eq!(stats.live_points(), 0);
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
    let counters = writer.counters();
    let started = Instant::now();
    with_layer(writer, || {
        for _ in 0..1_000 {
            request(1);
        }
    });
    drop(guard);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(counters.failed_lines(), 4_000);
    assert_eq!(counters.dropped_lines(), 0);
    // The same through tracing-appender's plain non_blocking writer: no
    // crash and no stall either, though nothing counts the lost lines.
    let (non_blocking, guard) =
        tracing_appender::non_blocking(File::options().write(true).open("/dev/full").unwrap());
    with_layer(non_blocking, || {
        for _ in 0..1_000 {
            request(1);
        }
    });
    drop(guard);
    assert!(started.elapsed() < Duration::from_secs(20));
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
    let (writer, guard) = RollingFile::new(dir.path())
        .with_rotation(Rotation::NEVER)
        .with_prefix("slow")
        .with_lossy(true)
        .with_buffered_lines_limit(16)
        .build()
        .unwrap();
    let counters = writer.counters();
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
    let dropped = counters.dropped_lines();
    assert!(dropped > 0, "the buffer must have overflowed");
    go_tx.send(()).unwrap();
    drop(guard);
    let bytes = reader.join().unwrap();
    // Every line is either in the file, whole, or counted as dropped.
    let written = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        tracing_osprofiler::format::parse_line(line).unwrap();
    }
    assert_eq!(written + counters.dropped_lines(), requests * 4);
    assert_eq!(counters.failed_lines(), 0);
}
