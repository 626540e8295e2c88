//! The event bus, dead letters on it, metrics and the health check.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cortex_actor::{
    Actor, ActorError, ActorSystem, Context, DEAD_LETTER_TOPIC, DeadLetter, DeadLetterReason,
    Delivery, EventBus, Handler, MailboxConfig, Message, Published, RestartPolicy,
};
use cortex_health::{HealthCheck, HealthStatus};
use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq)]
struct OrderEvent(u64);

#[derive(Default)]
struct Projection {
    seen: Vec<(String, u64)>,
}

impl Actor for Projection {}

impl Handler<Published<OrderEvent>> for Projection {
    async fn handle(
        &mut self,
        published: Published<OrderEvent>,
        _: &mut Context<Self>,
    ) -> Result<(), ActorError> {
        self.seen
            .push((published.topic.to_string(), published.event.0));
        Ok(())
    }
}

struct Seen;
impl Message for Seen {
    type Reply = Vec<(String, u64)>;
}

impl Handler<Seen> for Projection {
    async fn handle(
        &mut self,
        _: Seen,
        _: &mut Context<Self>,
    ) -> Result<Vec<(String, u64)>, ActorError> {
        Ok(self.seen.clone())
    }
}

struct Crash;
impl Message for Crash {
    type Reply = ();
}

impl Handler<Crash> for Projection {
    async fn handle(&mut self, _: Crash, _: &mut Context<Self>) -> Result<(), ActorError> {
        Err(ActorError::msg("crash"))
    }
}

/// Holds the actor in its handler: says when it got there, and returns
/// once released (or once the release is dropped).
struct Block {
    started: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}
impl Message for Block {
    type Reply = ();
}

impl Handler<Block> for Projection {
    async fn handle(&mut self, block: Block, _: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = block.started.send(());
        let _ = block.release.await;
        Ok(())
    }
}

#[tokio::test]
async fn typed_topics_wildcards_and_actor_subscribers() {
    let system = ActorSystem::new("t");
    let bus = EventBus::new();
    let projection = system.spawn(Projection::default).unwrap();
    bus.subscribe_actor::<_, OrderEvent>("order.*", &projection, Delivery::Guaranteed)
        .unwrap();
    let mut everything = bus
        .subscribe::<OrderEvent>("**", 16, Delivery::Guaranteed)
        .unwrap();
    let strings = bus
        .subscribe::<String>("order.*", 16, Delivery::Guaranteed)
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    bus.subscribe_fn::<OrderEvent, _>("order.created", move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();

    assert_eq!(
        bus.publish("order.created", OrderEvent(1))
            .await
            .unwrap()
            .delivered,
        3
    );
    assert_eq!(
        bus.publish("order.line.added", OrderEvent(2))
            .await
            .unwrap()
            .delivered,
        1
    );
    assert_eq!(
        bus.subscriber_count("order.paid").unwrap(),
        3,
        "projection, **, strings"
    );
    assert!(bus.publish("order.*", OrderEvent(3)).await.is_err());
    assert!(
        bus.subscribe::<OrderEvent>("order..x", 1, Delivery::BestEffort)
            .is_err()
    );

    assert_eq!(
        projection.ask(Seen).await.unwrap(),
        [("order.created".to_owned(), 1)]
    );
    assert_eq!(everything.recv().await.unwrap().1, OrderEvent(1));
    assert_eq!(everything.recv().await.unwrap().1, OrderEvent(2));
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // Gone subscribers leave on the next publish.
    drop(strings);
    projection.stop();
    projection.wait_for_stop().await;
    let before = bus.stats().subscriptions;
    bus.publish("order.created", OrderEvent(4)).await.unwrap();
    assert_eq!(bus.stats().subscriptions, before - 2);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn best_effort_drops_and_counts_guaranteed_waits() {
    let bus = EventBus::new();
    let mut lossy = bus.subscribe::<u32>("n", 1, Delivery::BestEffort).unwrap();
    let report = bus.publish("n", 1u32).await.unwrap();
    assert_eq!((report.delivered, report.dropped), (1, 0));
    let report = bus.publish("n", 2u32).await.unwrap();
    assert_eq!((report.delivered, report.dropped), (0, 1));
    assert_eq!(lossy.try_recv().unwrap().1, 1);
    assert_eq!(bus.stats().dropped, 1);

    let bus = EventBus::new();
    let mut reliable = bus.subscribe::<u32>("n", 1, Delivery::Guaranteed).unwrap();
    bus.publish("n", 1u32).await.unwrap();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.publish("n", 2u32).await.unwrap() })
    };
    // The clock is paused: this sleep ends only once every other task is
    // idle, so the publisher has run as far as it can.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!publisher.is_finished(), "waits for room");
    assert_eq!(reliable.recv().await.unwrap().1, 1);
    assert_eq!(publisher.await.unwrap().delivered, 1);
    assert_eq!(reliable.recv().await.unwrap().1, 2);
}

