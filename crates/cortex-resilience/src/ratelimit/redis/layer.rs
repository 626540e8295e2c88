//! [`DistributedRateLimiterLayer`] and [`DistributedRateLimiterService`]:
//! the HTTP front end of a [`DistributedRateLimiter`].

use std::fmt;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{DistributedRateLimiter, RateLimitKey};
use crate::ResilienceError;
use crate::boxed::BoxFuture;
use crate::http::{ResilienceBody, insert_rate_limit_headers, rejection_response};
use crate::ratelimit::KeyExtractor;

impl DistributedRateLimiter {
    /// An HTTP layer, one budget per key `extractor` finds
    /// ([`ClientIp`](crate::ClientIp), [`RouteKey`](crate::RouteKey),
    /// [`HeaderKey`](crate::HeaderKey), [`GlobalKey`](crate::GlobalKey) or
    /// your own with a [`RateLimitKey`] key); requests without a key share
    /// one budget. Refused requests get 429 with `Retry-After` and an RFC
    /// 9457 `application/problem+json` body, as from
    /// [`ResilienceError::RateLimited`], and every response the
    /// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
    /// headers.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use axum::{Router, routing::get};
    /// use cortex_resilience::{DistributedRateLimiter, HeaderKey};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), cortex_resilience::ConfigError> {
    /// let per_api_key = DistributedRateLimiter::builder("api")
    ///     .redis_url("redis://127.0.0.1:6379")
    ///     .permits(10, Duration::from_secs(1))
    ///     .build()?;
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "hi" }))
    ///     .layer(per_api_key.http_layer(HeaderKey::new("x-api-key".parse().unwrap())));
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_layer<X>(&self, extractor: X) -> DistributedRateLimiterLayer<X>
    where
        X: KeyExtractor,
        X::Key: RateLimitKey,
    {
        DistributedRateLimiterLayer {
            limiter: self.clone(),
            extractor,
            headers_on_success: true,
        }
    }
}

/// Applies a [`DistributedRateLimiter`] to HTTP services, keyed by `X`;
/// from [`DistributedRateLimiter::http_layer`].
#[derive(Debug, Clone)]
pub struct DistributedRateLimiterLayer<X> {
    limiter: DistributedRateLimiter,
    extractor: X,
    headers_on_success: bool,
}

impl<X> DistributedRateLimiterLayer<X> {
    /// Whether allowed responses carry the `RateLimit-*` headers too
    /// (refusals always do). Default true.
    #[must_use]
    pub fn headers_on_success(mut self, on: bool) -> Self {
        self.headers_on_success = on;
        self
    }
}

impl<S, X: Clone> Layer<S> for DistributedRateLimiterLayer<X> {
    type Service = DistributedRateLimiterService<S, X>;

    fn layer(&self, inner: S) -> Self::Service {
        DistributedRateLimiterService {
            inner,
            limiter: self.limiter.clone(),
            extractor: self.extractor.clone(),
            headers_on_success: self.headers_on_success,
        }
    }
}

/// An HTTP service behind a [`DistributedRateLimiter`]: refused requests
/// are answered with 429 and never reach `S`. Its response body is
/// [`ResilienceBody`], as with every other `http_layer()`: the inner body,
/// or the problem text of a refusal.
///
/// The decision needs a Redis round trip, so the call moves the inner
/// service (the ready one, swapped for a clone: `S: Clone`) into a boxed
/// future. One allocation per request is nothing next to a network round
/// trip.
#[derive(Clone)]
pub struct DistributedRateLimiterService<S, X> {
    inner: S,
    limiter: DistributedRateLimiter,
    extractor: X,
    headers_on_success: bool,
}

impl<S: fmt::Debug, X: fmt::Debug> fmt::Debug for DistributedRateLimiterService<S, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedRateLimiterService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .field("extractor", &self.extractor)
            .field("headers_on_success", &self.headers_on_success)
            .finish()
    }
}

impl<S, X> DistributedRateLimiterService<S, X> {
    /// Limits the calls of `inner` by `limiter`, keyed by `extractor`.
    pub fn new(inner: S, limiter: DistributedRateLimiter, extractor: X) -> Self {
        Self {
            inner,
            limiter,
            extractor,
            headers_on_success: true,
        }
    }

    /// The limiter of this service.
    pub fn limiter(&self) -> &DistributedRateLimiter {
        &self.limiter
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, X, B, RB> Service<Request<B>> for DistributedRateLimiterService<S, X>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    X: KeyExtractor,
    X::Key: RateLimitKey,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<ResilienceBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let redis_key = self
            .limiter
            .redis_key(self.extractor.extract(&request).as_ref());
        // `poll_ready` readied `self.inner`: that one serves this request,
        // and a fresh clone waits for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        let headers_on_success = self.headers_on_success;
        Box::pin(async move {
            let decision = limiter.decide(redis_key, 1).await;
            let mut response = if decision.allowed {
                let response = inner.call(request).await?.map(ResilienceBody::inner);
                if !headers_on_success {
                    return Ok(response);
                }
                response
            } else {
                // The same 429 problem every Cortex limiter answers with.
                rejection_response(ResilienceError::<S::Error>::RateLimited {
                    retry_after: decision.retry_after,
                })?
            };
            insert_rate_limit_headers(response.headers_mut(), &decision);
            Ok(response)
        })
    }
}
