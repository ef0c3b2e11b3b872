//! Random logs for the property tests that check the threaded reports
//! (`list`, `rank --self`) against reading the lines one after the other:
//! points of random ids, parents, names, times and durations, among random
//! bytes and blank lines.

use proptest::prelude::*;

/// The trace id of number `t`.
pub(crate) fn trace_id(t: u32) -> String {
    format!("00000000-0000-4000-8000-{t:012x}")
}

/// A start or stop line of point `t` of request `base` under `parent`,
/// named by `n` (`a`, `db`, `café`), at `at` microseconds past 08:04:00,
/// a stop lasting `d` microseconds.
pub(crate) fn point_line(
    stop: bool,
    t: u32,
    base: &str,
    parent: &str,
    n: usize,
    at: u32,
    d: u32,
) -> Vec<u8> {
    let name = ["a", "db", "caf\u{e9}"][n];
    let ts = format!(
        "2020-02-27T08:04:{:02}.{:06}",
        at / 1_000_000,
        at % 1_000_000
    );
    let id = trace_id(t);
    if stop {
        format!(
            "{ts} {}.{:06} {base} {parent} {id} {name}-stop",
            d / 1_000_000,
            d % 1_000_000
        )
    } else {
        format!("{ts}          {base} {parent} {id} {name}-start")
    }
    .into_bytes()
}

/// A log of 1 to 149 lines, each `point`'s in 12 of 14, else random bytes
/// or blank.
pub(crate) fn log_of(point: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        12 => point,
        1 => prop::collection::vec(any::<u8>(), 0..100),
        1 => Just(Vec::new()),
    ];
    prop::collection::vec(line, 1..150).prop_map(|lines| {
        let mut out = Vec::new();
        for line in lines {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        out
    })
}
