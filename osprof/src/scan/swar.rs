//! Word-at-a-time (SWAR) helpers of the scanner: reading eight bytes as
//! one word, checking and converting eight ASCII digits at once, and
//! finding the first whitespace byte of a name.

/// One in every byte of a word.
pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
pub(super) const HIGH: u64 = ONES * 0x80;

/// The big-endian word of `bytes[at..at + 8]` (first byte highest).
#[inline(always)]
pub(super) fn be_word_at(bytes: &[u8], at: usize) -> u64 {
    word_at(bytes, at).swap_bytes()
}

/// The big-endian value of `bytes[at..at + 4]`.
#[inline(always)]
pub(super) fn be_half_at(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_be_bytes(w))
}

/// The little-endian word of `bytes[at..at + 8]`.
#[inline(always)]
pub(super) fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Whether all eight bytes of `w` are ASCII digits.
#[inline(always)]
pub(super) fn all_digits(w: u64) -> bool {
    let off = w ^ (ONES * 0x30);
    (off.wrapping_add(ONES * 0x76) | w) & HIGH == 0
}

/// Eight ASCII digits (the first in the lowest byte) to their value.
#[inline(always)]
pub(super) fn eight_digits(w: u64) -> u32 {
    let v = w - 0x3030_3030_3030_3030;
    let v = (v * 10 + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v * 100 + (v >> 16)) & 0x0000_ffff_0000_ffff;
    ((v * 10_000 + (v >> 32)) & 0xffff_ffff) as u32
}

/// The index of the first ASCII whitespace byte in `bytes` (as
/// [`u8::is_ascii_whitespace`] says), or its length.
///
/// Eight bytes at a time: a word with no byte at or below `b' '` holds no
/// whitespace; otherwise its first such byte is checked.
#[inline(always)]
pub(super) fn first_whitespace(bytes: &[u8]) -> usize {
    let mut at = 0;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while let Some(block) = bytes.get(at..at + 16) {
        let mut b = [0u8; 16];
        b.copy_from_slice(block);
        let mut low = super::sse2::at_most_space(&b);
        // Almost always the first is whitespace; a control byte in a name
        // is looked past.
        while low != 0 {
            let i = at + low.trailing_zeros() as usize;
            if bytes[i].is_ascii_whitespace() {
                return i;
            }
            low &= low - 1;
        }
        at += 16;
    }
    while at + 8 <= bytes.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        let w = u64::from_le_bytes(w);
        // The high bit of each byte below 0x21 (the lowest one flagged is
        // exact; flags above it may be borrows and are looked at one by one).
        let low = w.wrapping_sub(ONES * 0x21) & !w & HIGH;
        if low == 0 {
            at += 8;
            continue;
        }
        let first = at + (low.trailing_zeros() / 8) as usize;
        if bytes[first].is_ascii_whitespace() {
            return first;
        }
        // A control byte inside the name: finish this word byte by byte.
        match bytes[first + 1..at + 8]
            .iter()
            .position(u8::is_ascii_whitespace)
        {
            Some(p) => return first + 1 + p,
            None => at += 8,
        }
    }
    at + bytes[at..]
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(bytes.len() - at)
}
