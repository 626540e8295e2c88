use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::extract::{ConnectInfo, MatchedPath};
use http::header::{FORWARDED, HeaderName};
use http::{HeaderMap, Request, Response, Uri, header};
use opentelemetry::context::FutureExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanBuilder, SpanKind};
use opentelemetry::{Context, KeyValue};
use tower_service::Service;

use super::HttpTraceLayer;
use super::future::{ResponseFuture, SpanGuard};
use super::state::{TraceProvider, TracerState};
use super::{OTHER_METHOD, OTHER_METHOD_SPAN_NAME, protocol_version};
use crate::HeaderExtractor;

/// Traces the requests `S` serves; made by [`HttpTraceLayer`], or by
/// [`HttpTrace::new`].
#[derive(Debug, Clone)]
pub struct HttpTrace<S> {
    inner: S,
    state: Arc<TracerState>,
    served_over_tls: bool,
}

impl<S> HttpTrace<S> {
    /// Wraps `inner`; spans go to a tracer of `provider`.
    pub fn new(inner: S, provider: &impl TraceProvider) -> Self {
        Self::from_state(inner, TracerState::from_provider(provider), false)
    }

    /// A layer that wraps services in `HttpTrace`.
    pub fn layer(provider: &impl TraceProvider) -> HttpTraceLayer {
        HttpTraceLayer::new(provider)
    }

    pub(crate) fn from_state(inner: S, state: Arc<TracerState>, served_over_tls: bool) -> Self {
        Self {
            inner,
            state,
            served_over_tls,
        }
    }

    /// Whether this server's own listener speaks TLS; see
    /// [`HttpTraceLayer::served_over_tls`].
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
        // Most requests at the edge carry no trace context: then there is
        // nothing to parse, and the extraction would answer the current
        // context anyway. A prebuilt header name spares the lookup the
        // parse of "traceparent" `get_all(&str)` does.
        let parent = if request.headers().contains_key(&TRACEPARENT_HEADER) {
            self.state
                .propagator
                .extract(&HeaderExtractor(request.headers()))
        } else {
            Context::current()
        };
        let span_cx = start_server_span(&self.state, &request, &parent, self.served_over_tls);
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

fn start_server_span<B>(
    state: &TracerState,
    request: &Request<B>,
    parent: &Context,
    served_over_tls: bool,
) -> Context {
    let method = state.known_methods.name(request.method());
    let name_method = method.as_deref().unwrap_or(OTHER_METHOD_SPAN_NAME);
    let route = request.extensions().get::<MatchedPath>();
    // Sized up front: one allocation (`format!` grows its string once).
    let name = match route {
        Some(route) => {
            let mut name = String::with_capacity(name_method.len() + 1 + route.as_str().len());
            name.push_str(name_method);
            name.push(' ');
            name.push_str(route.as_str());
            name
        }
        None => name_method.to_owned(),
    };
    let mut attributes = Vec::with_capacity(11);
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
    attributes.push(KeyValue::new("url.path", request.uri().path().to_owned()));
    if let Some(query) = request.uri().query() {
        attributes.push(KeyValue::new("url.query", redact_query(query)));
    }
    attributes.push(KeyValue::new(
        "url.scheme",
        url_scheme(request.headers(), request.uri(), served_over_tls),
    ));
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
    state.tracer.start(
        SpanBuilder::from_name(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes),
        parent,
    )
}

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const TRACEPARENT_HEADER: HeaderName = HeaderName::from_static(crate::propagation::TRACEPARENT);

/// `url.scheme`: "the scheme of the original client request, if known
/// (e.g. from `Forwarded#proto`, `X-Forwarded-Proto`, or a similar header).
/// Otherwise, the scheme of the immediate peer request." So the first of:
/// the `proto` of the first `Forwarded` element, the first
/// `X-Forwarded-Proto` value, the request target's scheme (absolute-form,
/// HTTP/2 `:scheme`), and `https` or `http` as the listener speaks TLS or
/// not. Only `http` and `https` are taken from a request. cortex-metrics'
/// HTTP layer resolves `url_scheme` the same way, so span and series agree.
fn url_scheme(headers: &HeaderMap, uri: &Uri, served_over_tls: bool) -> &'static str {
    fn known(scheme: &str) -> Option<&'static str> {
        let scheme = scheme.trim().trim_matches('"');
        ["http", "https"]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(scheme))
    }
    let forwarded = || {
        let value = headers.get(FORWARDED)?.to_str().ok()?;
        value.split(',').next()?.split(';').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("proto")
                .then(|| known(value))
                .flatten()
        })
    };
    let x_forwarded = || {
        let value = headers.get(X_FORWARDED_PROTO)?.to_str().ok()?;
        known(value.split(',').next()?)
    };
    forwarded()
        .or_else(x_forwarded)
        .or_else(|| known(uri.scheme_str()?))
        .unwrap_or(if served_over_tls { "https" } else { "http" })
}

/// Query keys whose values carry credentials: the conventions say to
/// replace them with `REDACTED` by default (AWS S3 and Azure SAS signed
/// URLs, Google Cloud Storage signed URLs).
const REDACTED_QUERY_KEYS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// The query as received, with the values of [`REDACTED_QUERY_KEYS`]
/// replaced by `REDACTED` and every key kept.
fn redact_query(query: &str) -> String {
    let sensitive = |pair: &str| {
        pair.split_once('=')
            .is_some_and(|(key, _)| REDACTED_QUERY_KEYS.contains(&key))
    };
    if !query.split('&').any(sensitive) {
        return query.to_owned();
    }
    let mut redacted = String::with_capacity(query.len());
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            redacted.push('&');
        }
        match pair.split_once('=') {
            Some((key, _)) if sensitive(pair) => {
                redacted.push_str(key);
                redacted.push_str("=REDACTED");
            }
            _ => redacted.push_str(pair),
        }
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_query_are_redacted_and_keys_kept() {
        assert_eq!(redact_query("q=OpenTelemetry"), "q=OpenTelemetry");
        assert_eq!(
            redact_query("color=blue&sig=abc&X-Goog-Signature=x%3D&AWSAccessKeyId=AK&Signature=s"),
            "color=blue&sig=REDACTED&X-Goog-Signature=REDACTED&AWSAccessKeyId=REDACTED&Signature=REDACTED"
        );
        // Keys are compared exactly; a key without a value has nothing to hide.
        assert_eq!(
            redact_query("SIG=1&sig&signature=2"),
            "SIG=1&sig&signature=2"
        );
        assert_eq!(redact_query(""), "");
    }

    #[test]
    fn the_scheme_comes_from_proxies_then_the_target_then_the_listener() {
        let scheme = |pairs: &[(&'static str, &'static str)], uri: &str, tls| {
            let headers: HeaderMap = pairs
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                .collect();
            url_scheme(&headers, &uri.parse().unwrap(), tls)
        };
        assert_eq!(scheme(&[], "/x", false), "http");
        assert_eq!(scheme(&[], "/x", true), "https");
        assert_eq!(scheme(&[], "https://example.com/x", false), "https");
        assert_eq!(
            scheme(&[("x-forwarded-proto", "HTTPS, http")], "/x", false),
            "https"
        );
        let both = [
            ("forwarded", r#"for=192.0.2.60;proto="https", proto=http"#),
            ("x-forwarded-proto", "http"),
        ];
        assert_eq!(scheme(&both, "http://example.com/", false), "https");
        assert_eq!(
            scheme(&[("x-forwarded-proto", "gopher")], "ftp://h/", true),
            "https"
        );
    }
}
