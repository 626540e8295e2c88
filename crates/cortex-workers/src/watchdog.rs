//! The watchdog thread: run timeouts, zombie replacement and the queue-TTL
//! sweep. It exists only when the pool has a `run_timeout` or `queue_ttl`,
//! and sleeps until the earliest deadline it knows of (a worker that starts
//! a job with an earlier one unparks it).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;

use crate::error::JobError;
use crate::job::lock;
use crate::shared::{Message, Shared, WorkerSlot};

pub(crate) fn run(shared: &Arc<Shared>) {
    while !shared.watchdog_stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let mut next = check_running(shared, now);
        if let Some(ttl) = shared.settings.queue_ttl {
            let sweep_at = if sweep(shared, ttl, now) {
                now + Shared::sweep_period(ttl)
            } else {
                // Empty queue: nothing can expire before a full TTL.
                now + ttl
            };
            next = Some(next.map_or(sweep_at, |next| next.min(sweep_at)));
        }
        let until = next.map_or(u64::MAX, |next| shared.nanos_since_start(next));
        shared.watchdog_until.store(until, Ordering::SeqCst);
        // A worker may have started a job with an earlier deadline between
        // the scan and the store above: look again before sleeping.
        let earlier = lock(&shared.state).slots.iter().any(|slot| {
            let deadline = slot.deadline_nanos.load(Ordering::SeqCst);
            deadline != 0 && deadline < until
        });
        if !earlier && !shared.watchdog_stop.load(Ordering::Acquire) {
            match next {
                Some(next) => {
                    std::thread::park_timeout(next.saturating_duration_since(Instant::now()))
                }
                None => std::thread::park(),
            }
        }
        shared.watchdog_until.store(0, Ordering::SeqCst);
    }
}

/// Times out jobs past their deadline and turns threads whose abandoned
/// job outlived the grace period into zombies. Returns the next instant
/// something is due.
fn check_running(shared: &Arc<Shared>, now: Instant) -> Option<Instant> {
    let grace = shared.settings.grace;
    let slots: Vec<Arc<WorkerSlot>> = lock(&shared.state).slots.clone();
    let mut next: Option<Instant> = None;
    let mut soonest = |at: Instant| next = Some(next.map_or(at, |next| next.min(at)));
    let mut zombies = Vec::new();
    for slot in slots {
        if slot.zombie.load(Ordering::Acquire) {
            continue;
        }
        let mut running = lock(&slot.running);
        let Some(job) = running.as_mut() else {
            continue;
        };
        if job.abandoned_at.is_none()
            && let Some(deadline) = job.deadline
        {
            if now < deadline {
                soonest(deadline);
                continue;
            }
            job.control.cancel();
            let after = shared.settings.run_timeout.unwrap_or_default();
            job.control
                .fail(JobError::TimedOut { after }, &shared.counts.timed_out);
            job.abandoned_at = Some(now);
            slot.deadline_nanos.store(0, Ordering::SeqCst);
        }
        if let Some(abandoned_at) = job.abandoned_at {
            let due = abandoned_at + grace;
            if now >= due {
                zombies.push(Arc::clone(&slot));
            } else {
                soonest(due);
            }
        }
    }
    for slot in zombies {
        replace_zombie(shared, &slot, now);
    }
    next
}

/// Marks `slot`'s thread a zombie if its abandoned job is still running
/// past the grace period, accounts for it and restores capacity with a new
/// thread, unless the zombie cap is reached or the pool is stopping.
fn replace_zombie(shared: &Arc<Shared>, slot: &WorkerSlot, now: Instant) {
    // State lock, then the slot's: the order `stats` takes them in. The
    // mark and the accounting happen together, so a worker whose job
    // returns right now either sees the mark after the table counts it a
    // zombie, or clears its job first and is not marked.
    let mut state = lock(&shared.state);
    {
        let running = lock(&slot.running);
        let due = running.as_ref().is_some_and(|job| {
            job.abandoned_at
                .is_some_and(|abandoned_at| now >= abandoned_at + shared.settings.grace)
        });
        if !due || slot.zombie.load(Ordering::Acquire) {
            return;
        }
        slot.zombie.store(true, Ordering::Release);
    }
    state.live -= 1;
    state.zombies += 1;
    tracing::warn!(
        pool = &*shared.name,
        zombies = state.zombies,
        "a job outlived its run timeout and grace period; its thread is detached"
    );
    if state.stopping {
        return;
    }
    if state.zombies > shared.settings.max_zombies {
        tracing::error!(
            pool = &*shared.name,
            max_zombies = shared.settings.max_zombies,
            "zombie cap reached: the thread is not replaced and the pool runs smaller"
        );
        state.deficit += 1;
        return;
    }
    match shared.spawn_worker(&mut state) {
        Ok(()) => {
            shared.counts.replaced.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            tracing::error!(pool = &*shared.name, %error, "no replacement worker");
            state.deficit += 1;
        }
    }
}

/// Drops expired jobs from the head of the queue, answering `Expired`.
/// The queue is FIFO and every job has the same TTL, so the head is the
/// oldest: the first unexpired job ends the sweep. It is kept in the front
/// slot, which workers read before the queue, so order is preserved.
/// Returns whether jobs are waiting.
fn sweep(shared: &Shared, ttl: Duration, now: Instant) -> bool {
    let expired = |enqueued_at: Instant| now.saturating_duration_since(enqueued_at) > ttl;
    let mut front = lock(&shared.front);
    loop {
        if let Some(task) = front.as_ref() {
            if !expired(task.enqueued_at()) {
                return true;
            }
            let task = front.take().expect("checked above");
            shared.front_full.store(false, Ordering::Release);
            expire(shared, task.as_ref());
            continue;
        }
        match shared.rx.try_recv() {
            Ok(Message::Job(task)) => {
                shared.room_freed();
                if expired(task.enqueued_at()) {
                    expire(shared, task.as_ref());
                    continue;
                }
                *front = Some(task);
                shared.front_full.store(true, Ordering::Release);
                drop(front);
                // A worker may have gone to sleep on the queue just before
                // the job moved to the front; wake one. A full queue means
                // none sleeps, so a refused nudge is harmless.
                let _ = shared.tx.try_send(Message::Nudge);
                return true;
            }
            Ok(Message::Stop) => {
                // Meant for a worker (shutdown): put it back. Intake is
                // closed, so room comes as workers take; if none comes,
                // shutdown's forced phase sends its own.
                drop(front);
                let _ = shared
                    .tx
                    .send_timeout(Message::Stop, Duration::from_secs(1));
                return true;
            }
            Ok(Message::Nudge) => {}
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => return false,
        }
    }
}

/// Answers `Expired` and counts it (or, if its caller cancelled it first,
/// counts the cancel).
fn expire(shared: &Shared, task: &dyn crate::job::Task) {
    if !task.drop_with(JobError::Expired, &shared.counts.expired) {
        shared.counts.cancelled.fetch_add(1, Ordering::Relaxed);
    }
}
