//! The [`ResponseFuture`]: the tower side of the response's future. What it
//! does with the root (entered on every poll, the status recorded, the root
//! handed on to the [`ResponseBody`]) is `root::HeldRoot`'s, shared with actix-web.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;

use super::root::{response_wrapper, Outcome};
use super::ResponseBody;

response_wrapper! {
    future
    /// The response future of a [`ProfilingService`](super::ProfilingService).
    ///
    /// For a profiled request it enters the root span on every poll; when the
    /// response head is ready it records the status and moves the span and
    /// the limit's permit into the [`ResponseBody`], so the root point lasts
    /// until the body ends. An error of the inner service ends the root at
    /// once, marked failed.
    pub struct ResponseFuture<F>;
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.root.poll_head(
            this.inner,
            |inner| inner.poll(cx),
            |result| match result {
                Ok(response) => Outcome::Status(response.status().as_u16()),
                Err(_) => Outcome::Failed("the service failed"),
            },
        ));
        let root = this.root.take();
        Poll::Ready(result.map(|response| response.map(|body| ResponseBody::new(body, root))))
    }
}
