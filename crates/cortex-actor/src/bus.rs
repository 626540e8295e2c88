//! A typed publish/subscribe event bus with wildcard topics.
//!
//! Topics are dot-separated words (`order.created`). Patterns add `*` (any
//! one word) and `**` (any number of words, none included): `order.*`
//! matches `order.created` but not `order.line.added`; `order.**` matches
//! both and `order` itself. An event is delivered to the subscriptions
//! whose pattern matches its topic *and* whose event type is its type.
//!
//! Each subscription chooses a [`Delivery`]: `BestEffort` never makes the
//! publisher wait (a full subscriber misses the event, which is counted),
//! `Guaranteed` makes `publish` wait for room. Subscribers that have gone
//! (a dropped stream, a stopped actor) are removed on the next publish.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::actor::{Actor, Handler, Message};
use crate::actor_ref::ActorRef;

/// How a subscription receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Never wait: if the subscriber is full, it misses the event (counted
    /// in [`BusStats::dropped`]). The default.
    #[default]
    BestEffort,
    /// `publish` waits for room, so the subscriber sees every event.
    Guaranteed,
}

/// A bad topic or pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct TopicError {
    /// `"topic"` or `"pattern"`.
    pub what: &'static str,
    /// What was given.
    pub value: String,
    /// Why it is refused.
    pub reason: &'static str,
}

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

/// What one `publish` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishReport {
    /// Subscriptions that received the event.
    pub delivered: usize,
    /// Best-effort subscriptions that were full and missed it.
    pub dropped: usize,
}

/// Totals of a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BusStats {
    /// Live subscriptions.
    pub subscriptions: usize,
    /// Events published.
    pub published: u64,
    /// Deliveries made.
    pub delivered: u64,
    /// Deliveries missed by full best-effort subscribers.
    pub dropped: u64,
}

enum Outcome {
    Delivered,
    Full,
    Gone,
}

type DeliverFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// One subscriber, type-erased: the event arrives as `&dyn Any` of the
/// subscription's event type.
trait Subscriber: Send + Sync {
    fn try_deliver(&self, topic: &str, event: &(dyn Any + Send + Sync)) -> Outcome;
    fn deliver<'a>(
        &'a self,
        topic: &'a str,
        event: &'a (dyn Any + Send + Sync),
    ) -> DeliverFuture<'a>;
    fn is_gone(&self) -> bool;
}

#[derive(Clone)]
struct Subscription {
    id: u64,
    pattern: Pattern,
    type_id: TypeId,
    delivery: Delivery,
    subscriber: Arc<dyn Subscriber>,
}

/// A compiled pattern: its words, `*` and `**` included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(Vec<Box<str>>);

impl Pattern {
    fn parse(pattern: &str) -> Result<Self, TopicError> {
        let error = |reason| TopicError {
            what: "pattern",
            value: pattern.to_owned(),
            reason,
        };
        let words: Vec<Box<str>> = pattern.split('.').map(Into::into).collect();
        for word in &words {
            if word.is_empty() {
                return Err(error("empty word (leading, trailing or double dot)"));
            }
            if word.contains('*') && !matches!(&**word, "*" | "**") {
                return Err(error("`*` and `**` must be whole words"));
            }
        }
        Ok(Self(words))
    }

    fn matches(&self, topic: &[&str]) -> bool {
        fn go(pattern: &[Box<str>], topic: &[&str]) -> bool {
            match pattern.split_first() {
                None => topic.is_empty(),
                Some((word, rest)) if &**word == "**" => {
                    (0..=topic.len()).any(|skip| go(rest, &topic[skip..]))
                }
                Some((word, rest)) => match topic.split_first() {
                    Some((first, tail)) => (&**word == "*" || **word == **first) && go(rest, tail),
                    None => false,
                },
            }
        }
        go(&self.0, topic)
    }
}

fn check_topic(topic: &str) -> Result<Vec<&str>, TopicError> {
    let error = |reason| TopicError {
        what: "topic",
        value: topic.to_owned(),
        reason,
    };
    let words: Vec<&str> = topic.split('.').collect();
    if words.iter().any(|word| word.is_empty()) {
        return Err(error("empty word (leading, trailing or double dot)"));
    }
    if words.iter().any(|word| word.contains('*')) {
        return Err(error("wildcards belong in patterns, not topics"));
    }
    Ok(words)
}

