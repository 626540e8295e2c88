//! [`Retry`]: the policy users hold, its builder, and the retry loop.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use super::backoff::{Backoff, Jitter};
use super::budget::{RetryBudget, RetryBudgetConfig};
use super::config::{RetryConfig, RetryEvent, RetryStats};
use super::predicate::{DefaultRetryPredicate, RetryDecision, ShouldRetry};
use crate::clock::{Clock, Stopwatch};
use crate::events::EventHub;
use crate::{ConfigError, ResilienceError};

/// A retry policy. Cheap to clone; clones share counters and the budget.
#[derive(Clone)]
pub struct Retry {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    config: RetryConfig,
    budget: Option<RetryBudget>,
    stopwatch: Stopwatch,
    counters: [AtomicU64; 5],
    events: EventHub<RetryEvent>,
}

const SUCCESS_WITHOUT: usize = 0;
const SUCCESS_WITH: usize = 1;
const FAILED_WITHOUT: usize = 2;
const FAILED_WITH: usize = 3;
const BUDGET_EXHAUSTED: usize = 4;

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.shared.name)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Retry`].
#[derive(Debug)]
#[must_use]
pub struct RetryBuilder {
    name: Arc<str>,
    config: RetryConfig,
    clock: Clock,
}

impl RetryBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: RetryConfig) -> Self {
        self.config = config;
        self
    }

    /// Attempts including the first. Default 3.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts;
        self
    }

    /// The backoff. Default fixed 500 ms.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// The jitter. Default none.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.config.jitter = jitter;
        self
    }

    /// Longest `Retry-After` honoured. Default 60 s.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config.max_retry_after = max;
        self
    }

    /// The budget, or `None` for unlimited retries. Default on.
    pub fn budget(mut self, budget: Option<RetryBudgetConfig>) -> Self {
        self.config.budget = budget;
        self
    }

    /// The clock for the budget. Default [`Clock::system`]; tests with
    /// paused tokio time pass [`Clock::tokio`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Retry, ConfigError> {
        self.config.validate(&self.name)?;
        Ok(Retry {
            shared: Arc::new(Shared {
                name: self.name,
                budget: self.config.budget.as_ref().map(RetryBudget::new),
                config: self.config,
                stopwatch: self.clock.stopwatch(),
                counters: std::array::from_fn(|_| AtomicU64::new(0)),
                events: EventHub::default(),
            }),
        })
    }
}

impl Retry {
    /// A builder with the defaults (3 attempts, 500 ms, budget on).
    pub fn builder(name: impl Into<Arc<str>>) -> RetryBuilder {
        RetryBuilder {
            name: name.into(),
            config: RetryConfig::default(),
            clock: Clock::system(),
        }
    }

    /// A policy from a configuration.
    pub fn from_config(
        name: impl Into<Arc<str>>,
        config: RetryConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// The configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.shared.config
    }

    /// Runs `call`, retrying errors per [`DefaultRetryPredicate`].
    pub async fn execute<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.execute_with(&DefaultRetryPredicate, || async {
            call().await.map_err(ResilienceError::Inner)
        })
        .await
    }

    /// Runs `call`, retrying per `predicate`; policy errors from inside
    /// `call` are seen by the predicate like any other.
    pub async fn execute_with<T, E, P, F, Fut>(
        &self,
        predicate: &P,
        call: F,
    ) -> Result<T, ResilienceError<E>>
    where
        P: ShouldRetry<T, E> + ?Sized,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ResilienceError<E>>>,
    {
        self.shared.deposit();
        self.run_from(predicate, call, 1, Duration::ZERO).await
    }

    /// The retry loop from attempt number `attempt`, the last delay having
    /// been `delay` (the layer runs the first attempt itself).
    pub(crate) async fn run_from<T, E, P, F, Fut>(
        &self,
        predicate: &P,
        call: F,
        mut attempt: u32,
        mut delay: Duration,
    ) -> Result<T, ResilienceError<E>>
    where
        P: ShouldRetry<T, E> + ?Sized,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ResilienceError<E>>>,
    {
        loop {
            let result = call().await;
            match self
                .shared
                .after_attempt(predicate, &result, attempt, delay)
            {
                Some(next) => delay = next,
                None => return result,
            }
            drop(result);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// This policy as a [`Policy`](crate::Policy) deciding with
    /// `predicate`, for composition.
    pub fn when<P>(&self, predicate: P) -> crate::RetryWhen<P> {
        crate::RetryWhen {
            retry: self.clone(),
            predicate,
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> RetryStats {
        let counter = |index: usize| self.shared.counters[index].load(Ordering::Relaxed);
        RetryStats {
            name: self.shared.name.to_string(),
            successful_without_retry: counter(SUCCESS_WITHOUT),
            successful_with_retry: counter(SUCCESS_WITH),
            failed_without_retry: counter(FAILED_WITHOUT),
            failed_with_retry: counter(FAILED_WITH),
            budget_exhausted: counter(BUDGET_EXHAUSTED),
        }
    }

    /// A broadcast receiver of this policy's events.
    pub fn subscribe(&self) -> broadcast::Receiver<RetryEvent> {
        self.shared.events.subscribe()
    }

    /// Calls `callback` for every event.
    pub fn on_event(&self, callback: impl Fn(&RetryEvent) + Send + Sync + 'static) {
        self.shared.events.on_event(callback);
    }

    /// Counts a call towards the budget, as every call (not retry) does.
    #[inline]
    pub(super) fn deposit(&self) {
        self.shared.deposit();
    }

    /// The wait before the attempt after `attempt`, or `None` when
    /// `result` is final (the call is then counted).
    pub(super) fn after_attempt<T, E, P>(
        &self,
        predicate: &P,
        result: &Result<T, ResilienceError<E>>,
        attempt: u32,
        delay: Duration,
    ) -> Option<Duration>
    where
        P: ShouldRetry<T, E> + ?Sized,
    {
        self.shared.after_attempt(predicate, result, attempt, delay)
    }
}

impl Shared {
    /// Decides after attempt number `attempt` (the last delay having been
    /// `delay`): the wait before the next one, or `None` when `result` is
    /// final, in which case the call is counted.
    fn after_attempt<T, E, P>(
        &self,
        predicate: &P,
        result: &Result<T, ResilienceError<E>>,
        attempt: u32,
        delay: Duration,
    ) -> Option<Duration>
    where
        P: ShouldRetry<T, E> + ?Sized,
    {
        let retry_after = match predicate.should_retry(result) {
            RetryDecision::Done => {
                self.finish(attempt, result.is_ok());
                return None;
            }
            RetryDecision::Retry => None,
            RetryDecision::RetryAfter(after) => Some(after),
        };
        let next = self.next_delay(attempt, delay, retry_after);
        if next.is_none() {
            self.finish(attempt, false);
        }
        next
    }

    #[inline]
    fn deposit(&self) {
        if let Some(budget) = &self.budget {
            budget.deposit(self.stopwatch.nanos());
        }
    }

    /// The wait before the attempt after `attempt`, or `None` to stop.
    fn next_delay(
        &self,
        attempt: u32,
        previous: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempt >= self.config.max_attempts {
            return None;
        }
        if retry_after.is_some_and(|after| after > self.config.max_retry_after) {
            return None;
        }
        if let Some(budget) = &self.budget
            && !budget.try_withdraw(self.stopwatch.nanos())
        {
            self.counters[BUDGET_EXHAUSTED].fetch_add(1, Ordering::Relaxed);
            self.events.emit(|| RetryEvent::BudgetExhausted);
            return None;
        }
        let mut delay = self
            .config
            .backoff
            .delay(attempt, previous, self.config.jitter);
        if let Some(after) = retry_after {
            delay = delay.max(after);
        }
        self.events.emit(|| RetryEvent::Retry { attempt, delay });
        Some(delay)
    }

    #[inline]
    fn finish(&self, attempts: u32, ok: bool) {
        let index = match (ok, attempts > 1) {
            (true, false) => SUCCESS_WITHOUT,
            (true, true) => SUCCESS_WITH,
            (false, false) => FAILED_WITHOUT,
            (false, true) => FAILED_WITH,
        };
        self.counters[index].fetch_add(1, Ordering::Relaxed);
        self.events.emit(|| {
            if ok {
                RetryEvent::Success { attempts }
            } else {
                RetryEvent::Error { attempts }
            }
        });
    }
}
