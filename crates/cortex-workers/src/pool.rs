//! [`WorkerPool`]: submission, stats and the handle's lifetime.

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use crate::config::{Settings, WorkerPoolBuilder};
use crate::error::{SubmitError, WorkersError};
use crate::job::{JobCell, JobHandle, Task, lock};
use crate::shared::{Refusal, Shared};
use crate::shutdown::{Shutdown, ShutdownReport};
use crate::stats::WorkerPoolStats;

/// A pool of OS threads for CPU-bound work, fed through a bounded queue.
///
/// Cheap to clone (all clones are the same pool). When the last clone is
/// dropped without [`shutdown`](Self::shutdown), the pool finishes what is
/// queued and its threads exit on their own.
///
/// ```
/// use cortex_workers::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = WorkerPool::builder("images").workers(2).build()?;
/// // From async code: wait for room, then for the result.
/// let digest = pool.submit(|| (0..1_000_u64).sum::<u64>()).await?.await?;
/// assert_eq!(digest, 499_500);
/// let stats = pool.stats();
/// assert_eq!((stats.submitted, stats.completed), (1, 1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WorkerPool {
    handle: Arc<PoolHandle>,
}

/// Owns the pool for its users; dropping the last one winds it down.
#[derive(Debug)]
struct PoolHandle {
    shared: Arc<Shared>,
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        if self.shared.is_closed() {
            return;
        }
        // Nobody can submit any more: let the queue drain on a helper
        // thread, so dropping never blocks the caller.
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-drop", shared.settings.thread_name))
            .spawn(move || {
                crate::shutdown::run(
                    &shared,
                    Shutdown::Graceful {
                        timeout: Duration::MAX,
                    },
                )
            });
        if spawned.is_err() {
            crate::shutdown::run(&self.shared, Shutdown::Now);
        }
    }
}

impl WorkerPool {
    /// Starts configuring a pool; `name` labels its series, spans and
    /// errors.
    pub fn builder(name: impl Into<String>) -> WorkerPoolBuilder {
        WorkerPoolBuilder::new(name)
    }

