//! The remote paths of cortex-actor's cluster (feature `nats`) against raw
//! async-nats on the same loopback `nats-server`, same run, one message at
//! a time (each a round trip through the server):
//!
//! - `nats_remote_ask`: `RemoteRef::ask` of a named actor served by another
//!   node's connection (JSON message, actor mailbox, JSON reply) vs a raw
//!   `Client::request` answered by a raw subscriber that decodes the same
//!   JSON and encodes the same reply;
//! - `nats_bus_delivery`: `EventBus::publish` on one node until the event
//!   is out of another node's `EventStream` (through a core bridge) vs a raw
//!   `publish` of the same JSON until a raw subscriber on the other
//!   connection has it decoded.
//!
//! Needs `CORTEX_BENCH_NATS_URL`: `cargo xtask bench` starts a
//! `nats-server` on a free loopback port and sets it. Without it the bench
//! measures nothing and says so.

use std::hint::black_box;

use bytes::Bytes;
use cortex_actor::cluster::{Cluster, RemoteActor, RemoteEvent, RemoteMessage, Transport};
use cortex_actor::{Actor, ActorError, ActorSystem, Context, Delivery, EventBus, Handler, Message};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};

struct Counter(u64);

impl Actor for Counter {}

impl RemoteActor for Counter {
    const TYPE: &'static str = "counter";
}

#[derive(Serialize, Deserialize)]
struct Add(u64);

impl Message for Add {
    type Reply = u64;
}

impl RemoteMessage for Add {
    const NAME: &'static str = "add";
}

impl Handler<Add> for Counter {
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> Result<u64, ActorError> {
        self.0 += n;
        Ok(self.0)
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Tick {
    n: u64,
}

impl RemoteEvent for Tick {
    const NAME: &'static str = "tick";
}

fn nats(c: &mut Criterion) {
    let Ok(url) = std::env::var("CORTEX_BENCH_NATS_URL") else {
        eprintln!("nats bench: CORTEX_BENCH_NATS_URL is not set; nothing measured");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connect = |node: &'static str| {
        let url = url.clone();
        async move {
            Cluster::builder(url)
                .namespace("bench")
                .node(node)
                .connect(EventBus::new())
                .await
                .unwrap()
        }
    };
    let (a, b) = runtime.block_on(async { (connect("node-a").await, connect("node-b").await) });

    // Remote ask: an actor served by node-a, asked from node-b.
    let system = ActorSystem::new("bench");
    let remote = runtime.block_on(async {
        let counter = system.actor(|| Counter(0)).name("counter-1").spawn().unwrap();
        let served = a.serve("counter-1", &counter).message::<Add>().start().await.unwrap();
        std::mem::forget(served);
        b.remote::<Counter>("counter-1")
    });
    assert_eq!(runtime.block_on(remote.ask(Add(1))).unwrap(), 1);
    // The raw contender: a responder on node-a's connection doing the same
    // JSON work, without an actor.
    let raw_subject = "bench.raw.counter";
    runtime.block_on(async {
        let mut requests = a.client().subscribe(raw_subject).await.unwrap();
        let client = a.client().clone();
        tokio::spawn(async move {
            let mut total = 0_u64;
            while let Some(request) = requests.next().await {
                let Add(n) = serde_json::from_slice(&request.payload).unwrap();
                total += n;
                let answer = serde_json::to_vec(&serde_json::json!({ "ok": total })).unwrap();
                if let Some(reply) = request.reply {
                    client.publish(reply, Bytes::from(answer)).await.unwrap();
                }
            }
        });
        a.client().flush().await.unwrap();
    });
    let raw_ask = || async {
        let payload = Bytes::from(serde_json::to_vec(&Add(1)).unwrap());
        let answer = b.client().request(raw_subject, payload).await.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
        value["ok"].as_u64().unwrap()
    };
    assert!(runtime.block_on(raw_ask()) >= 1);

    let mut group = c.benchmark_group("nats_remote_ask");
    group.bench_function("cortex", |bench| {
        bench.iter(|| black_box(runtime.block_on(remote.ask(Add(1))).unwrap()))
    });
    group.bench_function("raw-request", |bench| {
        bench.iter(|| black_box(runtime.block_on(raw_ask())))
    });
    group.finish();

    // Bus delivery: published on node-a's bus, out of node-b's stream.
    let mut stream = runtime.block_on(async {
        a.bridge::<Tick>("tick.*", Transport::Core).await.unwrap();
        b.bridge::<Tick>("tick.*", Transport::Core).await.unwrap();
        b.bus()
            .subscribe::<Tick>("tick.*", 1024, Delivery::Guaranteed)
            .unwrap()
    });
    let mut raw_events = runtime.block_on(async {
        let subscriber = b.client().subscribe("bench.raw.tick").await.unwrap();
        b.client().flush().await.unwrap();
        subscriber
    });
    let mut n = 0_u64;
    let mut group = c.benchmark_group("nats_bus_delivery");
    group.bench_function("cortex", |bench| {
        bench.iter(|| {
            n += 1;
            runtime.block_on(async {
                a.bus().publish("tick.now", Tick { n }).await.unwrap();
                let (_, tick) = stream.recv().await.unwrap();
                black_box(tick.n)
            })
        })
    });
    group.bench_function("raw-publish", |bench| {
        bench.iter(|| {
            n += 1;
            runtime.block_on(async {
                let payload = Bytes::from(serde_json::to_vec(&Tick { n }).unwrap());
                a.client().publish("bench.raw.tick", payload).await.unwrap();
                let message = raw_events.next().await.unwrap();
                let tick: Tick = serde_json::from_slice(&message.payload).unwrap();
                black_box(tick.n)
            })
        })
    });
    group.finish();
}

criterion_group!(benches, nats);
criterion_main!(benches);
