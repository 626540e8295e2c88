//! The families every clone of the layer, its services and their futures
//! record into.

use std::sync::OnceLock;

use super::BODY_SIZE_BUCKETS;
use super::scheme::SCHEME_LABELS;
use crate::label_table::LabelTable;
use crate::{
    Buckets, Gauge, GaugeFamily, Histogram, HistogramFamily, MetricsError, MetricsRegistry,
};

/// The labels of the per-request histograms, in the order of the values
/// [`HttpMetricsState::record`] takes. `error_type` is empty (so left out
/// of the exposition) unless the request failed.
const LABELS: [&str; 5] = [
    "http_request_method",
    "http_route",
    "http_response_status_code",
    "url_scheme",
    "error_type",
];

impl HttpMetricsState {
    /// Registers (or finds) the HTTP families in `registry`.
    pub(crate) fn new(registry: &MetricsRegistry, buckets: &Buckets) -> Result<Self, MetricsError> {
        let duration = registry.histogram_family(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests.",
            LABELS,
            buckets.bounds(),
        )?;
        let active = registry.gauge_family(
            "http_server_active_requests",
            "Number of active HTTP server requests.",
            ["http_request_method", "url_scheme"],
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
        let duration_cap = duration.max_series();
        Ok(Self {
            duration,
            active,
            request_size,
            response_size,
            active_by_method: Default::default(),
            by_labels: LabelTable::new(duration_cap),
        })
    }
}

#[derive(Debug)]
pub(crate) struct HttpMetricsState {
    pub(crate) duration: HistogramFamily<5>,
    pub(crate) active: GaugeFamily<2>,
    pub(crate) request_size: HistogramFamily<5>,
    pub(crate) response_size: HistogramFamily<5>,
    /// The active-requests gauge per scheme and method label, resolved
    /// once: both sets are fixed, so the hot path skips a family lookup.
    active_by_method: [[OnceLock<Gauge>; METHOD_LABELS.len()]; SCHEME_LABELS.len()],
    /// The three histograms of each (method, route, status, scheme, error
    /// type), found with one lookup instead of three. Capped like the
    /// families it caches.
    by_labels: LabelTable<RequestSeries, 5>,
}

/// The per-request histograms sharing one label set.
struct RequestSeries {
    duration: Histogram,
    request_size: Histogram,
    response_size: Histogram,
}

impl std::fmt::Debug for RequestSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSeries").finish_non_exhaustive()
    }
}

/// Every value `http_request_method` can take.
pub(crate) const METHOD_LABELS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];

impl std::fmt::Debug for LabelTable<RequestSeries, 5> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelTable")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl HttpMetricsState {
    /// Records one finished request.
    pub(crate) fn record(
        &self,
        labels: [&str; 5],
        seconds: f64,
        request_bytes: Option<u64>,
        response_bytes: u64,
        exemplar: Option<crate::Exemplar>,
    ) {
        let observe = |series: &RequestSeries| {
            match exemplar {
                Some(exemplar) => series.duration.observe_with_exemplar(seconds, exemplar),
                None => series.duration.observe(seconds),
            }
            series.response_size.observe(response_bytes as f64);
            if let Some(bytes) = request_bytes {
                series.request_size.observe(bytes as f64);
            }
        };
        let lookup = || RequestSeries {
            duration: self.duration.with_labels(labels),
            request_size: self.request_size.with_labels(labels),
            response_size: self.response_size.with_labels(labels),
        };
        if self.by_labels.with(labels, lookup, observe).is_none() {
            // The cache is full: the families' own guards take it from here.
            observe(&lookup());
        }
    }

    /// The in-flight gauge for `METHOD_LABELS[method]` and
    /// `SCHEME_LABELS[scheme]`.
    pub(crate) fn active(&self, method: usize, scheme: usize) -> &Gauge {
        let method = method.min(METHOD_LABELS.len() - 1);
        let scheme = scheme.min(SCHEME_LABELS.len() - 1);
        self.active_by_method[scheme][method].get_or_init(|| {
            self.active
                .with_labels([METHOD_LABELS[method], SCHEME_LABELS[scheme]])
        })
    }
}
