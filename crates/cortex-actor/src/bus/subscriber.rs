//! The subscribers a bus delivers to, type-erased behind [`Subscriber`]: a
//! stream ([`EventStream`]), an actor (sent [`Published`] messages) or a
//! callback. Each reports whether a delivery landed, found no room, or found
//! the subscriber gone.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::actor::{Handler, Message};
use crate::actor_ref::ActorRef;

use super::SubscriptionHandle;

/// An event as an actor subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published<E> {
    /// The topic it was published on.
    pub topic: Arc<str>,
    /// The event.
    pub event: E,
}

impl<E: Send + 'static> Message for Published<E> {
    type Reply = ();
}

/// What one delivery attempt found.
pub(crate) enum Outcome {
    Delivered,
    Full,
    Gone,
}

pub(crate) type DeliverFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// One subscriber, type-erased: the event arrives as `&dyn Any` of the
/// subscription's event type.
pub(crate) trait Subscriber: Send + Sync {
    fn try_deliver(&self, topic: &str, event: &(dyn Any + Send + Sync)) -> Outcome;
    fn deliver<'a>(
        &'a self,
        topic: &'a str,
        event: &'a (dyn Any + Send + Sync),
    ) -> DeliverFuture<'a>;
    fn is_gone(&self) -> bool;
}

/// Events of one subscription, as a stream; dropping it unsubscribes.
#[derive(Debug)]
pub struct EventStream<E> {
    receiver: mpsc::Receiver<(Arc<str>, E)>,
    subscription: SubscriptionHandle,
}

impl<E> EventStream<E> {
    pub(super) fn new(
        receiver: mpsc::Receiver<(Arc<str>, E)>,
        subscription: SubscriptionHandle,
    ) -> Self {
        Self {
            receiver,
            subscription,
        }
    }

    /// The next event and its topic; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<(Arc<str>, E)> {
        self.receiver.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<(Arc<str>, E)> {
        self.receiver.try_recv().ok()
    }

    /// This subscription's handle.
    pub fn subscription(&self) -> &SubscriptionHandle {
        &self.subscription
    }
}

/// Feeds an [`EventStream`].
pub(super) struct StreamSubscriber<E> {
    sender: mpsc::Sender<(Arc<str>, E)>,
    topic: TopicCache,
}

impl<E> StreamSubscriber<E> {
    pub(super) fn new(sender: mpsc::Sender<(Arc<str>, E)>) -> Self {
        Self {
            sender,
            topic: TopicCache::default(),
        }
    }
}

impl<E: Clone + Send + Sync + 'static> Subscriber for StreamSubscriber<E> {
    fn try_deliver(&self, topic: &str, event: &(dyn Any + Send + Sync)) -> Outcome {
        let Some(event) = event.downcast_ref::<E>() else {
            return Outcome::Gone;
        };
        match self.sender.try_send((self.topic.get(topic), event.clone())) {
            Ok(()) => Outcome::Delivered,
            Err(mpsc::error::TrySendError::Full(_)) => Outcome::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Outcome::Gone,
        }
    }

    fn deliver<'a>(
        &'a self,
        topic: &'a str,
        event: &'a (dyn Any + Send + Sync),
    ) -> DeliverFuture<'a> {
        Box::pin(async move {
            let Some(event) = event.downcast_ref::<E>() else {
                return Outcome::Gone;
            };
            match self
                .sender
                .send((self.topic.get(topic), event.clone()))
                .await
            {
                Ok(()) => Outcome::Delivered,
                Err(_) => Outcome::Gone,
            }
        })
    }

    fn is_gone(&self) -> bool {
        self.sender.is_closed()
    }
}

/// Tells an actor each event as a [`Published`] message.
pub(super) struct TypedActorSubscriber<A, E> {
    actor: ActorRef<A>,
    topic: TopicCache,
    _event: std::marker::PhantomData<fn(E)>,
}

impl<A, E> TypedActorSubscriber<A, E> {
    pub(super) fn new(actor: ActorRef<A>) -> Self {
        Self {
            actor,
            topic: TopicCache::default(),
            _event: std::marker::PhantomData,
        }
    }
}

/// A subscriber's own `Arc` of the last topic it was sent. Publishing
/// allocates no topic, and no topic count is shared between subscribers
/// (whose actors drop their copies on other cores).
#[derive(Default)]
struct TopicCache(std::sync::Mutex<Option<Arc<str>>>);

impl TopicCache {
    fn get(&self, topic: &str) -> Arc<str> {
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*last {
            Some(own) if **own == *topic => Arc::clone(own),
            _ => {
                let own: Arc<str> = Arc::from(topic);
                *last = Some(Arc::clone(&own));
                own
            }
        }
    }
}

impl<A, E> Subscriber for TypedActorSubscriber<A, E>
where
    A: Handler<Published<E>>,
    E: Clone + Send + Sync + 'static,
{
    fn try_deliver(&self, topic: &str, event: &(dyn Any + Send + Sync)) -> Outcome {
        let Some(event) = event.downcast_ref::<E>() else {
            return Outcome::Gone;
        };
        let published = Published {
            topic: self.topic.get(topic),
            event: event.clone(),
        };
        match self.actor.try_tell(published) {
            Ok(()) => Outcome::Delivered,
            Err(crate::SendError::MailboxFull(_)) => Outcome::Full,
            Err(crate::SendError::ActorStopped(_)) => Outcome::Gone,
        }
    }

    fn deliver<'a>(
        &'a self,
        topic: &'a str,
        event: &'a (dyn Any + Send + Sync),
    ) -> DeliverFuture<'a> {
        Box::pin(async move {
            let Some(event) = event.downcast_ref::<E>() else {
                return Outcome::Gone;
            };
            let published = Published {
                topic: self.topic.get(topic),
                event: event.clone(),
            };
            match self.actor.tell(published).await {
                Ok(()) => Outcome::Delivered,
                Err(crate::SendError::MailboxFull(_)) => Outcome::Full,
                Err(crate::SendError::ActorStopped(_)) => Outcome::Gone,
            }
        })
    }

    fn is_gone(&self) -> bool {
        !self.actor.is_alive()
    }
}

/// Calls a callback on the publisher's task.
pub(super) struct FnSubscriber<E, F> {
    callback: F,
    _event: std::marker::PhantomData<fn(E)>,
}

impl<E, F> FnSubscriber<E, F> {
    pub(super) fn new(callback: F) -> Self {
        Self {
            callback,
            _event: std::marker::PhantomData,
        }
    }
}

impl<E, F> Subscriber for FnSubscriber<E, F>
where
    E: Send + Sync + 'static,
    F: Fn(&str, &E) + Send + Sync + 'static,
{
    fn try_deliver(&self, topic: &str, event: &(dyn Any + Send + Sync)) -> Outcome {
        match event.downcast_ref::<E>() {
            Some(event) => {
                (self.callback)(topic, event);
                Outcome::Delivered
            }
            None => Outcome::Gone,
        }
    }

    fn deliver<'a>(
        &'a self,
        topic: &'a str,
        event: &'a (dyn Any + Send + Sync),
    ) -> DeliverFuture<'a> {
        let outcome = self.try_deliver(topic, event);
        Box::pin(async move { outcome })
    }

    fn is_gone(&self) -> bool {
        false
    }
}
