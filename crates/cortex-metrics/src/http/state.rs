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
    /// `known` are the method labels besides `_OTHER` (see
    /// [`MethodLabels`]).
    pub(crate) fn new(
        registry: &MetricsRegistry,
        buckets: &Buckets,
        known: MethodLabels,
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
        Ok(Self::from_families(
            duration,
            active,
            request_size,
            response_size,
            known,
        ))
    }

    /// The same families with another known-method list (and fresh caches).
    pub(crate) fn with_methods(&self, known: MethodLabels) -> Self {
        Self::from_families(
            self.duration.clone(),
            self.active.clone(),
            self.request_size.clone(),
            self.response_size.clone(),
            known,
        )
    }

    fn from_families(
        duration: HistogramFamily<5>,
        active: GaugeFamily<2>,
        request_size: HistogramFamily<5>,
        response_size: HistogramFamily<5>,
        known: MethodLabels,
    ) -> Self {
        let duration_cap = duration.max_series();
        let active_by_method = (0..=known.0.len()).map(|_| Default::default()).collect();
        Self {
            duration,
            active,
            request_size,
            response_size,
            methods: known,
            active_by_method,
            by_labels: LabelTable::new(duration_cap),
        }
    }
}

/// The configured known HTTP methods, as the label strings the hot path
/// borrows; `_OTHER` is implied after the last. Deduplicated, and never
/// containing `_OTHER` itself.
#[derive(Debug, Clone)]
pub(crate) struct MethodLabels(Box<[Box<str>]>);

impl MethodLabels {
    /// The default list: the methods of RFC 9110 and PATCH.
    pub(crate) fn standard() -> Self {
        Self::from_names(METHOD_LABELS[..METHOD_LABELS.len() - 1].iter().copied())
    }

    /// `methods`, in order, as the full list of known methods.
    pub(crate) fn from_methods(methods: impl IntoIterator<Item = http::Method>) -> Self {
        let methods: Vec<http::Method> = methods.into_iter().collect();
        Self::from_names(methods.iter().map(http::Method::as_str))
    }

    fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut labels: Vec<Box<str>> = Vec::new();
        for name in names {
            if name != OTHER && !labels.iter().any(|known| &**known == name) {
                labels.push(name.into());
            }
        }
        Self(labels.into_boxed_slice())
    }

    /// The index of `method`'s label: its place in the list, or the
    /// list's length (`_OTHER`) if it is not known. Case-sensitive.
    pub(crate) fn index(&self, method: &http::Method) -> usize {
        let name = method.as_str();
        self.0
            .iter()
            .position(|known| &**known == name)
            .unwrap_or(self.0.len())
    }

    /// The label at `index`; `_OTHER` past the end.
    pub(crate) fn label(&self, index: usize) -> &str {
        self.0.get(index).map_or(OTHER, |label| label)
    }
}

/// The label of methods outside the known list.
const OTHER: &str = "_OTHER";

#[derive(Debug)]
pub(crate) struct HttpMetricsState {
    pub(crate) duration: HistogramFamily<5>,
    pub(crate) active: GaugeFamily<2>,
    pub(crate) request_size: HistogramFamily<5>,
    pub(crate) response_size: HistogramFamily<5>,
    /// The known methods; a request's method is an index into them.
    methods: MethodLabels,
    /// The active-requests gauge per method label (known methods, then
    /// `_OTHER`) and scheme, resolved once: both sets are fixed when the
    /// state is built, so the hot path skips a family lookup.
    active_by_method: Box<[[OnceLock<Gauge>; SCHEME_LABELS.len()]]>,
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

/// The default values of `http_request_method`: the known methods, then
/// the fallback.
const METHOD_LABELS: [&str; 10] = [
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

    /// The index of `method`'s label (see [`method_label`](Self::method_label)).
    pub(crate) fn method_index(&self, method: &http::Method) -> usize {
        self.methods.index(method)
    }

    /// The `http_request_method` label of a method index.
    pub(crate) fn method_label(&self, method: usize) -> &str {
        self.methods.label(method)
    }

    /// The in-flight gauge for method index `method` and
    /// `SCHEME_LABELS[scheme]`.
    pub(crate) fn active(&self, method: usize, scheme: usize) -> &Gauge {
        let method = method.min(self.active_by_method.len() - 1);
        let scheme = scheme.min(SCHEME_LABELS.len() - 1);
        self.active_by_method[method][scheme].get_or_init(|| {
            self.active
                .with_labels([self.methods.label(method), SCHEME_LABELS[scheme]])
        })
    }
}
