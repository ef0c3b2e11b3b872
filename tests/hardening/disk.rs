//! A real file system that fills up in the middle of a batch, and a log
//! directory that becomes read-only before a rotation: the file always
//! continues at a line boundary, and the counts are exact.
//!
//! Both run a child process of this test binary. The full disk is a 256 KiB
//! tmpfs mounted in a mount namespace of the child's own (`unshare` from
//! util-linux, as root or with a user namespace), so nothing is mounted on
//! the machine. The read-only directory is tested as an unprivileged user
//! (`setpriv`, since root ignores permissions), with the wall clock moved
//! an hour on by libfaketime to cross an hourly rotation.

use crate::support::child::child_args;
use crate::support::system::{self, LIBFAKETIME};
use crate::{serve, with_layer};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tracing_osprofiler::writer::{ProfileWriter, RollingFile, Rotation};

/// Every line of `bytes` is one whole line as the writer writes them: it
/// starts with a timestamp and has exactly the tokens of a start line (5)
/// or of a stop line (7, its busy time last). A fragment merged into another line fails this,
/// even where the lenient reader would find a line in it.
fn assert_whole_lines(bytes: &[u8]) -> u64 {
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "unterminated last line"
    );
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let mut lines = 0;
    for line in text.lines() {
        let tokens = line.split_whitespace().count();
        let parsed = tracing_osprofiler::format::parse_line(line.as_bytes())
            .unwrap_or_else(|e| panic!("{e}: {line:?}"));
        // A stop line ends with its busy time, one token after the name.
        let expected = match parsed.phase {
            tracing_osprofiler::format::Phase::Start => 5,
            tracing_osprofiler::format::Phase::Stop => 7,
        };
        if parsed.phase == tracing_osprofiler::format::Phase::Stop {
            assert!(
                parsed.busy.is_some(),
                "a stop line without its busy time: {line:?}"
            );
        }
        assert_eq!(tokens, expected, "a merged or torn line: {line:?}");
        assert!(
            line.starts_with("20"),
            "a line not starting with its timestamp: {line:?}"
        );
        lines += 1;
    }
    lines
}

