//! Finding a name's index fast: a log has few names, so a small cache keyed
//! by a cheap hash of a name's edges finds almost all of them with no keyed
//! hash and no call to `memcmp`.

/// Slots of a name cache.
pub(crate) const RECENT: usize = 64;

/// The slot of a name in a cache of [`RECENT`] slots.
#[inline(always)]
pub(crate) fn recent_slot(name: &[u8]) -> usize {
    let (head, tail) = edge_words(name);
    let h = (head ^ tail.rotate_left(29) ^ name.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - RECENT.trailing_zeros())) as usize
}

/// The first and the last 8 bytes (zero-padded when shorter).
#[inline(always)]
fn edge_words(bytes: &[u8]) -> (u64, u64) {
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    if bytes.len() >= 8 {
        (word(&bytes[..8]), word(&bytes[bytes.len() - 8..]))
    } else {
        (word(bytes), 0)
    }
}

/// `a == b`, 8 bytes at a time (names are short; no call to `memcmp`).
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 8 {
        return a == b;
    }
    let mut at = 0;
    while at + 8 <= a.len() {
        if a[at..at + 8] != b[at..at + 8] {
            return false;
        }
        at += 8;
    }
    let end = a.len() - 8;
    a[end..] == b[end..]
}
