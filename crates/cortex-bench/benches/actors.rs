//! cortex-actor against kameo, ractor and actix, same workloads, same run.
//!
//! - `spawn_10k`: spawn 10 000 actors and wait until every one has started
//!   (its start hook ran); teardown is not timed.
//! - `tell_100k`: 100 000 tells to one actor, then one ask so all were
//!   handled.
//! - `ask_100k`: 100 000 sequential ask round trips.
//! - `fanout_100x1000`: 1 000 events, each to 100 subscriber actors, until
//!   all 100 000 deliveries were handled. Cortex uses its `EventBus`
//!   (pattern match + guaranteed delivery); the peers, which have no bus in
//!   their core, loop over the 100 refs.
//!
//! `st` runs on a current-thread runtime (actix: its `System`); `mt` on a
//! two-worker tokio runtime (actix: the actor on its own `Arbiter` thread,
//! the sender on the `System` thread).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::{current_thread, two_workers};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use tokio::sync::Notify;

const SPAWNS: usize = 10_000;
const TELLS: u64 = 100_000;
const ASKS: u64 = 100_000;
const SUBSCRIBERS: usize = 100;
const EVENTS: usize = 1_000;

/// Counts arrivals and wakes the waiter at the target.
#[derive(Clone)]
struct Countdown {
    seen: Arc<AtomicUsize>,
    target: usize,
    done: Arc<Notify>,
}

impl Countdown {
    fn new(target: usize) -> Self {
        Self {
            seen: Arc::new(AtomicUsize::new(0)),
            target,
            done: Arc::new(Notify::new()),
        }
    }

    fn hit(&self) {
        if self.seen.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.done.notify_one();
        }
    }

    async fn wait(&self) {
        while self.seen.load(Ordering::Acquire) < self.target {
            let notified = self.done.notified();
            if self.seen.load(Ordering::Acquire) >= self.target {
                return;
            }
            notified.await;
        }
    }
}

mod ours {
    use super::*;
    use cortex_actor::{
        Actor, ActorError, ActorSystem, Context, Delivery, Handler, MailboxConfig, Message,
        Published,
    };

    pub struct Counter {
        pub count: u64,
        pub started: Option<Countdown>,
    }

    impl Actor for Counter {
        async fn pre_start(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
            if let Some(started) = &self.started {
                started.hit();
            }
            Ok(())
        }
    }

    pub struct Add(pub u64);
    impl Message for Add {
        type Reply = u64;
    }

    impl Handler<Add> for Counter {
        async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> Result<u64, ActorError> {
            self.count += n;
            Ok(self.count)
        }
    }

    pub struct Sink(pub Countdown);
    impl Actor for Sink {}

    impl Handler<Published<u64>> for Sink {
        async fn handle(
            &mut self,
            _: Published<u64>,
            _: &mut Context<Self>,
        ) -> Result<(), ActorError> {
            self.0.hit();
            Ok(())
        }
    }

    pub async fn spawn(n: usize) -> Duration {
        let system = ActorSystem::new("bench");
        let started = Countdown::new(n);
        let start = Instant::now();
        for _ in 0..n {
            let started = started.clone();
            system
                .spawn(move || Counter {
                    count: 0,
                    started: Some(started.clone()),
                })
                .unwrap();
        }
        started.wait().await;
        let elapsed = start.elapsed();
        system.shutdown(Duration::from_secs(10)).await;
        elapsed
    }

    pub async fn tells(n: u64) -> Duration {
        let system = ActorSystem::new("bench");
        let counter = system
            .spawn(|| Counter {
                count: 0,
                started: None,
            })
            .unwrap();
        let start = Instant::now();
        for _ in 0..n {
            counter.tell(Add(1)).await.unwrap();
        }
        assert_eq!(counter.ask(Add(0)).await.unwrap(), n);
        let elapsed = start.elapsed();
        system.shutdown(Duration::from_secs(10)).await;
        elapsed
    }

    /// With `reply_timeout`, each ask arms a 5 s timer (the default); the
    /// peers' asks have none, so the comparison row turns it off.
    pub async fn asks(n: u64, reply_timeout: bool) -> Duration {
        let system = ActorSystem::builder("bench")
            .ask_timeouts(
                Duration::from_secs(5),
                reply_timeout.then_some(Duration::from_secs(5)),
            )
            .build();
        let counter = system
            .spawn(|| Counter {
                count: 0,
                started: None,
            })
            .unwrap();
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(counter.ask(Add(1)).await.unwrap());
        }
        let elapsed = start.elapsed();
        system.shutdown(Duration::from_secs(10)).await;
        elapsed
    }

    pub async fn fanout(subscribers: usize, events: usize) -> Duration {
        let system = ActorSystem::new("bench");
        let received = Countdown::new(subscribers * events);
        for _ in 0..subscribers {
            let received = received.clone();
            let sink = system
                .actor(move || Sink(received.clone()))
                .mailbox(MailboxConfig::bounded(1024))
                .spawn()
                .unwrap();
            system
                .events()
                .subscribe_actor::<_, u64>("bench.*", &sink, Delivery::Guaranteed)
                .unwrap();
        }
        let start = Instant::now();
        for event in 0..events {
            system
                .events()
                .publish("bench.tick", event as u64)
                .await
                .unwrap();
        }
        received.wait().await;
        let elapsed = start.elapsed();
        system.shutdown(Duration::from_secs(10)).await;
        elapsed
    }
}

