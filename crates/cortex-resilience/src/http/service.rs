//! [`HttpService`]: a policy service whose rejections are responses.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::body::ResilienceBody;
use super::future::ResponseFuture;
use super::policy::{HttpOptions, PolicyService};

/// A policy service `S` over HTTP: its rejections become responses, its
/// inner service's own errors pass through. Made by
/// [`HttpLayer`](super::HttpLayer).
#[derive(Debug, Clone)]
pub struct HttpService<S> {
    inner: S,
    options: HttpOptions,
}

impl<S> HttpService<S> {
    /// Wraps `inner`, a Cortex policy service, with the default settings.
    pub fn new(inner: S) -> Self {
        Self::with_options(inner, HttpOptions::default())
    }

    pub(crate) const fn with_options(inner: S, options: HttpOptions) -> Self {
        Self { inner, options }
    }

    /// The policy service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The policy service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the policy service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for HttpService<S>
where
    S: PolicyService<B>,
{
    type Response = Response<ResilienceBody<S::ResponseBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        PolicyService::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (future, rate_limit) = PolicyService::call(&mut self.inner, request, &self.options);
        let headers_on_success = self.options.headers_on_success;
        ResponseFuture::new(
            future,
            rate_limit.filter(|decision| headers_on_success || !decision.allowed),
        )
    }
}
