//! [`WorkerActor`]: N OS threads of a [`WorkerPool`] behind one
//! [`ActorRef`] of `cortex-actor`, like actix's `SyncArbiter`, with a
//! bounded queue between them.
//!
//! # Why
//!
//! An actor of `cortex-actor` handles one message at a time on a tokio
//! task. CPU work in its handler blocks a runtime thread, and a handler
//! that awaits a pool job still runs one job at a time: the next message
//! waits for the job. A `WorkerActor` instead hands each message to a pool
//! thread and moves on, so up to N messages run at once:
//!
//! - **Typed messages, synchronous handlers.** A message `M` (any
//!   [`Message`]) is handled by [`SyncHandler<M>`] on a pool thread:
//!   `fn handle(&mut self, M) -> Result<M::Reply, ActorError>`, plain
//!   blocking code.
//! - **State per thread.** Each worker thread builds its own state `S`
//!   with the factory the first time it handles a message and keeps it for
//!   the next ones, so no lock is shared between threads. `S` never leaves
//!   its thread: it need not be `Send` (an `Rc`, a non-`Send` parser or
//!   interpreter is fine).
//! - **Backpressure end to end.** The actor's handler only queues the
//!   message on the pool, waiting for room while the pool's queue is full;
//!   meanwhile its mailbox fills, and senders wait (or fail fast) under the
//!   mailbox's [`Overflow`](cortex_actor::Overflow) policy. Nothing grows
//!   without bound.
//! - **Panics isolated.** A panicking handler answers its asker
//!   [`OffloadError::Job`]`(`[`JobError::Panicked`]`)`; that thread's state,
//!   possibly half updated, is dropped and rebuilt by the factory on the
//!   thread's next message. The other threads keep theirs, and the actor
//!   itself does not fail: its supervisor is not involved.
//! - **The pool's machinery.** Run timeouts, queue TTLs, cooperative
//!   cancellation ([`is_cancelled`](crate::is_cancelled) works inside a
//!   handler), stats, Prometheus series and the health check all come from
//!   the [`WorkerPool`], which [`WorkerActor::pool`] exposes.
//! - **One trace.** The handler runs in the pool's `cortex_worker.job`
//!   span, a child of the actor's `actor.handle` span, itself a child of
//!   the sender's: a request's trace follows the message onto the thread.
//!
//! # Asking
//!
//! [`OffloadExt::offload`] asks and waits for the answer in one call. Under
//! it are two steps, which an actor that must not wait for the work can
//! take apart: `ask(Offload(m))` resolves once the message is **accepted**
//! by the pool, with an [`OffloadHandle`] that resolves once it is
//! **done**. `tell(Offload(m))` runs it detached. Messages are started in
//! mailbox order; with N > 1 they may finish in any order.
//!
//! ```
//! use std::time::Duration;
//! use cortex_actor::{ActorError, ActorSystem, Message};
//! use cortex_workers::{Offload, OffloadExt, SyncHandler, WorkerActor, WorkerPool};
//!
//! /// One per worker thread: a scratch buffer reused across messages.
//! #[derive(Default)]
//! struct Checksummer { scratch: Vec<u8>, handled: u64 }
//!
//! struct Checksum(Vec<u8>);
//! impl Message for Checksum { type Reply = u32; }
//!
//! impl SyncHandler<Checksum> for Checksummer {
//!     fn handle(&mut self, Checksum(data): Checksum) -> Result<u32, ActorError> {
//!         if data.is_empty() {
//!             return Err(ActorError::msg("nothing to sum"));
//!         }
//!         self.handled += 1;
//!         self.scratch.clear();
//!         self.scratch.extend(data.iter().rev());
//!         Ok(self.scratch.iter().fold(0_u32, |sum, &b| sum.rotate_left(5) ^ u32::from(b)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = ActorSystem::new("app");
//! let workers = WorkerActor::new(
//!     WorkerPool::builder("checksum").workers(2).queue_capacity(8),
//!     Checksummer::default,
//! )?;
//! let pool = workers.pool().clone();
//! // The actor's factory clones it: a restart keeps the same pool.
//! let checksum = system.actor(move || workers.clone()).name("checksum").spawn()?;
//!
//! // One call: queued (waiting for room if need be), run, answered.
//! let sum = checksum.offload(Checksum(b"hello".to_vec())).await?;
//! // Two steps: accepted, then done.
//! let handle = checksum.ask(Offload(Checksum(b"hello".to_vec()))).await?;
//! assert_eq!(handle.await?, sum);
//! // The handler's error reaches the asker; the state is kept.
//! assert!(checksum.offload(Checksum(Vec::new())).await.is_err());
//!
//! assert_eq!(pool.stats().completed, 3);
//! // Stopping the system stops the actor, which shuts its pool down.
//! system.shutdown(Duration::from_secs(5)).await;
//! assert!(pool.is_shutting_down());
//! # Ok(()) }
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use cortex_actor::{Actor, ActorError, ActorRef, AskError, Context, Handler, Message};

