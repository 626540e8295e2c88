//! [`RateLimiterService`] and [`KeyedRateLimiterService`]: services behind
//! a limiter, over tower and over HTTP.

use std::fmt;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::gcra::RateLimitDecision;
use super::key::KeyExtractor;
use super::keyed::KeyedRateLimiter;
use super::policy::RateLimiter;
use crate::http::{HttpOptions, PolicyFuture, PolicyService, Sealed};
use crate::{RateLimited, ResilienceError};

/// A service limited by a [`RateLimiter`]; over-limit calls fail with
/// [`ResilienceError::RateLimited`] from `call`, never from `poll_ready`.
#[derive(Debug, Clone)]
pub struct RateLimiterService<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S> RateLimiterService<S> {
    /// Limits the calls of `inner` by `limiter`.
    pub const fn new(inner: S, limiter: RateLimiter) -> Self {
        Self { inner, limiter }
    }

    /// The limiter of this service.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
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

impl<S, Req> Service<Req> for RateLimiterService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.limiter.try_acquire() {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(rejected) => ResponseFuture::rejected(rejected.into()),
        }
    }
}

/// The call, or the rejection, that `decision` (with the `RateLimit-*`
/// numbers the HTTP adapter wants) calls for.
fn decided<S, Req>(
    inner: &mut S,
    request: Req,
    decision: &RateLimitDecision,
) -> PolicyFuture<ResponseFuture<S::Future, S::Error>>
where
    S: Service<Req>,
{
    PolicyFuture::new(if decision.allowed {
        ResponseFuture::inner(inner.call(request))
    } else {
        ResponseFuture::rejected(
            RateLimited {
                retry_after: decision.retry_after,
            }
            .into(),
        )
    })
}

impl<S> Sealed for RateLimiterService<S> {}

impl<S, B, RB> PolicyService<B> for RateLimiterService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type ResponseBody = RB;
    type Error = S::Error;
    type Future = PolicyFuture<ResponseFuture<S::Future, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(
        &mut self,
        request: Request<B>,
        _: &HttpOptions,
    ) -> (Self::Future, Option<RateLimitDecision>) {
        let decision = self.limiter.check();
        (decided(&mut self.inner, request, &decision), Some(decision))
    }
}

/// An HTTP service limited by a [`KeyedRateLimiter`], one budget per key
/// `X` extracts; over-limit calls fail with
/// [`ResilienceError::RateLimited`] from `call`.
#[derive(Clone)]
pub struct KeyedRateLimiterService<S, X: KeyExtractor> {
    inner: S,
    limiter: KeyedRateLimiter<X::Key>,
    extractor: X,
}

impl<S: fmt::Debug, X: KeyExtractor + fmt::Debug> fmt::Debug for KeyedRateLimiterService<S, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiterService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .field("extractor", &self.extractor)
            .finish()
    }
}

impl<S, X: KeyExtractor> KeyedRateLimiterService<S, X> {
    /// Limits the calls of `inner` by `limiter`, keyed by `extractor`.
    pub const fn new(inner: S, limiter: KeyedRateLimiter<X::Key>, extractor: X) -> Self {
        Self {
            inner,
            limiter,
            extractor,
        }
    }

    /// The limiter of this service.
    pub fn limiter(&self) -> &KeyedRateLimiter<X::Key> {
        &self.limiter
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

impl<S, X, B> Service<Request<B>> for KeyedRateLimiterService<S, X>
where
    S: Service<Request<B>>,
    X: KeyExtractor,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let key = self.extractor.extract(&request);
        match self.limiter.try_acquire(key.as_ref()) {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(rejected) => ResponseFuture::rejected(rejected.into()),
        }
    }
}

impl<S, X: KeyExtractor> Sealed for KeyedRateLimiterService<S, X> {}

impl<S, X, B, RB> PolicyService<B> for KeyedRateLimiterService<S, X>
where
    S: Service<Request<B>, Response = Response<RB>>,
    X: KeyExtractor,
{
    type ResponseBody = RB;
    type Error = S::Error;
    type Future = PolicyFuture<ResponseFuture<S::Future, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(
        &mut self,
        request: Request<B>,
        _: &HttpOptions,
    ) -> (Self::Future, Option<RateLimitDecision>) {
        let decision = self
            .limiter
            .check(self.extractor.extract(&request).as_ref());
        (decided(&mut self.inner, request, &decision), Some(decision))
    }
}
