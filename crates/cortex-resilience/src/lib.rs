//! Resilience policies for tower services and plain async code: circuit
//! breaker, retry, bulkhead, timeout, rate limiter and fallback, alone or
//! composed into the standard [`Pipeline`]; and (feature `cache`) an HTTP
//! response cache and a memoizer with request coalescing and RFC 5861
//! stale content ([`cache`]).
//!
//! Each policy is one state object behind an `Arc` with two front ends
//! that share it: a plain async API (`policy.execute(|| async { ... })`)
//! and a tower layer whose services, and their clones, all use that same
//! state. Rejections happen in `call`, never as an error from
//! `poll_ready`. Every policy error is a [`ResilienceError`], which axum
//! handlers can return directly (503 / 503 / 429 / 504 with
//! `Retry-After`); the `http_layer()` of each policy answers rejections
//! with those responses, so it goes straight onto a `Router`.
//!
//! Every policy is made the same way, `X::builder(name)…build()?` or
//! `X::from_config(name, config)?`; a bad setting is a [`ConfigError`]
//! naming the instance.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use cortex_resilience::{
//!     Bulkhead, CircuitBreaker, Pipeline, PolicyRegistry, RegistryError, Retry, Timeout,
//! };
//!
//! # fn main() -> Result<(), RegistryError> {
//! let breaker = CircuitBreaker::builder("inventory")
//!     .failure_rate_threshold(50.0)
//!     .minimum_number_of_calls(20)
//!     .wait_duration_in_open_state(Duration::from_secs(10))
//!     .build()?;
//! let total = Timeout::builder("inventory-total")
//!     .timeout_duration(Duration::from_secs(3))
//!     .build()?;
//! let attempt = Timeout::builder("inventory-attempt")
//!     .timeout_duration(Duration::from_secs(1))
//!     .build()?;
//! let pipeline = Pipeline::builder()
//!     .bulkhead(Bulkhead::builder("inventory").max_concurrent_calls(50).build()?)
//!     .timeout(total.clone())
//!     .retry(Retry::builder("inventory").build()?)
//!     .circuit_breaker(breaker.clone())
//!     .attempt_timeout(attempt.clone())
//!     .build_http();
//!
//! // Named, for `GET /resilience`, metrics and the health check.
//! let policies = PolicyRegistry::new();
//! policies.register_circuit_breaker(breaker)?;
//! policies.register_timeout(total)?;
//! policies.register_timeout(attempt)?;
//!
//! let app: Router = Router::new()
//!     .route("/inventory", get(|| async { "42 in stock" }))
//!     .layer(pipeline.http_layer())
//!     .merge(policies.router());
//! # Ok(())
//! # }
//! ```
//!
//! | policy | plain API | tower layer (`.layer()`) | HTTP layer (`.http_layer()`) |
//! |---|---|---|---|
//! | [`CircuitBreaker`] | `execute`, `execute_with`, `try_acquire_permission` | [`CircuitBreakerLayer`] | 503 + `Retry-After`; 5xx count as failures |
//! | [`Retry`] | `execute`, `execute_with` | [`RetryLayer`] (`Req: Clone`) | idempotent methods, replayable bodies, `Retry-After` honoured |
//! | [`Bulkhead`] | `execute`, `try_acquire`, `acquire` | [`BulkheadLayer`] | 503 |
//! | [`Timeout`] | `execute` | [`TimeoutLayer`] | 504 |
//! | [`RateLimiter`] | `try_acquire`, `check`, `acquire`, `execute` | [`RateLimiterLayer`] | 429 + `Retry-After` + `RateLimit-*` |
//! | [`KeyedRateLimiter`] | `try_acquire`, `check` | [`KeyedRateLimiterLayer`] (`layer(extractor)`) | `http_layer(extractor)`: 429 + `RateLimit-*` per key |
//! | `DistributedRateLimiter` (feature `redis`) | `check(key).await` | — | `http_layer(extractor)`: 429 + `RateLimit-*`, one budget per key across replicas |
//! | [`Fallback`] | via [`Policy`] | — | — |
//! | `ResponseCache` (feature `cache`) | — | `ResponseCacheLayer` (`http::Request` services; never rejects, so it goes on a `Router` as is) | — |
//! | `Memoizer` (feature `cache`) | `execute(key, call)`, `get`, `insert` | — | — |
//! | [`Pipeline`] | `execute` | [`PipelineLayer`] | all of the above |
//!
//! Every `http_layer()` is the policy's tower layer inside the one HTTP
//! adapter, [`HttpLayer`] (see the [`http`] module): `.layer()` keeps
//! errors as [`ResilienceError`]s for any tower stack, `.http_layer()`
//! turns rejections into responses for an axum `Router`. Each policy is a
//! folder in tower-http's layout (`layer.rs`, `service.rs`, `future.rs`,
//! the policy itself, its `config.rs`). Services are named
//! `<Policy>Service<S>` ([`CircuitBreakerService`], [`BulkheadService`],
//! ...): the bare noun belongs to the policy users hold, unlike
//! cortex-metrics' and cortex-compress' middleware, whose layer is their
//! only API (`Compression<S>`). Every service has `new`, `get_ref`,
//! `get_mut` and `into_inner`.
//!
//! The same words mean the same thing on every policy: `execute` runs a
//! call returning `Result<T, E>`; `execute_with` runs one returning
//! `Result<T, ResilienceError<E>>` with your own outcome decision (a
//! [`Classify`] for the breaker, a [`ShouldRetry`] for the retry);
//! `try_acquire` / `acquire` / `try_acquire_permission` take a permit or
//! return a typed rejection ([`BulkheadFull`], [`RateLimited`],
//! [`CircuitOpen`]) that `?` converts into a [`ResilienceError`]; `stats()`
//! is a snapshot, `config()` the configuration.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `cache` | yes | [`cache`]: `ResponseCache` (an RFC 9111 HTTP response cache layer on moka and http-cache-semantics: `Vary`, `Age`, `X-Cache`, coalescing, stale-while-revalidate, stale-if-error) and `Memoizer` (the same for async calls by key); `cortex_cache_*` series with `metrics` |
//! | `metrics` | no | `impl cortex_metrics::RegisterMetrics` for [`PolicyRegistry`], every policy and [`Pipeline`]: `cortex_circuitbreaker_*`, `cortex_bulkhead_*`, `cortex_retry_*`, `cortex_ratelimiter_*`, `cortex_timeout_*` (and `cortex_cache_*`) series, labelled by policy name |
//! | `redis` | no | `DistributedRateLimiter`: GCRA budgets in Redis shared by every replica, with a local fallback while Redis is down (see below); `cortex_ratelimiter_backend_*` series with `metrics` |
//! | `health` | no | `PolicyRegistry::health_check()` and `CircuitBreaker::health_check()` (a `CircuitBreakerHealthCheck` for cortex-health): degraded while a breaker is open |
//!
//! # Rate limits shared across replicas
//!
//! [`RateLimiter`] and [`KeyedRateLimiter`] count in this process: behind
//! a load balancer, three replicas allow three times the limit. With the
//! `redis` feature, `DistributedRateLimiter` keeps each key's GCRA state
//! in Redis and decides in one Lua script on Redis's clock, so the limit
//! holds for the fleet. Each check has a time budget (20 ms by default)
//! and never fails: while Redis errs or is slow, a `RedisFallback`
//! decides (by default a local limiter at the limit ÷ replicas), every
//! failure is counted, and the log notes each outage once.
//!
//! `DistributedRateLimiter`'s docs show it in full, as a layer on an
//! axum `Router` and by hand (`limiter.check(b"tenant-42").await`).
//!
//! # Observability
//!
//! [`PolicyRegistry::router`] serves every registered policy's stats as
//! JSON at `GET /resilience`. With `metrics`, `register_metrics(&registry)`
//! on a `PolicyRegistry`, a single policy or a `Pipeline` exports its
//! series (again, or in any order: registering twice adds nothing); with
//! `health`, `health_check()` reports open circuit breakers.
//!
//! # Time
//!
//! Policies read time from a [`Clock`]. The default reads the CPU's
//! time-stamp counter (about 10 ns, half of `Instant::now`); tests that
//! run under `#[tokio::test(start_paused = true)]` give builders
//! `.clock(Clock::tokio())` and move time with `tokio::time::advance`; a
//! [`ManualClock`] works without a runtime. Sleeps (backoff, bulkhead
//! waits, timeouts) always use tokio's timer.
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (1.88).