use crate::config::WorkerPoolBuilder;
use crate::error::{JobError, WorkersError};
use crate::job::JobHandle;
use crate::pool::WorkerPool;
use crate::shutdown::Shutdown;

/// Handling of one message type on a worker thread, by the state `S` of a
/// [`WorkerActor<S>`].
///
/// Runs synchronously on one of the pool's threads, with that thread's own
/// state: block, compute, call synchronous libraries. An `Err` goes back
/// to the asker as [`OffloadError::Failed`] and the state is kept (the
/// handler returned through its own code); a panic goes back as
/// [`OffloadError::Job`]`(`[`JobError::Panicked`]`)` and the state is
/// dropped and rebuilt. A long handler can poll
/// [`is_cancelled`](crate::is_cancelled) to stop early after the pool's
/// run timeout.
pub trait SyncHandler<M: Message>: 'static {
    /// Handles `message` on this worker thread.
    fn handle(&mut self, message: M) -> Result<M::Reply, ActorError>;
}

/// The message a [`WorkerActor`] is sent: `M`, to be handled by a worker
/// thread. Its reply is an [`OffloadHandle`] that resolves to `M`'s reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offload<M>(pub M);

impl<M: Message> Message for Offload<M> {
    type Reply = OffloadHandle<M::Reply>;
}

/// How long [`WorkerActor`] lets its pool finish accepted work when the
/// actor stops, unless set with [`WorkerActor::on_stop`].
const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// An actor of `cortex-actor` whose messages run on the N threads of its
/// own [`WorkerPool`], each thread with its own state `S`.
///
/// Why it is built this way: the actor handles one message at a time, so
/// its handler must not run (or wait for) the work itself. It only queues
/// `M` on the pool, waiting while the pool's queue is full, which is the
/// backpressure, and replies at once with an [`OffloadHandle`]; the next
/// message is taken while the work runs, so N threads run at once behind
/// the one [`ActorRef`].
///
/// - Each worker thread builds its own state `S` with the factory at its
///   first message and keeps it, so no lock is shared between threads;
///   `S` never leaves its thread and need not be `Send`.
/// - A [`SyncHandler`]'s `Err` reaches the asker as
///   [`OffloadError::Failed`] and the state is kept; a panic reaches it as
///   [`OffloadError::Job`]`(`[`JobError::Panicked`]`)` and only that
///   thread's state is dropped and rebuilt. The actor itself does not
///   fail.
/// - [`OffloadExt::offload`] asks and waits for the answer;
///   `ask(Offload(m))` resolves once the pool accepted `m`, with an
///   [`OffloadHandle`] for the answer; `tell(Offload(m))` runs it detached.
///   Messages start in mailbox order and may finish in any order.
///
/// The pool belongs to the actor ([`new`](Self::new) builds it): the
/// actor's stop ([`ActorRef::stop`], system shutdown, restarts exhausted)
/// shuts it down as [`on_stop`](Self::on_stop) says, joining its threads
/// and dropping their states. A killed actor leaves the pool to wind down
/// by itself once its last clone is dropped. A restart of the actor (its
/// parent's or a sibling's under one-for-all) keeps the pool and gives
/// every thread a fresh state at its next message, as OTP restarts give
/// fresh state.
///
/// Cheap to clone; clones share the pool and the factory. Spawn it with a
/// factory that clones it, so a restart keeps the pool:
///
/// ```
/// use std::time::Duration;
/// use cortex_actor::{ActorError, ActorSystem, Message};
/// use cortex_workers::{JobError, OffloadError, OffloadExt, Shutdown, SyncHandler, WorkerActor, WorkerPool};
///
/// struct Fib(u32);
/// impl Message for Fib { type Reply = u64; }
///
/// /// A memo per thread: no lock between the threads.
/// #[derive(Default)]
/// struct Memo(std::collections::HashMap<u32, u64>);
///
/// impl SyncHandler<Fib> for Memo {
///     fn handle(&mut self, Fib(n): Fib) -> Result<u64, ActorError> {
///         assert!(n <= 90, "fib({n}) overflows a u64");
///         let (mut a, mut b) = (0_u64, 1_u64);
///         for _ in 0..n {
///             (a, b) = (b, a + b);
///         }
///         Ok(*self.0.entry(n).or_insert(a))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new("app");
/// let workers = WorkerActor::new(WorkerPool::builder("fib").workers(2), Memo::default)?
///     .on_stop(Shutdown::Graceful { timeout: Duration::from_secs(1) });
/// let pool = workers.pool().clone();
/// let fib = system.spawn(move || workers.clone())?;
///
/// assert_eq!(fib.offload(Fib(90)).await?, 2_880_067_194_370_816_120);
/// // A panic is the asker's error; that thread's memo is rebuilt.
/// let overflow = fib.offload(Fib(91)).await;
/// assert!(matches!(overflow, Err(OffloadError::Job(JobError::Panicked(_)))));
/// assert_eq!(fib.offload(Fib(10)).await?, 55);
/// assert_eq!((pool.stats().completed, pool.stats().panicked), (2, 1));
///
/// fib.stop();
/// fib.wait_for_stop().await;
/// assert!(pool.is_shutting_down());
/// # Ok(()) }
/// ```
pub struct WorkerActor<S> {
    pool: WorkerPool,
    shared: Arc<Shared<S>>,
    on_stop: Shutdown,
}

