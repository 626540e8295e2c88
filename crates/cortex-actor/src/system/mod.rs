//! `ActorSystem`: spawning, the name registry, dead letters, shutdown.
//!
//! The system's shared state lives here; the [`Spawn`] builder is in
//! `spawn.rs`, each actor's run loop (and its restarts and clean-up) in
//! `run.rs`, the type-erased lifecycle handle parents and the system hold
//! on an actor in `control.rs`, the OTP-order stop of a set of actors in
//! `stop.rs`, and the running totals behind [`ActorSystem::stats`] in
//! `counters.rs`.

mod control;
mod counters;
mod run;
mod spawn;
mod stop;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
#[cfg(feature = "metrics")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, Cell};
use crate::error::SpawnError;
use crate::mailbox::MailboxConfig;

pub(crate) use control::Control;
use counters::Totals;
pub use spawn::Spawn;

/// The topic of the system's [`EventBus`](crate::EventBus) on which every
/// [`DeadLetter`] is published.
pub const DEAD_LETTER_TOPIC: &str = "system.dead_letter";

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The actor had stopped or was stopping.
    ActorStopped,
    /// A `DropOldest`/`DropNewest` mailbox dropped it.
    MailboxOverflow,
    /// An `ask` found no mailbox space in time.
    MailboxTimeout,
    /// Still queued when the system's shutdown timeout ran out.
    Shutdown,
}

/// A message that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The addressee's name (or type name).
    pub actor: Arc<str>,
    /// The addressee's id.
    pub actor_id: u64,
    /// The message's Rust type.
    pub message_type: &'static str,
    /// Why.
    pub reason: DeadLetterReason,
}

/// Counters of a system, kept as events happen: reading them costs a few
/// atomic loads and takes no lock, however many actors there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemStats {
    /// Actors running now (started and not yet ended).
    pub actors: usize,
    /// Messages taken up by a handler (whether it then succeeded or not).
    pub messages: u64,
    /// Handler or hook failures, panics included.
    pub failures: u64,
    /// Restarts performed.
    pub restarts: u64,
    /// Failures escalated past an exhausted restart policy.
    pub escalations: u64,
    /// Undelivered messages.
    pub dead_letters: u64,
}

/// What `shutdown` achieved, counted over top-level actors (each stops
/// its own children before it ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Actors that drained their mailbox and stopped in time.
    pub drained: usize,
    /// Actors stopped after their time was up (their queue became dead
    /// letters).
    pub stopped_late: usize,
    /// Actors that had to be aborted mid-handler.
    pub killed: usize,
}

type UndeliveredHook = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

/// Counters of one kind of actor (its Rust type): the label metrics use,
/// so their cardinality is the number of actor types, never of actors.
/// Each count also goes to the system's [`Totals`].
#[derive(Debug)]
pub(crate) struct KindStats {
    // Read by the metrics collector and the health check.
    #[cfg_attr(not(any(feature = "metrics", feature = "health")), allow(dead_code))]
    pub(crate) kind: &'static str,
    totals: Arc<Totals>,
    /// Messages handled by actors of this kind that have stopped (moved
    /// here under the actor-table lock as each one ends); live actors
    /// count their own, uncontended, and are added at scrape.
    pub(crate) retired_messages: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) escalations: AtomicU64,
    pub(crate) exhausted: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
    pub(crate) live: AtomicU64,
    #[cfg(feature = "metrics")]
    pub(crate) duration: OnceLock<cortex_metrics::Histogram>,
}

impl KindStats {
    fn new(kind: &'static str, totals: Arc<Totals>) -> Self {
        Self {
            kind,
            totals,
            retired_messages: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            escalations: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            live: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            duration: OnceLock::new(),
        }
    }

    /// A handler took up a message (the actor counts its own as well).
    #[inline]
    pub(crate) fn message(&self) {
        self.totals.messages.increment();
    }

    /// A handler, hook or factory failed.
    pub(crate) fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.totals.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.totals.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// An exhausted failure reached the system (no parent to take it).
    pub(crate) fn escalation(&self) {
        self.escalations.fetch_add(1, Ordering::Relaxed);
        self.totals.escalations.fetch_add(1, Ordering::Relaxed);
    }

