//! [`Spawn`]: the builder that describes an actor (name, mailbox, restart
//! policy, strategy for its children) and starts it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, Cell};
use crate::error::SpawnError;
use crate::mailbox::{Mailbox, MailboxConfig};
use crate::supervision::{ExitReason, RestartPolicy, SupervisionStrategy, Supervisor};

use super::run::{ExitGuard, run};
use super::{ActorSystem, Control, Live, Registered, short_type_name};

/// OTP's default `shutdown` for a worker child: 5000 ms.
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// An actor about to be spawned; see [`ActorSystem::actor`].
pub struct Spawn<'s, A> {
    system: &'s ActorSystem,
    factory: Box<dyn FnMut() -> A + Send>,
    name: Option<Arc<str>>,
    mailbox: MailboxConfig,
    policy: RestartPolicy,
    parent: Option<Arc<dyn Control>>,
    strategy: SupervisionStrategy,
    shutdown_timeout: Duration,
}

impl<A> fmt::Debug for Spawn<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawn")
            .field("name", &self.name)
            .field("mailbox", &self.mailbox)
            .field("policy", &self.policy)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

impl<'s, A: Actor> Spawn<'s, A> {
    /// The defaults: unnamed, the system's default mailbox, the default
    /// restart policy, one-for-one for its children, 5 s to stop.
    pub(super) fn new(system: &'s ActorSystem, factory: Box<dyn FnMut() -> A + Send>) -> Self {
        Self {
            system,
            factory,
            name: None,
            mailbox: system.inner.default_mailbox,
            policy: RestartPolicy::default(),
            parent: None,
            strategy: SupervisionStrategy::OneForOne,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

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

    /// How long it may take to stop when its parent stops (or the system
    /// shuts down) before it is killed: OTP's child `shutdown`. 5 s unless
    /// set, OTP's default for a worker. `Duration::ZERO` kills it at once
    /// without `post_stop` (`brutal_kill`); `Duration::MAX` waits as long
    /// as it takes (`infinity`, OTP's default for a supervisor: an actor
    /// with children waits for theirs, so give it at least their sum).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
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
        let cell = Arc::new(Cell {
            id,
            kind: Arc::clone(&kind),
            handled: AtomicU64::new(0),
            label: Arc::clone(&label),
            named: self.name.is_some(),
            mailbox: Mailbox::new(self.mailbox),
            system: Arc::clone(inner),
            alive: AtomicBool::new(true),
            ended: AtomicBool::new(false),
            stopped: Notify::new(),
            shutdown_timeout: self.shutdown_timeout,
            abort: OnceLock::new(),
            timers: Mutex::new(Vec::new()),
            parent: self.parent.as_ref().map(Arc::downgrade),
            children: Mutex::new(Vec::new()),
            strategy: self.strategy,
            watchers: Mutex::new(Vec::new()),
            exit: Mutex::new(ExitReason::Killed),
        });
        {
            // Every check before any effect, under the registry's and the
            // table's locks (in that order, as everywhere): a spawn either
            // is counted and recorded whole, or leaves no trace.
            let mut names = inner.write_names();
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
            }
            let mut live = inner.lock_live();
            if !inner.accepting.load(Ordering::Acquire) {
                return Err(SpawnError::ShuttingDown);
            }
            if let Some(name) = &self.name {
                names.insert(
                    Arc::clone(name),
                    Registered {
                        id,
                        cell: Box::new(Arc::downgrade(&cell)),
                    },
                );
            }
            live.insert(
                id,
                Live {
                    control: cell.clone(),
                    top_level: self.parent.is_none(),
                },
            );
            kind.started();
        }
        let actor_ref = ActorRef {
            cell: Arc::clone(&cell),
        };
        // The guard travels in the task's future, so the actor is cleaned
        // up (and uncounted) however the task ends, even if it is aborted
        // or dropped before it first runs. Spawned outside the locks: a
        // runtime that is shutting down drops the future, guard and all,
        // right here.
        let task = runtime.spawn(run(
            ExitGuard::new(Arc::clone(&cell)),
            self.system.clone(),
            self.factory,
            Supervisor::new(self.policy, id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        ));
        let _ = cell.abort.set(task.abort_handle());
        if let Some(parent) = &self.parent {
            let child: Arc<dyn Control> = cell;
            if !parent.add_child(Arc::clone(&child)) {
                // The parent ended meanwhile: its children end with it.
                child.stop();
            }
        }
        Ok(actor_ref)
    }
}