mod kameo_side {
    use super::*;
    use kameo::Actor;
    use kameo::actor::{ActorRef, Spawn};
    use kameo::message::{Context, Message};

    pub struct Counter {
        pub count: u64,
        pub started: Option<Countdown>,
    }

    impl Actor for Counter {
        type Args = Self;
        type Error = std::convert::Infallible;

        async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Self::Error> {
            if let Some(started) = &state.started {
                started.hit();
            }
            Ok(state)
        }
    }

    pub struct Add(pub u64);

    impl Message<Add> for Counter {
        type Reply = u64;

        async fn handle(&mut self, Add(n): Add, _: &mut Context<Self, Self::Reply>) -> u64 {
            self.count += n;
            self.count
        }
    }

    pub struct Sink(pub Countdown);

    impl Actor for Sink {
        type Args = Self;
        type Error = std::convert::Infallible;

        async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Self::Error> {
            Ok(state)
        }
    }

    impl Message<u64> for Sink {
        type Reply = ();

        async fn handle(&mut self, _: u64, _: &mut Context<Self, Self::Reply>) {
            self.0.hit();
        }
    }

    pub async fn spawn(n: usize) -> Duration {
        let started = Countdown::new(n);
        let start = Instant::now();
        let mut refs = Vec::with_capacity(n);
        for _ in 0..n {
            refs.push(Counter::spawn(Counter {
                count: 0,
                started: Some(started.clone()),
            }));
        }
        started.wait().await;
        let elapsed = start.elapsed();
        for actor in &refs {
            actor.kill();
        }
        for actor in &refs {
            actor.wait_for_shutdown().await;
        }
        elapsed
    }

    pub async fn tells(n: u64) -> Duration {
        let counter = Counter::spawn(Counter {
            count: 0,
            started: None,
        });
        let start = Instant::now();
        for _ in 0..n {
            counter.tell(Add(1)).await.unwrap();
        }
        assert_eq!(counter.ask(Add(0)).await.unwrap(), n);
        let elapsed = start.elapsed();
        counter.kill();
        counter.wait_for_shutdown().await;
        elapsed
    }

    pub async fn asks(n: u64) -> Duration {
        let counter = Counter::spawn(Counter {
            count: 0,
            started: None,
        });
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(counter.ask(Add(1)).await.unwrap());
        }
        let elapsed = start.elapsed();
        counter.kill();
        counter.wait_for_shutdown().await;
        elapsed
    }

    pub async fn fanout(subscribers: usize, events: usize) -> Duration {
        let received = Countdown::new(subscribers * events);
        let sinks: Vec<_> = (0..subscribers)
            .map(|_| {
                Sink::spawn_with_mailbox(Sink(received.clone()), kameo::mailbox::bounded(1024))
            })
            .collect();
        let start = Instant::now();
        for event in 0..events {
            for sink in &sinks {
                sink.tell(event as u64).await.unwrap();
            }
        }
        received.wait().await;
        let elapsed = start.elapsed();
        for sink in &sinks {
            sink.kill();
        }
        elapsed
    }
}

mod ractor_side {
    use super::*;
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

    pub struct Counter {
        pub started: Option<Countdown>,
    }

    pub enum CounterMsg {
        Add(u64),
        AddAndGet(u64, RpcReplyPort<u64>),
    }

    impl Actor for Counter {
        type Msg = CounterMsg;
        type State = u64;
        type Arguments = ();

        async fn pre_start(
            &self,
            _: ActorRef<Self::Msg>,
            _: (),
        ) -> Result<u64, ActorProcessingErr> {
            if let Some(started) = &self.started {
                started.hit();
            }
            Ok(0)
        }

        async fn handle(
            &self,
            _: ActorRef<Self::Msg>,
            message: Self::Msg,
            state: &mut u64,
        ) -> Result<(), ActorProcessingErr> {
            match message {
                CounterMsg::Add(n) => *state += n,
                CounterMsg::AddAndGet(n, reply) => {
                    *state += n;
                    let _ = reply.send(*state);
                }
            }
            Ok(())
        }
    }

    pub struct Sink(pub Countdown);

    impl Actor for Sink {
        type Msg = u64;
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<u64>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }

