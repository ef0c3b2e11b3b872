//! The trace ids one chunk of a log touched, kept small: the points open
//! in the chunk in a map (a few at a time), and the ids it stopped in a
//! list behind a Bloom filter, so that a line costs a look-up in a map
//! that stays in the cache, not in one that grows with the chunk.

use super::hash::U128Map;

/// Bits of the Bloom filter (8 KiB): a few per stop line of a chunk.
const BITS: usize = 1 << 16;

/// What a chunk says of an id so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Touched<V> {
    /// Started in the chunk and not stopped since.
    Open(V),
    /// Stopped in the chunk (and not started again since).
    Closed,
    /// Not in the chunk so far.
    Untouched,
}

/// The ids a chunk touched, with a value for each open one.
#[derive(Debug)]
pub(crate) struct ChunkIds<V> {
    open: U128Map<V>,
    stopped: Vec<u128>,
    bits: Vec<u64>,
    /// `stopped` as a set, made once queries would scan it too often.
    stopped_set: Option<U128Map<()>>,
    scans: usize,
}

impl<V> Default for ChunkIds<V> {
    fn default() -> Self {
        ChunkIds {
            open: U128Map::default(),
            stopped: Vec::new(),
            bits: Vec::new(),
            stopped_set: None,
            scans: 0,
        }
    }
}

impl<V> ChunkIds<V> {
    /// Forgets everything, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.open.clear();
        self.stopped.clear();
        self.bits.clear();
        self.stopped_set = None;
        self.scans = 0;
    }

    #[inline(always)]
    fn bit(id: u128) -> (usize, u64) {
        let h = ((id as u64) ^ (id >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bit = (h >> (64 - BITS.trailing_zeros())) as usize;
        (bit / 64, 1 << (bit % 64))
    }

    /// A start: `id` is open with `value`; returns the value of a point
    /// open under it before (which it replaces).
    #[inline]
    pub(crate) fn start(&mut self, id: u128, value: V) -> Option<V> {
        self.open.insert(id, value)
    }

    /// A stop: what the chunk said of `id` before it; `id` is closed now.
    #[inline]
    pub(crate) fn stop(&mut self, id: u128) -> Touched<V> {
        let before = match self.open.remove(&id) {
            Some(value) => Touched::Open(value),
            None if self.was_stopped(id) => Touched::Closed,
            None => Touched::Untouched,
        };
        if self.bits.is_empty() {
            self.bits.resize(BITS / 64, 0);
        }
        let (word, bit) = Self::bit(id);
        self.bits[word] |= bit;
        self.stopped.push(id);
        if let Some(set) = &mut self.stopped_set {
            set.insert(id, ());
        }
        before
    }

    /// The value of `id` if it is open in the chunk.
    #[inline]
    pub(crate) fn open_mut(&mut self, id: u128) -> Option<&mut V> {
        self.open.get_mut(&id)
    }

    /// What the chunk says of `id` now, without its value.
    #[inline]
    pub(crate) fn state(&mut self, id: u128) -> Touched<()> {
        if self.open.contains_key(&id) {
            Touched::Open(())
        } else if self.was_stopped(id) {
            Touched::Closed
        } else {
            Touched::Untouched
        }
    }

    /// Whether the chunk touched `id` (for the reading thread, once the
    /// chunk is read).
    #[inline]
    pub(crate) fn touched(&mut self, id: u128) -> bool {
        self.open.contains_key(&id) || self.was_stopped(id)
    }

    /// Whether `id` was stopped in the chunk: the Bloom filter rules out
    /// most ids; the others are looked for in the list, one by one for the
    /// first few queries, then in a set of it made once.
    fn was_stopped(&mut self, id: u128) -> bool {
        let (word, bit) = Self::bit(id);
        if self.bits.get(word).is_none_or(|w| w & bit == 0) {
            return false;
        }
        if let Some(set) = &self.stopped_set {
            return set.contains_key(&id);
        }
        self.scans += 1;
        if self.scans <= 8 {
            return self.stopped.contains(&id);
        }
        let set: U128Map<()> = self.stopped.iter().map(|&id| (id, ())).collect();
        let found = set.contains_key(&id);
        self.stopped_set = Some(set);
        found
    }

    /// How many ids the chunk touched, at most.
    pub(crate) fn len(&self) -> usize {
        self.open.len() + self.stopped.len()
    }

    /// Every id touched (ids stopped more than once come more than once).
    pub(crate) fn ids(&self) -> impl Iterator<Item = u128> + '_ {
        self.open
            .keys()
            .copied()
            .chain(self.stopped.iter().copied())
    }

    /// The open points, taken out.
    pub(crate) fn drain_open(&mut self) -> impl Iterator<Item = (u128, V)> + '_ {
        self.open.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The same answers as a map of every id touched.
        #[test]
        fn answers_as_a_full_map(ops in prop::collection::vec((any::<bool>(), 0u128..300), 0..3000)) {
            let mut ids = ChunkIds::default();
            let mut full: std::collections::HashMap<u128, Option<usize>> = Default::default();
            for (i, &(stop, id)) in ops.iter().enumerate() {
                let id = id.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
                let expected = match full.get(&id) {
                    Some(Some(v)) => Touched::Open(*v),
                    Some(None) => Touched::Closed,
                    None => Touched::Untouched,
                };
                if stop {
                    prop_assert_eq!(ids.stop(id), expected);
                    full.insert(id, None);
                } else {
                    let replaced = ids.start(id, i);
                    prop_assert_eq!(replaced.map(Touched::Open).unwrap_or(Touched::Untouched), match expected {
                        Touched::Closed => Touched::Untouched,
                        e => e,
                    });
                    full.insert(id, Some(i));
                }
            }
            for &id in full.keys() {
                prop_assert!(ids.touched(id));
            }
            prop_assert!(!ids.touched(u128::MAX));
        }
    }
}
