//! HTTP front end shared by every policy: policy errors become responses.
//!
//! axum's `Router::layer` needs services that never fail, so
//! [`HttpLayer`] turns the policy errors of the layer it wraps into
//! 503 / 429 / 504 responses with `Retry-After`, and passes the inner
//! service's own errors through unchanged. Each response it makes carries
//! a [`PolicyRejection`] extension, so outer layers (a retry, a fallback)
//! can tell a rejection from a downstream 503.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::ResilienceError;
use crate::error::retry_after_value;

/// Which policy produced a response, attached as a response extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyRejection {
    /// The circuit breaker was open.
    CircuitOpen,
    /// The bulkhead was full.
    BulkheadFull,
    /// The rate limit was exceeded.
    RateLimited,
    /// The call timed out.
    Timeout,
}

/// Builds the response for a policy error, or gives back an inner error.
pub(crate) fn rejection_response<B, E>(
    error: ResilienceError<E>,
) -> Result<Response<ResilienceBody<B>>, E> {
    let error = match error {
        ResilienceError::Inner(error) => return Err(error),
        rejection => rejection,
    };
    let kind = match &error {
        ResilienceError::Inner(_) | ResilienceError::CircuitOpen { .. } => {
            PolicyRejection::CircuitOpen
        }
        ResilienceError::BulkheadFull => PolicyRejection::BulkheadFull,
        ResilienceError::RateLimited { .. } => PolicyRejection::RateLimited,
        ResilienceError::Timeout => PolicyRejection::Timeout,
    };
    let (status, retry_after, text) =
        error
            .rejection_parts()
            .unwrap_or((http::StatusCode::INTERNAL_SERVER_ERROR, None, ""));
    let mut response = Response::new(ResilienceBody::rejection(Bytes::from_static(
        text.as_bytes(),
    )));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(retry_after) = retry_after {
        headers.insert(header::RETRY_AFTER, retry_after_value(retry_after));
    }
    response.extensions_mut().insert(kind);
    Ok(response)
}

/// Applies `L`, then answers its policy errors with responses.
#[derive(Debug, Clone)]
pub struct HttpLayer<L> {
    inner: L,
}

impl<L> HttpLayer<L> {
    /// Wraps `inner`, a layer whose services fail with [`ResilienceError`].
    pub const fn new(inner: L) -> Self {
        Self { inner }
    }
}

impl<S, L: Layer<S>> Layer<S> for HttpLayer<L> {
    type Service = HttpService<L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpService::new(self.inner.layer(inner))
    }
}

/// A service whose policy errors are answered with responses; see
/// [`HttpLayer`].
#[derive(Debug, Clone)]
pub struct HttpService<S> {
    inner: S,
}

impl<S> HttpService<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, Req, B, E> Service<Req> for HttpService<S>
where
    S: Service<Req, Response = Response<B>, Error = ResilienceError<E>>,
{
    type Response = Response<ResilienceBody<B>>;
    type Error = E;
    type Future = HttpFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        // Cortex policies only report inner errors from `poll_ready`; a
        // rejection there would be answered by the next call anyway.
        match ready!(self.inner.poll_ready(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(ResilienceError::Inner(error)) => Poll::Ready(Err(error)),
            Err(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        HttpFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// Response future of [`HttpService`].
    #[derive(Debug)]
    pub struct HttpFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for HttpFuture<F>
where
    F: Future<Output = Result<Response<B>, ResilienceError<E>>>,
{
    type Output = Result<Response<ResilienceBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().inner.poll(cx)) {
            Ok(response) => Ok(response.map(ResilienceBody::inner)),
            Err(error) => rejection_response(error),
        })
    }
}

pin_project! {
    #[project = BodyProj]
    enum BodyKind<B> {
        Inner { #[pin] body: B },
        Rejection { text: Option<Bytes> },
    }
}

pin_project! {
    /// Either the inner response body or the short text of a rejection.
    pub struct ResilienceBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

impl<B> std::fmt::Debug for ResilienceBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            BodyKind::Inner { .. } => "ResilienceBody::Inner",
            BodyKind::Rejection { .. } => "ResilienceBody::Rejection",
        })
    }
}

impl<B> ResilienceBody<B> {
    /// The inner service's body.
    pub const fn inner(body: B) -> Self {
        Self {
            kind: BodyKind::Inner { body },
        }
    }

    pub(crate) const fn rejection(text: Bytes) -> Self {
        Self {
            kind: BodyKind::Rejection { text: Some(text) },
        }
    }
}

impl<B> Body for ResilienceBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            BodyProj::Inner { body } => body.poll_frame(cx),
            BodyProj::Rejection { text } => {
                Poll::Ready(text.take().map(|text| Ok(Frame::data(text))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Inner { body } => body.is_end_stream(),
            BodyKind::Rejection { text } => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Inner { body } => body.size_hint(),
            BodyKind::Rejection { text } => {
                SizeHint::with_exact(text.as_ref().map_or(0, |text| text.len() as u64))
            }
        }
    }
}
