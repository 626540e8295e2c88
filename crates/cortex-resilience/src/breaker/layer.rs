//! The circuit breaker as a tower layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{CircuitBreaker, Permit, Shared};
use crate::{Classify, ResilienceError};

/// Wraps services in a shared [`CircuitBreaker`]. Every service this layer
/// makes (and every clone of them) is guarded by the same breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C> {
    breaker: CircuitBreaker,
    classifier: C,
}

impl<C> CircuitBreakerLayer<C> {
    /// A layer over `breaker` classifying results with `classifier`.
    pub const fn new(breaker: CircuitBreaker, classifier: C) -> Self {
        Self {
            breaker,
            classifier,
        }
    }

    /// The same breaker with another classifier.
    pub fn classify<C2>(self, classifier: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// A service guarded by a [`CircuitBreaker`]. Rejections are returned from
/// `call` as [`ResilienceError::CircuitOpen`], never from `poll_ready`.
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// The breaker guarding this service.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future, C, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.acquire_owned() {
            Ok(permit) => ResponseFuture {
                kind: Kind::Called {
                    future: self.inner.call(request),
                },
                permit: Some(permit),
                classifier: self.classifier.clone(),
            },
            Err(rejected) => ResponseFuture {
                kind: Kind::Rejected {
                    error: Some(rejected.into()),
                },
                permit: None,
                classifier: self.classifier.clone(),
            },
        }
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Called { #[pin] future: F },
        Rejected { error: Option<ResilienceError<E>> },
    }
}

pin_project! {
    /// Response future of [`CircuitBreakerService`]: records the outcome
    /// when the inner future completes; dropping it unfinished records
    /// nothing and frees a half-open probe slot.
    pub struct ResponseFuture<F, C, E> {
        #[pin]
        kind: Kind<F, E>,
        permit: Option<Permit<Arc<Shared>>>,
        classifier: C,
    }
}

impl<F, C, E> std::fmt::Debug for ResponseFuture<F, C, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
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
