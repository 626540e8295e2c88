//! Circuit breaker with resilience4j's semantics and defaults.
//!
//! One [`CircuitBreaker`] is one state object behind an `Arc`: clones, the
//! plain [`execute`](CircuitBreaker::execute) API and every service made by
//! its [`layer`](CircuitBreaker::layer) share it.
//!
//! ```
//! use cortex_resilience::{CircuitBreaker, CircuitState, ResilienceError, SlidingWindow};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let breaker = CircuitBreaker::builder("payments")
//!     .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 3 })
//!     .build()
//!     .unwrap();
//! for _ in 0..3 {
//!     let _ = breaker.execute(|| async { Err::<(), _>("downstream failed") }).await;
//! }
//! assert_eq!(breaker.state(), CircuitState::Open);
//! let rejected = breaker.execute(|| async { Ok::<_, &str>(()) }).await;
//! assert!(matches!(rejected, Err(ResilienceError::CircuitOpen { .. })));
//! # }
//! ```
//!
//! # How it stays exact under concurrency
//!
//! The state, a transition epoch and the free half-open probe slots live in
//! one `AtomicU64`. Closed-state admission is a single load; a half-open
//! probe takes its slot with a compare-and-swap on that word, so no more
//! than the permitted probes are ever admitted, and a probe that is dropped
//! unfinished gives its slot back only to the epoch it came from.
//! Transitions take a mutex, re-check the epoch and bump it, so each is
//! applied once and outcomes of calls admitted before a transition never
//! count towards the state after it.
//!
//! # Where things are
//!
//! `policy` holds [`CircuitBreaker`], the API users call; `builder` every
//! setting ([`CircuitBreakerBuilder`]); `config` the serde configuration;
//! `state` the [`CircuitState`] and the packed word; `machine` admission,
//! recording and transitions on that word; `permit` what a call carries
//! until its outcome is recorded; `window` the sliding windows; `stats`
//! what the breaker reports. The tower front end is `layer`
//! ([`CircuitBreakerLayer`]), `service` ([`CircuitBreakerService`], which
//! is also what [`HttpLayer`](crate::HttpLayer) drives) and `future`
//! ([`ResponseFuture`]).

mod builder;
mod config;
mod future;
mod layer;
mod machine;
mod permit;
mod policy;
mod service;
mod state;
mod stats;
mod window;

pub use builder::{CircuitBreakerBuilder, OpenWaitFn};
pub use config::{CircuitBreakerConfig, SlidingWindow};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use permit::CallPermit;
pub use policy::CircuitBreaker;
pub use service::CircuitBreakerService;
pub use state::CircuitState;
pub use stats::{CircuitBreakerEvent, CircuitBreakerStats};
