//! Retry, timeout and configuration behaviour, and running calls through
//! policies and pipelines.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use cortex_resilience::{
    Bulkhead, CircuitBreaker, Clock, PolicyExt, RateLimiter, ResilienceError, Retry,
    RetryBudgetConfig, SlidingWindow, Timeout, TimeoutConfig, TimeoutStats,
};
use tower::ServiceExt;

#[tokio::test(start_paused = true)]
async fn retry_backs_off_and_returns_the_last_error() {
    let retry = Retry::builder("r")
        .clock(Clock::tokio())
        .max_attempts(3)
        .backoff(cortex_resilience::Backoff::Exponential {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(1),
        })
        .build()
        .unwrap();
    let calls = AtomicUsize::new(0);
    let start = tokio::time::Instant::now();
    let result = retry
        .execute(|| async { Err::<(), _>(calls.fetch_add(1, Ordering::SeqCst)) })
        .await;
    assert_eq!(result, Err(ResilienceError::Inner(2)));
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(retry.stats().failed_with_retry, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_never_retries_an_open_circuit() {
    let breaker = CircuitBreaker::builder("c")
        .clock(Clock::tokio())
        .build()
        .unwrap();
    breaker.transition_to_forced_open();
    let retry = Retry::builder("r").clock(Clock::tokio()).build().unwrap();
    let policy = retry.clone().then(breaker);
    let calls = AtomicUsize::new(0);
    let result = policy
        .execute(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        })
        .await;
    assert_eq!(
        result,
        Err(ResilienceError::CircuitOpen { retry_after: None })
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(retry.stats().failed_without_retry, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_budget_caps_extra_load() {
    let retry = Retry::builder("budget")
        .clock(Clock::tokio())
        .max_attempts(10)
        .budget(Some(RetryBudgetConfig {
            ttl: Duration::from_secs(10),
            min_retries_per_second: 0,
            retry_ratio: 0.2,
        }))
        .build()
        .unwrap();
    let calls = AtomicUsize::new(0);
    for _ in 0..50 {
        let _ = retry
            .execute(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(())
            })
            .await;
    }
    // 50 calls deposit 10 retries' worth: at most 60 attempts in total.
    assert!(
        calls.load(Ordering::SeqCst) <= 60,
        "{}",
        calls.load(Ordering::SeqCst)
    );
    assert!(retry.stats().budget_exhausted > 0);
}

/// The generic tower layer: the first attempt runs in place, retries
/// take over when it fails, and the stats tell the two apart.
#[tokio::test(start_paused = true)]
async fn retry_layer_retries_failed_first_attempts_and_counts_both_paths() {
    use tower::{Layer, Service};
    let retry = Retry::builder("layer")
        .clock(Clock::tokio())
        .max_attempts(3)
        .build()
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let inner = tower::service_fn(move |fail_first: usize| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        async move { if n < fail_first { Err("down") } else { Ok(n) } }
    });
    let mut service = retry.layer().layer(inner);
    // Succeeds at once: no retry.
    let first = service.ready().await.unwrap().call(0).await;
    assert_eq!(first.unwrap(), 0);
    // Fails twice (calls 1 and 2), succeeds on the third attempt.
    let third = service.ready().await.unwrap().call(3).await;
    assert_eq!(third.unwrap(), 3);
    // Fails every attempt: the last error comes back after 3 attempts.
    let failed = service.ready().await.unwrap().call(100).await;
    assert!(matches!(failed, Err(ResilienceError::Inner("down"))));
    assert_eq!(calls.load(Ordering::SeqCst), 7);
    let stats = retry.stats();
    assert_eq!(
        (
            stats.successful_without_retry,
            stats.successful_with_retry,
            stats.failed_with_retry
        ),
        (1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_the_call_and_answers_504_over_http() {
    struct DropFlag(Arc<AtomicUsize>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let timeout = Timeout::builder("t")
        .timeout_duration(Duration::from_millis(50))
        .build()
        .unwrap();
    let flag = DropFlag(dropped.clone());
    let result = timeout
        .execute(|| async move {
            let _flag = flag;
            std::future::pending::<Result<(), ()>>().await
        })
        .await;
    assert_eq!(result, Err(ResilienceError::Timeout));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the timed-out future was dropped"
    );
    assert_eq!(timeout.stats().timed_out_calls_total, 1);

    let app = Router::new()
        .route(
            "/",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "late"
            }),
        )
        .layer(timeout.http_layer());
    let response = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        timeout.stats(),
        TimeoutStats {
            name: "t".to_owned(),
            timeout_duration: Duration::from_millis(50),
            timed_out_calls_total: 2,
        }
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_counts_only_calls_it_cancels_and_clones_share_the_count() {
    let timeout = Timeout::from_config(
        "search",
        TimeoutConfig {
            timeout_duration: Duration::from_millis(100),
        },
    )
    .unwrap();
    let clone = timeout.clone();
    assert_eq!(timeout.execute(|| async { Ok::<_, ()>(1) }).await, Ok(1));
    assert_eq!(
        timeout.execute(|| async { Err::<(), _>("inner") }).await,
        Err(ResilienceError::Inner("inner"))
    );
    let late = clone
        .execute(|| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<_, ()>(())
        })
        .await;
    assert_eq!(late, Err(ResilienceError::Timeout));
    let stats = timeout.stats();
    assert_eq!(
        (stats.name.as_str(), stats.timed_out_calls_total),
        ("search", 1)
    );
    assert_eq!(
        timeout.config().timeout_duration,
        Duration::from_millis(100)
    );
}

#[test]
fn timeout_config_defaults_to_one_second_and_rejects_zero_naming_the_instance() {
    let timeout = Timeout::builder("default").build().unwrap();
    assert_eq!(timeout.config().timeout_duration, Duration::from_secs(1));
    let error = Timeout::builder("payments-attempt")
        .timeout_duration(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(
        (error.policy, error.name.as_str(), error.field),
        ("Timeout", "payments-attempt", "timeout_duration")
    );
    assert_eq!(
        error.to_string(),
        "invalid configuration of Timeout \"payments-attempt\": `timeout_duration` must be positive"
    );
}

#[test]
fn every_builder_names_its_instance_in_config_errors() {
    let errors = [
        CircuitBreaker::builder("cb")
            .failure_rate_threshold(0.0)
            .build()
            .unwrap_err(),
        Bulkhead::builder("bh")
            .max_concurrent_calls(0)
            .build()
            .unwrap_err(),
        Retry::builder("rt").max_attempts(0).build().unwrap_err(),
        Retry::builder("budget")
            .budget(Some(RetryBudgetConfig {
                retry_ratio: -1.0,
                ..RetryBudgetConfig::default()
            }))
            .build()
            .unwrap_err(),
        RateLimiter::builder("rl")
            .permits(0, Duration::from_secs(1))
            .build()
            .unwrap_err(),
        RateLimiter::builder("keyed")
            .max_keys(0)
            .build_keyed::<u32>()
            .unwrap_err(),
        Timeout::builder("to")
            .timeout_duration(Duration::ZERO)
            .build()
            .unwrap_err(),
    ];
    let named: Vec<(&str, &str, &str)> = errors
        .iter()
        .map(|error| (error.policy, error.name.as_str(), error.field))
        .collect();
    assert_eq!(
        named,
        [
            ("CircuitBreaker", "cb", "failure_rate_threshold"),
            ("Bulkhead", "bh", "max_concurrent_calls"),
            ("Retry", "rt", "max_attempts"),
            ("Retry", "budget", "budget.retry_ratio"),
            ("RateLimiter", "rl", "permits"),
            ("RateLimiter", "keyed", "max_keys"),
            ("Timeout", "to", "timeout_duration"),
        ]
    );
    // `?` turns it into a registry error that still names the instance.
    let registry_error = cortex_resilience::RegistryError::from(errors[0].clone());
    assert!(
        registry_error.to_string().contains("\"cb\""),
        "{registry_error}"
    );
}

/// `execute_with` is the one name for "run with my own outcome decision",
/// on the breaker (a classifier) and the retry (a predicate) alike.
#[tokio::test(start_paused = true)]
async fn execute_with_takes_the_policys_decider() {
    let breaker = CircuitBreaker::builder("db")
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 1 })
        .build()
        .unwrap();
    let not_found_is_fine = |result: &Result<(), ResilienceError<&str>>| match result {
        Err(ResilienceError::Inner("not found")) | Ok(()) => cortex_resilience::Outcome::Success,
        Err(_) => cortex_resilience::Outcome::Failure,
    };
    let result = breaker
        .execute_with(&not_found_is_fine, || async {
            Err(ResilienceError::Inner("not found"))
        })
        .await;
    assert_eq!(result, Err(ResilienceError::Inner("not found")));
    assert_eq!(breaker.state(), cortex_resilience::CircuitState::Closed);

    let retry = Retry::builder("fetch")
        .backoff(cortex_resilience::Backoff::Fixed {
            delay: Duration::from_millis(1),
        })
        .build()
        .unwrap();
    let calls = AtomicUsize::new(0);
    let never = |_: &Result<(), ResilienceError<&str>>| cortex_resilience::RetryDecision::Done;
    let result = retry
        .execute_with(&never, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ResilienceError::Inner("down"))
        })
        .await;
    assert_eq!(result, Err(ResilienceError::Inner("down")));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

mod without_policy_ext {
    use std::time::Duration;

    use cortex_resilience::{Pipeline, ResilienceError, Retry, Timeout};

    #[tokio::test(start_paused = true)]
    async fn pipeline_execute_needs_no_trait_import() {
        let pipeline = Pipeline::builder()
            .retry(Retry::builder("p").build().unwrap())
            .attempt_timeout(
                Timeout::builder("p")
                    .timeout_duration(Duration::from_millis(10))
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(pipeline.execute(|| async { Ok::<_, ()>(3) }).await, Ok(3));
        let hung = pipeline
            .execute(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, ()>(())
            })
            .await;
        assert_eq!(hung, Err(ResilienceError::Timeout));
    }
}
