//! The actor lifecycle at its edges: factories and start hooks that fail,
//! what a restart hook learns about the failure, restart backoff, and what
//! a handler's `Context` offers (its own reference, its system, watching
//! peers, timers).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex_actor::{
    Actor, ActorError, ActorRef, ActorSystem, AskError, Context, ExitReason, Handler, Message,
    RestartBackoff, RestartPolicy, Terminated,
};
use tokio::sync::mpsc;

/// Forwards every `Terminated` it gets to a channel.
struct Watcher(mpsc::UnboundedSender<Terminated>);
impl Actor for Watcher {}

impl Handler<Terminated> for Watcher {
    async fn handle(&mut self, t: Terminated, _: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.0.send(t);
        Ok(())
    }
}

/// Watches `actor` and returns the reason it ended.
async fn exit_reason<A: Actor>(system: &ActorSystem, actor: &ActorRef<A>) -> ExitReason {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = system.spawn(move || Watcher(tx.clone())).unwrap();
    actor.watch_by(&watcher);
    let terminated = rx.recv().await.unwrap();
    watcher.stop();
    terminated.reason
}

struct Ping;
impl Message for Ping {
    type Reply = ();
}

/// An actor with no behaviour but answering pings.
struct Quiet;
impl Actor for Quiet {}
impl Handler<Ping> for Quiet {
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Result<(), ActorError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_factory_that_panics_ends_the_actor_failed_before_any_message() {
    let system = ActorSystem::new("t");
    let actor = system
        .spawn(|| -> Quiet { panic!("no database configured") })
        .unwrap();
    assert_eq!(
        exit_reason(&system, &actor).await,
        ExitReason::Failed("the actor factory panicked".to_owned())
    );
    assert!(!actor.is_alive());
    assert_eq!(actor.ask(Ping).await, Err(AskError::ActorStopped));
    assert_eq!(system.stats().failures, 1);
    system.shutdown(Duration::from_secs(1)).await;
}

/// Refuses to start.
struct Unready;
impl Actor for Unready {
    async fn pre_start(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
        Err(ActorError::msg("config file missing"))
    }
}
impl Handler<Ping> for Unready {
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Result<(), ActorError> {
        unreachable!("an actor whose pre_start failed handles nothing")
    }
}

#[tokio::test]
async fn a_failing_pre_start_ends_the_actor_with_its_error_and_no_restart() {
    let system = ActorSystem::new("t");
    let actor = system
        .actor(|| Unready)
        .restart_policy(RestartPolicy::default().max_restarts(10))
        .spawn()
        .unwrap();
    assert_eq!(
        exit_reason(&system, &actor).await,
        ExitReason::Failed("config file missing".to_owned())
    );
    assert!(actor.ask(Ping).await.is_err());
    let stats = system.stats();
    assert_eq!((stats.failures, stats.restarts), (1, 0));
    system.shutdown(Duration::from_secs(1)).await;
}

/// Fails on `Crash`; its factory panics from the second call on.
struct Fragile;
impl Actor for Fragile {}

struct Crash;
impl Message for Crash {
    type Reply = ();
}
impl Handler<Crash> for Fragile {
    async fn handle(&mut self, _: Crash, _: &mut Context<Self>) -> Result<(), ActorError> {
        Err(ActorError::msg("crashed"))
    }
}

#[tokio::test]
async fn a_factory_that_panics_on_restart_ends_the_actor_failed() {
    let system = ActorSystem::new("t");
    let mut calls = 0;
    let actor = system
        .spawn(move || {
            calls += 1;
            assert!(calls == 1, "cannot rebuild");
            Fragile
        })
        .unwrap();
    actor.tell(Crash).await.unwrap();
    assert_eq!(
        exit_reason(&system, &actor).await,
        ExitReason::Failed("the actor factory panicked".to_owned())
    );
    // The handler's failure and the factory's panic.
    assert_eq!(system.stats().failures, 2);
    assert_eq!(system.stats().restarts, 0);
    system.shutdown(Duration::from_secs(1)).await;
}

/// What `pre_restart` learned: a panic?, the source's I/O kind, Debug text.
type Learned = (bool, Option<std::io::ErrorKind>, String);

/// Fails as told; its `pre_restart` records what it learned.
struct Inspector(Arc<Mutex<Vec<Learned>>>);
impl Actor for Inspector {
    async fn pre_restart(&mut self, error: &ActorError, _: Option<&'static str>) {
        let kind = error
            .source_error()
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        self.0
            .lock()
            .unwrap()
            .push((error.is_panic(), kind, format!("{error:?}")));
    }
}

enum Failure {
    Panic,
    Io,
    Text,
}
impl Message for Failure {
    type Reply = ();
}
impl Handler<Failure> for Inspector {
    async fn handle(&mut self, f: Failure, _: &mut Context<Self>) -> Result<(), ActorError> {
        match f {
            Failure::Panic => panic!("index out of bounds"),
            Failure::Io => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "db slow").into()),
            Failure::Text => Err(ActorError::msg("invalid order")),
        }
    }
}

