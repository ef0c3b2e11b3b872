//! osprofiler's own report structure, as `osprofiler trace show --json`
//! writes it (osprofiler 4.4.0, `drivers/base.py`: `_append_results`,
//! `_parse_results`, `_build_tree`).
//!
//! ```json
//! {
//!   "info": {"name": "total", "started": 0, "finished": 120, "last_trace_started": 50},
//!   "children": [
//!     {
//!       "info": {
//!         "name": "wsgi", "project": null, "service": null, "host": null,
//!         "meta.raw_payload.wsgi-start": {"name": "wsgi-start", "base_id": "…", "trace_id": "…", "parent_id": "…", "timestamp": "…"},
//!         "started": 0,
//!         "meta.raw_payload.wsgi-stop": {"name": "wsgi-stop", …, "info": {"duration": 0.12}},
//!         "finished": 120,
//!         "exception": "None"
//!       },
//!       "trace_id": "…", "parent_id": "…", "children": […]
//!     }
//!   ],
//!   "stats": {"wsgi": {"count": 1, "duration": 120}}
//! }
//! ```
//!
//! Times follow osprofiler exactly: `started` and `finished` are the start
//! and stop *line* timestamps (not the monotonic duration) in integer
//! milliseconds, truncated, relative to the earliest line of the request; a
//! point missing one of its lines gets the other line's time (zero
//! duration). Children are sorted by `started`, ties in the order the
//! points were read. The output is indented like Python's
//! `json.dumps(indent=2)` (up to 100 levels deep, where indentation stops
//! growing), so osprofiler's own tools read it (`osprofiler trace show
//! --html FILE.json` renders it).
//!
//! What a log cannot fill, and what is written instead:
//!
//! | field | written | why |
//! |---|---|---|
//! | `info.project`, `info.service`, `info.host` | `null` | the log line carries none of them |
//! | `info.exception` | `"None"` when the stop line was seen | the log does not record exceptions |
//! | `meta.raw_payload.*` | the line's fields; a stop line's duration (seconds) as `info.duration`, and its busy time as `info.busy` when it gives one | there is no notification payload, the line is the raw record |
//! | `info.name` | the whole point name | osprofiler keeps only the part before the first `-` (`"engine-on-action-complete"` would become `"engine"`), which loses all of a Mistral name |

use std::collections::HashMap;
use std::io::{self, Write};

use crate::model::{Point, Tree};

use crate::render::escape::json_str;

