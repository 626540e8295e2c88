//! `WorkerActor`: N threads really run at once behind one `ActorRef`, each
//! thread keeps its own state, a panic answers the asker and rebuilds only
//! that state, a full pool queue holds the actor (and so its senders) back,
//! a restart of the actor rebuilds the states, and stopping the actor
//! finishes accepted work and drops every state.
#![cfg(feature = "actor")]

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::ThreadId;
use std::time::Duration;

use cortex_actor::{
    Actor, ActorError, ActorRef, ActorSystem, AskError, Context, Handler, Message,
    SupervisionStrategy,
};
use cortex_workers::{
    JobError, Offload, OffloadError, OffloadExt, Shutdown, SyncHandler, WorkerActor, WorkerPool,
};

/// Fails a test that would otherwise hang (a guard, not a timing check).
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), future).await {
        Ok(value) => value,
        Err(_) => panic!("hung: {what}"),
    }
}

/// Yields until `condition` holds (other threads make it true).
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// Counts states built and dropped, to see which state served a message.
#[derive(Debug, Default)]
struct Lifecycle {
    built: AtomicUsize,
    dropped: AtomicUsize,
}

/// A worker thread's state: which one it is and how many messages it took.
struct Tally {
    id: usize,
    count: u64,
    lifecycle: Arc<Lifecycle>,
}

impl Tally {
    fn factory(lifecycle: &Arc<Lifecycle>) -> impl Fn() -> Self + Send + Sync + 'static {
        let lifecycle = Arc::clone(lifecycle);
        move || Tally {
            id: lifecycle.built.fetch_add(1, Ordering::SeqCst),
            count: 0,
            lifecycle: Arc::clone(&lifecycle),
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.lifecycle.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts one more message on this thread's state.
struct Count;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counted {
    state: usize,
    count: u64,
    thread: ThreadId,
}

impl Message for Count {
    type Reply = Counted;
}

impl SyncHandler<Count> for Tally {
    fn handle(&mut self, _: Count) -> Result<Counted, ActorError> {
        self.count += 1;
        Ok(Counted {
            state: self.id,
            count: self.count,
            thread: std::thread::current().id(),
        })
    }
}

/// Meets another message at the barrier: returns only if both run at once.
struct Meet(Arc<Barrier>);

impl Message for Meet {
    type Reply = ThreadId;
}

impl SyncHandler<Meet> for Tally {
    fn handle(&mut self, Meet(barrier): Meet) -> Result<ThreadId, ActorError> {
        barrier.wait();
        Ok(std::thread::current().id())
    }
}

/// Holds its thread: waits at `started`, then at `release`.
struct Hold {
    started: Arc<Barrier>,
    release: Arc<Barrier>,
}

impl Message for Hold {
    type Reply = usize;
}

impl SyncHandler<Hold> for Tally {
    fn handle(&mut self, hold: Hold) -> Result<usize, ActorError> {
        hold.started.wait();
        hold.release.wait();
        Ok(self.id)
    }
}

/// Counts, then panics halfway: the state is left half updated.
struct Explode;

impl Message for Explode {
    type Reply = ();
}

impl SyncHandler<Explode> for Tally {
    fn handle(&mut self, _: Explode) -> Result<(), ActorError> {
        self.count += 1000;
        panic!("exploded in state {}", self.id);
    }
}

/// Counts, then returns an error: the state is kept.
struct Refuse;

impl Message for Refuse {
    type Reply = ();
}

impl SyncHandler<Refuse> for Tally {
    fn handle(&mut self, _: Refuse) -> Result<(), ActorError> {
        self.count += 1;
        Err(ActorError::msg("refused"))
    }
}

fn spawn_tally(
    system: &ActorSystem,
    pool: cortex_workers::WorkerPoolBuilder,
    lifecycle: &Arc<Lifecycle>,
) -> (ActorRef<WorkerActor<Tally>>, WorkerPool) {
    let workers = WorkerActor::new(pool, Tally::factory(lifecycle)).unwrap();
    let pool = workers.pool().clone();
    let actor = system.spawn(move || workers.clone()).unwrap();
    (actor, pool)
}

/// The actor takes one message at a time, yet two messages run at once:
/// each handler waits at a two-party barrier, which opens only when both
/// are at it, on two different threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_messages_run_at_once_on_two_threads() {
    let system = ActorSystem::new("overlap");
    let lifecycle = Arc::new(Lifecycle::default());
    let (actor, pool) = spawn_tally(
        &system,
        WorkerPool::builder("overlap").workers(2),
        &lifecycle,
    );
    let barrier = Arc::new(Barrier::new(2));
    let (first, second) = within("both messages at the barrier at once", async {
        tokio::join!(
            actor.offload(Meet(Arc::clone(&barrier))),
            actor.offload(Meet(Arc::clone(&barrier))),
        )
    })
    .await;
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_ne!(first, second, "two threads, not one");
    assert_eq!(
        lifecycle.built.load(Ordering::SeqCst),
        2,
        "one state per thread"
    );
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed), (2, 2));
    system.shutdown(Duration::from_secs(5)).await;
}

