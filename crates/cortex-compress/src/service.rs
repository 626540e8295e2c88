use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use tower_service::Service;

use crate::encoding::negotiate;
use crate::future::ResponseFuture;
use crate::layer::Config;

/// The service made by [`CompressionLayer`](crate::CompressionLayer).
#[derive(Debug, Clone)]
pub struct Compression<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Compression<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = Response<crate::CompressionBody<ResBody>>;
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