#[tokio::test]
async fn dead_letters_reach_hook_stream_and_bus() {
    let system = ActorSystem::new("t");
    let hooked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hooked);
    system.on_undelivered(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let mut stream = system.dead_letters();
    let mut on_bus = system
        .events()
        .subscribe::<DeadLetter>(DEAD_LETTER_TOPIC, 8, Delivery::BestEffort)
        .unwrap();
    let projection = system.spawn(Projection::default).unwrap();
    projection.stop();
    projection.wait_for_stop().await;
    assert!(projection.tell(Crash).await.is_err());
    let (_, letter) = stream.recv().await.unwrap();
    assert_eq!(letter.reason, DeadLetterReason::ActorStopped);
    assert!(letter.message_type.ends_with("Crash"));
    assert_eq!(on_bus.recv().await.unwrap().1, letter);
    assert_eq!(hooked.load(Ordering::Relaxed), 1);
    assert_eq!(system.stats().dead_letters, 1);
}

#[tokio::test]
async fn metrics_are_labelled_by_actor_type() {
    let system = ActorSystem::new("t");
    let metrics = MetricsRegistry::new();
    system.register_metrics(&metrics).unwrap();
    let first = system.spawn(Projection::default).unwrap();
    let second = system.spawn(Projection::default).unwrap();
    first.ask(Seen).await.unwrap();
    second.ask(Seen).await.unwrap();
    first.tell(Crash).await.unwrap();
    first.ask(Seen).await.unwrap();
    let text = metrics.encode(Format::Prometheus);
    for line in [
        r#"cortex_actor_messages_total{actor="Projection"} 4"#,
        r#"cortex_actor_errors_total{actor="Projection"} 1"#,
        r#"cortex_actor_restarts_total{actor="Projection"} 1"#,
        r#"cortex_actor_live{actor="Projection"} 2"#,
        r#"cortex_actor_mailbox_depth{actor="Projection"} 0"#,
        r#"cortex_actor_handler_duration_seconds_count{actor="Projection"} 4"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    system.shutdown(Duration::from_secs(1)).await;
    let text = metrics.encode(Format::Prometheus);
    assert!(
        text.contains(r#"cortex_actor_messages_total{actor="Projection"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(r#"cortex_actor_live{actor="Projection"} 0"#),
        "{text}"
    );
}

/// A `tracing` subscriber that counts warnings (and records nothing else).
#[derive(Clone, Default)]
struct WarningCount(Arc<AtomicUsize>);

impl tracing::Subscriber for WarningCount {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// How many times `# HELP <name> ` opens a family in `text`.
fn families_named(text: &str, name: &str) -> usize {
    text.matches(&format!("# HELP {name} ")).count()
}

#[tokio::test]
async fn registering_twice_adds_no_series() {
    let system = ActorSystem::new("t");
    let metrics = MetricsRegistry::new();
    system.register_metrics(&metrics).unwrap();
    system.register_metrics(&metrics).unwrap();
    let projection = system.spawn(Projection::default).unwrap();
    projection.ask(Seen).await.unwrap();
    // A duplicate collector would also yield one family per name (the
    // registry skips taken names), but warn on every scrape: count both.
    let warnings = WarningCount::default();
    let text =
        tracing::subscriber::with_default(warnings.clone(), || metrics.encode(Format::Prometheus));
    assert_eq!(warnings.0.load(Ordering::Relaxed), 0, "{text}");
    for family in [
        "cortex_actor_messages_total",
        "cortex_actor_live",
        "cortex_actor_bus_deliveries_total",
        "cortex_actor_handler_duration_seconds",
    ] {
        assert_eq!(families_named(&text, family), 1, "{family} in\n{text}");
    }
    assert!(
        text.contains(r#"cortex_actor_messages_total{actor="Projection"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"cortex_actor_handler_duration_seconds_count{actor="Projection"} 1"#),
        "{text}"
    );
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn registering_after_spawning_times_the_actors_already_running() {
    let system = ActorSystem::new("t");
    let projection = system.spawn(Projection::default).unwrap();
    projection.ask(Seen).await.unwrap();
    let metrics = MetricsRegistry::new();
    system.register_metrics(&metrics).unwrap();
    projection.ask(Seen).await.unwrap();
    let text = metrics.encode(Format::Prometheus);
    // Counters are the system's own, so they include what came before;
    // timing starts with the registration.
    for line in [
        r#"cortex_actor_messages_total{actor="Projection"} 2"#,
        r#"cortex_actor_live{actor="Projection"} 1"#,
        r#"cortex_actor_handler_duration_seconds_count{actor="Projection"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_second_registry_reads_the_counters_and_the_first_keeps_the_histogram() {
    let system = ActorSystem::new("t");
    let first = MetricsRegistry::new();
    let second = MetricsRegistry::new();
    system.register_metrics(&first).unwrap();
    system.register_metrics(&second).unwrap();
    let projection = system.spawn(Projection::default).unwrap();
    projection.ask(Seen).await.unwrap();
    let (first, second) = (
        first.encode(Format::Prometheus),
        second.encode(Format::Prometheus),
    );
    for text in [&first, &second] {
        assert!(
            text.contains(r#"cortex_actor_messages_total{actor="Projection"} 1"#),
            "{text}"
        );
    }
    assert!(
        first.contains(r#"cortex_actor_handler_duration_seconds_count{actor="Projection"} 1"#),
        "{first}"
    );
    assert_eq!(
        families_named(&second, "cortex_actor_handler_duration_seconds"),
        0,
        "{second}"
    );
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn health_degrades_on_exhausted_restarts_and_stuck_mailboxes() {
    let system = ActorSystem::new("t");
    let check = system.health_check();
    assert_eq!(check.check().await.status, HealthStatus::Up);

    let fragile = system
        .actor(Projection::default)
        .restart_policy(RestartPolicy::never())
        .spawn()
        .unwrap();
    fragile.tell(Crash).await.unwrap();
    fragile.wait_for_stop().await;
    assert_eq!(check.check().await.status, HealthStatus::Degraded);
    assert_eq!(
        check.check().await.status,
        HealthStatus::Up,
        "reported once"
    );

    let busy = system
        .actor(Projection::default)
        .mailbox(MailboxConfig::bounded(1))
        .spawn()
        .unwrap();
    let (started, busy_now) = oneshot::channel();
    let (_release, release) = oneshot::channel();
    busy.tell(Block { started, release }).await.unwrap();
    // In the handler, so the mailbox is empty: one more message fills it.
    busy_now.await.unwrap();
    busy.tell(Seen).await.unwrap();
    assert_eq!(
        check.check().await.status,
        HealthStatus::Up,
        "full once is fine"
    );
    assert_eq!(check.check().await.status, HealthStatus::Degraded);
    busy.kill();
    system.shutdown(Duration::from_millis(100)).await;
    assert_eq!(check.check().await.status, HealthStatus::Down);
}