    fn dead_letter(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
        self.totals.dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    /// An actor of this kind started.
    pub(crate) fn started(&self) {
        self.live.fetch_add(1, Ordering::Relaxed);
        self.totals.actors.fetch_add(1, Ordering::Release);
    }

    /// An actor of this kind ended after handling `handled` messages; the
    /// caller holds the actor-table lock (see `retired_messages`).
    pub(crate) fn ended(&self, handled: u64) {
        self.retired_messages.fetch_add(handled, Ordering::Relaxed);
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.totals.actors.fetch_sub(1, Ordering::Release);
    }
}

/// A running actor, as the system's table holds it.
pub(crate) struct Live {
    pub(crate) control: Arc<dyn Control>,
    /// Spawned by the system rather than by a parent: what `shutdown`
    /// stops itself (children are stopped by their parents).
    top_level: bool,
}

struct Registered {
    id: u64,
    /// A `Weak<Cell<A>>`: the registry never keeps an actor alive.
    cell: Box<dyn Any + Send + Sync>,
}

pub(crate) struct SystemInner {
    name: Arc<str>,
    pub(crate) ask_timeouts: (Duration, Option<Duration>),
    default_mailbox: MailboxConfig,
    next_id: AtomicU64,
    accepting: AtomicBool,
    live: Mutex<HashMap<u64, Live>>,
    totals: Arc<Totals>,
    kinds: Mutex<HashMap<&'static str, Arc<KindStats>>>,
    pub(crate) events: crate::bus::EventBus,
    #[cfg(feature = "metrics")]
    pub(crate) duration_family: OnceLock<cortex_metrics::Family<cortex_metrics::Histogram, 1>>,
    /// Read on every lookup, written on named spawns and stops.
    names: RwLock<HashMap<Arc<str>, Registered>>,
    on_undelivered: RwLock<Option<UndeliveredHook>>,
}

impl SystemInner {
    pub(crate) fn dead_letter(
        &self,
        kind: &KindStats,
        actor: &Arc<str>,
        actor_id: u64,
        message_type: &'static str,
        reason: DeadLetterReason,
    ) {
        kind.dead_letter();
        tracing::debug!(actor = %actor, actor_id, message_type, ?reason, "dead letter");
        let letter = DeadLetter {
            actor: Arc::clone(actor),
            actor_id,
            message_type,
            reason,
        };
        let hook = self
            .on_undelivered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook(&letter);
        }
        // Never waits: a full subscriber misses it (the counters do not).
        let _ = self.events.try_publish(DEAD_LETTER_TOPIC, letter);
    }

    pub(crate) fn kind<A>(&self) -> Arc<KindStats> {
        let name = short_type_name::<A>();
        let mut kinds = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(kinds.entry(name).or_insert_with(|| {
            let stats = KindStats::new(name, Arc::clone(&self.totals));
            #[cfg(feature = "metrics")]
            if let Some(family) = self.duration_family.get() {
                let _ = stats.duration.set(family.with_labels([name]));
            }
            Arc::new(stats)
        }))
    }

    #[cfg_attr(not(any(feature = "metrics", feature = "health")), allow(dead_code))]
    pub(crate) fn kinds(&self) -> Vec<Arc<KindStats>> {
        let mut kinds: Vec<_> = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        kinds.sort_by_key(|kind| kind.kind);
        kinds
    }