/// The child half of `a_disk_that_fills_mid_batch_continues_at_a_line_boundary`.
#[test]
#[ignore = "the child half of another test, which runs it in a process of its own"]
fn child_filling_disk() {
    let Some(dir) = std::env::var_os("OSPROFILER_FILLING_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![b'x'; 160 * 1024]).unwrap();
    let (writer, guard) = ProfileWriter::builder()
        .with_file(RollingFile::new(&dir).with_rotation(Rotation::NEVER))
        .build()
        .unwrap();
    let stats = writer.stats();
    let layer_stats = with_layer(writer, |layer_stats| {
        // About 10 lines of 150 to 180 bytes per request: far more than the
        // ~90 KiB left.
        serve(1_000, 4);
        guard.flush(Duration::from_secs(10)).unwrap();
        let file = stats.file().unwrap();
        assert!(file.failed > 0, "the disk did not fill: {stats:?}");
        assert!(file.written > 0, "nothing fitted: {stats:?}");
        // Space comes back; the writer tries again after a second.
        std::fs::remove_file(&filler).unwrap();
        std::thread::sleep(Duration::from_millis(1_100));
        serve(20, 4);
        guard.flush(Duration::from_secs(10)).unwrap();
        layer_stats.clone()
    });
    drop(guard);
    let file = stats.file().unwrap();
    let lines = assert_whole_lines(&std::fs::read(dir.join("osprofiler.log")).unwrap());
    assert_eq!(
        lines, file.written,
        "counted as written = lines in the file"
    );
    assert_eq!(
        file.written + file.failed + file.dropped + stats.events_dropped(),
        2 * layer_stats.points_started(),
        "every line written or counted: {stats:?}"
    );
    assert_eq!(layer_stats.events_refused(), 0);
    println!("FILLING-DISK {stats:?}");
}

#[test]
fn a_disk_that_fills_mid_batch_continues_at_a_line_boundary() {
    system::require_program("unshare", "util-linux", "a_disk_that_fills_mid_batch…");
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // A private mount namespace (with a user namespace when not root), so
    // the tmpfs disappears with the child.
    let output = Command::new("unshare")
        .args(["--mount", "--map-root-user", "sh", "-c"])
        .arg("mount -t tmpfs -o size=256k tmpfs \"$0\" && exec \"$@\"")
        .arg(dir.path())
        .arg(&exe)
        .args(child_args("disk::child_filling_disk"))
        .env("OSPROFILER_FILLING_DIR", dir.path())
        .output()
        .unwrap();
    assert_ran_and_reported_once(
        &output,
        "mounting a tmpfs needs root or user namespaces",
        "FILLING-DISK",
        "the file sink cannot deliver to",
    );
}

/// Checks a child run of this binary: it passed (`needs`: what it may have
/// lacked), printed `ran` on standard output, and reported `said` once on
/// standard error.
fn assert_ran_and_reported_once(output: &Output, needs: &str, ran: &str, said: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the child failed ({needs}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(ran), "the child did not run:\n{stdout}");
    assert_eq!(stderr.matches(said).count(), 1, "reported once:\n{stderr}");
}

/// The child half of `a_read_only_directory_keeps_the_open_file_across_a_rotation`:
/// runs as `nobody`, under libfaketime.
#[test]
#[ignore = "the child half of another test, which runs it in a process of its own"]
fn child_read_only_directory() {
    let (Some(dir), Some(clock)) = (
        std::env::var_os("OSPROFILER_READ_ONLY_DIR"),
        std::env::var_os("FAKETIME_TIMESTAMP_FILE"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let (writer, guard) = RollingFile::new(&dir)
        .with_rotation(Rotation::HOURLY)
        .build()
        .unwrap();
    let stats = writer.stats();
    let layer_stats = with_layer(writer, |layer_stats| {
        serve(10, 4);
        guard.flush(Duration::from_secs(10)).unwrap();
        // The directory becomes read-only (its owner may do that), then the
        // hour turns.
        set_mode(&dir, 0o555);
        std::fs::write(&clock, "+1h").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        serve(10, 4);
        guard.flush(Duration::from_secs(10)).unwrap();
        layer_stats.clone()
    });
    drop(guard);
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names.len(), 1, "no new file could be made: {names:?}");
    let lines = assert_whole_lines(&std::fs::read(&names[0]).unwrap());
    let file = stats.file().unwrap();
    assert_eq!(
        (lines, file.written, file.failed),
        (200, 200, 0),
        "{stats:?}"
    );
    assert_eq!(layer_stats.points_started(), 100);
    println!("READ-ONLY {stats:?}");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_read_only_directory_keeps_the_open_file_across_a_rotation() {
    let test = "a_read_only_directory_keeps_the_open_file_across_a_rotation";
    system::require(LIBFAKETIME, "libfaketime", test);
    system::require_program("setpriv", "util-linux", test);
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("logs");
    let clock = parent.path().join("faketime");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(&clock, "+0").unwrap();
    set_mode(parent.path(), 0o755);
    set_mode(&clock, 0o666);
    let nobody = "65534";
    let chown = Command::new("chown")
        .args([&format!("{nobody}:{nobody}"), dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(
        chown.success(),
        "chown needs root (the test's parent runs as root in CI)"
    );
    // libfaketime is preloaded after the user changed (through `env`), so
    // that setpriv itself, running as root, does not set up its clock.
    let output = Command::new("setpriv")
        .args([
            &format!("--reuid={nobody}"),
            &format!("--regid={nobody}"),
            "--clear-groups",
            "env",
        ])
        .arg(format!("LD_PRELOAD={LIBFAKETIME}"))
        .arg(format!("FAKETIME_TIMESTAMP_FILE={}", clock.display()))
        .args(["FAKETIME_NO_CACHE=1", "DONT_FAKE_MONOTONIC=1"])
        .arg(format!("OSPROFILER_READ_ONLY_DIR={}", dir.display()))
        .arg(std::env::current_exe().unwrap())
        .args(child_args("disk::child_read_only_directory"))
        .output()
        .unwrap();
    set_mode(&dir, 0o755);
    assert_ran_and_reported_once(
        &output,
        "running as nobody under libfaketime",
        "READ-ONLY",
        "cannot start a new profile log",
    );
}
