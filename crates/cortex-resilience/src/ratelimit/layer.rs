//! [`RateLimiterLayer`] and [`KeyedRateLimiterLayer`], and the limiters'
//! two layer entry points.

use tower_layer::Layer;

use super::key::KeyExtractor;
use super::keyed::KeyedRateLimiter;
use super::policy::RateLimiter;
use super::service::{KeyedRateLimiterService, RateLimiterService};
use crate::http::HttpLayer;

impl RateLimiter {
    /// A tower layer rejecting over-limit calls with
    /// [`ResilienceError::RateLimited`](crate::ResilienceError::RateLimited)
    /// (no waiting in the layer; that is [`acquire`](Self::acquire)).
    pub fn layer(&self) -> RateLimiterLayer {
        RateLimiterLayer {
            limiter: self.clone(),
        }
    }

    /// [`layer`](Self::layer) for HTTP, one budget for everybody: 429 with
    /// `Retry-After`, and `RateLimit-Limit`, `RateLimit-Remaining` and
    /// `RateLimit-Reset` on every response (see
    /// [`HttpLayer::headers_on_success`]).
    pub fn http_layer(&self) -> HttpLayer<RateLimiterLayer> {
        HttpLayer::new(self.layer())
    }
}

impl<K> KeyedRateLimiter<K> {
    /// A tower layer over `http::Request`s, one budget per key `extractor`
    /// finds ([`ClientIp`](crate::ClientIp), [`RouteKey`](crate::RouteKey),
    /// [`HeaderKey`](crate::HeaderKey) or your own); over-limit calls fail
    /// with [`ResilienceError::RateLimited`](crate::ResilienceError::RateLimited).
    pub fn layer<X: KeyExtractor<Key = K>>(&self, extractor: X) -> KeyedRateLimiterLayer<X> {
        KeyedRateLimiterLayer {
            limiter: self.clone(),
            extractor,
        }
    }

    /// [`layer`](Self::layer) for HTTP: 429 with `Retry-After`, and the
    /// `RateLimit-*` headers of the request's key on every response.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::{Router, routing::get};
    /// use cortex_resilience::{ClientIp, RateLimiter};
    ///
    /// let per_client = RateLimiter::builder("api")
    ///     .permits(100, Duration::from_secs(1))
    ///     .build_keyed()
    ///     .unwrap();
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "hi" }))
    ///     .layer(per_client.http_layer(ClientIp::new()));
    /// ```
    pub fn http_layer<X: KeyExtractor<Key = K>>(
        &self,
        extractor: X,
    ) -> HttpLayer<KeyedRateLimiterLayer<X>> {
        HttpLayer::new(self.layer(extractor))
    }
}

/// Applies a global [`RateLimiter`] to services.
#[derive(Debug, Clone)]
pub struct RateLimiterLayer {
    limiter: RateLimiter,
}

impl<S> Layer<S> for RateLimiterLayer {
    type Service = RateLimiterService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimiterService::new(inner, self.limiter.clone())
    }
}

/// Applies a [`KeyedRateLimiter`] to HTTP services, keyed by `X`.
#[derive(Debug, Clone)]
pub struct KeyedRateLimiterLayer<X: KeyExtractor> {
    limiter: KeyedRateLimiter<X::Key>,
    extractor: X,
}

impl<S, X: KeyExtractor> Layer<S> for KeyedRateLimiterLayer<X> {
    type Service = KeyedRateLimiterService<S, X>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimiterService::new(inner, self.limiter.clone(), self.extractor.clone())
    }
}