    pub(crate) fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Live>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_names(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Registered>> {
        self.names
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_names(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Registered>> {
        self.names
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A set of actors with a registry, dead-letter reporting and shutdown. A
/// value, not a global: tests and services can hold several. Cheap to
/// clone.
///
/// ```
/// use cortex_actor::{Actor, ActorError, ActorSystem, Context, Handler, Message};
///
/// #[derive(Default)]
/// struct Counter(u64);
/// impl Actor for Counter {}
///
/// struct Add(u64);
/// impl Message for Add { type Reply = u64; }
///
/// impl Handler<Add> for Counter {
///     async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> Result<u64, ActorError> {
///         self.0 += n;
///         Ok(self.0)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let system = ActorSystem::new("shop");
/// let counter = system.spawn(Counter::default).unwrap();
/// counter.tell(Add(2)).await.unwrap();
/// assert_eq!(counter.ask(Add(3)).await, Ok(5));
/// system.shutdown(std::time::Duration::from_secs(1)).await;
/// # }
/// ```
#[derive(Clone)]
pub struct ActorSystem {
    inner: Arc<SystemInner>,
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("name", &&*self.inner.name)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Settings for an [`ActorSystem`].
#[derive(Debug, Clone)]
pub struct ActorSystemBuilder {
    name: Arc<str>,
    ask_timeouts: (Duration, Option<Duration>),
    default_mailbox: MailboxConfig,
}

impl ActorSystemBuilder {
    /// Default timeouts of [`ActorRef::ask`]: waiting for mailbox space,
    /// then for the reply (`None`: wait as long as the actor takes). 5 s
    /// each unless set. The mailbox timeout costs nothing unless the
    /// mailbox is full; a reply timeout arms a timer per ask (about a
    /// tenth of a microsecond), which `None` saves.
    pub fn ask_timeouts(mut self, mailbox: Duration, reply: Option<Duration>) -> Self {
        self.ask_timeouts = (mailbox, reply);
        self
    }

    /// The mailbox of actors spawned without one (1024, backpressure).
    pub fn default_mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.default_mailbox = mailbox;
        self
    }

    /// The system.
    pub fn build(self) -> ActorSystem {
        ActorSystem {
            inner: Arc::new(SystemInner {
                name: self.name,
                ask_timeouts: self.ask_timeouts,
                default_mailbox: self.default_mailbox,
                next_id: AtomicU64::new(1),
                accepting: AtomicBool::new(true),
                live: Mutex::new(HashMap::new()),
                totals: Arc::new(Totals::new()),
                names: RwLock::new(HashMap::new()),
                on_undelivered: RwLock::new(None),
                kinds: Mutex::new(HashMap::new()),
                events: crate::bus::EventBus::new(),
                #[cfg(feature = "metrics")]
                duration_family: OnceLock::new(),
            }),
        }
    }
}

impl ActorSystem {
    /// A system with default settings.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self::builder(name).build()
    }

    /// A builder for a system.
    pub fn builder(name: impl Into<Arc<str>>) -> ActorSystemBuilder {
        ActorSystemBuilder {
            name: name.into(),
            ask_timeouts: (Duration::from_secs(5), Some(Duration::from_secs(5))),
            default_mailbox: MailboxConfig::default(),
        }
    }

    #[cfg_attr(not(any(feature = "metrics", feature = "health")), allow(dead_code))]
    pub(crate) fn inner(&self) -> &SystemInner {
        &self.inner
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Spawns an actor built by `factory` (called again on each restart),
    /// with the default mailbox and restart policy, unnamed.
    pub fn spawn<A, F>(&self, factory: F) -> Result<ActorRef<A>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        self.actor(factory).spawn()
    }

    /// Starts describing an actor to spawn: name, mailbox, restart policy.
    pub fn actor<A, F>(&self, factory: F) -> Spawn<'_, A>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        Spawn::new(self, Box::new(factory))
    }

    /// The live actor registered under `name`, if it is an `A`: one hash
    /// lookup under a read lock, so lookups do not wait for each other.
    pub fn lookup<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        let names = self.inner.read_names();
        let registered = names.get(name)?;
        let cell = registered.cell.downcast_ref::<Weak<Cell<A>>>()?.upgrade()?;
        let actor = ActorRef { cell };
        actor.is_alive().then_some(actor)
    }

    /// Names currently registered, sorted (a copy of the whole registry:
    /// for diagnostics, not for a request path).
    pub fn registered_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .read_names()
            .keys()
            .map(|name| name.to_string())
            .collect();
        names.sort();
        names
    }

    /// Calls `hook` for every dead letter (keep it quick: it runs on the
    /// sender's or the stopping actor's task).
    pub fn on_undelivered(&self, hook: impl Fn(&DeadLetter) + Send + Sync + 'static) {
        *self
            .inner
            .on_undelivered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(hook));
    }

