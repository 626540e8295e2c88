//! One access-log event per request, and the gateway layers around it.
//!
//! [`AccessLogLayer`] emits an `info` event with target
//! [`ACCESS_LOG_TARGET`] when a response is ready: `method`, `route` (the
//! route template axum matched, such as `/api/echo/{id}`, or the path
//! when nothing matched; never the query), `status`, `duration_ms` (until
//! the response's head, not the end of a streamed body), `bytes` (when the
//! body's size is known) and `request_id`. It sits *inside* the trace
//! layer, so the event is emitted while the request's OpenTelemetry
//! context is current and the log formatter (`cortex::trace::TraceIdFormat`)
//! adds `trace_id` and `span_id`. A request whose client leaves before the
//! response is ready is not logged (its span records `error.type`).
//!
//! `Hub::router` puts it inside a gateway of tower-http's hygiene layers:
//! sensitive request headers (`Authorization`, `Cookie`,
//! `Proxy-Authorization`) and `Set-Cookie` marked so no `Debug` of them
//! shows their values; an
//! `x-request-id` kept when the client's is sane, otherwise generated (a
//! UUID v4), and echoed on the response; `Content-Security-Policy`,
//! `X-Content-Type-Options` and `Referrer-Policy` on every response that
//! does not set its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, COOKIE, HeaderName, HeaderValue,
    PROXY_AUTHORIZATION, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{Method, Response};
use cortex::CortexLayer;
use cortex::prelude::HttpTraceLayer;
use cortex::resilience::http::HttpLayer;
use cortex::resilience::timeout::TimeoutLayer;
use pin_project_lite::pin_project;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::ServiceBuilderExt;
use tower_http::request_id::{MakeRequestUuid, RequestId};
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};

/// The `tracing` target of access-log events: `RUST_LOG` can raise or
/// silence it alone (`RUST_LOG=info,cortex_hub::access=off`).
pub const ACCESS_LOG_TARGET: &str = "cortex_hub::access";

/// The request id header, read from the client and set on the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest client-sent request id the Hub keeps (longer ones are
/// replaced).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// What every page may load: scripts, styles, images and connections
/// (`fetch`, `EventSource`) from the Hub itself, nothing inline, no
/// plugins, no framing.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Wraps every route of `router` (and its fallbacks) in the Hub's gateway,
/// outermost first: sensitive request headers, request id (checked, set,
/// echoed), security headers, the trace span, the access log, sensitive
/// response headers, then the facade's layers (metrics, compression,
/// decompression) and the request timeout, all in one `Router::layer`.
pub(crate) fn gateway(
    router: Router,
    trace: HttpTraceLayer,
    cortex: CortexLayer,
    request_timeout: HttpLayer<TimeoutLayer>,
) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                AUTHORIZATION,
                COOKIE,
                PROXY_AUTHORIZATION,
            ]))
            .map_request(drop_unusable_request_id)
            .set_x_request_id(MakeRequestUuid)
            .propagate_x_request_id()
            .map_response(security_headers)
            .layer(trace)
            .layer(AccessLogLayer)
            .layer(SetSensitiveResponseHeadersLayer::new([SET_COOKIE]))
            .layer(cortex)
            .layer(request_timeout),
    )
}

/// The security headers, each unless the handler set its own: a strict
/// Content-Security-Policy, `X-Content-Type-Options: nosniff` and
/// `Referrer-Policy: no-referrer`. One function, not one
/// `SetResponseHeaderLayer` each: every layer in the stack nests (and
/// moves) every request's future once more.
fn security_headers<B>(mut response: Response<B>) -> Response<B> {
    // Constants: `HeaderValue::from_static` would check the policy's bytes
    // on every response.
    const POLICY: HeaderValue = HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE);
    const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
    const NO_REFERRER: HeaderValue = HeaderValue::from_static("no-referrer");
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, POLICY),
        (X_CONTENT_TYPE_OPTIONS, NOSNIFF),
        (REFERRER_POLICY, NO_REFERRER),
    ] {
        if let axum::http::header::Entry::Vacant(entry) = headers.entry(name) {
            entry.insert(value);
        }
    }
    response
}

/// Removes a client's `x-request-id` that is empty, longer than
/// [`MAX_REQUEST_ID_LEN`], or has characters outside
/// `A-Z a-z 0-9 - _ . : + / = @`, so a fresh one is generated instead of
/// logging whatever the client sent.
fn drop_unusable_request_id(mut request: Request) -> Request {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    if let Some(value) = request.headers().get(&header)
        && !is_usable_request_id(value.as_bytes())
    {
        request.headers_mut().remove(&header);
    }
    request
}