        async fn handle(
            &self,
            _: ActorRef<u64>,
            _: u64,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            self.0.hit();
            Ok(())
        }
    }

    pub async fn spawn(n: usize) -> Duration {
        let started = Countdown::new(n);
        let start = Instant::now();
        let mut refs = Vec::with_capacity(n);
        for _ in 0..n {
            let (actor, handle) = Actor::spawn(
                None,
                Counter {
                    started: Some(started.clone()),
                },
                (),
            )
            .await
            .unwrap();
            refs.push((actor, handle));
        }
        started.wait().await;
        let elapsed = start.elapsed();
        for (actor, _) in &refs {
            actor.stop(None);
        }
        for (_, handle) in refs {
            handle.await.unwrap();
        }
        elapsed
    }

    async fn ask(counter: &ActorRef<CounterMsg>, n: u64) -> u64 {
        match counter
            .call(|reply| CounterMsg::AddAndGet(n, reply), None)
            .await
            .unwrap()
        {
            ractor::rpc::CallResult::Success(value) => value,
            _ => panic!("ractor call failed"),
        }
    }

    pub async fn tells(n: u64) -> Duration {
        let (counter, handle) = Actor::spawn(None, Counter { started: None }, ())
            .await
            .unwrap();
        let start = Instant::now();
        for _ in 0..n {
            counter.send_message(CounterMsg::Add(1)).unwrap();
        }
        assert_eq!(ask(&counter, 0).await, n);
        let elapsed = start.elapsed();
        counter.stop(None);
        handle.await.unwrap();
        elapsed
    }

    pub async fn asks(n: u64) -> Duration {
        let (counter, handle) = Actor::spawn(None, Counter { started: None }, ())
            .await
            .unwrap();
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(ask(&counter, 1).await);
        }
        let elapsed = start.elapsed();
        counter.stop(None);
        handle.await.unwrap();
        elapsed
    }

    pub async fn fanout(subscribers: usize, events: usize) -> Duration {
        let received = Countdown::new(subscribers * events);
        let mut sinks = Vec::new();
        for _ in 0..subscribers {
            sinks.push(
                Actor::spawn(None, Sink(received.clone()), ())
                    .await
                    .unwrap(),
            );
        }
        let start = Instant::now();
        for event in 0..events {
            for (sink, _) in &sinks {
                sink.send_message(event as u64).unwrap();
            }
        }
        received.wait().await;
        let elapsed = start.elapsed();
        for (sink, _) in &sinks {
            sink.stop(None);
        }
        for (_, handle) in sinks {
            handle.await.unwrap();
        }
        elapsed
    }
}

mod actix_side {
    use super::*;
    use actix::prelude::*;

    pub struct Counter {
        pub count: u64,
        pub started: Option<Countdown>,
    }

    impl Actor for Counter {
        type Context = Context<Self>;

        fn started(&mut self, _: &mut Self::Context) {
            if let Some(started) = &self.started {
                started.hit();
            }
        }
    }

    pub struct Add(pub u64);

    impl actix::Message for Add {
        type Result = u64;
    }

    impl Handler<Add> for Counter {
        type Result = u64;

        fn handle(&mut self, Add(n): Add, _: &mut Self::Context) -> u64 {
            self.count += n;
            self.count
        }
    }

    pub struct Sink(pub Countdown);

    impl Actor for Sink {
        type Context = Context<Self>;
    }

    pub struct Event(pub u64);

    impl actix::Message for Event {
        type Result = ();
    }

    impl Handler<Event> for Sink {
        type Result = ();

        fn handle(&mut self, event: Event, _: &mut Self::Context) {
            std::hint::black_box(event.0);
            self.0.hit();
        }
    }

    pub async fn spawn(n: usize) -> Duration {
        let started = Countdown::new(n);
        let start = Instant::now();
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            addrs.push(
                Counter {
                    count: 0,
                    started: Some(started.clone()),
                }
                .start(),
            );
        }
        started.wait().await;
        let elapsed = start.elapsed();
        drop(addrs);
        elapsed
    }

    fn counter(arbiter: Option<&ArbiterHandle>) -> Addr<Counter> {
        let make = || Counter {
            count: 0,
            started: None,
        };
        match arbiter {
            Some(arbiter) => Counter::start_in_arbiter(arbiter, move |_| make()),
            None => make().start(),
        }
    }

    pub async fn tells(n: u64, arbiter: Option<&ArbiterHandle>) -> Duration {
        let counter = counter(arbiter);
        let start = Instant::now();
        for _ in 0..n {
            // actix has no awaitable fire-and-forget: `send` is an ask and
            // `do_send` queues past the mailbox capacity. `do_send` it is.
            counter.do_send(Add(1));
        }
        assert_eq!(counter.send(Add(0)).await.unwrap(), n);
        start.elapsed()
    }

    pub async fn asks(n: u64, arbiter: Option<&ArbiterHandle>) -> Duration {
        let counter = counter(arbiter);
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(counter.send(Add(1)).await.unwrap());
        }
        start.elapsed()
    }

    pub async fn fanout(subscribers: usize, events: usize) -> Duration {
        let received = Countdown::new(subscribers * events);
        let sinks: Vec<_> = (0..subscribers)
            .map(|_| Sink(received.clone()).start())
            .collect();
        let start = Instant::now();
        for event in 0..events {
            for sink in &sinks {
                sink.do_send(Event(event as u64));
            }
        }
        received.wait().await;
        start.elapsed()
    }
}

