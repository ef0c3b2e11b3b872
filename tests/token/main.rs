//! The signed token: the recorded vectors, the real Python osprofiler on
//! both sides, and hostile header bytes.

#[path = "../support/mod.rs"]
mod support;

mod hostile;
mod interop;
