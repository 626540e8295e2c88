//! `ActorSystem`: spawning, the name registry, dead letters, shutdown.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::actor::{Actor, Context};
use crate::actor_ref::{ActorRef, Cell, lock};
use crate::error::{ActorError, SpawnError};
use crate::mailbox::{Mailbox, MailboxConfig};
use crate::mailbox::{Next, Signal};
use crate::supervision::{ExitReason, SupervisionStrategy};
use crate::supervision::{RestartPolicy, Supervisor, Verdict};

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

/// Lifecycle control of an actor of any type.
#[cfg_attr(not(any(feature = "metrics", feature = "health")), allow(dead_code))]
pub(crate) trait Control: Send + Sync {
    fn close(&self);
    fn stop(&self);
    fn kill(&self);
    fn id(&self) -> u64;
    fn signal(&self, signal: Signal);
    /// A child of this actor restarted: spread it per the strategy.
    fn child_restarted(&self, child: u64, reason: &str);
    fn remove_child(&self, child: u64);
    /// Adopts `child`; false once this actor is ending.
    fn add_child(&self, child: Arc<dyn Control>) -> bool;
    fn wait_stopped(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    fn kind(&self) -> &Arc<KindStats>;
    fn handled(&self) -> u64;
    fn mailbox_len(&self) -> usize;
    fn mailbox_full(&self) -> bool;
}

impl<A: Send + 'static> Control for Cell<A> {
    fn id(&self) -> u64 {
        self.id
    }

    fn signal(&self, signal: Signal) {
        self.mailbox.signal(signal);
    }

    fn child_restarted(&self, child: u64, reason: &str) {
        let children = lock(&self.children).clone();
        let position = children.iter().position(|c| c.id() == child);
        let restart: Vec<_> = match (self.strategy, position) {
            (SupervisionStrategy::OneForOne, _) | (_, None) => return,
            (SupervisionStrategy::OneForAll, Some(_)) => {
                children.iter().filter(|c| c.id() != child).collect()
            }
            (SupervisionStrategy::RestForOne, Some(at)) => children[at + 1..].iter().collect(),
        };
        for sibling in restart {
            sibling.signal(Signal::Restart(format!("sibling restarted: {reason}")));
        }
    }

    fn remove_child(&self, child: u64) {
        lock(&self.children).retain(|c| c.id() != child);
    }

    fn add_child(&self, child: Arc<dyn Control>) -> bool {
        let mut children = lock(&self.children);
        if !self.alive.load(Ordering::Acquire) || self.mailbox.is_closed() {
            return false;
        }
        children.push(child);
        true
    }

    fn wait_stopped(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                let stopped = self.stopped.notified();
                tokio::pin!(stopped);
                stopped.as_mut().enable();
                if !self.alive.load(Ordering::Acquire) {
                    return;
                }
                stopped.await;
            }
        })
    }

    fn kind(&self) -> &Arc<KindStats> {
        &self.kind
    }

    fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    fn mailbox_len(&self) -> usize {
        self.mailbox.len()
    }

    fn mailbox_full(&self) -> bool {
        self.mailbox.is_full()
    }

    fn close(&self) {
        self.mailbox.close();
    }

    fn stop(&self) {
        self.mailbox.request_stop();
    }

    fn kill(&self) {
        self.mailbox.request_stop();
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
    }
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
        Spawn {
            system: self,
            factory: Box::new(factory),
            name: None,
            mailbox: self.inner.default_mailbox,
            policy: RestartPolicy::default(),
            parent: None,
            strategy: SupervisionStrategy::OneForOne,
        }
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

/// An actor about to be spawned; see [`ActorSystem::actor`].
pub struct Spawn<'s, A> {
    system: &'s ActorSystem,
    factory: Box<dyn FnMut() -> A + Send>,
    name: Option<Arc<str>>,
    mailbox: MailboxConfig,
    policy: RestartPolicy,
    parent: Option<Arc<dyn Control>>,
    strategy: SupervisionStrategy,
}