/// Runs a workload as a task: on a multi-thread runtime `block_on` would
/// run it on the calling thread, which is not a worker, and every reply
/// would have to wake that thread.
fn on_worker<F>(rt: &tokio::runtime::Runtime, workload: F) -> Duration
where
    F: std::future::Future<Output = Duration> + Send + 'static,
{
    rt.block_on(async { tokio::spawn(workload).await.expect("workload task") })
}

/// Each criterion iteration is one whole workload.
fn workload(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut run: impl FnMut() -> Duration) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run()).sum())
    });
}

fn actors(c: &mut Criterion) {
    let st = current_thread();
    let mt = two_workers();
    let actix = actix::System::new();
    let arbiter = actix::Arbiter::new();
    let mut group = c.benchmark_group("actors");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    for (mode, rt) in [("st", &st), ("mt", &mt)] {
        workload(&mut group, &format!("spawn_10k/cortex/{mode}"), || {
            on_worker(rt, ours::spawn(SPAWNS))
        });
        workload(&mut group, &format!("spawn_10k/kameo/{mode}"), || {
            on_worker(rt, kameo_side::spawn(SPAWNS))
        });
        workload(&mut group, &format!("spawn_10k/ractor/{mode}"), || {
            on_worker(rt, ractor_side::spawn(SPAWNS))
        });
    }
    workload(&mut group, "spawn_10k/actix/st", || {
        actix.block_on(actix_side::spawn(SPAWNS))
    });

    for (mode, rt) in [("st", &st), ("mt", &mt)] {
        workload(&mut group, &format!("tell_100k/cortex/{mode}"), || {
            on_worker(rt, ours::tells(TELLS))
        });
        workload(&mut group, &format!("tell_100k/kameo/{mode}"), || {
            on_worker(rt, kameo_side::tells(TELLS))
        });
        workload(&mut group, &format!("tell_100k/ractor/{mode}"), || {
            on_worker(rt, ractor_side::tells(TELLS))
        });
    }
    workload(&mut group, "tell_100k/actix/st", || {
        actix.block_on(actix_side::tells(TELLS, None))
    });
    workload(&mut group, "tell_100k/actix/mt", || {
        actix.block_on(actix_side::tells(TELLS, Some(&arbiter.handle())))
    });

    for (mode, rt) in [("st", &st), ("mt", &mt)] {
        workload(&mut group, &format!("ask_100k/cortex/{mode}"), || {
            on_worker(rt, ours::asks(ASKS, false))
        });
        workload(
            &mut group,
            &format!("ask_100k/cortex-reply-timeout/{mode}"),
            || on_worker(rt, ours::asks(ASKS, true)),
        );
        workload(&mut group, &format!("ask_100k/kameo/{mode}"), || {
            on_worker(rt, kameo_side::asks(ASKS))
        });
        workload(&mut group, &format!("ask_100k/ractor/{mode}"), || {
            on_worker(rt, ractor_side::asks(ASKS))
        });
    }
    workload(&mut group, "ask_100k/actix/st", || {
        actix.block_on(actix_side::asks(ASKS, None))
    });
    workload(&mut group, "ask_100k/actix/mt", || {
        actix.block_on(actix_side::asks(ASKS, Some(&arbiter.handle())))
    });

    for (mode, rt) in [("st", &st), ("mt", &mt)] {
        workload(
            &mut group,
            &format!("fanout_100x1000/cortex/{mode}"),
            || on_worker(rt, ours::fanout(SUBSCRIBERS, EVENTS)),
        );
        workload(&mut group, &format!("fanout_100x1000/kameo/{mode}"), || {
            on_worker(rt, kameo_side::fanout(SUBSCRIBERS, EVENTS))
        });
        workload(
            &mut group,
            &format!("fanout_100x1000/ractor/{mode}"),
            || on_worker(rt, ractor_side::fanout(SUBSCRIBERS, EVENTS)),
        );
    }
    workload(&mut group, "fanout_100x1000/actix/st", || {
        actix.block_on(actix_side::fanout(SUBSCRIBERS, EVENTS))
    });
    group.finish();
    arbiter.stop();
}

criterion_group!(benches, actors);
criterion_main!(benches);
