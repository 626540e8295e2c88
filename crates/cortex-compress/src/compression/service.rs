use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use tower_service::Service;

use super::config::Config;
use super::future::ResponseFuture;
use super::layer::CompressionLayer;
use crate::encoding::negotiate;

/// Compresses the responses of `S`; made by [`CompressionLayer`], or by
/// [`Compression::new`] with the default settings.
///
/// ```
/// use cortex_compress::Compression;
/// use tower::service_fn;
///
/// let service = Compression::new(service_fn(|_: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
/// }));
/// let _inner = service.get_ref();
/// ```
#[derive(Debug, Clone)]
pub struct Compression<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S> Compression<S> {
    /// Wraps `inner` with [`CompressionLayer::new`]'s settings.
    pub fn new(inner: S) -> Self {
        tower_layer::Layer::layer(&CompressionLayer::new(), inner)
    }

    /// A layer that wraps services in `Compression` with the defaults.
    pub fn layer() -> CompressionLayer {
        CompressionLayer::new()
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Compression<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<super::body::CompressionBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // A HEAD response has no body to compress; its headers must match
        // what GET would send only in semantics, not in encoding.
        let negotiated = (request.method() != Method::HEAD)
            .then(|| negotiate(request.headers(), &self.config.preference));
        ResponseFuture::new(
            self.inner.call(request),
            negotiated,
            Arc::clone(&self.config),
        )
    }
}
