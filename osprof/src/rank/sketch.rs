//! The percentiles of `rank --percentiles`: per name, a count of the
//! durations in buckets of 3 significant digits, held in the memory the
//! name's durations need and no more.
//!
//! The buckets are those of an HDR histogram with 3 significant digits
//! (2048 sub-buckets per power of two; a duration in microseconds below
//! 2048 has a bucket of its own), so a percentile is the middle of the
//! bucket that holds the duration of nearest rank (`ceil(q * count)`-th
//! smallest), never above the largest duration: within 1/2048 (0.05%) of
//! that duration, and exact below 2.048 ms. A test pins this to the
//! `hdrhistogram` crate's answer and to the exact percentile.
//!
//! A full histogram allocates its whole range of buckets up front (tens of
//! KiB), which for a log of 200 000 distinct names was 16 GB. Here a name
//! holds the buckets it has durations in, as a sorted list while they are
//! few or spread out, and as a window of counts from its lowest to its
//! highest bucket once that window is at most [`DENSE_SPREAD`] times the
//! number of buckets in use (and half as much again of room to grow):
//! memory grows with the distinct buckets a name uses, never with its
//! number of durations or the range between them.

/// Sub-buckets per power of two, as a power of two: 2^11 = 2048 covers 3
/// significant digits.
const SUB_BITS: u32 = 11;
/// Half of the sub-buckets: the upper half of every bucket past the first.
const HALF: u32 = 1 << (SUB_BITS - 1);
/// The bucket of the largest value.
const LAST_BUCKET: u32 = bucket(u64::MAX);

/// At most this many list entries before a name is looked at for a window.
const FEW: usize = 64;
/// A window of counts is used while it is at most this many times longer
/// than the number of buckets in use (8 bytes a slot against 16 an entry).
const DENSE_SPREAD: usize = 8;

/// One name's durations, by bucket.
#[derive(Debug, Clone, Default)]
pub(super) struct Sketch {
    repr: Repr,
    count: u64,
}

#[derive(Debug, Clone)]
enum Repr {
    /// (bucket, count), sorted by bucket.
    Few(Vec<(u32, u64)>),
    /// Counts of the buckets `first..first + counts.len()`, and how many
    /// of them are not 0. 32-bit counts: half the memory, and so half the
    /// cache misses of counting durations spread over thousands of
    /// buckets; a bucket that would pass 2^32 - 1 turns the window back
    /// into a list (of 64-bit counts), for good.
    Window {
        first: u32,
        counts: Vec<u32>,
        used: usize,
    },
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Few(Vec::new())
    }
}

/// The bucket of a value: increasing with the value.
#[inline]
const fn bucket(value: u64) -> u32 {
    // The power of two above the first 2048 values (0 for those).
    let power = (64 - SUB_BITS) - (value | ((1 << SUB_BITS) - 1)).leading_zeros();
    let sub = (value >> power) as u32;
    ((power + 1) << (SUB_BITS - 1)) + sub - HALF
}

/// The lowest value of a bucket and the number of values in it.
#[inline]
fn bucket_range(bucket: u32) -> (u64, u64) {
    let power = (bucket >> (SUB_BITS - 1)).saturating_sub(1);
    let sub = if bucket < HALF << 1 {
        bucket
    } else {
        (bucket & (HALF - 1)) + HALF
    };
    (u64::from(sub) << power, 1u64 << power)
}

impl Sketch {
    /// Counts one value.
    #[inline]
    pub(super) fn record(&mut self, value: u64) {
        self.add(bucket(value), 1);
    }

    /// Adds the counts of `other`: the same sketch as counting its values
    /// here.
    pub(super) fn merge(&mut self, other: &Sketch) {
        // The union of two sorted bucket lists, in one pass (adding bucket
        // by bucket could grow a window one slot at a time).
        let mut mine = self.buckets().peekable();
        let mut theirs = other.buckets().peekable();
        let mut all = Vec::new();
        loop {
            let next = match (mine.peek(), theirs.peek()) {
                (Some(&(a, m)), Some(&(b, n))) if a == b => {
                    mine.next();
                    theirs.next();
                    Some((a, m + n))
                }
                (Some(&(a, _)), Some(&(b, _))) if b < a => theirs.next(),
                (Some(_), _) => mine.next(),
                (None, Some(_)) => theirs.next(),
                (None, None) => break,
            };
            if let Some(next) = next {
                all.push(next);
            }
        }
        drop((mine, theirs));
        self.count += other.count;
        self.repr = Repr::Few(all);
        if let Repr::Few(few) = &self.repr {
            if few.len() >= FEW {
                self.try_window();
            }
        }
    }

