//! `cargo +nightly fuzz run parse_line`: the Mistral line parser must never
//! panic, and what it accepts must be sane.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracing_osprofiler::format::{parse_line, Phase};

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = parse_line(data) {
        match line.phase {
            Phase::Start => assert!(line.duration.is_none()),
            Phase::Stop => {
                let d = line.duration.expect("a stop line has a duration");
                assert!(d.is_finite() && d >= 0.0);
            }
        }
        assert!(!line.name.contains('\n'));
    }
});
