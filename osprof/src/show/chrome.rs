//! Chrome trace event JSON (the JSON Object Format), which Perfetto
//! (<https://ui.perfetto.dev>) and `chrome://tracing` open.
//!
//! - one complete event (`"ph": "X"`) per point, `ts`/`dur` in microseconds
//!   from the request's first begin;
//! - one process (`pid`) per log the request was read from, named by a
//!   `process_name` metadata event (`log 0`, `log 1`, … in the order the
//!   logs were given);
//! - threads (`tid`) are lanes: events on one lane always nest properly
//!   (Perfetto mis-draws a lane whose slices overlap without nesting), so
//!   concurrent siblings land on different lanes while a child that fits
//!   inside its parent stays on the parent's lane;
//! - `args`: `base_id`, `parent_id`, `trace_id`, `self_ms`, and
//!   `critical_path: true` or `unfinished` where they apply.
//!
//! A point without a stop line is drawn with zero duration (osprofiler's
//! rule); one without any time cannot be placed and is left out.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Write};

use serde_json::{json, Value};

use crate::model::{secs_to_micros, Tree};
use crate::render::escape::json_compact;

use super::{fmt_ms, preorder};

/// Writes `tree` as a Chrome trace (see the module docs).
///
/// # Errors
///
/// Any error from `out`.
pub fn write_chrome_trace(tree: &Tree<'_>, out: &mut dyn Write) -> io::Result<()> {
    let request = tree.request();
    let first = request.first_micros().unwrap_or(0);
    let critical: HashSet<usize> = tree.critical_path().into_iter().collect();

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
    spans.sort_by_key(|&(source, begin, end, pos, _)| (source, begin, std::cmp::Reverse(end), pos));

    let n = request.points.len();
    let mut parent = vec![None; n];
    for i in 0..n {
        for &c in tree.children(i) {
            parent[c] = Some(i);
        }
    }
    let mut events: Vec<Value> = Vec::with_capacity(spans.len() + 8);
    let mut lanes: Vec<Vec<(i64, usize)>> = Vec::new();
    let mut lane_of: Vec<Option<usize>> = vec![None; n];
    let mut current_source = None;
    let mut used: BTreeSet<(usize, usize)> = BTreeSet::new();
    for &(source, begin, end, _, i) in &spans {
        if current_source != Some(source) {
            current_source = Some(source);
            lanes.clear();
            lane_of.iter_mut().for_each(|l| *l = None);
        }
        let parent = parent[i].and_then(|p| Some((p, lane_of[p]?)));
        let lane = place(&mut lanes, i, parent, begin, end);
        lane_of[i] = Some(lane);
        used.insert((source, lane));
        let point = tree.point(i);
        let mut args = serde_json::Map::new();
        args.insert("base_id".into(), json!(point.ids.base_id.to_string()));
        args.insert("parent_id".into(), json!(point.ids.parent_id.to_string()));
        args.insert("trace_id".into(), json!(point.ids.trace_id.to_string()));
        args.insert(
            "self_ms".into(),
            ms_number(secs_to_micros(tree.self_secs(i))),
        );
        if critical.contains(&i) {
            args.insert("critical_path".into(), json!(true));
        }
        match (point.start, point.stop) {
            (Some(_), None) => {
                args.insert("unfinished".into(), json!("no stop line"));
            }
            (None, _) => {
                args.insert("unfinished".into(), json!("no start line"));
            }
            _ => {}
        }
        events.push(json!({
            "name": point.name,
            "cat": "osprofiler",
            "ph": "X",
            "ts": begin,
            "dur": end - begin,
            "pid": pid(source),
            "tid": lane + 1,
            "args": Value::Object(args),
        }));
    }

    let mut metadata: Vec<Value> = Vec::new();
    let mut sources: Vec<usize> = used.iter().map(|&(s, _)| s).collect();
    sources.dedup();
    for source in sources {
        metadata.push(json!({
            "name": "process_name", "ph": "M", "pid": pid(source), "tid": 0,
            "args": {"name": format!("log {source}")},
        }));
        metadata.push(json!({
            "name": "process_sort_index", "ph": "M", "pid": pid(source), "tid": 0,
            "args": {"sort_index": source},
        }));
    }
    for &(source, lane) in &used {
        metadata.push(json!({
            "name": "thread_name", "ph": "M", "pid": pid(source), "tid": lane + 1,
            "args": {"name": format!("lane {}", lane + 1)},
        }));
    }

    out.write_all(b"{\"traceEvents\": [\n")?;
    for (k, event) in metadata.iter().chain(&events).enumerate() {
        if k > 0 {
            out.write_all(b",\n")?;
        }
        json_compact(out, event)?;
    }
    writeln!(
        out,
        "\n],\n\"displayTimeUnit\": \"ms\",\n\"otherData\": {{\"base_id\": \"{}\", \"generator\": \"tracing-osprofiler osprof show\"}}}}",
        request.base_id
    )
}

/// Chrome's pid for a log: Perfetto treats pid 0 as the idle process.
fn pid(source: usize) -> usize {
    source + 1
}

/// Milliseconds with three decimals as a JSON number.
fn ms_number(micros: i64) -> Value {
    fmt_ms(micros)
        .parse::<serde_json::Number>()
        .map_or(Value::Null, Value::Number)
}

/// Puts point `i`, spanning `[begin, end]`, on a lane: under its parent
/// (`(parent index, parent lane)`) when the parent is the innermost span
/// still open on that lane and contains it, else on the first lane with
/// nothing open at `begin`. Each lane is a stack of its open spans
/// `(end, index)`; spans must come sorted by begin, longer first. So events
/// on one lane always nest, and a point never appears nested under a span
/// that is not its parent.
fn place(
    lanes: &mut Vec<Vec<(i64, usize)>>,
    i: usize,
    parent: Option<(usize, usize)>,
    begin: i64,
    end: i64,
) -> usize {
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

#[cfg(test)]
mod tests {
    use super::place;

    #[test]
    fn overlapping_siblings_get_their_own_lane_and_children_stay() {
        let mut lanes = Vec::new();
        assert_eq!(place(&mut lanes, 0, None, 0, 100), 0); // parent
        assert_eq!(place(&mut lanes, 1, Some((0, 0)), 10, 50), 0); // child A
        assert_eq!(place(&mut lanes, 2, Some((0, 0)), 20, 60), 1); // child B overlaps A
        assert_eq!(place(&mut lanes, 3, Some((2, 1)), 25, 30), 1); // B's child, not under A
        assert_eq!(place(&mut lanes, 4, Some((0, 0)), 30, 40), 2); // inside A, not A's child
        assert_eq!(place(&mut lanes, 5, Some((0, 0)), 70, 90), 0); // child C after all
        assert_eq!(place(&mut lanes, 6, Some((0, 0)), 95, 120), 1); // outlives the parent
        assert_eq!(place(&mut lanes, 7, None, 96, 97), 2); // another root
    }
}
