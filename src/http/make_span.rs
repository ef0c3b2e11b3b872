//! [`MakeRootSpan`]: how the middleware builds a profiled request's root
//! span, with a closure implementation, as tower-http's `MakeSpan` does.
//!
//! The span is built by a `tracing` macro at a fixed callsite, so no
//! callsite is made (or leaked) per configuration: a root named other than
//! `wsgi` is a closure with its own `info_span!`.

use http::Request;
use tracing::Span;

/// The name of the default root point: osprofiler's WSGI middleware names
/// its root point `wsgi`, and reports and tools built for osprofiler look
/// for it.
pub const DEFAULT_ROOT_NAME: &str = "wsgi";

/// Builds the root span of a profiled request.
///
/// Implemented by [`DefaultRootSpan`] and by any
/// `Fn(&http::Request<B>) -> tracing::Span`:
///
/// ```
/// use tracing_osprofiler::http::ProfilingLayer;
/// use tracing_osprofiler::HmacKeys;
///
/// let layer = ProfilingLayer::new(HmacKeys::from_comma_separated("SECRET_KEY"))
///     .with_make_span(|request: &http::Request<axum::body::Body>| {
///         tracing::info_span!(
///             "api-request",
///             http.method = %request.method(),
///             http.status_code = tracing::field::Empty,
///         )
///     });
/// # drop(layer);
/// ```
///
/// Declare `http.status_code = tracing::field::Empty` on the span to have
/// the response status recorded there as a field too (the point's outcome
/// is recorded either way).
pub trait MakeRootSpan<B> {
    /// The root span of `request`.
    fn make_span(&self, request: &Request<B>) -> Span;
}

impl<B, F> MakeRootSpan<B> for F
where
    F: Fn(&Request<B>) -> Span,
{
    fn make_span(&self, request: &Request<B>) -> Span {
        self(request)
    }
}

/// The default root span: `wsgi` (osprofiler's name), at level `INFO`,
/// target `tracing_osprofiler::http`, with the fields `http.method`,
/// `http.path` (recorded only when asked with
/// [`with_method_and_path`](Self::with_method_and_path); never the query
/// string) and `http.status_code`.
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
}

impl<B> MakeRootSpan<B> for DefaultRootSpan {
    fn make_span(&self, request: &Request<B>) -> Span {
        if self.method_and_path {
            tracing::info_span!(
                target: "tracing_osprofiler::http",
                "wsgi",
                http.method = request.method().as_str(),
                http.path = request.uri().path(),
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
