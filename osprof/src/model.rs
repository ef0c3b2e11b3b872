//! The assembled data every report works on: a [`Point`] (a start line and
//! its stop line matched by `trace_id`), a [`Request`] (the points of one
//! `base_id`, from every log), and a [`Tree`] of a request's points with
//! each point's self time and the critical path.
//!
//! # Self time
//!
//! A point's self time is the part of its wall time that none of its
//! children covers: its interval minus the *union* of its children's
//! intervals (each clipped to the parent's). Children that run concurrently
//! (spawned tasks) therefore count once, and self time is never negative.
//! A point whose start or stop is missing covers nothing and has no self time.

use std::collections::HashMap;

use tracing_osprofiler::format::{Phase, PointIds, Timestamp};
use tracing_osprofiler::Id;

use crate::scan::for_each_parsed;
use crate::source::Inputs;
use crate::{Error, Unreadable};

/// One trace point, assembled from its `-start` and `-stop` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The name without `-start` / `-stop`.
    pub name: String,
    /// The three ids.
    pub ids: PointIds,
    /// When the start line says the point began.
    pub start: Option<Timestamp>,
    /// When the stop line says the point ended.
    pub stop: Option<Timestamp>,
    /// The duration the stop line gives, in seconds.
    pub duration: Option<f64>,
    /// The busy time the stop line gives, in seconds (the time the point's
    /// span was entered on at least one thread); `None` when it gives none
    /// (Python services, older logs): unknown, not 0.
    pub busy: Option<f64>,
    /// Index of the log (in the order given) the point's first line came from.
    pub source: usize,
}

impl Point {
    /// Whether both the start and the stop line were seen.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.start.is_some() && self.stop.is_some()
    }

    /// When the point began, in microseconds since the epoch: the start
    /// line, or else the stop line minus the duration.
    #[must_use]
    pub fn begin_micros(&self) -> Option<i64> {
        match (self.start, self.stop, self.duration) {
            (Some(start), _, _) => Some(start.unix_micros()),
            (None, Some(stop), Some(d)) => {
                Some(stop.unix_micros().saturating_sub(secs_to_micros(d)))
            }
            _ => None,
        }
    }

    /// When the point ended, in microseconds since the epoch: the begin plus
    /// the duration (the monotonic measurement), or else the stop line.
    #[must_use]
    pub fn end_micros(&self) -> Option<i64> {
        match (self.begin_micros(), self.duration, self.stop) {
            (Some(begin), Some(d), _) => Some(begin.saturating_add(secs_to_micros(d))),
            (_, _, Some(stop)) => Some(stop.unix_micros()),
            _ => None,
        }
    }

    /// The wall time in seconds: the stop line's duration, 0 when unknown
    /// (osprofiler's rule for a point missing its start or stop).
    #[must_use]
    pub fn wall_secs(&self) -> f64 {
        self.duration.unwrap_or(0.0)
    }
}

/// Seconds to whole microseconds, rounded half away from zero,
/// saturating (NaN is 0): `(secs * 1e6).round() as i64`, without the call
/// to `round` that a target without SSE4.1 makes for every stop line.
#[must_use]
#[inline]
pub fn secs_to_micros(secs: f64) -> i64 {
    let micros = secs * 1e6;
    let whole = micros as i64;
    // Exact: below 2^52 in magnitude the fraction is representable, above
    // it `micros` is whole.
    let fraction = micros - whole as f64;
    if fraction >= 0.5 {
        whole.saturating_add(1)
    } else if fraction <= -0.5 {
        whole.saturating_sub(1)
    } else {
        whole
    }
}

/// The points of one request, from every log it appears in.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The request's id.
    pub base_id: Id,
    /// Its points, in the order their first line was read.
    pub points: Vec<Point>,
    /// Indexes of the logs (in the order given) the request appears in.
    pub sources: Vec<usize>,
}

impl Request {
    /// The earliest begin of any point, in microseconds since the epoch.
    #[must_use]
    pub fn first_micros(&self) -> Option<i64> {
        self.points.iter().filter_map(Point::begin_micros).min()
    }

    /// The latest end of any point, in microseconds since the epoch.
    #[must_use]
    pub fn last_micros(&self) -> Option<i64> {
        self.points.iter().filter_map(Point::end_micros).max()
    }

