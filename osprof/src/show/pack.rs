//! First-fit packing of sibling subtrees into rows, for the timeline: each
//! sibling's subtree is a block of `height` rows over its time envelope,
//! put at the first row offset where all its rows are free from the
//! envelope's begin on.
//!
//! Siblings are packed in the order their envelopes begin (ties in the
//! order given), so that "free from this time on" only grows with time:
//! a block's rows are given back when the next sibling begins at or after
//! the block's end. Rows are then only free or busy, and a segment tree
//! over the rows (the longest run of free rows in each node) finds the
//! first run of `height` free rows in `O(log n)`. A whole packing costs
//! `O(k log n)` for `k` siblings, whatever their heights and times: the
//! tree of a request of `n` points is laid out in `O(n log n)`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::steps::step;

/// Which rows are free: a segment tree over row numbers `0..capacity`,
/// each node holding the longest run of free rows at its start, at its end
/// and anywhere in it, and a pending "all free" or "all busy" for its
/// children. All rows start free.
pub(super) struct FreeRows {
    /// Leaves: a power of two, at least the capacity asked for.
    size: usize,
    prefix: Vec<usize>,
    suffix: Vec<usize>,
    best: Vec<usize>,
    /// For the children: `Some(true)` all free, `Some(false)` all busy.
    pending: Vec<Option<bool>>,
}

impl FreeRows {
    /// `capacity` free rows (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        let size = capacity.max(1).next_power_of_two();
        let mut len = vec![0usize; 2 * size];
        for (node, l) in len.iter_mut().enumerate().skip(1) {
            // A node at depth d (node in 2^d..2^(d+1)) covers size >> d rows.
            *l = size >> (usize::BITS - 1 - node.leading_zeros());
        }
        FreeRows {
            size,
            prefix: len.clone(),
            suffix: len.clone(),
            best: len,
            pending: vec![None; 2 * size],
        }
    }

    fn fill(&mut self, node: usize, len: usize, free: bool) {
        let runs = if free { len } else { 0 };
        self.prefix[node] = runs;
        self.suffix[node] = runs;
        self.best[node] = runs;
        self.pending[node] = Some(free);
    }

    fn push_down(&mut self, node: usize, len: usize) {
        if let Some(free) = self.pending[node].take() {
            self.fill(2 * node, len / 2, free);
            self.fill(2 * node + 1, len / 2, free);
        }
    }

    fn pull_up(&mut self, node: usize, len: usize) {
        let (l, r, half) = (2 * node, 2 * node + 1, len / 2);
        self.prefix[node] = if self.prefix[l] == half {
            half + self.prefix[r]
        } else {
            self.prefix[l]
        };
        self.suffix[node] = if self.suffix[r] == half {
            half + self.suffix[l]
        } else {
            self.suffix[r]
        };
        self.best[node] = self.best[l]
            .max(self.best[r])
            .max(self.suffix[l] + self.prefix[r]);
    }

    /// Marks rows `from..to` free or busy (rows past the capacity are
    /// ignored).
    pub(super) fn set(&mut self, from: usize, to: usize, free: bool) {
        let to = to.min(self.size);
        if from < to {
            self.set_in(1, 0, self.size, from, to, free);
        }
    }

    fn set_in(&mut self, node: usize, lo: usize, hi: usize, from: usize, to: usize, free: bool) {
        step(1);
        if to <= lo || hi <= from {
            return;
        }
        let len = hi - lo;
        if from <= lo && hi <= to {
            self.fill(node, len, free);
            return;
        }
        self.push_down(node, len);
        let mid = lo + len / 2;
        self.set_in(2 * node, lo, mid, from, to, free);
        self.set_in(2 * node + 1, mid, hi, from, to, free);
        self.pull_up(node, len);
    }

    /// The first row of the first run of `height` free rows, if any.
    pub(super) fn first_fit(&mut self, height: usize) -> Option<usize> {
        let height = height.max(1);
        if self.best[1] < height {
            return None;
        }
        let (mut node, mut lo, mut len) = (1, 0, self.size);
        // The run is in the left half, across the middle, or in the right
        // half; `best` says which, and a leaf is one row.
        while len > 1 {
            step(1);
            self.push_down(node, len);
            let (l, r, half) = (2 * node, 2 * node + 1, len / 2);
            if self.best[l] >= height {
                node = l;
            } else if self.suffix[l] + self.prefix[r] >= height {
                return Some(lo + half - self.suffix[l]);
            } else {
                node = r;
                lo += half;
            }
            len = half;
        }
        Some(lo)
    }
}