/// A typed publish/subscribe bus. Cheap to clone; clones share
/// subscriptions.
///
/// ```
/// use cortex_actor::{Delivery, EventBus};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct OrderEvent { id: u64 }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let bus = EventBus::new();
/// let mut orders = bus.subscribe::<OrderEvent>("order.*", 16, Delivery::Guaranteed).unwrap();
/// let report = bus.publish("order.created", OrderEvent { id: 7 }).await.unwrap();
/// assert_eq!(report.delivered, 1);
/// let (topic, event) = orders.recv().await.unwrap();
/// assert_eq!((&*topic, event), ("order.created", OrderEvent { id: 7 }));
/// assert_eq!(bus.subscriber_count("order.paid").unwrap(), 1);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

#[derive(Default)]
struct BusInner {
    /// Copy-on-write: a publish clones the `Arc`, never holds the lock
    /// while delivering, and allocates nothing for the list.
    subscriptions: RwLock<Arc<Vec<Subscription>>>,
    next_id: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Events of one subscription, as a stream; dropping it unsubscribes.
#[derive(Debug)]
pub struct EventStream<E> {
    receiver: mpsc::Receiver<(Arc<str>, E)>,
    subscription: SubscriptionHandle,
}

impl<E> EventStream<E> {
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

/// Identifies a subscription, to cancel it with [`EventBus::unsubscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionHandle(u64);

struct StreamSubscriber<E> {
    sender: mpsc::Sender<(Arc<str>, E)>,
    topic: TopicCache,
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

struct TypedActorSubscriber<A, E> {
    actor: ActorRef<A>,
    topic: TopicCache,
    _event: std::marker::PhantomData<fn(E)>,
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

struct FnSubscriber<E, F> {
    callback: F,
    _event: std::marker::PhantomData<fn(E)>,
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

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(
        &self,
        pattern: &str,
        type_id: TypeId,
        delivery: Delivery,
        subscriber: Arc<dyn Subscriber>,
    ) -> Result<SubscriptionHandle, TopicError> {
        let pattern = Pattern::parse(pattern)?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut subscriptions = self
            .inner
            .subscriptions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::make_mut(&mut subscriptions).push(Subscription {
            id,
            pattern,
            type_id,
            delivery,
            subscriber,
        });
        Ok(SubscriptionHandle(id))
    }

    /// Subscribes a stream with room for `capacity` events.
    pub fn subscribe<E>(
        &self,
        pattern: &str,
        capacity: usize,
        delivery: Delivery,
    ) -> Result<EventStream<E>, TopicError>
    where
        E: Clone + Send + Sync + 'static,
    {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let subscription = self.add(
            pattern,
            TypeId::of::<E>(),
            delivery,
            Arc::new(StreamSubscriber {
                sender,
                topic: TopicCache::default(),
            }),
        )?;
        Ok(EventStream {
            receiver,
            subscription,
        })
    }

    /// Subscribes an actor: it receives [`Published<E>`] messages. A
    /// stopped actor's subscription is removed on the next publish.
    pub fn subscribe_actor<A, E>(
        &self,
        pattern: &str,
        actor: &ActorRef<A>,
        delivery: Delivery,
    ) -> Result<SubscriptionHandle, TopicError>
    where
        A: Actor + Handler<Published<E>>,
        E: Clone + Send + Sync + 'static,
    {
        self.add(
            pattern,
            TypeId::of::<E>(),
            delivery,
            Arc::new(TypedActorSubscriber::<A, E> {
                actor: actor.clone(),
                topic: TopicCache::default(),
                _event: std::marker::PhantomData,
            }),
        )
    }

    /// Subscribes a callback, run on the publisher's task (keep it quick).
    pub fn subscribe_fn<E, F>(
        &self,
        pattern: &str,
        callback: F,
    ) -> Result<SubscriptionHandle, TopicError>
    where
        E: Send + Sync + 'static,
        F: Fn(&str, &E) + Send + Sync + 'static,
    {
        self.add(
            pattern,
            TypeId::of::<E>(),
            Delivery::Guaranteed,
            Arc::new(FnSubscriber {
                callback,
                _event: std::marker::PhantomData,
            }),
        )
    }

    /// Cancels a subscription; false if it was already gone.
    pub fn unsubscribe(&self, handle: SubscriptionHandle) -> bool {
        let mut subscriptions = self
            .inner
            .subscriptions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = subscriptions.len();
        Arc::make_mut(&mut subscriptions).retain(|subscription| subscription.id != handle.0);
        subscriptions.len() != before
    }

