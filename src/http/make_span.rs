//! [`MakeRootSpan`]: how the middleware builds a profiled request's root
//! span, with a closure implementation, as tower-http's `MakeSpan` does.
//!
//! The default, [`DefaultRootSpan`], is shared with the other middlewares
//! (`root.rs`); a root named other than `wsgi` is a closure with its own
//! `info_span!`.

use http::Request;
use tracing::Span;

use super::DefaultRootSpan;

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

impl<B> MakeRootSpan<B> for DefaultRootSpan {
    fn make_span(&self, request: &Request<B>) -> Span {
        self.span(request.method().as_str(), request.uri().path())
    }
}
