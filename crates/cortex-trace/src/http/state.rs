//! The tracer and propagator every clone of a layer, its services and
//! their futures share.

use std::any::Any;
use std::sync::Arc;

use opentelemetry::Context;
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, SpanBuilder, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::KnownMethods;
use crate::TraceContextPropagator;

/// An OpenTelemetry [`TracerProvider`] whose tracers and spans can cross
/// threads: what [`HttpTraceLayer`](super::HttpTraceLayer) and
/// [`PropagateLayer`](super::PropagateLayer) take (the SDK's
/// `SdkTracerProvider`, or any other such provider). Implemented for every
/// provider that qualifies; there is nothing to implement.
pub trait TraceProvider: sealed::Sealed {
    #[doc(hidden)]
    fn layer_tracer(&self, scope: &'static str) -> LayerTracer;
}

impl<P> TraceProvider for P
where
    P: TracerProvider + 'static,
    P::Tracer: Tracer + Send + Sync + 'static,
    <P::Tracer as Tracer>::Span: Span + Send + Sync + 'static,
{
    fn layer_tracer(&self, scope: &'static str) -> LayerTracer {
        // The SDK's provider, by far the common one, keeps its concrete
        // tracer: its spans are boxed once (by the context) instead of
        // twice (by `BoxedTracer`, then by the context).
        match (self as &dyn Any).downcast_ref::<SdkTracerProvider>() {
            Some(sdk) => LayerTracer::Sdk(sdk.tracer(scope)),
            None => LayerTracer::Boxed(BoxedTracer::new(Box::new(self.tracer(scope)))),
        }
    }
}

/// The tracer a layer starts its spans with: the SDK's own, or any other
/// provider's behind a box.
#[doc(hidden)]
#[derive(Debug)]
pub enum LayerTracer {
    /// `opentelemetry_sdk`'s tracer.
    Sdk(SdkTracer),
    /// Any other provider's tracer.
    Boxed(BoxedTracer),
}

impl LayerTracer {
    /// Starts a span as a child of `parent` and returns the context it is
    /// current in. A span that does not record (the sampler dropped it)
    /// goes into the context as its span context alone: children and
    /// outgoing `traceparent`s still see its ids and flags, and nothing is
    /// boxed for a span whose every call is a no-op.
    pub(crate) fn start(&self, builder: SpanBuilder, parent: &Context) -> Context {
        fn into_context<S>(span: S, parent: &Context) -> Context
        where
            S: Span + Send + Sync + 'static,
        {
            if span.is_recording() {
                parent.with_span(span)
            } else {
                parent.with_remote_span_context(span.span_context().clone())
            }
        }
        match self {
            Self::Sdk(tracer) => into_context(builder.start_with_context(tracer, parent), parent),
            Self::Boxed(tracer) => into_context(builder.start_with_context(tracer, parent), parent),
        }
    }
}

// `pub` inside a private module: nameable by no one outside the crate, so
// no one else can implement `TraceProvider` (the sealed-trait pattern).
#[allow(unreachable_pub)]
mod sealed {
    pub trait Sealed {}
    impl<P: opentelemetry::trace::TracerProvider> Sealed for P {}
}

#[derive(Debug, Clone)]
pub(crate) struct TracerState {
    pub(crate) tracer: Arc<LayerTracer>,
    pub(crate) propagator: TraceContextPropagator,
    /// The methods spans name as they are; any other is `_OTHER`.
    pub(crate) known_methods: KnownMethods,
}

/// The instrumentation scope name of this crate's spans.
pub(crate) const SCOPE: &str = "cortex-trace";

impl TracerState {
    pub(crate) fn from_provider(provider: &impl TraceProvider) -> Arc<Self> {
        Arc::new(Self {
            tracer: Arc::new(provider.layer_tracer(SCOPE)),
            propagator: TraceContextPropagator::new(),
            known_methods: KnownMethods::from_env(),
        })
    }

    /// Overrides the known methods of the state `this` points to, copying
    /// it first if a clone of the layer already shares it.
    pub(crate) fn set_known_methods(this: &mut Arc<Self>, methods: KnownMethods) {
        Arc::make_mut(this).known_methods = methods;
    }
}
