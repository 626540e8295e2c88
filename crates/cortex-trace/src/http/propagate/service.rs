use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response, Uri};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanBuilder, SpanKind};
use opentelemetry::{Context, KeyValue};
use tower_service::Service;

use super::future::PropagateFuture;
use super::layer::PropagateLayer;
use crate::HeaderInjector;
use crate::http::state::{TraceProvider, TracerState};
use crate::http::{OTHER_METHOD, OTHER_METHOD_SPAN_NAME, protocol_version};

/// Traces the requests `S` sends; made by [`PropagateLayer`], or by
/// [`Propagate::new`].
#[derive(Debug, Clone)]
pub struct Propagate<S> {
    inner: S,
    state: Arc<TracerState>,
}

impl<S> Propagate<S> {
    /// Wraps `inner`; client spans go to a tracer of `provider`.
    pub fn new(inner: S, provider: &impl TraceProvider) -> Self {
        Self::from_state(inner, TracerState::from_provider(provider))
    }

    /// A layer that wraps services in `Propagate`.
    pub fn layer(provider: &impl TraceProvider) -> PropagateLayer {
        PropagateLayer::new(provider)
    }

    pub(crate) fn from_state(inner: S, state: Arc<TracerState>) -> Self {
        Self { inner, state }
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
        let method = self.state.known_methods.name(request.method());
        let name = method
            .clone()
            .unwrap_or(Cow::Borrowed(OTHER_METHOD_SPAN_NAME));
        let mut attributes = Vec::with_capacity(7);
        match method {
            Some(method) => attributes.push(KeyValue::new("http.request.method", method)),
            None => {
                attributes.push(KeyValue::new("http.request.method", OTHER_METHOD));
                attributes.push(KeyValue::new(
                    "http.request.method_original",
                    request.method().as_str().to_owned(),
                ));
            }
        }
        attributes.push(KeyValue::new(
            "network.protocol.version",
            protocol_version(request.version()),
        ));
        if let Some(url) = redacted_url(request.uri()) {
            attributes.push(KeyValue::new("url.full", url));
        }
        if let Some(host) = request.uri().host() {
            attributes.push(KeyValue::new("server.address", host.to_owned()));
        }
        if let Some(port) = request.uri().port_u16() {
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        let cx = self.state.tracer.start(
            SpanBuilder::from_name(name)
                .with_kind(SpanKind::Client)
                .with_attributes(attributes),
            &parent,
        );
        self.state
            .propagator
            .inject_context(&cx, &mut HeaderInjector(request.headers_mut()));
        PropagateFuture::new(self.inner.call(request), cx)
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
