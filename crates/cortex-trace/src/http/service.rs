use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::extract::{ConnectInfo, MatchedPath};
use http::{Request, Response, header};
use opentelemetry::context::FutureExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use tower_service::Service;

use super::HttpTraceLayer;
use super::future::{ResponseFuture, SpanGuard};
use super::state::{TraceProvider, TracerState};
use super::{method_name, protocol_version};
use crate::HeaderExtractor;

/// Traces the requests `S` serves; made by [`HttpTraceLayer`], or by
/// [`HttpTrace::new`].
#[derive(Debug, Clone)]
pub struct HttpTrace<S> {
    inner: S,
    state: Arc<TracerState>,
}

impl<S> HttpTrace<S> {
    /// Wraps `inner`; spans go to a tracer of `provider`.
    pub fn new(inner: S, provider: &impl TraceProvider) -> Self {
        Self::from_state(inner, TracerState::from_provider(provider))
    }

    /// A layer that wraps services in `HttpTrace`.
    pub fn layer(provider: &impl TraceProvider) -> HttpTraceLayer {
        HttpTraceLayer::new(provider)
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpTrace<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<super::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let parent = self
            .state
            .propagator
            .extract(&HeaderExtractor(request.headers()));
        let span_cx = start_server_span(&self.state, &request, &parent);
        // Current while the inner service builds its future, and while that
        // future is polled.
        let future = {
            let _attached = span_cx.clone().attach();
            self.inner.call(request)
        };
        ResponseFuture::new(
            future.with_context(span_cx.clone()),
            SpanGuard::new(span_cx),
        )
    }
}

fn start_server_span<B>(state: &TracerState, request: &Request<B>, parent: &Context) -> Context {
    let method = method_name(request.method());
    let route = request.extensions().get::<MatchedPath>();
    let name = match route {
        Some(route) => format!("{method} {}", route.as_str()),
        None => method.to_owned(),
    };
    let mut attributes = Vec::with_capacity(8);
    attributes.push(KeyValue::new("http.request.method", method));
    if method == "_OTHER" {
        attributes.push(KeyValue::new(
            "http.request.method_original",
            request.method().as_str().to_owned(),
        ));
    }
    attributes.push(KeyValue::new("url.path", request.uri().path().to_owned()));
    if let Some(route) = route {
        attributes.push(KeyValue::new("http.route", route.as_str().to_owned()));
    }
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        attributes.push(KeyValue::new("client.address", peer.ip().to_string()));
        attributes.push(KeyValue::new("client.port", i64::from(peer.port())));
    }
    if let Some(agent) = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    attributes.push(KeyValue::new(
        "network.protocol.version",
        protocol_version(request.version()),
    ));
    let span = state
        .tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(&state.tracer, parent);
    parent.with_span(span)
}
