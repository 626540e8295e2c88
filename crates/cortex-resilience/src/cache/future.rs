//! The response future of [`ResponseCacheService`](super::ResponseCacheService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Response};
use http_body::Body;
use pin_project_lite::pin_project;

use super::body::CacheBody;
use super::response::X_CACHE;
use crate::boxed::BoxFuture;

pin_project! {
    #[project = KindProj]
    enum Kind<F, RB, E>
    where
        RB: Body,
    {
        Bypass { #[pin] future: F },
        Cached { future: BoxFuture<Result<Response<CacheBody<RB>>, E>> },
    }
}

pin_project! {
    /// Response future of [`ResponseCacheService`](super::ResponseCacheService):
    /// the inner future itself for a request the cache stays out of, else
    /// the boxed look-up (find, coalesce, fetch, store). Dropping it
    /// cancels the request; if it was leading a coalesced miss, a waiting
    /// request takes over.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use cortex_resilience::ResponseCache;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut service = ResponseCache::builder("origin").build().unwrap().layer().layer(
    ///     service_fn(|_: Request<()>| async {
    ///         Ok::<_, Infallible>(Response::new(Full::new(bytes::Bytes::new())))
    ///     }),
    /// );
    /// let future: cortex_resilience::cache::ResponseFuture<_, _, _> =
    ///     service.call(Request::get("/").body(()).unwrap());
    /// assert_eq!(future.await.unwrap().headers()["x-cache"], "BYPASS");
    /// # }
    /// ```
    pub struct ResponseFuture<F, RB, E>
    where
        RB: Body,
    {
        #[pin]
        kind: Kind<F, RB, E>,
    }
}

impl<F, RB: Body, E> ResponseFuture<F, RB, E> {
    pub(super) const fn bypass(future: F) -> Self {
        Self {
            kind: Kind::Bypass { future },
        }
    }

    pub(super) const fn cached(future: BoxFuture<Result<Response<CacheBody<RB>>, E>>) -> Self {
        Self {
            kind: Kind::Cached { future },
        }
    }
}

impl<F, RB: Body, E> fmt::Debug for ResponseFuture<F, RB, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cache::ResponseFuture")
    }
}

impl<F, RB, E> Future for ResponseFuture<F, RB, E>
where
    F: Future<Output = Result<Response<RB>, E>>,
    RB: Body,
{
    type Output = Result<Response<CacheBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Bypass { future } => {
                let response = ready!(future.poll(cx))?;
                let mut response = response.map(CacheBody::inner);
                response
                    .headers_mut()
                    .insert(X_CACHE, HeaderValue::from_static("BYPASS"));
                Poll::Ready(Ok(response))
            }
            KindProj::Cached { future } => future.as_mut().poll(cx),
        }
    }
}
