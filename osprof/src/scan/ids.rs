//! The three ids of a line in the writers' layout: checked at once
//! (with SSE2 where there is SSE2), decoded to their 128-bit values, or
//! turned into a cheaper key that tells ids apart as their values do.

use tracing_osprofiler::Id;

use super::swar::{be_half_at, be_word_at, word_at, HIGH, ONES};

/// An id from the value [`canonical_id`] decoded.
pub(crate) fn id(value: u128) -> Id {
    Id::from_uuid(uuid::Uuid::from_u128(value))
}

/// The bytes `ID ID ID x` of a line in the writers' layout: three ids in
/// the canonical 8-4-4-4-12 form, each followed by a space, and the first
/// byte of the name.
pub(super) const IDS_LEN: usize = 112;

/// The expected layout of [`IDS_LEN`] bytes: `-` and ` ` where they go,
/// 0 where a hex digit goes, 1 for the name's first byte.
pub(super) const IDS_LAYOUT: [u8; IDS_LEN] = {
    let mut layout = [0u8; IDS_LEN];
    let mut id = 0;
    while id < 3 {
        let at = id * 37;
        layout[at + 8] = b'-';
        layout[at + 13] = b'-';
        layout[at + 18] = b'-';
        layout[at + 23] = b'-';
        layout[at + 36] = b' ';
        id += 1;
    }
    layout[IDS_LEN - 1] = 1;
    layout
};

/// Whether `ids` is three ids in the canonical form (either case, as
/// [`Id::parse_bytes`] reads them), each followed by one space, then a
/// byte that is not whitespace.
#[inline(always)]
pub(super) fn ids_ok(ids: &[u8; IDS_LEN]) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        super::sse2::ids_ok(ids)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        ids_ok_portable(ids)
    }
}

/// [`ids_ok`] a word at a time, on any target.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
pub(super) fn ids_ok_portable(ids: &[u8; IDS_LEN]) -> bool {
    canonical_id(&ids[..36]).is_some()
        && canonical_id(&ids[37..73]).is_some()
        && canonical_id(&ids[74..110]).is_some()
        && ids[36] == b' '
        && ids[73] == b' '
        && ids[110] == b' '
        && !ids[111].is_ascii_whitespace()
}

/// The value of an id that [`ids_ok`] checked (36 bytes, canonical form).
#[inline(always)]
pub(super) fn checked_id_value(text: &[u8]) -> u128 {
    let word = |at| be_word_at(text, at);
    let half = |at| be_half_at(text, at);
    let a = hex8_value(word(0));
    let b = hex8_value(half(9) << 32 | half(14));
    let c = hex8_value(half(19) << 32 | half(24));
    let d = hex8_value(word(28));
    u128::from(a) << 96 | u128::from(b) << 64 | u128::from(c) << 32 | u128::from(d)
}

/// A key for an id, cheaper to get from its text than its value: equal for
/// two ids exactly when their values are (the hex digits' values, in
/// another order), for maps that only need to tell ids apart.
pub(crate) fn id_key(id: Id) -> u128 {
    let mut text = [0u8; 36];
    id.as_uuid().hyphenated().encode_lower(&mut text);
    checked_id_key(&text)
}

/// The id whose [`id_key`] `key` is.
pub(crate) fn key_id(key: u128) -> Id {
    let (low, high) = (key as u64, (key >> 64) as u64);
    // Byte i of each half holds the i-th digit of its first word in its
    // low nibble and of its second word in its high nibble.
    let mut value = 0u128;
    for (half, shift) in [(low, 64), (high, 0)] {
        let (mut first, mut second) = (0u128, 0u128);
        for i in 0..8 {
            let byte = (half >> (8 * i)) & 0xff;
            first = first << 4 | u128::from(byte & 0x0f);
            second = second << 4 | u128::from(byte >> 4);
        }
        value |= (first << 32 | second) << shift;
    }
    id(value)
}

