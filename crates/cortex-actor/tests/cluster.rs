//! The cluster module against a real `nats-server -js`: bridged events
//! reach other nodes once and never echo, overlapping bridges carry an
//! event once, types stay apart, the trace context crosses, a consumer
//! group handles every stored event with retries and dead letters, remote
//! asks and tells reach a named actor (and fail at once when nobody serves
//! it), and placement gives one owner per name with takeover from a dead
//! node. Every test is ignored by default; with a server running,
//!
//! ```text
//! CORTEX_TEST_NATS_URL=nats://127.0.0.1:4222 \
//!     cargo test -p cortex-actor --features nats --test cluster -- --ignored
//! ```

#![cfg(feature = "nats")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex_actor::cluster::{
    Claim, Cluster, ConsumeOptions, RemoteActor, RemoteError, RemoteEvent, RemoteMessage, Transport,
};
use cortex_actor::{
    Actor, ActorError, ActorSystem, AskError, Context, Delivery, EventBus, Handler, Message,
};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

const NEEDS_NATS: &str = "needs nats-server -js; cargo xtask cluster runs them";

fn nats_url() -> String {
    std::env::var("CORTEX_TEST_NATS_URL")
        .unwrap_or_else(|_| panic!("set CORTEX_TEST_NATS_URL to run these tests ({NEEDS_NATS})"))
}

/// A namespace no earlier run used, so streams and buckets left on the
/// server never meet a test.
fn namespace(test: &str) -> String {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    format!("{test}-{}-{}", nanos % 1_000_000_000_000, n)
}

