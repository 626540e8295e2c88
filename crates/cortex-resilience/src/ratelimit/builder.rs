//! [`RateLimiterBuilder`]: one builder for the global and the keyed
//! limiter.

use std::sync::Arc;
use std::time::Duration;

use super::config::RateLimiterConfig;
use super::keyed::KeyedRateLimiter;
use super::policy::RateLimiter;
use super::state::Shared;
use crate::ConfigError;
use crate::clock::Clock;

/// Builds a [`RateLimiter`] or a [`KeyedRateLimiter`].
#[derive(Debug)]
#[must_use]
pub struct RateLimiterBuilder {
    pub(super) name: Arc<str>,
    pub(super) config: RateLimiterConfig,
    pub(super) clock: Clock,
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
        Ok(Shared::new(self.name, self.config, &self.clock))
    }

    /// Validates and builds a global limiter.
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        Ok(RateLimiter::new(Arc::new(self.shared()?)))
    }

    /// Validates and builds a limiter with one budget per key.
    pub fn build_keyed<K>(self) -> Result<KeyedRateLimiter<K>, ConfigError>
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    {
        Ok(KeyedRateLimiter::new(self.shared()?))
    }
}
