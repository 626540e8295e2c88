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
//!
//! Patterns and topics are parsed in `pattern.rs`; the three kinds of
//! subscriber (stream, actor, callback) are in `subscriber.rs`.

pub(crate) mod pattern;
pub(crate) mod subscriber;

use std::any::TypeId;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::actor::{Actor, Handler};
use crate::actor_ref::ActorRef;

use pattern::{Pattern, check_topic};
use subscriber::{FnSubscriber, Outcome, StreamSubscriber, Subscriber, TypedActorSubscriber};

pub use pattern::TopicError;
pub use subscriber::{EventStream, Published};

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

#[derive(Clone)]
struct Subscription {
    id: u64,
    pattern: Pattern,
    type_id: TypeId,
    delivery: Delivery,
    subscriber: Arc<dyn Subscriber>,
    /// Forwards events to other nodes (`cluster`): events that came from
    /// another node skip it, so nothing echoes back.
    exported: bool,
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

/// Identifies a subscription, to cancel it with [`EventBus::unsubscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionHandle(u64);

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
        self.add_subscription(pattern, type_id, delivery, subscriber, false)
    }

    /// Subscribes the forwarder of a cluster bridge: it sees events
    /// published here, never events [`publish_imported`](Self::publish_imported).
    #[cfg(feature = "nats")]
    pub(crate) fn add_export(
        &self,
        pattern: &str,
        type_id: TypeId,
        delivery: Delivery,
        subscriber: Arc<dyn Subscriber>,
    ) -> Result<SubscriptionHandle, TopicError> {
        self.add_subscription(pattern, type_id, delivery, subscriber, true)
    }

    fn add_subscription(
        &self,
        pattern: &str,
        type_id: TypeId,
        delivery: Delivery,
        subscriber: Arc<dyn Subscriber>,
        exported: bool,
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
            exported,
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
            Arc::new(StreamSubscriber::new(sender)),
        )?;
        Ok(EventStream::new(receiver, subscription))
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
            Arc::new(TypedActorSubscriber::<A, E>::new(actor.clone())),
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
            Arc::new(FnSubscriber::new(callback)),
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
        self.publish_from(topic, event, Origin::Here).await
    }

    /// Publishes an event another node published: local subscribers get
    /// it, the bridges that forward events to other nodes do not.
    #[cfg(feature = "nats")]
    pub(crate) async fn publish_imported<E>(
        &self,
        topic: &str,
        event: E,
    ) -> Result<PublishReport, TopicError>
    where
        E: Send + Sync + 'static,
    {
        self.publish_from(topic, event, Origin::Elsewhere).await
    }

    async fn publish_from<E>(
        &self,
        topic: &str,
        event: E,
        origin: Origin,
    ) -> Result<PublishReport, TopicError>
    where
        E: Send + Sync + 'static,
    {
        let words = check_topic(topic)?;
        let subscriptions = self.snapshot();
        let mut tally = Tally::default();
        for subscription in
            matching::<E>(&subscriptions, &words).filter(|s| origin == Origin::Here || !s.exported)
        {
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

/// Where a published event comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Published on this node: every matching subscription gets it.
    Here,
    /// Published on another node: bridges to other nodes skip it.
    #[cfg(feature = "nats")]
    Elsewhere,
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
