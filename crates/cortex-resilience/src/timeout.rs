//! Timeout: cancel a call that takes too long.
//!
//! ```
//! use std::time::Duration;
//! use cortex_resilience::{ResilienceError, Timeout};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let timeout = Timeout::new("search", Duration::from_millis(100));
//! let slow = timeout
//!     .execute(|| async {
//!         tokio::time::sleep(Duration::from_secs(1)).await;
//!         Ok::<_, ()>("late")
//!     })
//!     .await;
//! assert_eq!(slow, Err(ResilienceError::Timeout));
//! # }
//! ```
//!
//! The timed-out future is dropped, which cancels it. A fallback value is
//! a [`Fallback`](crate::Fallback) around the timeout.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::ResilienceError;

/// A per-call time limit. Cheap to clone; clones share counters.
#[derive(Clone)]
pub struct Timeout {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    duration: Duration,
    timeouts: AtomicU64,
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("name", &self.shared.name)
            .field("duration", &self.shared.duration)
            .finish()
    }
}

impl Timeout {
    /// A limit of `duration` per call.
    pub fn new(name: impl Into<Arc<str>>, duration: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                duration,
                timeouts: AtomicU64::new(0),
            }),
        }
    }

    /// The timeout's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// The limit.
    pub fn duration(&self) -> Duration {
        self.shared.duration
    }

    /// Calls that timed out since creation.
    pub fn timeouts_total(&self) -> u64 {
        self.shared.timeouts.load(Ordering::Relaxed)
    }

    /// Runs `call`, cancelling it after the limit.
    pub async fn execute<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_once(|| async { call().await.map_err(ResilienceError::Inner) })
            .await
    }

    pub(crate) async fn run_once<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ResilienceError<E>>>,
    {
        match tokio::time::timeout(self.shared.duration, call()).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.shared.elapsed()),
        }
    }

    /// A tower layer applying this limit to every call.
    pub fn layer(&self) -> TimeoutLayer {
        TimeoutLayer {
            timeout: self.clone(),
        }
    }

    /// [`layer`](Self::layer) answering timeouts with 504 responses.
    pub fn http_layer(&self) -> crate::http::HttpLayer<TimeoutLayer> {
        crate::http::HttpLayer::new(self.layer())
    }
}

impl Shared {
    #[cold]
    fn elapsed<E>(&self) -> ResilienceError<E> {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        ResilienceError::Timeout
    }
}

/// Applies a [`Timeout`] to services.
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    timeout: Timeout,
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService {
            inner,
            timeout: self.timeout.clone(),
        }
    }
}

/// A service whose calls are limited by a [`Timeout`].
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Timeout,
}

impl<S, Req> Service<Req> for TimeoutService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(request),
            sleep: tokio::time::sleep(self.timeout.shared.duration),
            timeout: self.timeout.clone(),
        }
    }
}

pin_project! {
    /// Response future of [`TimeoutService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        timeout: Timeout,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("timeout::ResponseFuture")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(ResilienceError::Inner));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(this.timeout.shared.elapsed())),
            Poll::Pending => Poll::Pending,
        }
    }
}
