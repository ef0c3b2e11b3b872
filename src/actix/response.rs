//! The [`ResponseFuture`] and [`ResponseBody`] of the actix-web middleware:
//! the root span entered while the handler and then the body are polled,
//! and held (with the limit's permit) until the body is finished or
//! dropped, as the tower middleware does.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::web::Bytes;
use pin_project_lite::pin_project;
use tracing::Span;

use crate::http::root::record_status;
use crate::limit::ProfilePermit;

pin_project! {
    /// The response future of a [`ProfilingService`](super::ProfilingService).
    ///
    /// For a profiled request it enters the root span on every poll; when
    /// the response head is ready it records the status and moves the span
    /// and the limit's permit (none for a request under tail capture) into
    /// the [`ResponseBody`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        profiled: Option<(Span, Option<ProfilePermit>)>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, profiled: Option<(Span, Option<ProfilePermit>)>) -> Self {
        ResponseFuture { inner, profiled }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("profiled", &self.profiled.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<ResponseBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.profiled.as_ref().map(|(span, _)| span.enter());
            ready!(this.inner.poll(cx))
        };
        let profiled = this.profiled.take();
        Poll::Ready(match result {
            Ok(response) => {
                if let Some((span, _)) = &profiled {
                    record_status(span, response.status().as_u16());
                }
                Ok(response.map_body(|_, body| ResponseBody::new(body, profiled)))
            }
            Err(error) => {
                // actix renders the error as a response with this status;
                // the root (dropped here) ends with it.
                if let Some((span, _)) = &profiled {
                    let status = error.as_response_error().status_code();
                    record_status(span, status.as_u16());
                }
                Err(error)
            }
        })
    }
}

pin_project! {
    /// The response body of a [`ProfilingService`](super::ProfilingService).
    ///
    /// Unprofiled, it is the inner body and nothing else. Profiled, it holds
    /// the root span (entered while the inner body is polled, so work done
    /// while streaming is profiled too) and the limit's permit, and drops
    /// both when the body yields its last chunk, fails, or is dropped (a
    /// client that went away). So the root's stop line measures the whole
    /// response.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        profiled: Option<(Span, Option<ProfilePermit>)>,
    }
}

impl<B> ResponseBody<B> {
    fn new(inner: B, profiled: Option<(Span, Option<ProfilePermit>)>) -> Self {
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

impl<B: MessageBody> MessageBody for ResponseBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let chunk = {
            let _entered = this.profiled.as_ref().map(|(span, _)| span.enter());
            ready!(this.inner.poll_next(cx))
        };
        if matches!(chunk, None | Some(Err(_))) {
            *this.profiled = None;
        }
        Poll::Ready(chunk)
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        // Unprofiled, a body already in memory stays on actix's fast path.
        // Profiled, it is polled like any other, so the root lasts until
        // it is written.
        match self.profiled {
            None => self
                .inner
                .try_into_bytes()
                .map_err(|inner| ResponseBody::new(inner, None)),
            Some(_) => Err(self),
        }
    }
}
