//! A trace point as an OTLP span, the way osprofiler 4.4's `otlp` driver
//! (`osprofiler/drivers/otlp.py`) turns its points into spans, so that a
//! point of a Rust service and a point of a Python service are spans of one
//! trace:
//!
//! * trace id: the 16 bytes of `base_id` (the driver's `uuid_to_int128`);
//! * span id: the last 8 bytes of the point's `trace_id` (`shorten_id`);
//! * parent span id: the last 8 bytes of `parent_id`, none when
//!   `parent_id == base_id` (the driver gives such a point no parent
//!   context); the sampled flag is set;
//! * name, kind and attributes from the point's facts (see [`span()`]);
//! * start and end from the point itself: its wall-clock start, and the
//!   start plus its monotonic duration; never the time of the export.
//!
//! Only the stop of a point becomes a span: it carries the start time, the
//! duration and the final facts.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span, Status};

use crate::format::Phase;
use crate::point::{PointEvent, PointFacts, PointKind};
use crate::writer::Identity;
use crate::Id;

/// W3C trace flags: sampled. Every point is a recorded span.
const SAMPLED: u32 = 0x01;

/// `service.name` as osprofiler's driver makes it: `{project}-{service}`,
/// or `{prefix}-{project}-{service}` with
/// `[profiler_otlp] service_name_prefix`.
pub(super) fn service_name(identity: &Identity, prefix: Option<&str>) -> String {
    match prefix.filter(|p| !p.is_empty()) {
        Some(prefix) => format!("{prefix}-{}-{}", identity.project, identity.service),
        None => format!("{}-{}", identity.project, identity.service),
    }
}

/// The resource every span of this writer is sent with: `service.name`
/// (as osprofiler's driver sets it) and `host.name` (which the driver
/// leaves out; the host is osprofiler's `info.host`).
pub(super) fn resource(identity: &Identity, prefix: Option<&str>) -> Resource {
    Resource {
        attributes: vec![
            string("service.name", service_name(identity, prefix)),
            string("host.name", identity.host.clone()),
        ],
        dropped_attributes_count: 0,
    }
}

/// The instrumentation scope of every span: this crate.
pub(super) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: env!("CARGO_PKG_NAME").to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

/// The 16 bytes of the trace id (`base_id`).
fn trace_id_bytes(base_id: &Id) -> [u8; 16] {
    *base_id.as_uuid().as_bytes()
}

/// The 8 bytes of the span id of the point whose `trace_id` is `id`.
fn span_id_bytes(id: &Id) -> [u8; 8] {
    id.low_u64().to_be_bytes()
}

