//! Timeout settings and stats.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Timeout settings, with resilience4j's default.
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::TimeoutConfig;
///
/// let config: TimeoutConfig = serde_json::from_str(r#"{ "timeout_duration": "250ms" }"#).unwrap();
/// assert_eq!(config.timeout_duration, Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutConfig {
    /// The limit per call; must be positive. 1 s.
    #[serde(with = "crate::duration")]
    pub timeout_duration: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            timeout_duration: Duration::from_secs(1),
        }
    }
}

impl TimeoutConfig {
    /// Checks every field of the timeout named `name`; `build()` calls this.
    pub(super) fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.timeout_duration.is_zero() {
            return Err(ConfigError::new(
                "Timeout",
                name,
                "timeout_duration",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// A snapshot of a [`Timeout`](super::Timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeoutStats {
    /// The timeout's name.
    pub name: String,
    /// The limit (as `"250ms"`, `"2s"`... in JSON, like the config).
    #[serde(serialize_with = "crate::duration::serialize")]
    pub timeout_duration: Duration,
    /// Calls cancelled at the limit since creation.
    pub timed_out_calls_total: u64,
}
