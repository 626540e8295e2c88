//! Rate limiting with GCRA: global, or keyed by client, route or API key.
//!
//! ```
//! use std::time::Duration;
//! use cortex_resilience::{Clock, RateLimiter, ResilienceError};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let limiter = RateLimiter::builder("search")
//!     .clock(Clock::tokio()) // paused time in this example
//!     .permits(2, Duration::from_secs(1))
//!     .build()
//!     .unwrap();
//! assert!(limiter.check().allowed);
//! assert!(limiter.check().allowed);
//! let third = limiter.execute(|| async { Ok::<_, ()>(()) }).await;
//! assert!(matches!(third, Err(ResilienceError::RateLimited { .. })));
//! tokio::time::advance(Duration::from_millis(500)).await;
//! assert!(limiter.check().allowed);
//! # }
//! ```
//!
//! The global limiter is one `AtomicU64` updated with compare-and-swap: no
//! lock on the hot path. [`KeyedRateLimiter`] keeps one such state per key
//! in sharded maps with a hard cap on keys; see its docs for eviction.
//!
//! `policy` holds [`RateLimiter`], `keyed` [`KeyedRateLimiter`], `builder`
//! the builder of both; `config` the settings and stats; `gcra` the
//! algorithm and `state` the atomic state and counters both limiters
//! share; `key` the [`KeyExtractor`]s. The tower front end is `layer`
//! ([`RateLimiterLayer`], [`KeyedRateLimiterLayer`]), `service`
//! ([`RateLimiterService`], [`KeyedRateLimiterService`], also what
//! [`HttpLayer`](crate::HttpLayer) drives, adding the `RateLimit-*`
//! headers) and `future` ([`ResponseFuture`]).
//!
//! With the `redis` feature, `redis` holds the `DistributedRateLimiter`:
//! the same algorithm with its state in Redis, one budget per key for
//! every replica of a service (script in `gcra.lua`).

mod builder;
mod config;
mod future;
mod gcra;
mod key;
mod keyed;
mod layer;
mod policy;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod state;

pub use builder::RateLimiterBuilder;
pub use config::{RateLimiterConfig, RateLimiterStats};
pub use future::ResponseFuture;
pub use gcra::RateLimitDecision;
pub use key::{ClientIp, GlobalKey, HeaderKey, KeyExtractor, RouteKey};
pub use keyed::KeyedRateLimiter;
pub use layer::{KeyedRateLimiterLayer, RateLimiterLayer};
pub use policy::RateLimiter;
#[cfg(feature = "redis")]
pub use redis::{
    BackendErrorCounts, DistributedRateLimiter, DistributedRateLimiterBuilder,
    DistributedRateLimiterLayer, DistributedRateLimiterService, DistributedRateLimiterStats,
    RateLimitKey, RedisFallback,
};
pub use service::{KeyedRateLimiterService, RateLimiterService};
