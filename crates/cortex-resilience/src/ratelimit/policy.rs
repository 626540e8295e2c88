//! [`RateLimiter`]: the global limiter users hold, and its plain async
//! API.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::builder::RateLimiterBuilder;
use super::config::{RateLimiterConfig, RateLimiterStats};
use super::gcra::RateLimitDecision;
use super::state::Shared;
use crate::clock::Clock;
use crate::{ConfigError, RateLimited, ResilienceError};

/// A global rate limiter. Cheap to clone; clones share the budget.
#[derive(Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.shared.name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub(super) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

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
}
