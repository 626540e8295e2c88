use std::sync::Arc;

use tower_layer::Layer;

use super::service::HttpMetrics;
use super::state::HttpMetricsState;
use crate::{Buckets, MetricsError, MetricsRegistry};

/// Records OpenTelemetry HTTP server metrics for the wrapped service. See the
/// [module docs](crate::http) for the metrics.
///
/// All clones share one set of families, so `Router::layer` (which clones
/// the layer per route) still produces one metric per name.
#[derive(Debug, Clone)]
pub struct HttpMetricsLayer {
    pub(crate) state: Arc<HttpMetricsState>,
}

impl HttpMetricsLayer {
    /// Registers (or finds) the HTTP families in `registry`, with the
    /// OpenTelemetry duration buckets.
    ///
    /// Fails only if one of the names is already taken by an incompatible
    /// metric.
    pub fn new(registry: &MetricsRegistry) -> Result<Self, MetricsError> {
        Self::with_duration_buckets(registry, &Buckets::default())
    }

    /// Like [`new`](Self::new) with custom duration buckets (seconds).
    pub fn with_duration_buckets(
        registry: &MetricsRegistry,
        buckets: &Buckets,
    ) -> Result<Self, MetricsError> {
        Ok(Self {
            state: Arc::new(HttpMetricsState::new(registry, buckets)?),
        })
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics::from_state(inner, Arc::clone(&self.state))
    }
}
