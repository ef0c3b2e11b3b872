//! Cheap keyed hashing for the reports' maps: ids are random UUIDs and
//! names are short, so a multiply-and-rotate hash keyed per process is
//! enough, and much cheaper than SipHash.

/// A hasher for maps keyed by ids (and by names): ids are random UUIDs, so a
/// multiply-and-rotate over their bytes, keyed per process so that a
/// crafted log cannot aim at collisions it cannot see, is enough and much
/// cheaper than SipHash.
#[derive(Clone)]
pub(crate) struct IdHashBuilder(u64);

impl Default for IdHashBuilder {
    fn default() -> Self {
        use std::hash::BuildHasher;
        IdHashBuilder(std::collections::hash_map::RandomState::new().hash_one(0u64) | 1)
    }
}

impl std::hash::BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

/// See [`IdHashBuilder`].
pub(crate) struct IdHasher(u64);

impl IdHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

impl std::hash::Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.mix(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.mix(n as u64);
        self.mix((n >> 64) as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 31)
    }
}

/// A map keyed by an id's 128-bit value (as [`Fields`](super::Fields) gives it), with
/// [`IdHashBuilder`].
pub(crate) type U128Map<V> = std::collections::HashMap<u128, V, IdHashBuilder>;

/// A map keyed by a name's bytes, with [`IdHashBuilder`]: names are short
/// and few, so a word-at-a-time multiply-rotate hash is enough (SipHash cost
/// about 6% of a rank report).
pub(crate) type NameMap<V> = std::collections::HashMap<Box<[u8]>, V, IdHashBuilder>;
