use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{Request, Response, header};
use tower_layer::Layer;
use tower_service::Service;

use super::HttpMetricsLayer;
use super::future::{RequestGuard, ResponseFuture};
use super::scheme::url_scheme_index;
use super::state::HttpMetricsState;
use crate::{MetricsError, MetricsRegistry};

/// Records the HTTP server metrics of `S`; made by [`HttpMetricsLayer`], or
/// by [`HttpMetrics::new`].
#[derive(Debug, Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    state: Arc<HttpMetricsState>,
    served_over_tls: bool,
}

impl<S> HttpMetrics<S> {
    /// Wraps `inner`, recording into `registry` (see
    /// [`HttpMetricsLayer::new`] for when that fails).
    pub fn new(inner: S, registry: &MetricsRegistry) -> Result<Self, MetricsError> {
        Ok(HttpMetricsLayer::new(registry)?.layer(inner))
    }

    /// A layer that wraps services in `HttpMetrics`, recording into
    /// `registry`.
    pub fn layer(registry: &MetricsRegistry) -> Result<HttpMetricsLayer, MetricsError> {
        HttpMetricsLayer::new(registry)
    }

    pub(crate) fn from_state(
        inner: S,
        state: Arc<HttpMetricsState>,
        served_over_tls: bool,
    ) -> Self {
        Self {
            inner,
            state,
            served_over_tls,
        }
    }

    /// Whether this server's own listener speaks TLS; see
    /// [`HttpMetricsLayer::served_over_tls`].
    #[must_use]
    pub fn served_over_tls(mut self, tls: bool) -> Self {
        self.served_over_tls = tls;
        self
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<super::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = self.state.method_index(request.method());
        let scheme = url_scheme_index(request.headers(), request.uri(), self.served_over_tls);
        let route = request.extensions().get::<MatchedPath>().cloned();
        let request_bytes = request_body_size(&request);
        self.state.active(method, scheme).inc();
        // Captured now: the trace layer makes the request's span current
        // while inner services are called, not while the body streams.
        #[cfg(feature = "trace")]
        let exemplar = current_exemplar();
        #[cfg(not(feature = "trace"))]
        let exemplar = None;
        let guard = RequestGuard {
            state: Arc::clone(&self.state),
            method,
            scheme,
            route,
            start: Instant::now(),
            status: None,
            error_type: None,
            request_bytes,
            response_bytes: 0,
            exemplar,
        };
        ResponseFuture::new(self.inner.call(request), guard)
    }
}

/// The current OpenTelemetry span, if it is sampled (an unsampled trace is
/// not exported, so an exemplar pointing at it would lead nowhere).
#[cfg(feature = "trace")]
fn current_exemplar() -> Option<crate::Exemplar> {
    use opentelemetry::trace::TraceContextExt;
    // Read in place: no clone of the current context per request.
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let context = span.span_context();
        (context.is_valid() && context.is_sampled()).then(|| crate::Exemplar {
            trace_id: u128::from_be_bytes(context.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(context.span_id().to_bytes()),
        })
    })
}

/// `Content-Length` when valid; zero for a request that declares no body
/// framing at all (it has none); unknown for chunked bodies.
fn request_body_size<B>(request: &Request<B>) -> Option<u64> {
    match request.headers().get(header::CONTENT_LENGTH) {
        Some(value) => value.to_str().ok()?.trim().parse().ok(),
        None if request.headers().contains_key(header::TRANSFER_ENCODING) => None,
        None => Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_standard_methods_become_other() {
        use super::super::state::MethodLabels;
        use http::Method;
        let methods = MethodLabels::standard();
        let label = |m: &Method| methods.label(methods.index(m));
        assert_eq!(label(&Method::GET), "GET");
        assert_eq!(label(&Method::PATCH), "PATCH");
        assert_eq!(label(&Method::from_bytes(b"PURGE").unwrap()), "_OTHER");
        assert_eq!(label(&Method::from_bytes(b"get").unwrap()), "_OTHER");
        assert_eq!(label(&Method::from_bytes(b"_OTHER").unwrap()), "_OTHER");
    }

    #[test]
    fn request_size_comes_from_content_length() {
        let with_length = Request::builder()
            .header("content-length", "42")
            .body(())
            .unwrap();
        assert_eq!(request_body_size(&with_length), Some(42));
        let bogus = Request::builder()
            .header("content-length", "-1")
            .body(())
            .unwrap();
        assert_eq!(request_body_size(&bogus), None);
        let chunked = Request::builder()
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap();
        assert_eq!(request_body_size(&chunked), None);
        assert_eq!(request_body_size(&Request::new(())), Some(0));
    }
}
