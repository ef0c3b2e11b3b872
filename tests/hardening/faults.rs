//! Faults of the log destination, with the real layer and the real rolling
//! file: a full disk, a writer that blocks, the directory deleted while
//! running. The profiled "service" code must keep running with bounded added
//! latency, the problem is reported once (not per line), every line is either
//! written or counted, and writing resumes when the destination comes back.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::child::child_test;
use crate::{serve, with_layer};
use tracing_osprofiler::format::parse_line;
use tracing_osprofiler::writer::{ProfileWriter, RollingFile, Rotation};

fn lines_in(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let text = std::fs::read_to_string(&path).unwrap();
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    lines
}

/// The child half of `a_full_disk_is_reported_once_and_writing_resumes`:
/// its stderr is what the parent inspects.
#[test]
#[ignore = "the child half of another test, which runs it in a process of its own"]
fn child_full_disk() {
    let Some(dir) = std::env::var_os("OSPROFILER_FULL_DISK_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    // The file the writer opens is /dev/full: every write fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", dir.join("osprofiler.log")).unwrap();
    let (writer, guard) = RollingFile::new(&dir)
        .with_rotation(Rotation::NEVER)
        .build()
        .unwrap();
    let counters = writer.stats();
    with_layer(writer, |stats| {
        let slowest = serve(200, 4);
        assert!(slowest < Duration::from_secs(1), "{slowest:?}");
        // The queue took every line; the writer thread refuses them.
        assert_eq!(stats.events_refused(), 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while counters.file().unwrap().failed < 200 * 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(counters.file().unwrap().failed, 200 * 10);
        // Space comes back: the writer re-opens the file within a second.
        std::fs::remove_file(dir.join("osprofiler.log")).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        serve(10, 4);
    });
    drop(guard);
    assert_eq!(counters.file().unwrap().failed, 200 * 10);
    assert_eq!(counters.events_dropped(), 0);
    let lines = lines_in(&dir);
    assert_eq!(lines.len(), 10 * 10, "every line after recovery is written");
    assert!(lines.iter().all(|l| parse_line(l.as_bytes()).is_ok()));
}

#[test]
fn a_full_disk_is_reported_once_and_writing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let output = child_test("faults::child_full_disk")
        .env("OSPROFILER_FULL_DISK_DIR", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stderr}");
    assert_eq!(
        stderr.matches("the file sink cannot deliver to").count(),
        1,
        "reported once, not per line:\n{stderr}"
    );
    assert_eq!(stderr.matches("delivers to").count(), 1, "{stderr}");
}

#[test]
fn a_blocking_writer_adds_bounded_latency_and_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("osprofiler.log");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    // A reader that opens the pipe but does not read until told to: once the
    // pipe's buffer is full, every write of the writer thread blocks.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut pipe = OpenOptions::new().read(true).open(&fifo).unwrap();
            wait.recv().unwrap();
            let mut all = Vec::new();
            pipe.read_to_end(&mut all).unwrap();
            all
        })
    };
    let (writer, guard) = ProfileWriter::builder()
        .with_file(RollingFile::new(dir.path()).with_rotation(Rotation::NEVER))
        .with_queue_limit(1_000)
        .with_max_wait(Duration::from_millis(100))
        .build()
        .unwrap();
    let counters = writer.stats();
    let requests = 2_000;
    let spans = 4;
    let slowest = with_layer(writer, |_| serve(requests, spans));
    // At most one wait of max_wait per stall, plus scheduling noise.
    assert!(
        slowest < Duration::from_secs(2),
        "slowest request {slowest:?}"
    );
    let dropped = counters.events_dropped();
    assert!(dropped > 0, "the pipe cannot hold {} lines", requests * 10);
    go.send(()).unwrap();
    drop(guard);
    let written = reader.join().unwrap();
    let written = String::from_utf8(written).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert!(
        lines.iter().all(|l| parse_line(l.as_bytes()).is_ok()),
        "no torn line"
    );
    assert_eq!(
        lines.len() as u64 + dropped,
        (requests * (spans + 1) * 2) as u64,
        "every line is written or counted"
    );
    assert_eq!(counters.file().unwrap().failed, 0);
}

#[test]
fn a_deleted_directory_is_recreated_while_the_service_runs() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("profile-logs");
    let (writer, guard) = RollingFile::new(&dir)
        .with_rotation(Rotation::NEVER)
        .build()
        .unwrap();
    let counters = writer.stats();
    with_layer(writer, |_| {
        serve(10, 4);
        // The first lines reach the file before it goes, whatever the load
        // (a line written into the removed file would be lost uncounted).
        guard.flush(Duration::from_secs(10)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        serve(10, 4);
    });
    drop(guard);
    let lines = lines_in(&dir);
    assert_eq!(
        lines.len() as u64 + counters.file().unwrap().failed,
        10 * 10
    );
    assert_eq!(
        lines.len(),
        10 * 10,
        "the directory came back at the next batch"
    );
}

#[test]
fn creating_the_writer_on_an_unwritable_place_is_an_error_not_a_panic() {
    let file = tempfile::NamedTempFile::new().unwrap();
    // A regular file where the directory should be.
    let err = RollingFile::new(file.path().join("logs"))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot create log directory"),
        "{err}"
    );
}
