//! A worker thread: take a job, run it under `catch_unwind`, count it,
//! repeat; leave on `Stop`, on `stop_now`, or as a zombie nobody needs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::cancel;
use crate::job::{JobControl, Ran, lock};
use crate::shared::{Message, Running, Shared, WorkerSlot};

/// The body of every worker thread.
pub(crate) fn run(shared: &Arc<Shared>, slot: &Arc<WorkerSlot>) {
    // A job's panic is caught in `Task::run`; this guard is the sentinel
    // for a panic anywhere else on this thread (a bug in the pool itself):
    // the table is still updated, so no capacity is lost silently.
    let _exit = ExitGuard { shared, slot };
    let ttl = shared.settings.queue_ttl;
    let run_timeout = shared.settings.run_timeout;
    loop {
        if shared.stop_now.load(Ordering::Acquire) {
            return;
        }
        let Some(message) = shared.take() else {
            return;
        };
        let task = match message {
            Message::Job(task) => task,
            Message::Stop => return,
            Message::Nudge => continue,
        };
        shared.room_freed();
        let started = Instant::now();
        let waited = started.saturating_duration_since(task.enqueued_at());
        if ttl.is_some_and(|ttl| waited > ttl) {
            // Never run a job past its TTL, even when the sweep missed it.
            if !task.drop_with(crate::JobError::Expired, &slot.counts.expired) {
                // Cancelled by its caller while queued.
                slot.counts.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let control: Arc<dyn JobControl> = task.control();
        let deadline = run_timeout.map(|timeout| started + timeout);
        *lock(&slot.running) = Some(Running {
            control: Arc::clone(&control),
            deadline,
            abandoned_at: None,
        });
        if let Some(deadline) = deadline {
            shared.watch_deadline(slot, deadline);
        }
        let counts = &slot.counts;
        // Bookkeeping of the finished job, done before its caller wakes.
        let mut finished = || {
            let ran_for = started.elapsed();
            *lock(&slot.running) = None;
            slot.deadline_nanos.store(0, Ordering::Relaxed);
            counts
                .wait_nanos
                .fetch_add(nanos(waited), Ordering::Relaxed);
            counts
                .run_nanos
                .fetch_add(nanos(ran_for), Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            if let Some(histograms) = shared.histograms.get() {
                histograms.wait.observe(waited.as_secs_f64());
                histograms.run.observe(ran_for.as_secs_f64());
            }
        };
        let ran = {
            let _current = cancel::enter(control);
            task.run(&shared.name, counts, &mut finished)
        };
        if ran == Ran::Cancelled {
            // The caller's `cancel` answered it; the handle cannot reach
            // the counters, so the worker counts it.
            counts.cancelled.fetch_add(1, Ordering::Relaxed);
            if lock(&slot.running).is_some() {
                // Claimed before it started: `finished` never ran.
                *lock(&slot.running) = None;
                slot.deadline_nanos.store(0, Ordering::Relaxed);
            }
        }
        // The watchdog marks a zombie only while `running` holds its job,
        // under that lock; we cleared it under the same lock, so a mark
        // made in time is visible here.
        if slot.zombie.load(Ordering::Acquire) && !rejoin(shared, slot) {
            return;
        }
    }
}

/// A zombie whose job finally returned: it takes back a worker's place if
/// the pool runs short (zombies past the cap were not replaced), else it
/// exits. Returns whether it stays.
fn rejoin(shared: &Shared, slot: &WorkerSlot) -> bool {
    let mut state = lock(&shared.state);
    if state.deficit > 0 && !state.stopping {
        state.deficit -= 1;
        state.zombies -= 1;
        state.live += 1;
        slot.zombie.store(false, Ordering::Release);
        true
    } else {
        false
    }
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Removes the thread from the table when it exits, however it exits.
struct ExitGuard<'a> {
    shared: &'a Arc<Shared>,
    slot: &'a Arc<WorkerSlot>,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        if let Some(index) = state
            .slots
            .iter()
            .position(|slot| Arc::ptr_eq(slot, self.slot))
        {
            state.slots.swap_remove(index);
        }
        state.retired.add(&self.slot.counts);
        self.slot.exited.store(true, Ordering::Release);
        if self.slot.zombie.load(Ordering::Acquire) {
            state.zombies -= 1;
        } else {
            state.live -= 1;
            if std::thread::panicking() && !state.stopping {
                // The sentinel: a worker lost to a bug is replaced.
                tracing::error!(
                    pool = &*self.shared.name,
                    "a worker thread panicked outside a job; replacing it"
                );
                if let Err(error) = self.shared.spawn_worker(&mut state) {
                    tracing::error!(pool = &*self.shared.name, %error, "no replacement worker");
                    state.deficit += 1;
                }
            }
        }
        drop(state);
        self.shared.exited.notify_all();
    }
}
