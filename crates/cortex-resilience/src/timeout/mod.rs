//! Timeout: cancel a call that takes too long (resilience4j's
//! `TimeLimiter`).
//!
//! ```
//! use std::time::Duration;
//! use cortex_resilience::{ResilienceError, Timeout};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let timeout = Timeout::builder("search")
//!     .timeout_duration(Duration::from_millis(100))
//!     .build()
//!     .unwrap();
//! let slow = timeout
//!     .execute(|| async {
//!         tokio::time::sleep(Duration::from_secs(1)).await;
//!         Ok::<_, ()>("late")
//!     })
//!     .await;
//! assert_eq!(slow, Err(ResilienceError::Timeout));
//! assert_eq!(timeout.stats().timed_out_calls_total, 1);
//! # }
//! ```
//!
//! The timed-out future is dropped, which cancels it. A fallback value is
//! a [`Fallback`](crate::Fallback) around the timeout.
//!
//! `policy` holds [`Timeout`] and its builder; `config` the settings and
//! stats; the tower front end is `layer` ([`TimeoutLayer`]), `service`
//! ([`TimeoutService`], also what [`HttpLayer`](crate::HttpLayer) drives)
//! and `future` ([`ResponseFuture`]).

mod config;
mod future;
mod layer;
mod policy;
mod service;

pub use config::{TimeoutConfig, TimeoutStats};
pub use future::ResponseFuture;
pub use layer::TimeoutLayer;
pub use policy::{Timeout, TimeoutBuilder};
pub use service::TimeoutService;