/// With one thread, the same state serves every message, told or asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_thread_keeps_its_state_across_messages() {
    let system = ActorSystem::new("state");
    let lifecycle = Arc::new(Lifecycle::default());
    let (actor, _pool) = spawn_tally(&system, WorkerPool::builder("state").workers(1), &lifecycle);
    let first = within("count", actor.offload(Count)).await.unwrap();
    // A tell runs detached; messages start in mailbox order.
    actor.tell(Offload(Count)).await.unwrap();
    let third = within("count", actor.offload(Count)).await.unwrap();
    assert_eq!((first.count, third.count), (1, 3));
    assert_eq!(first.state, third.state);
    assert_eq!(first.thread, third.thread);
    assert_eq!(lifecycle.built.load(Ordering::SeqCst), 1);
    system.shutdown(Duration::from_secs(5)).await;
}

/// With two threads, each thread has exactly one state, built once and
/// counting on across messages, whichever thread takes which message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_two_threads_keeps_its_own_state() {
    let system = ActorSystem::new("states");
    let lifecycle = Arc::new(Lifecycle::default());
    let (actor, _pool) = spawn_tally(
        &system,
        WorkerPool::builder("states").workers(2),
        &lifecycle,
    );
    let mut asks = Vec::new();
    for _ in 0..40 {
        let actor = actor.clone();
        asks.push(tokio::spawn(async move { actor.offload(Count).await }));
    }
    let mut by_state: HashMap<usize, (ThreadId, Vec<u64>)> = HashMap::new();
    for ask in asks {
        let counted = within("count", ask).await.unwrap().unwrap();
        let (thread, counts) = by_state
            .entry(counted.state)
            .or_insert_with(|| (counted.thread, Vec::new()));
        assert_eq!(*thread, counted.thread, "a state stays on its thread");
        counts.push(counted.count);
    }
    assert!(by_state.len() <= 2, "at most one state per thread");
    let threads: std::collections::HashSet<_> = by_state.values().map(|(t, _)| *t).collect();
    assert_eq!(threads.len(), by_state.len(), "no thread has two states");
    for (_, counts) in by_state.values_mut() {
        counts.sort_unstable();
        let expected: Vec<u64> = (1..=counts.len() as u64).collect();
        assert_eq!(
            *counts, expected,
            "each state counted every one of its messages"
        );
    }
    assert_eq!(lifecycle.built.load(Ordering::SeqCst), by_state.len());
    system.shutdown(Duration::from_secs(5)).await;
}