mod boxed;
pub mod breaker;
pub mod bulkhead;
#[cfg(feature = "cache")]
pub mod cache;
mod classify;
mod clock;
mod duration;
mod error;
mod events;
#[cfg(feature = "health")]
mod health;
pub mod http;
mod members;
#[cfg(feature = "metrics")]
mod metrics;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
mod registry;
pub mod retry;
pub mod timeout;

/// The redis-rs crate the `redis` feature builds on, re-exported so that a
/// `ConnectionManager` for
/// [`DistributedRateLimiterBuilder::connection`] is always of the version
/// this crate uses.
#[cfg(feature = "redis")]
pub use ::redis;
pub use breaker::{
    CallPermit, CircuitBreaker, CircuitBreakerBuilder, CircuitBreakerConfig, CircuitBreakerEvent,
    CircuitBreakerLayer, CircuitBreakerService, CircuitBreakerStats, CircuitState, OpenWaitFn,
    SlidingWindow,
};
pub use bulkhead::{
    Bulkhead, BulkheadBuilder, BulkheadConfig, BulkheadEvent, BulkheadLayer, BulkheadPermit,
    BulkheadService, BulkheadStats,
};
#[cfg(feature = "cache")]
pub use cache::{
    CacheBody, CacheEvent, CacheStats, Memoizer, MemoizerBuilder, MemoizerConfig, ResponseCache,
    ResponseCacheBuilder, ResponseCacheConfig, ResponseCacheLayer, ResponseCacheService,
};
pub use classify::{Classify, DefaultClassifier, HttpClassifier, Outcome};
pub use clock::{Clock, ManualClock};
pub use error::{BulkheadFull, CircuitOpen, ConfigError, RateLimited, ResilienceError};
pub use events::EVENT_CHANNEL_CAPACITY;
#[cfg(feature = "health")]
pub use health::CircuitBreakerHealthCheck;
pub use http::{HttpLayer, HttpService, IdempotentMethods, PolicyRejection, ResilienceBody};
pub use members::AllStats;
pub use pipeline::{Pipeline, PipelineBuilder, PipelineLayer, PipelineService};
pub use policy::{Chain, ClassifiedBreaker, Fallback, Policy, PolicyExt, RetryWhen};
#[cfg(feature = "redis")]
pub use ratelimit::{
    BackendErrorCounts, DistributedRateLimiter, DistributedRateLimiterBuilder,
    DistributedRateLimiterLayer, DistributedRateLimiterService, DistributedRateLimiterStats,
    RateLimitKey, RedisFallback,
};
pub use ratelimit::{
    ClientIp, GlobalKey, HeaderKey, KeyExtractor, KeyedRateLimiter, KeyedRateLimiterLayer,
    KeyedRateLimiterService, RateLimitDecision, RateLimiter, RateLimiterBuilder, RateLimiterConfig,
    RateLimiterLayer, RateLimiterService, RateLimiterStats, RouteKey,
};
pub use registry::{PolicyRegistry, RegistryConfig, RegistryError};
pub use retry::{
    Backoff, DefaultRetryPredicate, HttpRetryPredicate, Jitter, Retry, RetryBudgetConfig,
    RetryBuilder, RetryConfig, RetryDecision, RetryEvent, RetryLayer, RetryService, RetryStats,
    ShouldRetry,
};
pub use timeout::{
    Timeout, TimeoutBuilder, TimeoutConfig, TimeoutLayer, TimeoutService, TimeoutStats,
};

/// Compiles the code blocks of `docs/resilience.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/resilience.md")]
pub struct ResilienceGuideDoctests;
