//! One event as the JSON document osprofiler's Redis driver stores: the
//! payload of `osprofiler.profiler._Profiler._notify` plus the `project`
//! and `service` its `Redis.notify` adds, keys in the same order and with
//! the same separators as Python's `json.dumps` writes them.
//!
//! ```text
//! {"name": "wsgi-start", "base_id": "…", "trace_id": "…", "parent_id": "…",
//!  "timestamp": "2026-05-01T10:00:00.123456",
//!  "info": {"request": {"path": "/v2", "query": "", "method": "GET", "scheme": "http"},
//!           "host": "api-1"},
//!  "project": "nova", "service": "api"}
//! ```
//!
//! What this crate adds beyond osprofiler's keys (osprofiler's readers
//! ignore keys they do not know; its CLI keeps them in `meta.raw_payload`):
//!
//! * `info.duration` on a stop: the point's monotonic duration in seconds
//!   with 6 decimals, the very text the log file's stop line carries, so a
//!   report made from the store gives the durations a report from the log
//!   gives (timestamps alone would give the wall-clock difference);
//! * `info.busy` on a stop whose busy time is known: seconds with 6
//!   decimals, as the stop line's `{"busy":…}` gives it;
//! * `info.fields` on a start: the span's fields as one JSON object, when
//!   the layer records them (the log puts the same object after the name);
//! * `info.etype` and `info.message` on the stop of a failed point, as
//!   osprofiler's `Trace` writes them for an exception: `Error` and the
//!   error's text, or `HTTPError` and `status NNN` for a 5xx status.
//!
//! The query string of a request is written only when the middleware was
//! told to keep it (it often carries secrets); osprofiler always writes it.

use std::fmt::Write as _;

use crate::format::Phase;
use crate::point::PointEvent;
use crate::writer::Identity;

/// The parts of every document that do not change from one event to the
/// next: `"project": …, "service": …` and the host, escaped once.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    /// `, "project": "p", "service": "s"}`: the document's end.
    tail: String,
    /// `"host": "h"`.
    host: String,
}

impl Stamp {
    pub(super) fn new(identity: &Identity) -> Self {
        let mut tail = String::from(", \"project\": ");
        push_str(&mut tail, &identity.project);
        tail.push_str(", \"service\": ");
        push_str(&mut tail, &identity.service);
        tail.push('}');
        let mut host = String::from("\"host\": ");
        push_str(&mut host, &identity.host);
        Stamp { tail, host }
    }
}

/// Appends `event`'s document to `out`.
pub(super) fn write_event(out: &mut String, event: &PointEvent, stamp: &Stamp) {
    let mut id = [0u8; crate::Id::TEXT_LEN];
    out.push_str("{\"name\": ");
    let mut name = event.name_text();
    name.push_str(event.phase.suffix());
    push_str(out, &name);
    out.push_str(", \"base_id\": \"");
    out.push_str(event.ids.base_id.encode(&mut id));
    out.push_str("\", \"trace_id\": \"");
    out.push_str(event.ids.trace_id.encode(&mut id));
    out.push_str("\", \"parent_id\": \"");
    out.push_str(event.ids.parent_id.encode(&mut id));
    out.push_str("\", \"timestamp\": \"");
    let _ = write!(out, "{}", event.timestamp);
    out.push_str("\", \"info\": {");
    let facts = event.facts.as_deref();
    match event.phase {
        Phase::Start => {
            // osprofiler's WSGI middleware: `info = {"request": {...}}`, to
            // which `_Profiler.start` then adds `host`.
            if let Some(request) = facts.and_then(|f| f.request.as_ref()) {
                out.push_str("\"request\": {\"path\": ");
                push_str(out, request.path());
                if let Some(query) = request.query() {
                    out.push_str(", \"query\": ");
                    push_str(out, query);
                }
                out.push_str(", \"method\": ");
                push_str(out, request.method());
                out.push_str(", \"scheme\": ");
                push_str(out, request.scheme());
                out.push_str("}, ");
            }
            out.push_str(&stamp.host);
            if let Some(fields) = event.fields() {
                // The layer's one-line JSON object (format::JsonFields).
                out.push_str(", \"fields\": ");
                out.push_str(fields);
            }
            // The root of a request kept by tail capture (crate::capture):
            // a key osprofiler's readers do not know, and ignore.
            if let Some(mark) = facts.and_then(|f| f.capture) {
                let _ = write!(
                    out,
                    ", \"capture\": {{\"kept\": \"{}\", \"truncated\": {}}}",
                    mark.reason, mark.truncated
                );
            }
        }
        Phase::Stop => {
            // `Trace.__exit__` passes `{"etype", "message"}` on an
            // exception; `_Profiler.stop` adds `host`.
            if let Some(facts) = facts.filter(|f| f.failed()) {
                let (etype, message) = match (&facts.error, facts.status_code) {
                    (Some(error), _) => ("Error", error.clone()),
                    (None, status) => (
                        "HTTPError",
                        format!("status {}", status.unwrap_or_default()),
                    ),
                };
                out.push_str("\"etype\": ");
                push_str(out, etype);
                out.push_str(", \"message\": ");
                push_str(out, &message);
                out.push_str(", ");
            }
            out.push_str(&stamp.host);
            out.push_str(", \"duration\": ");
            push_duration(out, event.duration());
            // The busy time, as the log's stop line gives it; left out when
            // unknown (docs/protocol.md, *Busy time*).
            if let Some(busy) = event.busy() {
                out.push_str(", \"busy\": ");
                push_duration(out, busy.min(event.duration()));
            }
        }
    }
    out.push('}');
    out.push_str(&stamp.tail);
}

