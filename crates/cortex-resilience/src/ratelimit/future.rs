//! The response future of the limiters' services.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::ResilienceError;

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Inner { #[pin] future: F },
        Rejected { error: Option<ResilienceError<E>> },
    }
}

pin_project! {
    /// Response future of [`RateLimiterService`](super::RateLimiterService)
    /// and [`KeyedRateLimiterService`](super::KeyedRateLimiterService):
    /// the inner service's future (its error wrapped in
    /// [`ResilienceError::Inner`]), or the rejection decided in `call`.
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

impl<F, E> ResponseFuture<F, E> {
    pub(super) const fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    pub(super) const fn rejected(error: ResilienceError<E>) -> Self {
        Self {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<F, E> fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Inner { .. } => "ratelimit::ResponseFuture::Inner",
            Kind::Rejected { .. } => "ratelimit::ResponseFuture::Rejected",
        })
    }
}

impl<F, T, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                Poll::Ready(ready!(future.poll(cx)).map_err(ResilienceError::Inner))
            }
            // Polled again after completion: report the rejection again
            // rather than panic.
            KindProj::Rejected { error } => {
                Poll::Ready(Err(error.take().unwrap_or(ResilienceError::RateLimited {
                    retry_after: std::time::Duration::ZERO,
                })))
            }
        }
    }
}
