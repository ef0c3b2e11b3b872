//! The line parser and the reports never panic, whatever the bytes; and
//! every duration form Python's `str(float)` writes is read back. The
//! cargo-fuzz harness in `fuzz/` explores further on nightly; this runs in
//! CI, bounded to a few seconds.

use osprof::list::{list, ListOptions};
use osprof::load_request;
use osprof::rank::{rank, RankOptions};
use osprof::source::Inputs;
use proptest::prelude::*;
use tracing_osprofiler::format::{parse_line, Phase};
use tracing_osprofiler::Id;

use crate::support::mangle;

const IDS: &str = "f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d";

fn valid_line() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::bool::ANY,
        "[a-z][a-z0-9_.:-]{0,30}",
        0u32..100_000_000,
        prop::sample::select(vec!["", "  <- !!!", " {\"db\": 1}", "\r"]),
    )
        .prop_map(|(stop, name, micros, tail)| {
            let duration = if stop {
                format!("{}", micros as f64 / 1e6)
            } else {
                "        ".into()
            };
            format!(
                "2020-02-27T08:04:25.961298 {duration} {IDS} {name}-{}{tail}",
                if stop { "stop" } else { "start" }
            )
            .into_bytes()
        })
}

/// A valid line with bytes inserted, replaced or cut off.
fn mangled_line() -> impl Strategy<Value = Vec<u8>> {
    (valid_line(), mangle::edits(6)).prop_map(|(line, edits)| mangle::mangle(line, edits))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn parse_line_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_line(&bytes);
    }

    #[test]
    fn parse_line_never_panics_near_valid_lines(line in mangled_line()) {
        if let Ok(parsed) = parse_line(&line) {
            if let Some(d) = parsed.duration {
                prop_assert!(d.is_finite() && d >= 0.0);
            }
        }
    }

    #[test]
    fn python_float_forms_are_read(
        mantissa in 1u32..10_000,
        exponent in -9i32..4,
        form in 0u8..3,
    ) {
        let value = f64::from(mantissa) * 10f64.powi(exponent);
        // What Python's str(float) writes: plain decimals, or an exponent
        // with at least two digits (9.4e-05), or a 'X.0' integral float.
        let text = match form {
            0 => format!("{value}"),
            1 => {
                let e = format!("{value:e}");
                let (m, x) = e.split_once('e').unwrap();
                let x: i32 = x.parse().unwrap();
                format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs())
            }
            _ => format!("{:.1}", value.trunc()),
        };
        let line = format!("2020-02-27T08:04:25.961298 {text} {IDS} a-stop");
        let parsed = parse_line(line.as_bytes()).unwrap();
        prop_assert_eq!(parsed.phase, Phase::Stop);
        let expected: f64 = text.parse().unwrap();
        prop_assert_eq!(parsed.duration, Some(expected));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// Whole logs of valid, mangled and random lines, including huge ones
    /// and no final newline: every report completes.
    #[test]
    fn reports_never_panic(
        lines in prop::collection::vec(
            prop_oneof![
                4 => valid_line(),
                3 => mangled_line(),
                1 => prop::collection::vec(any::<u8>(), 0..100),
            ],
            0..60,
        ),
        crlf in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.log");
        let sep: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        std::fs::write(&path, lines.join(sep)).unwrap();
        let inputs = Inputs::from_paths([&path]).unwrap();
        let options = RankOptions::new().with_self_time(true).with_percentiles(true);
        let report = rank(&inputs, &options).unwrap();
        let mut out = Vec::new();
        report.write(&mut out).unwrap();
        let l = list(&inputs, &ListOptions::new()).unwrap();
        l.write(&mut out).unwrap();
        let base = Id::parse("f12e75d5-5d59-4cbc-b74d-357f19290dd7").unwrap();
        let _ = load_request(&inputs, base).unwrap();
    }
}