/// A panic answers the asker, drops the (half-updated) state and rebuilds
/// it for the next message; the actor does not fail. A handler's error is
/// an answer too, and keeps the state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_answers_the_asker_and_the_next_message_gets_a_fresh_state() {
    let system = ActorSystem::new("panic");
    let lifecycle = Arc::new(Lifecycle::default());
    let (actor, pool) = spawn_tally(&system, WorkerPool::builder("panic").workers(1), &lifecycle);

    let before = within("count", actor.offload(Count)).await.unwrap();
    let refused = within("refuse", actor.offload(Refuse)).await;
    match refused {
        Err(OffloadError::Failed(error)) => assert_eq!(error.to_string(), "refused"),
        other => panic!("expected the handler's error, got {other:?}"),
    }
    let kept = within("count", actor.offload(Count)).await.unwrap();
    assert_eq!(
        (kept.state, kept.count),
        (before.state, 3),
        "an error keeps the state"
    );

    let exploded = within("explode", actor.offload(Explode)).await;
    match exploded {
        Err(OffloadError::Job(JobError::Panicked(message))) => {
            assert_eq!(message, format!("exploded in state {}", before.state));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(
        lifecycle.dropped.load(Ordering::SeqCst),
        1,
        "the panicked state is dropped"
    );

    let after = within("count", actor.offload(Count)).await.unwrap();
    assert_ne!(after.state, before.state, "a fresh state");
    assert_eq!(after.count, 1, "nothing of the half-updated state survives");
    assert_eq!(after.thread, before.thread, "on the same, surviving thread");
    assert_eq!(lifecycle.built.load(Ordering::SeqCst), 2);

    assert!(actor.is_alive());
    let stats = system.stats();
    assert_eq!(
        (stats.failures, stats.restarts),
        (0, 0),
        "the actor itself never failed"
    );
    let pool_stats = pool.stats();
    assert_eq!((pool_stats.completed, pool_stats.panicked), (4, 1));
    system.shutdown(Duration::from_secs(5)).await;
}

/// A state that is not `Send` (an `Rc`) works: it never leaves its thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_need_not_be_send() {
    struct Local(Rc<Cell<u64>>);
    struct Bump;
    impl Message for Bump {
        type Reply = u64;
    }
    impl SyncHandler<Bump> for Local {
        fn handle(&mut self, _: Bump) -> Result<u64, ActorError> {
            self.0.set(self.0.get() + 1);
            Ok(self.0.get())
        }
    }

    let system = ActorSystem::new("local");
    let workers = WorkerActor::new(WorkerPool::builder("local").workers(1), || {
        Local(Rc::new(Cell::new(0)))
    })
    .unwrap();
    let actor = system.spawn(move || workers.clone()).unwrap();
    assert_eq!(within("bump", actor.offload(Bump)).await.unwrap(), 1);
    assert_eq!(within("bump", actor.offload(Bump)).await.unwrap(), 2);
    system.shutdown(Duration::from_secs(5)).await;
}

/// With the thread busy and the pool's queue full, the actor waits in its
/// handler for room: the next ask is not accepted and later messages stay
/// in the mailbox. Once the thread is free, every message is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_queue_holds_the_actor_back() {
    let system = ActorSystem::new("backpressure");
    let lifecycle = Arc::new(Lifecycle::default());
    let (actor, pool) = spawn_tally(
        &system,
        WorkerPool::builder("backpressure")
            .workers(1)
            .queue_capacity(1),
        &lifecycle,
    );
    let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    // The first stage of an ask: accepted by the pool.
    let running = within(
        "hold accepted",
        actor.ask(Offload(Hold {
            started: Arc::clone(&started),
            release: Arc::clone(&release),
        })),
    )
    .await
    .unwrap();
    let waiting = Arc::clone(&started);
    within(
        "hold started",
        tokio::task::spawn_blocking(move || waiting.wait()),
    )
    .await
    .unwrap();
    // The thread is busy: this one fills the one queue slot.
    let queued = within("count accepted", actor.ask(Offload(Count)))
        .await
        .unwrap();
    assert_eq!(pool.stats().queue_len, 1);

    // No room: the actor takes this message and waits in its handler.
    let blocked = {
        let actor = actor.clone();
        tokio::spawn(async move { actor.ask(Offload(Count)).await })
    };
    until("the actor took the third message", || {
        system.stats().messages == 3
    })
    .await;
    actor.try_tell(Offload(Count)).unwrap();
    assert_eq!(
        actor.mailbox_len(),
        1,
        "the actor is still on the third message"
    );
    assert!(
        !blocked.is_finished(),
        "not accepted while the queue is full"
    );
    assert_eq!(pool.stats().submitted, 2);

    let releasing = Arc::clone(&release);
    within(
        "released",
        tokio::task::spawn_blocking(move || releasing.wait()),
    )
    .await
    .unwrap();
    assert_eq!(within("hold done", running).await.unwrap(), 0);
    assert_eq!(within("count done", queued).await.unwrap().count, 1);
    let third = within("third accepted", blocked).await.unwrap().unwrap();
    assert_eq!(within("third done", third).await.unwrap().count, 2);
    let fourth = within("fourth", actor.offload(Count)).await.unwrap();
    assert_eq!(fourth.count, 4, "the told message ran before it");
    system.shutdown(Duration::from_secs(5)).await;
}

