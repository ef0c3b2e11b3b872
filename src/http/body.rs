//! The [`ResponseBody`]: keeps a profiled request's root span open until the
//! response body is finished or dropped.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tracing::Span;

use crate::limit::ProfilePermit;

pin_project! {
    /// The response body of a [`ProfilingService`](super::ProfilingService).
    ///
    /// Unprofiled, it is the inner body and nothing else. Profiled, it holds
    /// the root span (entered while the inner body is polled, so work done
    /// while streaming is profiled too) and the limit's permit, and drops
    /// both when the body yields its last frame, fails, or is dropped (a
    /// client that went away), as tower-http's `TraceLayer` ends its span.
    /// So the root's stop line measures the whole response.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        profiled: Option<(Span, Option<ProfilePermit>)>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(inner: B, profiled: Option<(Span, Option<ProfilePermit>)>) -> Self {
        ResponseBody { inner, profiled }
    }

    /// Whether this response belongs to a profiled request whose body is
    /// not finished yet.
    #[must_use]
    pub fn is_profiled(&self) -> bool {
        self.profiled.is_some()
    }

    /// The wrapped body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("profiled", &self.profiled.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = {
            let _entered = this.profiled.as_ref().map(|(span, _)| span.enter());
            ready!(this.inner.as_mut().poll_frame(cx))
        };
        if matches!(frame, None | Some(Err(_))) || this.inner.is_end_stream() {
            *this.profiled = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
