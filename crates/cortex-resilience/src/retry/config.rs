//! Retry settings, stats and events.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::backoff::{Backoff, Jitter};
use super::budget::RetryBudgetConfig;
use crate::ConfigError;

/// Retry settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in total, counting the first. 3.
    pub max_attempts: u32,
    /// Delay between attempts. Fixed 500 ms.
    pub backoff: Backoff,
    /// Randomisation of the delay. None.
    pub jitter: Jitter,
    /// Longest `Retry-After` honoured; a longer one ends the retries. 60 s.
    #[serde(with = "crate::duration")]
    pub max_retry_after: Duration,
    /// The retry budget; `None` disables it. On by default (20% over 10 s,
    /// 10 per second minimum).
    pub budget: Option<RetryBudgetConfig>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::default(),
            jitter: Jitter::None,
            max_retry_after: Duration::from_secs(60),
            budget: Some(RetryBudgetConfig::default()),
        }
    }
}

impl RetryConfig {
    /// Checks every field of the policy named `name`; `build()` calls this.
    pub(super) fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let error = |field, reason| Err(ConfigError::new("Retry", name, field, reason));
        if self.max_attempts == 0 {
            return error("max_attempts", "must be at least 1 (the first call)");
        }
        if let Backoff::Exponential {
            initial,
            multiplier,
            max,
        } = self.backoff
        {
            if !(multiplier >= 1.0 && multiplier.is_finite()) {
                return error(
                    "backoff.multiplier",
                    "must be a finite number of at least 1",
                );
            }
            if max < initial {
                return error("backoff.max", "must not be below backoff.initial");
            }
        }
        if let Jitter::Proportional { factor } = self.jitter
            && !(0.0..=1.0).contains(&factor)
        {
            return error("jitter.factor", "must be in [0, 1]");
        }
        if let Some(budget) = &self.budget {
            budget.validate(name)?;
        }
        Ok(())
    }
}

/// A snapshot of a retry policy's counters (resilience4j's four kinds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryStats {
    /// The policy's name.
    pub name: String,
    /// Calls that succeeded on the first attempt.
    pub successful_without_retry: u64,
    /// Calls that succeeded after retrying.
    pub successful_with_retry: u64,
    /// Calls that failed without being retried (not retryable).
    pub failed_without_retry: u64,
    /// Calls that failed after retrying (attempts or budget exhausted).
    pub failed_with_retry: u64,
    /// Retries refused by the budget.
    pub budget_exhausted: u64,
}

/// Something that happened in a retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryEvent {
    /// An attempt failed and another follows after `delay`.
    Retry {
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// The wait before the next one.
        delay: Duration,
    },
    /// The call succeeded (`attempts` includes the first).
    Success {
        /// Attempts made.
        attempts: u32,
    },
    /// The call failed and will not be retried.
    Error {
        /// Attempts made.
        attempts: u32,
    },
    /// The budget refused a retry.
    BudgetExhausted,
}
