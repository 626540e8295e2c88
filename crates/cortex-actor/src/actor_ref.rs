//! `ActorRef`: the handle for telling, asking, stopping and killing.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;

use crate::actor::{Actor, Handler, Message};
use crate::envelope::{Ask, BoxEnvelope, Tell};
use crate::error::{AskError, SendError};
use crate::mailbox::{Mailbox, Overflow, Push};
use crate::supervision::{ExitReason, SupervisionStrategy, Terminated};
use crate::system::{Control, DeadLetterReason, KindStats, SystemInner};

/// The shared state of one actor: its mailbox and lifecycle flags.
pub(crate) struct Cell<A> {
    pub(crate) id: u64,
    pub(crate) kind: Arc<KindStats>,
    /// Messages handled; written only by the actor's own task.
    pub(crate) handled: AtomicU64,
    pub(crate) label: Arc<str>,
    pub(crate) named: bool,
    pub(crate) mailbox: Mailbox<A>,
    pub(crate) system: Arc<SystemInner>,
    pub(crate) alive: AtomicBool,
    /// Set last of all when it ends, once its clean-up is complete.
    pub(crate) ended: AtomicBool,
    /// Notified when `ended` is set.
    pub(crate) stopped: Notify,
    /// How long a stopping parent (or the system) waits for it.
    pub(crate) shutdown_timeout: Duration,
    pub(crate) abort: OnceLock<AbortHandle>,
    pub(crate) timers: Mutex<Vec<AbortHandle>>,
    /// The actor that spawned this one as a child, if any.
    pub(crate) parent: Option<Weak<dyn Control>>,
    /// Children in start order, and how their restarts spread.
    pub(crate) children: Mutex<Vec<Arc<dyn Control>>>,
    pub(crate) strategy: SupervisionStrategy,
    /// Told once when this actor ends.
    pub(crate) watchers: Mutex<Vec<Watcher>>,
    /// Why it ended; `Killed` unless the run loop says otherwise.
    pub(crate) exit: Mutex<ExitReason>,
}

/// Delivers a [`Terminated`] to one watcher.
pub(crate) type Watcher = Box<dyn FnOnce(Terminated) + Send>;

/// Locks, shrugging off poison: every critical section here leaves its
/// data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<A> Cell<A> {
    pub(crate) fn dead_letter(&self, message_type: &'static str, reason: DeadLetterReason) {
        self.system
            .dead_letter(&self.kind, &self.label, self.id, message_type, reason);
    }

    /// Reports undeliverable envelopes and tells their askers.
    pub(crate) fn reject_all(&self, envelopes: Vec<BoxEnvelope<A>>, reason: DeadLetterReason) {
        for envelope in envelopes {
            self.dead_letter(envelope.message_type(), reason);
            envelope.reject(AskError::ActorStopped);
        }
    }

    pub(crate) fn add_timer(&self, timer: impl Future<Output = ()> + Send + 'static) {
        let mut timers = self
            .timers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.alive.load(Ordering::Acquire) {
            return;
        }
        timers.retain(|timer| !timer.is_finished());
        timers.push(tokio::spawn(timer).abort_handle());
    }

    pub(crate) fn add_watcher(&self, watcher: Watcher) {
        let mut watchers = lock(&self.watchers);
        if self.alive.load(Ordering::Acquire) {
            watchers.push(watcher);
            return;
        }
        drop(watchers);
        watcher(self.terminated());
    }

    pub(crate) fn terminated(&self) -> Terminated {
        Terminated {
            id: self.id,
            name: Arc::clone(&self.label),
            reason: lock(&self.exit).clone(),
        }
    }

    /// Resolves once the actor has ended and its clean-up is complete.
    pub(crate) async fn wait_ended(&self) {
        loop {
            let stopped = self.stopped.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if self.ended.load(Ordering::Acquire) {
                return;
            }
            stopped.await;
        }
    }

    pub(crate) fn cancel_timers(&self) {
        let timers = std::mem::take(
            &mut *self
                .timers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for timer in timers {
            timer.abort();
        }
    }
}

/// A handle to a running actor. Cheap to clone; all clones address the
/// same mailbox.
///
/// Messages sent from one task arrive in the order sent. Sending to a
/// stopped actor fails at once and the message is reported as a dead
/// letter.
pub struct ActorRef<A> {
    pub(crate) cell: Arc<Cell<A>>,
}

