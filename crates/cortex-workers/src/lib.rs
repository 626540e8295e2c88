//! A pool of real OS threads for CPU-bound work that runs beside an async
//! server: hashing, image filters, compression, parsing, WebAssembly.
//!
//! Tokio's `spawn_blocking` grows to 512 threads and then queues without
//! bound, and a blocking task "cannot be aborted"; rayon has no queue bound
//! and aborts the process on a panic without a handler; `threadpool`
//! queues without bound. [`WorkerPool`] adds what a server needs:
//!
//! - **A bounded queue with backpressure** (crossbeam's array queue):
//!   [`try_submit`](WorkerPool::try_submit) hands the job back in
//!   [`SubmitError::QueueFull`] (nothing is lost), [`submit`](WorkerPool::submit)
//!   waits asynchronously for room, [`submit_timeout`](WorkerPool::submit_timeout)
//!   for at most a while, [`submit_blocking`](WorkerPool::submit_blocking)
//!   from plain threads. Default capacity: 4 jobs per worker.
//! - **Honest timeouts.** `queue_ttl`: a job not started in time is
//!   dropped unrun with [`JobError::Expired`] (the watchdog sweeps the
//!   queue head every quarter TTL, so callers hear within 1.25 TTL).
//!   `run_timeout`, counted from the job's start: the caller gets
//!   [`JobError::TimedOut`] at once and the job's [`CancellationToken`]
//!   fires; a job that has not returned within `grace` has its thread
//!   detached as a **zombie and replaced**, so capacity is restored. At
//!   most `max_zombies` (default: the worker count) are replaced; past
//!   that the pool runs smaller, reports Down once no worker is left, and
//!   a zombie whose job returns takes back its place.
//! - **Panic isolation**: a panicking job answers [`JobError::Panicked`]
//!   with the message; the thread carries on. The process never aborts.
//! - **Stats** ([`WorkerPool::stats`]) with exact accounting, Prometheus
//!   series (feature `metrics`) and a health check (feature `health`).
//! - **Shutdown** ([`WorkerPool::shutdown`]): `Graceful { timeout }`
//!   finishes queued and running jobs, `Now` answers them
//!   `ShuttingDown`; the [`ShutdownReport`] says what was cut, and every
//!   thread that can be joined is joined before it returns.
//! - **Tracing**: each job runs in a `cortex_worker.job` span whose parent
//!   is the submitter's span, so its trace continues on the worker.
//!
//! ```
//! use std::time::Duration;
//! use cortex_workers::{JobError, Shutdown, WorkerPool};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = WorkerPool::builder("compute")
//!     .workers(2)
//!     .queue_capacity(8)
//!     .run_timeout(Duration::from_secs(5))
//!     .build()?;
//!
//! // Async code awaits; plain threads call `wait()`.
//! let sum = pool.submit(|| (1..=100_u64).sum::<u64>()).await?.await?;
//! assert_eq!(sum, 5050);
//!
//! // A panic is the job's error, not the thread's end.
//! let failed = pool.submit(|| -> u32 { panic!("bad input") }).await?.await;
//! assert_eq!(failed, Err(JobError::Panicked("bad input".into())));
//!
//! let report = pool.shutdown(Shutdown::Graceful { timeout: Duration::from_secs(5) }).await;
//! assert!(report.drained);
//! let stats = pool.stats();
//! assert_eq!(stats.submitted, stats.completed + stats.panicked);
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `metrics` | no | `cortex_metrics::RegisterMetrics` for [`WorkerPool`]: `cortex_worker_*` series (workers, busy, zombies, queue, outcomes, wait and run histograms) |
//! | `health` | no | `WorkerPool::health_check`: Degraded while the queue stays full or zombies run, Down when no worker is left or the pool shuts down |
//! | `actor` | no | `WorkerActor`: an actor of `cortex-actor` whose messages run on N dedicated threads, each with its own state |
//! | `axum` | no | `IntoResponse` for [`SubmitError`] (429/503) and [`JobError`] as RFC 9457 problem+json |
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version`.

#[cfg(feature = "actor")]
mod actor;
mod cancel;
mod config;
mod error;
#[cfg(feature = "health")]
mod health;
mod job;
#[cfg(feature = "metrics")]
mod metrics;
mod pool;
mod shared;
mod shutdown;
mod stats;
mod watchdog;
mod worker;

#[cfg(feature = "actor")]
pub use actor::{Offload, OffloadError, OffloadExt, OffloadHandle, SyncHandler, WorkerActor};
pub use cancel::{CancellationToken, cancellation_token, is_cancelled};
pub use config::{DEFAULT_GRACE, DEFAULT_QUEUE_PER_WORKER, WorkerPoolBuilder, WorkerPoolConfig};
pub use error::{JobError, SubmitError, WorkersError};
#[cfg(feature = "health")]
pub use health::WorkerPoolHealthCheck;
pub use job::{CancelOnDrop, JobHandle};
pub use pool::WorkerPool;
pub use shutdown::{Shutdown, ShutdownReport};
pub use stats::WorkerPoolStats;

/// Compiles the code blocks of `docs/workers.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/workers.md")]
pub struct WorkersGuideDoctests;
