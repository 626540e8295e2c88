//! An actor's task: the run loop that handles messages and applies the
//! supervisor's verdicts, restarts, stopping children first, and the exit
//! guard that cleans up however the task ends.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tracing::Instrument;

use crate::actor::{Actor, Context};
use crate::actor_ref::{ActorRef, Cell, lock};
use crate::error::ActorError;
use crate::mailbox::{Next, Signal};
use crate::supervision::{ExitReason, Supervisor, Verdict};

use super::stop::{Mode, terminate};
use super::{ActorSystem, DeadLetterReason};

/// Cleans up however the actor's task ends: finished, failed, aborted,
/// or dropped before it ever ran.
pub(super) struct ExitGuard<A> {
    cell: Arc<Cell<A>>,
}

impl<A> ExitGuard<A> {
    /// Made only once the actor is recorded and counted (see `spawn`).
    pub(super) fn new(cell: Arc<Cell<A>>) -> Self {
        Self { cell }
    }
}

impl<A> Drop for ExitGuard<A> {
    fn drop(&mut self) {
        let cell = &self.cell;
        cell.alive.store(false, Ordering::Release);
        cell.cancel_timers();
        let reason = if cell.system.accepting.load(Ordering::Acquire) {
            DeadLetterReason::ActorStopped
        } else {
            DeadLetterReason::Shutdown
        };
        cell.reject_all(cell.mailbox.drain(), reason);
        if cell.named {
            let mut names = cell.system.write_names();
            if names
                .get(&cell.label)
                .is_some_and(|registered| registered.id == cell.id)
            {
                names.remove(&cell.label);
            }
        }
        // Killed or aborted: the children not yet stopped go with it.
        for child in std::mem::take(&mut *lock(&cell.children)) {
            child.kill();
        }
        if let Some(parent) = cell.parent.as_ref().and_then(Weak::upgrade) {
            parent.remove_child(cell.id);
        }
        let watchers = std::mem::take(&mut *lock(&cell.watchers));
        if !watchers.is_empty() {
            let terminated = cell.terminated();
            for watcher in watchers {
                watcher(terminated.clone());
            }
        }
        {
            // Under the table's lock, so a scrape sees this actor's
            // messages either live or retired, never both or neither.
            let mut live = cell.system.lock_live();
            live.remove(&cell.id);
            cell.kind.ended(cell.handled.load(Ordering::Relaxed));
        }
        cell.ended.store(true, Ordering::Release);
        cell.stopped.notify_waiters();
    }
}

/// Polls a future, turning a panic into an `ActorError`.
struct CatchUnwind<F>(F);

impl<F, T> Future for CatchUnwind<F>
where
    F: Future<Output = Result<T, ActorError>> + Unpin,
{
    type Output = Result<T, ActorError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(ActorError::panicked(payload.as_ref()))),
        }
    }
}

async fn guarded<T>(
    future: impl Future<Output = Result<T, ActorError>> + Send,
) -> Result<T, ActorError> {
    CatchUnwind(Box::pin(future)).await
}

async fn hook(future: impl Future<Output = ()> + Send) {
    let _ = guarded(async {
        future.await;
        Ok(())
    })
    .await;
}

