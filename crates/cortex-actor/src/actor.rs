//! The `Actor`, `Message` and `Handler` traits and the handler's `Context`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::actor_ref::ActorRef;
use crate::error::ActorError;
use crate::supervision::Terminated;
use crate::system::{ActorSystem, Control, Spawn};

/// State that handles messages one at a time on its own tokio task.
///
/// Every hook has a default that does nothing. Hooks and handlers may fail
/// or panic: the failure goes to the actor's
/// [`RestartPolicy`](crate::RestartPolicy), never to the process.
pub trait Actor: Send + Sized + 'static {
    /// Runs once before the first message (and not again on restart;
    /// see [`post_restart`](Actor::post_restart)). An error stops the
    /// actor before it handles anything.
    fn pre_start(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), ActorError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs once after the last message when the actor stops normally
    /// (`stop`, system shutdown, restarts exhausted); not after `kill`.
    fn post_stop(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Runs on the failed state before it is dropped and rebuilt, with the
    /// error and the Rust type of the message being handled, if any.
    fn pre_restart(
        &mut self,
        error: &ActorError,
        message_type: Option<&'static str>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (error, message_type);
        async {}
    }

    /// Runs on the fresh state after a restart, with the error that caused
    /// it. The mailbox was kept; the failing message is not retried.
    fn post_restart(&mut self, error: &ActorError) -> impl Future<Output = ()> + Send {
        let _ = error;
        async {}
    }
}

/// A message type and what asking it replies.
pub trait Message: Send + 'static {
    /// The reply to an `ask` (`()` for messages that are only told).
    type Reply: Send + 'static;
}

/// Handling of one message type by an actor.
pub trait Handler<M: Message>: Actor {
    /// Handles `message`; an `Err` (or a panic) is a failure for the
    /// actor's restart policy, and an asker gets `AskError::HandlerFailed`.
    fn handle(
        &mut self,
        message: M,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<M::Reply, ActorError>> + Send;
}

/// What a handler knows about where it runs.
#[derive(Debug)]
pub struct Context<A: Actor> {
    myself: ActorRef<A>,
    system: ActorSystem,
    pub(crate) stop_requested: bool,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(myself: ActorRef<A>, system: ActorSystem) -> Self {
        Self {
            myself,
            system,
            stop_requested: false,
        }
    }

    /// A reference to this actor, to hand to others.
    pub fn actor_ref(&self) -> &ActorRef<A> {
        &self.myself
    }

    /// The system the actor lives in (to spawn or look up other actors).
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// Starts describing a child of this actor: it is stopped before this
    /// actor's `post_stop`, its restarts spread to its siblings per this
    /// actor's [`SupervisionStrategy`](crate::SupervisionStrategy), and
    /// when its restarts run out under `OnExhausted::Escalate` the failure
    /// becomes this actor's.
    pub fn spawn_child<C, F>(&self, factory: F) -> Spawn<'_, C>
    where
        C: Actor,
        F: FnMut() -> C + Send + 'static,
    {
        let parent: Arc<dyn Control> = self.myself.cell.clone();
        self.system.actor(factory).parent(parent)
    }

    /// Gets a [`Terminated`] message when `other` ends.
    pub fn watch<B: Actor>(&self, other: &ActorRef<B>)
    where
        A: Handler<Terminated>,
    {
        other.watch_by(&self.myself);
    }

    /// Stops the actor after this message; queued messages become dead
    /// letters. A `Permanent` actor is restarted instead.
    pub fn stop(&mut self) {
        self.stop_requested = true;
    }

    /// Tells this actor `message` after `delay`, unless it stops first.
    pub fn send_after<M>(&self, message: M, delay: Duration)
    where
        A: Handler<M>,
        M: Message,
    {
        let myself = self.myself.clone();
        self.myself.cell.add_timer(async move {
            tokio::time::sleep(delay).await;
            let _ = myself.tell(message).await;
        });
    }

    /// Tells this actor `make()` every `period` (first after one period)
    /// until it stops.
    pub fn send_interval<M, F>(&self, period: Duration, mut make: F)
    where
        A: Handler<M>,
        M: Message,
        F: FnMut() -> M + Send + 'static,
    {
        let myself = self.myself.clone();
        self.myself.cell.add_timer(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if myself.tell(make()).await.is_err() {
                    return;
                }
            }
        });
    }
}