/// What every clone of a [`WorkerActor`] and every job share.
struct Shared<S> {
    /// Tells this actor's states apart from any other's on a thread.
    key: u64,
    /// Bumped on each restart of the actor: a thread whose state is older
    /// rebuilds it.
    generation: AtomicU64,
    factory: Box<dyn Fn() -> S + Send + Sync>,
}

impl<S: 'static> WorkerActor<S> {
    /// Builds the pool `pool` describes, for this actor alone, and the
    /// actor; `factory` builds each thread's state on that thread (at its
    /// first message, and again after a panic or a restart).
    pub fn new<F>(pool: WorkerPoolBuilder, factory: F) -> Result<Self, WorkersError>
    where
        F: Fn() -> S + Send + Sync + 'static,
    {
        static NEXT_KEY: AtomicU64 = AtomicU64::new(0);
        Ok(Self {
            pool: pool.build()?,
            shared: Arc::new(Shared {
                key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
                generation: AtomicU64::new(0),
                factory: Box::new(factory),
            }),
            on_stop: Shutdown::Graceful {
                timeout: DEFAULT_DRAIN,
            },
        })
    }

    /// How the pool shuts down when the actor stops. Default:
    /// `Graceful { timeout: 5 s }`, so accepted messages are still
    /// answered. The actor's stop waits for it: give the actor a
    /// [`shutdown_timeout`](cortex_actor::Spawn::shutdown_timeout) longer
    /// than the drain, or it is killed meanwhile (the pool's shutdown then
    /// goes on, on its own thread).
    pub fn on_stop(mut self, mode: Shutdown) -> Self {
        self.on_stop = mode;
        self
    }

    /// The actor's pool: [`stats`](WorkerPool::stats), metrics and the
    /// health check (features `metrics`, `health`). Shutting it down makes
    /// later messages answer [`JobError::ShuttingDown`] and stops the actor.
    pub fn pool(&self) -> &WorkerPool {
        &self.pool
    }
}

impl<S> Clone for WorkerActor<S> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            shared: Arc::clone(&self.shared),
            on_stop: self.on_stop,
        }
    }
}

