//! Event-bus delivery when subscribers cancel, leave or fall behind:
//! unsubscribing, readers that go away (even while a publisher waits for
//! them), and actor subscribers whose mailboxes are full or closed.

use std::time::Duration;

use cortex_actor::{
    Actor, ActorError, ActorRef, ActorSystem, Context, Delivery, EventBus, Handler, MailboxConfig,
    Message, Published,
};

#[tokio::test]
async fn unsubscribing_stops_delivery_and_succeeds_only_once() {
    let bus = EventBus::new();
    let mut stream = bus.subscribe::<u32>("n", 4, Delivery::BestEffort).unwrap();
    let handle = *stream.subscription();
    assert!(bus.unsubscribe(handle));
    assert!(!bus.unsubscribe(handle), "already gone");
    let report = bus.publish("n", 1u32).await.unwrap();
    assert_eq!(report.delivered, 0);
    assert_eq!(bus.subscriber_count("n").unwrap(), 0);
    // The stream ends: the bus dropped its sender.
    assert_eq!(stream.recv().await, None);
}

#[tokio::test]
async fn a_dropped_stream_is_removed_on_the_next_publish() {
    let bus = EventBus::new();
    let kept = bus.subscribe::<u32>("n", 4, Delivery::BestEffort).unwrap();
    let dropped = bus.subscribe::<u32>("n", 4, Delivery::BestEffort).unwrap();
    drop(dropped);
    let report = bus.try_publish("n", 1u32).unwrap();
    assert_eq!((report.delivered, report.dropped), (1, 0));
    assert_eq!(bus.stats().subscriptions, 1);
    drop(kept);
}

#[tokio::test(start_paused = true)]
async fn a_guaranteed_reader_that_leaves_while_the_publisher_waits_does_not_hang_it() {
    let bus = EventBus::new();
    let stream = bus.subscribe::<u32>("n", 1, Delivery::Guaranteed).unwrap();
    bus.publish("n", 1u32).await.unwrap();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish("n", 2u32).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!publisher.is_finished(), "waits for room");
    drop(stream);
    let report = publisher.await.unwrap();
    assert_eq!((report.delivered, report.dropped), (0, 0));
    assert_eq!(bus.stats().subscriptions, 0);
}

/// Records events; its handler blocks until its gate opens.
struct Listener {
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
    seen: Vec<u32>,
}
impl Actor for Listener {}

impl Handler<Published<u32>> for Listener {
    async fn handle(&mut self, p: Published<u32>, _: &mut Context<Self>) -> Result<(), ActorError> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.await;
        }
        self.seen.push(p.event);
        Ok(())
    }
}

struct Seen;
impl Message for Seen {
    type Reply = Vec<u32>;
}
impl Handler<Seen> for Listener {
    async fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> Result<Vec<u32>, ActorError> {
        Ok(self.seen.clone())
    }
}

/// A listener with a one-message mailbox, busy handling event 0 until the
/// returned sender fires; its mailbox is then filled with event 1.
async fn full_listener(
    system: &ActorSystem,
    bus: &EventBus,
    delivery: Delivery,
) -> (ActorRef<Listener>, tokio::sync::oneshot::Sender<()>) {
    let (open, gate) = tokio::sync::oneshot::channel();
    let mut gate = Some(gate);
    let listener = system
        .actor(move || Listener {
            gate: gate.take(),
            seen: Vec::new(),
        })
        .mailbox(MailboxConfig::bounded(1))
        .spawn()
        .unwrap();
    bus.subscribe_actor::<Listener, u32>("n", &listener, delivery)
        .unwrap();
    assert_eq!(bus.publish("n", 0u32).await.unwrap().delivered, 1);
    while listener.mailbox_len() > 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(bus.publish("n", 1u32).await.unwrap().delivered, 1);
    (listener, open)
}

#[tokio::test]
async fn a_best_effort_actor_with_a_full_mailbox_misses_the_event() {
    let system = ActorSystem::new("t");
    let bus = EventBus::new();
    let (listener, open) = full_listener(&system, &bus, Delivery::BestEffort).await;
    let report = bus.publish("n", 2u32).await.unwrap();
    assert_eq!((report.delivered, report.dropped), (0, 1));
    open.send(()).unwrap();
    assert_eq!(listener.ask(Seen).await.unwrap(), [0, 1]);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_guaranteed_actor_with_a_full_mailbox_makes_the_publisher_wait() {
    let system = ActorSystem::new("t");
    let bus = EventBus::new();
    let (listener, open) = full_listener(&system, &bus, Delivery::Guaranteed).await;
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish("n", 2u32).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!publisher.is_finished(), "waits for mailbox room");
    open.send(()).unwrap();
    assert_eq!(publisher.await.unwrap().delivered, 1);
    assert_eq!(listener.ask(Seen).await.unwrap(), [0, 1, 2]);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_stopped_actor_subscriber_is_removed_on_the_next_publish() {
    let system = ActorSystem::new("t");
    let bus = EventBus::new();
    let listener = system
        .spawn(|| Listener {
            gate: None,
            seen: Vec::new(),
        })
        .unwrap();
    bus.subscribe_actor::<Listener, u32>("n", &listener, Delivery::Guaranteed)
        .unwrap();
    listener.stop();
    listener.wait_for_stop().await;
    let report = bus.publish("n", 1u32).await.unwrap();
    assert_eq!((report.delivered, report.dropped), (0, 0));
    assert_eq!(bus.stats().subscriptions, 0);
    system.shutdown(Duration::from_secs(1)).await;
}
