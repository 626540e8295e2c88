//! The response future of [`CircuitBreakerService`](super::CircuitBreakerService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::machine::Shared;
use super::permit::Permit;
use crate::{Classify, ResilienceError};

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Called { #[pin] future: F },
        Rejected { error: Option<ResilienceError<E>> },
    }
}

pin_project! {
    /// Response future of [`CircuitBreakerService`](super::CircuitBreakerService):
    /// records the outcome when the inner future completes; dropping it
    /// unfinished records nothing and frees a half-open probe slot.
    pub struct ResponseFuture<F, C, E> {
        #[pin]
        kind: Kind<F, E>,
        permit: Option<Permit<Arc<Shared>>>,
        classifier: C,
    }
}

impl<F, C, E> ResponseFuture<F, C, E> {
    pub(super) const fn admitted(future: F, permit: Permit<Arc<Shared>>, classifier: C) -> Self {
        Self {
            kind: Kind::Called { future },
            permit: Some(permit),
            classifier,
        }
    }

    pub(super) const fn rejected(error: ResilienceError<E>, classifier: C) -> Self {
        Self {
            kind: Kind::Rejected { error: Some(error) },
            permit: None,
            classifier,
        }
    }
}

impl<F, C, E> fmt::Debug for ResponseFuture<F, C, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("breaker::ResponseFuture")
            .field("admitted", &self.permit.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C, E>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Called { future } => {
                let result = ready!(future.poll(cx)).map_err(ResilienceError::Inner);
                if let Some(permit) = this.permit.take() {
                    permit.record(this.classifier.classify(&result));
                }
                Poll::Ready(result)
            }
            KindProj::Rejected { error } => Poll::Ready(Err(error
                .take()
                .unwrap_or(ResilienceError::CircuitOpen { retry_after: None }))),
        }
    }
}
