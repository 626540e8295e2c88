//! Stopping a set of actors in OTP's order: one at a time, newest first,
//! each given its own shutdown time and killed past it.
//!
//! Erlang/OTP's `supervisor` terminates its children "in reverse start
//! order" (`supervisor:terminate_children`, and the manual's child
//! specification `shutdown`: `brutal_kill`, a timeout after which the
//! child is killed with `exit(Child, kill)`, or `infinity`), and an
//! application stops by terminating its top supervisor, so the same
//! holds for the system's top-level actors. Stopping in sequence means an
//! actor started earlier, which later ones may use, outlives them. (Akka
//! stops an actor's children concurrently; Cortex follows OTP.)

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use super::{Control, ShutdownReport};

/// How a stopping actor's queue is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Handle what is queued, take nothing new (system shutdown).
    Drain,
    /// Stop after the current message; the queue becomes dead letters.
    Stop,
}

/// `now + wait`, or `None` for a wait too long to represent (forever).
fn deadline_after(wait: Duration) -> Option<Instant> {
    Instant::now().checked_add(wait)
}

/// Waits until `actor` has ended or `deadline` passes; true if it ended.
async fn ended_by(actor: &dyn Control, deadline: Option<Instant>) -> bool {
    match deadline {
        Some(deadline) => timeout_at(deadline, actor.wait_stopped()).await.is_ok(),
        None => {
            actor.wait_stopped().await;
            true
        }
    }
}

/// Kills `actor` and waits for its clean-up.
async fn kill(actor: &dyn Control) {
    actor.kill();
    actor.wait_stopped().await;
}

/// Stops one child of a stopping parent: asks it to stop (or to drain),
/// waits up to its shutdown timeout, then kills it. True if it ended
/// within its time.
pub(crate) async fn terminate(child: &dyn Control, mode: Mode) -> bool {
    let timeout = child.shutdown_timeout();
    if timeout.is_zero() {
        // OTP's `brutal_kill`.
        kill(child).await;
        return false;
    }
    match mode {
        Mode::Drain => child.close(),
        Mode::Stop => child.stop(),
    }
    if ended_by(child, deadline_after(timeout)).await {
        return true;
    }
    tracing::warn!(
        actor_id = child.id(),
        ?timeout,
        "actor did not stop within its shutdown timeout; killed"
    );
    kill(child).await;
    false
}

/// The system's part of `ActorSystem::shutdown`: the top-level actors,
/// newest first, within `timeout` overall (see there).
pub(crate) async fn shutdown(
    mut actors: Vec<Arc<dyn Control>>,
    timeout: Duration,
) -> ShutdownReport {
    // Ids are handed out in spawn order.
    actors.sort_unstable_by_key(|actor| actor.id());
    let deadline = deadline_after(timeout);
    let grace = (timeout / 10).min(Duration::from_millis(100));
    let hard_deadline = deadline.and_then(|deadline| deadline.checked_add(grace));
    let mut report = ShutdownReport::default();
    while let Some(actor) = actors.pop() {
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            actors.push(actor);
            break;
        }
        let own = deadline_after(actor.shutdown_timeout());
        // Never more than an equal part of what is left of the budget, so
        // one slow actor cannot leave those started before it none; what
        // a quick one leaves goes to the rest.
        let share = deadline.map(|deadline| {
            let parts = u32::try_from(actors.len() + 1).unwrap_or(u32::MAX);
            now + (deadline - now) / parts
        });
        let window = match (own, share) {
            (Some(own), Some(share)) => Some(own.min(share)),
            (own, share) => own.or(share),
        };
        actor.close();
        if ended_by(&*actor, window).await {
            report.drained += 1;
            continue;
        }
        actor.stop();
        let grace_end = deadline_after(grace).map(|end| match hard_deadline {
            Some(hard) => end.min(hard),
            None => end,
        });
        if ended_by(&*actor, grace_end).await {
            report.stopped_late += 1;
        } else {
            kill(&*actor).await;
            report.killed += 1;
        }
    }
    if actors.is_empty() {
        return report;
    }
    // Out of time: the rest stop together, then whatever is left is killed.
    tracing::warn!(
        actors = actors.len(),
        ?timeout,
        "shutdown timeout spent; stopping the remaining actors together"
    );
    for actor in actors.iter().rev() {
        actor.stop();
    }
    for actor in actors.iter().rev() {
        if ended_by(&**actor, hard_deadline).await {
            report.stopped_late += 1;
        } else {
            kill(&**actor).await;
            report.killed += 1;
        }
    }
    report
}