impl<A> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        Self {
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<A> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("id", &self.cell.id)
            .field("name", &&*self.cell.label)
            .field("alive", &self.cell.alive.load(Ordering::Acquire))
            .finish()
    }
}

impl<A> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl<A> Eq for ActorRef<A> {}

impl<A: Actor> ActorRef<A> {
    /// The actor's id, unique within its system.
    pub fn id(&self) -> u64 {
        self.cell.id
    }

    /// Its registered name, or its Rust type name if it has none.
    pub fn name(&self) -> &str {
        &self.cell.label
    }

    /// Whether it still runs (a stopping actor may still drain).
    pub fn is_alive(&self) -> bool {
        self.cell.alive.load(Ordering::Acquire)
    }

    /// Messages waiting in its mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.cell.mailbox.len()
    }

    /// Sends `message`, waiting for mailbox space if the policy is
    /// `Backpressure`. Under `FailFast` a full mailbox fails with
    /// `MailboxFull`; under `DropOldest`/`DropNewest` one message becomes a
    /// dead letter and this succeeds.
    pub async fn tell<M>(&self, message: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Message,
    {
        let envelope = tell_envelope(message);
        let pushed = match self.cell.mailbox.overflow() {
            Overflow::Backpressure => self.cell.mailbox.push_waiting(envelope).await,
            _ => self.cell.mailbox.push(envelope),
        };
        self.settle(pushed)
    }

    /// Sends `message` without waiting: a full mailbox fails with
    /// `MailboxFull` (except under `DropOldest`/`DropNewest`, which drop
    /// one message as a dead letter instead).
    pub fn try_tell<M>(&self, message: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Message,
    {
        let pushed = self.cell.mailbox.push(tell_envelope(message));
        self.settle(pushed)
    }

    fn settle<M: Message>(&self, pushed: Push<A>) -> Result<(), SendError<M>> {
        match self.account(pushed) {
            Ok(()) | Err(Refused::Dropped) => Ok(()),
            Err(Refused::Full(envelope)) => Err(SendError::MailboxFull(take_message(envelope))),
            Err(Refused::Closed(envelope)) => Err(SendError::ActorStopped(take_message(envelope))),
        }
    }

    /// Reports what a push dropped as dead letters (an evicted message, a
    /// `DropNewest` refusal, a stopped addressee) and says what happened.
    fn account(&self, pushed: Push<A>) -> Result<(), Refused<A>> {
        match pushed {
            Push::Queued(evicted) => {
                if let Some(evicted) = evicted {
                    self.cell
                        .dead_letter(evicted.message_type(), DeadLetterReason::MailboxOverflow);
                    evicted.reject(AskError::MailboxFull);
                }
                Ok(())
            }
            Push::Full(envelope) if self.cell.mailbox.overflow() == Overflow::DropNewest => {
                self.cell
                    .dead_letter(envelope.message_type(), DeadLetterReason::MailboxOverflow);
                Err(Refused::Dropped)
            }
            Push::Full(envelope) => Err(Refused::Full(envelope)),
            Push::Closed(envelope) => {
                self.cell
                    .dead_letter(envelope.message_type(), DeadLetterReason::ActorStopped);
                Err(Refused::Closed(envelope))
            }
        }
    }

    /// Asks with the system's default timeouts (see
    /// [`ActorSystemBuilder::ask_timeouts`](crate::ActorSystemBuilder::ask_timeouts)).
    pub async fn ask<M>(&self, message: M) -> Result<M::Reply, AskError>
    where
        A: Handler<M>,
        M: Message,
    {
        let (mailbox, reply) = self.cell.system.ask_timeouts;
        self.ask_within(message, mailbox, reply).await
    }

    /// Asks and waits for the reply: at most `mailbox_wait` for mailbox
    /// space, then at most `reply_wait` for the answer. A question that
    /// times out in the mailbox is a dead letter; one that times out
    /// waiting for the reply is still handled, and its reply dropped.
    pub async fn ask_timeout<M>(
        &self,
        message: M,
        mailbox_wait: Duration,
        reply_wait: Duration,
    ) -> Result<M::Reply, AskError>
    where
        A: Handler<M>,
        M: Message,
    {
        self.ask_within(message, mailbox_wait, Some(reply_wait))
            .await
    }

    async fn ask_within<M>(
        &self,
        message: M,
        mailbox_wait: Duration,
        reply_wait: Option<Duration>,
    ) -> Result<M::Reply, AskError>
    where
        A: Handler<M>,
        M: Message,
    {
        let (reply, answer) = oneshot::channel();
        let envelope: BoxEnvelope<A> = Box::new(Ask {
            message,
            reply,
            span: tracing::Span::current(),
        });
        // Try without a timer first: the timer is only needed to wait.
        let pushed = match self.cell.mailbox.push(envelope) {
            Push::Full(envelope) if self.cell.mailbox.overflow() == Overflow::Backpressure => {
                match tokio::time::timeout(mailbox_wait, self.cell.mailbox.push_waiting(envelope))
                    .await
                {
                    Ok(pushed) => pushed,
                    Err(_) => {
                        self.cell.dead_letter(
                            std::any::type_name::<M>(),
                            DeadLetterReason::MailboxTimeout,
                        );
                        return Err(AskError::MailboxTimeout);
                    }
                }
            }
            pushed => pushed,
        };
        match self.account(pushed) {
            Ok(()) => {}
            Err(Refused::Full(_) | Refused::Dropped) => return Err(AskError::MailboxFull),
            Err(Refused::Closed(_)) => return Err(AskError::ActorStopped),
        }
        let answer = match reply_wait {
            Some(wait) => match tokio::time::timeout(wait, answer).await {
                Ok(answer) => answer,
                Err(_) => return Err(AskError::ReplyTimeout),
            },
            None => answer.await,
        };
        answer.unwrap_or(Err(AskError::NoReply))
    }

    /// Stops the actor after the message it is handling: a system message
    /// that jumps the queue. Queued messages become dead letters;
    /// `post_stop` runs. No restart follows.
    pub fn stop(&self) {
        self.cell.mailbox.request_stop();
    }

    /// Stops the actor at once, interrupting its handler: no `post_stop`.
    /// Queued messages become dead letters.
    pub fn kill(&self) {
        self.cell.mailbox.request_stop();
        if let Some(abort) = self.cell.abort.get() {
            abort.abort();
        }
    }

    /// Tells `watcher` a [`Terminated`] when this actor ends (at once if it
    /// already has).
    pub fn watch_by<W>(&self, watcher: &ActorRef<W>)
    where
        W: Handler<Terminated>,
    {
        let watcher = watcher.clone();
        self.cell.add_watcher(Box::new(move |terminated| {
            // A full or stopped watcher makes this a dead letter.
            let _ = watcher.try_tell(terminated);
        }));
    }

    /// Links two actors: each is told a [`Terminated`] when the other ends.
    pub fn link<B>(&self, other: &ActorRef<B>)
    where
        A: Handler<Terminated>,
        B: Handler<Terminated>,
    {
        self.watch_by(other);
        other.watch_by(self);
    }

    /// Waits until the actor has stopped and its clean-up is complete:
    /// its queue reported as dead letters, its name freed, its children
    /// stopped or killed, watchers told, and the system's counters
    /// updated.
    pub async fn wait_for_stop(&self) {
        self.cell.wait_ended().await;
    }
}

/// Why a push did not queue a message.
enum Refused<A> {
    /// Full, and the policy refuses: the envelope comes back.
    Full(BoxEnvelope<A>),
    /// Full under `DropNewest`: the message is a dead letter.
    Dropped,
    /// The actor no longer takes messages (a dead letter already).
    Closed(BoxEnvelope<A>),
}

fn tell_envelope<A, M>(message: M) -> BoxEnvelope<A>
where
    A: Handler<M>,
    M: Message,
{
    Box::new(Tell {
        message,
        span: tracing::Span::current(),
    })
}

/// The typed message back out of a refused tell envelope.
fn take_message<A, M: 'static>(envelope: BoxEnvelope<A>) -> M {
    match envelope.into_any().downcast::<Tell<M>>() {
        Ok(tell) => tell.message,
        // Only tell envelopes of `M` reach here: `settle` is generic over
        // the `M` the envelope was built from.
        Err(_) => unreachable!("a tell envelope holds the message type it was built with"),
    }
}
