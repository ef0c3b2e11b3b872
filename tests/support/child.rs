//! A child process of the running test binary that runs one of its ignored
//! tests alone: for what a test cannot do in its own process (abort, run
//! under a fake clock, in a mount namespace or as another user) or must
//! read from outside it (its standard error).

use std::process::Command;

/// The arguments that make this test binary run its ignored test `name`
/// alone, on one thread, its output not captured.
pub fn child_args(name: &str) -> [&str; 5] {
    [
        "--ignored",
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
    ]
}

/// This test binary, set to run its ignored test `name` alone
/// ([`child_args`]); the caller adds the environment and runs it.
pub fn child_test(name: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command.args(child_args(name));
    command
}