fn is_usable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

/// Emits one access-log event per request (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLog { inner }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<axum::http::Request<ReqBody>> for AccessLog<S>
where
    S: Service<axum::http::Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<ReqBody>) -> Self::Future {
        let route = match request.extensions().get::<MatchedPath>() {
            Some(matched) => Route::Template(matched.clone()),
            None => Route::Path(request.uri().path().to_owned()),
        };
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.header_value().clone())
            .or_else(|| request.headers().get(REQUEST_ID_HEADER).cloned());
        let entry = Entry {
            method: request.method().clone(),
            route,
            request_id,
            start: Instant::now(),
        };
        ResponseFuture {
            inner: self.inner.call(request),
            entry: Some(entry),
        }
    }
}

enum Route {
    Template(MatchedPath),
    Path(String),
}

impl Route {
    fn as_str(&self) -> &str {
        match self {
            Self::Template(matched) => matched.as_str(),
            Self::Path(path) => path,
        }
    }
}

/// What the event needs from the request, kept until the response.
struct Entry {
    method: Method,
    route: Route,
    request_id: Option<HeaderValue>,
    start: Instant,
}

impl Entry {
    fn emit<B: http_body::Body>(self, response: &Response<B>) {
        let elapsed = self.start.elapsed();
        // Microsecond resolution is plenty for an access log.
        let duration_ms = elapsed.as_micros() as f64 / 1000.0;
        let bytes = http_body::Body::size_hint(response.body())
            .exact()
            .or_else(|| {
                response
                    .headers()
                    .get(CONTENT_LENGTH)?
                    .to_str()
                    .ok()?
                    .parse()
                    .ok()
            });
        // Display, not Debug: `method=GET`, not `method="GET"`, in the
        // pretty format. None of the three holds a space or a control
        // character (a path is URI text, a request id was checked).
        let request_id = self
            .request_id
            .as_ref()
            .and_then(|id| id.to_str().ok())
            .map(tracing::field::display);
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = %self.method,
            route = %self.route.as_str(),
            status = response.status().as_u16(),
            duration_ms,
            bytes,
            request_id,
            "request"
        );
    }
}

pin_project! {
    /// The response future of [`AccessLog`]: logs when the response is
    /// ready, from inside the poll that produced it (and so inside the
    /// trace layer's context).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        entry: Option<Entry>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(entry)) = (&result, this.entry.take()) {
            entry.emit(response);
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::HeaderMap;
    use axum::routing::get;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn credentials_are_sensitive_inside_the_gateway() {
        // The handler shows what any `Debug` of the headers would log.
        let router = Router::new().route("/", get(|h: HeaderMap| async move { format!("{h:?}") }));
        let provider = SdkTracerProvider::builder().build();
        let request_timeout = cortex::resilience::Timeout::builder("test")
            .build()
            .unwrap()
            .http_layer();
        let app = gateway(
            router,
            HttpTraceLayer::new(&provider),
            CortexLayer::default(),
            request_timeout,
        );
        let request = axum::http::Request::get("/")
            .header(AUTHORIZATION, "Bearer hunter2")
            .header(COOKIE, "session=s3cret")
            .header(PROXY_AUTHORIZATION, "Basic cHJveHk6cGFzcw==")
            .header("x-plain", "visible")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let seen = String::from_utf8(body.to_vec()).unwrap();
        assert!(seen.contains("visible"), "{seen}");
        for secret in ["hunter2", "s3cret", "cHJveHk6cGFzcw=="] {
            assert!(!seen.contains(secret), "{secret} in {seen}");
        }
        assert_eq!(seen.matches("Sensitive").count(), 3, "{seen}");
    }

    #[test]
    fn request_ids_are_short_plain_tokens() {
        assert!(is_usable_request_id(
            b"0b6a1c9e-3f7d-4e8a-9c2b-5d1e0f4a7b3c"
        ));
        assert!(is_usable_request_id(b"req_42.a:b+c/d=e@f"));
        assert!(!is_usable_request_id(b""));
        assert!(!is_usable_request_id(b"two words"));
        assert!(!is_usable_request_id(b"quote\"d"));
        assert!(!is_usable_request_id(&[b'a'; MAX_REQUEST_ID_LEN + 1]));
        assert!(is_usable_request_id(&[b'a'; MAX_REQUEST_ID_LEN]));
    }
}
