use std::sync::Arc;

use http::Method;
use tower_layer::Layer;

use super::KnownMethods;
use super::service::HttpTrace;
use super::state::{TraceProvider, TracerState};

/// Traces every request of the wrapped service as an OpenTelemetry SERVER
/// span; see the [module docs](crate::http).
///
/// All clones share one tracer and propagator.
#[derive(Debug, Clone)]
pub struct HttpTraceLayer {
    pub(crate) state: Arc<TracerState>,
    served_over_tls: bool,
}

impl HttpTraceLayer {
    /// Spans go to a tracer of `provider` (an explicit provider, never a
    /// global one set elsewhere by surprise).
    pub fn new(provider: &impl TraceProvider) -> Self {
        Self {
            state: TracerState::from_provider(provider),
            served_over_tls: false,
        }
    }

    /// Whether this server's own listener speaks TLS (rustls in front of
    /// axum, say). It decides `url.scheme` for requests that state no
    /// scheme themselves: no `Forwarded: proto=`, no `X-Forwarded-Proto`,
    /// and an origin-form target, which is every plain HTTP/1.1 request.
    /// Default `false`: `http`, right for a plain listener and for one
    /// behind a TLS-terminating proxy that sends `X-Forwarded-Proto`.
    #[must_use]
    pub fn served_over_tls(mut self, tls: bool) -> Self {
        self.served_over_tls = tls;
        self
    }

    /// The HTTP methods spans name as they are, a full override of the
    /// default nine (`GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`,
    /// `OPTIONS`, `TRACE`, `PATCH`), compared case-sensitively: a method
    /// outside the list is `_OTHER` in `http.request.method` (the original
    /// in `http.request.method_original`) and `HTTP` in the span name.
    /// Wins over `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`, which is read
    /// when the layer is made.
    ///
    /// ```
    /// use cortex_trace::http::HttpTraceLayer;
    /// use http::Method;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    ///
    /// let provider = SdkTracerProvider::builder().build();
    /// let purge = Method::from_bytes(b"PURGE").unwrap();
    /// let layer = HttpTraceLayer::new(&provider).known_methods([Method::GET, Method::POST, purge]);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn known_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        TracerState::set_known_methods(&mut self.state, KnownMethods::custom(methods));
        self
    }
}

impl<S> Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace::from_state(inner, Arc::clone(&self.state), self.served_over_tls)
    }
}
