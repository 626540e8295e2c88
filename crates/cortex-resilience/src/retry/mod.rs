//! Retry with backoff, jitter, result predicates and a retry budget.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use cortex_resilience::{Backoff, Retry};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let retry = Retry::builder("inventory")
//!     .max_attempts(3)
//!     .backoff(Backoff::Exponential {
//!         initial: Duration::from_millis(100),
//!         multiplier: 2.0,
//!         max: Duration::from_secs(2),
//!     })
//!     .build()
//!     .unwrap();
//! let calls = AtomicU32::new(0);
//! let result = retry
//!     .execute(|| async {
//!         // Fails twice, then succeeds.
//!         if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err("flaky") } else { Ok("stock") }
//!     })
//!     .await;
//! assert_eq!(result, Ok("stock"));
//! assert_eq!(calls.load(Ordering::SeqCst), 3);
//! # }
//! ```
//!
//! Which results are retried is a [`ShouldRetry`]: by default inner errors
//! and timeouts are, policy rejections (an open circuit, a full bulkhead, a
//! rate limit) never are. [`HttpRetryPredicate`] retries 502/503/504 and
//! 429 responses and honours `Retry-After`.

mod backoff;
mod budget;
mod http;
mod layer;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use backoff::{Backoff, Jitter};
pub use budget::RetryBudgetConfig;
pub(crate) use http::{DEFAULT_MAX_REPLAY_BODY, Prepared, prepare, unreadable_body};
pub use http::{HttpRetryLayer, HttpRetryPredicate, HttpRetryService, IdempotentMethods};
pub(crate) use layer::call_ready;
pub use layer::{RetryFuture, RetryLayer, RetryService};

use crate::clock::{Clock, Stopwatch};
use crate::events::EventHub;
use crate::{ConfigError, ResilienceError};
use budget::RetryBudget;

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
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
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

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Return this result.
    Done,
    /// Retry after the backoff delay.
    Retry,
    /// Retry after at least this long (a `Retry-After` header).
    RetryAfter(Duration),
}

impl From<bool> for RetryDecision {
    fn from(retry: bool) -> Self {
        if retry { Self::Retry } else { Self::Done }
    }
}

/// Decides whether a result is retried. Any
/// `Fn(&Result<T, ResilienceError<E>>) -> RetryDecision` is one.
///
/// ```
/// use cortex_resilience::{ResilienceError, RetryDecision, ShouldRetry};
///
/// // Retry 503s from the upstream, never 400s.
/// let should_retry = |result: &Result<u16, ResilienceError<()>>| match result {
///     Ok(503) => RetryDecision::Retry,
///     _ => RetryDecision::Done,
/// };
/// assert_eq!(should_retry.should_retry(&Ok(400)), RetryDecision::Done);
/// ```
pub trait ShouldRetry<T, E>: Send + Sync {
    /// The decision for `result`.
    fn should_retry(&self, result: &Result<T, ResilienceError<E>>) -> RetryDecision;
}

impl<T, E, F> ShouldRetry<T, E> for F
where
    F: Fn(&Result<T, ResilienceError<E>>) -> RetryDecision + Send + Sync,
{
    fn should_retry(&self, result: &Result<T, ResilienceError<E>>) -> RetryDecision {
        self(result)
    }
}

/// Retries inner errors and timeouts; never successes or rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRetryPredicate;

impl<T, E> ShouldRetry<T, E> for DefaultRetryPredicate {
    #[inline]
    fn should_retry(&self, result: &Result<T, ResilienceError<E>>) -> RetryDecision {
        match result {
            Err(ResilienceError::Inner(_) | ResilienceError::Timeout) => RetryDecision::Retry,
            _ => RetryDecision::Done,
        }
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

    /// A tower layer retrying per [`DefaultRetryPredicate`]; requests must
    /// be `Clone`. For HTTP use [`http_layer`](Self::http_layer).
    pub fn layer(&self) -> RetryLayer<DefaultRetryPredicate> {
        RetryLayer::new(self.clone(), DefaultRetryPredicate)
    }

    /// A tower layer for HTTP: retries idempotent requests whose body can
    /// be replayed, on 502/503/504/429 and errors, honouring `Retry-After`.
    pub fn http_layer(&self) -> HttpRetryLayer {
        HttpRetryLayer::new(self.clone())
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
