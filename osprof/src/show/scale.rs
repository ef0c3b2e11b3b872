//! `show` on requests of 100 000 points in every shape that made it
//! super-linear (`tests/report/shapes.rs`): the steps each algorithm takes
//! are counted ([`crate::steps`]) and held under `C n log2 n`, a bound the
//! first algorithms broke by orders of magnitude (checked here too, on
//! 5 000 points), and the results are checked whole: every point in the
//! tree once, no two bars of the timeline over each other, Chrome lanes
//! that nest.

use std::collections::HashMap;

use crate::model::Tree;
use crate::steps::{step, take};

use super::chrome::place_all;
use super::chrome::tests::place_by_scanning;
use super::pack::tests::pack_by_scanning;
use super::timeline::{layout, RowBars};
use super::{preorder, timeline};

// Written for the integration tests, where its items are public.
#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/report/shapes.rs"]
mod shapes;

const N: u64 = 100_000;

/// The bound: `C n log2 n` steps.
fn bound(n: u64, c: u64) -> u64 {
    c * n * u64::from(n.ilog2() + 1)
}

/// Every point once in the tree, and as many roots as the shape has.
fn check_tree(name: &str, tree: &Tree<'_>, n: usize) {
    let order = preorder(tree);
    assert_eq!(order.len(), n, "{name}");
    let mut seen = vec![false; n];
    for &(i, _) in &order {
        assert!(!std::mem::replace(&mut seen[i], true), "{name}: {i} twice");
    }
    let roots = tree.roots().len();
    match name {
        "orphans" => assert_eq!(roots, n, "{name}"),
        _ => assert_eq!(roots, 1, "{name}"),
    }
}

/// No two bars on one row over each other in time, children below their
/// parent.
fn check_layout(name: &str, tree: &Tree<'_>, layout: &timeline::Layout) {
    let mut rows: HashMap<usize, Vec<(i64, i64)>> = HashMap::new();
    for (i, span) in layout.span.iter().enumerate() {
        assert!(layout.row[i] < layout.rows, "{name}");
        for &c in tree.children(i) {
            assert!(layout.row[c] > layout.row[i], "{name}");
        }
        if let Some(span) = span {
            rows.entry(layout.row[i]).or_default().push(*span);
        }
    }
    for spans in rows.values_mut() {
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{name}: {pair:?} on one row");
        }
    }
}

/// Events on a lane nest, and the innermost open event around a point is
/// its parent.
fn check_lanes(name: &str, tree: &Tree<'_>, placed: &[super::chrome::Placed]) {
    let mut parent = vec![None; tree.request().points.len()];
    for i in 0..parent.len() {
        for &c in tree.children(i) {
            parent[c] = Some(i);
        }
    }
    let mut open: HashMap<(usize, usize), Vec<(i64, usize)>> = HashMap::new();
    for p in placed {
        let stack = open.entry((p.source, p.lane)).or_default();
        while stack.last().is_some_and(|&(end, _)| end <= p.begin) {
            stack.pop();
        }
        if let Some(&(end, around)) = stack.last() {
            assert!(p.end <= end, "{name}: {p:?} overlaps without nesting");
            assert_eq!(parent[p.index], Some(around), "{name}: {p:?}");
        }
        stack.push((p.end, p.index));
    }
}