async fn node(namespace: &str, name: &str, jetstream: bool) -> Cluster {
    Cluster::builder(nats_url())
        .namespace(namespace)
        .node(name)
        .jetstream(jetstream)
        .node_ttl(Duration::from_secs(2))
        .connect(EventBus::new())
        .await
        .unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderEvent {
    id: u64,
}

impl RemoteEvent for OrderEvent {
    const NAME: &'static str = "test-order-event";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AuditEvent {
    text: String,
}

impl RemoteEvent for AuditEvent {
    const NAME: &'static str = "test-audit-event";
}

/// Waits until `done` holds, for at most 10 s (a bound, not a timing
/// assertion: the check after it says what was missing).
async fn eventually(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Drains what arrives within `quiet` of the last event.
async fn drain<E>(stream: &mut cortex_actor::EventStream<E>, quiet: Duration) -> Vec<(String, E)> {
    let mut got = Vec::new();
    while let Ok(Some((topic, event))) = tokio::time::timeout(quiet, stream.recv()).await {
        got.push((topic.to_string(), event));
    }
    got
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn a_bridged_event_reaches_other_nodes_once_and_never_echoes() {
    let ns = namespace("echo");
    let a = node(&ns, "node-a", false).await;
    let b = node(&ns, "node-b", false).await;
    for cluster in [&a, &b] {
        cluster
            .bridge::<OrderEvent>("order.*", Transport::Core)
            .await
            .unwrap();
    }
    let mut on_a = a
        .bus()
        .subscribe::<OrderEvent>("order.*", 64, Delivery::Guaranteed)
        .unwrap();
    let mut on_b = b
        .bus()
        .subscribe::<OrderEvent>("order.**", 64, Delivery::Guaranteed)
        .unwrap();
    a.client().flush().await.unwrap();
    b.client().flush().await.unwrap();

    for id in 0..10 {
        a.bus()
            .publish("order.created", OrderEvent { id })
            .await
            .unwrap();
    }
    b.bus()
        .publish("order.paid", OrderEvent { id: 100 })
        .await
        .unwrap();

    let got_b = drain(&mut on_b, Duration::from_millis(500)).await;
    let got_a = drain(&mut on_a, Duration::from_millis(500)).await;
    let ids = |got: &[(String, OrderEvent)]| {
        let mut ids: Vec<u64> = got.iter().map(|(_, e)| e.id).collect();
        ids.sort_unstable();
        ids
    };
    let mut expected: Vec<u64> = (0..10).collect();
    expected.push(100);
    // Each node sees its own events once (from the local bus) and the
    // other's once (from NATS): no echo, no duplicate.
    assert_eq!(ids(&got_a), expected);
    assert_eq!(ids(&got_b), expected);
    assert!(got_b.iter().any(|(topic, _)| topic == "order.created"));
    assert_eq!(a.stats().exported, 10);
    assert_eq!(a.stats().imported, 1);
    assert_eq!(b.stats().exported, 1);
    assert_eq!(b.stats().imported, 10);
    // The same counts as Prometheus series.
    use cortex_metrics::RegisterMetrics as _;
    let metrics = cortex_metrics::MetricsRegistry::new();
    b.register_metrics(&metrics).unwrap();
    let text = metrics.encode(cortex_metrics::Format::Prometheus);
    for line in [
        format!(r#"cortex_cluster_events_total{{namespace="{ns}",outcome="imported"}} 10"#),
        format!(r#"cortex_cluster_events_total{{namespace="{ns}",outcome="exported"}} 1"#),
        format!(r#"cortex_cluster_connected{{namespace="{ns}"}} 1"#),
    ] {
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn a_jetstream_bridge_brings_a_returning_node_what_it_missed() {
    let ns = namespace("missed");
    let a = node(&ns, "node-a", true).await;
    a.bridge::<OrderEvent>("order.*", Transport::JetStream)
        .await
        .unwrap();
    let b = node(&ns, "node-b", true).await;
    b.bridge::<OrderEvent>("order.*", Transport::JetStream)
        .await
        .unwrap();
    let mut on_b = b
        .bus()
        .subscribe::<OrderEvent>("order.*", 256, Delivery::Guaranteed)
        .unwrap();
    for id in 0..50 {
        a.bus()
            .publish("order.created", OrderEvent { id })
            .await
            .unwrap();
    }
    let first = drain(&mut on_b, Duration::from_millis(500)).await;
    assert_eq!(first.len(), 50);
    // node-b goes away; node-a goes on publishing; a new node-b process
    // (same name) gets what it missed, and nothing twice.
    b.shutdown(Duration::from_secs(2)).await;
    drop(on_b);
    for id in 50..100 {
        a.bus()
            .publish("order.created", OrderEvent { id })
            .await
            .unwrap();
    }
    eventually(|| a.stats().stored == 100).await;
    let b = node(&ns, "node-b", true).await;
    let mut on_b = b
        .bus()
        .subscribe::<OrderEvent>("order.*", 256, Delivery::Guaranteed)
        .unwrap();
    b.bridge::<OrderEvent>("order.*", Transport::JetStream)
        .await
        .unwrap();
    // At least once: each missed event arrives (one the first process had
    // pulled and not delivered comes back after the 5 s acknowledgement
    // wait), nothing it already delivered comes again.
    let mut missed = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while missed.len() < 50 {
        match tokio::time::timeout_at(deadline, on_b.recv()).await {
            Ok(Some((_, event))) => {
                missed.insert(event.id);
            }
            _ => break,
        }
    }
    assert_eq!(
        missed.into_iter().collect::<Vec<_>>(),
        (50..100).collect::<Vec<_>>()
    );
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn overlapping_bridges_carry_an_event_once_and_types_stay_apart() {
    let ns = namespace("overlap");
    let a = node(&ns, "node-a", false).await;
    let b = node(&ns, "node-b", false).await;
    for cluster in [&a, &b] {
        cluster
            .bridge::<OrderEvent>("order.*", Transport::Core)
            .await
            .unwrap();
        cluster
            .bridge::<OrderEvent>("order.**", Transport::Core)
            .await
            .unwrap();
        cluster
            .bridge::<AuditEvent>("order.**", Transport::Core)
            .await
            .unwrap();
    }
    let mut orders = b
        .bus()
        .subscribe::<OrderEvent>("**", 64, Delivery::Guaranteed)
        .unwrap();
    let mut audits = b
        .bus()
        .subscribe::<AuditEvent>("**", 64, Delivery::Guaranteed)
        .unwrap();
    b.client().flush().await.unwrap();

    a.bus()
        .publish("order.created", OrderEvent { id: 1 })
        .await
        .unwrap();
    a.bus()
        .publish("order.line.added", OrderEvent { id: 2 })
        .await
        .unwrap();
    a.bus()
        .publish("order", OrderEvent { id: 3 })
        .await
        .unwrap();
    a.bus()
        .publish(
            "order.created",
            AuditEvent {
                text: "seen".into(),
            },
        )
        .await
        .unwrap();

    let mut orders = drain(&mut orders, Duration::from_millis(500)).await;
    // Order is kept per bridge, not across bridges.
    orders.sort_by_key(|(_, event)| event.id);
    let audits = drain(&mut audits, Duration::from_millis(500)).await;
    assert_eq!(
        orders,
        vec![
            ("order.created".to_owned(), OrderEvent { id: 1 }),
            ("order.line.added".to_owned(), OrderEvent { id: 2 }),
            ("order".to_owned(), OrderEvent { id: 3 }),
        ]
    );
    assert_eq!(
        audits,
        vec![(
            "order.created".to_owned(),
            AuditEvent {
                text: "seen".into()
            }
        )]
    );
    assert_eq!(b.stats().decode_errors, 0);
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn the_trace_context_crosses_nodes() {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let ns = namespace("trace");
    let a = node(&ns, "node-a", true).await;
    let b = node(&ns, "node-b", true).await;
    for cluster in [&a, &b] {
        cluster
            .bridge::<OrderEvent>("order.*", Transport::JetStream)
            .await
            .unwrap();
    }
    let seen: Arc<Mutex<Vec<(TraceId, u64)>>> = Arc::default();
    let recorder = Arc::clone(&seen);
    let _group = b
        .consume::<OrderEvent, _, _>(
            "audit",
            "order.*",
            ConsumeOptions::default(),
            move |_, event| {
                let trace = opentelemetry::Context::current()
                    .span()
                    .span_context()
                    .trace_id();
                recorder.lock().unwrap().push((trace, event.id));
                async { Ok(()) }
            },
        )
        .await
        .unwrap();
    // And a live subscriber's delivery runs inside it too.
    let live: Arc<Mutex<Vec<TraceId>>> = Arc::default();
    let live_recorder = Arc::clone(&live);
    b.bus()
        .subscribe_fn::<OrderEvent, _>("order.*", move |_, _| {
            live_recorder.lock().unwrap().push(
                opentelemetry::Context::current()
                    .span()
                    .span_context()
                    .trace_id(),
            );
        })
        .unwrap();
    b.client().flush().await.unwrap();

    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let parent = SpanContext::new(
        trace_id,
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = opentelemetry::Context::new().with_remote_span_context(parent);
    {
        let _attached = cx.attach();
        a.bus()
            .publish("order.created", OrderEvent { id: 9 })
            .await
            .unwrap();
    }
    eventually(|| !seen.lock().unwrap().is_empty() && !live.lock().unwrap().is_empty()).await;
    assert_eq!(*seen.lock().unwrap(), vec![(trace_id, 9)]);
    assert_eq!(*live.lock().unwrap(), vec![trace_id]);
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn a_consumer_group_handles_every_stored_event_with_retries_and_dead_letters() {
    let ns = namespace("group");
    let a = node(&ns, "node-a", true).await;
    let b = node(&ns, "node-b", true).await;
    for cluster in [&a, &b] {
        cluster
            .bridge::<OrderEvent>("order.*", Transport::JetStream)
            .await
            .unwrap();
    }
    // Dead letters are stored: read them with a plain subscription.
    let mut dead = a
        .client()
        .subscribe(a.dead_letter_subject("billing"))
        .await
        .unwrap();

    // Handled: id → (member, attempts). Every id divisible by 10 fails
    // once; id 13 always fails.
    let handled: Arc<Mutex<BTreeMap<u64, Vec<&'static str>>>> = Arc::default();
    let attempts: Arc<Mutex<BTreeMap<u64, u32>>> = Arc::default();
    let options = ConsumeOptions {
        max_deliver: 3,
        retry_delay: Duration::from_millis(50),
        ..ConsumeOptions::default()
    };
    let mut members = Vec::new();
    for (cluster, member) in [(&a, "a"), (&b, "b")] {
        let handled = Arc::clone(&handled);
        let attempts = Arc::clone(&attempts);
        members.push(
            cluster
                .consume::<OrderEvent, _, _>(
                    "billing",
                    "order.*",
                    options.clone(),
                    move |_, event| {
                        let tries = {
                            let mut attempts = attempts.lock().unwrap();
                            let tries = attempts.entry(event.id).or_default();
                            *tries += 1;
                            *tries
                        };
                        let fail = event.id == 13 || (event.id % 10 == 0 && tries == 1);
                        if !fail {
                            handled
                                .lock()
                                .unwrap()
                                .entry(event.id)
                                .or_default()
                                .push(member);
                        }
                        async move {
                            if fail {
                                Err(ActorError::msg(format!("attempt {tries} failed")))
                            } else {
                                Ok(())
                            }
                        }
                    },
                )
                .await
                .unwrap(),
        );
    }

    for id in 0..200 {
        a.bus()
            .publish("order.created", OrderEvent { id })
            .await
            .unwrap();
    }
    eventually(|| handled.lock().unwrap().len() == 199).await;
    let dead_letter = tokio::time::timeout(Duration::from_secs(10), dead.next())
        .await
        .expect("a dead letter")
        .unwrap();

    let handled = handled.lock().unwrap().clone();
    // Every event but the poisonous one, each once.
    assert_eq!(
        handled.len(),
        199,
        "missing: {:?}",
        (0..200)
            .filter(|id| !handled.contains_key(id))
            .collect::<Vec<_>>()
    );
    assert!(handled.values().all(|members| members.len() == 1));
    assert!(!handled.contains_key(&13));
    // Both members took a share.
    let by_a = handled.values().filter(|m| m[0] == "a").count();
    assert!(by_a > 0 && by_a < 199, "a handled {by_a} of 199");
    // The poisonous one, after exactly three attempts.
    assert_eq!(attempts.lock().unwrap()[&13], 3);
    let headers = dead_letter.headers.unwrap();
    assert_eq!(headers.get("Cortex-Deliveries").unwrap().as_str(), "3");
    assert_eq!(
        headers.get("Cortex-Dead-Reason").unwrap().as_str(),
        "attempt 3 failed"
    );
    assert_eq!(
        serde_json::from_slice::<OrderEvent>(&dead_letter.payload).unwrap(),
        OrderEvent { id: 13 }
    );
    // The counters move after the server's confirmations.
    eventually(|| a.stats().consumed + b.stats().consumed == 199).await;
    eventually(|| a.stats().dead_lettered + b.stats().dead_lettered == 1).await;
    let stats = [a.stats(), b.stats()];
    assert_eq!(stats[0].stored, 200);
    assert_eq!(stats.iter().map(|s| s.consumed).sum::<u64>(), 199);
    assert_eq!(stats.iter().map(|s| s.dead_lettered).sum::<u64>(), 1);
    // 20 ids fail once, id 13 twice before its third (dead-lettering) try.
    assert_eq!(stats.iter().map(|s| s.redelivered).sum::<u64>(), 22);
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn a_new_group_member_resumes_where_the_group_left_off() {
    let ns = namespace("resume");
    let a = node(&ns, "node-a", true).await;
    a.bridge::<OrderEvent>("order.*", Transport::JetStream)
        .await
        .unwrap();
    let handled: Arc<Mutex<Vec<u64>>> = Arc::default();
    let consume = |cluster: Cluster, handled: Arc<Mutex<Vec<u64>>>| async move {
        cluster
            .consume::<OrderEvent, _, _>(
                "stats",
                "order.*",
                ConsumeOptions::default(),
                move |_, event| {
                    handled.lock().unwrap().push(event.id);
                    async { Ok(()) }
                },
            )
            .await
            .unwrap()
    };
    let first = consume(a.clone(), Arc::clone(&handled)).await;
    for id in 0..5 {
        a.bus()
            .publish("order.created", OrderEvent { id })
            .await
            .unwrap();
    }
    eventually(|| handled.lock().unwrap().len() == 5).await;
    first.stop();
    // Published while the group has no member: stored, not lost.
    for id in 5..10 {
        a.bus()
            .publish("order.created", OrderEvent { id })
            .await
            .unwrap();
    }
    eventually(|| a.stats().stored == 10).await;
    let b = node(&ns, "node-b", true).await;
    let _second = consume(b, Arc::clone(&handled)).await;
    eventually(|| handled.lock().unwrap().len() == 10).await;
    assert_eq!(*handled.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

// --- remote actors ---------------------------------------------------

struct Counter {
    count: u64,
}

impl Actor for Counter {}

impl RemoteActor for Counter {
    const TYPE: &'static str = "counter";
}

#[derive(Debug, Serialize, Deserialize)]
struct Add(u64);

impl Message for Add {
    type Reply = u64;
}

impl RemoteMessage for Add {
    const NAME: &'static str = "add";
}

#[derive(Debug, Serialize, Deserialize)]
struct Fail;

impl Message for Fail {
    type Reply = ();
}

impl RemoteMessage for Fail {
    const NAME: &'static str = "fail";
}

#[derive(Debug, Serialize, Deserialize)]
struct NotServed;

impl Message for NotServed {
    type Reply = ();
}

impl RemoteMessage for NotServed {
    const NAME: &'static str = "not-served";
}

impl Handler<Add> for Counter {
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> Result<u64, ActorError> {
        self.count += n;
        Ok(self.count)
    }
}

impl Handler<Fail> for Counter {
    async fn handle(&mut self, _: Fail, _: &mut Context<Self>) -> Result<(), ActorError> {
        Err(ActorError::msg("refused"))
    }
}

impl Handler<NotServed> for Counter {
    async fn handle(&mut self, _: NotServed, _: &mut Context<Self>) -> Result<(), ActorError> {
        Ok(())
    }
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn a_named_actor_answers_from_another_node() {
    let ns = namespace("remote");
    let a = node(&ns, "node-a", false).await;
    let b = node(&ns, "node-b", false).await;
    let system = ActorSystem::new("remote");
    let counter = system
        .actor(|| Counter { count: 0 })
        .name("counter-1")
        .spawn()
        .unwrap();
    let served = a
        .serve("counter-1", &counter)
        .message::<Add>()
        .message::<Fail>()
        .start()
        .await
        .unwrap();
    a.client().flush().await.unwrap();

    let remote = b.remote::<Counter>("counter-1");
    assert_eq!(remote.ask(Add(2)).await.unwrap(), 2);
    remote.tell(Add(3)).await.unwrap();
    assert_eq!(remote.ask(Add(0)).await.unwrap(), 5);
    // The handler's error, as a local ask would report it.
    assert_eq!(
        remote.ask(Fail).await,
        Err(RemoteError::Ask(AskError::HandlerFailed("refused".into())))
    );
    assert_eq!(
        remote.ask(NotServed).await,
        Err(RemoteError::UnknownMessage("not-served".into()))
    );
    // Nobody serves this name: NATS says so at once.
    assert_eq!(
        b.remote::<Counter>("counter-2")
            .with_timeout(Duration::from_secs(30))
            .ask(Add(1))
            .await,
        Err(RemoteError::Ask(AskError::ActorStopped))
    );
    assert!(served.is_serving());
    // Once the actor stops, its name stops answering.
    counter.stop();
    counter.wait_for_stop().await;
    eventually(|| !served.is_serving()).await;
    assert!(!served.is_serving());
    // The unsubscribe travels on node-a's connection, the ask on node-b's:
    // an ask the server routed just before it saw the unsubscribe times
    // out instead. From then on, "no responders" at once.
    let remote = remote.with_timeout(Duration::from_secs(1));
    let mut answer = remote.ask(Add(1)).await;
    for _ in 0..10 {
        if answer == Err(RemoteError::Ask(AskError::ActorStopped)) {
            break;
        }
        assert_eq!(answer, Err(RemoteError::Ask(AskError::ReplyTimeout)));
        answer = remote.ask(Add(1)).await;
    }
    assert_eq!(answer, Err(RemoteError::Ask(AskError::ActorStopped)));
    assert!(a.stats().served >= 5);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn placement_gives_one_owner_and_a_dead_nodes_names_are_taken_over() {
    let ns = namespace("place");
    let a = node(&ns, "node-a", true).await;
    let b = node(&ns, "node-b", true).await;
    let on_a = a.placement("orders").await.unwrap();
    let on_b = b.placement("orders").await.unwrap();

    // Racing claims: exactly one node gets each name.
    let mut winners = BTreeMap::new();
    for n in 0..20 {
        let name = format!("order-{n}");
        let (x, y) = tokio::join!(on_a.claim(&name), on_b.claim(&name));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x.is_mine() != y.is_mine(), "{name}: {x:?} {y:?}");
        winners.insert(name, if x.is_mine() { "node-a" } else { "node-b" });
    }
    for (name, winner) in &winners {
        assert_eq!(on_a.owner(name).await.unwrap().as_deref(), Some(*winner));
    }
    assert_eq!(on_a.claim("order-x").await.unwrap(), Claim::Mine);
    assert_eq!(on_a.claim("order-x").await.unwrap(), Claim::Mine);
    assert_eq!(
        on_b.claim("order-x").await.unwrap(),
        Claim::Elsewhere("node-a".into())
    );
    assert!(!on_b.release("order-x").await.unwrap());
    assert!(on_a.release("order-x").await.unwrap());
    assert_eq!(on_b.claim("order-x").await.unwrap(), Claim::Mine);

    // A node that stops refreshing its liveness loses its names to the
    // first live node that claims them.
    let c = node(&ns, "node-c", true).await;
    let on_c = c.placement("orders").await.unwrap();
    assert_eq!(on_c.claim("order-c").await.unwrap(), Claim::Mine);
    assert_eq!(
        on_a.claim("order-c").await.unwrap(),
        Claim::Elsewhere("node-c".into())
    );
    c.shutdown(Duration::from_secs(1)).await;
    let mut dead = false;
    for _ in 0..100 {
        if !on_a.is_alive("node-c").await.unwrap() {
            dead = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dead, "node-c's liveness never expired");
    assert_eq!(
        on_a.orphans().await.unwrap(),
        vec![("order-c".to_owned(), "node-c".to_owned())]
    );
    let (x, y) = tokio::join!(on_a.claim("order-c"), on_b.claim("order-c"));
    let claims = [x.unwrap(), y.unwrap()];
    assert_eq!(
        claims
            .iter()
            .filter(|c| matches!(c, Claim::TakenOver { previous } if previous == "node-c"))
            .count(),
        1,
        "{claims:?}"
    );
    assert!(on_a.orphans().await.unwrap().is_empty());

    // A node that restarts under the same name is a new process: what the
    // old one held is an orphan at once (its liveness key now holds the
    // new incarnation), and the new process takes it over itself.
    let d = node(&ns, "node-d", true).await;
    let on_d = d.placement("orders").await.unwrap();
    assert_eq!(on_d.claim("order-d").await.unwrap(), Claim::Mine);
    drop(on_d);
    d.shutdown(Duration::from_secs(1)).await;
    let d_again = node(&ns, "node-d", true).await;
    let on_d_again = d_again.placement("orders").await.unwrap();
    assert!(
        on_a.orphans()
            .await
            .unwrap()
            .contains(&("order-d".to_owned(), "node-d".to_owned()))
    );
    // It judges others only once connected for a whole TTL (2 s here).
    assert_eq!(
        on_d_again.claim("order-d").await.unwrap(),
        Claim::Elsewhere("node-d".into())
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        on_d_again.claim("order-d").await.unwrap(),
        Claim::TakenOver {
            previous: "node-d".into()
        }
    );
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn wait_stored_returns_once_the_stream_has_every_event() {
    let ns = namespace("stored");
    let a = node(&ns, "node-a", true).await;
    a.bridge::<OrderEvent>("order.*", Transport::JetStream)
        .await
        .unwrap();
    a.bridge::<AuditEvent>("audit.*", Transport::JetStream)
        .await
        .unwrap();
    for round in 0..5_u64 {
        for id in 0..100 {
            a.bus()
                .publish(
                    "order.created",
                    OrderEvent {
                        id: round * 100 + id,
                    },
                )
                .await
                .unwrap();
        }
        a.bus()
            .publish(
                "audit.seen",
                AuditEvent {
                    text: round.to_string(),
                },
            )
            .await
            .unwrap();
        assert!(a.wait_stored(Duration::from_secs(10)).await);
        // Stored means in the stream: its message count says so.
        let stream = async_nats::jetstream::new(a.client().clone())
            .get_stream(a.stream_name())
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages;
        assert_eq!(stream, (round + 1) * 101);
    }
    // With nothing queued it returns at once.
    assert!(a.wait_stored(Duration::from_millis(1)).await);
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn shutdown_hands_every_published_event_to_the_server() {
    let ns = namespace("drain");
    let a = node(&ns, "node-a", true).await;
    a.bridge::<OrderEvent>("order.*", Transport::JetStream)
        .await
        .unwrap();
    for id in 0..500 {
        a.bus()
            .publish("order.created", OrderEvent { id })
            .await
            .unwrap();
    }
    assert!(a.shutdown(Duration::from_secs(10)).await);
    assert_eq!(a.stats().stored, 500);
    assert_eq!(a.stats().duplicates, 0);
    // Published after shutdown: stays local.
    a.bus()
        .publish("order.created", OrderEvent { id: 500 })
        .await
        .unwrap();
    assert_eq!(a.stats().exported, 500);
}

#[tokio::test]
async fn bad_names_and_patterns_are_refused_before_anything_is_sent() {
    // No server needed: names are checked before connecting.
    let error = Cluster::builder("nats://127.0.0.1:1")
        .namespace("has space")
        .connect(EventBus::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("invalid namespace"), "{error}");
    let error = Cluster::builder("nats://127.0.0.1:1")
        .node("a.b")
        .connect(EventBus::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("invalid node"), "{error}");
}

#[tokio::test]
#[ignore = "needs nats-server -js; cargo xtask cluster runs them"]
async fn ids_are_unique_across_nodes() {
    let ns = namespace("ids");
    let a = node(&ns, "node-a", true).await;
    let b = node(&ns, "node-b", true).await;
    let on_a = a.ids("orders", 7).await.unwrap();
    let on_b = b.ids("orders", 7).await.unwrap();
    let take = |ids: cortex_actor::cluster::IdAllocator| async move {
        let mut got = Vec::new();
        for _ in 0..100 {
            got.push(ids.next().await.unwrap());
        }
        got
    };
    let (x, y) = tokio::join!(take(on_a.clone()), take(on_b));
    let mut all: Vec<u64> = x.iter().chain(&y).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 200, "an id was handed out twice");
    assert!(all[0] >= 1);
    // Increasing on one node.
    assert!(x.windows(2).all(|w| w[0] < w[1]));
}
