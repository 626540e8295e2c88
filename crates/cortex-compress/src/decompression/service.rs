use std::task::{Context, Poll};

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http::{Request, Response};
use tower_service::Service;

use super::body::{DecompressionBody, DecompressionRequestBody, DecompressionResponseBody};
use super::config::Limits;
use super::future::{DecompressionFuture, unsupported};
use super::layer::DecompressionLayer;
use crate::Encoding;

/// Decodes the compressed request bodies `S` receives; made by
/// [`DecompressionLayer`], or by [`Decompression::new`] with its defaults.
#[derive(Debug, Clone)]
pub struct Decompression<S> {
    pub(crate) inner: S,
    pub(crate) limits: Limits,
}

impl<S> Decompression<S> {
    /// Wraps `inner` with [`DecompressionLayer::new`]'s limits.
    pub fn new(inner: S) -> Self {
        tower_layer::Layer::layer(&DecompressionLayer::new(), inner)
    }

    /// A layer that wraps services in `Decompression` with the defaults.
    pub fn layer() -> DecompressionLayer {
        DecompressionLayer::new()
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
