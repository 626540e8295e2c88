//! The state a bulkhead, its permits and its services share: tokio's fair
//! semaphore, the queue count and the rejection counter.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use super::config::{BulkheadConfig, BulkheadEvent};
use crate::BulkheadFull;
use crate::events::EventHub;

/// The permits and counters every clone of a bulkhead shares.
pub(crate) struct Shared {
    pub(super) name: Arc<str>,
    pub(super) config: BulkheadConfig,
    pub(super) semaphore: Semaphore,
    pub(super) queued: AtomicUsize,
    pub(super) rejected: AtomicU64,
    pub(super) events: EventHub<BulkheadEvent>,
}

/// A held bulkhead permit; dropping it frees the slot.
pub struct BulkheadPermit {
    shared: Arc<Shared>,
}

impl BulkheadPermit {
    /// A permit already taken from `shared`.
    #[inline]
    pub(super) const fn taken(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
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
pub(super) struct BorrowedPermit<'a>(pub(super) &'a Shared);

impl Drop for BorrowedPermit<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Shared {
    pub(super) fn new(name: Arc<str>, config: BulkheadConfig) -> Self {
        Self {
            name,
            semaphore: Semaphore::new(config.max_concurrent_calls as usize),
            config,
            queued: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            events: EventHub::default(),
        }
    }

    #[inline]
    pub(super) fn release(&self) {
        self.semaphore.add_permits(1);
        self.events.emit(|| BulkheadEvent::CallFinished);
    }

    #[inline]
    pub(super) fn try_take(&self) -> bool {
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
    pub(super) fn reject(&self) -> BulkheadFull {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.events.emit(|| BulkheadEvent::CallRejected);
        BulkheadFull {
            max_concurrent_calls: self.config.max_concurrent_calls,
        }
    }

    pub(super) async fn take(&self) -> Result<(), BulkheadFull> {
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
