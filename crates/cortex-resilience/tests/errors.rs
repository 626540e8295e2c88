//! `ResilienceError`'s helpers: telling rejections from failures, getting
//! the inner error back, mapping it, and chaining it as a `source`.

use std::error::Error;
use std::io;
use std::time::Duration;

use cortex_resilience::ResilienceError;

fn every_policy_error<E>() -> [ResilienceError<E>; 4] {
    [
        ResilienceError::CircuitOpen {
            retry_after: Some(Duration::from_secs(3)),
        },
        ResilienceError::BulkheadFull,
        ResilienceError::RateLimited {
            retry_after: Duration::from_millis(1500),
        },
        ResilienceError::Timeout,
    ]
}

#[test]
fn only_errors_raised_before_the_call_ran_are_rejections() {
    let rejections: Vec<bool> = every_policy_error::<()>()
        .iter()
        .map(ResilienceError::is_rejection)
        .collect();
    // A timeout cancelled a call that ran, so it is not a rejection.
    assert_eq!(rejections, [true, true, true, false]);
    assert!(!ResilienceError::Inner(()).is_rejection());
}

#[test]
fn into_inner_gives_back_only_the_inner_error() {
    assert_eq!(
        ResilienceError::Inner("db down").into_inner(),
        Some("db down")
    );
    for error in every_policy_error::<&str>() {
        assert_eq!(error.clone().into_inner(), None, "{error:?}");
    }
}

#[test]
fn map_inner_converts_the_inner_error_and_keeps_policy_errors_as_they_are() {
    let mapped = ResilienceError::Inner(404_u16).map_inner(|status| format!("status {status}"));
    assert_eq!(mapped, ResilienceError::Inner("status 404".to_owned()));
    for error in every_policy_error::<u16>() {
        let mapped: ResilienceError<String> = error.clone().map_inner(|_| unreachable!());
        let expected = match error {
            ResilienceError::CircuitOpen { retry_after } => {
                ResilienceError::CircuitOpen { retry_after }
            }
            ResilienceError::BulkheadFull => ResilienceError::BulkheadFull,
            ResilienceError::RateLimited { retry_after } => {
                ResilienceError::RateLimited { retry_after }
            }
            ResilienceError::Timeout => ResilienceError::Timeout,
            ResilienceError::Inner(_) => unreachable!(),
        };
        assert_eq!(mapped, expected);
    }
}

#[test]
fn an_inner_error_displays_as_itself_and_is_the_source() {
    let inner = ResilienceError::Inner(io::Error::other("connection reset"));
    assert_eq!(inner.to_string(), "connection reset");
    let source = inner.source().expect("the inner error is the source");
    assert_eq!(source.to_string(), "connection reset");

    let messages: Vec<String> = every_policy_error::<io::Error>()
        .iter()
        .map(|error| {
            assert!(error.source().is_none(), "{error:?} has no source");
            error.to_string()
        })
        .collect();
    assert_eq!(
        messages,
        [
            "circuit breaker is open",
            "bulkhead is full",
            "rate limit exceeded",
            "call timed out"
        ]
    );
}
