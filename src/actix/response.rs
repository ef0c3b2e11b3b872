//! The [`ResponseFuture`] and [`ResponseBody`] of the actix-web middleware:
//! actix's side of the response only. What they do with the root (entered
//! while the handler and then the body are polled, the status recorded,
//! held with the limit's permit until the body is finished or dropped) is
//! `crate::http::root::HeldRoot`'s, the same as behind the tower middleware.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::web::Bytes;

use crate::http::root::{response_wrapper, Outcome};

response_wrapper! {
    future
    /// The response future of a [`ProfilingService`](super::ProfilingService).
    ///
    /// For a profiled request it enters the root span on every poll; when
    /// the response head is ready it records the status and moves the span
    /// and the limit's permit (none for a request under tail capture) into
    /// the [`ResponseBody`].
    pub struct ResponseFuture<F>;
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<ResponseBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.root.poll_head(
            this.inner,
            |inner| inner.poll(cx),
            // actix renders a handler's error as a response with the
            // error's status.
            |result| {
                Outcome::Status(match result {
                    Ok(response) => response.status().as_u16(),
                    Err(error) => error.as_response_error().status_code().as_u16(),
                })
            },
        ));
        let root = this.root.take();
        Poll::Ready(match result {
            Ok(response) => Ok(response.map_body(|_, body| ResponseBody::new(body, root))),
            // The root, dropped here, ends with the error's status.
            Err(error) => Err(error),
        })
    }
}

response_wrapper! {
    body
    /// The response body of a [`ProfilingService`](super::ProfilingService).
    ///
    /// Unprofiled, it is the inner body and nothing else. Profiled, it holds
    /// the root span (entered while the inner body is polled, so work done
    /// while streaming is profiled too) and the limit's permit, and drops
    /// both when the body yields its last chunk, fails, or is dropped (a
    /// client that went away). So the root's stop line measures the whole
    /// response.
    pub struct ResponseBody<B>;
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
        // actix asks for chunks until `None`: no end is known earlier.
        let this = self.project();
        this.root
            .poll_part(this.inner, |inner| inner.poll_next(cx), |_| false)
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        // Unprofiled, a body already in memory stays on actix's fast path.
        // Profiled, it is polled like any other, so the root lasts until
        // it is written.
        if self.is_profiled() {
            return Err(self);
        }
        let ResponseBody { inner, root } = self;
        inner
            .try_into_bytes()
            .map_err(|inner| ResponseBody::new(inner, root))
    }
}
