use std::sync::Arc;

use tower_layer::Layer;

use super::service::Propagate;
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
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate::from_state(inner, Arc::clone(&self.state))
    }
}
