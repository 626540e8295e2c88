//! [`ResponseCacheLayer`], and the cache's layer entry point.

use tower_layer::Layer;

use super::policy::ResponseCache;
use super::service::ResponseCacheService;

impl ResponseCache {
    /// A tower layer whose services answer from this cache. It never
    /// rejects, so there is no `http_layer()`: this layer goes straight
    /// onto an axum `Router` (put it outside the other policies' layers,
    /// so hits skip them and `stale-if-error` covers their rejections).
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use cortex_resilience::ResponseCache;
    ///
    /// let cache = ResponseCache::builder("pages").build().unwrap();
    /// let app: Router = Router::new()
    ///     .route("/home", get(|| async { ([("cache-control", "max-age=60")], "home") }))
    ///     .layer(cache.layer());
    /// # drop(app);
    /// ```
    pub fn layer(&self) -> ResponseCacheLayer {
        ResponseCacheLayer {
            cache: self.clone(),
        }
    }
}

/// Puts a shared [`ResponseCache`] in front of services.
///
/// ```
/// use std::convert::Infallible;
/// use cortex_resilience::{ResponseCache, ResponseCacheLayer};
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache = ResponseCache::builder("origin").build().unwrap();
/// let origin = service_fn(|_: Request<()>| async {
///     let mut response = Response::new(Full::new(bytes::Bytes::from_static(b"hi")));
///     response.headers_mut().insert("cache-control", "max-age=5".parse().unwrap());
///     Ok::<_, Infallible>(response)
/// });
/// let service = ResponseCacheLayer::new(cache).layer(origin);
/// let response = service.oneshot(Request::get("/").body(()).unwrap()).await.unwrap();
/// assert_eq!(response.headers()["x-cache"], "MISS");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ResponseCacheLayer {
    cache: ResponseCache,
}

impl ResponseCacheLayer {
    /// A layer over `cache` (the same as `cache.layer()`).
    pub fn new(cache: ResponseCache) -> Self {
        Self { cache }
    }
}

impl<S> Layer<S> for ResponseCacheLayer {
    type Service = ResponseCacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResponseCacheService::new(inner, self.cache.clone())
    }
}
