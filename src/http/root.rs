//! What every server middleware does with a request's root, whatever the
//! framework: the default root span of a profiled request
//! ([`DefaultRootSpan`], `wsgi` like osprofiler's), the `http` client point
//! of an outgoing call, how a response's status or a failure is recorded on
//! them, and the root held until the response is done ([`HeldRoot`]):
//! entered while the response future and then its body are polled, given
//! the response's outcome when its head is ready, and ended when the body
//! ends, fails or is dropped. Reports read the same names, fields and end
//! times behind tower and actix-web; each framework's wrappers
//! (`crate::http::ResponseFuture`, `crate::actix::ResponseBody`, ...) are
//! made by [`response_wrapper!`] and only translate their traits into
//! [`HeldRoot`]'s two polls.
//!
//! Each span is built by a `tracing` macro at a fixed callsite, so no
//! callsite is made (or leaked) per configuration.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Poll};

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
///
/// Both middlewares' response future and body hold one beside the value
/// they wrap (see [`response_wrapper!`]) and leave everything about the
/// root to it: the call made inside it ([`in_scope`](Self::in_scope)), the
/// head ([`poll_head`](Self::poll_head), [`take`](Self::take)) and the
/// body ([`poll_part`](Self::poll_part)).
#[derive(Default)]
pub(crate) struct HeldRoot(Option<Held>);

struct Held {
    // Fields drop in order: the root's stop is handed to the writer before
    // its slot of the limit is free for another request.
    span: Span,
    _permit: Option<ProfilePermit>,
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

impl HeldRoot {
    /// Holds `span` and `permit` until the response is done.
    #[inline]
    pub(crate) fn new(span: Span, permit: Option<ProfilePermit>) -> Self {
        HeldRoot(Some(Held {
            span,
            _permit: permit,
        }))
    }

    /// Holds nothing: the request is served unprofiled.
    #[inline]
    pub(crate) fn unprofiled() -> Self {
        HeldRoot(None)
    }

    /// Whether a root is held (not ended yet).
    #[inline]
    pub(crate) fn is_held(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `f` inside the root if one is held; else just runs it.
    #[inline]
    pub(crate) fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let _entered = self.0.as_ref().map(|held| held.span.enter());
        f()
    }

    /// The `Debug` of a wrapper named `name`: whether it is profiled, never
    /// the span or the wrapped value.
    pub(crate) fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("profiled", &self.is_held())
            .finish_non_exhaustive()
    }

    /// Polls the response future `inner` with `poll`, inside the root. When
    /// the response (or the service's error) is ready, records `outcome` of
    /// it on the root, which the caller then [`take`](Self::take)s on with
    /// the response: to the response body, which holds it until the body
    /// is done, or to be dropped with an error, which ends the root there.
    #[inline]
    pub(crate) fn poll_head<F, R>(
        &self,
        inner: Pin<&mut F>,
        poll: impl FnOnce(Pin<&mut F>) -> Poll<R>,
        outcome: impl FnOnce(&R) -> Outcome,
    ) -> Poll<R> {
        let response = ready!(self.in_scope(|| poll(inner)));
        if let Some(held) = &self.0 {
            match outcome(&response) {
                Outcome::Status(status) => record_status(&held.span, status),
                #[cfg(feature = "tower")]
                Outcome::Failed(reason) => record_failure(&held.span, reason.to_owned()),
            }
        }
        // The response is returned where it lies, not paired with the root:
        // a pair is one more copy of it per request.
        Poll::Ready(response)
    }

    /// The root, leaving nothing held here: a finished response future
    /// hands its root to the body.
    #[inline]
    pub(crate) fn take(&mut self) -> HeldRoot {
        std::mem::take(self)
    }

    /// Polls the response body `inner` for its next part with `poll`,
    /// inside the root (so work done while streaming is profiled too), and
    /// ends the root after the body's last part (`None`), an error, or a
    /// part after which `at_end` says the body has nothing more. So the
    /// root's stop line measures the whole response.
    #[inline]
    pub(crate) fn poll_part<B, P, E>(
        &mut self,
        mut inner: Pin<&mut B>,
        poll: impl FnOnce(Pin<&mut B>) -> Poll<Option<Result<P, E>>>,
        at_end: impl FnOnce(&B) -> bool,
    ) -> Poll<Option<Result<P, E>>> {
        let part = ready!(self.in_scope(|| poll(inner.as_mut())));
        if self.is_held() && (matches!(part, None | Some(Err(_))) || at_end(&inner)) {
            *self = HeldRoot::unprofiled();
        }
        Poll::Ready(part)
    }
}

