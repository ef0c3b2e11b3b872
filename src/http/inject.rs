//! Signed headers for outgoing calls, on [`http::HeaderMap`] and
//! [`http::Request`].
//!
//! The headers carry the request's `base_id`, `parent_id` = the `trace_id` of
//! the span making the call, and are signed with the key and algorithm that
//! verified the incoming token (see [`ProfileExt::trace_headers`]). Existing
//! token headers are replaced, never appended to, since a receiver treats a
//! duplicated header as invalid. Outside a profiled request nothing changes.
//!
//! ```
//! use tracing_osprofiler::http::inject;
//!
//! let mut request = http::Request::get("http://127.0.0.1:9/").body(())?;
//! // Not inside a profiled request: nothing is added.
//! assert!(!inject::inject_current_request(&mut request));
//! assert!(request.headers().is_empty());
//! # Ok::<(), http::Error>(())
//! ```
//!
//! # W3C `traceparent` (opt-in)
//!
//! A call may also carry [`traceparent`]: `00-{base_id}-{span id}-01`, the
//! ids the OTLP sink (like osprofiler's `otlp` driver) gives the trace and
//! the calling point's span, so that a callee instrumented with
//! OpenTelemetry alone joins the same trace. It is only ever sent, never
//! read: a request carrying a `traceparent` and no valid token is not
//! profiled.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Request;
use tracing::Span;

use super::{TRACE_HMAC_HEADER, TRACE_INFO_HEADER};
use crate::layer::ProfileExt;
use crate::token::TraceHeaders;

/// Sets the two token headers in `headers` to `trace`, replacing any present.
/// Returns `false` (and changes nothing) only if a value is not a valid
/// header value, which a [`TraceHeaders`] made by this crate never is.
pub fn insert_trace_headers(headers: &mut HeaderMap, trace: &TraceHeaders) -> bool {
    let (Ok(info), Ok(hmac)) = (
        HeaderValue::from_str(trace.trace_info()),
        HeaderValue::from_str(trace.trace_hmac()),
    ) else {
        return false;
    };
    headers.insert(TRACE_INFO_HEADER, info);
    headers.insert(TRACE_HMAC_HEADER, hmac);
    true
}

/// Adds signed headers for a call made from `span`. Returns whether headers
/// were added (`false` unless `span` is a trace point).
pub fn inject_span(span: &Span, headers: &mut HeaderMap) -> bool {
    match span.trace_headers() {
        Some(trace) => insert_trace_headers(headers, &trace),
        None => false,
    }
}

/// Adds signed headers for a call made from the current span.
pub fn inject_current(headers: &mut HeaderMap) -> bool {
    inject_span(&Span::current(), headers)
}

/// Adds signed headers for a call made from the current span to `request`.
pub fn inject_current_request<B>(request: &mut Request<B>) -> bool {
    inject_current(request.headers_mut())
}

/// The W3C trace context header, `traceparent`.
pub const TRACEPARENT_HEADER: HeaderName = HeaderName::from_static("traceparent");

/// The W3C `traceparent` value for a call made from `span`:
/// `00-{base_id as 32 hex digits}-{the last 16 hex digits of the span's
/// trace_id}-01` (version 0, sampled). `None` unless `span` is a trace
/// point.
///
/// ```
/// use tracing_osprofiler::http::inject;
///
/// // Outside a profiled request there is no trace to name.
/// assert!(inject::traceparent(&tracing::Span::current()).is_none());
/// ```
#[must_use]
pub fn traceparent(span: &Span) -> Option<HeaderValue> {
    let ids = span.point_ids()?;
    let trace_id = ids.base_id.as_uuid().as_u128();
    let span_id = ids.trace_id.low_u64();
    // W3C: an all-zero trace or span id is invalid.
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    HeaderValue::from_str(&format!("00-{trace_id:032x}-{span_id:016x}-01")).ok()
}

/// Sets `traceparent` in `headers` for a call made from `span`, replacing
/// one present. Returns whether it was set (`false` unless `span` is a
/// trace point).
pub fn insert_traceparent(headers: &mut HeaderMap, span: &Span) -> bool {
    match traceparent(span) {
        Some(value) => {
            headers.insert(TRACEPARENT_HEADER, value);
            true
        }
        None => false,
    }
}
