//! Faults, crashes, clock steps and secrets, with the real layer and writer.
//! The long load test with rotation lives in `tests/soak.rs`, a binary of its
//! own, because it measures the resident memory of its process.

#[path = "../support/mod.rs"]
mod support;

mod clock;
mod crash;
mod disk;
mod faults;
mod secrets;
