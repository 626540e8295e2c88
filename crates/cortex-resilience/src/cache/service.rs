//! [`ResponseCacheService`]: a service behind a response cache.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::CacheBody;
use super::config::CacheEvent;
use super::future::ResponseFuture;
use super::policy::ResponseCache;
use super::response::bypasses;

/// A service answered from a [`ResponseCache`] where HTTP allows. Its
/// errors are the inner service's own (the cache rejects nothing); its
/// response body is a [`CacheBody`]. GET requests go through the cache
/// (in a boxed future); every other request goes straight to the inner
/// service, unboxed, tagged `X-Cache: BYPASS`.
///
/// ```
/// use std::convert::Infallible;
/// use cortex_resilience::{ResponseCache, ResponseCacheService};
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower::{ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let origin = service_fn(|_: Request<()>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(bytes::Bytes::from_static(b"ok"))))
/// });
/// let cache = ResponseCache::builder("origin").build().unwrap();
/// let service = ResponseCacheService::new(origin, cache);
/// // POST is never cached.
/// let response = service.oneshot(Request::post("/").body(()).unwrap()).await.unwrap();
/// assert_eq!(response.headers()["x-cache"], "BYPASS");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ResponseCacheService<S> {
    inner: S,
    cache: ResponseCache,
}

impl<S> ResponseCacheService<S> {
    /// Puts `cache` in front of `inner`.
    pub const fn new(inner: S, cache: ResponseCache) -> Self {
        Self { inner, cache }
    }

    /// The cache in front of this service.
    pub fn cache(&self) -> &ResponseCache {
        &self.cache
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

impl<S, B, RB> Service<Request<B>> for ResponseCacheService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Send + 'static,
{
    type Response = Response<CacheBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, RB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if bypasses(&request) {
            self.cache.shared.store.count(CacheEvent::Bypass);
            return ResponseFuture::bypass(self.inner.call(request));
        }
        // The ready service goes with the request; a clone stays.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::cached(Box::pin(self.cache.clone().serve(service, request)))
    }
}
