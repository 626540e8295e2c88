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

mod gcra;
mod http;
mod keyed;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_layer::Layer;
use tower_service::Service;

pub use gcra::RateLimitDecision;
pub use http::{RateLimitLayer, RateLimitService};
pub use keyed::{ClientIp, GlobalKey, HeaderKey, KeyExtractor, KeyedRateLimiter, RouteKey};

use crate::clock::{Clock, Stopwatch, duration_nanos};
use crate::{ConfigError, RateLimited, ResilienceError};
use gcra::Gcra;

/// Rate limiter settings: `permits` per `period`, bursting to `burst`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimiterConfig {
    /// Permits per period. 50 (resilience4j's `limitForPeriod`).
    pub permits: u32,
    /// The period. 1 s.
    #[serde(with = "crate::duration")]
    pub period: Duration,
    /// Permits available at once after idling; `None` = `permits`.
    pub burst: Option<u32>,
    /// Longest a call waits for a permit before it is rejected; zero
    /// rejects at once. 0.
    #[serde(with = "crate::duration")]
    pub max_wait: Duration,
    /// For keyed limiters: most keys tracked at once. 100 000.
    pub max_keys: usize,
}

impl Default for RateLimiterConfig {
    fn default() -> Self {
        Self {
            permits: 50,
            period: Duration::from_secs(1),
            burst: None,
            max_wait: Duration::ZERO,
            max_keys: 100_000,
        }
    }
}

impl RateLimiterConfig {
    /// Checks every field of the limiter named `name`; `build()` calls this.
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let error = |field, reason| Err(ConfigError::new("RateLimiter", name, field, reason));
        if self.permits == 0 {
            return error("permits", "must be at least 1");
        }
        if self.period.is_zero() {
            return error("period", "must be positive");
        }
        if self.burst == Some(0) {
            return error("burst", "must be at least 1");
        }
        if self.max_keys == 0 {
            return error("max_keys", "must be at least 1");
        }
        Ok(())
    }

    fn gcra(&self) -> Gcra {
        Gcra::new(
            self.permits,
            self.period,
            self.burst.unwrap_or(self.permits),
        )
    }
}

/// A snapshot of a rate limiter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimiterStats {
    /// The limiter's name.
    pub name: String,
    /// Permits available right now (global limiter; for a keyed limiter,
    /// those of the shared overflow bucket).
    pub available_permissions: u32,
    /// Requests allowed since creation.
    pub permitted_total: u64,
    /// Requests rejected since creation.
    pub rejected_total: u64,
    /// Keys tracked (keyed limiters; 0 for the global one).
    pub keys: u64,
}

