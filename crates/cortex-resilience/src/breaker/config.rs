//! Circuit breaker configuration, state names, statistics and events.

use std::fmt;
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

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls flow; outcomes are recorded.
    Closed,
    /// Calls are rejected until the wait duration passes.
    Open,
    /// A limited number of probe calls decide between closed and open.
    HalfOpen,
    /// Calls flow, nothing is recorded, the state never changes.
    Disabled,
    /// Every call is rejected until a manual transition.
    ForcedOpen,
    /// Calls flow and are recorded, events fire, the state never changes.
    MetricsOnly,
}

impl CircuitState {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const ALL: [Self; 6] = [
        Self::Closed,
        Self::Open,
        Self::HalfOpen,
        Self::Disabled,
        Self::ForcedOpen,
        Self::MetricsOnly,
    ];

    /// The resilience4j name in snake case (`half_open`...), as used in
    /// metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::Disabled => "disabled",
            Self::ForcedOpen => "forced_open",
            Self::MetricsOnly => "metrics_only",
        }
    }

    pub(crate) fn to_bits(self) -> u64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
            Self::Disabled => 3,
            Self::ForcedOpen => 4,
            Self::MetricsOnly => 5,
        }
    }

    pub(crate) fn from_bits(bits: u64) -> Self {
        match bits & 0b111 {
            0 => Self::Closed,
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::Disabled,
            4 => Self::ForcedOpen,
            _ => Self::MetricsOnly,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of a breaker, from [`CircuitBreaker::stats`](crate::CircuitBreaker::stats).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitBreakerStats {
    /// The breaker's name.
    pub name: String,
    /// Current state.
    pub state: CircuitState,
    /// Failure percentage of the window, or `None` below the minimum
    /// number of calls (resilience4j reports -1).
    pub failure_rate: Option<f64>,
    /// Slow-call percentage of the window, or `None` below the minimum.
    pub slow_call_rate: Option<f64>,
    /// Calls in the window.
    pub buffered_calls: u64,
    /// Failed calls in the window.
    pub failed_calls: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Rejected calls since creation.
    pub not_permitted_calls: u64,
    /// Successful calls since creation (not slow).
    pub successful_calls_total: u64,
    /// Failed calls since creation (not slow).
    pub failed_calls_total: u64,
    /// Slow successful calls since creation.
    pub slow_successful_calls_total: u64,
    /// Slow failed calls since creation.
    pub slow_failed_calls_total: u64,
    /// Ignored calls since creation.
    pub ignored_calls_total: u64,
}

/// Something that happened to a breaker. Subscribe with
/// [`CircuitBreaker::subscribe`](crate::CircuitBreaker::subscribe) or
/// [`CircuitBreaker::on_event`](crate::CircuitBreaker::on_event).
#[derive(Debug, Clone, PartialEq)]
pub enum CircuitBreakerEvent {
    /// A call succeeded.
    Success {
        /// How long it took.
        elapsed: Duration,
    },
    /// A call failed.
    Error {
        /// How long it took.
        elapsed: Duration,
    },
    /// A call's failure was classified as ignored.
    IgnoredError {
        /// How long it took.
        elapsed: Duration,
    },
    /// A call was rejected.
    CallNotPermitted,
    /// The state changed.
    StateTransition {
        /// The state left.
        from: CircuitState,
        /// The state entered.
        to: CircuitState,
    },
    /// The failure rate reached the threshold.
    FailureRateExceeded {
        /// The failure percentage.
        failure_rate: f64,
    },
    /// The slow-call rate reached the threshold.
    SlowCallRateExceeded {
        /// The slow-call percentage.
        slow_call_rate: f64,
    },
    /// The breaker was reset.
    Reset,
}