    /// From the first begin to the last end, in seconds; 0 (unknown) when
    /// that is more than 100 years, the bound of a duration
    /// ([`wall_too_long`](Self::wall_too_long)).
    #[must_use]
    pub fn wall_secs(&self) -> f64 {
        match (self.first_micros(), self.last_micros()) {
            (Some(a), Some(b)) if b > a && !self.wall_too_long() => {
                b.saturating_sub(a) as f64 / 1e6
            }
            _ => 0.0,
        }
    }

    /// Whether the points span more than 100 years
    /// ([`MAX_DURATION_SECS`](tracing_osprofiler::format::MAX_DURATION_SECS)):
    /// their timestamps cannot all be true (a clock at year 1 or 9999), and
    /// the wall time is unknown.
    #[must_use]
    pub fn wall_too_long(&self) -> bool {
        match (self.first_micros(), self.last_micros()) {
            (Some(a), Some(b)) => {
                b.saturating_sub(a) as f64 / 1e6 > tracing_osprofiler::format::MAX_DURATION_SECS
            }
            _ => false,
        }
    }
}

/// A request's points as a tree: a node's parent is the point whose
/// `trace_id` is its `parent_id`; points without a known parent are roots.
/// Children and roots are sorted by begin time.
#[derive(Debug, Clone)]
pub struct Tree<'r> {
    request: &'r Request,
    roots: Vec<usize>,
    children: Vec<Vec<usize>>,
    self_micros: Vec<i64>,
}

impl<'r> Tree<'r> {
    /// Builds the tree of `request`.
    #[must_use]
    pub fn new(request: &'r Request) -> Self {
        let points = &request.points;
        let mut by_trace: std::collections::HashMap<Id, usize> =
            std::collections::HashMap::with_capacity(points.len());
        for (i, p) in points.iter().enumerate() {
            by_trace.entry(p.ids.trace_id).or_insert(i);
        }
        let mut roots = Vec::new();
        let mut children = vec![Vec::new(); points.len()];
        let mut parent_of = vec![None; points.len()];
        for (i, p) in points.iter().enumerate() {
            match by_trace.get(&p.ids.parent_id) {
                Some(&parent) if parent != i => {
                    children[parent].push(i);
                    parent_of[i] = Some(parent);
                }
                _ => roots.push(i),
            }
        }
        let key = |&i: &usize| (points[i].begin_micros().unwrap_or(i64::MAX), i);
        cut_cycles(&mut roots, &mut children, &parent_of, key);
        roots.sort_by_key(key);
        for c in &mut children {
            c.sort_by_key(key);
        }
        let self_micros = (0..points.len())
            .map(|i| self_time_micros(&points[i], children[i].iter().map(|&c| &points[c])))
            .collect();
        Tree {
            request,
            roots,
            children,
            self_micros,
        }
    }

    /// The request the tree is built from.
    #[must_use]
    pub fn request(&self) -> &'r Request {
        self.request
    }

    /// The point at `index` (an index into `request().points`).
    #[must_use]
    pub fn point(&self, index: usize) -> &'r Point {
        &self.request.points[index]
    }

    /// The root points, sorted by begin.
    #[must_use]
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// The children of the point at `index`, sorted by begin.
    #[must_use]
    pub fn children(&self, index: usize) -> &[usize] {
        &self.children[index]
    }

    /// The self time of the point at `index`, in seconds (see the module
    /// docs).
    #[must_use]
    pub fn self_secs(&self, index: usize) -> f64 {
        self.self_micros[index] as f64 / 1e6
    }

    /// The critical path: from the root that ends last, repeatedly the child
    /// that ends last; the chain of points that decided the request's end.
    #[must_use]
    pub fn critical_path(&self) -> Vec<usize> {
        let end = |i: &usize| self.point(*i).end_micros().unwrap_or(i64::MIN);
        let mut path = Vec::new();
        let mut next = self.roots.iter().copied().max_by_key(end);
        while let Some(i) = next {
            path.push(i);
            next = self.children[i].iter().copied().max_by_key(end);
        }
        path
    }
}

