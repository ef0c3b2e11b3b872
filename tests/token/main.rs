//! The signed token: the recorded vectors, the real Python osprofiler on
//! both sides, and hostile header bytes.

#[path = "../support/mod.rs"]
mod support;

mod blank_keys;
mod hostile;
mod interop;
