use std::sync::{Arc, OnceLock};

use tower_layer::Layer;

use super::BODY_SIZE_BUCKETS;
use super::service::HttpMetrics;
use crate::{Buckets, Gauge, GaugeFamily, HistogramFamily, MetricsError, MetricsRegistry};

/// Records OpenTelemetry HTTP server metrics for the wrapped service. See the
/// [module docs](crate::http) for the metrics.
///
/// All clones share one set of families, so `Router::layer` (which clones
/// the layer per route) still produces one metric per name.
#[derive(Debug, Clone)]
pub struct HttpMetricsLayer {
    pub(crate) state: Arc<HttpMetricsState>,
}

#[derive(Debug)]
pub(crate) struct HttpMetricsState {
    pub(crate) duration: HistogramFamily<3>,
    pub(crate) active: GaugeFamily<1>,
    pub(crate) request_size: HistogramFamily<3>,
    pub(crate) response_size: HistogramFamily<3>,
    /// The active-requests gauge per method label, resolved once: the
    /// method set is fixed, so the hot path skips a family lookup.
    active_by_method: [OnceLock<Gauge>; METHOD_LABELS.len()],
}

/// Every value `http_request_method` can take.
pub(crate) const METHOD_LABELS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];

impl HttpMetricsState {
    /// The in-flight gauge for `METHOD_LABELS[method]`.
    pub(crate) fn active(&self, method: usize) -> &Gauge {
        let method = method.min(METHOD_LABELS.len() - 1);
        self.active_by_method[method]
            .get_or_init(|| self.active.with_labels([METHOD_LABELS[method]]))
    }
}

const LABELS: [&str; 3] = [
    "http_request_method",
    "http_route",
    "http_response_status_code",
];

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
        let duration = registry.histogram_family(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            LABELS,
            buckets.bounds(),
        )?;
        let active = registry.gauge_family(
            "http_server_active_requests",
            "Number of active HTTP server requests.",
            ["http_request_method"],
        )?;
        let request_size = registry.histogram_family(
            "http_server_request_body_size_bytes",
            "Size of HTTP server request bodies (from Content-Length).",
            LABELS,
            BODY_SIZE_BUCKETS,
        )?;
        let response_size = registry.histogram_family(
            "http_server_response_body_size_bytes",
            "Size of HTTP server response bodies as streamed.",
            LABELS,
            BODY_SIZE_BUCKETS,
        )?;
        Ok(Self {
            state: Arc::new(HttpMetricsState {
                duration,
                active,
                request_size,
                response_size,
                active_by_method: Default::default(),
            }),
        })
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics::new(inner, Arc::clone(&self.state))
    }
}