/// Makes every point reachable from a root. A parent cycle (only in a
/// forged log) leaves the points on it, and every point under them,
/// unreachable: each cycle loses one link, the one above its first point
/// by `key` (the earliest begin), which becomes a root, so that nothing is
/// lost and everything under the cycle stays where it hangs.
///
/// Linear: a point not reachable is walked up to its cycle once, since
/// cutting that cycle makes every point of the walk reachable, and each
/// cut point is taken out of one list (its parent's, whose other children
/// are on no cycle).
fn cut_cycles<K: Ord>(
    roots: &mut Vec<usize>,
    children: &mut [Vec<usize>],
    parent_of: &[Option<usize>],
    key: impl Fn(&usize) -> K,
) {
    let n = children.len();
    let mut reachable = vec![false; n];
    let reach = |from: usize, reachable: &mut Vec<bool>, children: &[Vec<usize>]| {
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut reachable[i], true) {
                crate::steps::step(1 + children[i].len());
                stack.extend(&children[i]);
            }
        }
    };
    for &root in roots.iter() {
        reach(root, &mut reachable, children);
    }
    // Which walk up saw a point last (the point the walk started from).
    let mut walked = vec![usize::MAX; n];
    let mut cut = Vec::new();
    for i in 0..n {
        if reachable[i] {
            continue;
        }
        // Up from i until a point repeats: that point is on the cycle.
        let mut j = i;
        while walked[j] != i {
            crate::steps::step(1);
            walked[j] = i;
            match parent_of[j] {
                Some(p) => j = p,
                // Cannot happen: a point without a parent is a root.
                None => break,
            }
        }
        // Round the cycle for its first point.
        let mut first = j;
        let mut k = j;
        while let Some(p) = parent_of[k].filter(|&p| p != j) {
            crate::steps::step(1);
            if key(&p) < key(&first) {
                first = p;
            }
            k = p;
        }
        roots.push(first);
        cut.push(first);
        reach(first, &mut reachable, children);
    }
    for c in cut {
        if let Some(p) = parent_of[c] {
            crate::steps::step(children[p].len());
            children[p].retain(|&x| x != c);
        }
    }
}

/// The part of `parent`'s interval not covered by the union of its
/// children's intervals, in microseconds: [`uncovered_micros`] of the
/// points' intervals.
#[must_use]
pub fn self_time_micros<'p>(parent: &Point, children: impl Iterator<Item = &'p Point>) -> i64 {
    let (Some(begin), Some(end)) = (parent.begin_micros(), parent.end_micros()) else {
        return 0;
    };
    let mut spans = children
        .filter_map(|c| Some((c.begin_micros()?, c.end_micros()?)))
        .collect();
    uncovered_micros(begin, end, &mut spans)
}

/// Self time, the one computation every report uses (`show`'s [`Tree`]
/// and `rank --self`): the part of `begin..end` (microseconds) that no
/// interval of `children` covers, each child clipped to the parent and
/// overlapping children counted once. Never negative; saturating.
/// `children` is left clipped and merged.
///
/// ```
/// use osprof::model::uncovered_micros;
/// assert_eq!(uncovered_micros(0, 100, &mut vec![(10, 30), (20, 40), (90, 200)]), 60);
/// ```
#[must_use]
pub fn uncovered_micros(begin: i64, end: i64, children: &mut Vec<(i64, i64)>) -> i64 {
    if end <= begin {
        return 0;
    }
    children.retain_mut(|(a, b)| {
        *a = (*a).max(begin);
        *b = (*b).min(end);
        b > a
    });
    merge_intervals(children);
    let covered = children
        .iter()
        .fold(0i64, |sum, (a, b)| sum.saturating_add(b.saturating_sub(*a)));
    end.saturating_sub(begin).saturating_sub(covered).max(0)
}

/// Sorts intervals and merges the overlapping ones, in place: the same
/// union in fewer intervals.
pub fn merge_intervals(spans: &mut Vec<(i64, i64)>) {
    spans.sort_unstable();
    let mut merged = 0;
    for i in 0..spans.len() {
        let (a, b) = spans[i];
        if merged > 0 && a <= spans[merged - 1].1 {
            spans[merged - 1].1 = spans[merged - 1].1.max(b);
        } else {
            spans[merged] = (a, b);
            merged += 1;
        }
    }
    spans.truncate(merged);
}

/// Gathers the points of one request from `inputs`, keeping only that
/// request's lines in memory; `None` when no line has that `base_id`.
/// Starts and stops are matched by `trace_id` across all logs.
///
/// # Errors
///
/// [`Error::Open`] or [`Error::Read`] when a log cannot be opened or
/// read to its end.
pub fn load_request(inputs: &Inputs, base_id: Id) -> Result<Option<Request>, Error> {
    Ok(load_request_kept(inputs, base_id)?.map(|(request, _)| request))
}

