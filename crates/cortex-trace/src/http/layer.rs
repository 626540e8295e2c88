use std::sync::Arc;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use tower_layer::Layer;

use super::service::HttpTrace;
use crate::TraceContextPropagator;

/// Traces every request of the wrapped service as an OpenTelemetry SERVER
/// span; see the [module docs](crate::http).
///
/// All clones share one tracer and propagator.
#[derive(Debug, Clone)]
pub struct HttpTraceLayer {
    pub(crate) state: Arc<TracerState>,
}

#[derive(Debug)]
pub(crate) struct TracerState {
    pub(crate) tracer: BoxedTracer,
    pub(crate) propagator: TraceContextPropagator,
}

/// The instrumentation scope name of this crate's spans.
pub(crate) const SCOPE: &str = "cortex-trace";

impl TracerState {
    pub(crate) fn from_provider<P>(provider: &P) -> Arc<Self>
    where
        P: TracerProvider,
        P::Tracer: Tracer + Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Span + Send + Sync + 'static,
    {
        Arc::new(Self {
            tracer: BoxedTracer::new(Box::new(provider.tracer(SCOPE))),
            propagator: TraceContextPropagator::new(),
        })
    }
}

impl HttpTraceLayer {
    /// Spans go to a tracer of `provider` (an explicit provider, never a
    /// global one set elsewhere by surprise).
    pub fn new<P>(provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Tracer + Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Span + Send + Sync + 'static,
    {
        Self {
            state: TracerState::from_provider(provider),
        }
    }
}

impl<S> Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace::new(inner, Arc::clone(&self.state))
    }
}
