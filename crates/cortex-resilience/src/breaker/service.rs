//! [`CircuitBreakerService`]: a service guarded by a breaker, over tower
//! and over HTTP.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::policy::CircuitBreaker;
use crate::http::{HttpOptions, PolicyFuture, PolicyService, Sealed};
use crate::ratelimit::RateLimitDecision;
use crate::{Classify, ResilienceError};

/// A service guarded by a [`CircuitBreaker`], classifying results with
/// `C`. Rejections are returned from `call` as
/// [`ResilienceError::CircuitOpen`], never from `poll_ready`.
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Guards `inner` with `breaker`, classifying with `classifier`.
    pub const fn new(inner: S, breaker: CircuitBreaker, classifier: C) -> Self {
        Self {
            inner,
            breaker,
            classifier,
        }
    }

    /// The breaker guarding this service.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
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

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future, C, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.shared().acquire_owned() {
            Ok(permit) => {
                ResponseFuture::admitted(self.inner.call(request), permit, self.classifier.clone())
            }
            Err(rejected) => ResponseFuture::rejected(rejected.into(), self.classifier.clone()),
        }
    }
}

impl<S, C> Sealed for CircuitBreakerService<S, C> {}

impl<S, C, B, RB> PolicyService<B> for CircuitBreakerService<S, C>
where
    S: Service<Request<B>, Response = Response<RB>>,
    C: Classify<Response<RB>, S::Error> + Clone,
{
    type ResponseBody = RB;
    type Error = S::Error;
    type Future = PolicyFuture<ResponseFuture<S::Future, C, S::Error>>;

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
