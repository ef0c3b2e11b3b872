//! Chrome trace event JSON (the JSON Object Format), which Perfetto
//! (<https://ui.perfetto.dev>) and `chrome://tracing` open.
//!
//! - one complete event (`"ph": "X"`) per point, `ts`/`dur` in microseconds
//!   from the request's first begin;
//! - one process (`pid`) per log the request was read from, named by a
//!   `process_name` metadata event (`log 0`, `log 1`, … in the order the
//!   logs were given; `log 0: api.log` when the logs are named);
//! - threads (`tid`) are lanes: events on one lane always nest properly
//!   (Perfetto mis-draws a lane whose slices overlap without nesting), so
//!   concurrent siblings land on different lanes while a child that fits
//!   inside its parent stays on the parent's lane;
//! - `args`: `base_id`, `parent_id`, `trace_id`, `self_ms`, `busy_ms` when
//!   the stop line gives a busy time, and `critical_path: true` or
//!   `unfinished` where they apply.
//!
//! A point without a stop line is drawn with zero duration (osprofiler's
//! rule); one without any time cannot be placed and is left out.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashSet};
use std::io::{self, Write};

use std::fmt::Write as _;

use crate::model::{secs_to_micros, Tree};
use crate::render::escape::json_str;
use crate::steps::step;

use super::{fmt_ms, preorder};

/// Writes `tree` as a Chrome trace (see the module docs).
///
/// # Errors
///
/// Any error from `out`.
pub fn write_chrome_trace(tree: &Tree<'_>, out: &mut dyn Write) -> io::Result<()> {
    write(tree, &[], out)
}