    /// Counts `n` values in bucket `b`.
    #[inline]
    fn add(&mut self, b: u32, n: u64) {
        self.count += n;
        match &mut self.repr {
            Repr::Window {
                first,
                counts,
                used,
            } => {
                let slot = b
                    .checked_sub(*first)
                    .and_then(|i| counts.get_mut(i as usize));
                if let Some(slot) = slot {
                    if let Ok(sum) = u32::try_from(u64::from(*slot) + n) {
                        *used += usize::from(*slot == 0);
                        *slot = sum;
                        return;
                    }
                }
                let mut low = (*first).min(b);
                let mut high = (*first + counts.len() as u32 - 1).max(b);
                let span = (high - low) as usize + 1;
                match u32::try_from(n) {
                    Ok(n) if span <= DENSE_SPREAD * (*used + 1) => {
                        // Room for half as much again on the side it grows
                        // to, so that durations that keep growing do not
                        // copy the window each time.
                        let room = (counts.len() / 2) as u32;
                        if b < *first {
                            low = low.saturating_sub(room);
                        } else {
                            high = high.saturating_add(room).min(LAST_BUCKET);
                        }
                        let span = (high - low) as usize + 1;
                        let mut grown = vec![0u32; span];
                        let at = (*first - low) as usize;
                        grown[at..at + counts.len()].copy_from_slice(counts);
                        grown[(b - low) as usize] = n;
                        *first = low;
                        *counts = grown;
                        *used += 1;
                    }
                    _ => {
                        // Too spread out for a window, or a count past
                        // 32 bits: back to a list.
                        let mut few: Vec<(u32, u64)> = counts
                            .iter()
                            .enumerate()
                            .filter(|(_, &c)| c > 0)
                            .map(|(i, &c)| (*first + i as u32, u64::from(c)))
                            .collect();
                        match few.binary_search_by_key(&b, |&(k, _)| k) {
                            Ok(i) => few[i].1 += n,
                            Err(i) => few.insert(i, (b, n)),
                        }
                        self.repr = Repr::Few(few);
                    }
                }
            }
            Repr::Few(few) => match few.binary_search_by_key(&b, |&(k, _)| k) {
                Ok(i) => few[i].1 += n,
                Err(i) => {
                    few.insert(i, (b, n));
                    if few.len() >= FEW {
                        self.try_window();
                    }
                }
            },
        }
    }

    /// Turns a list into a window when the window is small enough.
    fn try_window(&mut self) {
        let Repr::Few(few) = &self.repr else {
            return;
        };
        let (Some(&(low, _)), Some(&(high, _))) = (few.first(), few.last()) else {
            return;
        };
        let span = (high - low) as usize + 1;
        if span > DENSE_SPREAD * few.len() {
            return;
        }
        let mut counts = vec![0u32; span];
        for &(k, c) in few {
            let Ok(c) = u32::try_from(c) else {
                // A count past 32 bits stays in the list.
                return;
            };
            counts[(k - low) as usize] = c;
        }
        self.repr = Repr::Window {
            first: low,
            counts,
            used: few.len(),
        };
    }

