use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::DecompressionBody;
use super::layer::Limits;
use crate::{BoxError, Encoding};

/// The service made by [`DecompressionLayer`](super::DecompressionLayer).
#[derive(Debug, Clone)]
pub struct Decompression<S> {
    pub(crate) inner: S,
    pub(crate) limits: Limits,
}

/// What a request's `Content-Encoding` asks for.
enum RequestCoding {
    Identity,
    Decode(Encoding),
    Unsupported,
}

fn request_coding(headers: &http::HeaderMap) -> RequestCoding {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(CONTENT_ENCODING) {
            // Several codings stacked: not supported.
            RequestCoding::Unsupported
        } else {
            RequestCoding::Identity
        };
    };
    let Ok(value) = value.to_str() else {
        return RequestCoding::Unsupported;
    };
    let value = value.trim();
    if value.eq_ignore_ascii_case("identity") || value.is_empty() {
        return RequestCoding::Identity;
    }
    match Encoding::from_token(value) {
        Some(encoding) if encoding.is_enabled() => RequestCoding::Decode(encoding),
        _ => RequestCoding::Unsupported,
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Decompression<S>
where
    S: Service<Request<DecompressionRequestBody<ReqBody>>, Response = Response<ResBody>>,
{
    type Response = Response<DecompressionResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = DecompressionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let body = match request_coding(&parts.headers) {
            RequestCoding::Identity => {
                // `identity` is no coding at all; do not pass it on.
                parts.headers.remove(CONTENT_ENCODING);
                DecompressionRequestBody::Identity { inner: body }
            }
            RequestCoding::Decode(encoding) => {
                match DecompressionBody::new(body, encoding, self.limits) {
                    Ok(decoded) => {
                        parts.headers.remove(CONTENT_ENCODING);
                        parts.headers.remove(CONTENT_LENGTH);
                        DecompressionRequestBody::Decoded { inner: decoded }
                    }
                    Err(_) => {
                        return DecompressionFuture::Rejected {
                            response: Some(unsupported()),
                        };
                    }
                }
            }
            RequestCoding::Unsupported => {
                return DecompressionFuture::Rejected {
                    response: Some(unsupported()),
                };
            }
        };
        DecompressionFuture::Inner {
            future: self.inner.call(Request::from_parts(parts, body)),
        }
    }
}

fn unsupported() -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    let mut accepted: Vec<&str> = [
        Encoding::Gzip,
        Encoding::Brotli,
        Encoding::Zstd,
        Encoding::Deflate,
    ]
    .into_iter()
    .filter(|e| e.is_enabled())
    .map(Encoding::as_str)
    .collect();
    accepted.push("identity");
    if let Ok(value) = HeaderValue::from_str(&accepted.join(", ")) {
        response.headers_mut().insert(ACCEPT_ENCODING, value);
    }
    response
}

pin_project! {
    /// The request body the inner service sees: as sent, or decoded.
    #[project = RequestBodyProj]
    // The variants' docs describe their single field.
    #[allow(missing_docs)]
    pub enum DecompressionRequestBody<B> {
        /// Not compressed.
        Identity { #[pin] inner: B },
        /// Decoded within limits.
        Decoded { #[pin] inner: DecompressionBody<B> },
    }
}

impl<B> std::fmt::Debug for DecompressionRequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Identity { .. } => f.write_str("DecompressionRequestBody::Identity"),
            Self::Decoded { inner } => inner.fmt(f),
        }
    }
}

impl<B> Body for DecompressionRequestBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            RequestBodyProj::Identity { inner } => {
                Poll::Ready(crate::body::bytes_frame(ready!(inner.poll_frame(cx))))
            }
            RequestBodyProj::Decoded { inner } => inner.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Identity { inner } => inner.is_end_stream(),
            Self::Decoded { inner } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Identity { inner } => inner.size_hint(),
            Self::Decoded { .. } => SizeHint::default(),
        }
    }
}

pin_project! {
    /// The response future of [`Decompression`].
    #[project = FutureProj]
    // The variants' docs describe their single field.
    #[allow(missing_docs)]
    pub enum DecompressionFuture<F> {
        /// The inner service is handling the request.
        Inner { #[pin] future: F },
        /// The request was refused (unsupported coding).
        Rejected { response: Option<Response<()>> },
    }
}

impl<F> std::fmt::Debug for DecompressionFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecompressionFuture")
    }
}

impl<F, B, E> Future for DecompressionFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<DecompressionResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FutureProj::Inner { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(
                    response.map(|inner| DecompressionResponseBody::Inner { inner })
                ))
            }
            FutureProj::Rejected { response } => {
                let response = response.take().unwrap_or_else(unsupported);
                Poll::Ready(Ok(response.map(|()| DecompressionResponseBody::Empty)))
            }
        }
    }
}

pin_project! {
    /// The response body of [`Decompression`]: the inner service's, or the
    /// empty body of a 415.
    #[project = ResponseBodyProj]
    // The variants' docs describe their single field.
    #[allow(missing_docs)]
    pub enum DecompressionResponseBody<B> {
        /// The inner service's body.
        Inner { #[pin] inner: B },
        /// No body.
        Empty,
    }
}

impl<B> std::fmt::Debug for DecompressionResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecompressionResponseBody")
    }
}

impl<B> Body for DecompressionResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            ResponseBodyProj::Inner { inner } => {
                let frame = ready!(inner.poll_frame(cx));
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            ResponseBodyProj::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { inner } => inner.is_end_stream(),
            Self::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { inner } => inner.size_hint(),
            Self::Empty => SizeHint::with_exact(0),
        }
    }
}
