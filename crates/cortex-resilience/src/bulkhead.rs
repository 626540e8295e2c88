//! Bulkhead: a bound on concurrent calls, with a bounded FIFO queue.
//!
//! ```
//! use cortex_resilience::{Bulkhead, ResilienceError};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let bulkhead = Bulkhead::builder("db").max_concurrent_calls(1).build().unwrap();
//! let held = bulkhead.try_acquire().unwrap();
//! // No queue by default: the second caller is rejected at once.
//! let rejected = bulkhead.execute(|| async { Ok::<_, ()>(()) }).await;
//! assert_eq!(rejected, Err(ResilienceError::BulkheadFull));
//! drop(held);
//! assert_eq!(bulkhead.execute(|| async { Ok::<_, ()>(1) }).await, Ok(1));
//! # }
//! ```
//!
//! Admission is tokio's fair semaphore: a free permit is taken without
//! waiting; otherwise the call joins the queue if fewer than `max_queue`
//! calls wait, else it is rejected at once. Queued calls are admitted in
//! arrival order. Permits return on drop, so a cancelled or panicking call
//! never leaks one, and a cancelled queued call leaves the queue.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, broadcast};
use tower_layer::Layer;
use tower_service::Service;

use crate::boxed::BoxFuture;
use crate::events::EventHub;
use crate::{BulkheadFull, ConfigError, ResilienceError};

/// Bulkhead settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Calls running at once. 25.
    pub max_concurrent_calls: u32,
    /// Calls waiting for a permit; 0 rejects at once when full. 0.
    pub max_queue: u32,
    /// Longest a queued call waits before it is rejected; `None` waits
    /// until a permit frees (or the caller gives up). `None`.
    #[serde(with = "crate::duration::option")]
    pub max_wait: Option<Duration>,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 25,
            max_queue: 0,
            max_wait: None,
        }
    }
}

/// A snapshot of a bulkhead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkheadStats {
    /// The bulkhead's name.
    pub name: String,
    /// Configured concurrency.
    pub max_concurrent_calls: u32,
    /// Calls holding a permit.
    pub in_flight: u64,
    /// Calls waiting in the queue.
    pub queued: u64,
    /// Free permits.
    pub available_permits: u64,
    /// Rejected calls since creation.
    pub rejected_total: u64,
}

/// Something that happened in a bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkheadEvent {
    /// A call got a permit.
    CallPermitted,
    /// A call was rejected.
    CallRejected,
    /// A call returned its permit.
    CallFinished,
}

/// A bulkhead. Cheap to clone; clones share permits.
#[derive(Clone)]
pub struct Bulkhead {
    shared: Arc<Shared>,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.shared.name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    name: Arc<str>,
    config: BulkheadConfig,
    semaphore: Semaphore,
    queued: AtomicUsize,
    rejected: AtomicU64,
    events: EventHub<BulkheadEvent>,
}

/// Builds a [`Bulkhead`].
#[derive(Debug)]
#[must_use]
pub struct BulkheadBuilder {
    name: Arc<str>,
    config: BulkheadConfig,
}

impl BulkheadBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: BulkheadConfig) -> Self {
        self.config = config;
        self
    }

    /// Calls running at once. Default 25.
    pub fn max_concurrent_calls(mut self, calls: u32) -> Self {
        self.config.max_concurrent_calls = calls;
        self
    }

    /// Calls allowed to wait. Default 0 (reject at once).
    pub fn max_queue(mut self, calls: u32) -> Self {
        self.config.max_queue = calls;
        self
    }

    /// Longest wait in the queue. Default unbounded.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.config.max_wait = Some(wait);
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        if self.config.max_concurrent_calls == 0 {
            return Err(ConfigError::new(
                "Bulkhead",
                &self.name,
                "max_concurrent_calls",
                "must be at least 1",
            ));
        }
        if self.config.max_concurrent_calls as usize > Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "Bulkhead",
                &self.name,
                "max_concurrent_calls",
                "exceeds tokio's semaphore limit",
            ));
        }
        Ok(Bulkhead {
            shared: Arc::new(Shared {
                name: self.name,
                semaphore: Semaphore::new(self.config.max_concurrent_calls as usize),
                config: self.config,
                queued: AtomicUsize::new(0),
                rejected: AtomicU64::new(0),
                events: EventHub::default(),
            }),
        })
    }
}

/// A held bulkhead permit; dropping it frees the slot.
pub struct BulkheadPermit {
    shared: Arc<Shared>,
}

impl fmt::Debug for BulkheadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadPermit")
            .field("bulkhead", &self.shared.name)
            .finish()
    }
}

impl Drop for BulkheadPermit {
    fn drop(&mut self) {
        self.shared.release();
    }
}

/// The same, borrowing the state (for `execute`, which needs no `Arc` clone).
struct BorrowedPermit<'a>(&'a Shared);

impl Drop for BorrowedPermit<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Bulkhead {
    /// A builder with the defaults (25 concurrent, no queue).
    pub fn builder(name: impl Into<Arc<str>>) -> BulkheadBuilder {
        BulkheadBuilder {
            name: name.into(),
            config: BulkheadConfig::default(),
        }
    }

    /// A bulkhead from a configuration.
    pub fn from_config(
        name: impl Into<Arc<str>>,
        config: BulkheadConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// Takes a free permit without waiting, or rejects (counted as a
    /// rejected call).
    pub fn try_acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        if self.shared.try_take() {
            Ok(BulkheadPermit {
                shared: Arc::clone(&self.shared),
            })
        } else {
            Err(self.shared.reject())
        }
    }