/// Seconds with 6 decimals, rounded to the microsecond: the log's text.
fn push_duration(out: &mut String, duration: std::time::Duration) {
    let micros = duration.as_nanos().saturating_add(500) / 1000;
    let _ = write!(out, "{}.{:06}", micros / 1_000_000, micros % 1_000_000);
}

/// A JSON string, escaped as serde_json escapes it (the two quotes, the
/// backslash and the control characters; the rest as is). Written here,
/// not through serde_json, to spare an allocation per string.
fn push_str(out: &mut String, text: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::format::{PointIds, PointName, Timestamp};
    use crate::point::{PointFacts, PointKind, RequestInfo};
    use crate::Id;

    fn identity() -> Identity {
        Identity {
            project: "nova".into(),
            service: "api \"1\"".into(),
            host: "host-1".into(),
        }
    }

    fn ids() -> PointIds {
        PointIds {
            base_id: Id::parse("f12e75d5-5d59-4cbc-b74d-357f19290dd7").unwrap(),
            parent_id: Id::parse("603f1fab-be78-438d-af13-d94ed3b7e416").unwrap(),
            trace_id: Id::parse("b1d0a77a-52f5-4415-a6c4-f16b3591a47d").unwrap(),
        }
    }

    fn event(phase: Phase, facts: Option<PointFacts>) -> PointEvent {
        PointEvent {
            phase,
            ids: ids(),
            name: PointName::new("wsgi"),
            timestamp: Timestamp::from_unix_micros(1_582_790_665_954_502),
            started: Timestamp::from_unix_micros(1_582_790_665_954_502),
            duration_nanos: 6_781_600,
            busy: crate::point::MaybeBusy::UNKNOWN,
            slow: false,
            facts: facts.map(Box::new),
        }
    }

    fn document(event: &PointEvent) -> String {
        let mut out = String::new();
        write_event(&mut out, event, &Stamp::new(&identity()));
        out
    }

    #[test]
    fn a_request_start_is_what_osprofilers_wsgi_middleware_stores() {
        let facts = PointFacts {
            kind: PointKind::Request,
            request: Some(RequestInfo::new("GET", "/v2/servers", "https").with_query("a=1")),
            ..PointFacts::default()
        };
        assert_eq!(
            document(&event(Phase::Start, Some(facts))),
            "{\"name\": \"wsgi-start\", \"base_id\": \"f12e75d5-5d59-4cbc-b74d-357f19290dd7\", \
             \"trace_id\": \"b1d0a77a-52f5-4415-a6c4-f16b3591a47d\", \
             \"parent_id\": \"603f1fab-be78-438d-af13-d94ed3b7e416\", \
             \"timestamp\": \"2020-02-27T08:04:25.954502\", \
             \"info\": {\"request\": {\"path\": \"/v2/servers\", \"query\": \"a=1\", \
             \"method\": \"GET\", \"scheme\": \"https\"}, \"host\": \"host-1\"}, \
             \"project\": \"nova\", \"service\": \"api \\\"1\\\"\"}"
        );
    }

    #[test]
    fn a_stop_carries_the_logs_duration_and_a_failure() {
        let doc = document(&event(Phase::Stop, None));
        let value: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(value["name"], "wsgi-stop");
        assert_eq!(value["info"]["host"], "host-1");
        assert!(doc.contains("\"duration\": 0.006782}"), "{doc}");
        let mut busy = event(Phase::Stop, None);
        busy.busy = crate::point::MaybeBusy::known(Duration::from_nanos(1_234_567));
        let doc = document(&busy);
        assert!(
            doc.contains("\"duration\": 0.006782, \"busy\": 0.001235}"),
            "{doc}"
        );
        assert!(value["info"].get("etype").is_none());

        let failed = PointFacts {
            error: Some("db gone".into()),
            ..PointFacts::default()
        };
        let value: serde_json::Value =
            serde_json::from_str(&document(&event(Phase::Stop, Some(failed)))).unwrap();
        assert_eq!(value["info"]["etype"], "Error");
        assert_eq!(value["info"]["message"], "db gone");

        let status = PointFacts {
            status_code: Some(503),
            ..PointFacts::default()
        };
        let value: serde_json::Value =
            serde_json::from_str(&document(&event(Phase::Stop, Some(status)))).unwrap();
        assert_eq!(value["info"]["etype"], "HTTPError");
        assert_eq!(value["info"]["message"], "status 503");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "plain",
            "q\"b\\",
            "\u{0}\u{1f}\n\r\t\u{8}\u{c}",
            "é\u{2028}😀",
            "",
        ] {
            let mut out = String::new();
            push_str(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap());
        }
    }

    #[test]
    fn fields_and_hostile_text_stay_valid_json() {
        let facts = PointFacts {
            fields: Some("{\"user\":\"a\\nb\",\"n\":3}".into()),
            request: Some(RequestInfo::new("GET\u{2028}", "/\"x\\", "http")),
            ..PointFacts::default()
        };
        let mut e = event(Phase::Start, Some(facts));
        e.name = PointName::new("bad \u{0}name");
        let value: serde_json::Value = serde_json::from_str(&document(&e)).unwrap();
        assert_eq!(value["name"], "bad__name-start");
        assert_eq!(value["info"]["fields"]["user"], "a\nb");
        assert_eq!(value["info"]["request"]["path"], "/\"x\\");
        assert!(value["info"]["request"].get("query").is_none());
    }
}