/// [`write_chrome_trace`], each process named after its log when `logs`
/// names them (`log 0: api.log`).
pub(super) fn write(tree: &Tree<'_>, logs: &[String], out: &mut dyn Write) -> io::Result<()> {
    let request = tree.request();
    let critical: HashSet<usize> = tree.critical_path().into_iter().collect();
    let placed = place_all(tree);
    let used: BTreeSet<(usize, usize)> = placed.iter().map(|p| (p.source, p.lane)).collect();
    let mut sources: Vec<usize> = used.iter().map(|&(s, _)| s).collect();
    sources.dedup();

    // Each event is one line written as serde_json writes an object (keys
    // sorted, no spaces), straight into a buffer: a request may have
    // hundreds of thousands of points.
    let mut events = Events::new(out)?;
    for source in sources {
        let pid = pid(source);
        events.line(|s| {
            let name = json_str(&match logs.get(source) {
                Some(log) => format!("log {source}: {log}"),
                None => format!("log {source}"),
            });
            let _ = write!(
                s,
                r#"{{"args":{{"name":{name}}},"name":"process_name","ph":"M","pid":{pid},"tid":0}}"#
            );
        })?;
        events.line(|s| {
            let _ = write!(
                s,
                r#"{{"args":{{"sort_index":{source}}},"name":"process_sort_index","ph":"M","pid":{pid},"tid":0}}"#
            );
        })?;
    }
    for &(source, lane) in &used {
        let (pid, tid) = (pid(source), lane + 1);
        events.line(|s| {
            let _ = write!(
                s,
                r#"{{"args":{{"name":"lane {tid}"}},"name":"thread_name","ph":"M","pid":{pid},"tid":{tid}}}"#
            );
        })?;
    }
    for p in &placed {
        let point = tree.point(p.index);
        let ids = &point.ids;
        events.line(|s| {
            let _ = write!(s, r#"{{"args":{{"base_id":"{}","#, ids.base_id);
            if let Some(busy) = point.busy {
                let _ = write!(s, r#""busy_ms":{},"#, ms_number(secs_to_micros(busy)));
            }
            if critical.contains(&p.index) {
                s.push_str(r#""critical_path":true,"#);
            }
            let _ = write!(
                s,
                r#""parent_id":"{}","self_ms":{},"trace_id":"{}""#,
                ids.parent_id,
                ms_number(secs_to_micros(tree.self_secs(p.index))),
                ids.trace_id,
            );
            match (point.start, point.stop) {
                (Some(_), None) => s.push_str(r#","unfinished":"no stop line""#),
                (None, _) => s.push_str(r#","unfinished":"no start line""#),
                _ => {}
            }
            let _ = write!(
                s,
                r#"}},"cat":"osprofiler","dur":{},"name":{},"ph":"X","pid":{},"tid":{},"ts":{}}}"#,
                p.end - p.begin,
                json_str(&point.name),
                pid(p.source),
                p.lane + 1,
                p.begin,
            );
        })?;
    }
    let out = events.finish()?;
    writeln!(
        out,
        "\n],\n\"displayTimeUnit\": \"ms\",\n\"otherData\": {{\"base_id\": \"{}\", \"generator\": \"tracing-osprofiler osprof show\"}}}}",
        request.base_id
    )
}

/// The event lines, separated by `,\n`, gathered in a buffer written out
/// in large pieces.
struct Events<'w> {
    out: &'w mut dyn Write,
    buf: String,
    first: bool,
}

impl<'w> Events<'w> {
    fn new(out: &'w mut dyn Write) -> io::Result<Self> {
        out.write_all(b"{\"traceEvents\": [\n")?;
        Ok(Events {
            out,
            buf: String::with_capacity(1 << 16),
            first: true,
        })
    }

    fn line(&mut self, write: impl FnOnce(&mut String)) -> io::Result<()> {
        if !std::mem::replace(&mut self.first, false) {
            self.buf.push_str(",\n");
        }
        write(&mut self.buf);
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(self.buf.as_bytes())?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(self) -> io::Result<&'w mut dyn Write> {
        self.out.write_all(self.buf.as_bytes())?;
        Ok(self.out)
    }
}

/// A point on its lane: `begin` and `end` in microseconds from the
/// request's first begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placed {
    pub(super) source: usize,
    pub(super) begin: i64,
    pub(super) end: i64,
    pub(super) index: usize,
    pub(super) lane: usize,
}

/// Every point that has a time, on its lane (see [`Lanes`]), in the order
/// the events are written: by log, begin, longer first, then pre-order.
pub(super) fn place_all(tree: &Tree<'_>) -> Vec<Placed> {
    let request = tree.request();
    let first = request.first_micros().unwrap_or(0);
    // (source, begin, end, pre-order position, index): sorting puts a parent
    // before the children it contains, which the lane packing relies on.
    let mut spans: Vec<(usize, i64, i64, usize, usize)> = preorder(tree)
        .into_iter()
        .enumerate()
        .filter_map(|(pos, (i, _))| {
            let point = tree.point(i);
            let begin = point.begin_micros()? - first;
            let end = point.end_micros().map_or(begin, |e| e - first).max(begin);
            Some((point.source, begin, end, pos, i))
        })
        .collect();
    spans.sort_by_key(|&(source, begin, end, pos, _)| (source, begin, Reverse(end), pos));

    let n = request.points.len();
    let mut parent = vec![None; n];
    for i in 0..n {
        for &c in tree.children(i) {
            parent[c] = Some(i);
        }
    }
    let mut lanes = Lanes::default();
    // Each placed point's (log, lane).
    let mut lane_of: Vec<Option<(usize, usize)>> = vec![None; n];
    let mut current_source = None;
    let mut placed = Vec::with_capacity(spans.len());
    for (source, begin, end, _, i) in spans {
        if current_source != Some(source) {
            current_source = Some(source);
            lanes = Lanes::default();
        }
        // A parent in another log is in another process: no lane to share.
        let parent = parent[i].and_then(|p| match lane_of[p] {
            Some((s, lane)) if s == source => Some((p, lane)),
            _ => None,
        });
        let lane = lanes.place(i, parent, begin, end);
        lane_of[i] = Some((source, lane));
        placed.push(Placed {
            source,
            begin,
            end,
            index: i,
            lane,
        });
    }
    placed
}

/// Chrome's pid for a log: Perfetto treats pid 0 as the idle process.
fn pid(source: usize) -> usize {
    source + 1
}

/// Milliseconds as a JSON number, as serde_json writes the value of
/// three decimals (`12.5`, `7.0`).
fn ms_number(micros: i64) -> String {
    fmt_ms(micros)
        .parse::<f64>()
        .ok()
        .and_then(|ms| serde_json::to_string(&ms).ok())
        .unwrap_or_else(|| "null".to_owned())
}

/// The lanes of one process. A point goes under its parent (`(parent
/// index, parent lane)`) when the parent is the innermost span still open
/// on that lane and contains it, else on the first lane with nothing open
/// at its begin. Spans must come sorted by begin, longer first. So events
/// on one lane always nest, and a point never appears nested under a span
/// that is not its parent.
///
/// Each lane is a stack of its open spans `(end, index)`, ends never
/// growing towards the top, so a lane has nothing open at `t` exactly when
/// its outermost span ends by `t`. Since begins only grow, a lane's stack
/// is emptied of ended spans when it is looked at, and the lanes free at
/// the current begin are kept in an ordered set, fed from a heap of the
/// others' outermost ends: each point costs `O(log lanes)`, not a look at
/// every lane.
#[derive(Default)]
struct Lanes {
    stacks: Vec<Vec<(i64, usize)>>,
    /// Lanes with nothing open at the current begin.
    free: BTreeSet<usize>,
    /// (end of the outermost open span, lane) of every other lane.
    busy: BinaryHeap<Reverse<(i64, usize)>>,
}

impl Lanes {
    /// Puts point `i`, spanning `[begin, end]`, on a lane (see the type's
    /// docs) and returns the lane.
    fn place(&mut self, i: usize, parent: Option<(usize, usize)>, begin: i64, end: i64) -> usize {
        step(1);
        while let Some(&Reverse((until, lane))) = self.busy.peek() {
            if until > begin {
                break;
            }
            step(1);
            self.busy.pop();
            self.free.insert(lane);
        }
        if let Some((p, l)) = parent {
            if let Some(stack) = self.stacks.get_mut(l) {
                while stack.last().is_some_and(|&(top, _)| top <= begin) {
                    step(1);
                    stack.pop();
                }
                if stack
                    .last()
                    .is_some_and(|&(top, idx)| idx == p && top >= end)
                {
                    stack.push((end, i));
                    return l;
                }
            }
        }
        let lane = self.free.pop_first().unwrap_or_else(|| {
            self.stacks.push(Vec::new());
            self.stacks.len() - 1
        });
        // Whatever the lane still holds ended by `begin`.
        self.stacks[lane].clear();
        self.stacks[lane].push((end, i));
        self.busy.push(Reverse((end, lane)));
        lane
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::Lanes;
    use crate::steps::step;
    use proptest::prelude::*;

    /// The placing as it was first written (every lane looked at for every
    /// point), the reference for `Lanes`.
    pub(in crate::show) fn place_by_scanning(
        lanes: &mut Vec<Vec<(i64, usize)>>,
        i: usize,
        parent: Option<(usize, usize)>,
        begin: i64,
        end: i64,
    ) -> usize {
        step(lanes.len());
        for lane in lanes.iter_mut() {
            while lane.last().is_some_and(|&(top, _)| top <= begin) {
                lane.pop();
            }
        }
        if let Some((p, l)) = parent {
            if let Some(lane) = lanes.get_mut(l) {
                if lane
                    .last()
                    .is_some_and(|&(top, idx)| idx == p && top >= end)
                {
                    lane.push((end, i));
                    return l;
                }
            }
        }
        if let Some(l) = lanes.iter().position(Vec::is_empty) {
            lanes[l].push((end, i));
            return l;
        }
        lanes.push(vec![(end, i)]);
        lanes.len() - 1
    }

    #[test]
    fn overlapping_siblings_get_their_own_lane_and_children_stay() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.place(0, None, 0, 100), 0); // parent
        assert_eq!(lanes.place(1, Some((0, 0)), 10, 50), 0); // child A
        assert_eq!(lanes.place(2, Some((0, 0)), 20, 60), 1); // child B overlaps A
        assert_eq!(lanes.place(3, Some((2, 1)), 25, 30), 1); // B's child, not under A
        assert_eq!(lanes.place(4, Some((0, 0)), 30, 40), 2); // inside A, not A's child
        assert_eq!(lanes.place(5, Some((0, 0)), 70, 90), 0); // child C after all
        assert_eq!(lanes.place(6, Some((0, 0)), 95, 120), 1); // outlives the parent
        assert_eq!(lanes.place(7, None, 96, 97), 2); // another root
    }

    proptest! {
        /// Random points (sorted by begin, longer first, as the writer
        /// sorts them) with random earlier parents: the lanes the scan gave.
        #[test]
        fn lanes_are_the_scans(mut spans in prop::collection::vec((0i64..50, 0i64..30, any::<prop::sample::Index>()), 1..60)) {
            spans.sort_by_key(|&(b, d, _)| (b, std::cmp::Reverse(b + d)));
            let mut scan = Vec::new();
            let mut lanes = Lanes::default();
            let mut lane_of = Vec::new();
            for (i, &(begin, len, pick)) in spans.iter().enumerate() {
                let parent = (i > 0).then(|| {
                    let p = pick.index(i);
                    (p, lane_of[p])
                });
                let expected = place_by_scanning(&mut scan, i, parent, begin, begin + len);
                prop_assert_eq!(lanes.place(i, parent, begin, begin + len), expected);
                lane_of.push(expected);
            }
        }
    }
}
