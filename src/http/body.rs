//! The [`ResponseBody`]: the tower side of the response's body. Holding the
//! root until the body is finished or dropped is `root::HeldRoot`'s, shared with
//! actix-web.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

use super::root::response_wrapper;

response_wrapper! {
    body
    /// The response body of a [`ProfilingService`](super::ProfilingService).
    ///
    /// Unprofiled, it is the inner body and nothing else. Profiled, it holds
    /// the root span (entered while the inner body is polled, so work done
    /// while streaming is profiled too) and the limit's permit, and drops
    /// both when the body yields its last frame, fails, or is dropped (a
    /// client that went away), as tower-http's `TraceLayer` ends its span.
    /// So the root's stop line measures the whole response.
    pub struct ResponseBody<B>;
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        this.root
            .poll_part(this.inner, |inner| inner.poll_frame(cx), B::is_end_stream)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::super::root::HeldRoot;
    use super::ResponseBody;

    /// The `Debug` that `response_wrapper!` makes: whether the body is
    /// profiled, never the inner body or the span.
    #[test]
    fn debug_says_whether_it_is_profiled() {
        let body = ResponseBody::new(String::from("secret body"), HeldRoot::unprofiled());
        assert_eq!(format!("{body:?}"), "ResponseBody { profiled: false, .. }");
    }
}
