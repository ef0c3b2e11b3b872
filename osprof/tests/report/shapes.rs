//! Requests of many points in the shapes that make tree algorithms
//! super-linear: a deep chain, wide siblings (all at once, one after the
//! other, in a staircase), parent cycles, orphans, a random tree, and rows
//! fragmented on purpose. Shared by `src/show/scale.rs` (the steps each
//! algorithm takes on 100 000 points), `tests/report/show.rs` (every
//! rendering whole) and `benches/show.rs`.

use osprof::model::{Point, Request};
use tracing_osprofiler::format::{PointIds, Timestamp};
use tracing_osprofiler::Id;

/// The request's base id; point ids are small numbers under it.
pub fn base() -> Id {
    id(0xba5e_0000_0000)
}

pub fn id(n: u64) -> Id {
    Id::from_uuid(uuid::Uuid::from_u128(
        0x5ca1_0000_0000_4000_8000_0000_0000_0000 | u128::from(n),
    ))
}

const T0: i64 = 1_700_000_000_000_000;

/// A finished point `trace` under `parent` (`None`: the request), from
/// `begin` to `end` microseconds after T0.
pub fn point(trace: u64, parent: Option<u64>, begin: i64, end: i64) -> Point {
    Point {
        name: format!("p{}", trace % 97),
        ids: PointIds {
            base_id: base(),
            parent_id: parent.map_or(base(), id),
            trace_id: id(trace),
        },
        start: Some(Timestamp::from_unix_micros(T0 + begin)),
        stop: Some(Timestamp::from_unix_micros(T0 + end)),
        duration: Some((end - begin) as f64 / 1e6),
        busy: None,
        source: (trace % 3) as usize,
    }
}

fn request(points: Vec<Point>) -> Request {
    Request {
        base_id: base(),
        points,
        sources: vec![0, 1, 2],
    }
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Every shape with `n` points, by name.
pub fn all(n: u64) -> Vec<(&'static str, Request)> {
    vec![
        ("deep chain", deep_chain(n)),
        ("wide, all at once", wide_concurrent(n)),
        ("wide, one after the other", wide_sequential(n)),
        ("wide, staircase", staircase(n)),
        ("one parent cycle", one_cycle(n)),
        ("cycle under many", cycle_under_many(n)),
        ("orphans", orphans(n)),
        ("random tree", random_tree(n)),
        ("fragmented rows", fragmented(n)),
    ]
}

/// Each point the child of the one before, nested in time.
pub fn deep_chain(n: u64) -> Request {
    request(
        (0..n)
            .map(|k| {
                let k = k as i64;
                point(
                    k as u64 + 1,
                    (k > 0).then_some(k as u64),
                    k,
                    4 * n as i64 - k,
                )
            })
            .collect(),
    )
}

/// One root and `n - 1` children that all run at the same time.
pub fn wide_concurrent(n: u64) -> Request {
    let mut points = vec![point(1, None, 0, 1_000_000)];
    points.extend((2..=n).map(|k| point(k, Some(1), 10 + (k % 7) as i64, 900_000)));
    request(points)
}

/// One root and `n - 1` short children one after the other.
pub fn wide_sequential(n: u64) -> Request {
    let mut points = vec![point(1, None, 0, 10 * n as i64 + 10)];
    points.extend((2..=n).map(|k| point(k, Some(1), 10 * k as i64, 10 * k as i64 + 3)));
    request(points)
}

/// One root and children that each overlap the next 50.
pub fn staircase(n: u64) -> Request {
    let mut points = vec![point(1, None, 0, 100 * n as i64 + 10_000)];
    points.extend((2..=n).map(|k| point(k, Some(1), 100 * k as i64, 100 * k as i64 + 5_000)));
    request(points)
}

/// All points in one parent cycle (only a forged log has one).
pub fn one_cycle(n: u64) -> Request {
    request(
        (1..=n)
            .map(|k| {
                let parent = if k == 1 { n } else { k - 1 };
                point(k, Some(parent), k as i64, 10 * n as i64)
            })
            .collect(),
    )
}

/// Two points that are each other's parent, under one of which hang
/// `n - 2` children, read before the cycle.
pub fn cycle_under_many(n: u64) -> Request {
    let mut points: Vec<Point> = (3..=n)
        .map(|k| point(k, Some(1), 10 + k as i64, 20 + k as i64))
        .collect();
    points.push(point(1, Some(2), 0, 10 * n as i64 + 100));
    points.push(point(2, Some(1), 5, 10 * n as i64 + 50));
    request(points)
}

/// Points whose parents are in no log: every one a root, overlapping.
pub fn orphans(n: u64) -> Request {
    request(
        (1..=n)
            .map(|k| point(k, Some(10_000_000 + k), (k % 1000) as i64, 5_000))
            .collect(),
    )
}

/// Each point under a random earlier one, nested in its time.
pub fn random_tree(n: u64) -> Request {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut spans: Vec<(i64, i64)> = vec![(0, 1 << 40)];
    let mut points = vec![point(1, None, 0, 1 << 40)];
    for k in 2..=n {
        let parent = 1 + rng.below(k - 1);
        let (b, e) = spans[(parent - 1) as usize];
        let len = (e - b).max(1) as u64;
        let begin = b + rng.below(len) as i64;
        let end = begin + rng.below((e - begin).max(1) as u64) as i64;
        spans.push((begin, end));
        points.push(point(k, Some(parent), begin, end));
    }
    request(points)
}

/// Siblings laid out to leave the rows fragmented: `n / 4` children at
/// the same time alternate between a long and a short one, so that every
/// other row frees early; then the rest are two-row subtrees (a child with
/// a child) that start after the short ones ended and fit in no single
/// freed row, so a first-fit search meets every gap.
pub fn fragmented(n: u64) -> Request {
    let quarter = n / 4;
    let long = 10 * n as i64;
    let mut points = vec![point(1, None, 0, long + 10)];
    let mut next = 2;
    for k in 0..quarter {
        let end = if k % 2 == 0 { long } else { 5 };
        points.push(point(next, Some(1), 1, end));
        next += 1;
    }
    while next < n {
        let begin = 10 + next as i64;
        points.push(point(next, Some(1), begin, begin + 20));
        points.push(point(next + 1, Some(next), begin + 1, begin + 19));
        next += 2;
    }
    request(points)
}
