//! Rate limiter settings and stats.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gcra::Gcra;
use crate::ConfigError;

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
    pub(super) fn validate(&self, name: &str) -> Result<(), ConfigError> {
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

    pub(super) fn gcra(&self) -> Gcra {
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