/// Writes `tree` in osprofiler's JSON report structure (see the module
/// docs for the fields a log cannot fill).
///
/// # Errors
///
/// Any error from `out`.
pub fn write_osprofiler_json(tree: &Tree<'_>, out: &mut dyn Write) -> io::Result<()> {
    let points = &tree.request().points;
    let line_times = || {
        points
            .iter()
            .flat_map(|p| [p.start, p.stop])
            .flatten()
            .map(|t| t.unix_micros())
    };
    let started_at = line_times().min();
    let finished_at = line_times().max();
    let last_started_at = points
        .iter()
        .filter_map(|p| p.start)
        .map(|t| t.unix_micros())
        .max();
    let origin = started_at.unwrap_or(0);
    let ms = |micros: i64| (micros - origin).div_euclid(1000);
    let times: Vec<(i64, i64)> = points
        .iter()
        .map(|p| {
            let start = p.start.or(p.stop).map_or(0, |t| ms(t.unix_micros()));
            let stop = p.stop.or(p.start).map_or(0, |t| ms(t.unix_micros()));
            (start, stop)
        })
        .collect();
    let sorted = |list: &[usize]| {
        let mut list = list.to_vec();
        list.sort_by_key(|&i| (times[i].0, i));
        list
    };

    let mut w = JsonWriter {
        out,
        buf: Vec::with_capacity(1 << 16),
    };
    w.raw("{\n")?;
    w.pad(1)?;
    w.raw("\"info\": ")?;
    let total = J::Obj(vec![
        ("name".into(), J::Str("total".into())),
        ("started".into(), J::Int(0)),
        (
            "finished".into(),
            finished_at.map_or(J::Null, |f| J::Int(ms(f))),
        ),
        (
            "last_trace_started".into(),
            last_started_at.map_or(J::Null, |l| J::Int(ms(l))),
        ),
    ]);
    w.value(&total, 1)?;
    w.raw(",\n")?;
    w.pad(1)?;
    w.raw("\"children\": ")?;

    // Explicit stack: a deep tree must not overflow the call stack.
    struct Frame {
        items: Vec<usize>,
        next: usize,
        level: usize,
        closes_node: bool,
    }
    let mut stack = Vec::new();
    let roots = sorted(tree.roots());
    if roots.is_empty() {
        w.raw("[]")?;
    } else {
        w.raw("[\n")?;
        stack.push(Frame {
            items: roots,
            next: 0,
            level: 1,
            closes_node: false,
        });
    }
    while let Some(frame) = stack.last_mut() {
        if frame.next == frame.items.len() {
            let (level, closes_node) = (frame.level, frame.closes_node);
            stack.pop();
            w.raw("\n")?;
            w.pad(level)?;
            w.raw("]")?;
            if closes_node {
                w.raw("\n")?;
                w.pad(level - 1)?;
                w.raw("}")?;
            }
            continue;
        }
        let i = frame.items[frame.next];
        if frame.next > 0 {
            w.raw(",\n")?;
        }
        frame.next += 1;
        let level = frame.level;
        let point = tree.point(i);
        w.pad(level + 1)?;
        w.raw("{\n")?;
        w.pad(level + 2)?;
        w.raw("\"info\": ")?;
        w.value(&node_info(point, times[i]), level + 2)?;
        w.raw(",\n")?;
        w.pad(level + 2)?;
        w.raw(&format!("\"trace_id\": \"{}\",\n", point.ids.trace_id))?;
        w.pad(level + 2)?;
        w.raw(&format!("\"parent_id\": \"{}\",\n", point.ids.parent_id))?;
        w.pad(level + 2)?;
        w.raw("\"children\": ")?;
        let children = sorted(tree.children(i));
        if children.is_empty() {
            w.raw("[]\n")?;
            w.pad(level + 1)?;
            w.raw("}")?;
        } else {
            w.raw("[\n")?;
            stack.push(Frame {
                items: children,
                next: 0,
                level: level + 2,
                closes_node: true,
            });
        }
    }
    w.raw(",\n")?;
    w.pad(1)?;
    w.raw("\"stats\": ")?;
    let mut stats: Vec<(String, J)> = Vec::new();
    let mut totals: Vec<(i64, i64)> = Vec::new();
    let mut slot: HashMap<&str, usize> = HashMap::new();
    for (i, point) in points.iter().enumerate() {
        let duration = times[i].1 - times[i].0;
        let k = *slot.entry(point.name.as_str()).or_insert_with(|| {
            stats.push((point.name.clone(), J::Null));
            totals.push((0, 0));
            stats.len() - 1
        });
        totals[k].0 += 1;
        totals[k].1 += duration;
    }
    for ((_, value), (count, duration)) in stats.iter_mut().zip(totals) {
        *value = J::Obj(vec![
            ("count".into(), J::Int(count)),
            ("duration".into(), J::Int(duration)),
        ]);
    }
    w.value(&J::Obj(stats), 1)?;
    w.raw("\n}\n")?;
    w.finish()
}