#[test]
fn every_shape_of_100_000_points_in_n_log_n_steps() {
    for (name, request) in shapes::all(N) {
        let n = request.points.len();
        take();
        let tree = Tree::new(&request);
        let cycles = take();
        // Linear: the cycle repair walks each point a bounded number of times.
        assert!(cycles <= 4 * N, "{name}: {cycles} steps to repair cycles");
        check_tree(name, &tree, n);

        let laid = layout(&tree);
        let packing = take();
        assert!(
            packing <= bound(N, 12),
            "{name}: {packing} steps to lay out"
        );
        check_layout(name, &tree, &laid);

        let mut bars = RowBars::new(laid.rows);
        for (i, span) in laid.span.iter().enumerate() {
            if let Some((b, e)) = *span {
                bars.add(laid.row[i], (b as f64, e as f64));
            }
        }
        bars.sort();
        for (i, span) in laid.span.iter().enumerate() {
            if let Some((b, e)) = *span {
                let (b, e) = (b as f64, e as f64);
                // The room beside each bar, and the bar itself (never free).
                bars.free(laid.row[i], e, e + 50.0);
                bars.free(laid.row[i], b - 50.0, b);
                assert!(e <= b || !bars.free(laid.row[i], b, e), "{name}");
            }
        }
        let labels = take();
        assert!(labels <= bound(N, 8), "{name}: {labels} steps for labels");

        let placed = place_all(&tree);
        let lanes = take();
        assert!(lanes <= bound(N, 4), "{name}: {lanes} steps for lanes");
        assert_eq!(placed.len(), n, "{name}");
        check_lanes(name, &tree, &placed);
    }
}

/// The bound above is one the first algorithms break: on 5 000 points, the
/// scan of every row's runs per sibling, the look at every lane per point,
/// and the scan of every child list per point of a cycle.
#[test]
fn the_first_algorithms_break_the_bound() {
    const SMALL: u64 = 5_000;
    let wide = shapes::wide_concurrent(SMALL);
    let tree = Tree::new(&wide);
    let siblings = tree.children(tree.roots()[0]);
    let height = vec![1; wide.points.len()];
    let envelope: Vec<_> = wide
        .points
        .iter()
        .map(|p| Some((p.begin_micros().unwrap(), p.end_micros().unwrap())))
        .collect();
    take();
    pack_by_scanning(siblings, &height, &envelope, &mut vec![0; height.len()]);
    let packing = take();
    assert!(packing > bound(SMALL, 12) * 10, "{packing}");

    let mut lanes = Vec::new();
    for (k, &s) in siblings.iter().enumerate() {
        let (b, e) = envelope[s].unwrap();
        place_by_scanning(&mut lanes, k, None, b, e);
    }
    let placing = take();
    assert!(placing > bound(SMALL, 4) * 10, "{placing}");

    let cycle = shapes::cycle_under_many(SMALL);
    take();
    let roots = repair_by_scanning(&cycle.points);
    let repair = take();
    assert!(repair > 4 * SMALL * 100, "{repair}");
    // Besides, it made a root of every point under the cycle.
    assert_eq!(roots, SMALL as usize - 1);
}

/// The first repair of parent cycles, as `Tree::new` had it: each point
/// not reachable from a root made a root after a scan of every child list.
/// Returns the number of roots.
fn repair_by_scanning(points: &[crate::model::Point]) -> usize {
    let mut by_trace = HashMap::new();
    for (i, p) in points.iter().enumerate() {
        by_trace.entry(p.ids.trace_id).or_insert(i);
    }
    let mut roots = Vec::new();
    let mut children = vec![Vec::new(); points.len()];
    for (i, p) in points.iter().enumerate() {
        match by_trace.get(&p.ids.parent_id) {
            Some(&parent) if parent != i => children[parent].push(i),
            _ => roots.push(i),
        }
    }
    let mut reachable = vec![false; points.len()];
    let mut stack: Vec<usize> = roots.clone();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut reachable[i], true) {
            stack.extend(&children[i]);
        }
    }
    for i in 0..points.len() {
        if !reachable[i] {
            step(children.iter().map(Vec::len).sum::<usize>() + children.len());
            children.iter_mut().for_each(|c| c.retain(|&c| c != i));
            roots.push(i);
            let mut stack = vec![i];
            while let Some(j) = stack.pop() {
                if !std::mem::replace(&mut reachable[j], true) {
                    stack.extend(&children[j]);
                }
            }
        }
    }
    roots.len()
}