/// Stopping the actor shuts its pool down gracefully: work already
/// accepted is finished and answered, every thread's state is dropped by
/// the time the actor has stopped, and later messages are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_actor_finishes_accepted_work_and_drops_every_state() {
    let system = ActorSystem::new("stop");
    let lifecycle = Arc::new(Lifecycle::default());
    let (actor, pool) = spawn_tally(&system, WorkerPool::builder("stop").workers(2), &lifecycle);
    // Both threads build their state.
    let barrier = Arc::new(Barrier::new(2));
    let (a, b) = within("meet", async {
        tokio::join!(
            actor.offload(Meet(Arc::clone(&barrier))),
            actor.offload(Meet(Arc::clone(&barrier))),
        )
    })
    .await;
    a.unwrap();
    b.unwrap();
    assert_eq!(lifecycle.built.load(Ordering::SeqCst), 2);

    let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let running = within(
        "hold accepted",
        actor.ask(Offload(Hold {
            started: Arc::clone(&started),
            release: Arc::clone(&release),
        })),
    )
    .await
    .unwrap();
    let waiting = Arc::clone(&started);
    within(
        "hold started",
        tokio::task::spawn_blocking(move || waiting.wait()),
    )
    .await
    .unwrap();

    actor.stop();
    // The actor's stop waits for the pool, which waits for the held job.
    let releasing = Arc::clone(&release);
    within(
        "released",
        tokio::task::spawn_blocking(move || releasing.wait()),
    )
    .await
    .unwrap();
    within("the actor stops", actor.wait_for_stop()).await;

    assert!(running.is_finished(), "the stop waited for accepted work");
    assert!(within("hold done", running).await.is_ok());
    assert!(pool.is_shutting_down());
    assert_eq!(
        lifecycle.dropped.load(Ordering::SeqCst),
        2,
        "every thread's state is dropped once the actor has stopped"
    );
    assert!(matches!(
        actor.offload(Count).await,
        Err(OffloadError::Ask(AskError::ActorStopped))
    ));
    system.shutdown(Duration::from_secs(5)).await;
}

/// `on_stop(Shutdown::Now)`: the stop does not wait for running work,
/// which is answered `ShuttingDown`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_with_shutdown_now_cuts_running_work() {
    let system = ActorSystem::new("now");
    let lifecycle = Arc::new(Lifecycle::default());
    let workers = WorkerActor::new(
        WorkerPool::builder("now")
            .workers(1)
            .grace(Duration::from_millis(50)),
        Tally::factory(&lifecycle),
    )
    .unwrap()
    .on_stop(Shutdown::Now);
    let pool = workers.pool().clone();
    let actor = system.spawn(move || workers.clone()).unwrap();
    let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let running = within(
        "hold accepted",
        actor.ask(Offload(Hold {
            started: Arc::clone(&started),
            release: Arc::clone(&release),
        })),
    )
    .await
    .unwrap();
    let waiting = Arc::clone(&started);
    within(
        "hold started",
        tokio::task::spawn_blocking(move || waiting.wait()),
    )
    .await
    .unwrap();

    actor.stop();
    within("the actor stops", actor.wait_for_stop()).await;
    assert!(matches!(
        within("hold answered", running).await,
        Err(OffloadError::Job(JobError::ShuttingDown))
    ));
    assert!(pool.is_shutting_down());
    // Let the detached thread return and exit.
    let releasing = Arc::clone(&release);
    within(
        "released",
        tokio::task::spawn_blocking(move || releasing.wait()),
    )
    .await
    .unwrap();
    system.shutdown(Duration::from_secs(5)).await;
}

