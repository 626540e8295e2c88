//! A job in flight: the closure, the one-time result slot its caller waits
//! on, and the state that decides who reports the outcome.
//!
//! Several parties may try to finish a job: the worker that runs it, the
//! watchdog (queue TTL, run timeout), the caller (`cancel`) and shutdown.
//! The first to [`JobShared::deliver`] wins and counts the outcome; the
//! others see `false` and count nothing, so every accepted job is counted
//! exactly once.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::cancel::CancellationToken;
use crate::error::JobError;
use crate::shared::SlotCounts;

/// Not started yet: a worker, the TTL sweep, `cancel` or shutdown may claim it.
const QUEUED: u8 = 0;
/// Claimed by a worker: it runs (or ran).
const RUNNING: u8 = 1;
/// Claimed without running (expired, cancelled, shut down).
const DROPPED: u8 = 2;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the caller waits on.
#[derive(Debug)]
struct Slot<T> {
    result: Option<Result<T, JobError>>,
    /// Set by the first `deliver`, even after the result has been taken.
    delivered: bool,
    /// The caller's `cancel` decided the outcome: the worker that later
    /// meets the job counts it (the handle has no way to reach the pool).
    by_caller: bool,
    waker: Option<Waker>,
    thread: Option<Thread>,
}

/// The part of a job shared by its caller's handle, the queued task and,
/// while it runs, the worker's slot.
#[derive(Debug)]
pub(crate) struct JobShared<T> {
    state: AtomicU8,
    cancelled: AtomicBool,
    /// Set once the outcome is in the slot: what a spinning waiter reads
    /// without taking the lock.
    ready: AtomicBool,
    slot: Mutex<Slot<T>>,
}

impl<T> JobShared<T> {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(QUEUED),
            cancelled: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            slot: Mutex::new(Slot {
                result: None,
                delivered: false,
                by_caller: false,
                waker: None,
                thread: None,
            }),
        }
    }

    /// Hands `result` to the caller unless an outcome was delivered
    /// already, counting it in `outcome` first: a caller that sees its
    /// result also sees it in the pool's stats.
    pub(crate) fn deliver(&self, result: Result<T, JobError>, outcome: &AtomicU64) -> bool {
        self.deliver_as(result, false, Some(outcome)).is_ok()
    }

    /// `deliver`, recording whether the caller's `cancel` decided; on
    /// failure, tells whether the earlier outcome was the caller's.
    fn deliver_as(
        &self,
        result: Result<T, JobError>,
        by_caller: bool,
        outcome: Option<&AtomicU64>,
    ) -> Result<(), bool> {
        let (waker, thread) = {
            let mut slot = lock(&self.slot);
            if slot.delivered {
                return Err(slot.by_caller);
            }
            if let Some(outcome) = outcome {
                outcome.fetch_add(1, Ordering::Relaxed);
            }
            slot.delivered = true;
            slot.by_caller = by_caller;
            slot.result = Some(result);
            self.ready.store(true, Ordering::Release);
            (slot.waker.take(), slot.thread.take())
        };
        // Woken outside the lock: the woken task takes it at once.
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some(thread) = thread {
            thread.unpark();
        }
        Ok(())
    }

    fn is_delivered(&self) -> bool {
        lock(&self.slot).delivered
    }
}

/// The type-erased view of a job that the watchdog, shutdown and the
/// cancellation token use.
pub(crate) trait JobControl: Send + Sync + std::fmt::Debug {
    /// Delivers `error` unless an outcome was delivered already, counting
    /// it in `outcome`.
    fn fail(&self, error: JobError, outcome: &AtomicU64) -> bool;
    /// Fires the job's cancellation token.
    fn cancel(&self);
    /// Whether the token fired.
    fn is_cancelled(&self) -> bool;
}

