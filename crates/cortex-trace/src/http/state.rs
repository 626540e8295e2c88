//! The tracer and propagator every clone of a layer, its services and
//! their futures share.

use std::sync::Arc;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, Tracer, TracerProvider};

use super::KnownMethods;
use crate::TraceContextPropagator;

/// An OpenTelemetry [`TracerProvider`] whose tracers and spans can cross
/// threads: what [`HttpTraceLayer`](super::HttpTraceLayer) and
/// [`PropagateLayer`](super::PropagateLayer) take (the SDK's
/// `SdkTracerProvider`, or any other such provider). Implemented for every
/// provider that qualifies; there is nothing to implement.
pub trait TraceProvider: sealed::Sealed {
    #[doc(hidden)]
    fn boxed_tracer(&self, scope: &'static str) -> BoxedTracer;
}

impl<P> TraceProvider for P
where
    P: TracerProvider,
    P::Tracer: Tracer + Send + Sync + 'static,
    <P::Tracer as Tracer>::Span: Span + Send + Sync + 'static,
{
    fn boxed_tracer(&self, scope: &'static str) -> BoxedTracer {
        BoxedTracer::new(Box::new(self.tracer(scope)))
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
    pub(crate) tracer: Arc<BoxedTracer>,
    pub(crate) propagator: TraceContextPropagator,
    /// The methods spans name as they are; any other is `_OTHER`.
    pub(crate) known_methods: KnownMethods,
}

/// The instrumentation scope name of this crate's spans.
pub(crate) const SCOPE: &str = "cortex-trace";

impl TracerState {
    pub(crate) fn from_provider(provider: &impl TraceProvider) -> Arc<Self> {
        Arc::new(Self {
            tracer: Arc::new(provider.boxed_tracer(SCOPE)),
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