impl<A> fmt::Debug for Spawn<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawn")
            .field("name", &self.name)
            .field("mailbox", &self.mailbox)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<A: Actor> Spawn<'_, A> {
    /// Registers the actor under `name` (freed when it stops).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Its mailbox.
    pub fn mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// Its restart policy.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How this actor's own children restart together (one-for-one unless
    /// set).
    pub fn strategy(mut self, strategy: SupervisionStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    pub(crate) fn parent(mut self, parent: Arc<dyn Control>) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Starts it on the current tokio runtime.
    pub fn spawn(self) -> Result<ActorRef<A>, SpawnError> {
        let inner = &self.system.inner;
        if !inner.accepting.load(Ordering::Acquire) {
            return Err(SpawnError::ShuttingDown);
        }
        if self.mailbox.capacity == Some(0) {
            return Err(SpawnError::ZeroCapacity);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoRuntime)?;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let label: Arc<str> = self
            .name
            .clone()
            .unwrap_or_else(|| short_type_name::<A>().into());
        let kind = inner.kind::<A>();
        kind.live.fetch_add(1, Ordering::Relaxed);
        let cell = Arc::new(Cell {
            id,
            kind,
            handled: AtomicU64::new(0),
            label: Arc::clone(&label),
            named: self.name.is_some(),
            mailbox: Mailbox::new(self.mailbox),
            system: Arc::clone(inner),
            alive: AtomicBool::new(true),
            stopped: Notify::new(),
            abort: OnceLock::new(),
            timers: Mutex::new(Vec::new()),
            parent: self.parent.as_ref().map(Arc::downgrade),
            children: Mutex::new(Vec::new()),
            strategy: self.strategy,
            watchers: Mutex::new(Vec::new()),
            exit: Mutex::new(ExitReason::Killed),
        });
        let mut names = inner.lock_names();
        if let Some(name) = &self.name {
            let taken = names.get(name).is_some_and(|registered| {
                registered
                    .cell
                    .downcast_ref::<Weak<Cell<A>>>()
                    .is_none_or(|weak| weak.strong_count() > 0)
            });
            if taken {
                return Err(SpawnError::NameTaken(name.to_string()));
            }
            names.insert(
                Arc::clone(name),
                Registered {
                    id,
                    cell: Box::new(Arc::downgrade(&cell)),
                },
            );
        }
        let actor_ref = ActorRef {
            cell: Arc::clone(&cell),
        };
        let run = run(
            Arc::clone(&cell),
            self.system.clone(),
            self.factory,
            Supervisor::new(self.policy, id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        // Spawned and recorded under the lock, so an actor that ends at
        // once still finds its entry to remove.
        let mut live = inner.lock_live();
        drop(names);
        let task = runtime.spawn(run);
        let _ = cell.abort.set(task.abort_handle());
        if let Some(parent) = &self.parent {
            let child: Arc<dyn Control> = cell.clone();
            if !parent.add_child(Arc::clone(&child)) {
                // The parent ended meanwhile: its children end with it.
                child.stop();
            }
        }
        live.insert(
            id,
            Live {
                control: cell,
                task,
            },
        );
        Ok(actor_ref)
    }
}

fn short_type_name<A>() -> &'static str {
    let full = std::any::type_name::<A>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// Cleans up however the actor's task ends: finished, failed or aborted.
struct ExitGuard<A> {
    cell: Arc<Cell<A>>,
}

impl<A> Drop for ExitGuard<A> {
    fn drop(&mut self) {
        let cell = &self.cell;
        cell.alive.store(false, Ordering::Release);
        cell.cancel_timers();
        let reason = if cell.system.accepting.load(Ordering::Acquire) {
            DeadLetterReason::ActorStopped
        } else {
            DeadLetterReason::Shutdown
        };
        cell.reject_all(cell.mailbox.drain(), reason);
        if cell.named {
            let mut names = cell.system.lock_names();
            if names
                .get(&cell.label)
                .is_some_and(|registered| registered.id == cell.id)
            {
                names.remove(&cell.label);
            }
        }
        // Killed or aborted: children go with it.
        for child in std::mem::take(&mut *lock(&cell.children)) {
            child.kill();
        }
        if let Some(parent) = cell.parent.as_ref().and_then(Weak::upgrade) {
            parent.remove_child(cell.id);
        }
        let watchers = std::mem::take(&mut *lock(&cell.watchers));
        if !watchers.is_empty() {
            let terminated = cell.terminated();
            for watcher in watchers {
                watcher(terminated.clone());
            }
        }
        cell.system.lock_live().remove(&cell.id);
        cell.kind
            .retired_messages
            .fetch_add(cell.handled.load(Ordering::Relaxed), Ordering::Relaxed);
        cell.kind.live.fetch_sub(1, Ordering::Relaxed);
        cell.stopped.notify_waiters();
    }
}

/// Polls a future, turning a panic into an `ActorError`.
struct CatchUnwind<F>(F);

impl<F, T> Future for CatchUnwind<F>
where
    F: Future<Output = Result<T, ActorError>> + Unpin,
{
    type Output = Result<T, ActorError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(ActorError::panicked(payload.as_ref()))),
        }
    }
}

async fn guarded<T>(
    future: impl Future<Output = Result<T, ActorError>> + Send,
) -> Result<T, ActorError> {
    CatchUnwind(Box::pin(future)).await
}

async fn hook(future: impl Future<Output = ()> + Send) {
    let _ = guarded(async {
        future.await;
        Ok(())
    })
    .await;
}

