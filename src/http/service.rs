//! The [`ProfilingService`]: the middleware around one inner service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::admission::{Admission, RequestFacts};
use super::make_span::MakeRootSpan;
use super::{
    header_values, DefaultRootSpan, ResponseBody, ResponseFuture, TRACE_HMAC_HEADER,
    TRACE_INFO_HEADER,
};

/// Serves requests with a valid profile token inside a profiled root span
/// and all others untouched. Made by [`ProfilingLayer`](super::ProfilingLayer).
#[derive(Clone)]
pub struct ProfilingService<S, M = DefaultRootSpan> {
    inner: S,
    shared: Arc<Admission>,
    make_span: M,
}

impl<S, M> ProfilingService<S, M> {
    pub(crate) fn new(inner: S, shared: Arc<Admission>, make_span: M) -> Self {
        ProfilingService {
            inner,
            shared,
            make_span,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, M> fmt::Debug for ProfilingService<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfilingService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for ProfilingService<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    M: MakeRootSpan<ReqBody>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let headers = request.headers();
        let uri = request.uri();
        let facts = RequestFacts {
            method: request.method().as_str(),
            path: uri.path(),
            scheme: uri.scheme_str().unwrap_or("http"),
            query: uri.query(),
        };
        let root = self.shared.admit(
            header_values(headers, TRACE_INFO_HEADER),
            header_values(headers, TRACE_HMAC_HEADER),
            facts,
            || self.make_span.make_span(&request),
        );
        ResponseFuture::start(root, request, |request| self.inner.call(request))
    }
}