/// System shutdown drains the actor's mailbox into the pool and then the
/// pool: every message already sent is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_shutdown_answers_every_message_already_sent() {
    let system = ActorSystem::new("drain");
    let lifecycle = Arc::new(Lifecycle::default());
    let (actor, pool) = spawn_tally(&system, WorkerPool::builder("drain").workers(2), &lifecycle);
    let mut asks = Vec::new();
    for _ in 0..16 {
        let actor = actor.clone();
        asks.push(tokio::spawn(async move { actor.offload(Count).await }));
    }
    until("every message in the mailbox or taken", || {
        system.stats().messages + actor.mailbox_len() as u64 == 16
    })
    .await;
    within("shutdown", system.shutdown(Duration::from_secs(10))).await;
    for ask in asks {
        within("answer", ask).await.unwrap().unwrap();
    }
    assert_eq!(pool.stats().completed, 16);
    assert!(pool.is_shutting_down());
    assert_eq!(
        lifecycle.dropped.load(Ordering::SeqCst),
        lifecycle.built.load(Ordering::SeqCst)
    );
}

/// A pool shut down underneath the actor: the next message is answered
/// `ShuttingDown` and the actor stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_shut_down_underneath_stops_the_actor() {
    let system = ActorSystem::new("closed");
    let lifecycle = Arc::new(Lifecycle::default());
    let (actor, pool) = spawn_tally(
        &system,
        WorkerPool::builder("closed").workers(1),
        &lifecycle,
    );
    within("count", actor.offload(Count)).await.unwrap();
    pool.shutdown(Shutdown::Graceful {
        timeout: Duration::from_secs(5),
    })
    .await;
    assert!(matches!(
        within("count", actor.offload(Count)).await,
        Err(OffloadError::Job(JobError::ShuttingDown))
    ));
    within("the actor stops", actor.wait_for_stop()).await;
    assert!(!actor.is_alive());
    system.shutdown(Duration::from_secs(5)).await;
}

/// A failing child that restarts its siblings (one-for-all).
struct Crashy;
impl Actor for Crashy {}

struct Crash;
impl Message for Crash {
    type Reply = ();
}

impl Handler<Crash> for Crashy {
    async fn handle(&mut self, _: Crash, _: &mut Context<Self>) -> Result<(), ActorError> {
        Err(ActorError::msg("crash"))
    }
}

struct Parent;
impl Actor for Parent {}

struct StartChildren(WorkerActor<Tally>);
impl Message for StartChildren {
    type Reply = (ActorRef<WorkerActor<Tally>>, ActorRef<Crashy>);
}

impl Handler<StartChildren> for Parent {
    async fn handle(
        &mut self,
        StartChildren(workers): StartChildren,
        ctx: &mut Context<Self>,
    ) -> Result<(ActorRef<WorkerActor<Tally>>, ActorRef<Crashy>), ActorError> {
        let workers = ctx.spawn_child(move || workers.clone()).spawn()?;
        let crashy = ctx.spawn_child(|| Crashy).spawn()?;
        Ok((workers, crashy))
    }
}

/// A restart of the actor (here a sibling's, under one-for-all) keeps the
/// pool and gives the thread a fresh state, as an OTP restart does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_the_actor_rebuilds_the_states() {
    let system = ActorSystem::new("restart");
    let lifecycle = Arc::new(Lifecycle::default());
    let workers = WorkerActor::new(
        WorkerPool::builder("restart").workers(1),
        Tally::factory(&lifecycle),
    )
    .unwrap();
    let pool = workers.pool().clone();
    let parent = system
        .actor(|| Parent)
        .strategy(SupervisionStrategy::OneForAll)
        .spawn()
        .unwrap();
    let (actor, crashy) = within("children", parent.ask(StartChildren(workers)))
        .await
        .unwrap();
    let before = within("count", actor.offload(Count)).await.unwrap();
    assert_eq!(
        within("count", actor.offload(Count)).await.unwrap().count,
        2
    );

    assert!(within("crash", crashy.ask(Crash)).await.is_err());
    until("both children restarted", || system.stats().restarts == 2).await;

    let after = within("count", actor.offload(Count)).await.unwrap();
    assert_ne!(after.state, before.state, "a fresh state after the restart");
    assert_eq!(after.count, 1);
    assert_eq!(
        lifecycle.dropped.load(Ordering::SeqCst),
        1,
        "the old state is dropped"
    );
    assert!(!pool.is_shutting_down(), "a restart keeps the pool");
    system.shutdown(Duration::from_secs(5)).await;
    assert!(pool.is_shutting_down());
}
