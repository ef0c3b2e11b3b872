//! The name interner every report uses: each distinct trace name held
//! once, known by a small index. A log has few names, so a small cache
//! keyed by a cheap hash of a name's edges finds almost all of them with no
//! keyed hash and no call to `memcmp`; a miss (or a crafted log's
//! collisions) only falls back to a keyed map.

use super::hash::NameMap;

/// Slots of [`Interner`]'s cache.
const RECENT: usize = 64;

/// Names by index, each held once.
#[derive(Debug)]
pub(crate) struct Interner {
    indexes: NameMap<u32>,
    names: Vec<Box<[u8]>>,
    /// 1 + the index of a name whose [`recent_slot`] this is, or 0.
    recent: [u32; RECENT],
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            indexes: NameMap::default(),
            names: Vec::new(),
            recent: [0; RECENT],
        }
    }
}

impl Interner {
    /// The index of `name` (bytes as given, compared exactly), and whether
    /// it is new. Indexes count from 0 in the order names are first seen.
    #[inline]
    pub(crate) fn intern(&mut self, name: &[u8]) -> (u32, bool) {
        let slot = recent_slot(name);
        if let Some(n) = self.recent[slot].checked_sub(1) {
            if self
                .names
                .get(n as usize)
                .is_some_and(|known| same_bytes(known, name))
            {
                return (n, false);
            }
        }
        let (n, new) = match self.indexes.get(name) {
            Some(&n) => (n, false),
            None => {
                // More than 4 billion names cannot come from a log that
                // fits anywhere; the last index is shared past that.
                let n = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
                self.indexes.insert(name.into(), n);
                self.names.push(name.into());
                (n, true)
            }
        };
        self.recent[slot] = n.saturating_add(1);
        (n, new)
    }

    /// A worker's index of `name`, the name pushed to `new_names` the
    /// first time: a chunk's summary tells the reading thread the names
    /// its worker met first in it ([`WorkerNames`]).
    #[inline]
    pub(crate) fn intern_noted(&mut self, name: &[u8], new_names: &mut Vec<Box<[u8]>>) -> u32 {
        let (n, new) = self.intern(name);
        if new {
            new_names.push(name.into());
        }
        n
    }

    /// The name of index `n` (empty for an index never given).
    pub(crate) fn get(&self, n: u32) -> &[u8] {
        self.names.get(n as usize).map_or(&[], |name| name)
    }

    /// The names, by index.
    pub(crate) fn into_names(self) -> Vec<Box<[u8]>> {
        self.names
    }

    /// The name of index `n` as text (lossy UTF-8).
    pub(crate) fn text(&self, n: u32) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.get(n))
    }
}

/// The reading thread's side of the workers' names: per worker, the
/// report's index (`T`) of each of the worker's indexes, in their order.
#[derive(Debug)]
pub(crate) struct WorkerNames<T>(Vec<Vec<T>>);

impl<T> Default for WorkerNames<T> {
    fn default() -> Self {
        WorkerNames(Vec::new())
    }
}

impl<T: Copy + Default> WorkerNames<T> {
    /// Adds the names `worker` met first in a chunk (its summary's
    /// `new_names`), each given the report's index by `intern` from its
    /// text (lossy UTF-8), and returns that worker's map.
    pub(crate) fn add(
        &mut self,
        worker: usize,
        new_names: &[Box<[u8]>],
        mut intern: impl FnMut(&[u8]) -> T,
    ) -> &mut Vec<T> {
        if self.0.len() <= worker {
            self.0.resize_with(worker + 1, Vec::new);
        }
        let map = &mut self.0[worker];
        for name in new_names {
            map.push(intern(String::from_utf8_lossy(name).as_bytes()));
        }
        map
    }

    /// Puts back the map of `worker` that the caller took out of
    /// [`WorkerNames::add`]'s answer (to use it while changing what holds
    /// this).
    pub(crate) fn put_back(&mut self, worker: usize, map: Vec<T>) {
        if let Some(slot) = self.0.get_mut(worker) {
            *slot = map;
        }
    }
}

/// The report's index of a worker's index `n` in its `map`
/// ([`WorkerNames::add`]); the default (0) for an index never given.
#[inline]
pub(crate) fn mapped<T: Copy + Default>(map: &[T], n: u32) -> T {
    map.get(n as usize).copied().unwrap_or_default()
}

/// The slot of a name in [`Interner`]'s cache.
#[inline(always)]
fn recent_slot(name: &[u8]) -> usize {
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
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_index_per_name_whatever_the_cache_says() {
        let mut names = Interner::default();
        let words: Vec<Vec<u8>> = (0..500u32)
            .map(|i| format!("name-{i}-{}", "x".repeat(i as usize % 20)).into_bytes())
            .collect();
        for round in 0..3 {
            for (i, w) in words.iter().enumerate() {
                assert_eq!(names.intern(w), (i as u32, round == 0));
            }
        }
        assert_eq!(names.get(7), &words[7][..]);
        assert_eq!(names.get(9999), b"");
    }
}