/// Packs `siblings` (see the module docs): sets each one's row `offset`
/// and returns the rows used. `rows` must have at least as many rows as
/// the siblings' heights add up to, all free; they are all free again on
/// return.
pub(super) fn pack(
    siblings: &[usize],
    height: &[usize],
    envelope: &[Option<(i64, i64)>],
    offset: &mut [usize],
    rows: &mut FreeRows,
) -> usize {
    if let [only] = siblings {
        offset[*only] = 0;
        return height[*only];
    }
    let span = |s: usize| envelope[s].unwrap_or((0, 0));
    let mut order = siblings.to_vec();
    // Stable: equal begins keep the order given.
    order.sort_by_key(|&s| span(s).0);
    step(order.len());
    // Blocks placed and not given back yet: (busy until, first row, rows).
    let mut busy: BinaryHeap<Reverse<(i64, usize, usize)>> = BinaryHeap::new();
    let mut used = 0;
    for s in order {
        let (begin, end) = span(s);
        while let Some(&Reverse((until, row, h))) = busy.peek() {
            if until > begin {
                break;
            }
            busy.pop();
            rows.set(row, row + h, true);
        }
        let h = height[s];
        // There is always room below the rows used (the capacity covers
        // every height); stacking there is the safe answer regardless.
        let row = rows.first_fit(h).unwrap_or(used);
        rows.set(row, row + h, false);
        busy.push(Reverse((end, row, h)));
        offset[s] = row;
        used = used.max(row + h);
    }
    rows.set(0, used, true);
    used
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The packing as it was first written (a scan of the rows' runs per
    /// sibling, quadratic), the reference for the one above.
    pub(in crate::show) fn pack_by_scanning(
        siblings: &[usize],
        height: &[usize],
        envelope: &[Option<(i64, i64)>],
        offset: &mut [usize],
    ) -> usize {
        let mut runs: Vec<(usize, usize, i64)> = Vec::new();
        for &s in siblings {
            let (begin, end) = envelope[s].unwrap_or((0, 0));
            let h = height[s];
            let mut r = 0;
            let mut k = 0;
            step(runs.len());
            while k < runs.len() && runs[k].0 < r + h {
                let (_, run_end, busy) = runs[k];
                if run_end > r && busy > begin {
                    r = run_end;
                }
                k += 1;
            }
            offset[s] = r;
            let mut next = Vec::with_capacity(runs.len() + 2);
            for &(a, b, busy) in &runs {
                if a < r {
                    next.push((a, b.min(r), busy));
                }
                if b > r + h {
                    next.push((a.max(r + h), b, busy));
                }
            }
            next.push((r, r + h, end));
            next.sort_unstable_by_key(|run| run.0);
            runs = next;
        }
        runs.last().map_or(0, |run| run.1)
    }

    #[test]
    fn free_rows_find_the_first_run() {
        let mut rows = FreeRows::new(10);
        assert_eq!(rows.first_fit(3), Some(0));
        rows.set(0, 2, false);
        rows.set(3, 4, false);
        rows.set(6, 7, false);
        assert_eq!(rows.first_fit(1), Some(2));
        assert_eq!(rows.first_fit(2), Some(4));
        assert_eq!(rows.first_fit(3), Some(7));
        // 10 rows asked, 16 kept: rows 7 to 15 are free.
        assert_eq!(rows.first_fit(9), Some(7));
        assert_eq!(rows.first_fit(10), None);
        rows.set(0, 16, true);
        assert_eq!(rows.first_fit(16), Some(0));
        assert_eq!(rows.first_fit(17), None);
        rows.set(5, 100, false);
        assert_eq!(rows.first_fit(6), None);
        assert_eq!(rows.first_fit(5), Some(0));
    }

    fn siblings() -> impl Strategy<Value = Vec<(usize, i64, i64)>> {
        prop::collection::vec((1usize..5, 0i64..60, 0i64..40), 1..40)
    }

    proptest! {
        /// Siblings sorted by begin (every log whose children begin after
        /// their parent): the very rows the first packing gave.
        #[test]
        fn packs_as_the_scan_did(mut blocks in siblings()) {
            blocks.sort_by_key(|b| b.1);
            let height: Vec<usize> = blocks.iter().map(|b| b.0).collect();
            let envelope: Vec<_> = blocks.iter().map(|b| Some((b.1, b.1 + b.2))).collect();
            let ids: Vec<usize> = (0..blocks.len()).collect();
            let mut expected = vec![0; blocks.len()];
            let used = pack_by_scanning(&ids, &height, &envelope, &mut expected);
            let mut rows = FreeRows::new(height.iter().sum());
            let mut offset = vec![0; blocks.len()];
            prop_assert_eq!(pack(&ids, &height, &envelope, &mut offset, &mut rows), used);
            prop_assert_eq!(offset, expected);
            prop_assert_eq!(rows.first_fit(height.iter().sum()), Some(0));
        }

        /// In any order: no two blocks overlap in rows and time.
        #[test]
        fn blocks_never_overlap(blocks in siblings()) {
            let height: Vec<usize> = blocks.iter().map(|b| b.0).collect();
            let envelope: Vec<_> = blocks.iter().map(|b| Some((b.1, b.1 + b.2))).collect();
            let ids: Vec<usize> = (0..blocks.len()).collect();
            let mut rows = FreeRows::new(height.iter().sum());
            let mut offset = vec![0; blocks.len()];
            let used = pack(&ids, &height, &envelope, &mut offset, &mut rows);
            for a in 0..blocks.len() {
                prop_assert!(offset[a] + height[a] <= used);
                for b in a + 1..blocks.len() {
                    let rows_meet = offset[a] < offset[b] + height[b] && offset[b] < offset[a] + height[a];
                    let (ea, eb) = (envelope[a].unwrap(), envelope[b].unwrap());
                    // The one packed first (earlier begin, then given
                    // first) is busy until its end: the other may begin there.
                    let (first, second) = if (ea.0, a) <= (eb.0, b) { (ea, eb) } else { (eb, ea) };
                    let times_meet = first.1 > second.0;
                    prop_assert!(!(rows_meet && times_meet), "{a} {b} {offset:?}");
                }
            }
        }
    }
}
