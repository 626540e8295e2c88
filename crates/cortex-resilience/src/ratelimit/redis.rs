//! [`DistributedRateLimiter`]: one GCRA budget per key, shared by every
//! replica of a service through Redis (feature `redis`).
//!
//! This file holds the limiter, its fallback and the probe that finds
//! Redis back; `gcra.lua` (beside it) the script, the same arithmetic as
//! `gcra.rs`; `builder` the settings, `key` the stable key encoding
//! ([`RateLimitKey`]), `layer` the HTTP front end, `stats` the counters.

mod builder;
mod key;
mod layer;
mod stats;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::Script;
use ::redis::aio::ConnectionManager;

pub use builder::DistributedRateLimiterBuilder;
pub use key::RateLimitKey;
pub use layer::{DistributedRateLimiterLayer, DistributedRateLimiterService};
pub use stats::{BackendErrorCounts, DistributedRateLimiterStats};

use super::RateLimitDecision;
use super::keyed::KeyedRateLimiter;
use key::OVERFLOW_KEY;
use stats::{BackendError, Counters};

/// The GCRA script, hashed once per process. `Script::invoke_async` sends
/// `EVALSHA`, and on `NOSCRIPT` `SCRIPT LOAD` and `EVALSHA` again.
static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("gcra.lua")));

/// What decides while Redis does not answer (an error, or no answer within
/// the check's time budget).
///
/// ```
/// use cortex_resilience::RedisFallback;
///
/// assert_eq!(RedisFallback::default(), RedisFallback::Local { replicas: 1 });
/// assert_eq!(RedisFallback::Local { replicas: 4 }.to_string(), "local (limit ÷ 4)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFallback {
    /// Allow every request (fail open): availability over the limit.
    Allow,
    /// Refuse every request (fail closed), with the emission interval
    /// (period ÷ permits) as `retry_after`: for limits that protect
    /// something that must never be exceeded, such as a paid upstream API.
    Deny,
    /// Enforce the limit in this process alone, divided by `replicas`
    /// (the number of processes that share the limit): `permits` per
    /// `replicas × period` with a burst of `burst ÷ replicas` (at least 1),
    /// keyed like the Redis budget. While every replica falls back, the
    /// fleet as a whole allows about the configured limit, as Envoy and
    /// Kong do by default (fail open, but not unlimited).
    Local {
        /// How many processes share the limit; at least 1.
        replicas: u32,
    },
}

impl Default for RedisFallback {
    /// `Local { replicas: 1 }`.
    fn default() -> Self {
        Self::Local { replicas: 1 }
    }
}

impl fmt::Display for RedisFallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("allow"),
            Self::Deny => f.write_str("deny"),
            Self::Local { replicas } => write!(f, "local (limit ÷ {replicas})"),
        }
    }
}

/// The fallback as the limiter runs it.
enum Fallback {
    Allow,
    Deny,
    Local(KeyedRateLimiter<Vec<u8>>),
}

/// Whether Redis answered last time, and whether a check is already
/// finding out while it did not.
struct BackendHealth {
    available: AtomicBool,
    probing: AtomicBool,
}

impl Default for BackendHealth {
    /// Available until a call fails: a node that starts while Redis is
    /// down finds out on its first check.
    fn default() -> Self {
        Self {
            available: AtomicBool::new(true),
            probing: AtomicBool::new(false),
        }
    }
}

/// Permission for one check to call Redis; a probe releases its slot when
/// dropped, even if the check's future is dropped mid-call.
struct Admission<'a> {
    probe: Option<&'a AtomicBool>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(probing) = self.probe {
            probing.store(false, Ordering::Release);
        }
    }
}

impl BackendHealth {
    /// Whether this check may call Redis: always while it is available;
    /// while it is not, one check at a time.
    fn admit(&self) -> Option<Admission<'_>> {
        if self.available.load(Ordering::Acquire) {
            return Some(Admission { probe: None });
        }
        self.probing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Admission {
                probe: Some(&self.probing),
            })
    }
}

/// Everything a limiter and its clones share.
struct Shared {
    name: Arc<str>,
    connection: ConnectionManager,
    /// `cortex:rl:<name>:` unless configured.
    prefix: Box<[u8]>,
    /// Period ÷ permits in whole µs, at least 1: the script's `T`.
    interval_us: u64,
    burst: u32,
    timeout: Duration,
    /// The fallback as configured, for the log.
    fallback_setting: RedisFallback,
    fallback: Fallback,
    health: BackendHealth,
    counters: Counters,
}

