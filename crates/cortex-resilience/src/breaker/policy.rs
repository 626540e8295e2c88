//! [`CircuitBreaker`]: the policy users hold, and its plain async API.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::builder::CircuitBreakerBuilder;
use super::config::CircuitBreakerConfig;
use super::machine::Shared;
use super::permit::CallPermit;
use super::state::CircuitState;
use super::stats::{CircuitBreakerEvent, CircuitBreakerStats};
use crate::clock::Clock;
use crate::{CircuitOpen, Classify, ConfigError, DefaultClassifier, ResilienceError};

/// A circuit breaker. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct CircuitBreaker {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A builder with resilience4j's defaults.
    pub fn builder(name: impl Into<Arc<str>>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            name: name.into(),
            config: CircuitBreakerConfig::default(),
            open_wait: None,
            clock: Clock::system(),
        }
    }

    /// A breaker from a configuration.
    pub fn from_config(
        name: impl Into<Arc<str>>,
        config: CircuitBreakerConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.shared.config
    }

    /// The current state (an open breaker whose wait has passed still
    /// reports `Open` until the next call moves it to half-open).
    pub fn state(&self) -> CircuitState {
        self.shared.state()
    }

    /// Runs `call` if the breaker admits it, classifying `Ok` as success
    /// and `Err` as failure.
    pub async fn execute<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.execute_with(&DefaultClassifier, || async {
            call().await.map_err(ResilienceError::Inner)
        })
        .await
    }

    /// Runs `call` if the breaker admits it, classifying its result with
    /// `classifier`. Policy errors from inside `call` (a timeout, say) are
    /// classified like any other.
    pub async fn execute_with<T, E, C, F, Fut>(
        &self,
        classifier: &C,
        call: F,
    ) -> Result<T, ResilienceError<E>>
    where
        C: Classify<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ResilienceError<E>>>,
    {
        let permit = self.shared.acquire_borrowed()?;
        let result = call().await;
        permit.record(classifier.classify(&result));
        result
    }

    /// Asks for permission to make one call, for callers that cannot wrap
    /// the call in a closure. Report the outcome on the returned permit.
    pub fn try_acquire_permission(&self) -> Result<CallPermit, CircuitOpen> {
        Ok(CallPermit {
            permit: self.shared.acquire_owned()?,
        })
    }

    /// The state every clone shares, for the layer's services.
    #[inline]
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This breaker as a [`Policy`](crate::Policy) classifying results
    /// with `classifier`, for composition.
    pub fn classified<C>(&self, classifier: C) -> crate::ClassifiedBreaker<C> {
        crate::ClassifiedBreaker {
            breaker: self.clone(),
            classifier,
        }
    }

    /// A snapshot of the state and the window.
    pub fn stats(&self) -> CircuitBreakerStats {
        self.shared.stats()
    }

    /// A broadcast receiver of this breaker's events.
    pub fn subscribe(&self) -> broadcast::Receiver<CircuitBreakerEvent> {
        self.shared.events.subscribe()
    }

    /// Calls `callback` for every event, on the thread that caused it.
    /// Keep it short: it runs inside the protected call's path.
    pub fn on_event(&self, callback: impl Fn(&CircuitBreakerEvent) + Send + Sync + 'static) {
        self.shared.events.on_event(callback);
    }

    /// Forces the closed state (with an empty window).
    pub fn transition_to_closed(&self) {
        self.shared.force(CircuitState::Closed);
    }

    /// Forces the open state (for the configured wait).
    pub fn transition_to_open(&self) {
        self.shared.force(CircuitState::Open);
    }

    /// Forces the half-open state.
    pub fn transition_to_half_open(&self) {
        self.shared.force(CircuitState::HalfOpen);
    }

    /// Disables the breaker: everything passes, nothing is recorded.
    pub fn transition_to_disabled(&self) {
        self.shared.force(CircuitState::Disabled);
    }

    /// Rejects everything until another manual transition.
    pub fn transition_to_forced_open(&self) {
        self.shared.force(CircuitState::ForcedOpen);
    }

    /// Records and reports, but never changes state on its own.
    pub fn transition_to_metrics_only(&self) {
        self.shared.force(CircuitState::MetricsOnly);
    }

    /// Back to closed with an empty window and the open backoff restarted.
    pub fn reset(&self) {
        self.shared.reset();
    }
}
