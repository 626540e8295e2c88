use std::sync::Arc;

use tower_layer::Layer;

use super::service::HttpMetrics;
use super::state::{HttpMetricsState, MethodLabels};
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
        // A value with no valid method keeps the defaults, as cortex-trace
        // does: an unusable override must not turn every method to _OTHER.
        let known = std::env::var(KNOWN_METHODS_ENV)
            .ok()
            .map(|value| parse_known_methods(&value))
            .filter(|methods| !methods.is_empty())
            .map_or_else(MethodLabels::standard, MethodLabels::from_methods);
        Ok(Self {
            state: Arc::new(HttpMetricsState::new(registry, buckets, known)?),
            served_over_tls: false,
        })
    }

    /// The HTTP methods that keep their own `http_request_method` label;
    /// every other method is recorded as `_OTHER`. A full override of the
    /// default list (the eight methods of RFC 9110 plus `PATCH`), not an
    /// addition to it, and case-sensitive (`get` is not `GET`). Overrides
    /// `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` too.
    ///
    /// ```
    /// use cortex_metrics::{MetricsRegistry, http::HttpMetricsLayer};
    /// use http::Method;
    ///
    /// let registry = MetricsRegistry::new();
    /// let purge = Method::from_bytes(b"PURGE").unwrap();
    /// let layer = HttpMetricsLayer::new(&registry)?
    ///     .known_methods([Method::GET, Method::POST, purge]);
    /// # Ok::<(), cortex_metrics::MetricsError>(())
    /// ```
    ///
    /// Call it before the layer is cloned or applied: services made
    /// earlier keep the list they were made with.
    #[must_use]
    pub fn known_methods(mut self, methods: impl IntoIterator<Item = http::Method>) -> Self {
        self.state = Arc::new(self.state.with_methods(MethodLabels::from_methods(methods)));
        self
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

/// The environment variable the OpenTelemetry HTTP conventions name for
/// overriding the known methods; read once, when the layer is built.
pub(crate) const KNOWN_METHODS_ENV: &str = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";

/// The methods of an `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` value:
/// comma-separated, each trimmed, case-sensitive. Empty and invalid
/// entries are skipped (invalid ones with a warning); a value with no valid
/// method leaves the defaults in place.
pub(crate) fn parse_known_methods(value: &str) -> Vec<http::Method> {
    value
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .filter_map(|token| match http::Method::from_bytes(token.as_bytes()) {
            Ok(method) => Some(method),
            Err(_) => {
                tracing::warn!(
                    variable = KNOWN_METHODS_ENV,
                    token,
                    "ignoring an invalid HTTP method"
                );
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn known_methods_variable_is_comma_separated_trimmed_and_case_sensitive() {
        let purge = Method::from_bytes(b"PURGE").unwrap();
        let lower = Method::from_bytes(b"get").unwrap();
        assert_eq!(
            parse_known_methods(" GET ,PURGE,,get"),
            [Method::GET, purge, lower]
        );
    }

    #[test]
    fn known_methods_variable_skips_invalid_tokens() {
        assert_eq!(
            parse_known_methods("GET, BAD METHOD ,(x),POST"),
            [Method::GET, Method::POST]
        );
        assert!(parse_known_methods(" , ").is_empty());
    }

    #[test]
    fn known_methods_labels_are_deduplicated_and_never_other() {
        let labels = MethodLabels::from_methods(parse_known_methods("PUT,_OTHER,PUT"));
        assert_eq!(labels.label(0), "PUT");
        assert_eq!(labels.label(1), "_OTHER");
        assert_eq!(labels.index(&Method::from_bytes(b"_OTHER").unwrap()), 1);
    }
}
