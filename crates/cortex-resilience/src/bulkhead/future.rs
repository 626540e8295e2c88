//! The response future of [`BulkheadService`](super::BulkheadService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::state::BulkheadPermit;
use crate::ResilienceError;
use crate::boxed::BoxFuture;

pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        Admitted { #[pin] future: F, permit: Option<BulkheadPermit> },
        Queued { future: BoxFuture<Result<T, ResilienceError<E>>> },
        Rejected { error: Option<ResilienceError<E>> },
    }
}

pin_project! {
    /// Response future of [`BulkheadService`](super::BulkheadService):
    /// holds the permit until the inner future completes or is dropped. A
    /// call that had to queue is boxed with the wait; an admitted one is not.
    pub struct ResponseFuture<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

impl<F, T, E> ResponseFuture<F, T, E> {
    pub(super) const fn admitted(future: F, permit: BulkheadPermit) -> Self {
        Self {
            kind: Kind::Admitted {
                future,
                permit: Some(permit),
            },
        }
    }

    pub(super) const fn queued(future: BoxFuture<Result<T, ResilienceError<E>>>) -> Self {
        Self {
            kind: Kind::Queued { future },
        }
    }

    pub(super) const fn rejected(error: ResilienceError<E>) -> Self {
        Self {
            kind: Kind::Rejected { error: Some(error) },
        }
    }
}

impl<F, T, E> fmt::Debug for ResponseFuture<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bulkhead::ResponseFuture")
    }
}

impl<F, T, E> Future for ResponseFuture<F, T, E>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Admitted { future, permit } => {
                let result = ready!(future.poll(cx));
                drop(permit.take());
                Poll::Ready(result.map_err(ResilienceError::Inner))
            }
            KindProj::Queued { future } => future.as_mut().poll(cx),
            KindProj::Rejected { error } => {
                Poll::Ready(Err(error.take().unwrap_or(ResilienceError::BulkheadFull)))
            }
        }
    }
}
