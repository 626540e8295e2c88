//! Winding a pool down: stop intake, drain or cancel, wait for the threads,
//! report what was cut.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::JobError;
use crate::job::lock;
use crate::shared::{Message, Shared};

/// How [`WorkerPool::shutdown`](crate::WorkerPool::shutdown) treats the
/// work in hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shutdown {
    /// Finish every queued and running job, for up to `timeout`; then do
    /// what `Now` does with what is left.
    Graceful {
        /// How long the drain may take.
        timeout: Duration,
    },
    /// Answer every queued job `ShuttingDown` unrun, answer every running
    /// job `ShuttingDown` and fire its token; threads get the pool's
    /// `grace` to return.
    Now,
}

/// What a shutdown did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Every queued and running job finished before the deadline.
    pub drained: bool,
    /// Queued jobs answered `ShuttingDown` without running.
    pub cancelled_queued: u64,
    /// Running jobs answered `ShuttingDown` (their tokens fired).
    pub cancelled_running: u64,
    /// Threads still running when the report was made: jobs that ignored
    /// their cancellation token past the grace period, and zombies. An OS
    /// thread cannot be killed; these are detached and exit when their
    /// job returns. 0 unless a job ignores cancellation.
    pub detached_threads: usize,
    /// How long the shutdown took.
    #[serde(serialize_with = "serialize_seconds")]
    pub elapsed: Duration,
}

fn serialize_seconds<S: serde::Serializer>(
    value: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

/// Shuts the pool down once; later calls wait for and return that report.
pub(crate) fn run(shared: &Shared, mode: Shutdown) -> ShutdownReport {
    let mut once = lock(&shared.shutdown_report);
    if let Some(report) = once.as_ref() {
        return report.clone();
    }
    let report = shut_down(shared, mode);
    *once = Some(report.clone());
    report
}

fn shut_down(shared: &Shared, mode: Shutdown) -> ShutdownReport {
    let started = Instant::now();
    lock(&shared.state).stopping = true;
    shared.close_intake();
    let mut drained = false;
    let mut cancelled_queued = 0;
    let mut cancelled_running = 0;
    if let Shutdown::Graceful { timeout } = mode {
        let deadline = started.checked_add(timeout);
        // One `Stop` per worker, behind every queued job: each worker
        // finishes the queue, takes one and exits.
        let live = lock(&shared.state).live;
        for _ in 0..live {
            let sent = match deadline {
                Some(deadline) => shared.tx.send_deadline(Message::Stop, deadline).is_ok(),
                None => shared.tx.send(Message::Stop).is_ok(),
            };
            if !sent {
                break;
            }
        }
        drained = wait_for_workers(shared, deadline, false);
        if drained {
            // Zombies hold jobs whose callers were answered, but they are
            // threads of this pool: within the timeout, wait for them too.
            wait_for_workers(shared, deadline, true);
        }
    }
    if !drained {
        shared.stop_now.store(true, Ordering::Release);
        cancelled_queued += shared.drain_queue();
        cancelled_running += shared.abandon_running(&JobError::ShuttingDown);
        // Idle workers sleep on the queue: wake each with a `Stop`; busy
        // ones see `stop_now` when their job returns.
        let grace_deadline = Instant::now() + shared.settings.grace;
        loop {
            let live = lock(&shared.state).live;
            if live == 0 {
                break;
            }
            for _ in 0..live {
                if shared.tx.try_send(Message::Stop).is_err() {
                    break;
                }
            }
            let step = (Instant::now() + Duration::from_millis(20)).min(grace_deadline);
            if wait_for_workers(shared, Some(step), false) || Instant::now() >= grace_deadline {
                break;
            }
        }
    }
    // Whatever is left (a job the TTL sweep held in front, markers).
    let stragglers = shared.drain_queue();
    cancelled_queued += stragglers;
    drained &= stragglers == 0;
    let detached_threads = stop_threads(shared);
    let report = ShutdownReport {
        drained,
        cancelled_queued,
        cancelled_running,
        detached_threads,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        pool = &*shared.name,
        drained,
        cancelled_queued,
        cancelled_running,
        detached_threads,
        "worker pool shut down"
    );
    report
}

/// Waits until no worker takes jobs (and, with `zombies`, no zombie runs)
/// or `deadline`.
fn wait_for_workers(shared: &Shared, deadline: Option<Instant>, zombies: bool) -> bool {
    let mut state = lock(&shared.state);
    while state.live > 0 || (zombies && state.zombies > 0) {
        state = match deadline {
            None => shared
                .exited
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return false;
                }
                shared
                    .exited
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
            }
        };
    }
    true
}

/// Stops the watchdog, joins every thread that has exited and returns how
/// many still run (detached).
fn stop_threads(shared: &Shared) -> usize {
    shared.watchdog_stop.store(true, Ordering::Release);
    let watchdog = lock(&shared.state).watchdog.take();
    if let Some(watchdog) = watchdog {
        watchdog.thread().unpark();
        let _ = watchdog.join();
    }
    let threads = std::mem::take(&mut lock(&shared.state).threads);
    let mut detached = Vec::new();
    for (slot, thread) in threads {
        // A thread that has left the table is past its last job: joining
        // it waits only for its exit.
        if slot.exited.load(Ordering::Acquire) {
            let _ = thread.join();
        } else {
            detached.push((slot, thread));
        }
    }
    let count = detached.len();
    if count > 0 {
        tracing::warn!(
            pool = &*shared.name,
            threads = count,
            "threads still run jobs that ignored cancellation; detached"
        );
    }
    // Kept, so a later report or `stats` still sees them until they exit.
    lock(&shared.state).threads = detached;
    count
}
