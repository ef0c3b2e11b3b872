//! The spans every middleware makes the same way, whatever the framework:
//! the default root span of a profiled request ([`DefaultRootSpan`],
//! `wsgi` like osprofiler's), the `http` client point of an outgoing call,
//! and how a response's status or a failure is recorded on them. Reports
//! read the same names and fields behind tower and actix-web.
//!
//! Each span is built by a `tracing` macro at a fixed callsite, so no
//! callsite is made (or leaked) per configuration.

use tracing::Span;

use crate::layer::record_outcome;

/// The name of the default root point: osprofiler's WSGI middleware names
/// its root point `wsgi`, and reports and tools built for osprofiler look
/// for it.
pub const DEFAULT_ROOT_NAME: &str = "wsgi";

/// The default root span: `wsgi` (osprofiler's name), at level `INFO`,
/// target `tracing_osprofiler::http`, with the fields `http.method`,
/// `http.path` (recorded only when asked with
/// [`with_method_and_path`](Self::with_method_and_path); never the query
/// string) and `http.status_code`. The same for every middleware.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRootSpan {
    method_and_path: bool,
}

impl DefaultRootSpan {
    /// Method and path left out of the span's fields.
    #[must_use]
    pub const fn new() -> Self {
        DefaultRootSpan {
            method_and_path: false,
        }
    }

    /// Records the request method and path (never the query string) as the
    /// root span's `http.method` and `http.path` fields (default: off).
    /// The [`OsProfilerLayer`](crate::OsProfilerLayer) writes them on the
    /// start line only if its own `with_fields(true)` is on too.
    #[must_use]
    pub const fn with_method_and_path(mut self, record: bool) -> Self {
        self.method_and_path = record;
        self
    }

    /// The root span of a request with this method and path.
    pub(crate) fn span(&self, method: &str, path: &str) -> Span {
        if self.method_and_path {
            tracing::info_span!(
                target: "tracing_osprofiler::http",
                "wsgi",
                http.method = method,
                http.path = path,
                http.status_code = tracing::field::Empty,
            )
        } else {
            tracing::info_span!(
                target: "tracing_osprofiler::http",
                "wsgi",
                http.method = tracing::field::Empty,
                http.path = tracing::field::Empty,
                http.status_code = tracing::field::Empty,
            )
        }
    }
}

/// Records a response status on a root or client point: as its
/// `http.status_code` field when the span declares one, and as the point's
/// outcome (500 or more marks it failed).
pub(crate) fn record_status(span: &Span, status: u16) {
    span.record("http.status_code", status);
    record_outcome(span, Some(status), None);
}

/// Records that a request or call failed without a response of its own.
pub(crate) fn record_failure(span: &Span, error: String) {
    record_outcome(span, None, Some(error));
}