/// As [`load_request`], with why tail capture kept the request (`slow` or
/// `error`) when its root's start line says so (`capture.kept` in its
/// fields); `None` for a request its caller signed.
pub(crate) fn load_request_kept(
    inputs: &Inputs,
    base_id: Id,
) -> Result<Option<(Request, Option<&'static str>)>, Error> {
    let mut points: Vec<Point> = Vec::new();
    let mut by_trace: HashMap<Id, usize> = HashMap::new();
    let mut sources: Vec<usize> = Vec::new();
    let mut kept = None;
    let mut unreadable = Unreadable::default();
    for_each_parsed(inputs, &mut unreadable, |source, line| {
        if line.ids.base_id != base_id {
            return;
        }
        if line.phase == Phase::Start && line.ids.parent_id == base_id && kept.is_none() {
            kept = crate::list::kept_by_capture(line.extra.as_bytes());
        }
        if !sources.contains(&source) {
            sources.push(source);
        }
        let i = *by_trace.entry(line.ids.trace_id).or_insert_with(|| {
            points.push(Point {
                name: line.name.to_string(),
                ids: line.ids,
                start: None,
                stop: None,
                duration: None,
                busy: None,
                source,
            });
            points.len() - 1
        });
        let point = &mut points[i];
        match line.phase {
            Phase::Start => point.start = Some(line.timestamp),
            Phase::Stop => {
                point.stop = Some(line.timestamp);
                point.duration = line.duration;
                point.busy = line.busy;
            }
        }
    })?;
    if points.is_empty() {
        return Ok(None);
    }
    sources.sort_unstable();
    Ok(Some((
        Request {
            base_id,
            points,
            sources,
        },
        kept,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(trace: u128, parent: u128, begin: i64, secs: f64) -> Point {
        Point {
            name: format!("p{trace}"),
            ids: PointIds {
                base_id: Id::from_uuid(uuid::Uuid::from_u128(1)),
                parent_id: Id::from_uuid(uuid::Uuid::from_u128(parent)),
                trace_id: Id::from_uuid(uuid::Uuid::from_u128(trace)),
            },
            start: Some(Timestamp::from_unix_micros(begin)),
            stop: Some(Timestamp::from_unix_micros(begin + secs_to_micros(secs))),
            duration: Some(secs),
            busy: None,
            source: 0,
        }
    }

    #[test]
    fn concurrent_children_count_once_in_self_time() {
        let request = Request {
            base_id: Id::from_uuid(uuid::Uuid::from_u128(1)),
            points: vec![
                point(2, 1, 0, 1.0),
                point(3, 2, 100_000, 0.5),
                point(4, 2, 200_000, 0.5),
                point(5, 4, 300_000, 0.1),
            ],
            sources: vec![0],
        };
        let tree = Tree::new(&request);
        assert_eq!(tree.roots(), &[0]);
        assert_eq!(tree.children(0), &[1, 2]);
        // children cover 0.1..0.7 of 0..1.0
        assert!((tree.self_secs(0) - 0.4).abs() < 1e-9);
        assert!((tree.self_secs(2) - 0.4).abs() < 1e-9);
        assert_eq!(tree.critical_path(), vec![0, 2, 3]);
    }

    #[test]
    fn secs_to_micros_rounds_as_round_does() {
        let edges = [
            0.0,
            -0.0,
            0.4999994,
            0.0000005,
            0.0000015,
            0.0000025,
            -0.0000005,
            1e-7,
            // 0.5 µs less one ulp, and around 2^52 µs.
            f64::from_bits(0.5e-6f64.to_bits() - 1),
            4_503_599_627.370_496,
            4_503_599_627.370_497,
            9.3e12,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        for secs in edges {
            assert_eq!(
                secs_to_micros(secs),
                (secs * 1e6).round() as i64,
                "{secs:e}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn secs_to_micros_is_round(bits in proptest::prelude::any::<u64>(), small in -5e9f64..5e9) {
            for secs in [f64::from_bits(bits), small, small / 1e6] {
                proptest::prop_assert_eq!(secs_to_micros(secs), (secs * 1e6).round() as i64);
            }
        }
    }

    #[test]
    fn uncovered_counts_overlaps_once() {
        assert_eq!(
            uncovered_micros(0, 100, &mut vec![(10, 30), (20, 40), (90, 200)]),
            60
        );
        assert_eq!(uncovered_micros(0, 100, &mut vec![]), 100);
        assert_eq!(uncovered_micros(5, 5, &mut vec![(0, 10)]), 0);
        assert_eq!(uncovered_micros(0, 100, &mut vec![(-50, 150)]), 0);
        assert_eq!(
            uncovered_micros(i64::MIN, i64::MAX, &mut vec![(1, 2)]),
            i64::MAX - 1
        );
    }
}
