//! A snapshot of a pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::job::lock;
use crate::shared::{RetiredCounts, Shared};

/// Gauges and counters of a [`WorkerPool`](crate::WorkerPool).
///
/// Every accepted job ends in exactly one outcome, so once nothing is
/// queued or running:
/// `submitted == completed + panicked + timed_out + expired + cancelled + rejected`.
/// A job its caller cancelled is counted when a worker (or shutdown) meets
/// it in the queue or it returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkerPoolStats {
    /// The pool's name.
    pub name: String,
    /// Threads taking jobs.
    pub workers: usize,
    /// Workers running a job now.
    pub busy: usize,
    /// Workers waiting for a job.
    pub idle: usize,
    /// Detached threads still running a job that outlived its timeout.
    pub zombies: usize,
    /// Jobs waiting for a worker.
    pub queue_len: usize,
    /// The queue's capacity.
    pub queue_capacity: usize,
    /// Submissions: accepted plus rejected.
    pub submitted: u64,
    /// Jobs that returned a value to their caller.
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs answered `TimedOut`.
    pub timed_out: u64,
    /// Jobs dropped unrun past the queue TTL.
    pub expired: u64,
    /// Jobs cancelled by their caller or by shutdown.
    pub cancelled: u64,
    /// Submissions refused (queue full, wait timed out, shutting down).
    pub rejected: u64,
    /// Zombie threads replaced by new ones.
    pub replaced: u64,
    /// Seconds jobs waited in the queue, summed.
    pub queue_wait_seconds_total: f64,
    /// Seconds jobs ran, summed.
    pub run_seconds_total: f64,
    /// The share of worker time spent running jobs since the pool started
    /// (0 to 1): `run_seconds_total / (workers × uptime)`.
    pub utilization: f64,
}

impl WorkerPoolStats {
    pub(crate) fn read(shared: &Shared) -> Self {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (mut totals, workers, zombies, busy) = {
            let state = lock(&shared.state);
            let mut totals: RetiredCounts = state.retired;
            let mut busy = 0;
            for slot in &state.slots {
                totals.add(&slot.counts);
                if !slot.zombie.load(Ordering::Acquire) && lock(&slot.running).is_some() {
                    busy += 1;
                }
            }
            (totals, state.live, state.zombies, busy)
        };
        let counts = &shared.counts;
        totals.expired += load(&counts.expired);
        totals.cancelled += load(&counts.cancelled);
        let run_seconds_total = seconds(totals.run_nanos);
        let uptime = shared.started_at.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // worker counts are small
        let capacity_seconds = uptime * shared.settings.workers as f64;
        let utilization = if capacity_seconds > 0.0 {
            (run_seconds_total / capacity_seconds).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self {
            name: shared.name.to_string(),
            workers,
            busy,
            idle: workers.saturating_sub(busy),
            zombies,
            queue_len: shared.queue_len(),
            queue_capacity: shared.settings.queue_capacity,
            submitted: load(&counts.submitted),
            completed: totals.completed,
            panicked: totals.panicked,
            timed_out: load(&counts.timed_out),
            expired: totals.expired,
            cancelled: totals.cancelled,
            rejected: load(&counts.rejected),
            replaced: load(&counts.replaced),
            queue_wait_seconds_total: seconds(totals.wait_nanos),
            run_seconds_total,
            utilization,
        }
    }

    /// Jobs with no outcome yet (queued or running):
    /// `submitted − (completed + panicked + timed_out + expired + cancelled + rejected)`.
    pub fn in_flight(&self) -> u64 {
        self.submitted.saturating_sub(
            self.completed
                + self.panicked
                + self.timed_out
                + self.expired
                + self.cancelled
                + self.rejected,
        )
    }
}

fn seconds(nanos: u64) -> f64 {
    Duration::from_nanos(nanos).as_secs_f64()
}
