//! `ActorSystem`: spawning, the name registry, dead letters, shutdown.
//!
//! The system's shared state lives here; the [`Spawn`] builder is in
//! `spawn.rs`, each actor's run loop (and its restarts and clean-up) in
//! `run.rs`, and the type-erased lifecycle handle parents and the system
//! hold on an actor in `control.rs`.

mod control;
mod run;
mod spawn;

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
#[cfg(feature = "metrics")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, Cell};
use crate::error::SpawnError;
use crate::mailbox::MailboxConfig;

pub(crate) use control::Control;
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

/// Counters of a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemStats {
    /// Actors running now.
    pub actors: usize,
    /// Messages handled (successfully or not).
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

/// What `shutdown` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Actors that drained their mailbox and stopped in time.
    pub drained: usize,
    /// Actors stopped after the timeout (their queue became dead letters).
    pub stopped_late: usize,
    /// Actors that had to be aborted mid-handler.
    pub killed: usize,
}

type UndeliveredHook = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

/// Counters of one kind of actor (its Rust type): the label metrics use,
/// so their cardinality is the number of actor types, never of actors.
#[derive(Debug, Default)]
pub(crate) struct KindStats {
    pub(crate) kind: &'static str,
    /// Messages handled by actors of this kind that have stopped; live
    /// actors count their own (uncontended) and are added at scrape.
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

pub(crate) struct Live {
    pub(crate) control: Arc<dyn Control>,
    task: JoinHandle<()>,
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
    kinds: Mutex<HashMap<&'static str, Arc<KindStats>>>,
    pub(crate) events: crate::bus::EventBus,
    #[cfg(feature = "metrics")]
    pub(crate) duration_family: OnceLock<cortex_metrics::Family<cortex_metrics::Histogram, 1>>,
    names: Mutex<HashMap<Arc<str>, Registered>>,
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
        kind.dead_letters.fetch_add(1, Ordering::Relaxed);
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
            let stats = KindStats {
                kind: name,
                ..KindStats::default()
            };
            #[cfg(feature = "metrics")]
            if let Some(family) = self.duration_family.get() {
                let _ = stats.duration.set(family.with_labels([name]));
            }
            Arc::new(stats)
        }))
    }

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

    fn lock_names(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Registered>> {
        self.names
            .lock()
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
                names: Mutex::new(HashMap::new()),
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

    /// The live actor registered under `name`, if it is an `A`.
    pub fn lookup<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        let names = self.inner.lock_names();
        let registered = names.get(name)?;
        let cell = registered.cell.downcast_ref::<Weak<Cell<A>>>()?.upgrade()?;
        let actor = ActorRef { cell };
        actor.is_alive().then_some(actor)
    }

    /// Names currently registered.
    pub fn registered_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .lock_names()
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

    /// Counters.
    pub fn stats(&self) -> SystemStats {
        let inner = &self.inner;
        let mut stats = SystemStats::default();
        {
            let live = inner.lock_live();
            stats.actors = live.len();
            stats.messages = live.values().map(|actor| actor.control.handled()).sum();
        }
        for kind in inner.kinds() {
            stats.messages += kind.retired_messages.load(Ordering::Relaxed);
            stats.failures += kind.failures.load(Ordering::Relaxed);
            stats.restarts += kind.restarts.load(Ordering::Relaxed);
            stats.escalations += kind.escalations.load(Ordering::Relaxed);
            stats.dead_letters += kind.dead_letters.load(Ordering::Relaxed);
        }
        stats
    }

    /// The system's event bus. Every [`DeadLetter`] is published on it
    /// under [`DEAD_LETTER_TOPIC`].
    pub fn events(&self) -> &crate::bus::EventBus {
        &self.inner.events
    }

    /// Stops the system: no new actors or messages; every actor drains its
    /// mailbox for up to `timeout`, then is stopped (what is still queued
    /// becomes dead letters), and after a further moment aborted. Every
    /// actor task has ended when this returns.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        self.inner.accepting.store(false, Ordering::Release);
        let live: Vec<(u64, Live)> = self.inner.lock_live().drain().collect();
        for (_, actor) in &live {
            actor.control.close();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut report = ShutdownReport::default();
        let mut late = Vec::new();
        for (id, mut actor) in live {
            match tokio::time::timeout_at(deadline, &mut actor.task).await {
                Ok(_) => report.drained += 1,
                Err(_) => late.push((id, actor)),
            }
        }
        for (_, actor) in &late {
            actor.control.stop();
        }
        // A moment for the current handlers to finish and `post_stop` to run.
        let grace = tokio::time::Instant::now() + (timeout / 10).min(Duration::from_millis(100));
        for (_, mut actor) in late {
            if tokio::time::timeout_at(grace, &mut actor.task)
                .await
                .is_ok()
            {
                report.stopped_late += 1;
            } else {
                actor.control.kill();
                let _ = actor.task.await;
                report.killed += 1;
            }
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