async fn run<A: Actor>(
    cell: Arc<Cell<A>>,
    system: ActorSystem,
    mut factory: Box<dyn FnMut() -> A + Send>,
    mut supervisor: Supervisor,
) {
    let _guard = ExitGuard {
        cell: Arc::clone(&cell),
    };
    let stats = Arc::clone(&cell.kind);
    let mut ctx = Context::new(
        ActorRef {
            cell: Arc::clone(&cell),
        },
        system,
    );
    let fail = |reason: String| *lock(&cell.exit) = ExitReason::Failed(reason);
    let Ok(mut actor) = std::panic::catch_unwind(AssertUnwindSafe(&mut factory)) else {
        stats.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(actor = %cell.label, "actor factory panicked");
        fail("the actor factory panicked".to_owned());
        return;
    };
    if let Err(error) = guarded(actor.pre_start(&mut ctx)).await {
        stats.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(actor = %cell.label, %error, "pre_start failed; actor not started");
        fail(error.to_string());
        stop_children(&cell).await;
        return;
    }
    let mut exit = ExitReason::Stopped;
    loop {
        let (failed, error, message_type) = match cell.mailbox.recv().await {
            Next::Stop => break,
            Next::Signal(Signal::Restart(reason)) => {
                // A sibling's restart: this one restarts too, without
                // counting against its own policy.
                let error = ActorError::msg(reason);
                match restart(&cell, &mut factory, actor, &error, None, Duration::ZERO).await {
                    Some(fresh) => {
                        actor = fresh;
                        continue;
                    }
                    None => return,
                }
            }
            Next::Signal(Signal::Failure(reason)) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                (true, ActorError::msg(reason), None)
            }
            Next::Message(envelope) => {
                let message_type = envelope.message_type();
                let span = tracing::debug_span!(
                    parent: envelope.sender_span(),
                    "actor.handle",
                    actor = %cell.label,
                    message = message_type,
                );
                #[cfg(feature = "metrics")]
                let timer = stats
                    .duration
                    .get()
                    .map(|histogram| (histogram, std::time::Instant::now()));
                let outcome = CatchUnwind(envelope.handle(&mut actor, &mut ctx))
                    .instrument(span)
                    .await;
                #[cfg(feature = "metrics")]
                if let Some((histogram, start)) = timer {
                    histogram.observe(start.elapsed().as_secs_f64());
                }
                // Only this task writes it: a plain load and store.
                cell.handled
                    .store(cell.handled.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                match outcome {
                    Ok(()) if !ctx.stop_requested => continue,
                    Ok(()) => (
                        false,
                        ActorError::msg("the actor stopped itself"),
                        Some(message_type),
                    ),
                    Err(error) => {
                        stats.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            actor = %cell.label, message = message_type, %error, "actor failed"
                        );
                        (true, error, Some(message_type))
                    }
                }
            }
        };
        ctx.stop_requested = false;
        match supervisor.on_exit(failed) {
            Verdict::Restart(delay) => {
                match restart(&cell, &mut factory, actor, &error, message_type, delay).await {
                    Some(fresh) => actor = fresh,
                    None => return,
                }
                if let Some(parent) = cell.parent.as_ref().and_then(Weak::upgrade) {
                    parent.child_restarted(cell.id, &error.to_string());
                }
            }
            Verdict::Stop => {
                if failed {
                    stats.exhausted.fetch_add(1, Ordering::Relaxed);
                    exit = ExitReason::Failed(error.to_string());
                }
                break;
            }
            Verdict::Escalate => {
                stats.exhausted.fetch_add(1, Ordering::Relaxed);
                exit = ExitReason::Failed(error.to_string());
                match cell.parent.as_ref().and_then(Weak::upgrade) {
                    Some(parent) => parent.signal(Signal::Failure(format!(
                        "child {} escalated: {error}",
                        cell.label
                    ))),
                    None => {
                        stats.escalations.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            actor = %cell.label, %error, "actor restarts exhausted; escalated"
                        );
                    }
                }
                break;
            }
        }
    }
    cell.mailbox.request_stop();
    // Children first, newest first, as OTP stops a supervisor's children.
    stop_children(&cell).await;
    hook(actor.post_stop(&mut ctx)).await;
    *lock(&cell.exit) = exit;
}

/// Stops every child of `cell` (newest first) and waits for them.
async fn stop_children<A: Send + 'static>(cell: &Cell<A>) {
    cell.mailbox.close();
    let children = std::mem::take(&mut *lock(&cell.children));
    for child in children.iter().rev() {
        child.stop();
    }
    for child in children.iter().rev() {
        child.wait_stopped().await;
    }
}

/// Replaces `actor` with a fresh one from `factory`, running the restart
/// hooks; `None` if the factory panicked (the actor then ends).
async fn restart<A: Actor>(
    cell: &Cell<A>,
    factory: &mut Box<dyn FnMut() -> A + Send>,
    mut actor: A,
    error: &ActorError,
    message_type: Option<&'static str>,
    delay: Duration,
) -> Option<A> {
    hook(actor.pre_restart(error, message_type)).await;
    drop(actor);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Ok(mut fresh) = std::panic::catch_unwind(AssertUnwindSafe(factory)) else {
        cell.kind.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(actor = %cell.label, "actor factory panicked on restart");
        *lock(&cell.exit) = ExitReason::Failed("the actor factory panicked".to_owned());
        return None;
    };
    cell.kind.restarts.fetch_add(1, Ordering::Relaxed);
    tracing::info!(actor = %cell.label, %error, "actor restarted");
    hook(fresh.post_restart(error)).await;
    // As an OTP supervisor restarts its children when it restarts: each
    // gets fresh state (and passes it on to its own children).
    for child in lock(&cell.children).iter() {
        child.signal(Signal::Restart(format!("parent {} restarted", cell.label)));
    }
    Some(fresh)
}