/// [`id_key`] of an id that [`ids_ok`] checked (36 bytes, canonical
/// form): the 32 digits' values, a nibble each, folded two words into one.
#[inline(always)]
pub(super) fn checked_id_key(text: &[u8]) -> u128 {
    let half = |at: usize| be_half_at(text, at).swap_bytes() >> 32;
    // Each byte to its digit's value (letters have bit 0x40 set, and a
    // letter's low nibble is its value minus 9).
    let values = |w: u64| (w & (ONES * 0x0f)) + ((w >> 6) & ONES) * 9;
    let a = values(word_at(text, 0));
    let b = values(half(9) | half(14) << 32);
    let c = values(half(19) | half(24) << 32);
    let d = values(word_at(text, 28));
    u128::from(a | b << 4) | u128::from(c | d << 4) << 64
}

/// Eight hex digits, known to be hex digits (a big-endian word), to their
/// value.
#[inline(always)]
pub(super) fn hex8_value(w: u64) -> u32 {
    // Letters have bit 0x40 set, digits not; a letter's low nibble is its
    // value minus 9.
    let mut n = (w & (ONES * 0x0f)) + ((w >> 6) & ONES) * 9;
    n = (n | (n >> 4)) & 0x00ff_00ff_00ff_00ff;
    n = (n | (n >> 8)) & 0x0000_ffff_0000_ffff;
    n = (n | (n >> 16)) & 0xffff_ffff;
    n as u32
}

/// An id in the canonical 8-4-4-4-12 form (either case), as
/// [`Id::parse_bytes`] reads it, as its 128-bit value; `None` for anything
/// else (which then goes to `parse_line`).
///
/// Eight hex digits at a time (SWAR): the 32 digits are loaded as four
/// big-endian words, checked and converted with a few word operations
/// each, with no branch per character.
#[inline(always)]
pub(super) fn canonical_id(text: &[u8]) -> Option<u128> {
    let text: &[u8; 36] = text.try_into().ok()?;
    if text[8] != b'-' || text[13] != b'-' || text[18] != b'-' || text[23] != b'-' {
        return None;
    }
    let word = |at| be_word_at(text, at);
    let half = |at| be_half_at(text, at);
    let (a, bad_a) = hex8(word(0));
    let (b, bad_b) = hex8(half(9) << 32 | half(14));
    let (c, bad_c) = hex8(half(19) << 32 | half(24));
    let (d, bad_d) = hex8(word(28));
    if bad_a | bad_b | bad_c | bad_d != 0 {
        return None;
    }
    Some(u128::from(a) << 96 | u128::from(b) << 64 | u128::from(c) << 32 | u128::from(d))
}

/// Eight ASCII hex digits (a big-endian word, first digit in the top byte)
/// to their value, and a non-zero flag when any byte is not a hex digit.
#[inline(always)]
pub(super) fn hex8(w: u64) -> (u32, u64) {
    // With every byte below 0x80 (checked: `w & HIGH`), no sum below
    // carries from one byte into the next.
    let digit_off = w ^ (ONES * 0x30); // 0..=9 for '0'..='9'
    let not_digit = digit_off.wrapping_add(ONES * 0x76) & HIGH;
    let letter_off = (w | (ONES * 0x20)) ^ (ONES * 0x60); // 1..=6 for a-f, A-F
    let letter =
        letter_off.wrapping_add(ONES * 0x7f) & !letter_off.wrapping_add(ONES * 0x79) & HIGH;
    let bad = (w & HIGH) | (not_digit & !letter);
    // Each byte to its nibble, then the nibbles packed pairwise.
    let mut n = (w & (ONES * 0x0f)) + (letter >> 7) * 9;
    n = (n | (n >> 4)) & 0x00ff_00ff_00ff_00ff;
    n = (n | (n >> 8)) & 0x0000_ffff_0000_ffff;
    n = (n | (n >> 16)) & 0xffff_ffff;
    (n as u32, bad)
}
