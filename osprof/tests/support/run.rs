//! The `osprof` binary run by the integration tests, its input piped in.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// `osprof ARGS` with `stdin` piped in, `OSPROFILER_HMAC_KEY` unset.
pub fn osprof(args: &[&str], stdin: Vec<u8>) -> Output {
    osprof_env(args, stdin, None)
}

/// `osprof ARGS` with `stdin` written to it from another thread (a large
/// input is written while the tool reads it), and `OSPROFILER_HMAC_KEY`
/// set to `key`, or unset.
pub fn osprof_env(args: &[&str], stdin: Vec<u8>, key: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_osprof"));
    match key {
        Some(key) => command.env(osprof::headers::KEY_ENV, key),
        None => command.env_remove(osprof::headers::KEY_ENV),
    };
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // A run that does not read stdin, or stops reading it (an error),
        // may end before it is written.
        if let Err(e) = pipe.write_all(&stdin) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}
