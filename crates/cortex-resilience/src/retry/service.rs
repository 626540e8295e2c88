//! [`RetryService`]: a service whose failed calls are retried, over tower
//! (cloning the request) and over HTTP (replaying a buffered request).

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::future::{ResponseFuture, call_ready};
use super::policy::Retry;
use super::predicate::ShouldRetry;
use crate::ResilienceError;
use crate::boxed::{BoxError, BoxFuture};
use crate::http::{
    HttpOptions, PolicyService, Prepared, ResilienceBody, Sealed, prepare, unreadable_body,
};
use crate::ratelimit::RateLimitDecision;

/// A service whose failed calls are retried per the predicate `P`. Over
/// tower each attempt gets a clone of the request; over HTTP
/// ([`HttpLayer`](crate::HttpLayer)) a buffered copy, or none: a request
/// that cannot be replayed is sent once.
#[derive(Debug, Clone)]
pub struct RetryService<S, P> {
    inner: S,
    retry: Retry,
    predicate: P,
}

impl<S, P> RetryService<S, P> {
    /// Retries the calls of `inner` with `retry`, deciding with `predicate`.
    pub const fn new(inner: S, retry: Retry, predicate: P) -> Self {
        Self {
            inner,
            retry,
            predicate,
        }
    }

    /// The retry policy of this service.
    pub fn retry(&self) -> &Retry {
        &self.retry
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

    /// The ready service, for a call that outlives this borrow; a clone
    /// stays behind (as tower's `Retry` does).
    fn take_ready(&mut self) -> S
    where
        S: Clone,
    {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

impl<S, P, Req> Service<Req> for RetryService<S, P>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    P: ShouldRetry<S::Response, S::Error> + Clone + Send + Sync + 'static,
    Req: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S, P, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The ready service makes the first attempt in place, unboxed;
        // later attempts each ready their own clone.
        let mut service = self.take_ready();
        self.retry.deposit();
        let first = service.call(request.clone());
        ResponseFuture::first(
            first,
            service,
            request,
            self.retry.clone(),
            self.predicate.clone(),
        )
    }
}

impl<S, P> Sealed for RetryService<S, P> {}

impl<S, P, B, RB> PolicyService<B> for RetryService<S, P>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    P: ShouldRetry<Response<RB>, S::Error> + Clone + Send + Sync + 'static,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    RB: Send + 'static,
{
    type ResponseBody = RB;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResilienceBody<RB>>, ResilienceError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(
        &mut self,
        request: Request<B>,
        options: &HttpOptions,
    ) -> (Self::Future, Option<RateLimitDecision>) {
        let mut service = self.take_ready();
        let retry = self.retry.clone();
        let predicate = self.predicate.clone();
        let options = options.clone();
        let future = Box::pin(async move {
            let response = match prepare(request, &options.methods, options.max_replay_body).await {
                // Not repeatable: the one attempt is the inner call itself.
                Prepared::Once(request) => service
                    .call(request)
                    .await
                    .map_err(ResilienceError::Inner)?,
                Prepared::Unreadable => return Ok(unreadable_body()),
                Prepared::Replay(replay) => {
                    retry
                        .execute_with(&predicate, || {
                            let mut service = service.clone();
                            let request = replay.request();
                            async move { call_ready(&mut service, request).await }
                        })
                        .await?
                }
            };
            Ok(response.map(ResilienceBody::inner))
        });
        (future, None)
    }
}