/// Defines a framework's public response wrapper: the pinned struct (with
/// the docs given) of the wrapped future or body and its [`HeldRoot`], and
/// a `Debug` that says only whether it is profiled; with `future`, `start`
/// (the service's call, made inside the root); with `body`, `new`,
/// `is_profiled` and `get_ref`. So the tower and actix-web wrappers have
/// the same shape and differ only in the trait each implements on it.
///
/// The wrapped value and the root are fields of the wrapper itself, not of
/// a shared inner struct: a nested struct costs the unprofiled request one
/// more copy of its future (a few hundred bytes) on the way out of `call`.
macro_rules! response_wrapper {
    ($kind:ident $(#[$attr:meta])* pub struct $name:ident<$inner:ident>;) => {
        pin_project_lite::pin_project! {
            $(#[$attr])*
            pub struct $name<$inner> {
                #[pin]
                inner: $inner,
                root: $crate::http::root::HeldRoot,
            }
        }

        impl<$inner> ::std::fmt::Debug for $name<$inner> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.root.fmt_as(stringify!($name), f)
            }
        }

        $crate::http::root::response_wrapper!(@$kind $name<$inner>);
    };
    (@future $name:ident<$inner:ident>) => {
        impl<$inner> $name<$inner> {
            /// The response future made by `call` (the inner service's call
            /// with `request`), made inside the root if one is held, so
            /// that spans the handler opens before its first poll are
            /// points too.
            #[inline]
            pub(crate) fn start<Q>(
                root: $crate::http::root::HeldRoot,
                request: Q,
                call: impl FnOnce(Q) -> $inner,
            ) -> Self {
                // Unprofiled, the future is made straight into place; the
                // request is passed, not captured, for the same reason.
                if !root.is_held() {
                    return $name {
                        inner: call(request),
                        root,
                    };
                }
                let inner = root.in_scope(|| call(request));
                $name { inner, root }
            }
        }
    };
    (@body $name:ident<$inner:ident>) => {
        impl<$inner> $name<$inner> {
            #[inline]
            pub(crate) fn new(inner: $inner, root: $crate::http::root::HeldRoot) -> Self {
                $name { inner, root }
            }

            /// Whether this response belongs to a profiled request whose
            /// body is not finished yet.
            #[must_use]
            pub fn is_profiled(&self) -> bool {
                self.root.is_held()
            }

            /// The wrapped body.
            pub fn get_ref(&self) -> &$inner {
                &self.inner
            }
        }
    };
}
pub(crate) use response_wrapper;

#[cfg(test)]
mod tests {
    //! What both middlewares' wrappers rely on: the root is entered while
    //! polled, ends with the body's last part and not before, records the
    //! response's status once, and ends before its permit is given back.

    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::Poll;

    use tracing::field::{Field, Visit};
    use tracing::span::{Id, Record};
    use tracing::Subscriber;
    use tracing_subscriber::layer::{Context, SubscriberExt as _};
    use tracing_subscriber::Layer;

    use super::{DefaultRootSpan, HeldRoot, Outcome};
    use crate::limit::{ProfileLimit, ProfileLimiter};

    /// What the subscriber saw: the permits in flight when the root closed,
    /// and the statuses recorded on it.
    #[derive(Clone, Default)]
    struct Seen {
        in_flight_at_close: Arc<Mutex<Vec<usize>>>,
        statuses: Arc<Mutex<Vec<u64>>>,
    }

    struct Watch {
        limiter: ProfileLimiter,
        seen: Seen,
    }

