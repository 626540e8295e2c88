//! The simulated payment provider and the resilience pipeline around it.
//!
//! A declined payment is the provider's *answer*, not its failure: the
//! breaker counts it as a success and the retry does not repeat it, so no
//! client can open the shared `payments` breaker by placing orders that
//! get declined. Only timeouts are provider faults here (the simulation
//! has no others); they are retried and counted against the breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::Instrument as _;

use cortex::resilience::{
    Backoff, CircuitBreaker, Classify, Outcome, Pipeline, PolicyRegistry, RegistryError,
    ResilienceError, Retry, RetryDecision, ShouldRetry, SlidingWindow, Timeout,
};

/// The payment policies' name in the registry.
pub const PAYMENTS: &str = "payments";

/// How long to wait when an open breaker does not say when it will admit
/// a probe (it was forced open).
const UNKNOWN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The simulated provider's refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payment declined")]
pub(super) struct PaymentDeclined;

/// Declines are answers, everything else a provider fault: as the
/// breaker's classifier and as the retry's predicate.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DeclineIsAnAnswer;

impl<T> Classify<T, PaymentDeclined> for DeclineIsAnAnswer {
    fn classify(&self, result: &Result<T, ResilienceError<PaymentDeclined>>) -> Outcome {
        match result {
            Ok(_) | Err(ResilienceError::Inner(PaymentDeclined)) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

impl<T> ShouldRetry<T, PaymentDeclined> for DeclineIsAnAnswer {
    fn should_retry(&self, result: &Result<T, ResilienceError<PaymentDeclined>>) -> RetryDecision {
        match result {
            Err(ResilienceError::Timeout) => RetryDecision::Retry,
            _ => RetryDecision::Done,
        }
    }
}

/// How a charge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Charge {
    /// Paid.
    Paid,
    /// The provider said no: final.
    Declined,
    /// The breaker is open: not charged, try again after `retry_after`.
    BreakerOpen { retry_after: Duration },
    /// The provider failed (after the retries): final.
    Fault(String),
}

/// The simulated payment provider and the policies around it.
#[derive(Debug, Clone)]
pub(super) struct Payments {
    pipeline: Pipeline<DeclineIsAnAnswer, DeclineIsAnAnswer>,
    calls: Arc<AtomicU64>,
}

impl Payments {
    /// Registers the `payments` policies in `policies` and builds the
    /// pipeline over them.
    pub(super) fn register(policies: &PolicyRegistry) -> Result<Self, RegistryError> {
        let breaker = CircuitBreaker::builder(PAYMENTS)
            .sliding_window(SlidingWindow::CountBased { size: 20 })
            .minimum_number_of_calls(10)
            .wait_duration_in_open_state(Duration::from_secs(5))
            .build()?;
        let retry = Retry::builder(PAYMENTS)
            .max_attempts(3)
            .backoff(Backoff::Fixed {
                delay: Duration::from_millis(20),
            })
            .build()?;
        let total = Timeout::builder("payments-total")
            .timeout_duration(Duration::from_secs(2))
            .build()?;
        let attempt = Timeout::builder("payments-attempt")
            .timeout_duration(Duration::from_millis(500))
            .build()?;
        policies.register_circuit_breaker(breaker.clone())?;
        policies.register_retry(retry.clone())?;
        policies.register_timeout(total.clone())?;
        policies.register_timeout(attempt.clone())?;
        let pipeline = Pipeline::builder()
            .timeout(total)
            .retry(retry)
            .circuit_breaker(breaker)
            .attempt_timeout(attempt)
            .build_with(DeclineIsAnAnswer, DeclineIsAnAnswer);
        Ok(Self {
            pipeline,
            calls: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Calls made to the provider so far.
    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Charges for an order through the pipeline: how it ended and how
    /// many calls reached the provider.
    pub(super) async fn charge(&self, decline: bool) -> (Charge, u32) {
        let attempts = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&attempts);
        let calls = Arc::clone(&self.calls);
        // One span for the charge through the `payments` pipeline, one per
        // call that reaches the provider (a retry is a second one).
        let result = self
            .pipeline
            .execute(|| {
                let counter = Arc::clone(&counter);
                let calls = Arc::clone(&calls);
                let attempt = counter.load(Ordering::Relaxed) + 1;
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    calls.fetch_add(1, Ordering::Relaxed);
                    // The provider takes a moment.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if decline {
                        Err(PaymentDeclined)
                    } else {
                        Ok(())
                    }
                }
                .instrument(tracing::info_span!("payments.attempt", attempt))
            })
            .instrument(tracing::info_span!("payments.charge", policy = PAYMENTS))
            .await;
        let attempts = u32::try_from(attempts.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        let charge = match result {
            Ok(()) => Charge::Paid,
            Err(ResilienceError::Inner(PaymentDeclined)) => Charge::Declined,
            Err(ResilienceError::CircuitOpen { retry_after }) => Charge::BreakerOpen {
                retry_after: retry_after.unwrap_or(UNKNOWN_RETRY_AFTER),
            },
            Err(other) => Charge::Fault(other.to_string()),
        };
        (charge, attempts)
    }
}