impl<S> fmt::Debug for WorkerActor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerActor")
            .field("pool", &self.pool.name())
            .field("state", &std::any::type_name::<S>())
            .field("on_stop", &self.on_stop)
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Actor for WorkerActor<S> {
    async fn post_stop(&mut self, _: &mut Context<Self>) {
        let report = self.pool.shutdown(self.on_stop).await;
        tracing::debug!(
            pool = self.pool.name(),
            drained = report.drained,
            cancelled_queued = report.cancelled_queued,
            cancelled_running = report.cancelled_running,
            "worker actor stopped; its pool is shut down"
        );
    }

    async fn post_restart(&mut self, _: &ActorError) {
        // States live on the worker threads: each thread compares and
        // rebuilds its own at its next message.
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl<S, M> Handler<Offload<M>> for WorkerActor<S>
where
    S: SyncHandler<M>,
    M: Message,
{
    async fn handle(
        &mut self,
        Offload(message): Offload<M>,
        ctx: &mut Context<Self>,
    ) -> Result<OffloadHandle<M::Reply>, ActorError> {
        let shared = Arc::clone(&self.shared);
        let job = move || Outcome(handle_here(&shared, message));
        // Waits for room in the pool's queue (backpressure) but not for
        // the job: the next message is taken while this one runs.
        match self.pool.submit(job).await {
            Ok(handle) => Ok(OffloadHandle {
                state: HandleState::Running(handle),
            }),
            Err(_) => {
                // Only a closed pool refuses an awaited submission: this
                // actor can do nothing more, so it stops (its queue becomes
                // dead letters).
                tracing::warn!(
                    pool = self.pool.name(),
                    "the worker actor's pool is shut down; stopping the actor"
                );
                ctx.stop();
                Ok(OffloadHandle {
                    state: HandleState::Refused(Some(JobError::ShuttingDown)),
                })
            }
        }
    }
}

/// One state per actor on a worker thread, with the generation it was
/// built for.
struct Held {
    key: u64,
    generation: u64,
    state: Option<Box<dyn Any>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // A state whose `Drop` panics must not take the worker down (or
        // abort the process, in a thread-local destructor at thread exit).
        if let Some(state) = self.state.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(state)));
        }
    }
}

thread_local! {
    /// The states of the worker actors whose messages this thread ran;
    /// dropped when the thread exits (at the pool's shutdown). A pool is
    /// one actor's, so this holds one entry.
    static STATES: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// Runs `message` on this thread's state of the actor (built if there is
/// none, or only one from before a restart). The state is taken out of
/// the thread-local while the handler runs: a panic leaves nothing
/// half-updated behind, and the panic goes on to the pool, which answers
/// the asker `Panicked`.
fn handle_here<S, M>(shared: &Shared<S>, message: M) -> Result<M::Reply, ActorError>
where
    S: SyncHandler<M>,
    M: Message,
{
    let generation = shared.generation.load(Ordering::Acquire);
    let held = STATES.with(|states| {
        let mut states = states.borrow_mut();
        let at = states.iter().position(|held| held.key == shared.key)?;
        Some(states.swap_remove(at))
    });
    let reusable = held
        .filter(|held| held.generation == generation)
        .and_then(|mut held| held.state.take())
        .and_then(|state| state.downcast::<S>().ok());
    let mut state = match reusable {
        Some(state) => state,
        // A factory's panic is this message's panic.
        None => Box::new((shared.factory)()),
    };
    match catch_unwind(AssertUnwindSafe(|| state.handle(message))) {
        Ok(reply) => {
            STATES.with(|states| {
                states.borrow_mut().push(Held {
                    key: shared.key,
                    generation,
                    state: Some(state),
                });
            });
            reply
        }
        Err(payload) => {
            drop(Held {
                key: shared.key,
                generation,
                state: Some(state),
            });
            resume_unwind(payload)
        }
    }
}

/// A handler's result as the pool carries it (the pool's jobs return
/// `Debug` values; a reply type need not be one).
struct Outcome<R>(Result<R, ActorError>);

impl<R> fmt::Debug for Outcome<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Ok(_) => f.write_str("Outcome(Ok(..))"),
            Err(error) => write!(f, "Outcome(Err({error}))"),
        }
    }
}

