//! [`CircuitBreakerBuilder`]: every setting, with resilience4j's defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::config::{CircuitBreakerConfig, SlidingWindow};
use super::machine::Shared;
use super::policy::CircuitBreaker;
use crate::ConfigError;
use crate::clock::Clock;

/// Computes the open-state wait from the number of consecutive openings
/// (1 for the first), e.g. for exponential backoff.
pub type OpenWaitFn = Arc<dyn Fn(u32) -> Duration + Send + Sync>;

/// Builds a [`CircuitBreaker`]; every setter documents its default.
#[must_use]
pub struct CircuitBreakerBuilder {
    pub(super) name: Arc<str>,
    pub(super) config: CircuitBreakerConfig,
    pub(super) open_wait: Option<OpenWaitFn>,
    pub(super) clock: Clock,
}

impl fmt::Debug for CircuitBreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerBuilder {
    /// Replaces the whole configuration (e.g. one loaded with serde).
    pub fn config(mut self, config: CircuitBreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// Failure percentage that opens the breaker. Default 50.
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Slow-call percentage that opens the breaker. Default 100.
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// Calls at least this long are slow. Default 60 s.
    pub fn slow_call_duration_threshold(mut self, threshold: Duration) -> Self {
        self.config.slow_call_duration_threshold = threshold;
        self
    }

    /// Calls needed before rates count. Default 100.
    pub fn minimum_number_of_calls(mut self, calls: u32) -> Self {
        self.config.minimum_number_of_calls = calls;
        self
    }

    /// The sliding window. Default count-based, 100 calls.
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.sliding_window = window;
        self
    }

    /// Fixed wait in the open state. Default 60 s.
    pub fn wait_duration_in_open_state(mut self, wait: Duration) -> Self {
        self.config.wait_duration_in_open_state = wait;
        self.open_wait = None;
        self
    }

    /// A wait computed from the number of consecutive openings (1, 2, ...),
    /// reset when the breaker closes; overrides the fixed wait.
    pub fn wait_duration_in_open_state_fn(
        mut self,
        wait: impl Fn(u32) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.open_wait = Some(Arc::new(wait));
        self
    }

    /// Probe calls in half-open. Default 10.
    pub fn permitted_number_of_calls_in_half_open_state(mut self, calls: u32) -> Self {
        self.config.permitted_number_of_calls_in_half_open_state = calls;
        self
    }

    /// Longest stay in half-open; zero means no limit. Default 0.
    pub fn max_wait_duration_in_half_open_state(mut self, wait: Duration) -> Self {
        self.config.max_wait_duration_in_half_open_state = wait;
        self
    }

    /// Leave the open state on a timer. Default false. Needs a tokio
    /// runtime when the breaker opens; without one the transition happens
    /// on the next call, as when this is off.
    pub fn automatic_transition_from_open_to_half_open(mut self, automatic: bool) -> Self {
        self.config.automatic_transition_from_open_to_half_open = automatic;
        self
    }

    /// The clock. Default [`Clock::system`]; tests with paused tokio time
    /// pass [`Clock::tokio`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration and builds the breaker.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        self.config.validate(&self.name)?;
        Ok(CircuitBreaker {
            shared: Shared::new(self.name, self.config, self.open_wait, &self.clock),
        })
    }
}