#[tokio::test]
async fn the_restart_hook_can_tell_panics_from_errors_and_reach_the_source() {
    let system = ActorSystem::new("t");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let actor = system
        .actor(move || Inspector(Arc::clone(&log)))
        .restart_policy(RestartPolicy::default().max_restarts(5))
        .spawn()
        .unwrap();
    for failure in [Failure::Panic, Failure::Io, Failure::Text] {
        assert!(matches!(
            actor.ask(failure).await,
            Err(AskError::HandlerFailed(_) | AskError::NoReply)
        ));
    }
    actor.stop();
    actor.wait_for_stop().await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (
                true,
                None,
                "ActorError(panicked: index out of bounds)".to_owned()
            ),
            (
                false,
                Some(std::io::ErrorKind::TimedOut),
                "ActorError(db slow)".to_owned()
            ),
            (false, None, "ActorError(invalid order)".to_owned()),
        ]
    );
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn restarts_wait_a_doubling_backoff_capped_at_its_maximum() {
    let system = ActorSystem::new("t");
    let actor = system
        .actor(|| Fragile)
        .restart_policy(
            RestartPolicy::default()
                .max_restarts(10)
                .backoff(RestartBackoff {
                    min: Duration::from_millis(100),
                    max: Duration::from_millis(300),
                    jitter: false,
                }),
        )
        .spawn()
        .unwrap();
    let mut waits = Vec::new();
    for _ in 0..4 {
        let restarts = system.stats().restarts;
        let started = tokio::time::Instant::now();
        actor.tell(Crash).await.unwrap();
        while system.stats().restarts == restarts {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        waits.push(started.elapsed().as_millis() / 10 * 10);
    }
    assert_eq!(waits, [100, 200, 300, 300]);
    system.shutdown(Duration::from_secs(1)).await;
}

/// Counts ticks; answers questions about itself.
#[derive(Default)]
struct Clock {
    ticks: u32,
}
impl Actor for Clock {}

struct Tick;
impl Message for Tick {
    type Reply = ();
}
impl Handler<Tick> for Clock {
    async fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Result<(), ActorError> {
        self.ticks += 1;
        Ok(())
    }
}

struct Ticks;
impl Message for Ticks {
    type Reply = u32;
}
impl Handler<Ticks> for Clock {
    async fn handle(&mut self, _: Ticks, _: &mut Context<Self>) -> Result<u32, ActorError> {
        Ok(self.ticks)
    }
}

struct RemindMe(Duration);
impl Message for RemindMe {
    type Reply = ();
}
impl Handler<RemindMe> for Clock {
    async fn handle(&mut self, m: RemindMe, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ctx.send_after(Tick, m.0);
        Ok(())
    }
}

struct WhoAmI;
impl Message for WhoAmI {
    type Reply = (u64, String);
}
impl Handler<WhoAmI> for Clock {
    async fn handle(
        &mut self,
        _: WhoAmI,
        ctx: &mut Context<Self>,
    ) -> Result<(u64, String), ActorError> {
        Ok((ctx.actor_ref().id(), ctx.system().name().to_owned()))
    }
}

#[tokio::test(start_paused = true)]
async fn send_after_delivers_once_after_the_delay() {
    let system = ActorSystem::new("t");
    let clock = system.spawn(Clock::default).unwrap();
    clock
        .ask(RemindMe(Duration::from_millis(50)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(49)).await;
    assert_eq!(clock.ask(Ticks).await, Ok(0));
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(clock.ask(Ticks).await, Ok(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        clock.ask(Ticks).await,
        Ok(1),
        "fires once, not periodically"
    );
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_timer_set_before_the_actor_stops_never_fires() {
    let system = ActorSystem::new("t");
    let clock = system.spawn(Clock::default).unwrap();
    clock
        .ask(RemindMe(Duration::from_millis(50)))
        .await
        .unwrap();
    clock.stop();
    clock.wait_for_stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Nothing was delivered late to a stopped actor.
    assert_eq!(system.stats().dead_letters, 0);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_handler_knows_its_own_reference_and_its_system() {
    let system = ActorSystem::new("billing");
    assert_eq!(system.name(), "billing");
    let clock = system.spawn(Clock::default).unwrap();
    assert_eq!(
        clock.ask(WhoAmI).await,
        Ok((clock.id(), "billing".to_owned()))
    );
    system.shutdown(Duration::from_secs(1)).await;
}

/// Watches whatever it is told to, and reports endings to a channel.
struct Observer(mpsc::UnboundedSender<Terminated>);
impl Actor for Observer {}

struct Watch(ActorRef<Quiet>);
impl Message for Watch {
    type Reply = ();
}
impl Handler<Watch> for Observer {
    async fn handle(
        &mut self,
        Watch(peer): Watch,
        ctx: &mut Context<Self>,
    ) -> Result<(), ActorError> {
        ctx.watch(&peer);
        Ok(())
    }
}
impl Handler<Terminated> for Observer {
    async fn handle(&mut self, t: Terminated, _: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.0.send(t);
        Ok(())
    }
}

#[tokio::test]
async fn an_actor_that_watches_a_peer_from_its_handler_learns_when_it_stops() {
    let system = ActorSystem::new("t");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let observer = system.spawn(move || Observer(tx.clone())).unwrap();
    let peer = system.actor(|| Quiet).name("peer").spawn().unwrap();
    observer.ask(Watch(peer.clone())).await.unwrap();
    peer.stop();
    let terminated = rx.recv().await.unwrap();
    assert_eq!(
        (terminated.id, &*terminated.name, terminated.reason),
        (peer.id(), "peer", ExitReason::Stopped)
    );
    system.shutdown(Duration::from_secs(1)).await;
}
