//! Composing policies through the `Policy` trait: every policy runs a call
//! the way its own API does, chains describe and nest outermost first,
//! `Fallback` turns chosen errors into values, and a classified breaker or
//! a retry with its own predicate keep their decider inside a chain.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cortex_resilience::{
    Backoff, Bulkhead, CircuitBreaker, CircuitState, Clock, Fallback, Outcome, Pipeline, Policy,
    PolicyExt, RateLimiter, ResilienceError, Retry, RetryDecision, SlidingWindow, Timeout,
};

fn limiter(permits: u32) -> RateLimiter {
    RateLimiter::builder("api")
        .clock(Clock::tokio())
        .permits(permits, Duration::from_secs(60))
        .build()
        .unwrap()
}

fn timeout(millis: u64) -> Timeout {
    Timeout::builder("slow")
        .timeout_duration(Duration::from_millis(millis))
        .build()
        .unwrap()
}

fn quick_retry(attempts: u32) -> Retry {
    Retry::builder("flaky")
        .max_attempts(attempts)
        .backoff(Backoff::Fixed {
            delay: Duration::from_millis(1),
        })
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_chain_describes_its_policies_outermost_first() {
    let chain = Fallback::new(|error: ResilienceError<()>| Err(error))
        .then(limiter(5))
        .then(Bulkhead::builder("db").build().unwrap())
        .then(quick_retry(2).when(|_: &Result<u8, ResilienceError<()>>| RetryDecision::Done))
        .then(
            CircuitBreaker::builder("db")
                .build()
                .unwrap()
                .classified(|_: &Result<u8, ResilienceError<()>>| Outcome::Success),
        )
        .then(timeout(100));
    assert_eq!(
        Policy::<u8, ()>::describe(&chain),
        "Fallback -> RateLimiter -> Bulkhead -> Retry -> CircuitBreaker -> Timeout"
    );
    assert_eq!(chain.execute(|| async { Ok::<u8, ()>(7) }).await, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn a_rate_limiter_policy_rejects_without_running_the_call_once_its_permits_are_spent() {
    let limiter = limiter(1);
    let calls = AtomicUsize::new(0);
    let call = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>("done")
    };
    let first = PolicyExt::execute(&limiter, call).await;
    assert_eq!(first, Ok("done"));
    let second = PolicyExt::execute(&limiter, call).await;
    assert_eq!(
        second,
        Err(ResilienceError::RateLimited {
            retry_after: Duration::from_secs(60)
        })
    );
    // The inherent `execute` makes the same decision.
    let third = limiter.execute(call).await;
    assert!(matches!(third, Err(ResilienceError::RateLimited { .. })));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(limiter.stats().rejected_total, 2);
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_policy_rejects_while_its_permits_are_held() {
    let bulkhead = Bulkhead::builder("db")
        .max_concurrent_calls(1)
        .build()
        .unwrap();
    let permit = bulkhead.try_acquire().unwrap();
    let policy = Fallback::new(|error: ResilienceError<()>| Err(error)).then(bulkhead.clone());
    let calls = AtomicUsize::new(0);
    let call = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(1)
    };
    assert_eq!(
        policy.execute(call).await,
        Err(ResilienceError::BulkheadFull)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    drop(permit);
    assert_eq!(policy.execute(call).await, Ok(1));
}

#[tokio::test(start_paused = true)]
async fn a_fallback_turns_chosen_errors_into_values_and_passes_the_rest_on() {
    let cached = Fallback::new(|error: ResilienceError<&'static str>| match error {
        ResilienceError::Timeout => Ok("cached"),
        other => Err(other),
    })
    .then(timeout(10));
    let hung = cached
        .execute(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, &str>("fresh")
        })
        .await;
    assert_eq!(hung, Ok("cached"));
    let failed = cached.execute(|| async { Err::<&str, _>("boom") }).await;
    assert_eq!(failed, Err(ResilienceError::Inner("boom")));
    assert_eq!(
        cached.execute(|| async { Ok::<_, &str>("fresh") }).await,
        Ok("fresh")
    );
}

#[tokio::test(start_paused = true)]
async fn a_classified_breaker_in_a_chain_counts_only_what_its_classifier_calls_a_failure() {
    let breaker = CircuitBreaker::builder("catalog")
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 1 })
        .build()
        .unwrap();
    let policy =
        Fallback::new(|error: ResilienceError<&'static str>| Err(error)).then(breaker.classified(
            |result: &Result<(), ResilienceError<&'static str>>| match result {
                Err(ResilienceError::Inner("not found")) | Ok(()) => Outcome::Success,
                Err(_) => Outcome::Failure,
            },
        ));
    let missing = policy.execute(|| async { Err::<(), _>("not found") }).await;
    assert_eq!(missing, Err(ResilienceError::Inner("not found")));
    assert_eq!(breaker.state(), CircuitState::Closed);

    let down = policy.execute(|| async { Err::<(), _>("down") }).await;
    assert_eq!(down, Err(ResilienceError::Inner("down")));
    assert_eq!(breaker.state(), CircuitState::Open);
    let rejected = policy.execute(|| async { Ok::<(), &str>(()) }).await;
    assert!(matches!(rejected, Err(ResilienceError::CircuitOpen { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_plain_breaker_policy_opens_on_inner_errors() {
    let breaker = CircuitBreaker::builder("plain")
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 2 })
        .build()
        .unwrap();
    let policy = Fallback::new(|error: ResilienceError<()>| Err(error)).then(breaker.clone());
    for _ in 0..2 {
        let _ = policy.execute(|| async { Err::<(), ()>(()) }).await;
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn retry_when_retries_only_what_its_predicate_accepts() {
    let retry_on_busy = quick_retry(3).when(
        |result: &Result<(), ResilienceError<&'static str>>| match result {
            Err(ResilienceError::Inner("busy")) => RetryDecision::Retry,
            _ => RetryDecision::Done,
        },
    );
    let calls = AtomicUsize::new(0);
    let busy = retry_on_busy
        .execute(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("busy")
        })
        .await;
    assert_eq!(busy, Err(ResilienceError::Inner("busy")));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "retried up to max_attempts"
    );

    calls.store(0, Ordering::SeqCst);
    let broken = retry_on_busy
        .execute(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("broken")
        })
        .await;
    assert_eq!(broken, Err(ResilienceError::Inner("broken")));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test(start_paused = true)]
