//! [`BulkheadService`]: a service behind a bulkhead, over tower and over
//! HTTP.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::policy::Bulkhead;
use super::state::BulkheadPermit;
use crate::ResilienceError;
use crate::http::{HttpOptions, PolicyFuture, PolicyService, Sealed};
use crate::ratelimit::RateLimitDecision;

/// A service guarded by a [`Bulkhead`]. A call that finds no free permit
/// waits in the response future (if the queue has room), never in
/// `poll_ready`; a rejection is [`ResilienceError::BulkheadFull`].
#[derive(Debug, Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

impl<S> BulkheadService<S> {
    /// Guards `inner` with `bulkhead`.
    pub const fn new(inner: S, bulkhead: Bulkhead) -> Self {
        Self { inner, bulkhead }
    }

    /// The bulkhead guarding this service.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
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

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let shared = self.bulkhead.shared();
        if shared.try_take() {
            let permit = BulkheadPermit::taken(Arc::clone(shared));
            return ResponseFuture::admitted(self.inner.call(request), permit);
        }
        if shared.config.max_queue == 0 {
            return ResponseFuture::rejected(shared.reject().into());
        }
        // The ready service goes with the queued call; a clone stays.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let bulkhead = self.bulkhead.clone();
        ResponseFuture::queued(Box::pin(async move {
            let _permit = bulkhead.acquire().await?;
            service.call(request).await.map_err(ResilienceError::Inner)
        }))
    }
}

impl<S> Sealed for BulkheadService<S> {}

impl<S, B, RB> PolicyService<B> for BulkheadService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type ResponseBody = RB;
    type Error = S::Error;
    type Future = PolicyFuture<ResponseFuture<S::Future, Response<RB>, S::Error>>;

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
