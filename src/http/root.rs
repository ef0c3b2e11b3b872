//! What every server middleware does with a request's root, whatever the
//! framework: the default root span of a profiled request
//! ([`DefaultRootSpan`], `wsgi` like osprofiler's), the `http` client point
//! of an outgoing call, how a response's status or a failure is recorded on
//! them, and the root held until the response is done ([`HeldRoot`],
//! [`Rooted`]): entered while the response future and then its body are
//! polled, given the response's outcome when its head is ready, and ended
//! when the body ends, fails or is dropped. Reports read the same names,
//! fields and end times behind tower and actix-web; each framework's
//! wrappers (`crate::http::ResponseFuture`, `crate::actix::ResponseBody`,
//! ...) only translate their traits into [`Rooted`]'s two polls.
//!
//! Each span is built by a `tracing` macro at a fixed callsite, so no
//! callsite is made (or leaked) per configuration.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Poll};

use pin_project_lite::pin_project;
use tracing::Span;

use crate::layer::record_outcome;
use crate::limit::ProfilePermit;

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

/// A profiled (or tail-captured) request's root span and the limit's
/// permit (none under tail capture), held from the call until the response
/// body is done; empty for a request served unprofiled. Dropping it ends
/// the root.
#[derive(Default)]
pub(crate) struct HeldRoot(Option<Held>);

struct Held {
    // Fields drop in order: the root's stop is handed to the writer before
    // its slot of the limit is free for another request.
    span: Span,
    _permit: Option<ProfilePermit>,
}

impl HeldRoot {
    /// Holds `span` and `permit` until the response is done.
    pub(crate) fn new(span: Span, permit: Option<ProfilePermit>) -> Self {
        HeldRoot(Some(Held {
            span,
            _permit: permit,
        }))
    }

    /// Holds nothing: the request is served unprofiled.
    pub(crate) fn unprofiled() -> Self {
        HeldRoot(None)
    }

    /// Whether a root is held.
    pub(crate) fn is_held(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `f` inside the root if one is held; else just runs it.
    pub(crate) fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let _entered = self.0.as_ref().map(|held| held.span.enter());
        f()
    }
}

/// How a response's head turned out, as the root records it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// A response with this status (500 or more marks the request failed).
    Status(u16),
    /// No response: the service failed, for this reason (tower's services
    /// have errors of any type; actix-web's errors all have a status).
    #[cfg(feature = "tower")]
    Failed(&'static str),
}

pin_project! {
    /// A response future or response body and the root it holds: the
    /// framework-neutral state of both middlewares' wrappers.
    pub(crate) struct Rooted<T> {
        #[pin]
        inner: T,
        root: HeldRoot,
    }
}

impl<T> Rooted<T> {
    pub(crate) fn new(inner: T, root: HeldRoot) -> Self {
        Rooted { inner, root }
    }

    /// Whether this holds a root not yet ended.
    pub(crate) fn is_profiled(&self) -> bool {
        self.root.is_held()
    }

    /// The wrapped future or body.
    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped future or body, and the root.
    #[cfg(feature = "actix")]
    pub(crate) fn into_parts(self) -> (T, HeldRoot) {
        (self.inner, self.root)
    }

    /// The `Debug` of a public wrapper named `name`: whether it is profiled,
    /// never the span or the inner value.
    pub(crate) fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("profiled", &self.is_profiled())
            .finish_non_exhaustive()
    }

    /// Polls the response future with `poll`, inside the root. When the
    /// response (or the service's error) is ready, records `outcome` of it
    /// on the root and hands the root over with it: to the response body,
    /// which holds it until the body is done, or to be dropped with an
    /// error, which ends the root there.
    pub(crate) fn poll_head<R>(
        self: Pin<&mut Self>,
        poll: impl FnOnce(Pin<&mut T>) -> Poll<R>,
        outcome: impl FnOnce(&R) -> Outcome,
    ) -> Poll<(R, HeldRoot)> {
        let this = self.project();
        let response = ready!(this.root.in_scope(|| poll(this.inner)));
        let root = std::mem::take(this.root);
        if let Some(held) = &root.0 {
            match outcome(&response) {
                Outcome::Status(status) => record_status(&held.span, status),
                #[cfg(feature = "tower")]
                Outcome::Failed(reason) => record_failure(&held.span, reason.to_owned()),
            }
        }
        Poll::Ready((response, root))
    }

    /// Polls the response body's next part with `poll`, inside the root (so
    /// work done while streaming is profiled too), and ends the root after
    /// the body's last part (`None`), an error, or a part after which
    /// `at_end` says the body has nothing more. So the root's stop line
    /// measures the whole response.
    pub(crate) fn poll_part<P, E>(
        self: Pin<&mut Self>,
        poll: impl FnOnce(Pin<&mut T>) -> Poll<Option<Result<P, E>>>,
        at_end: impl FnOnce(&T) -> bool,
    ) -> Poll<Option<Result<P, E>>> {
        let mut this = self.project();
        let part = ready!(this.root.in_scope(|| poll(this.inner.as_mut())));
        if this.root.is_held() && (matches!(part, None | Some(Err(_))) || at_end(&this.inner)) {
            *this.root = HeldRoot::unprofiled();
        }
        Poll::Ready(part)
    }
}

/// Defines a framework's public response wrapper around [`Rooted`]: the
/// pinned struct (with the docs given), `new`, and a `Debug` that says only
/// whether it is profiled; with `body`, also `is_profiled` and `get_ref`.
/// So the tower and actix-web wrappers have the same shape and differ only
/// in the trait each implements on it.
macro_rules! response_wrapper {
    ($(#[$attr:meta])* pub struct $name:ident<$inner:ident>;) => {
        pin_project_lite::pin_project! {
            $(#[$attr])*
            pub struct $name<$inner> {
                #[pin]
                rooted: $crate::http::root::Rooted<$inner>,
            }
        }

        impl<$inner> $name<$inner> {
            pub(crate) fn new(inner: $inner, root: $crate::http::root::HeldRoot) -> Self {
                $name {
                    rooted: $crate::http::root::Rooted::new(inner, root),
                }
            }
        }

        impl<$inner> ::std::fmt::Debug for $name<$inner> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.rooted.fmt_as(stringify!($name), f)
            }
        }
    };
    (body $(#[$attr:meta])* pub struct $name:ident<$inner:ident>;) => {
        $crate::http::root::response_wrapper! {
            $(#[$attr])*
            pub struct $name<$inner>;
        }

        impl<$inner> $name<$inner> {
            /// Whether this response belongs to a profiled request whose
            /// body is not finished yet.
            #[must_use]
            pub fn is_profiled(&self) -> bool {
                self.rooted.is_profiled()
            }

            /// The wrapped body.
            pub fn get_ref(&self) -> &$inner {
                self.rooted.get_ref()
            }
        }
    };
}
pub(crate) use response_wrapper;
