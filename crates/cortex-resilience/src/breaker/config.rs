//! Circuit breaker configuration: [`CircuitBreakerConfig`] and its
//! [`SlidingWindow`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// How the breaker remembers recent calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SlidingWindow {
    /// The last `size` calls (resilience4j `COUNT_BASED`). Default, 100.
    CountBased {
        /// Number of calls remembered.
        size: u32,
    },
    /// The calls of the last `seconds` seconds, in one-second buckets
    /// (resilience4j `TIME_BASED`).
    TimeBased {
        /// Window length in seconds.
        seconds: u32,
    },
    /// Opens after `threshold` failures in a row; any success resets the
    /// count. Rates and the minimum number of calls do not apply.
    ConsecutiveFailures {
        /// Failures in a row that open the breaker.
        threshold: u32,
    },
}

impl Default for SlidingWindow {
    fn default() -> Self {
        Self::CountBased { size: 100 }
    }
}

/// Circuit breaker settings, with resilience4j's defaults. Loadable from a
/// config file with serde (durations as `"60s"`, `"250ms"` or milliseconds).
///
/// ```
/// use cortex_resilience::CircuitBreakerConfig;
///
/// let config: CircuitBreakerConfig = serde_json::from_str(r#"{
///     "failure_rate_threshold": 25.0,
///     "sliding_window": { "type": "time_based", "seconds": 10 },
///     "wait_duration_in_open_state": "30s"
/// }"#).unwrap();
/// assert_eq!(config.minimum_number_of_calls, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Failure percentage (0, 100] at or above which the breaker opens. 50.
    pub failure_rate_threshold: f64,
    /// Slow-call percentage (0, 100] at or above which the breaker opens. 100.
    pub slow_call_rate_threshold: f64,
    /// Calls lasting at least this long are slow. 60 s.
    #[serde(with = "crate::duration")]
    pub slow_call_duration_threshold: Duration,
    /// Calls the window must hold before rates are evaluated (capped at a
    /// count-based window's size). 100.
    pub minimum_number_of_calls: u32,
    /// The window. Count-based, 100 calls.
    pub sliding_window: SlidingWindow,
    /// How long the breaker stays open before admitting probes. 60 s.
    #[serde(with = "crate::duration")]
    pub wait_duration_in_open_state: Duration,
    /// Probe calls admitted in half-open; their outcome decides. 10.
    pub permitted_number_of_calls_in_half_open_state: u32,
    /// Longest stay in half-open before re-opening; zero waits forever
    /// for the probes to finish. 0.
    #[serde(with = "crate::duration")]
    pub max_wait_duration_in_half_open_state: Duration,
    /// Move from open to half-open on a timer rather than on the first
    /// call after the wait. false.
    pub automatic_transition_from_open_to_half_open: bool,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Duration::from_secs(60),
            minimum_number_of_calls: 100,
            sliding_window: SlidingWindow::default(),
            wait_duration_in_open_state: Duration::from_secs(60),
            permitted_number_of_calls_in_half_open_state: 10,
            max_wait_duration_in_half_open_state: Duration::ZERO,
            automatic_transition_from_open_to_half_open: false,
        }
    }
}

impl CircuitBreakerConfig {
    /// Checks every field of the breaker named `name`; `build()` calls this.
    pub(crate) fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let error = |field, reason| Err(ConfigError::new("CircuitBreaker", name, field, reason));
        let percentage = |value: f64| value > 0.0 && value <= 100.0;
        if !percentage(self.failure_rate_threshold) {
            return error("failure_rate_threshold", "must be in (0, 100]");
        }
        if !percentage(self.slow_call_rate_threshold) {
            return error("slow_call_rate_threshold", "must be in (0, 100]");
        }
        if self.minimum_number_of_calls == 0 {
            return error("minimum_number_of_calls", "must be at least 1");
        }
        if self.permitted_number_of_calls_in_half_open_state == 0 {
            return error(
                "permitted_number_of_calls_in_half_open_state",
                "must be at least 1",
            );
        }
        match self.sliding_window {
            SlidingWindow::CountBased { size: 0 } => {
                return error("sliding_window.size", "must be at least 1");
            }
            SlidingWindow::CountBased { size } if size > 1 << 24 => {
                return error("sliding_window.size", "must be at most 16777216");
            }
            SlidingWindow::TimeBased { seconds: 0 } => {
                return error("sliding_window.seconds", "must be at least 1");
            }
            SlidingWindow::TimeBased { seconds } if seconds > 3600 => {
                return error("sliding_window.seconds", "must be at most 3600");
            }
            SlidingWindow::ConsecutiveFailures { threshold: 0 } => {
                return error("sliding_window.threshold", "must be at least 1");
            }
            _ => {}
        }
        Ok(())
    }
}