/// The span for the stop of a point; `None` for a start.
///
/// | point | name | kind | attributes |
/// |---|---|---|---|
/// | request root (with request info) | `WSGI_{method}_{path}` | SERVER | `http.method`, `http.path`, `http.scheme`, `http.query` (only when kept) |
/// | client point (with call info) | `REQUESTS_{method}_{host}` | CLIENT | `http.method`, `http.hostname`, `http.port` |
/// | any other | its name as the log writes it, whole | INTERNAL | |
///
/// Every point also gets `status_code` when it recorded one, and its
/// recorded fields (when the layer records them) as attributes; a field
/// whose name is already an attribute above is left out. A failed point
/// (an error recorded, or a status of 500 or more) gets the OTLP status
/// ERROR, an `error = true` attribute and a `log` event with `error.kind`
/// and `message`, as osprofiler's driver marks an exception.
pub(super) fn span(event: &PointEvent) -> Option<Span> {
    if event.phase != Phase::Stop {
        return None;
    }
    let ids = &event.ids;
    let parent_span_id = if ids.parent_id == ids.base_id {
        Vec::new()
    } else {
        span_id_bytes(&ids.parent_id).to_vec()
    };
    let start = unix_nanos(event.started.unix_micros());
    let duration = event.duration_nanos;
    let end = start.saturating_add(duration);
    let facts = event.facts.as_deref();
    let (name, kind) = name_and_kind(event, facts);
    let mut attributes = Vec::new();
    let mut events = Vec::new();
    let mut status = None;
    if let Some(facts) = facts {
        fact_attributes(facts, &mut attributes);
        if let Some(fields) = facts.fields.as_deref() {
            field_attributes(fields, &mut attributes);
        }
        if facts.failed() {
            let (error_kind, message) = match (&facts.error, facts.status_code) {
                (Some(message), _) => ("error", message.clone()),
                (None, Some(code)) => ("http_status", format!("HTTP status {code}")),
                (None, None) => ("error", "failed".to_owned()),
            };
            set(&mut attributes, boolean("error", true));
            events.push(span::Event {
                time_unix_nano: end,
                name: "log".to_owned(),
                attributes: vec![
                    string("error.kind", error_kind.to_owned()),
                    string("message", message.clone()),
                ],
                dropped_attributes_count: 0,
            });
            status = Some(Status {
                message,
                code: status::StatusCode::Error as i32,
            });
        }
    }
    // tracing-opentelemetry's names and type (integer nanoseconds); only
    // when measured: a missing attribute says unknown, a 0 would not.
    if let (Some(busy), Some(idle)) = (event.busy(), event.idle()) {
        let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        set(&mut attributes, int("busy_ns", nanos(busy)));
        set(&mut attributes, int("idle_ns", nanos(idle)));
    }
    Some(Span {
        trace_id: trace_id_bytes(&ids.base_id).to_vec(),
        span_id: span_id_bytes(&ids.trace_id).to_vec(),
        trace_state: String::new(),
        parent_span_id,
        flags: SAMPLED,
        name,
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        dropped_attributes_count: 0,
        events,
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status,
    })
}

fn name_and_kind(event: &PointEvent, facts: Option<&PointFacts>) -> (String, span::SpanKind) {
    let kind = event.kind();
    match (kind, facts) {
        (PointKind::Request, Some(facts)) => {
            let name = match &facts.request {
                Some(request) => format!("WSGI_{}_{}", request.method(), request.path()),
                None => event.name_text(),
            };
            (name, span::SpanKind::Server)
        }
        (PointKind::Client, Some(facts)) => {
            let name = match &facts.call {
                Some(call) => format!("REQUESTS_{}_{}", call.method(), call.host()),
                None => event.name_text(),
            };
            (name, span::SpanKind::Client)
        }
        // osprofiler's driver strips "-start" with `rstrip`, which eats any
        // trailing s, t, a or r of the name too; the name is kept whole here.
        _ => (event.name_text(), span::SpanKind::Internal),
    }
}

/// The attributes osprofiler's driver sets where the same facts exist.
fn fact_attributes(facts: &PointFacts, out: &mut Vec<KeyValue>) {
    if let Some(request) = &facts.request {
        out.push(string("http.method", request.method().to_owned()));
        out.push(string("http.path", request.path().to_owned()));
        out.push(string("http.scheme", request.scheme().to_owned()));
        if let Some(query) = request.query() {
            out.push(string("http.query", query.to_owned()));
        }
    }
    if let Some(call) = &facts.call {
        out.push(string("http.method", call.method().to_owned()));
        out.push(string("http.hostname", call.host().to_owned()));
        if let Some(port) = call.port() {
            out.push(int("http.port", i64::from(port)));
        }
    }
    if let Some(code) = facts.status_code {
        out.push(int("status_code", i64::from(code)));
    }
    // The root of a request kept by tail capture says why (crate::capture).
    if let Some(mark) = facts.capture {
        out.push(string(
            crate::capture::KEPT_KEY,
            mark.reason.as_str().to_owned(),
        ));
        if mark.truncated > 0 {
            out.push(int(
                crate::capture::TRUNCATED_KEY,
                i64::try_from(mark.truncated).unwrap_or(i64::MAX),
            ));
        }
    }
}

