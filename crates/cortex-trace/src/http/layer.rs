use std::sync::Arc;

use tower_layer::Layer;

use super::service::HttpTrace;
use super::state::{TraceProvider, TracerState};

/// Traces every request of the wrapped service as an OpenTelemetry SERVER
/// span; see the [module docs](crate::http).
///
/// All clones share one tracer and propagator.
#[derive(Debug, Clone)]
pub struct HttpTraceLayer {
    pub(crate) state: Arc<TracerState>,
}

impl HttpTraceLayer {
    /// Spans go to a tracer of `provider` (an explicit provider, never a
    /// global one set elsewhere by surprise).
    pub fn new(provider: &impl TraceProvider) -> Self {
        Self {
            state: TracerState::from_provider(provider),
        }
    }
}

impl<S> Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace::from_state(inner, Arc::clone(&self.state))
    }
}