    struct Status<'a>(&'a Mutex<Vec<u64>>);

    impl Visit for Status<'_> {
        fn record_u64(&mut self, field: &Field, value: u64) {
            if field.name() == "http.status_code" {
                self.0.lock().unwrap().push(value);
            }
        }
        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    impl<S: Subscriber> Layer<S> for Watch {
        fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
            values.record(&mut Status(&self.seen.statuses));
        }
        fn on_close(&self, _: Id, _: Context<'_, S>) {
            let in_flight = self.limiter.in_flight();
            self.seen.in_flight_at_close.lock().unwrap().push(in_flight);
        }
    }

    /// Runs `test` with a held root (the default `wsgi` span and a permit
    /// of a limiter of one), under a subscriber that watches them.
    fn with_root(test: impl FnOnce(HeldRoot, &ProfileLimiter, &Seen)) {
        let limiter = ProfileLimit::default().with_max_concurrent(Some(1)).build();
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry().with(Watch {
            limiter: limiter.clone(),
            seen: seen.clone(),
        });
        tracing::subscriber::with_default(subscriber, || {
            let permit = limiter.try_acquire().expect("a permit");
            let span = DefaultRootSpan::new().span("GET", "/");
            assert!(!span.is_disabled());
            test(HeldRoot::new(span, Some(permit)), &limiter, &seen);
        });
    }

    type Part = Option<Result<u8, ()>>;

    fn part(root: &mut HeldRoot, polled: Poll<Part>, at_end: bool) -> Poll<Part> {
        let mut body = ();
        root.poll_part(
            Pin::new(&mut body),
            |_| {
                assert!(
                    !tracing::Span::current().is_none(),
                    "polled inside the root"
                );
                polled
            },
            |_| at_end,
        )
    }

    #[test]
    fn a_body_ends_the_root_at_its_last_part_then_frees_the_permit() {
        for (last, at_end) in [(None, false), (Some(Err(())), false), (Some(Ok(1)), true)] {
            with_root(|mut root, limiter, seen| {
                assert_eq!(part(&mut root, Poll::Pending, false), Poll::Pending);
                assert_eq!(
                    part(&mut root, Poll::Ready(Some(Ok(0))), false),
                    Poll::Ready(Some(Ok(0)))
                );
                assert!(root.is_held(), "not the last part yet");
                assert_eq!(limiter.in_flight(), 1);
                assert!(seen.in_flight_at_close.lock().unwrap().is_empty());

                assert_eq!(
                    part(&mut root, Poll::Ready(last), at_end),
                    Poll::Ready(last)
                );
                assert!(!root.is_held(), "{last:?} {at_end} ends the root");
                assert_eq!(limiter.in_flight(), 0, "the permit is back");
                assert_eq!(
                    *seen.in_flight_at_close.lock().unwrap(),
                    [1],
                    "the root closed while its permit was still held"
                );
            });
        }
    }

    #[test]
    fn the_head_records_its_status_and_hands_the_root_on() {
        with_root(|mut root, limiter, seen| {
            let mut future = ();
            let pending: Poll<u16> =
                root.poll_head(Pin::new(&mut future), |_| Poll::Pending, |_| unreachable!());
            assert!(pending.is_pending());
            assert!(root.is_held());

            let Poll::Ready(status) = root.poll_head(
                Pin::new(&mut future),
                |_| {
                    assert!(
                        !tracing::Span::current().is_none(),
                        "polled inside the root"
                    );
                    Poll::Ready(503)
                },
                |status| Outcome::Status(*status),
            ) else {
                panic!("ready");
            };
            assert_eq!(status, 503);
            assert_eq!(*seen.statuses.lock().unwrap(), [503]);
            let body_root = root.take();
            assert!(!root.is_held(), "the future no longer holds it");
            assert!(body_root.is_held(), "the body does");
            assert_eq!(*seen.statuses.lock().unwrap(), [503]);
            assert_eq!(limiter.in_flight(), 1);
            drop(body_root);
            assert_eq!(limiter.in_flight(), 0);
            assert_eq!(*seen.in_flight_at_close.lock().unwrap(), [1]);
        });
    }

    #[test]
    fn unprofiled_holds_nothing_and_enters_nothing() {
        let mut root = HeldRoot::unprofiled();
        // Under a subscriber, where a span entered would be the current one.
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            root.in_scope(|| assert!(tracing::Span::current().is_none()));
        });
        let mut body = ();
        let polled = root.poll_part(
            Pin::new(&mut body),
            |_| Poll::Ready(Some(Ok::<u8, ()>(7))),
            |_| unreachable!("an unprofiled body is not asked"),
        );
        assert_eq!(polled, Poll::Ready(Some(Ok(7))));
        let status = root.poll_head(
            Pin::new(&mut body),
            |_| Poll::Ready(200),
            |_| unreachable!("nothing to record on"),
        );
        assert_eq!(status, Poll::Ready(200));
        let body_root = root.take();
        assert!(!body_root.is_held());
    }
}