/// A rate limiter whose budgets live in Redis, shared by every process
/// that uses the same Redis and key prefix. Cheap to clone; clones share
/// everything.
///
/// A local [`KeyedRateLimiter`](crate::KeyedRateLimiter) gives each
/// replica its own budget, so N replicas allow N times the limit. This limiter keeps each key's state
/// (its theoretical arrival time, one integer) in Redis instead, and
/// decides in one Lua script (`gcra.lua`, the same arithmetic as the local
/// limiter) that reads Redis's own clock, so replicas' clocks never need
/// to agree. The script is sent once and then called by its SHA-1
/// (`EVALSHA`); after a Redis restart or failover empties the script
/// cache, redis-rs loads it again on the `NOSCRIPT` answer.
///
/// A rate limiter must not become the outage: every check has a time
/// budget (default 20 ms), and a check never fails. When Redis errs or is
/// slow, the [`RedisFallback`] decides: by default a local limiter at the
/// limit divided by the number of replicas. While Redis is unavailable,
/// one check at a time still asks it (and finds it back); the others go
/// straight to the fallback, so an outage costs one request at a time the
/// budget, not every request. Each failure is counted
/// ([`stats`](Self::stats), and the
/// `cortex_ratelimiter_backend_*` series with the `metrics` feature); the
/// log says so once when Redis goes away (warn) and once when it is back
/// (info).
///
/// Unlike the local limiter there is no waiting for a permit (`acquire`,
/// `max_wait`): serving waiters in order would take a queue in Redis.
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use cortex_resilience::{ClientIp, DistributedRateLimiter, RedisFallback};
///
/// # #[tokio::main] async fn main() -> Result<(), cortex_resilience::ConfigError> {
/// // 100 requests per second per client, across all three replicas.
/// let per_client = DistributedRateLimiter::builder("api")
///     .redis_url("redis://redis.internal:6379")
///     .permits(100, Duration::from_secs(1))
///     .fallback(RedisFallback::Local { replicas: 3 })
///     .build()?;
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hi" }))
///     .layer(per_client.http_layer(ClientIp::new()));
///
/// // Or by hand, with any key bytes.
/// let decision = per_client.check(b"tenant-42").await;
/// if !decision.allowed {
///     // Refuse the job; it may come back after `decision.retry_after`.
///     let _come_back_in = decision.retry_after;
/// }
/// # Ok(())
/// # }
/// ```
///
/// Without Redis at all, the fallback decides every check:
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::{DistributedRateLimiter, RedisFallback};
///
/// # #[tokio::main] async fn main() -> Result<(), cortex_resilience::ConfigError> {
/// // Nothing listens on port 1 here: every check uses the fallback.
/// let limiter = DistributedRateLimiter::builder("jobs")
///     .redis_url("redis://127.0.0.1:1")
///     .permits(2, Duration::from_secs(60))
///     .fallback(RedisFallback::Local { replicas: 1 })
///     .build()?;
/// assert!(limiter.check(b"worker-1").await.allowed);
/// assert!(limiter.check(b"worker-1").await.allowed);
/// assert!(!limiter.check(b"worker-1").await.allowed);
/// assert!(!limiter.backend_available());
/// assert_eq!(limiter.stats().fallback_decisions_total, 3);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DistributedRateLimiter {
    shared: Arc<Shared>,
}

impl fmt::Debug for DistributedRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &*self.shared;
        f.debug_struct("DistributedRateLimiter")
            .field("name", &shared.name)
            .field("prefix", &String::from_utf8_lossy(&shared.prefix))
            .field("interval_us", &shared.interval_us)
            .field("burst", &shared.burst)
            .field("timeout", &shared.timeout)
            .field("fallback", &shared.fallback_setting)
            .field("backend_available", &self.backend_available())
            .finish_non_exhaustive()
    }
}

