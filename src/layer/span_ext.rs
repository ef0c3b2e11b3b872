//! [`ProfileExt`]: a span's trace point ids, and signed headers for a call
//! made from it, read through the subscriber of the span.
//!
//! Code that holds only a [`Span`] reaches the layer's data the way
//! tracing-opentelemetry does: the subscriber is asked, by `TypeId`, for a
//! [`LookupPoint`] (see the layer's `downcast_raw`), a function that knows
//! the subscriber's concrete type.

use tracing::span;
use tracing::{Dispatch, Span, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use super::Point;
use crate::format::PointIds;
use crate::point::PointFacts;
use crate::token::{Signer, TraceHeaders, TraceInfo};

/// Reads the ids and signer of a span's point (a captured request's points
/// have no signer unless its policy opts in).
type ReadPoint = fn(&Dispatch, &span::Id) -> Option<(PointIds, Option<Signer>)>;

/// Changes the facts of a span's point.
type UpdatePoint = fn(&Dispatch, &span::Id, &mut dyn FnMut(&mut PointFacts));

/// Type-erased access to the points of one subscriber type.
#[derive(Clone, Copy)]
pub(super) struct LookupPoint {
    read: ReadPoint,
    // Only the middlewares record outcomes this way.
    #[cfg_attr(not(any(feature = "tower", feature = "actix")), allow(dead_code))]
    update: UpdatePoint,
}

impl LookupPoint {
    pub(super) fn of<S>() -> Self
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        LookupPoint {
            read: lookup_point::<S>,
            update: update_point::<S>,
        }
    }
}

fn update_point<S>(dispatch: &Dispatch, id: &span::Id, update: &mut dyn FnMut(&mut PointFacts))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else {
        return;
    };
    let Some(span) = subscriber.span(id) else {
        return;
    };
    let mut extensions = span.extensions_mut();
    if let Some(point) = extensions.get_mut::<Point>() {
        update(point.facts_mut());
    }
}

#[cfg(any(feature = "tower", feature = "actix"))]
/// Records how the point of `span` ended (a response status, an error), if
/// `span` is a point: for the middlewares, which know the outcome of the
/// request or call whatever fields the span declares.
pub(crate) fn record_outcome(span: &Span, status_code: Option<u16>, error: Option<String>) {
    let mut error = error;
    span.with_subscriber(|(id, dispatch)| {
        if let Some(lookup) = dispatch.downcast_ref::<LookupPoint>() {
            (lookup.update)(dispatch, id, &mut |facts| {
                if status_code.is_some() {
                    facts.status_code = status_code;
                }
                if let Some(error) = error.take() {
                    facts.error.get_or_insert(error);
                }
            });
        }
    });
}

fn lookup_point<S>(dispatch: &Dispatch, id: &span::Id) -> Option<(PointIds, Option<Signer>)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let subscriber = dispatch.downcast_ref::<S>()?;
    let span = subscriber.span(id)?;
    let ids = span.extensions().get::<Point>()?.ids;
    // The root holds the signer; a point's ancestors are alive as long as
    // it is (the registry closes a span after its children).
    let signer = span.scope().find_map(|ancestor| {
        let extensions = ancestor.extensions();
        extensions.get::<Point>()?.signer.as_deref().cloned()
    });
    Some((ids, signer))
}

/// Access to the osprofiler data of a [`Span`].
///
/// ```
/// use tracing_osprofiler::ProfileExt;
///
/// // Outside a profiled request there is nothing to pass on.
/// assert!(tracing::Span::current().trace_headers().is_none());
/// ```
pub trait ProfileExt {
    /// The ids of this span's trace point, if it is one.
    fn point_ids(&self) -> Option<PointIds>;

    /// Signed headers for a call made from this span: the request's
    /// `base_id`, `parent_id` = this point's `trace_id`, signed with the
    /// request's key and algorithm. `None` unless the span is a trace point
    /// of a request that has a signer: a request recorded by tail capture
    /// has none, unless its [`CapturePolicy`](crate::CapturePolicy) opts in
    /// with `with_signed_downstream`.
    fn trace_headers(&self) -> Option<TraceHeaders>;
}

impl ProfileExt for Span {
    fn point_ids(&self) -> Option<PointIds> {
        lookup(self).map(|(ids, _)| ids)
    }

    fn trace_headers(&self) -> Option<TraceHeaders> {
        let (ids, signer) = lookup(self)?;
        Some(signer?.sign(&TraceInfo::new(ids.base_id, Some(ids.trace_id))))
    }
}

fn lookup(span: &Span) -> Option<(PointIds, Option<Signer>)> {
    span.with_subscriber(|(id, dispatch)| {
        let lookup = dispatch.downcast_ref::<LookupPoint>()?;
        (lookup.read)(dispatch, id)
    })
    .flatten()
}

/// Signed headers for a call made from the current span (see
/// [`ProfileExt::trace_headers`]), as `(name, value)` pairs through
/// [`TraceHeaders::iter`]. `None` outside a profiled request.
#[must_use]
pub fn current_trace_headers() -> Option<TraceHeaders> {
    Span::current().trace_headers()
}
