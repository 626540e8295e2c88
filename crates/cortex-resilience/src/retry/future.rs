//! The response future of [`RetryService`](super::RetryService): the first
//! attempt in place, the retries (if any) boxed.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_service::Service;

use super::policy::Retry;
use super::predicate::ShouldRetry;
use crate::ResilienceError;
use crate::boxed::BoxFuture;

/// What a retry after the first attempt needs.
#[derive(Debug)]
struct Rest<S, P, Req> {
    service: S,
    request: Req,
    retry: Retry,
    predicate: P,
}

pin_project! {
    /// Response future of [`RetryService`](super::RetryService): the first
    /// attempt polled in place; only a retry boxes the rest of the loop.
    pub struct ResponseFuture<S, P, Req>
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

impl<S, P, Req> ResponseFuture<S, P, Req>
where
    S: Service<Req>,
{
    /// The first attempt, `future`, made by the ready `service` with a
    /// copy of `request`.
    pub(super) fn first(
        future: S::Future,
        service: S,
        request: Req,
        retry: Retry,
        predicate: P,
    ) -> Self {
        Self {
            state: State::First {
                future,
                rest: Some(Rest {
                    service,
                    request,
                    retry,
                    predicate,
                }),
            },
        }
    }
}

impl<S, P, Req> fmt::Debug for ResponseFuture<S, P, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("retry::ResponseFuture")
            .finish_non_exhaustive()
    }
}

impl<S, P, Req> Future for ResponseFuture<S, P, Req>
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
                    panic!("retry::ResponseFuture polled after it completed");
                };
                (result, rest)
            }
        };
        let Some(delay) = rest
            .retry
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

/// Waits for `service` to be ready, then calls it: one attempt of a
/// retried call.
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