    /// Subscriptions (of any event type) whose pattern matches `topic`.
    pub fn subscriber_count(&self, topic: &str) -> Result<usize, TopicError> {
        let words = check_topic(topic)?;
        Ok(self
            .inner
            .subscriptions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|s| !s.subscriber.is_gone() && s.pattern.matches(&words))
            .count())
    }

    /// Totals.
    pub fn stats(&self) -> BusStats {
        BusStats {
            subscriptions: self
                .inner
                .subscriptions
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len(),
            published: self.inner.published.load(Ordering::Relaxed),
            delivered: self.inner.delivered.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
        }
    }

    fn snapshot(&self) -> Arc<Vec<Subscription>> {
        Arc::clone(
            &self
                .inner
                .subscriptions
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn sweep(&self) {
        let mut subscriptions = self
            .inner
            .subscriptions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::make_mut(&mut subscriptions).retain(|s| !s.subscriber.is_gone());
    }

    fn tally(&self, report: PublishReport) {
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        self.inner
            .delivered
            .fetch_add(report.delivered as u64, Ordering::Relaxed);
        self.inner
            .dropped
            .fetch_add(report.dropped as u64, Ordering::Relaxed);
    }

    /// Publishes `event` on `topic`, waiting for `Guaranteed` subscribers
    /// with no room.
    pub async fn publish<E>(&self, topic: &str, event: E) -> Result<PublishReport, TopicError>
    where
        E: Send + Sync + 'static,
    {
        let words = check_topic(topic)?;
        let subscriptions = self.snapshot();
        let mut tally = Tally::default();
        for subscription in matching::<E>(&subscriptions, &words) {
            // Guaranteed delivery only waits (and boxes a future) when the
            // subscriber is full.
            let subscriber = &subscription.subscriber;
            let outcome = match (subscription.delivery, subscriber.try_deliver(topic, &event)) {
                (Delivery::Guaranteed, Outcome::Full) => subscriber.deliver(topic, &event).await,
                (_, outcome) => outcome,
            };
            tally.add(outcome);
        }
        // Subscribers of other topics or types that have gone leave too.
        tally.gone |= subscriptions.iter().any(|s| s.subscriber.is_gone());
        Ok(self.finish(tally))
    }

    /// Publishes without ever waiting: `Guaranteed` subscribers with no
    /// room miss the event too (counted as dropped). For synchronous code.
    pub fn try_publish<E>(&self, topic: &str, event: E) -> Result<PublishReport, TopicError>
    where
        E: Send + Sync + 'static,
    {
        let words = check_topic(topic)?;
        let subscriptions = self.snapshot();
        let mut tally = Tally::default();
        for subscription in matching::<E>(&subscriptions, &words) {
            tally.add(subscription.subscriber.try_deliver(topic, &event));
        }
        tally.gone |= subscriptions.iter().any(|s| s.subscriber.is_gone());
        Ok(self.finish(tally))
    }

    /// Sweeps gone subscribers and adds one publish to the totals.
    fn finish(&self, tally: Tally) -> PublishReport {
        if tally.gone {
            self.sweep();
        }
        self.tally(tally.report);
        tally.report
    }
}

/// The subscriptions of event type `E` whose pattern matches `words`.
fn matching<'s, E: 'static>(
    subscriptions: &'s [Subscription],
    words: &'s [&str],
) -> impl Iterator<Item = &'s Subscription> + 's {
    let type_id = TypeId::of::<E>();
    subscriptions
        .iter()
        .filter(move |s| s.type_id == type_id && s.pattern.matches(words))
}

/// Outcomes of one publish so far.
#[derive(Default)]
struct Tally {
    report: PublishReport,
    gone: bool,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Delivered => self.report.delivered += 1,
            Outcome::Full => self.report.dropped += 1,
            Outcome::Gone => self.gone = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let cases = [
            ("order.*", "order.created", true),
            ("order.*", "order.line.added", false),
            ("order.*", "order", false),
            ("order.**", "order", true),
            ("order.**", "order.line.added", true),
            ("**.failed", "order.payment.failed", true),
            ("**", "anything.at.all", true),
            ("order.created", "order.created", true),
            ("order.created", "order.paid", false),
            ("*.created", "user.created", true),
        ];
        for (pattern, topic, expected) in cases {
            let words = check_topic(topic).unwrap();
            assert_eq!(
                Pattern::parse(pattern).unwrap().matches(&words),
                expected,
                "{pattern} vs {topic}"
            );
        }
        assert!(Pattern::parse("order..x").is_err());
        assert!(Pattern::parse("order.cre*").is_err());
        assert!(check_topic("order.*").is_err());
        assert!(check_topic("").is_err());
    }
}
