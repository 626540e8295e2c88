//! Rate limiting for HTTP: 429 with `Retry-After` and the IETF
//! `RateLimit-*` headers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::gcra::RateLimitDecision;
use super::keyed::{GlobalKey, KeyExtractor};
use super::{KeyedRateLimiter, RateLimiter};
use crate::ResilienceError;
use crate::error::retry_after_value;
use crate::http::{ResilienceBody, rejection_response};

#[derive(Clone)]
enum Backend<K> {
    Global(RateLimiter),
    Keyed(KeyedRateLimiter<K>),
}

/// Limits HTTP requests globally or per key.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use cortex_resilience::{ClientIp, RateLimitLayer, RateLimiter};
///
/// let per_client = RateLimiter::builder("api")
///     .permits(100, Duration::from_secs(1))
///     .build_keyed()
///     .unwrap();
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hi" }))
///     .layer(RateLimitLayer::keyed(per_client, ClientIp::new()));
/// ```
///
/// Rejected requests get `429 Too Many Requests` with `Retry-After`;
/// every response carries `RateLimit-Limit`, `RateLimit-Remaining` and
/// `RateLimit-Reset` (draft-ietf-httpapi-ratelimit-headers) unless
/// [`headers_on_success`](Self::headers_on_success) is turned off.
#[derive(Clone)]
pub struct RateLimitLayer<X: KeyExtractor> {
    backend: Backend<X::Key>,
    extractor: X,
    headers_on_success: bool,
}

impl RateLimitLayer<GlobalKey> {
    /// One budget for all requests.
    pub fn global(limiter: RateLimiter) -> Self {
        Self {
            backend: Backend::Global(limiter),
            extractor: GlobalKey,
            headers_on_success: true,
        }
    }
}

impl<X: KeyExtractor> RateLimitLayer<X> {
    /// One budget per key `extractor` finds ([`ClientIp`](crate::ClientIp),
    /// [`RouteKey`](crate::RouteKey), [`HeaderKey`](crate::HeaderKey) or
    /// your own).
    pub fn keyed(limiter: KeyedRateLimiter<X::Key>, extractor: X) -> Self {
        Self {
            backend: Backend::Keyed(limiter),
            extractor,
            headers_on_success: true,
        }
    }

    /// Whether allowed responses carry `RateLimit-*` headers. Default true.
    #[must_use]
    pub fn headers_on_success(mut self, on: bool) -> Self {
        self.headers_on_success = on;
        self
    }
}

impl<X: KeyExtractor + fmt::Debug> fmt::Debug for RateLimitLayer<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.backend {
            Backend::Global(limiter) => limiter.name(),
            Backend::Keyed(limiter) => limiter.name(),
        };
        f.debug_struct("RateLimitLayer")
            .field("limiter", &name)
            .field("extractor", &self.extractor)
            .field("headers_on_success", &self.headers_on_success)
            .finish()
    }
}

impl<S: fmt::Debug, X: KeyExtractor + fmt::Debug> fmt::Debug for RateLimitService<S, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, X: KeyExtractor> Layer<S> for RateLimitLayer<X> {
    type Service = RateLimitService<S, X>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            layer: self.clone(),
        }
    }
}

/// An HTTP service behind a [`RateLimitLayer`].
#[derive(Clone)]
pub struct RateLimitService<S, X: KeyExtractor> {
    inner: S,
    layer: RateLimitLayer<X>,
}

impl<S, X, B, RB> Service<Request<B>> for RateLimitService<S, X>
where
    S: Service<Request<B>, Response = Response<RB>>,
    X: KeyExtractor,
{
    type Response = Response<ResilienceBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let decision = match &self.layer.backend {
            Backend::Global(limiter) => limiter.check(),
            Backend::Keyed(limiter) => {
                limiter.check(self.layer.extractor.extract(&request).as_ref())
            }
        };
        if decision.allowed {
            ResponseFuture {
                inner: Some(self.inner.call(request)),
                decision,
                headers: self.layer.headers_on_success,
            }
        } else {
            ResponseFuture {
                inner: None,
                decision,
                headers: true,
            }
        }
    }
}

pin_project! {
    /// Response future of [`RateLimitService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        decision: RateLimitDecision,
        headers: bool,
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<ResilienceBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.as_pin_mut() {
            Some(inner) => ready!(inner.poll(cx))?.map(ResilienceBody::inner),
            None => rejection_response(ResilienceError::<E>::RateLimited {
                retry_after: this.decision.retry_after,
            })?,
        };
        if *this.headers {
            insert_headers(response.headers_mut(), this.decision);
        }
        Poll::Ready(Ok(response))
    }
}

fn insert_headers(headers: &mut HeaderMap, decision: &RateLimitDecision) {
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", retry_after_value(decision.reset));
}
