use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use http::{Request, Response, Uri};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::layer::TracerState;
use super::{method_name, protocol_version};
use crate::HeaderInjector;

/// Client-side tracing: a CLIENT span per outgoing request, child of the
/// current OpenTelemetry context, whose `traceparent`/`tracestate` are
/// injected into the request headers (replacing any already there).
///
/// Put it on the client's service stack (a `tower` HTTP client, hyper-util's
/// legacy client behind `ServiceBuilder`...). 4xx and 5xx responses and
/// transport errors mark the span as an error, as client spans should.
///
/// ```
/// use cortex_trace::http::PropagateLayer;
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use tower::{Layer, service_fn};
///
/// let provider = SdkTracerProvider::builder().build();
/// let client = PropagateLayer::new(&provider).layer(service_fn(|request: http::Request<()>| async move {
///     // `request` now carries a traceparent for a fresh CLIENT span.
///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// }));
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct PropagateLayer {
    state: Arc<TracerState>,
}

impl PropagateLayer {
    /// Client spans go to a tracer of `provider`.
    pub fn new<P>(provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Tracer + Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Span + Send + Sync + 'static,
    {
        Self {
            state: TracerState::from_provider(provider),
        }
    }
}

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagate {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service made by [`PropagateLayer`].
#[derive(Debug, Clone)]
pub struct Propagate<S> {
    inner: S,
    state: Arc<TracerState>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Propagate<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = PropagateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let parent = Context::current();
        let method = method_name(request.method());
        let mut attributes = vec![
            KeyValue::new("http.request.method", method),
            KeyValue::new(
                "network.protocol.version",
                protocol_version(request.version()),
            ),
        ];
        if let Some(url) = redacted_url(request.uri()) {
            attributes.push(KeyValue::new("url.full", url));
        }
        if let Some(host) = request.uri().host() {
            attributes.push(KeyValue::new("server.address", host.to_owned()));
        }
        if let Some(port) = request.uri().port_u16() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        let span = self
            .state
            .tracer
            .span_builder(method)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&self.state.tracer, &parent);
        let cx = parent.with_span(span);
        self.state
            .propagator
            .inject_context(&cx, &mut HeaderInjector(request.headers_mut()));
        PropagateFuture {
            inner: self.inner.call(request),
            cx: Some(cx),
        }
    }
}

/// `scheme://host[:port]/path`: no credentials and no query string, which
/// routinely carry secrets (tokens, signatures).
fn redacted_url(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let host = uri.host()?;
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{scheme}://{host}{port}{}", uri.path()))
}

pin_project! {
    /// The response future of [`Propagate`]; ends the CLIENT span when the
    /// response head arrives, the call fails, or the future is dropped.
    pub struct PropagateFuture<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
    }

    impl<F> PinnedDrop for PropagateFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(cx) = this.project().cx.take() {
                cx.span().set_attribute(KeyValue::new("error.type", "cancelled"));
                cx.span().end();
            }
        }
    }
}

impl<F> std::fmt::Debug for PropagateFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PropagateFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for PropagateFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(span_cx) = this.cx.take() {
            let span = span_cx.span();
            match &result {
                Ok(response) => {
                    let status = response.status();
                    span.set_attribute(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status.as_u16()),
                    ));
                    if status.is_client_error() || status.is_server_error() {
                        span.set_attribute(KeyValue::new("error.type", status.as_str().to_owned()));
                        span.set_status(Status::error(""));
                    }
                }
                Err(_) => {
                    span.set_attribute(KeyValue::new("error.type", "transport"));
                    span.set_status(Status::error("transport error"));
                }
            }
            span.end();
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries() {
        let uri: Uri = "https://user:secret@api.example.com:8443/v1/items?token=abc"
            .parse()
            .unwrap();
        assert_eq!(
            redacted_url(&uri).as_deref(),
            Some("https://api.example.com:8443/v1/items")
        );
        assert_eq!(redacted_url(&"/relative".parse().unwrap()), None);
    }
}
