//! [`Bulkhead`]: the policy users hold, its builder and its plain async
//! API.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};

use super::config::{BulkheadConfig, BulkheadEvent, BulkheadStats};
use super::state::{BorrowedPermit, BulkheadPermit, Shared};
use crate::{BulkheadFull, ConfigError, ResilienceError};

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
            shared: Arc::new(Shared::new(self.name, self.config)),
        })
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
            Ok(BulkheadPermit::taken(Arc::clone(&self.shared)))
        } else {
            Err(self.shared.reject())
        }
    }

    /// Takes a permit, queueing if allowed.
    pub async fn acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        self.shared.take().await?;
        Ok(BulkheadPermit::taken(Arc::clone(&self.shared)))
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

    /// The state every clone shares, for the layer's services.
    #[inline]
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
