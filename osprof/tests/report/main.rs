//! The reports: golden files, the `osprof` binary, the fast scanner against
//! the reference parser, and the real Python osprofiler and Mistral's rules.

// The workspace's test helpers live in `tests/support/` at its root; these
// tests need only the Python one.
#[allow(dead_code)]
#[path = "../../../tests/support/python.rs"]
pub mod python_support;
#[allow(dead_code)]
#[path = "../../../tests/support/system.rs"]
pub mod system_support;

#[path = "../support/mangle.rs"]
pub mod mangle_support;
#[allow(dead_code)]
#[path = "../support/peak.rs"]
pub mod peak_support;
#[path = "../support/run.rs"]
pub mod run_support;

mod support {
    pub use super::mangle_support as mangle;
    pub use super::peak_support as peak;
    pub use super::python_support as python;
    pub use super::run_support as run;
    pub use super::system_support as system;
}

mod busy;
mod capture;
mod cli;
mod connection_secrets;
mod docs;
mod durations;
mod golden;
mod hostile;
mod parse_prop;
mod python;
mod shapes;
mod show;
mod stdin;
mod wall_times;