    /// The buckets in use, in order, with their counts.
    fn buckets(&self) -> Box<dyn Iterator<Item = (u32, u64)> + '_> {
        match &self.repr {
            Repr::Few(few) => Box::new(few.iter().copied()),
            Repr::Window { first, counts, .. } => Box::new(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(move |(i, &c)| (first + i as u32, u64::from(c))),
            ),
        }
    }

    /// The middle of the bucket of the `q`-quantile's value (nearest
    /// rank); `None` when no value was counted.
    pub(super) fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        let mut last = None;
        for (b, c) in self.buckets() {
            seen += c;
            last = Some(b);
            if seen >= rank {
                break;
            }
        }
        let (low, len) = bucket_range(last?);
        Some(low + len / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_hdr_buckets() {
        let hdr = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for value in (0..5000u64)
            .chain((0..60).flat_map(|p| [1u64 << p, (1u64 << p) + 1, (1u64 << p) - 1]))
            .chain([u64::MAX / 2, 3_155_760_000_000_000])
        {
            let (low, len) = bucket_range(bucket(value));
            assert_eq!(low, hdr.lowest_equivalent(value), "{value}");
            assert_eq!(len, hdr.equivalent_range(value), "{value}");
            assert!(bucket(value) <= bucket(value + 1));
        }
    }

    fn exact(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    proptest! {
        /// The stated accuracy: within 1/2048 of the exact nearest-rank
        /// percentile, exact below 2048; and the `hdrhistogram` crate's
        /// answer, bucket for bucket, whether the name ends as a list or
        /// as a window.
        #[test]
        fn percentiles_within_1_in_2048_of_exact(
            values in prop::collection::vec(
                prop_oneof![0u64..3000, 0u64..5_000_000, 0u64..3_155_760_000_000_000],
                1..600,
            ),
            q in prop::sample::select(vec![0.5, 0.95, 0.99, 0.999, 1.0, 0.01]),
        ) {
            let mut sketch = Sketch::default();
            let mut hdr = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            for &v in &values {
                sketch.record(v);
                hdr.record(v).unwrap();
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let want = exact(&sorted, q);
            let got = sketch.quantile(q).unwrap();
            if want < 2048 {
                prop_assert_eq!(got, want);
            } else {
                prop_assert!(got.abs_diff(want) as f64 <= want as f64 / 2048.0, "{} {}", got, want);
            }
            prop_assert_eq!(got, hdr.median_equivalent(hdr.value_at_quantile(q)));
        }
    }

    proptest! {
        #[test]
        fn merged_sketches_are_one_sketch(
            parts in prop::collection::vec(prop::collection::vec(0u64..10_000_000_000, 0..200), 1..4),
        ) {
            let mut whole = Sketch::default();
            let mut merged = Sketch::default();
            for part in &parts {
                let mut sketch = Sketch::default();
                for &v in part {
                    whole.record(v);
                    sketch.record(v);
                }
                merged.merge(&sketch);
            }
            prop_assert_eq!(merged.buckets().collect::<Vec<_>>(), whole.buckets().collect::<Vec<_>>());
            for q in [0.5, 0.95, 0.99] {
                prop_assert_eq!(merged.quantile(q), whole.quantile(q));
            }
        }
    }

    #[test]
    fn counts_past_32_bits_are_kept() {
        let mut sketch = Sketch::default();
        for v in 0..100u64 {
            sketch.record(v);
        }
        assert!(matches!(sketch.repr, Repr::Window { .. }));
        let mut big = Sketch::default();
        big.add(bucket(500), u64::from(u32::MAX) + 7);
        sketch.merge(&big);
        sketch.merge(&big);
        assert!(matches!(sketch.repr, Repr::Few(_)));
        let total: u64 = sketch.buckets().map(|(_, c)| c).sum();
        assert_eq!(total, 100 + 2 * (u64::from(u32::MAX) + 7));
        assert_eq!(sketch.count, total);
        assert_eq!(sketch.quantile(0.5), Some(500));
        // More values come in the list from then on.
        for v in 0..100u64 {
            sketch.record(v);
        }
        assert_eq!(sketch.buckets().map(|(_, c)| c).sum::<u64>(), total + 100);
    }

    #[test]
    fn memory_follows_the_buckets_in_use() {
        // A million durations in a few buckets: a short window.
        let mut busy = Sketch::default();
        for i in 0..1_000_000u64 {
            busy.record(1000 + i % 100);
        }
        assert!(matches!(&busy.repr, Repr::Window { counts, .. } if counts.len() <= 150));
        // Spread over the whole range: a list of the buckets in use.
        let mut spread = Sketch::default();
        for p in 0..52 {
            spread.record(1 << p);
            spread.record(3 << p);
        }
        assert!(matches!(&spread.repr, Repr::Few(few) if few.len() <= 104));
        let (low, len) = bucket_range(bucket(3 << 51));
        assert_eq!(spread.quantile(1.0), Some(low + len / 2));
    }
}
