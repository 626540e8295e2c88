//! `ActorSystem::stats()` keeps exact counts while many threads spawn,
//! stop and send at once, and the metrics collector's per-type series add
//! up to the same figures.

use std::time::Duration;

use cortex_actor::{
    Actor, ActorError, ActorSystem, AskError, Context, Handler, Message, OnExhausted,
    RestartPolicy, SendError, SpawnError, SystemStats,
};
use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};

const THREADS: usize = 4;
const ACTORS_PER_THREAD: usize = 40;
/// Tells per actor; each is followed by one ask that waits for them.
const TELLS: usize = 20;
/// Every `FAILING`-th actor fails one message (and is restarted).
const FAILING: usize = 4;
/// Every `STOPPED`-th actor is stopped and then sent two messages.
const STOPPED: usize = 2;

#[derive(Default)]
struct Counter(u64);
impl Actor for Counter {}

struct Add(u64);
impl Message for Add {
    type Reply = u64;
}

impl Handler<Add> for Counter {
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> Result<u64, ActorError> {
        self.0 += n;
        Ok(self.0)
    }
}

struct Fail;
impl Message for Fail {
    type Reply = ();
}

impl Handler<Fail> for Counter {
    async fn handle(&mut self, _: Fail, _: &mut Context<Self>) -> Result<(), ActorError> {
        Err(ActorError::msg("asked to fail"))
    }
}

/// An actor of a second type, so the per-type series have two rows.
#[derive(Default)]
struct Fragile;
impl Actor for Fragile {}

impl Handler<Fail> for Fragile {
    async fn handle(&mut self, _: Fail, _: &mut Context<Self>) -> Result<(), ActorError> {
        Err(ActorError::msg("fragile"))
    }
}

/// One thread's share of the load; returns nothing, everything it did is
/// determined by the constants.
async fn load(system: ActorSystem, thread: usize) {
    let mut kept = Vec::new();
    for i in 0..ACTORS_PER_THREAD {
        let name = format!("counter-{thread}-{i}");
        let actor = system
            .actor(Counter::default)
            .name(name.clone())
            .spawn()
            .unwrap();
        // A taken name spawns nothing and counts nothing.
        assert_eq!(
            system
                .actor(Counter::default)
                .name(name)
                .spawn()
                .unwrap_err(),
            SpawnError::NameTaken(format!("counter-{thread}-{i}"))
        );
        for _ in 0..TELLS {
            actor.tell(Add(1)).await.unwrap();
        }
        if i % FAILING == 0 {
            assert!(matches!(
                actor.ask(Fail).await,
                Err(AskError::HandlerFailed(_))
            ));
        }
        // Handled after every message before it, and after the restart.
        let total = actor.ask(Add(0)).await.unwrap();
        let expected = if i % FAILING == 0 { 0 } else { TELLS as u64 };
        assert_eq!(total, expected, "a restart rebuilds the state");
        if i % STOPPED == 0 {
            actor.stop();
            actor.wait_for_stop().await;
            assert!(matches!(
                actor.tell(Add(1)).await,
                Err(SendError::ActorStopped(_))
            ));
            assert_eq!(actor.ask(Add(1)).await, Err(AskError::ActorStopped));
        } else {
            kept.push(actor);
        }
    }
    // Escalates past a never-restart policy: one failure, one escalation,
    // and the actor stops.
    let fragile = system
        .actor(|| Fragile)
        .restart_policy(RestartPolicy::never().on_exhausted(OnExhausted::Escalate))
        .spawn()
        .unwrap();
    assert!(fragile.ask(Fail).await.is_err());
    fragile.wait_for_stop().await;
    drop(kept);
}

fn expected() -> SystemStats {
    let actors = THREADS * ACTORS_PER_THREAD;
    let failing = THREADS * ACTORS_PER_THREAD.div_ceil(FAILING);
    let stopped = THREADS * ACTORS_PER_THREAD.div_ceil(STOPPED);
    let fragile = THREADS;
    SystemStats {
        actors: actors - stopped,
        // Every tell, every closing ask, every failed message.
        messages: (actors * (TELLS + 1) + failing + fragile) as u64,
        failures: (failing + fragile) as u64,
        restarts: failing as u64,
        escalations: fragile as u64,
        dead_letters: (stopped * 2) as u64,
    }
}

/// The sum of a series' samples over every `actor` label.
fn series_total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn stats_stay_exact_under_concurrent_spawns_stops_and_sends() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let system = runtime.block_on(async { ActorSystem::new("stress") });
    let registry = MetricsRegistry::new();
    system.register_metrics(&registry).unwrap();
    // Threads outside the runtime, each driving its share from its own
    // thread (spawns, tells and asks race with the runtime's workers).
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let system = system.clone();
            let runtime = runtime.handle();
            scope.spawn(move || runtime.block_on(load(system, thread)));
        }
    });
    let expected = expected();
    assert_eq!(system.stats(), expected);

    #[allow(clippy::cast_precision_loss)] // small counts
    let float = |n: u64| n as f64;
    let text = registry.encode(Format::Prometheus);
    let per_type = [
        ("cortex_actor_messages_total", float(expected.messages)),
        ("cortex_actor_errors_total", float(expected.failures)),
        ("cortex_actor_restarts_total", float(expected.restarts)),
        (
            "cortex_actor_dead_letters_total",
            float(expected.dead_letters),
        ),
        ("cortex_actor_live", float(expected.actors as u64)),
        ("cortex_actor_mailbox_depth", 0.0),
    ];
    for (series, total) in per_type {
        assert_eq!(series_total(&text, series), total, "{series}\n{text}");
    }
    assert!(
        text.contains(r#"cortex_actor_live{actor="Fragile"} 0"#),
        "{text}"
    );

    let report = runtime.block_on(system.shutdown(Duration::from_secs(5)));
    assert_eq!(report.drained, expected.actors, "{report:?}");
    assert_eq!(
        system.stats(),
        SystemStats {
            actors: 0,
            ..expected
        }
    );
}
