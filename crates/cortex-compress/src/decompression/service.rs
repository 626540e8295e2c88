use std::task::{Context, Poll};

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::{DecompressionBody, DecompressionRequestBody, DecompressionResponseBody};
use super::config::Limits;
use super::future::DecompressionFuture;
use super::layer::DecompressionLayer;
use super::problem::{too_large, unsupported};
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
    /// Refused; the header as sent, for the problem's `detail`.
    Unsupported(String),
}

fn request_coding(headers: &http::HeaderMap) -> RequestCoding {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if headers.contains_key(CONTENT_ENCODING) {
            // Several codings stacked over header lines: not supported.
            let lines: Vec<_> = headers
                .get_all(CONTENT_ENCODING)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()))
                .collect();
            RequestCoding::Unsupported(lines.join(", "))
        } else {
            RequestCoding::Identity
        };
    };
    let Ok(text) = value.to_str() else {
        return RequestCoding::Unsupported(String::from_utf8_lossy(value.as_bytes()).into_owned());
    };
    let text = text.trim();
    if text.eq_ignore_ascii_case("identity") || text.is_empty() {
        return RequestCoding::Identity;
    }
    match Encoding::from_token(text) {
        Some(encoding) if encoding.is_enabled() => RequestCoding::Decode(encoding),
        _ => RequestCoding::Unsupported(text.to_owned()),
    }
}

/// The request's declared `Content-Length`, if it has one that parses.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Decompression<S>
where
    S: Service<Request<DecompressionRequestBody<ReqBody>>, Response = Response<ResBody>>,
    ReqBody: Body,
{
    type Response = Response<DecompressionResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = DecompressionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        // No body (no Content-Length or 0, no Transfer-Encoding; an HTTP/2
        // HEADERS frame that ends the stream): nothing to decode, whatever
        // `Content-Encoding` says, so nothing to refuse.
        if body.is_end_stream() {
            return DecompressionFuture::Inner {
                future: self.inner.call(Request::from_parts(
                    parts,
                    DecompressionRequestBody::Identity { inner: body },
                )),
            };
        }
        // A declared length over the limit is refused before the body is
        // polled: hyper sends `100 Continue` only once it is, so a client
        // that asked for one learns of the 413 without sending the body.
        // (Codings never shrink incompressible data, so a compressed body
        // that long decodes past the limit too, give or take a header.)
        if let Some(declared) = declared_length(&parts.headers)
            && declared > self.limits.max_size
        {
            return DecompressionFuture::Rejected {
                response: Some(too_large(declared, self.limits.max_size)),
            };
        }
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
                            response: Some(unsupported(encoding.as_str())),
                        };
                    }
                }
            }
            RequestCoding::Unsupported(coding) => {
                return DecompressionFuture::Rejected {
                    response: Some(unsupported(&coding)),
                };
            }
        };
        DecompressionFuture::Inner {
            future: self.inner.call(Request::from_parts(parts, body)),
        }
    }
}