/// The span's recorded fields (one JSON object) as attributes: strings,
/// booleans, integers and floats as such; an integer beyond `i64`, an array
/// or an object as its JSON text; `null` left out. A name that is already
/// an attribute keeps the first value.
fn field_attributes(fields: &str, out: &mut Vec<KeyValue>) {
    // The layer writes this object itself; a field set that does not parse
    // (it cannot) is left out rather than failing the span.
    let Ok(object) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(fields)
    else {
        return;
    };
    for (key, value) in object {
        if out.iter().any(|kv| kv.key == key) {
            continue;
        }
        let value = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::Bool(b) => any_value::Value::BoolValue(b),
            serde_json::Value::String(s) => any_value::Value::StringValue(s),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    any_value::Value::IntValue(i)
                } else if n.is_u64() {
                    any_value::Value::StringValue(n.to_string())
                } else {
                    any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            other => any_value::Value::StringValue(other.to_string()),
        };
        out.push(KeyValue {
            key,
            value: Some(AnyValue { value: Some(value) }),
        });
    }
}

/// Replaces the attribute of the same key, or adds it.
fn set(out: &mut Vec<KeyValue>, kv: KeyValue) {
    match out.iter_mut().find(|existing| existing.key == kv.key) {
        Some(existing) => *existing = kv,
        None => out.push(kv),
    }
}

fn unix_nanos(micros: i64) -> u64 {
    // A clock before 1970 cannot be said in OTLP's unsigned nanoseconds.
    u64::try_from(micros).unwrap_or(0).saturating_mul(1000)
}