/// A node's `info`, in the key order osprofiler produces for a start line
/// read before its stop line.
fn node_info(point: &Point, (started, finished): (i64, i64)) -> J {
    let mut info = vec![
        ("name".to_owned(), J::Str(point.name.clone())),
        ("project".to_owned(), J::Null),
        ("service".to_owned(), J::Null),
        ("host".to_owned(), J::Null),
    ];
    let payload = |suffix: &str, timestamp: String, extra: Option<J>| {
        let mut fields = vec![
            (
                "name".to_owned(),
                J::Str(format!("{}-{suffix}", point.name)),
            ),
            ("base_id".to_owned(), J::Str(point.ids.base_id.to_string())),
            (
                "trace_id".to_owned(),
                J::Str(point.ids.trace_id.to_string()),
            ),
            (
                "parent_id".to_owned(),
                J::Str(point.ids.parent_id.to_string()),
            ),
            ("timestamp".to_owned(), J::Str(timestamp)),
        ];
        if let Some(extra) = extra {
            fields.push(("info".to_owned(), extra));
        }
        (
            format!("meta.raw_payload.{}-{suffix}", point.name),
            J::Obj(fields),
        )
    };
    if let Some(start) = point.start {
        info.push(payload("start", start.to_string(), None));
        info.push(("started".to_owned(), J::Int(started)));
    }
    if let Some(stop) = point.stop {
        // The busy time as the Redis sink stores it (`info.busy`), when
        // the line gives one.
        let extra = point.duration.map(|d| {
            let mut info = vec![("duration".to_owned(), J::Float(d))];
            if let Some(busy) = point.busy {
                info.push(("busy".to_owned(), J::Float(busy)));
            }
            J::Obj(info)
        });
        info.push(payload("stop", stop.to_string(), extra));
        info.push(("finished".to_owned(), J::Int(finished)));
        info.push(("exception".to_owned(), J::Str("None".to_owned())));
    }
    if point.start.is_none() {
        info.push(("started".to_owned(), J::Int(started)));
    }
    if point.stop.is_none() {
        info.push(("finished".to_owned(), J::Int(finished)));
    }
    J::Obj(info)
}

/// The deepest indentation written, in levels of two spaces.
const MAX_PAD: usize = 100;

/// The few JSON shapes the report needs, with keys kept in order.
enum J {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
    Obj(Vec<(String, J)>),
}

/// Writes through a buffer, handed to `out` in large pieces: the report
/// of a large request is millions of small pieces.
struct JsonWriter<'w> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
}

/// Two spaces per level, for [`JsonWriter::pad`].
const SPACES: [u8; 2 * MAX_PAD] = [b' '; 2 * MAX_PAD];

impl JsonWriter<'_> {
    fn raw(&mut self, s: &str) -> io::Result<()> {
        self.buf.extend_from_slice(s.as_bytes());
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn pad(&mut self, level: usize) -> io::Result<()> {
        // Indentation stops growing at MAX_PAD levels: Python's would make
        // the output quadratic in the depth of a pathological log.
        self.buf
            .extend_from_slice(&SPACES[..2 * level.min(MAX_PAD)]);
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes `value` as Python's `json.dumps(indent=2)` would, its opening
    /// bracket at the current position and its closing one at `level`.
    /// Values nest at most three deep, so recursion is bounded.
    fn value(&mut self, value: &J, level: usize) -> io::Result<()> {
        match value {
            J::Null => self.raw("null"),
            J::Int(n) => self.raw(&n.to_string()),
            J::Float(f) => {
                self.raw(&serde_json::to_string(f).unwrap_or_else(|_| "null".to_owned()))
            }
            J::Str(s) => self.raw(&json_str(s)),
            J::Obj(fields) if fields.is_empty() => self.raw("{}"),
            J::Obj(fields) => {
                self.raw("{\n")?;
                for (k, (key, value)) in fields.iter().enumerate() {
                    if k > 0 {
                        self.raw(",\n")?;
                    }
                    self.pad(level + 1)?;
                    self.raw(&json_str(key))?;
                    self.raw(": ")?;
                    self.value(value, level + 1)?;
                }
                self.raw("\n")?;
                self.pad(level)?;
                self.raw("}")
            }
        }
    }
}