    pub(crate) fn start(name: String, settings: Settings) -> Result<Self, WorkersError> {
        let watched = settings.run_timeout.is_some() || settings.queue_ttl.is_some();
        let shared = Arc::new(Shared::new(name, settings));
        {
            let mut state = lock(&shared.state);
            for _ in 0..shared.settings.workers {
                if let Err(error) = shared.spawn_worker(&mut state) {
                    drop(state);
                    crate::shutdown::run(&shared, Shutdown::Now);
                    return Err(error);
                }
            }
        }
        if watched {
            let watchdog_shared = Arc::clone(&shared);
            let watchdog = std::thread::Builder::new()
                .name(format!("{}-watchdog", shared.settings.thread_name))
                .spawn(move || crate::watchdog::run(&watchdog_shared))
                .map_err(|source| WorkersError::Spawn {
                    pool: shared.name.to_string(),
                    source,
                });
            match watchdog {
                Ok(thread) => {
                    let _ = shared.watchdog.set(thread.thread().clone());
                    lock(&shared.state).watchdog = Some(thread);
                }
                Err(error) => {
                    crate::shutdown::run(&shared, Shutdown::Now);
                    return Err(error);
                }
            }
        }
        Ok(Self {
            handle: Arc::new(PoolHandle { shared }),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// Queues `job` if there is room, without waiting. A full queue or a
    /// closing pool hands the job back in the error.
    pub fn try_submit<F, T>(&self, job: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + std::fmt::Debug + 'static,
    {
        let shared = self.shared();
        let (cell, handle) = JobCell::new(job);
        match shared.enqueue(cell) {
            Ok(()) => {
                shared.counts.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(handle)
            }
            Err((task, refusal)) => Err(self.refuse::<F, T>(task, refusal, false)),
        }
    }

    /// Queues `job`, waiting (asynchronously) while the queue is full.
    /// Fails only when the pool shuts down; then the job comes back.
    /// Dropping this future before it resolves drops the job unsubmitted.
    pub async fn submit<F, T>(&self, job: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + std::fmt::Debug + 'static,
    {
        self.submit_until(job, None).await
    }

    /// [`submit`](Self::submit), waiting at most `timeout` for room; then
    /// [`SubmitError::TimedOut`] with the job. Needs a Tokio runtime with
    /// the time driver (the timer).
    pub async fn submit_timeout<F, T>(
        &self,
        job: F,
        timeout: Duration,
    ) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + std::fmt::Debug + 'static,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        self.submit_until(job, Some(deadline)).await
    }

    async fn submit_until<F, T>(
        &self,
        job: F,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + std::fmt::Debug + 'static,
    {
        let shared = self.shared();
        let (cell, handle) = JobCell::new(job);
        let mut task: Box<dyn Task> = cell;
        loop {
            match shared.enqueue(task) {
                Ok(()) => break,
                Err((returned, Refusal::Full)) => task = returned,
                Err((returned, Refusal::Closed)) => {
                    return Err(self.refuse::<F, T>(returned, Refusal::Closed, false));
                }
            }
            // Register before retrying, so a worker that frees room after
            // the retry wakes us (tokio's `Notified::enable`).
            let notified = shared.async_room.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let waiting = WaiterCount::enter(&shared.async_waiters);
            match shared.enqueue(task) {
                Ok(()) => break,
                Err((returned, Refusal::Full)) => task = returned,
                Err((returned, Refusal::Closed)) => {
                    return Err(self.refuse::<F, T>(returned, Refusal::Closed, false));
                }
            }
            let woken = match deadline {
                None => {
                    notified.await;
                    true
                }
                Some(deadline) => tokio::time::timeout_at(deadline, notified).await.is_ok(),
            };
            drop(waiting);
            if !woken {
                return Err(self.refuse::<F, T>(task, Refusal::Full, true));
            }
        }
        shared.counts.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(handle)
    }

    /// Queues `job`, blocking this thread while the queue is full, for at
    /// most `timeout` (`None`: until there is room or the pool shuts down).
    /// For plain threads; async code uses [`submit`](Self::submit).
    pub fn submit_blocking<F, T>(
        &self,
        job: F,
        timeout: Option<Duration>,
    ) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + std::fmt::Debug + 'static,
    {
        let shared = self.shared();
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let (cell, handle) = JobCell::new(job);
        let mut task: Box<dyn Task> = cell;
        let (room_lock, room) = &shared.blocking_room;
        loop {
            let guard = lock(room_lock);
            // Counted under the lock a freeing worker takes to notify: it
            // cannot notify between our retry and our wait.
            let waiting = WaiterCount::enter(&shared.blocking_waiters);
            match shared.enqueue(task) {
                Ok(()) => break,
                Err((returned, Refusal::Full)) => task = returned,
                Err((returned, Refusal::Closed)) => {
                    drop(waiting);
                    drop(guard);
                    return Err(self.refuse::<F, T>(returned, Refusal::Closed, false));
                }
            }
            let wait = match deadline {
                None => Duration::from_secs(3600),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        drop(waiting);
                        drop(guard);
                        return Err(self.refuse::<F, T>(task, Refusal::Full, true));
                    }
                    deadline - now
                }
            };
            let _ = room
                .wait_timeout(guard, wait)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            drop(waiting);
        }
        shared.counts.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(handle)
    }

    /// Counts a refusal and hands the closure back.
    fn refuse<F, T>(&self, task: Box<dyn Task>, refusal: Refusal, waited: bool) -> SubmitError<F>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + std::fmt::Debug + 'static,
    {
        let counts = &self.shared().counts;
        counts.submitted.fetch_add(1, Ordering::Relaxed);
        counts.rejected.fetch_add(1, Ordering::Relaxed);
        let job = task
            .into_any()
            .downcast::<JobCell<F, T>>()
            .expect("a refused task is the cell it was built as")
            .into_job();
        match refusal {
            Refusal::Closed => SubmitError::ShuttingDown(job),
            Refusal::Full if waited => SubmitError::TimedOut(job),
            Refusal::Full => SubmitError::QueueFull(job),
        }
    }

    /// A snapshot of the pool's counters and gauges.
    pub fn stats(&self) -> WorkerPoolStats {
        WorkerPoolStats::read(self.shared())
    }

    /// Stops intake, lets queued and running jobs finish (`Graceful`, up
    /// to its timeout) or cancels them (`Now`), and waits for the threads.
    /// Runs on a helper thread, so it does not block the async runtime.
    /// Calling it again returns the first call's report.
    pub async fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        let shared = Arc::clone(self.shared());
        let (cell, handle) = JobCell::new(move || crate::shutdown::run(&shared, mode));
        let task: Box<dyn Task> = cell;
        let spawned = std::thread::Builder::new()
            .name(format!("{}-shutdown", self.shared().settings.thread_name))
            .spawn(move || {
                task.run(
                    "shutdown",
                    &crate::shared::SlotCounts::default(),
                    &mut || (),
                )
            });
        if spawned.is_err() {
            return crate::shutdown::run(self.shared(), mode);
        }
        match handle.await {
            Ok(report) => report,
            // `run` does not panic; a report is still owed.
            Err(_) => crate::shutdown::run(self.shared(), mode),
        }
    }

    /// [`shutdown`](Self::shutdown) for plain threads: blocks this thread.
    pub fn shutdown_blocking(&self, mode: Shutdown) -> ShutdownReport {
        crate::shutdown::run(self.shared(), mode)
    }

    /// `shutdown_blocking(Shutdown::Now)`: every queued job gets
    /// `ShuttingDown`, running jobs are answered `ShuttingDown` and their
    /// tokens fire; threads get the grace period to return.
    pub fn shutdown_now(&self) -> ShutdownReport {
        self.shutdown_blocking(Shutdown::Now)
    }

    /// Whether intake is closed (shutdown started).
    pub fn is_shutting_down(&self) -> bool {
        self.shared().is_closed()
    }
}

/// Counts a waiting submitter for its scope.
struct WaiterCount<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> WaiterCount<'a> {
    fn enter(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `Shared::room_freed`.
        fence(Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for WaiterCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
