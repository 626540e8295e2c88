//! Retry with backoff, jitter, result predicates and a retry budget.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use cortex_resilience::{Backoff, Retry};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let retry = Retry::builder("inventory")
//!     .max_attempts(3)
//!     .backoff(Backoff::Exponential {
//!         initial: Duration::from_millis(100),
//!         multiplier: 2.0,
//!         max: Duration::from_secs(2),
//!     })
//!     .build()
//!     .unwrap();
//! let calls = AtomicU32::new(0);
//! let result = retry
//!     .execute(|| async {
//!         // Fails twice, then succeeds.
//!         if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err("flaky") } else { Ok("stock") }
//!     })
//!     .await;
//! assert_eq!(result, Ok("stock"));
//! assert_eq!(calls.load(Ordering::SeqCst), 3);
//! # }
//! ```
//!
//! Which results are retried is a [`ShouldRetry`]: by default inner errors
//! and timeouts are, policy rejections (an open circuit, a full bulkhead, a
//! rate limit) never are. [`HttpRetryPredicate`] retries 502/503/504 and
//! 429 responses and honours `Retry-After`.
//!
//! `policy` holds [`Retry`], its builder and the retry loop; `config` the
//! settings, stats and events; `predicate` the [`ShouldRetry`] decisions;
//! `backoff` and `budget` the delays and the retry budget. The tower
//! front end is `layer` ([`RetryLayer`]), `service` ([`RetryService`],
//! which [`HttpLayer`](crate::HttpLayer) drives with replayed requests)
//! and `future` ([`ResponseFuture`]).

mod backoff;
mod budget;
mod config;
mod future;
mod layer;
mod policy;
mod predicate;
mod service;

pub use backoff::{Backoff, Jitter};
pub use budget::RetryBudgetConfig;
pub use config::{RetryConfig, RetryEvent, RetryStats};
pub use future::ResponseFuture;
pub(crate) use future::call_ready;
pub use layer::RetryLayer;
pub use policy::{Retry, RetryBuilder};
pub use predicate::{DefaultRetryPredicate, HttpRetryPredicate, RetryDecision, ShouldRetry};
pub use service::RetryService;
