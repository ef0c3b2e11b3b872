use std::fs;
use std::time::Duration;

use super::*;
use crate::format::{Phase, PointIds, PointName, Timestamp};
use crate::Id;

fn event(name: &'static str) -> PointEvent {
    let id = Id::new_v4();
    PointEvent {
        phase: Phase::Start,
        ids: PointIds {
            base_id: id,
            parent_id: id,
            trace_id: Id::new_v4(),
        },
        name: PointName::new(name),
        timestamp: Timestamp::now(),
        started: Timestamp::now(),
        duration_nanos: 0,
        busy: crate::point::MaybeBusy::UNKNOWN,
        slow: false,
        facts: None,
    }
}

fn lines_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|path| {
            fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|line| line.rsplit(' ').next().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn guard_drop_writes_every_queued_line() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = RollingFile::new(dir.path()).build().unwrap();
    for _ in 0..10_000 {
        writer.send_event(event("x")).unwrap();
    }
    drop(guard);
    assert_eq!(lines_in(dir.path()).len(), 10_000);
    assert_eq!(writer.stats().file().unwrap().written, 10_000);
    assert!(writer.send_event(event("late")).is_err());
}

#[test]
fn flush_writes_what_was_queued_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = RollingFile::new(dir.path()).build().unwrap();
    writer.send_event(event("before")).unwrap();
    guard.flush(Duration::MAX).unwrap();
    assert_eq!(lines_in(dir.path()), ["before-start"]);
    writer.send_event(event("after")).unwrap();
    drop(guard);
    assert_eq!(lines_in(dir.path()), ["before-start", "after-start"]);
}

#[test]
fn a_deleted_directory_is_recreated() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("logs");
    let mut sink = FileSink::open(
        &RollingFile::new(&dir).with_rotation(Rotation::NEVER),
        OffsetDateTime::now_utc,
    )
    .unwrap();
    sink.write(&[event("before")]);
    fs::remove_dir_all(&dir).unwrap();
    sink.write(&[event("after")]);
    assert_eq!(lines_in(&dir), ["after-start"]);
    assert_eq!(sink.counters.snapshot().written, 2);
    assert_eq!(sink.counters.snapshot().failed, 0);
}

#[test]
fn a_failing_file_is_tried_again_at_most_once_a_second() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("logs");
    let mut sink = FileSink::open(
        &RollingFile::new(&dir).with_rotation(Rotation::NEVER),
        OffsetDateTime::now_utc,
    )
    .unwrap();
    // A file where the directory should be: it cannot be re-created.
    fs::remove_dir_all(&dir).unwrap();
    fs::write(&dir, "in the way").unwrap();
    sink.write(&[event("a"), event("b")]);
    assert_eq!(sink.counters.snapshot().failed, 2);
    fs::remove_file(&dir).unwrap();
    // Within the second, not even tried.
    sink.write(&[event("c")]);
    assert_eq!(sink.counters.snapshot().failed, 3);
    assert!(!dir.exists());
    sink.retry_at = Some(Instant::now());
    sink.write(&[event("d")]);
    assert_eq!(lines_in(&dir), ["d-start"]);
    assert_eq!(sink.counters.snapshot().written, 1);
}

#[test]
fn rotation_follows_the_clock() {
    fn minute_one() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap()
    }
    fn minute_two() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_764_000_060).unwrap()
    }
    let dir = tempfile::tempdir().unwrap();
    let config = RollingFile::new(dir.path()).with_rotation(Rotation::MINUTELY);
    let mut sink = FileSink::open(&config, minute_one).unwrap();
    sink.write(&[event("one")]);
    sink.clock = minute_two;
    sink.write(&[event("two")]);
    let names: Vec<String> = {
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names,
        [
            "osprofiler.2025-11-24-16-00.log",
            "osprofiler.2025-11-24-16-01.log"
        ]
    );
    assert_eq!(lines_in(dir.path()), ["one-start", "two-start"]);
}

#[test]
fn unwritable_directory_is_a_clear_error() {
    let err = RollingFile::new("/proc/self/cannot-create-here")
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot create log directory /proc/self/cannot-create-here: "),
        "{err}"
    );
}