impl<T: Send + std::fmt::Debug> JobControl for JobShared<T> {
    fn fail(&self, error: JobError, outcome: &AtomicU64) -> bool {
        self.deliver(Err(error), outcome)
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// What became of a task a worker took from the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// It ran and its result reached the caller.
    Completed,
    /// It panicked and `Panicked` reached the caller.
    Panicked,
    /// It ran, but its caller had already been answered (timed out, shut
    /// down): counted by whoever answered.
    Abandoned,
    /// Its caller cancelled it, before or while it ran: counted here, since
    /// the handle cannot reach the pool's counters.
    Cancelled,
}

/// A queued job as the queue and the workers see it.
pub(crate) trait Task: Send {
    /// When the job was accepted.
    fn enqueued_at(&self) -> Instant;
    /// Claims the job without running it and delivers `error`; false if
    /// it was claimed first, which for a job still in the queue means its
    /// caller cancelled it (to be counted as cancelled by whoever holds it).
    fn drop_with(&self, error: JobError, outcome: &AtomicU64) -> bool;
    /// The control a running job registers with its worker's slot.
    fn control(&self) -> Arc<dyn JobControl>;
    /// Claims and runs the job (unless someone claimed it), catching a
    /// panic; `pool` names the job's span. `finished` runs as soon as the
    /// closure returns and the outcome is counted in `counts`, both before
    /// the caller is woken: a caller that has its result sees the worker
    /// idle and the job in every counter and histogram.
    fn run(self: Box<Self>, pool: &str, counts: &SlotCounts, finished: &mut dyn FnMut()) -> Ran;
    /// The concrete type, to hand a refused closure back to its submitter.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

/// The queued form of a closure job.
pub(crate) struct JobCell<F, T> {
    job: Option<F>,
    shared: Arc<JobShared<T>>,
    enqueued_at: Instant,
    span: tracing::Span,
}

impl<F, T> std::fmt::Debug for JobCell<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCell")
            .field("enqueued_at", &self.enqueued_at)
            .finish_non_exhaustive()
    }
}

impl<F, T> JobCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + std::fmt::Debug + 'static,
{
    /// A job and the handle its caller keeps.
    pub(crate) fn new(job: F) -> (Box<Self>, JobHandle<T>) {
        let shared = Arc::new(JobShared::new());
        let handle = JobHandle {
            shared: Arc::clone(&shared),
        };
        let cell = Box::new(Self {
            job: Some(job),
            shared,
            enqueued_at: Instant::now(),
            // The job continues the submitter's trace (and, through
            // tracing-opentelemetry, its W3C trace context).
            span: tracing::Span::current(),
        });
        (cell, handle)
    }

    /// The closure back, for a refused submission.
    pub(crate) fn into_job(mut self) -> F {
        // Taken, so `Drop` leaves the (unreturned) handle alone.
        self.job
            .take()
            .expect("a refused job still holds its closure")
    }
}

impl<F, T> Task for JobCell<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + std::fmt::Debug + 'static,
{
    fn enqueued_at(&self) -> Instant {
        self.enqueued_at
    }

