//! Cooperative cancellation: how a running job learns that nobody waits for
//! it any more (run timeout, `cancel`, `shutdown_now`).
//!
//! An OS thread cannot be killed safely, so the pool cannot stop a job that
//! does not look: it answers the caller at once, fires the job's token and,
//! if the job has not returned after the grace period, replaces the thread
//! (see the crate docs). A job that checks [`is_cancelled`] in its loop
//! returns early and keeps its thread.
//!
//! ```
//! use std::time::Duration;
//! use cortex_workers::{JobError, WorkerPool};
//!
//! let pool = WorkerPool::builder("doc")
//!     .workers(1)
//!     .run_timeout(Duration::from_millis(20))
//!     .build()?;
//! let handle = pool.try_submit(|| {
//!     let mut rounds = 0_u64;
//!     while !cortex_workers::is_cancelled() {
//!         rounds += 1; // a long computation, checked once a round
//!         std::hint::spin_loop();
//!     }
//!     rounds
//! }).expect("room in the queue");
//! assert!(matches!(handle.wait(), Err(JobError::TimedOut { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::sync::Arc;

use crate::job::JobControl;

thread_local! {
    /// The job this worker thread runs now.
    static CURRENT: RefCell<Option<Arc<dyn JobControl>>> = const { RefCell::new(None) };
}

/// Fires when the job's outcome was decided without it (run timeout,
/// [`JobHandle::cancel`](crate::JobHandle::cancel), `shutdown_now`).
/// Cheap to clone and to check; it may be moved to other threads the job
/// starts.
#[derive(Clone, Debug)]
pub struct CancellationToken {
    job: Option<Arc<dyn JobControl>>,
}

impl CancellationToken {
    pub(crate) fn new(job: Arc<dyn JobControl>) -> Self {
        Self { job: Some(job) }
    }

    /// Whether the job should stop.
    pub fn is_cancelled(&self) -> bool {
        self.job.as_ref().is_some_and(|job| job.is_cancelled())
    }
}

/// The token of the job running on this thread; outside a pool job, a
/// token that never fires.
pub fn cancellation_token() -> CancellationToken {
    CURRENT.with(|current| CancellationToken {
        job: current.borrow().clone(),
    })
}

/// Whether the job running on this thread should stop; `false` outside a
/// pool job. One thread-local read and one atomic load.
pub fn is_cancelled() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|job| job.is_cancelled())
    })
}

/// Installs `job` as this thread's current job for the guard's lifetime.
pub(crate) fn enter(job: Arc<dyn JobControl>) -> CurrentJob {
    CURRENT.with(|current| *current.borrow_mut() = Some(job));
    CurrentJob(())
}

/// Clears the current job on drop.
#[derive(Debug)]
pub(crate) struct CurrentJob(());

impl Drop for CurrentJob {
    fn drop(&mut self) {
        // `try_with`: the thread-local may be gone while a thread exits.
        let _ = CURRENT.try_with(|current| current.borrow_mut().take());
    }
}
