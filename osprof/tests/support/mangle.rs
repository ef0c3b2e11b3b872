//! Lines mangled for the property tests of the line parsers: a valid line
//! with bytes inserted, replaced or cut off.

use proptest::prelude::*;

/// Up to `most - 1` edits for [`mangle`]: (where, byte, what).
pub fn edits(most: usize) -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..most)
}

/// `line` with `edits` made in turn, each at `where` modulo the length
/// plus one: `what` 0 inserts `byte`, 1 replaces the byte there (if any)
/// with it, 2 cuts the line there.
pub fn mangle(mut line: Vec<u8>, edits: Vec<(usize, u8, u8)>) -> Vec<u8> {
    for (at, byte, what) in edits {
        let at = at % (line.len() + 1);
        match what {
            0 => line.insert(at, byte),
            1 if at < line.len() => line[at] = byte,
            _ => line.truncate(at),
        }
    }
    line
}
