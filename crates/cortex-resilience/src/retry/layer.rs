//! Retry as a generic tower layer (requests must be `Clone`).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::{Retry, ShouldRetry};
use crate::ResilienceError;

/// Retries calls of the services it wraps; see [`Retry::layer`].
#[derive(Debug, Clone)]
pub struct RetryLayer<P> {
    retry: Retry,
    predicate: P,
}

impl<P> RetryLayer<P> {
    /// A layer over `retry` deciding with `predicate`.
    pub const fn new(retry: Retry, predicate: P) -> Self {
        Self { retry, predicate }
    }

    /// The same policy with another predicate.
    pub fn predicate<P2>(self, predicate: P2) -> RetryLayer<P2> {
        RetryLayer {
            retry: self.retry,
            predicate,
        }
    }
}

impl<S, P: Clone> Layer<S> for RetryLayer<P> {
    type Service = RetryService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            retry: self.retry.clone(),
            predicate: self.predicate.clone(),
        }
    }
}

/// A service whose failed calls are retried with a clone of the request.
#[derive(Debug, Clone)]
pub struct RetryService<S, P> {
    inner: S,
    retry: Retry,
    predicate: P,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, P, Req> Service<Req> for RetryService<S, P>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    P: ShouldRetry<S::Response, S::Error> + Clone + 'static,
    Req: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = BoxFuture<Result<S::Response, ResilienceError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // Each attempt readies its own clone, as tower's `Retry` does.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let retry = self.retry.clone();
        let predicate = self.predicate.clone();
        Box::pin(async move {
            retry
                .run_with(&predicate, || {
                    let mut service = service.clone();
                    let request = request.clone();
                    async move { call_ready(&mut service, request).await }
                })
                .await
        })
    }
}

/// Waits for `service` to be ready, then calls it.
pub(crate) async fn call_ready<S, Req>(
    service: &mut S,
    request: Req,
) -> Result<S::Response, ResilienceError<S::Error>>
where
    S: Service<Req>,
{
    poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(ResilienceError::Inner)?;
    service.call(request).await.map_err(ResilienceError::Inner)
}