/// A global rate limiter. Cheap to clone; clones share the budget.
#[derive(Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    name: Arc<str>,
    config: RateLimiterConfig,
    gcra: Gcra,
    stopwatch: Stopwatch,
    tat: AtomicU64,
    permitted: AtomicU64,
    rejected: AtomicU64,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.shared.name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RateLimiter`] or a [`KeyedRateLimiter`].
#[derive(Debug)]
#[must_use]
pub struct RateLimiterBuilder {
    name: Arc<str>,
    config: RateLimiterConfig,
    clock: Clock,
}

impl RateLimiterBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: RateLimiterConfig) -> Self {
        self.config = config;
        self
    }

    /// `permits` per `period`. Default 50 per second.
    pub fn permits(mut self, permits: u32, period: Duration) -> Self {
        self.config.permits = permits;
        self.config.period = period;
        self
    }

    /// Burst size. Default equal to `permits`.
    pub fn burst(mut self, burst: u32) -> Self {
        self.config.burst = Some(burst);
        self
    }

    /// Longest wait for a permit. Default zero (reject at once).
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.config.max_wait = wait;
        self
    }

    /// Most keys a keyed limiter tracks. Default 100 000.
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.config.max_keys = keys;
        self
    }

    /// The clock. Default [`Clock::system`]; tests with paused tokio time
    /// pass [`Clock::tokio`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn shared(self) -> Result<Shared, ConfigError> {
        self.config.validate(&self.name)?;
        Ok(Shared {
            name: self.name,
            gcra: self.config.gcra(),
            config: self.config,
            stopwatch: self.clock.stopwatch(),
            tat: AtomicU64::new(0),
            permitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        })
    }

    /// Validates and builds a global limiter.
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        Ok(RateLimiter {
            shared: Arc::new(self.shared()?),
        })
    }

    /// Validates and builds a limiter with one budget per key.
    pub fn build_keyed<K>(self) -> Result<KeyedRateLimiter<K>, ConfigError>
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    {
        Ok(KeyedRateLimiter::new(self.shared()?))
    }
}

impl RateLimiter {
    /// A builder with the defaults (50 per second).
    pub fn builder(name: impl Into<Arc<str>>) -> RateLimiterBuilder {
        RateLimiterBuilder {
            name: name.into(),
            config: RateLimiterConfig::default(),
            clock: Clock::system(),
        }
    }

    /// A limiter from a configuration.
    pub fn from_config(
        name: impl Into<Arc<str>>,
        config: RateLimiterConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// Takes one permit if available, without waiting.
    #[inline]
    pub fn check(&self) -> RateLimitDecision {
        self.shared.check_state(&self.shared.tat, 1)
    }

    /// Takes one permit if available, without waiting, and without the
    /// header arithmetic of [`check`](Self::check): the [`RateLimited`]
    /// error says how long until a permit would be available. The fastest
    /// way to ask.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cortex_resilience::RateLimiter;
    ///
    /// let limiter = RateLimiter::builder("jobs")
    ///     .permits(1, Duration::from_secs(60))
    ///     .build()
    ///     .unwrap();
    /// assert!(limiter.try_acquire().is_ok());
    /// let rejected = limiter.try_acquire().unwrap_err();
    /// assert!(rejected.retry_after > Duration::from_secs(59));
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<(), RateLimited> {
        self.shared.try_acquire(&self.shared.tat)
    }

    /// Takes `weight` permits if available, without waiting.
    pub fn check_n(&self, weight: u32) -> RateLimitDecision {
        self.shared.check_state(&self.shared.tat, weight)
    }

    /// Takes a permit, waiting up to `max_wait` for one.
    pub async fn acquire(&self) -> Result<(), RateLimited> {
        self.shared.acquire(&self.shared.tat).await
    }

    /// Runs `call` once a permit is available.
    pub async fn execute<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.acquire().await?;
        call().await.map_err(ResilienceError::Inner)
    }

    /// Counters and the current headroom.
    pub fn stats(&self) -> RateLimiterStats {
        self.shared.stats(&self.shared.tat, 0)
    }

    /// A tower layer rejecting over-limit calls with
    /// [`ResilienceError::RateLimited`] (no waiting in the layer). For
    /// HTTP with 429 responses and headers, see [`RateLimitLayer`].
    pub fn layer(&self) -> RateLimiterLayer {
        RateLimiterLayer {
            limiter: self.clone(),
        }
    }

    /// An HTTP layer with one budget for everybody: 429 with
    /// `Retry-After` and `RateLimit-*` headers.
    pub fn http_layer(&self) -> RateLimitLayer<GlobalKey> {
        RateLimitLayer::global(self.clone())
    }
}

/// The outcome of one GCRA step: the state and time it was decided at.
enum Step {
    Allowed { tat: u64, now: u64 },
    Denied { tat: u64, now: u64, wait: u64 },
}

impl Shared {
    #[inline]
    fn now(&self) -> u64 {
        self.stopwatch.nanos()
    }

    /// One GCRA step on `state`, with header numbers.
    #[inline]
    fn check_state(&self, state: &AtomicU64, weight: u32) -> RateLimitDecision {
        match self.step(state, weight) {
            Step::Allowed { tat, now } => self.gcra.decision(tat, now, true, 0),
            Step::Denied { tat, now, wait } => self.gcra.decision(tat, now, false, wait),
        }
    }

    /// One GCRA step for a single permit, reporting only the verdict.
    #[inline]
    fn try_acquire(&self, state: &AtomicU64) -> Result<(), RateLimited> {
        match self.step(state, 1) {
            Step::Allowed { .. } => Ok(()),
            Step::Denied { wait, .. } => Err(RateLimited {
                retry_after: Duration::from_nanos(wait),
            }),
        }
    }

    /// Takes `weight` permits by compare-and-swap, or counts a rejection.
    #[inline]
    fn step(&self, state: &AtomicU64, weight: u32) -> Step {
        let now = self.now();
        let mut tat = state.load(Ordering::Acquire);
        loop {
            match self.gcra.check(tat, now, weight) {
                Ok(new_tat) => match state.compare_exchange_weak(
                    tat,
                    new_tat,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.permitted.fetch_add(1, Ordering::Relaxed);
                        return Step::Allowed { tat: new_tat, now };
                    }
                    Err(current) => tat = current,
                },
                Err(wait) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Step::Denied { tat, now, wait };
                }
            }
        }
    }

    /// Takes a permit, reserving one up to `max_wait` ahead and sleeping
    /// until it is due, so waiting callers are served in order.
    async fn acquire(&self, state: &AtomicU64) -> Result<(), RateLimited> {
        let max_wait = duration_nanos(self.config.max_wait);
        let now = self.now();
        let mut tat = state.load(Ordering::Acquire);
        loop {
            let (new_tat, wait) = match self.gcra.check(tat, now, 1) {
                Ok(new_tat) => (new_tat, 0),
                Err(wait) if wait <= max_wait => (tat.max(now) + self.gcra.interval(), wait),
                Err(wait) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(RateLimited {
                        retry_after: Duration::from_nanos(wait),
                    });
                }
            };
            match state.compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.permitted.fetch_add(1, Ordering::Relaxed);
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_nanos(wait)).await;
                    }
                    return Ok(());
                }
                Err(current) => tat = current,
            }
        }
    }

    fn stats(&self, state: &AtomicU64, keys: u64) -> RateLimiterStats {
        let decision = self
            .gcra
            .decision(state.load(Ordering::Acquire), self.now(), true, 0);
        RateLimiterStats {
            name: self.name.to_string(),
            available_permissions: decision.remaining,
            permitted_total: self.permitted.load(Ordering::Relaxed),
            rejected_total: self.rejected.load(Ordering::Relaxed),
            keys,
        }
    }
}

/// Applies a global [`RateLimiter`] to services.
#[derive(Debug, Clone)]
pub struct RateLimiterLayer {
    limiter: RateLimiter,
}

impl<S> Layer<S> for RateLimiterLayer {
    type Service = RateLimiterService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimiterService {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// A service limited by a [`RateLimiter`]; over-limit calls fail with
/// [`ResilienceError::RateLimited`] from `call`.
#[derive(Debug, Clone)]
pub struct RateLimiterService<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S, Req> Service<Req> for RateLimiterService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = crate::future::RejectableFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.limiter.try_acquire() {
            Ok(()) => crate::future::RejectableFuture::inner(self.inner.call(request)),
            Err(rejected) => crate::future::RejectableFuture::rejected(rejected.into()),
        }
    }
}