/// The actor's task, from its factory's first call to its exit.
pub(super) async fn run<A: Actor>(
    guard: ExitGuard<A>,
    system: ActorSystem,
    mut factory: Box<dyn FnMut() -> A + Send>,
    mut supervisor: Supervisor,
) {
    let cell = Arc::clone(&guard.cell);
    let stats = Arc::clone(&cell.kind);
    let mut ctx = Context::new(
        ActorRef {
            cell: Arc::clone(&cell),
        },
        system,
    );
    let fail = |reason: String| *lock(&cell.exit) = ExitReason::Failed(reason);
    let Ok(mut actor) = std::panic::catch_unwind(AssertUnwindSafe(&mut factory)) else {
        stats.failure();
        tracing::error!(actor = %cell.label, "actor factory panicked");
        fail("the actor factory panicked".to_owned());
        return;
    };
    if let Err(error) = guarded(actor.pre_start(&mut ctx)).await {
        stats.failure();
        tracing::error!(actor = %cell.label, %error, "pre_start failed; actor not started");
        fail(error.to_string());
        stop_children(&cell, Mode::Stop).await;
        return;
    }
    let mut exit = ExitReason::Stopped;
    loop {
        let (failed, error, message_type) = match cell.mailbox.recv().await {
            Next::Stop => break,
            Next::Signal(Signal::Restart(reason)) => {
                // A sibling's restart: this one restarts too, without
                // counting against its own policy.
                let error = ActorError::msg(reason);
                match restart(&cell, &mut factory, actor, &error, None, Duration::ZERO).await {
                    Some(fresh) => {
                        actor = fresh;
                        continue;
                    }
                    None => return,
                }
            }
            Next::Signal(Signal::Failure(reason)) => {
                stats.failure();
                (true, ActorError::msg(reason), None)
            }
            Next::Message(envelope) => {
                let message_type = envelope.message_type();
                let span = tracing::debug_span!(
                    parent: envelope.sender_span(),
                    "actor.handle",
                    actor = %cell.label,
                    message = message_type,
                );
                #[cfg(feature = "metrics")]
                let timer = stats
                    .duration
                    .get()
                    .map(|histogram| (histogram, std::time::Instant::now()));
                // Counted as the handler takes it up, so an asker that has
                // its reply finds its question counted. Only this task
                // writes `handled`: a plain load and store; the system
                // total is striped per thread.
                cell.handled
                    .store(cell.handled.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                stats.message();
                let outcome = CatchUnwind(envelope.handle(&mut actor, &mut ctx))
                    .instrument(span)
                    .await;
                #[cfg(feature = "metrics")]
                if let Some((histogram, start)) = timer {
                    histogram.observe(start.elapsed().as_secs_f64());
                }
                match outcome {
                    Ok(()) if !ctx.stop_requested => continue,
                    Ok(()) => (
                        false,
                        ActorError::msg("the actor stopped itself"),
                        Some(message_type),
                    ),
                    Err(error) => {
                        stats.failure();
                        tracing::warn!(
                            actor = %cell.label, message = message_type, %error, "actor failed"
                        );
                        (true, error, Some(message_type))
                    }
                }
            }
        };
        ctx.stop_requested = false;
        match supervisor.on_exit(failed) {
            Verdict::Restart(delay) => {
                match restart(&cell, &mut factory, actor, &error, message_type, delay).await {
                    Some(fresh) => actor = fresh,
                    None => return,
                }
                if let Some(parent) = cell.parent.as_ref().and_then(Weak::upgrade) {
                    parent.child_restarted(cell.id, &error.to_string());
                }
            }
            Verdict::Stop => {
                if failed {
                    stats.exhausted.fetch_add(1, Ordering::Relaxed);
                    exit = ExitReason::Failed(error.to_string());
                }
                break;
            }
            Verdict::Escalate => {
                stats.exhausted.fetch_add(1, Ordering::Relaxed);
                exit = ExitReason::Failed(error.to_string());
                match cell.parent.as_ref().and_then(Weak::upgrade) {
                    Some(parent) => parent.signal(Signal::Failure(format!(
                        "child {} escalated: {error}",
                        cell.label
                    ))),
                    None => {
                        stats.escalation();
                        tracing::error!(
                            actor = %cell.label, %error, "actor restarts exhausted; escalated"
                        );
                    }
                }
                break;
            }
        }
    }
    // Closed without a stop request: the system is draining it, so its
    // children drain too.
    let mode = if cell.mailbox.is_closed() && !cell.mailbox.stop_requested() {
        Mode::Drain
    } else {
        Mode::Stop
    };
    cell.mailbox.request_stop();
    stop_children(&cell, mode).await;
    hook(actor.post_stop(&mut ctx)).await;
    *lock(&cell.exit) = exit;
}

/// Stops the children of `cell` as an OTP supervisor terminates its
/// children: one at a time, newest first, each within its own shutdown
/// timeout (then killed) before the next is asked, so an older sibling
/// still serves a younger one while it stops.
async fn stop_children<A: Send + 'static>(cell: &Cell<A>, mode: Mode) {
    // No new children from here on (`add_child` checks it).
    cell.mailbox.close();
    // Each child stays in the list until it has ended: if this actor is
    // killed meanwhile, its exit guard kills those left.
    loop {
        let Some(child) = lock(&cell.children).last().cloned() else {
            return;
        };
        terminate(&*child, mode).await;
        // Its exit guard removed it already; this covers a child whose
        // guard could not reach this parent.
        let id = child.id();
        lock(&cell.children).retain(|c| c.id() != id);
    }
}

/// Replaces `actor` with a fresh one from `factory`, running the restart
/// hooks; `None` if the factory panicked (the actor then ends).
async fn restart<A: Actor>(
    cell: &Cell<A>,
    factory: &mut Box<dyn FnMut() -> A + Send>,
    mut actor: A,
    error: &ActorError,
    message_type: Option<&'static str>,
    delay: Duration,
) -> Option<A> {
    hook(actor.pre_restart(error, message_type)).await;
    drop(actor);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Ok(mut fresh) = std::panic::catch_unwind(AssertUnwindSafe(factory)) else {
        cell.kind.failure();
        tracing::error!(actor = %cell.label, "actor factory panicked on restart");
        *lock(&cell.exit) = ExitReason::Failed("the actor factory panicked".to_owned());
        return None;
    };
    cell.kind.restart();
    tracing::info!(actor = %cell.label, %error, "actor restarted");
    hook(fresh.post_restart(error)).await;
    // As an OTP supervisor restarts its children when it restarts: each
    // gets fresh state (and passes it on to its own children).
    for child in lock(&cell.children).iter() {
        child.signal(Signal::Restart(format!("parent {} restarted", cell.label)));
    }
    Some(fresh)
}