async fn a_plain_retry_policy_in_a_chain_retries_inner_errors() {
    let policy = Fallback::new(|error: ResilienceError<()>| Err(error)).then(quick_retry(2));
    let calls = AtomicUsize::new(0);
    let result = policy
        .execute(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(())
            } else {
                Ok(5)
            }
        })
        .await;
    assert_eq!(result, Ok(5));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_is_a_policy_and_rate_limits_before_anything_else() {
    let breaker = CircuitBreaker::builder("orders").build().unwrap();
    let pipeline = Pipeline::builder()
        .rate_limiter(limiter(1))
        .circuit_breaker(breaker.clone())
        .build();
    assert_eq!(pipeline.circuit_breaker().unwrap().name(), "orders");
    let policy = Fallback::new(|error: ResilienceError<()>| match error {
        ResilienceError::RateLimited { .. } => Ok("slow down"),
        other => Err(other),
    })
    .then(pipeline);
    assert_eq!(
        Policy::<&str, ()>::describe(&policy),
        "Fallback -> RateLimiter -> CircuitBreaker"
    );
    assert_eq!(
        policy.execute(|| async { Ok("served") }).await,
        Ok("served")
    );
    assert_eq!(
        policy.execute(|| async { Ok("served") }).await,
        Ok("slow down")
    );
    // The rejected call never reached the breaker.
    assert_eq!(breaker.stats().successful_calls_total, 1);
}
