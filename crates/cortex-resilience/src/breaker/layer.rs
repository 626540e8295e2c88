//! [`CircuitBreakerLayer`], and the breaker's two layer entry points.

use tower_layer::Layer;

use super::policy::CircuitBreaker;
use super::service::CircuitBreakerService;
use crate::http::HttpLayer;
use crate::{DefaultClassifier, HttpClassifier};

impl CircuitBreaker {
    /// A tower layer whose services all share this breaker, classifying
    /// `Ok` as success and `Err` as failure. Use
    /// [`CircuitBreakerLayer::classify`] to change that, or
    /// [`http_layer`](Self::http_layer) for axum.
    pub fn layer(&self) -> CircuitBreakerLayer<DefaultClassifier> {
        CircuitBreakerLayer::new(self.clone(), DefaultClassifier)
    }

    /// The tower layer for HTTP services: 5xx responses count as failures
    /// ([`HttpClassifier`]), and a rejection is answered with a 503 and
    /// `Retry-After` rather than an error, so it can be added to an axum
    /// `Router` directly.
    pub fn http_layer(&self) -> HttpLayer<CircuitBreakerLayer<HttpClassifier>> {
        HttpLayer::new(CircuitBreakerLayer::new(self.clone(), HttpClassifier))
    }
}

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

impl<C> HttpLayer<CircuitBreakerLayer<C>> {
    /// The same breaker with another classifier (instead of
    /// [`HttpClassifier`]).
    #[must_use]
    pub fn classify<C2>(self, classifier: C2) -> HttpLayer<CircuitBreakerLayer<C2>> {
        self.map(|layer| layer.classify(classifier))
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}