impl DistributedRateLimiter {
    fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    /// A builder with the defaults: 50 per second, burst 50, 20 ms per
    /// check, keys under `cortex:rl:<name>:`, a local fallback for one
    /// replica. A Redis URL or connection is required.
    pub fn builder(name: impl Into<Arc<str>>) -> DistributedRateLimiterBuilder {
        DistributedRateLimiterBuilder::new(name.into())
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address of the shared state: the same for every clone.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// Takes one permit for `key` (any bytes; see [`RateLimitKey`] for the
    /// encoding the HTTP layer uses). Never fails: without an answer from
    /// Redis within the time budget, the fallback decides.
    ///
    /// A check that times out may still have taken its permit in Redis:
    /// the script runs whether or not its answer arrives in time.
    pub async fn check(&self, key: &[u8]) -> RateLimitDecision {
        self.check_n(key, 1).await
    }

    /// Takes `cost` permits for `key`; a cost of 0 only looks. A cost
    /// above the burst is never allowed.
    pub async fn check_n(&self, key: &[u8], cost: u32) -> RateLimitDecision {
        let mut redis_key = Vec::with_capacity(self.shared.prefix.len() + key.len());
        redis_key.extend_from_slice(&self.shared.prefix);
        redis_key.extend_from_slice(key);
        self.decide(redis_key, cost).await
    }

    /// Whether the last call to Redis succeeded (true before the first).
    pub fn backend_available(&self) -> bool {
        self.shared.health.available.load(Ordering::Acquire)
    }

    /// This process's counters.
    pub fn stats(&self) -> DistributedRateLimiterStats {
        self.shared
            .counters
            .snapshot(&self.shared.name, self.backend_available())
    }

    /// The Redis key of `key`: the prefix and the key's encoding, or the
    /// overflow key for requests without one.
    fn redis_key<K: RateLimitKey>(&self, key: Option<&K>) -> Vec<u8> {
        let mut redis_key = Vec::with_capacity(self.shared.prefix.len() + 16);
        redis_key.extend_from_slice(&self.shared.prefix);
        match key {
            Some(key) => key.write_key(&mut redis_key),
            None => redis_key.extend_from_slice(OVERFLOW_KEY),
        }
        redis_key
    }

    /// One decision on the full Redis key: from Redis if it answers in
    /// time, else from the fallback.
    async fn decide(&self, redis_key: Vec<u8>, cost: u32) -> RateLimitDecision {
        let shared = &*self.shared;
        let decision = match shared.health.admit() {
            Some(_admission) => match shared.ask_redis(&redis_key, cost).await {
                Ok(decision) => {
                    shared.backend_answered();
                    decision
                }
                Err(error) => {
                    shared.backend_failed(&error);
                    shared.fall_back(&redis_key, cost)
                }
            },
            None => shared.fall_back(&redis_key, cost),
        };
        shared.counters.decided(decision.allowed);
        decision
    }
}

impl Shared {
    /// Runs the script on `redis_key` within the time budget.
    async fn ask_redis(
        &self,
        redis_key: &[u8],
        cost: u32,
    ) -> Result<RateLimitDecision, BackendError> {
        // A clone per call: the manager is an `Arc` over one multiplexed
        // connection, and `invoke_async` wants it mutably.
        let mut connection = self.connection.clone();
        let call = async {
            let reply: (i64, i64, i64, i64) = GCRA
                .key(redis_key)
                .arg(self.interval_us)
                .arg(self.burst)
                .arg(cost)
                .invoke_async(&mut connection)
                .await?;
            Ok(reply)
        };
        let (allowed, remaining, reset_ms, retry_ms) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| BackendError::Timeout(self.timeout))?
            .map_err(BackendError::Redis)?;
        let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        Ok(RateLimitDecision {
            allowed: allowed == 1,
            limit: self.burst,
            // Negative only while another node runs a smaller burst or
            // rate on the same key (a rolling config change).
            remaining: u32::try_from(remaining).unwrap_or(0).min(self.burst),
            reset: millis(reset_ms),
            retry_after: millis(retry_ms),
        })
    }

    fn backend_answered(&self) {
        if !self.health.available.swap(true, Ordering::AcqRel) {
            tracing::info!(
                limiter = %self.name,
                "Redis answers again: rate limits are shared across replicas again"
            );
        }
    }

    fn backend_failed(&self, error: &BackendError) {
        self.counters.failed(error.kind());
        if self.health.available.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                limiter = %self.name,
                %error,
                fallback = %self.fallback_setting,
                "Redis unavailable: rate limit decisions use the fallback until it answers"
            );
        }
    }

    fn fall_back(&self, redis_key: &Vec<u8>, cost: u32) -> RateLimitDecision {
        self.counters.fell_back();
        let interval = Duration::from_micros(self.interval_us);
        match &self.fallback {
            Fallback::Allow => RateLimitDecision {
                allowed: true,
                limit: self.burst,
                remaining: self.burst.saturating_sub(cost),
                reset: Duration::ZERO,
                retry_after: Duration::ZERO,
            },
            Fallback::Deny => RateLimitDecision {
                allowed: false,
                limit: self.burst,
                remaining: 0,
                reset: interval,
                retry_after: interval,
            },
            // Keyed by the whole Redis key: the prefix is the same for
            // every key, and this way no second buffer is needed.
            Fallback::Local(local) => local.check_n(Some(redis_key), cost),
        }
    }
}