    fn drop_with(&self, error: JobError, outcome: &AtomicU64) -> bool {
        self.shared
            .state
            .compare_exchange(QUEUED, DROPPED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && self.shared.deliver(Err(error), outcome)
    }

    fn control(&self) -> Arc<dyn JobControl> {
        Arc::clone(&self.shared) as Arc<dyn JobControl>
    }

    fn run(
        mut self: Box<Self>,
        pool: &str,
        counts: &SlotCounts,
        finished: &mut dyn FnMut(),
    ) -> Ran {
        if self
            .shared
            .state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Only the caller claims a job that is still in the queue.
            return Ran::Cancelled;
        }
        let job = self
            .job
            .take()
            .expect("a claimed job still holds its closure");
        let span = tracing::info_span!(
            parent: &self.span,
            "cortex_worker.job",
            pool,
        );
        let outcome = span.in_scope(|| catch_unwind(AssertUnwindSafe(job)));
        finished();
        let (result, ran, counter) = match outcome {
            Ok(value) => (Ok(value), Ran::Completed, &counts.completed),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                tracing::warn!(pool, panic = %message, "worker job panicked");
                (
                    Err(JobError::Panicked(message)),
                    Ran::Panicked,
                    &counts.panicked,
                )
            }
        };
        match self.shared.deliver_as(result, false, Some(counter)) {
            Ok(()) => ran,
            Err(true) => Ran::Cancelled,
            Err(false) => Ran::Abandoned,
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl<F, T> Drop for JobCell<F, T> {
    fn drop(&mut self) {
        // A job dropped unclaimed (the pool went away with it queued) still
        // answers its caller; a claimed one was answered by its claimant.
        if self.job.is_some() && self.shared.state.load(Ordering::Acquire) == QUEUED {
            let mut slot = lock(&self.shared.slot);
            if !slot.delivered {
                slot.delivered = true;
                slot.result = Some(Err(JobError::ShuttingDown));
                self.shared.ready.store(true, Ordering::Release);
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
                if let Some(thread) = slot.thread.take() {
                    thread.unpark();
                }
            }
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// The caller's side of a submitted job: `.await` it from async code, or
/// [`wait`](JobHandle::wait) from a plain thread.
///
/// Dropping the handle does not cancel the job: it still runs (like
/// tokio's `JoinHandle`). Call [`cancel`](JobHandle::cancel) to stop it.
///
/// ```
/// use cortex_workers::WorkerPool;
///
/// let pool = WorkerPool::builder("doc").workers(1).build()?;
/// let handle = pool.try_submit(|| 6 * 7).expect("the queue has room");
/// assert_eq!(handle.wait()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "a job handle does nothing unless awaited or waited on; dropping it lets the job run detached"]
pub struct JobHandle<T> {
    shared: Arc<JobShared<T>>,
}

impl<T> JobHandle<T> {
    /// Blocks this thread until the job's outcome. Do not call it on an
    /// async runtime's thread: `.await` the handle there.
    pub fn wait(self) -> Result<T, JobError> {
        // A short job's result often arrives within microseconds: spin,
        // then yield, before paying for a park and an unpark (crossbeam's
        // own `recv` does the same).
        let backoff = crossbeam_utils::Backoff::new();
        while !self.shared.ready.load(Ordering::Acquire) && !backoff.is_completed() {
            backoff.snooze();
        }
        loop {
            {
                let mut slot = lock(&self.shared.slot);
                if let Some(result) = slot.result.take() {
                    return result;
                }
                slot.thread = Some(std::thread::current());
            }
            std::thread::park();
        }
    }

    /// Like [`wait`](Self::wait), for at most `timeout`; on expiry the
    /// handle comes back and the job goes on.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<T, JobError>, Self> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut slot = lock(&self.shared.slot);
                if let Some(result) = slot.result.take() {
                    return Ok(result);
                }
                slot.thread = Some(std::thread::current());
            }
            let now = Instant::now();
            if now >= deadline {
                lock(&self.shared.slot).thread = None;
                return Err(self);
            }
            std::thread::park_timeout(deadline - now);
        }
    }

    /// Whether the outcome is in (so `wait` returns at once).
    pub fn is_finished(&self) -> bool {
        self.shared.is_delivered()
    }

    /// Cancels the job. Not started yet: it never runs and the caller gets
    /// [`JobError::Cancelled`]. Running: its [`CancellationToken`] fires and
    /// the caller gets `Cancelled` at once; the thread stays busy until the
    /// job returns (a cooperative job checks the token). The job counts as
    /// cancelled in the pool's stats once a worker has met it. Returns
    /// whether this call decided the outcome.
    pub fn cancel(&self) -> bool
    where
        T: Send + std::fmt::Debug + 'static,
    {
        self.shared.cancel();
        // Claim a queued job so no worker starts it; a running one is
        // answered now and its late result dropped.
        let _ = self.shared.state.compare_exchange(
            QUEUED,
            DROPPED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.shared
            .deliver_as(Err(JobError::Cancelled), true, None)
            .is_ok()
    }

    /// This handle as a future that cancels the job if it is dropped before
    /// the outcome: for a request handler whose client may hang up (a
    /// queued job then never runs; a running one sees its token).
    pub fn cancel_on_drop(self) -> CancelOnDrop<T>
    where
        T: Send + std::fmt::Debug + 'static,
    {
        CancelOnDrop(Some(self))
    }

    /// The token the job sees through [`crate::cancellation_token`].
    pub fn cancellation_token(&self) -> CancellationToken
    where
        T: Send + std::fmt::Debug + 'static,
    {
        CancellationToken::new(Arc::clone(&self.shared) as Arc<dyn JobControl>)
    }
}

impl<T> Future for JobHandle<T> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = lock(&self.shared.slot);
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result);
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// A [`JobHandle`] that cancels its job when dropped before the outcome;
/// from [`JobHandle::cancel_on_drop`].
///
/// ```
/// use cortex_workers::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = WorkerPool::builder("doc").workers(1).build()?;
/// let answer = pool.try_submit(|| 7).expect("room").cancel_on_drop().await?;
/// assert_eq!(answer, 7);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited; dropping this one cancels the job"]
pub struct CancelOnDrop<T: Send + std::fmt::Debug + 'static>(Option<JobHandle<T>>);

impl<T: Send + std::fmt::Debug + 'static> Future for CancelOnDrop<T> {
    type Output = Result<T, JobError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(handle) = self.0.as_mut() else {
            return Poll::Ready(Err(JobError::Cancelled));
        };
        let outcome = Pin::new(handle).poll(cx);
        if outcome.is_ready() {
            self.0 = None;
        }
        outcome
    }
}

impl<T: Send + std::fmt::Debug + 'static> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.cancel();
        }
    }
}
