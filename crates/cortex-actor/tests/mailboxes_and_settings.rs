//! Mailbox and system settings as users configure them: unbounded
//! mailboxes, undelivered messages handed back, and the system-wide ask
//! timeouts and default mailbox.

use std::time::Duration;

use cortex_actor::{
    Actor, ActorError, ActorSystem, AskError, Context, Handler, MailboxConfig, Message, Overflow,
    SendError,
};

/// Holds its handler until told to go on, so its mailbox fills.
struct Gate(Option<tokio::sync::oneshot::Receiver<()>>);
impl Actor for Gate {}

struct Wait;
impl Message for Wait {
    type Reply = ();
}
impl Handler<Wait> for Gate {
    async fn handle(&mut self, _: Wait, _: &mut Context<Self>) -> Result<(), ActorError> {
        if let Some(gate) = self.0.take() {
            let _ = gate.await;
        }
        Ok(())
    }
}

/// Not `Debug`: `SendError` must still be printable and unwrappable.
struct Order(u32);
impl Message for Order {
    type Reply = ();
}
impl Handler<Order> for Gate {
    async fn handle(&mut self, _: Order, _: &mut Context<Self>) -> Result<(), ActorError> {
        Ok(())
    }
}

/// A gated actor whose handler is busy until the returned sender fires.
async fn busy(
    system: &ActorSystem,
    mailbox: Option<MailboxConfig>,
) -> (
    cortex_actor::ActorRef<Gate>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (open, gate) = tokio::sync::oneshot::channel();
    let mut gate = Some(gate);
    let mut spawn = system.actor(move || Gate(gate.take()));
    if let Some(mailbox) = mailbox {
        spawn = spawn.mailbox(mailbox);
    }
    let actor = spawn.spawn().unwrap();
    actor.tell(Wait).await.unwrap();
    while actor.mailbox_len() > 0 {
        tokio::task::yield_now().await;
    }
    (actor, open)
}

#[tokio::test]
async fn an_unbounded_mailbox_never_refuses_or_makes_senders_wait() {
    let system = ActorSystem::new("t");
    let (actor, open) = busy(&system, Some(MailboxConfig::unbounded())).await;
    for i in 0..5_000 {
        actor.try_tell(Order(i)).unwrap();
    }
    assert_eq!(actor.mailbox_len(), 5_000);
    open.send(()).unwrap();
    system.shutdown(Duration::from_secs(5)).await;
    assert_eq!(system.stats().dead_letters, 0);
}

#[tokio::test]
async fn an_undelivered_message_comes_back_to_the_sender() {
    let system = ActorSystem::new("t");
    let (actor, open) = busy(
        &system,
        Some(MailboxConfig::bounded(1).overflow(Overflow::FailFast)),
    )
    .await;
    actor.try_tell(Order(1)).unwrap();
    let full = actor.try_tell(Order(2)).unwrap_err();
    assert_eq!(format!("{full:?}"), "MailboxFull(..)");
    assert_eq!(full.to_string(), "the actor's mailbox is full");
    assert_eq!(full.into_message().0, 2);

    open.send(()).unwrap();
    actor.stop();
    actor.wait_for_stop().await;
    let stopped = actor.tell(Order(3)).await.unwrap_err();
    assert!(matches!(stopped, SendError::ActorStopped(_)));
    assert_eq!(format!("{stopped:?}"), "ActorStopped(..)");
    assert_eq!(stopped.into_message().0, 3);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_systems_default_mailbox_applies_to_actors_spawned_without_one() {
    let system = ActorSystem::builder("t")
        .default_mailbox(MailboxConfig::bounded(2).overflow(Overflow::FailFast))
        .build();
    let (actor, open) = busy(&system, None).await;
    actor.try_tell(Order(1)).unwrap();
    actor.try_tell(Order(2)).unwrap();
    assert!(matches!(
        actor.try_tell(Order(3)),
        Err(SendError::MailboxFull(_))
    ));
    // An explicit mailbox still wins over the system's default.
    let (roomy, open_roomy) = busy(&system, Some(MailboxConfig::bounded(10))).await;
    for i in 0..10 {
        roomy.try_tell(Order(i)).unwrap();
    }
    open.send(()).unwrap();
    open_roomy.send(()).unwrap();
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_systems_ask_timeouts_bound_every_ask() {
    let system = ActorSystem::builder("t")
        .ask_timeouts(Duration::from_millis(30), Some(Duration::from_millis(50)))
        .default_mailbox(MailboxConfig::bounded(1))
        .build();
    let (actor, open) = busy(&system, None).await;
    // Queued behind the busy handler: no reply within 50 ms.
    let started = tokio::time::Instant::now();
    assert_eq!(actor.ask(Order(1)).await, Err(AskError::ReplyTimeout));
    assert!(started.elapsed() >= Duration::from_millis(50));
    // The mailbox (capacity 1) now holds that question: no room in 30 ms.
    let started = tokio::time::Instant::now();
    assert_eq!(actor.ask(Order(2)).await, Err(AskError::MailboxTimeout));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(30) && waited < Duration::from_millis(50),
        "{waited:?}"
    );
    open.send(()).unwrap();
    system.shutdown(Duration::from_secs(1)).await;
}
