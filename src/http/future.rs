//! The [`ResponseFuture`]: polls the inner service inside the root span and
//! hands the span on to the [`ResponseBody`].

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;
use tracing::Span;

use super::root::{record_failure, record_status};
use super::ResponseBody;
use crate::limit::ProfilePermit;

pin_project! {
    /// The response future of a [`ProfilingService`](super::ProfilingService).
    ///
    /// For a profiled request it enters the root span on every poll; when the
    /// response head is ready it moves the span and the limit's permit into
    /// the [`ResponseBody`], so the root point lasts until the body ends.
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

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.profiled.as_ref().map(|(span, _)| span.enter());
            ready!(this.inner.poll(cx))
        };
        // On an error the span and permit are dropped here, which ends the
        // root point with the failed call.
        let profiled = this.profiled.take();
        if let Some((span, _)) = &profiled {
            record_response(span, result.as_ref().map(Response::status));
        }
        Poll::Ready(result.map(|response| response.map(|body| ResponseBody::new(body, profiled))))
    }
}

/// Records the response status on the root (see [`record_status`]): a
/// status of 500 or more, or an error of the inner service, marks the
/// request failed.
fn record_response<E>(span: &Span, status: Result<http::StatusCode, &E>) {
    match status {
        Ok(status) => record_status(span, status.as_u16()),
        Err(_) => record_failure(span, "the service failed".to_owned()),
    }
}
