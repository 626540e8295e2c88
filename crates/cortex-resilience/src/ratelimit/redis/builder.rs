//! [`DistributedRateLimiterBuilder`]: the settings of a
//! [`DistributedRateLimiter`], checked once by `build()`.

use std::sync::Arc;
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::stats::Counters;
use super::{BackendHealth, DistributedRateLimiter, Fallback, RedisFallback, Shared};
use crate::ConfigError;
use crate::ratelimit::RateLimiter;

const POLICY: &str = "DistributedRateLimiter";

/// Per-check time budget by default: a Redis round trip on a LAN is well
/// under a millisecond, and a limiter must never be what makes a request
/// slow.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(20);

/// The largest `burst × interval` in µs: Lua numbers are doubles, exact
/// below 2^53, and Redis's clock already takes about 2^51 µs (the year
/// 2026 is 1.8e15 µs after 1970). 2^50 µs is 35 years.
const MAX_SPAN_MICROS: u128 = 1 << 50;

/// Where the limiter's connection comes from.
#[derive(Debug)]
enum Connection {
    Url(String),
    Manager(ConnectionManager),
}

/// Builds a [`DistributedRateLimiter`]; from
/// [`DistributedRateLimiter::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use cortex_resilience::{DistributedRateLimiter, RedisFallback};
///
/// # #[tokio::main] async fn main() -> Result<(), cortex_resilience::ConfigError> {
/// let limiter = DistributedRateLimiter::builder("api")
///     .redis_url("redis://redis.internal:6379")
///     .permits(100, Duration::from_secs(1))
///     .burst(200)
///     .timeout(Duration::from_millis(10))
///     // Four replicas: each allows a quarter while Redis is down.
///     .fallback(RedisFallback::Local { replicas: 4 })
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct DistributedRateLimiterBuilder {
    name: Arc<str>,
    connection: Option<Connection>,
    permits: u32,
    period: Duration,
    burst: Option<u32>,
    timeout: Duration,
    fallback: RedisFallback,
    key_prefix: Option<Vec<u8>>,
}

impl DistributedRateLimiterBuilder {
    pub(super) fn new(name: Arc<str>) -> Self {
        Self {
            name,
            connection: None,
            permits: 50,
            period: Duration::from_secs(1),
            burst: None,
            timeout: DEFAULT_TIMEOUT,
            fallback: RedisFallback::default(),
            key_prefix: None,
        }
    }

    /// The Redis server, as a redis-rs URL (`redis://host:6379/0`,
    /// `rediss://` for TLS if redis-rs is built with it,
    /// `?protocol=resp3` to also notice a dropped connection while idle).
    ///
    /// `build()` then makes a lazy `ConnectionManager`: it connects on the
    /// first check, so a node starts (and falls back) while Redis is down,
    /// and reconnects by itself. Its connect timeout is 250 ms, its
    /// response timeout the check's [`timeout`](Self::timeout), with 2
    /// reconnect retries from 50 ms up to 500 ms apart. `build()` must run
    /// inside a Tokio runtime.
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.connection = Some(Connection::Url(url.into()));
        self
    }

    /// A connection of your own instead of [`redis_url`](Self::redis_url),
    /// e.g. one shared with other users of the same Redis. The limiter
    /// clones it per check (an `Arc`).
    pub fn connection(mut self, connection: ConnectionManager) -> Self {
        self.connection = Some(Connection::Manager(connection));
        self
    }

    /// `permits` per `period`, for all replicas together. Default 50 per
    /// second.
    pub fn permits(mut self, permits: u32, period: Duration) -> Self {
        self.permits = permits;
        self.period = period;
        self
    }

    /// Burst size (`RateLimit-Limit`). Default equal to `permits`.
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// The time budget of one check, Redis round trip included; past it
    /// the fallback decides. Default 20 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What decides while Redis does not answer. Default
    /// [`RedisFallback::Local`] with one replica (this process alone
    /// enforces the whole limit).
    pub fn fallback(mut self, fallback: RedisFallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// The start of every Redis key this limiter writes. Default
    /// `cortex:rl:<name>:`. Limiters that share a prefix (and a key) share
    /// a budget, so give each limit its own.
    pub fn key_prefix(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Validates the settings and builds the limiter. Fails with a
    /// [`ConfigError`] on a zero `permits`, `period`, `burst`, `timeout` or
    /// `replicas`, a burst window too long for Redis's µs arithmetic, a
    /// missing or malformed Redis URL, or (with `redis_url`) when called
    /// outside a Tokio runtime.
    pub fn build(self) -> Result<DistributedRateLimiter, ConfigError> {
        let name = &*self.name;
        let error = |field, reason| Err(ConfigError::new(POLICY, name, field, reason));
        if self.permits == 0 {
            return error("permits", "must be at least 1");
        }
        if self.period.is_zero() {
            return error("period", "must be positive");
        }
        let burst = self.burst.unwrap_or(self.permits);
        if burst == 0 {
            return error("burst", "must be at least 1");
        }
        if self.timeout.is_zero() {
            return error("timeout", "must be positive");
        }
        // Whole µs, at least one: the script's unit (10^6 permits per
        // second per key at most).
        let interval_us = (self.period.as_micros() / u128::from(self.permits)).max(1);
        if interval_us * u128::from(burst) > MAX_SPAN_MICROS {
            return error(
                "period",
                "is too long: burst × period / permits must be under 35 years",
            );
        }
        let interval_us = u64::try_from(interval_us).unwrap_or(u64::MAX);
        let fallback = match self.fallback {
            RedisFallback::Allow => Fallback::Allow,
            RedisFallback::Deny => Fallback::Deny,
            RedisFallback::Local { replicas: 0 } => {
                return error("fallback", "must count at least 1 replica");
            }
            RedisFallback::Local { replicas } => {
                // limit ÷ replicas as a rate without rounding: the same
                // permits over a period `replicas` times as long. The burst
                // rounds down (never looser than the whole fleet's), to 1
                // at least.
                let Some(period) = self.period.checked_mul(replicas) else {
                    return error("period", "is too long to divide among the replicas");
                };
                let local = RateLimiter::builder(Arc::clone(&self.name))
                    .permits(self.permits, period)
                    .burst((burst / replicas).max(1))
                    .build_keyed()?;
                Fallback::Local(local)
            }
        };
        let connection = match self.connection {
            Some(Connection::Manager(manager)) => manager,
            Some(Connection::Url(url)) => {
                // The manager spawns its reconnect task on the current runtime.
                if tokio::runtime::Handle::try_current().is_err() {
                    return error("redis_url", "needs a Tokio runtime: build() inside one");
                }
                let Ok(client) = Client::open(url) else {
                    return error("redis_url", "is not a valid Redis URL");
                };
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(250)))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                let Ok(manager) = client.get_connection_manager_lazy(config) else {
                    return error("redis_url", "cannot be connected to with these settings");
                };
                manager
            }
            None => return error("redis_url", "must be set (or a connection given)"),
        };
        let prefix = self
            .key_prefix
            .unwrap_or_else(|| format!("cortex:rl:{name}:").into_bytes());
        Ok(DistributedRateLimiter::new(Shared {
            name: Arc::clone(&self.name),
            connection,
            prefix: prefix.into(),
            interval_us,
            burst,
            timeout: self.timeout,
            fallback_setting: self.fallback,
            fallback,
            health: BackendHealth::default(),
            counters: Counters::default(),
        }))
    }
}
