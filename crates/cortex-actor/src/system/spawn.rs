//! [`Spawn`]: the builder that describes an actor (name, mailbox, restart
//! policy, strategy for its children) and starts it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::Notify;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, Cell};
use crate::error::SpawnError;
use crate::mailbox::{Mailbox, MailboxConfig};
use crate::supervision::{ExitReason, RestartPolicy, SupervisionStrategy, Supervisor};

use super::run::run;
use super::{ActorSystem, Control, Live, Registered, short_type_name};

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

impl<'s, A: Actor> Spawn<'s, A> {
    /// The defaults: unnamed, the system's default mailbox, the default
    /// restart policy, one-for-one for its children.
    pub(super) fn new(system: &'s ActorSystem, factory: Box<dyn FnMut() -> A + Send>) -> Self {
        Self {
            system,
            factory,
            name: None,
            mailbox: system.inner.default_mailbox,
            policy: RestartPolicy::default(),
            parent: None,
            strategy: SupervisionStrategy::OneForOne,
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
