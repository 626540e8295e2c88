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
    served_over_tls: bool,
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
            served_over_tls: false,
        })
    }

    /// Whether this server's own listener speaks TLS (rustls in front of
    /// axum, say). It decides `url_scheme` for requests that state no
    /// scheme themselves: no `Forwarded: proto=`, no `X-Forwarded-Proto`,
    /// and an origin-form target, which is every plain HTTP/1.1 request.
    /// Default `false`: `http`, right for a plain listener and for one
    /// behind a TLS-terminating proxy that sends `X-Forwarded-Proto`.
    #[must_use]
    pub fn served_over_tls(mut self, tls: bool) -> Self {
        self.served_over_tls = tls;
        self
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics::from_state(inner, Arc::clone(&self.state), self.served_over_tls)
    }
}
