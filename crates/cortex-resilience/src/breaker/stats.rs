//! What a breaker reports: [`CircuitBreakerStats`] snapshots and
//! [`CircuitBreakerEvent`]s.

use std::time::Duration;

use serde::Serialize;

use super::state::CircuitState;

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
