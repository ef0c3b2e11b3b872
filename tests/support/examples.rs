//! The crate's examples as the tests run them: their binaries, which
//! `cargo test` builds before it runs tests, and their output read line by
//! line while they run.

use std::io::{BufRead as _, BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc;

/// An example's binary, `<target>/<profile>/examples/NAME`; fails the test,
/// saying how to build it, if it is not there.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe.ancestors().nth(2).expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test --all-features` (which builds the examples), \
         or `cargo build --all-features --example {name}` first",
        path.display()
    );
    path
}

/// The lines of `stream` (a child's stdout or stderr), read on a thread of
/// their own so that the child never blocks on a full pipe; the channel
/// ends with the stream.
pub fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}