    /// A stream of dead letters with room for 1024 waiting: a subscription
    /// to [`DEAD_LETTER_TOPIC`] on [`events`](Self::events). A slow reader
    /// misses letters; the counter in [`stats`](Self::stats) never does.
    pub fn dead_letters(&self) -> crate::bus::EventStream<DeadLetter> {
        self.inner
            .events
            .subscribe(DEAD_LETTER_TOPIC, 1024, crate::bus::Delivery::BestEffort)
            .unwrap_or_else(|_| unreachable!("{DEAD_LETTER_TOPIC} is a valid pattern"))
    }

    /// Counters: a few atomic loads, no lock and no walk over the actors,
    /// so it is cheap enough for every request (see [`SystemStats`]).
    pub fn stats(&self) -> SystemStats {
        self.inner.totals.snapshot()
    }

    /// The system's event bus. Every [`DeadLetter`] is published on it
    /// under [`DEAD_LETTER_TOPIC`].
    pub fn events(&self) -> &crate::bus::EventBus {
        &self.inner.events
    }

    /// Stops the system as an OTP application stops: no new actors; then
    /// the top-level actors, one at a time, newest first, each stopping
    /// its own children (newest first) before it ends, so an actor started
    /// early (a pool, a connection) still serves those stopping before it.
    ///
    /// Each actor drains its mailbox (taking no new messages from the
    /// moment its turn comes) for up to its
    /// [shutdown timeout](Spawn::shutdown_timeout), never past `timeout`
    /// from now; then it is stopped (what is still queued becomes dead
    /// letters) with a short grace to finish its handler and `post_stop`,
    /// and then killed. Once `timeout` is spent, the actors not yet reached
    /// are stopped together, given the same grace, and then killed: the
    /// whole call takes `timeout` plus a grace of `timeout / 10` (at most
    /// 100 ms), plus the time to abort what is left. Every actor has ended
    /// when it returns.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let top_level: Vec<Arc<dyn Control>> = {
            let live = self.inner.lock_live();
            // Under the table's lock: a spawn either made it into the
            // table, and is stopped below, or sees the flag and fails.
            self.inner.accepting.store(false, Ordering::Release);
            live.values()
                .filter(|actor| actor.top_level)
                .map(|actor| Arc::clone(&actor.control))
                .collect()
        };
        let report = stop::shutdown(top_level, timeout).await;
        // Children end with their parents; wait for any still finishing
        // (those of a killed parent are being killed).
        let rest: Vec<Arc<dyn Control>> = self
            .inner
            .lock_live()
            .values()
            .map(|actor| Arc::clone(&actor.control))
            .collect();
        for actor in rest {
            actor.kill();
            actor.wait_stopped().await;
        }
        report
    }

    /// Whether `shutdown` has begun.
    pub fn is_shutting_down(&self) -> bool {
        !self.inner.accepting.load(Ordering::Acquire)
    }
}

fn short_type_name<A>() -> &'static str {
    let full = std::any::type_name::<A>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[derive(Default)]
    struct Idle;
    impl Actor for Idle {}

    /// Issue 12, item 6: `stats()` ran on every request of the Hub's
    /// `/api/orders` and walked every actor under the table's lock, so
    /// 10,000 live orders cut `GET /api/orders` from 54,757 to 5,510
    /// req/s. It must not touch the table (or the per-type map) at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn stats_never_waits_for_the_actor_table() {
        let system = ActorSystem::new("t");
        for _ in 0..100 {
            system.spawn(|| Idle).unwrap();
        }
        let (sent, received) = mpsc::channel();
        let table = system.inner.lock_live();
        let kinds = system
            .inner
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let reader = system.clone();
        let thread = std::thread::spawn(move || sent.send(reader.stats()).unwrap());
        let stats = received.recv_timeout(Duration::from_secs(5));
        drop((table, kinds));
        thread.join().unwrap();
        assert_eq!(stats.map(|stats| stats.actors), Ok(100));
        system.shutdown(Duration::from_secs(1)).await;
    }
}