    /// Takes a permit, queueing if allowed.
    pub async fn acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        self.shared.take().await?;
        Ok(BulkheadPermit {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Runs `call` holding a permit.
    pub async fn execute<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_once(|| async { call().await.map_err(ResilienceError::Inner) })
            .await
    }

    /// Runs `call`, whose policy errors pass through, holding a permit.
    pub(crate) async fn run_once<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ResilienceError<E>>>,
    {
        self.shared.take().await?;
        let _permit = BorrowedPermit(&self.shared);
        call().await
    }

    /// A snapshot of permits and the queue.
    pub fn stats(&self) -> BulkheadStats {
        let shared = &*self.shared;
        let available = shared.semaphore.available_permits() as u64;
        let max = u64::from(shared.config.max_concurrent_calls);
        BulkheadStats {
            name: shared.name.to_string(),
            max_concurrent_calls: shared.config.max_concurrent_calls,
            in_flight: max.saturating_sub(available),
            queued: shared.queued.load(Ordering::Relaxed) as u64,
            available_permits: available,
            rejected_total: shared.rejected.load(Ordering::Relaxed),
        }
    }

    /// A broadcast receiver of this bulkhead's events.
    pub fn subscribe(&self) -> broadcast::Receiver<BulkheadEvent> {
        self.shared.events.subscribe()
    }

    /// Calls `callback` for every event.
    pub fn on_event(&self, callback: impl Fn(&BulkheadEvent) + Send + Sync + 'static) {
        self.shared.events.on_event(callback);
    }

    /// A tower layer whose services share this bulkhead. Queued calls wait
    /// inside the response future, never in `poll_ready`.
    pub fn layer(&self) -> BulkheadLayer {
        BulkheadLayer {
            bulkhead: self.clone(),
        }
    }

    /// [`layer`](Self::layer) answering rejections with 503 responses.
    pub fn http_layer(&self) -> crate::http::HttpLayer<BulkheadLayer> {
        crate::http::HttpLayer::new(self.layer())
    }
}

impl Shared {
    #[inline]
    fn release(&self) {
        self.semaphore.add_permits(1);
        self.events.emit(|| BulkheadEvent::CallFinished);
    }

    #[inline]
    fn try_take(&self) -> bool {
        match self.semaphore.try_acquire() {
            Ok(permit) => {
                // Returned by `BulkheadPermit::drop`.
                permit.forget();
                self.events.emit(|| BulkheadEvent::CallPermitted);
                true
            }
            Err(_) => false,
        }
    }

    #[cold]
    fn reject(&self) -> BulkheadFull {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.events.emit(|| BulkheadEvent::CallRejected);
        BulkheadFull {
            max_concurrent_calls: self.config.max_concurrent_calls,
        }
    }

    async fn take(&self) -> Result<(), BulkheadFull> {
        if self.try_take() {
            return Ok(());
        }
        self.wait().await
    }

    async fn wait(&self) -> Result<(), BulkheadFull> {
        let max_queue = self.config.max_queue as usize;
        if self.queued.fetch_add(1, Ordering::AcqRel) >= max_queue {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(self.reject());
        }
        let _queued = QueueSlot(&self.queued);
        let acquire = self.semaphore.acquire();
        let acquired = match self.config.max_wait {
            Some(max_wait) => tokio::time::timeout(max_wait, acquire).await.ok(),
            None => Some(acquire.await),
        };
        match acquired {
            Some(Ok(permit)) => {
                permit.forget();
                self.events.emit(|| BulkheadEvent::CallPermitted);
                Ok(())
            }
            // Timed out (the semaphore is never closed).
            _ => Err(self.reject()),
        }
    }
}

/// Leaves the queue on drop, including when the waiting call is cancelled.
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Wraps services in a shared [`Bulkhead`].
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService {
            inner,
            bulkhead: self.bulkhead.clone(),
        }
    }
}

/// A service guarded by a [`Bulkhead`].
#[derive(Debug, Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.bulkhead.shared;
        if shared.try_take() {
            let permit = BulkheadPermit {
                shared: Arc::clone(shared),
            };
            return ResponseFuture {
                kind: Kind::Admitted {
                    future: self.inner.call(request),
                    permit: Some(permit),
                },
            };
        }
        if shared.config.max_queue == 0 {
            return ResponseFuture {
                kind: Kind::Rejected {
                    error: Some(shared.reject().into()),
                },
            };
        }
        // The ready service goes with the queued call; a clone stays.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let bulkhead = self.bulkhead.clone();
        ResponseFuture {
            kind: Kind::Queued {
                future: Box::pin(async move {
                    let _permit = bulkhead.acquire().await?;
                    service.call(request).await.map_err(ResilienceError::Inner)
                }),
            },
        }
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        Admitted { #[pin] future: F, permit: Option<BulkheadPermit> },
        Queued { future: BoxFuture<Result<T, ResilienceError<E>>> },
        Rejected { error: Option<ResilienceError<E>> },
    }
}

pin_project! {
    /// Response future of [`BulkheadService`]; holds the permit until the
    /// inner future completes or is dropped.
    pub struct ResponseFuture<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

impl<F, T, E> fmt::Debug for ResponseFuture<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bulkhead::ResponseFuture")
    }
}

impl<F, T, E> Future for ResponseFuture<F, T, E>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Admitted { future, permit } => {
                let result = ready!(future.poll(cx));
                drop(permit.take());
                Poll::Ready(result.map_err(ResilienceError::Inner))
            }
            KindProj::Queued { future } => future.as_mut().poll(cx),
            KindProj::Rejected { error } => {
                Poll::Ready(Err(error.take().unwrap_or(ResilienceError::BulkheadFull)))
            }
        }
    }
}
