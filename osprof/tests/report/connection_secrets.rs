//! `osprof` given a connection string with a secret wherever one can sit (a
//! password holding `/`, a query value, an unknown scheme) names the store
//! in its messages without the secret.

use std::process::Command;

const SECRET: &str = "S3CR3T";

#[test]
fn osprof_messages_show_no_secret_of_a_connection_string() {
    // Port 1 on loopback refuses at once: every string fails, after
    // parsing or after trying to connect, and the message names it.
    let strings = [
        "redis://:Zm9v/S3CR3T+cXV4@127.0.0.1:1",
        "redis://user:Zm9v/S3CR3T@127.0.0.1:1/0",
        "redis://:S3CR3T@127.0.0.1:1/0?pass=S3CR3T",
        "redis://:pa?S3CR3T@127.0.0.1:1",
        "rediss://:Zm9v/S3CR3T@127.0.0.1:1",
        "redis+unix:///run/osprof-none.sock?pass=S3CR3T",
        "unix:///run/osprof-none.sock?pass=S3CR3T",
        "mongodb://user:Zm9v/S3CR3T@127.0.0.1:1",
    ];
    for string in strings {
        for command in ["list", "rank"] {
            let out = Command::new(env!("CARGO_BIN_EXE_osprof"))
                .args([command, "--connection-string", string])
                .output()
                .expect("run osprof");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{command} {string}: {stdout}");
            assert!(!stderr.trim().is_empty(), "{command} {string}: no message");
            assert!(
                !stderr.contains(SECRET) && !stdout.contains(SECRET),
                "{command} {string}:\n{stderr}{stdout}"
            );
        }
    }
}
