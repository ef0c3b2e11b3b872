//! 16 bytes at a time with SSE2, which every x86_64 processor has: for
//! the whitespace search of [`super::swar`] and the id check of
//! [`super::ids`].

use std::arch::x86_64::{
    __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8,
    _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
};

use super::ids::{IDS_LAYOUT, IDS_LEN};

/// Per 16 bytes of [`IDS_LAYOUT`], two byte ranges per place, as
/// (minus the low end, width): a byte is right when it is in the first
/// range, or when, lower-cased (`| 0x20`), it is in the second. A hex
/// digit's place: `0`..=`9`, and `a`..=`f` lower-cased (which only
/// `A`..=`F` and `a`..=`f` become); a separator's place: the separator,
/// and nothing (a lower-cased byte is never 0); the name's first byte
/// (checked apart): any byte.
const BLOCKS: [[[u8; 16]; 4]; 7] = {
    let mut blocks = [[[0u8; 16]; 4]; 7];
    let mut i = 0;
    while i < IDS_LEN {
        let b = IDS_LAYOUT[i];
        let (lo1, w1, lo2, w2) = match b {
            0 => (b'0', 9, b'a', 5),
            1 => (0, 0xff, 0, 0),
            _ => (b, 0, 0, 0),
        };
        let block = &mut blocks[i / 16];
        block[0][i % 16] = lo1.wrapping_neg();
        block[1][i % 16] = w1;
        block[2][i % 16] = lo2.wrapping_neg();
        block[3][i % 16] = w2;
        i += 1;
    }
    blocks
};

#[inline(always)]
fn load(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: reads the 16 bytes of `bytes`; `loadu` takes any
    // alignment.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// Bit `i` set when byte `i` is at most `b' '`: every ASCII
/// whitespace byte, and the other control bytes.
#[inline(always)]
pub(super) fn at_most_space(bytes: &[u8; 16]) -> u32 {
    let v = load(bytes);
    unsafe {
        let low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(b' ' as i8)), v);
        _mm_movemask_epi8(low) as u32
    }
}

/// See [`super::ids::ids_ok`]. Each byte is checked against its place, the
/// results of the seven blocks are combined in a register and looked
/// at once.
#[inline(always)]
pub(super) fn ids_ok(ids: &[u8; IDS_LEN]) -> bool {
    let mut all = unsafe { _mm_set1_epi8(-1) };
    for (i, [lo1, w1, lo2, w2]) in BLOCKS.iter().enumerate() {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&ids[i * 16..i * 16 + 16]);
        let v = load(&bytes);
        unsafe {
            let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let ok = _mm_or_si128(within(v, lo1, w1), within(lower, lo2, w2));
            all = _mm_and_si128(all, ok);
        }
    }
    let all = unsafe { _mm_movemask_epi8(all) };
    all == 0xffff && !ids[IDS_LEN - 1].is_ascii_whitespace()
}

/// 0xff in each byte of `v` from `-minus_low` to `-minus_low + width`
/// (unsigned, per byte), 0 elsewhere.
#[inline(always)]
fn within(v: __m128i, minus_low: &[u8; 16], width: &[u8; 16]) -> __m128i {
    unsafe {
        let from_low = _mm_add_epi8(v, load(minus_low));
        _mm_cmpeq_epi8(_mm_min_epu8(from_low, load(width)), from_low)
    }
}
