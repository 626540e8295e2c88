//! Typed actors on tokio: each actor is state plus a mailbox, handling one
//! message at a time on its own task.
//!
//! - **Messages** are plain types: `impl Message for M { type Reply = R; }`
//!   and `impl Handler<M> for MyActor`, one impl per message type.
//! - **[`ActorRef`]**: `tell` (waits for mailbox space: backpressure),
//!   `try_tell` (fails fast), `ask` with two timeouts (mailbox space, then
//!   the reply). Messages from one sender arrive in order; sending to a
//!   stopped actor fails at once and becomes a dead letter.
//! - **Mailboxes** are bounded by default (1024) with an explicit
//!   [`Overflow`] policy: `Backpressure`, `FailFast`, `DropOldest`,
//!   `DropNewest`. Unbounded is opt-in. No send path bypasses the capacity.
//! - **Supervision**: a handler's error or panic is caught; the actor's
//!   [`RestartPolicy`] (default: restart up to 3 times, then stop) rebuilds
//!   it from its factory — `pre_restart` on the old state, `post_restart`
//!   on the new — keeping the mailbox and reporting, not retrying, the
//!   failing message. Intensity windows, backoff with jitter, and
//!   Permanent / Transient / Temporary restart types as in OTP.
//! - **Trees**: `ctx.spawn_child` starts children under a parent whose
//!   [`SupervisionStrategy`] (one-for-one, one-for-all, rest-for-one)
//!   spreads restarts; stopping a parent stops its children first, as OTP
//!   does: one at a time, newest first, each within its own shutdown
//!   timeout ([`Spawn::shutdown_timeout`]) or killed; an exhausted child
//!   can escalate to its parent; `watch`/`link` deliver [`Terminated`]
//!   when a peer ends.
//! - **Event bus**: [`EventBus`] with typed topics, `*`/`**` wildcards,
//!   stream, actor and callback subscribers, best-effort or guaranteed
//!   delivery.
//! - **System messages jump the queue**: `stop` lets the current handler
//!   finish, `kill` interrupts it.
//! - **Registry and dead letters**: actors spawned with a name can be
//!   looked up; names are freed when they stop. Undelivered messages are
//!   counted, logged, passed to an `on_undelivered` hook and streamed.
//! - **Shutdown**: [`ActorSystem::shutdown`] stops the top-level actors
//!   the same way, newest first, each draining its mailbox, all within one
//!   timeout; no actor outlives it.
//! - **Stats**: [`ActorSystem::stats`] reads running totals (a few atomic
//!   loads, no lock), cheap enough for every request.
//! - **Tracing**: each message is handled in an `actor.handle` span whose
//!   parent is the span that was current where it was sent, so a request's
//!   trace continues into the actors it talks to.
//!
//! ```
//! use std::time::Duration;
//! use cortex_actor::{
//!     Actor, ActorError, ActorSystem, Context, Handler, MailboxConfig, Message, Overflow,
//!     RestartPolicy,
//! };
//!
//! #[derive(Default)]
//! struct Account { balance: i64 }
//! impl Actor for Account {}
//!
//! struct Deposit(i64);
//! impl Message for Deposit { type Reply = i64; }
//!
//! impl Handler<Deposit> for Account {
//!     async fn handle(&mut self, Deposit(amount): Deposit, _: &mut Context<Self>)
//!         -> Result<i64, ActorError>
//!     {
//!         if amount <= 0 {
//!             return Err(ActorError::msg("deposits must be positive"));
//!         }
//!         self.balance += amount;
//!         Ok(self.balance)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let system = ActorSystem::new("bank");
//! let account = system
//!     .actor(Account::default)
//!     .name("account-42")
//!     .mailbox(MailboxConfig::bounded(256).overflow(Overflow::FailFast))
//!     .restart_policy(RestartPolicy::default().max_restarts(5))
//!     .spawn()
//!     .unwrap();
//! assert_eq!(account.ask(Deposit(10)).await, Ok(10));
//! // A failing message restarts the actor (its state is rebuilt).
//! assert!(account.ask(Deposit(-1)).await.is_err());
//! let same = system.lookup::<Account>("account-42").unwrap();
//! assert_eq!(same.ask(Deposit(5)).await, Ok(5));
//! system.shutdown(Duration::from_secs(1)).await;
//! assert!(!account.is_alive());
//! # }
//! ```

//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `metrics` | no | `impl cortex_metrics::RegisterMetrics for ActorSystem`: `cortex_actor_*` series, labelled by actor type |
//! | `health` | no | `ActorSystem::health_check`: a cortex-health check (degraded on exhausted restarts or stuck mailboxes) |
//! | `nats` | no | [`cluster`]: the event bus and named actors across nodes on NATS (bridges over core NATS or JetStream, durable consumer groups with dead letters, remote `ask`/`tell`, one owner per actor name in JetStream KV, cluster-wide ids), with the W3C trace context in message headers |
//!
//! # Minimum supported Rust version
//!
//! 1.89: the workspace's 1.88 would do without `nats`, but async-nats
//! (feature `nats`, and the crate's tests) needs 1.89.

mod actor;
mod actor_ref;
mod bus;
#[cfg(feature = "nats")]
pub mod cluster;
mod envelope;
mod error;
#[cfg(feature = "health")]
mod health;
mod mailbox;
#[cfg(feature = "metrics")]
mod metrics;
mod supervision;
mod system;

pub use actor::{Actor, Context, Handler, Message};
pub use actor_ref::ActorRef;
pub use bus::{
    BusStats, Delivery, EventBus, EventStream, PublishReport, Published, SubscriptionHandle,
    TopicError,
};
pub use error::{ActorError, AskError, SendError, SpawnError};
#[cfg(feature = "health")]
pub use health::ActorHealthCheck;
pub use mailbox::{MailboxConfig, Overflow};
pub use supervision::{
    ExitReason, OnExhausted, RestartBackoff, RestartPolicy, RestartType, SupervisionStrategy,
    Terminated,
};
pub use system::{
    ActorSystem, ActorSystemBuilder, DEAD_LETTER_TOPIC, DeadLetter, DeadLetterReason,
    ShutdownReport, Spawn, SystemStats,
};

/// Compiles the code blocks of `docs/actors.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/actors.md")]
pub struct ActorsGuideDoctests;