fn string(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

fn boolean(key: &str, value: bool) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(value)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::format::{PointIds, PointName, Timestamp};
    use crate::point::{ClientCall, RequestInfo};

    fn stop(ids: PointIds, name: &'static str, facts: Option<PointFacts>) -> PointEvent {
        PointEvent {
            phase: Phase::Stop,
            ids,
            name: PointName::new(name),
            timestamp: Timestamp::from_unix_micros(1_700_000_000_500_000),
            started: Timestamp::from_unix_micros(1_700_000_000_000_001),
            duration_nanos: 499_999_123,
            busy: crate::point::MaybeBusy::UNKNOWN,
            slow: false,
            facts: facts.map(Box::new),
        }
    }

    #[test]
    fn busy_and_idle_time_are_attributes_when_known() {
        let mut event = stop(ids(BASE, BASE, TRACE), "t", None);
        assert!(attr(&span(&event).unwrap(), "busy_ns").is_none());
        event.busy = crate::point::MaybeBusy::known(Duration::from_nanos(123_456_789));
        let span = span(&event).unwrap();
        assert_eq!(
            attr(&span, "busy_ns"),
            Some(&any_value::Value::IntValue(123_456_789))
        );
        assert_eq!(
            attr(&span, "idle_ns"),
            Some(&any_value::Value::IntValue(499_999_123 - 123_456_789))
        );
    }

    fn ids(base: &str, parent: &str, trace: &str) -> PointIds {
        PointIds {
            base_id: Id::parse(base).unwrap(),
            parent_id: Id::parse(parent).unwrap(),
            trace_id: Id::parse(trace).unwrap(),
        }
    }

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    const BASE: &str = "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b";
    const PARENT: &str = "11111111-2222-4333-8444-555566667777";
    const TRACE: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeffff0011";

    #[test]
    fn ids_are_osprofilers() {
        let span = span(&stop(ids(BASE, PARENT, TRACE), "work", None)).unwrap();
        assert_eq!(
            span.trace_id,
            [
                0x6f, 0x9e, 0x3c, 0x1a, 0x2b, 0x4d, 0x4e, 0x8f, 0x9a, 0x0b, 0x1c, 0x2d, 0x3e, 0x4f,
                0x5a, 0x6b
            ]
        );
        assert_eq!(
            span.span_id,
            [0x8d, 0xdd, 0xee, 0xee, 0xff, 0xff, 0x00, 0x11]
        );
        assert_eq!(
            span.parent_span_id,
            [0x84, 0x44, 0x55, 0x55, 0x66, 0x66, 0x77, 0x77]
        );
        assert_eq!(span.flags, SAMPLED);
        assert_eq!(span.kind, span::SpanKind::Internal as i32);
        assert_eq!(span.status, None);
    }

    #[test]
    fn a_point_under_the_base_id_has_no_parent() {
        let span = span(&stop(ids(BASE, BASE, TRACE), "root", None)).unwrap();
        assert!(span.parent_span_id.is_empty());
    }

    #[test]
    fn starts_make_no_span() {
        let mut event = stop(ids(BASE, BASE, TRACE), "root", None);
        event.phase = Phase::Start;
        assert_eq!(super::span(&event), None);
    }

    #[test]
    fn times_come_from_the_point() {
        let span = span(&stop(ids(BASE, BASE, TRACE), "t", None)).unwrap();
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_001_000);
        assert_eq!(
            span.end_time_unix_nano,
            1_700_000_000_000_001_000 + 499_999_123
        );
    }

    #[test]
    fn names_are_kept_whole() {
        // osprofiler's rstrip("-start") would make "rest" of "request".
        let span = span(&stop(ids(BASE, BASE, TRACE), "request", None)).unwrap();
        assert_eq!(span.name, "request");
    }

    #[test]
    fn request_root_is_a_server_span() {
        let facts = PointFacts {
            kind: PointKind::Request,
            request: Some(RequestInfo::new("GET", "/servers/detail", "https")),
            status_code: Some(200),
            ..PointFacts::default()
        };
        let span = span(&stop(ids(BASE, BASE, TRACE), "wsgi", Some(facts))).unwrap();
        assert_eq!(span.name, "WSGI_GET_/servers/detail");
        assert_eq!(span.kind, span::SpanKind::Server as i32);
        assert_eq!(
            attr(&span, "http.method"),
            Some(&any_value::Value::StringValue("GET".into()))
        );
        assert_eq!(
            attr(&span, "http.path"),
            Some(&any_value::Value::StringValue("/servers/detail".into()))
        );
        assert_eq!(
            attr(&span, "http.scheme"),
            Some(&any_value::Value::StringValue("https".into()))
        );
        assert_eq!(attr(&span, "http.query"), None);
        assert_eq!(
            attr(&span, "status_code"),
            Some(&any_value::Value::IntValue(200))
        );
        assert_eq!(span.status, None);
        assert!(span.events.is_empty());
    }

    #[test]
    fn a_kept_query_is_an_attribute() {
        let facts = PointFacts {
            kind: PointKind::Request,
            request: Some(RequestInfo::new("GET", "/", "http").with_query("a=1")),
            ..PointFacts::default()
        };
        let span = span(&stop(ids(BASE, BASE, TRACE), "wsgi", Some(facts))).unwrap();
        assert_eq!(
            attr(&span, "http.query"),
            Some(&any_value::Value::StringValue("a=1".into()))
        );
    }

    #[test]
    fn client_point_is_a_client_span() {
        let facts = PointFacts {
            kind: PointKind::Client,
            call: Some(ClientCall::new("POST", "nova.internal", Some(8774))),
            status_code: Some(202),
            ..PointFacts::default()
        };
        let span = span(&stop(ids(BASE, PARENT, TRACE), "http", Some(facts))).unwrap();
        assert_eq!(span.name, "REQUESTS_POST_nova.internal");
        assert_eq!(span.kind, span::SpanKind::Client as i32);
        assert_eq!(
            attr(&span, "http.hostname"),
            Some(&any_value::Value::StringValue("nova.internal".into()))
        );
        assert_eq!(
            attr(&span, "http.port"),
            Some(&any_value::Value::IntValue(8774))
        );
        assert_eq!(
            attr(&span, "status_code"),
            Some(&any_value::Value::IntValue(202))
        );
    }

    #[test]
    fn fields_become_attributes() {
        let facts = PointFacts {
            kind: PointKind::Request,
            request: Some(RequestInfo::new("GET", "/", "http")),
            fields: Some(Arc::from(
                r#"{"user":42,"ratio":0.5,"ok":true,"name":"x","big":18446744073709551615,"list":[1,2],"none":null,"http.method":"POST"}"#,
            )),
            ..PointFacts::default()
        };
        let span = span(&stop(ids(BASE, BASE, TRACE), "wsgi", Some(facts))).unwrap();
        assert_eq!(attr(&span, "user"), Some(&any_value::Value::IntValue(42)));
        assert_eq!(
            attr(&span, "ratio"),
            Some(&any_value::Value::DoubleValue(0.5))
        );
        assert_eq!(attr(&span, "ok"), Some(&any_value::Value::BoolValue(true)));
        assert_eq!(
            attr(&span, "name"),
            Some(&any_value::Value::StringValue("x".into()))
        );
        assert_eq!(
            attr(&span, "big"),
            Some(&any_value::Value::StringValue(
                "18446744073709551615".into()
            ))
        );
        assert_eq!(
            attr(&span, "list"),
            Some(&any_value::Value::StringValue("[1,2]".into()))
        );
        assert_eq!(attr(&span, "none"), None);
        // The request's own method wins over a field of the same name.
        assert_eq!(
            attr(&span, "http.method"),
            Some(&any_value::Value::StringValue("GET".into()))
        );
        let methods = span
            .attributes
            .iter()
            .filter(|kv| kv.key == "http.method")
            .count();
        assert_eq!(methods, 1);
    }

    #[test]
    fn a_recorded_error_marks_the_span() {
        let facts = PointFacts {
            error: Some("disk on fire".into()),
            fields: Some(Arc::from(r#"{"error":"disk on fire"}"#)),
            ..PointFacts::default()
        };
        let span = span(&stop(ids(BASE, PARENT, TRACE), "db", Some(facts))).unwrap();
        assert_eq!(
            span.status,
            Some(Status {
                message: "disk on fire".into(),
                code: status::StatusCode::Error as i32
            })
        );
        assert_eq!(
            attr(&span, "error"),
            Some(&any_value::Value::BoolValue(true))
        );
        assert_eq!(span.events.len(), 1);
        let log = &span.events[0];
        assert_eq!(log.name, "log");
        assert_eq!(log.time_unix_nano, span.end_time_unix_nano);
        assert_eq!(log.attributes[0], string("error.kind", "error".into()));
        assert_eq!(log.attributes[1], string("message", "disk on fire".into()));
    }

    #[test]
    fn a_5xx_marks_the_span_and_a_4xx_does_not() {
        let failed = PointFacts {
            kind: PointKind::Client,
            call: Some(ClientCall::new("GET", "x", None)),
            status_code: Some(503),
            ..PointFacts::default()
        };
        let span = span(&stop(ids(BASE, PARENT, TRACE), "http", Some(failed))).unwrap();
        assert_eq!(
            span.status.as_ref().map(|s| s.code),
            Some(status::StatusCode::Error as i32)
        );
        assert_eq!(
            span.events[0].attributes[0],
            string("error.kind", "http_status".into())
        );
        assert_eq!(
            span.events[0].attributes[1],
            string("message", "HTTP status 503".into())
        );
        let fine = PointFacts {
            status_code: Some(404),
            ..PointFacts::default()
        };
        let span = super::span(&stop(ids(BASE, PARENT, TRACE), "http", Some(fine))).unwrap();
        assert_eq!(span.status, None);
        assert_eq!(attr(&span, "error"), None);
    }

    #[test]
    fn service_name_as_osprofiler_makes_it() {
        let identity = Identity {
            project: "nova".into(),
            service: "api".into(),
            host: "node-1".into(),
        };
        assert_eq!(service_name(&identity, None), "nova-api");
        assert_eq!(service_name(&identity, Some("")), "nova-api");
        assert_eq!(service_name(&identity, Some("prod")), "prod-nova-api");
        let resource = resource(&identity, None);
        assert_eq!(
            resource.attributes[0],
            string("service.name", "nova-api".into())
        );
        assert_eq!(resource.attributes[1], string("host.name", "node-1".into()));
    }
}