/// The reply to [`Offload`]: the message was accepted by the pool; `.await`
/// this for its handler's answer (or [`wait`](Self::wait) from a plain
/// thread).
///
/// Dropping it does not cancel the work, which still runs (its answer is
/// dropped); [`cancel`](Self::cancel) does.
#[must_use = "the work runs whether or not this is awaited; await it for the answer"]
pub struct OffloadHandle<R> {
    state: HandleState<R>,
}

enum HandleState<R> {
    Running(JobHandle<Outcome<R>>),
    /// Never queued: the pool was closed.
    Refused(Option<JobError>),
}

impl<R: Send + 'static> OffloadHandle<R> {
    /// Blocks this thread until the answer. Not on an async runtime's
    /// thread: `.await` the handle there.
    pub fn wait(self) -> Result<R, OffloadError> {
        match self.state {
            HandleState::Running(handle) => settle(handle.wait()),
            HandleState::Refused(error) => Err(refused(error)),
        }
    }

    /// Whether the answer is in.
    pub fn is_finished(&self) -> bool {
        match &self.state {
            HandleState::Running(handle) => handle.is_finished(),
            HandleState::Refused(_) => true,
        }
    }

    /// Cancels the work: not started, it never runs; running, its
    /// [`CancellationToken`](crate::CancellationToken) fires. Either way the
    /// handle answers [`JobError::Cancelled`] at once; see
    /// [`JobHandle::cancel`]. Returns whether this call decided the outcome.
    pub fn cancel(&self) -> bool {
        match &self.state {
            HandleState::Running(handle) => handle.cancel(),
            HandleState::Refused(_) => false,
        }
    }
}

impl<R> Future for OffloadHandle<R> {
    type Output = Result<R, OffloadError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            HandleState::Running(handle) => Pin::new(handle).poll(cx).map(settle),
            HandleState::Refused(error) => Poll::Ready(Err(refused(error.take()))),
        }
    }
}

impl<R> fmt::Debug for OffloadHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let finished = match &self.state {
            HandleState::Running(handle) => handle.is_finished(),
            HandleState::Refused(_) => true,
        };
        f.debug_struct("OffloadHandle")
            .field("finished", &finished)
            .finish_non_exhaustive()
    }
}

fn settle<R>(result: Result<Outcome<R>, JobError>) -> Result<R, OffloadError> {
    match result {
        Ok(Outcome(Ok(reply))) => Ok(reply),
        Ok(Outcome(Err(error))) => Err(OffloadError::Failed(error)),
        Err(error) => Err(OffloadError::Job(error)),
    }
}

fn refused(error: Option<JobError>) -> OffloadError {
    // Polled again after `Ready`: still the same answer.
    OffloadError::Job(error.unwrap_or(JobError::ShuttingDown))
}

/// Why a message sent to a [`WorkerActor`] has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    /// The actor did not take the message: stopped, mailbox full, or a
    /// timeout of the ask (which covers the wait for room in the pool's
    /// queue, not the work).
    #[error(transparent)]
    Ask(#[from] AskError),
    /// The [`SyncHandler`] returned this error; its state was kept.
    #[error("the handler failed: {0}")]
    Failed(ActorError),
    /// The work has no result: the handler panicked (its thread's state is
    /// rebuilt), ran past the pool's run timeout, waited past its queue
    /// TTL, was cancelled, or the pool shut down.
    #[error(transparent)]
    Job(#[from] JobError),
}

/// Asking a [`WorkerActor`] in one call: implemented for
/// `ActorRef<WorkerActor<S>>`.
pub trait OffloadExt<S> {
    /// Sends `message` and waits for its handler's answer: for the
    /// mailbox and the pool's queue to take it (with the system's ask
    /// timeouts), then for the work (bounded only by the pool's run
    /// timeout, if any). `ask(Offload(message))` is the first half.
    fn offload<M>(&self, message: M) -> impl Future<Output = Result<M::Reply, OffloadError>> + Send
    where
        S: SyncHandler<M>,
        M: Message;
}

impl<S: 'static> OffloadExt<S> for ActorRef<WorkerActor<S>> {
    async fn offload<M>(&self, message: M) -> Result<M::Reply, OffloadError>
    where
        S: SyncHandler<M>,
        M: Message,
    {
        self.ask(Offload(message)).await?.await
    }
}
