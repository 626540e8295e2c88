//! The response future of [`TimeoutService`](super::TimeoutService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::policy::Timeout;
use crate::ResilienceError;

pin_project! {
    /// Response future of [`TimeoutService`](super::TimeoutService): the
    /// inner future raced against the limit.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        timeout: Timeout,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, timeout: Timeout) -> Self {
        Self {
            inner,
            sleep: tokio::time::sleep(timeout.duration()),
            timeout,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("timeout::ResponseFuture")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(ResilienceError::Inner));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(this.timeout.elapsed())),
            Poll::Pending => Poll::Pending,
        }
    }
}
