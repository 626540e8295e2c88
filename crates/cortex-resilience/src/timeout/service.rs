//! [`TimeoutService`]: a service under a time limit, over tower and over
//! HTTP.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::policy::Timeout;
use crate::ResilienceError;
use crate::http::{HttpOptions, PolicyFuture, PolicyService, Sealed};
use crate::ratelimit::RateLimitDecision;

/// A service whose calls are limited by a [`Timeout`]: a call over the
/// limit is dropped and fails with [`ResilienceError::Timeout`].
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Timeout,
}

impl<S> TimeoutService<S> {
    /// Limits the calls of `inner` by `timeout`.
    pub const fn new(inner: S, timeout: Timeout) -> Self {
        Self { inner, timeout }
    }

    /// The timeout limiting this service.
    pub fn timeout(&self) -> &Timeout {
        &self.timeout
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

impl<S, Req> Service<Req> for TimeoutService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture::new(self.inner.call(request), self.timeout.clone())
    }
}

impl<S> Sealed for TimeoutService<S> {}

impl<S, B, RB> PolicyService<B> for TimeoutService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type ResponseBody = RB;
    type Error = S::Error;
    type Future = PolicyFuture<ResponseFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(
        &mut self,
        request: Request<B>,
        _: &HttpOptions,
    ) -> (Self::Future, Option<RateLimitDecision>) {
        (PolicyFuture::new(Service::call(self, request)), None)
    }
}
