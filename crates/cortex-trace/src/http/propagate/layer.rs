use std::sync::Arc;

use http::Method;
use tower_layer::Layer;

use super::service::Propagate;
use crate::http::KnownMethods;
use crate::http::state::{TraceProvider, TracerState};

/// Adds a CLIENT span and its `traceparent` to every request of the wrapped
/// client; see the [module docs](super).
///
/// All clones share one tracer and propagator.
#[derive(Debug, Clone)]
pub struct PropagateLayer {
    state: Arc<TracerState>,
}

impl PropagateLayer {
    /// Client spans go to a tracer of `provider`.
    pub fn new(provider: &impl TraceProvider) -> Self {
        Self {
            state: TracerState::from_provider(provider),
        }
    }

    /// The HTTP methods client spans name as they are, a full override of
    /// the default nine, compared case-sensitively; any other is `_OTHER`
    /// (and `HTTP` in the span name). Wins over
    /// `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`, which is read when the
    /// layer is made. See [`HttpTraceLayer::known_methods`](crate::http::HttpTraceLayer::known_methods).
    #[must_use]
    pub fn known_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        TracerState::set_known_methods(&mut self.state, KnownMethods::custom(methods));
        self
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate::from_state(inner, Arc::clone(&self.state))
    }
}
