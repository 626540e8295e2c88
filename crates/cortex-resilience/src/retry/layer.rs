//! Retry as a generic tower layer (requests must be `Clone`).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use std::time::Duration;

use pin_project_lite::pin_project;

use super::{Retry, ShouldRetry};
use crate::ResilienceError;
use crate::boxed::BoxFuture;

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
    type Future = RetryFuture<S, P, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The ready service makes the first attempt in place, unboxed;
        // later attempts each ready their own clone, as tower's `Retry`
        // does.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        self.retry.shared.deposit();
        let first = service.call(request.clone());
        RetryFuture {
            state: State::First {
                future: first,
                rest: Some(Rest {
                    service,
                    request,
                    retry: self.retry.clone(),
                    predicate: self.predicate.clone(),
                }),
            },
        }
    }
}

/// What a retry after the first attempt needs.
#[derive(Debug)]
struct Rest<S, P, Req> {
    service: S,
    request: Req,
    retry: Retry,
    predicate: P,
}

pin_project! {
    /// The response future of [`RetryService`]: the first attempt polled in
    /// place; only a retry boxes the rest of the loop.
    pub struct RetryFuture<S, P, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future, Rest<S, P, Req>, BoxFuture<Result<S::Response, ResilienceError<S::Error>>>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R, B> {
        First { #[pin] future: F, rest: Option<R> },
        Retrying { future: B },
    }
}

impl<S, P, Req> std::fmt::Debug for RetryFuture<S, P, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryFuture").finish_non_exhaustive()
    }
}

impl<S, P, Req> Future for RetryFuture<S, P, Req>
where
    S: Service<Req> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    P: ShouldRetry<S::Response, S::Error> + Clone + Send + Sync + 'static,
    Req: Clone + Send + Sync + 'static,
{
    type Output = Result<S::Response, ResilienceError<S::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (result, rest) = match self.as_mut().project().state.project() {
            StateProj::Retrying { future } => return future.as_mut().poll(cx),
            StateProj::First { future, rest } => {
                let result = std::task::ready!(future.poll(cx)).map_err(ResilienceError::Inner);
                let Some(rest) = rest.take() else {
                    // The `Future` contract forbids it; tower's futures
                    // panic the same way.
                    panic!("RetryFuture polled after it completed");
                };
                (result, rest)
            }
        };
        let Some(delay) =
            rest.retry
                .shared
                .after_attempt(&rest.predicate, &result, 1, Duration::ZERO)
        else {
            return Poll::Ready(result);
        };
        drop(result);
        let Rest {
            service,
            request,
            retry,
            predicate,
        } = rest;
        let future: BoxFuture<_> = Box::pin(async move {
            tokio::time::sleep(delay).await;
            retry
                .run_from(
                    &predicate,
                    || {
                        let mut service = service.clone();
                        let request = request.clone();
                        async move { call_ready(&mut service, request).await }
                    },
                    2,
                    delay,
                )
                .await
        });
        self.as_mut()
            .project()
            .state
            .set(State::Retrying { future });
        self.poll(cx)
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
