//! Bulkhead, retry, timeout, rate limiter and pipeline behaviour.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, put};
use cortex_resilience::{
    Bulkhead, BulkheadFull, CircuitBreaker, CircuitOpen, Clock, ManualClock, Pipeline, Policy,
    PolicyExt, RateLimited, RateLimiter, ResilienceError, Retry, RetryBudgetConfig, SlidingWindow,
    Timeout, TimeoutConfig, TimeoutStats,
};
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn bulkhead_rejects_over_capacity_and_bounds_its_queue() {
    let bulkhead = Bulkhead::builder("b")
        .max_concurrent_calls(1)
        .max_queue(1)
        .build()
        .unwrap();
    let held = bulkhead.try_acquire().unwrap();
    let queued = {
        let bulkhead = bulkhead.clone();
        tokio::spawn(async move {
            bulkhead
                .execute(|| async { Ok::<_, ()>("queued ran") })
                .await
        })
    };
    tokio::task::yield_now().await;
    assert_eq!(bulkhead.stats().queued, 1);
    let over = bulkhead.execute(|| async { Ok::<_, ()>(()) }).await;
    assert_eq!(over, Err(ResilienceError::BulkheadFull));
    drop(held);
    assert_eq!(queued.await.unwrap(), Ok("queued ran"));
    let stats = bulkhead.stats();
    assert_eq!(
        (stats.available_permits, stats.queued, stats.rejected_total),
        (1, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn bulkhead_queue_wait_times_out_and_cancelled_waiters_leave() {
    let bulkhead = Bulkhead::builder("b")
        .max_concurrent_calls(1)
        .max_queue(5)
        .max_wait(Duration::from_millis(100))
        .build()
        .unwrap();
    let _held = bulkhead.try_acquire().unwrap();
    let waited = bulkhead.execute(|| async { Ok::<_, ()>(()) }).await;
    assert_eq!(waited, Err(ResilienceError::BulkheadFull));
    let cancelled = tokio::time::timeout(
        Duration::from_millis(10),
        bulkhead.execute(|| async { Ok::<_, ()>(()) }),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(bulkhead.stats().queued, 0);
}

/// Many tasks on a multi-thread runtime: concurrency never exceeds the
/// limit, the queue never exceeds its bound, every call is either run or
/// rejected, and all permits come back (including from panicking calls).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stress_bulkhead_limits_hold_and_no_permit_leaks() {
    const MAX: u32 = 4;
    const QUEUE: u32 = 8;
    let bulkhead = Bulkhead::builder("stress")
        .max_concurrent_calls(MAX)
        .max_queue(QUEUE)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..2000)
        .map(|i| {
            let (bulkhead, running, peak, ran) =
                (bulkhead.clone(), running.clone(), peak.clone(), ran.clone());
            tokio::spawn(async move {
                let result = bulkhead
                    .execute(|| async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        assert!(bulkhead.stats().queued <= u64::from(QUEUE));
                        tokio::task::yield_now().await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        ran.fetch_add(1, Ordering::SeqCst);
                        if i % 97 == 0 {
                            panic!("a bug in one call");
                        }
                        Ok::<_, ()>(())
                    })
                    .await;
                result.is_err()
            })
        })
        .collect();
    let mut rejected = 0;
    for task in tasks {
        if let Ok(was_rejected) = task.await {
            rejected += usize::from(was_rejected);
        }
    }
    assert!(peak.load(Ordering::SeqCst) <= MAX as usize);
    assert_eq!(ran.load(Ordering::SeqCst) + rejected, 2000);
    let stats = bulkhead.stats();
    assert_eq!(
        (stats.available_permits, stats.in_flight, stats.queued),
        (u64::from(MAX), 0, 0)
    );
}

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

fn flaky_router(failures: usize, calls: Arc<AtomicUsize>) -> Router {
    Router::new().route(
        "/",
        get(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < failures {
                    (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")])
                } else {
                    (StatusCode::OK, [("retry-after", "0")])
                }
            }
        })
        .post(|| async { StatusCode::SERVICE_UNAVAILABLE }),
    )
}

#[tokio::test(start_paused = true)]
async fn http_retry_honours_retry_after_and_skips_non_idempotent_methods() {
    let calls = Arc::new(AtomicUsize::new(0));
    let retry = Retry::builder("http")
        .clock(Clock::tokio())
        .backoff(cortex_resilience::Backoff::Fixed {
            delay: Duration::from_millis(10),
        })
        .build()
        .unwrap();
    let app = flaky_router(2, calls.clone()).layer(retry.http_layer());
    let start = tokio::time::Instant::now();
    let response = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "Retry-After: 1 twice"
    );
    let post = app
        .oneshot(Request::post("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(post.status(), 503, "POST passes through once");
}

#[tokio::test(start_paused = true)]
async fn http_retry_replays_small_bodies_and_passes_big_ones_once() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let app = Router::new()
        .route(
            "/echo",
            put(move |body: String| {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        (StatusCode::BAD_GATEWAY, String::new())
                    } else {
                        (StatusCode::OK, body)
                    }
                }
            }),
        )
        .layer(
            Retry::builder("replay")
                .clock(Clock::tokio())
                .build()
                .unwrap()
                .http_layer(),
        );
    let response = app
        .clone()
        .oneshot(
            Request::put("/echo")
                .header("content-length", "5")
                .body(Body::from("hello"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello", "the retried attempt got the same body");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);

    attempts.store(0, Ordering::SeqCst);
    let big = vec![b'x'; 100 * 1024];
    let response = app
        .oneshot(Request::put("/echo").body(Body::from(big)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        502,
        "over 64 KiB: one attempt, not retried"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
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

#[tokio::test(start_paused = true)]
async fn rate_limit_answers_429_with_ratelimit_headers() {
    let limiter = RateLimiter::builder("api")
        .clock(Clock::tokio())
        .permits(2, Duration::from_secs(1))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(limiter.http_layer());
    let get_root = || Request::get("/").body(Body::empty()).unwrap();
    let first = app.clone().oneshot(get_root()).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["ratelimit-limit"], "2");
    assert_eq!(first.headers()["ratelimit-remaining"], "1");
    app.clone().oneshot(get_root()).await.unwrap();
    let limited = app.clone().oneshot(get_root()).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    assert_eq!(limited.headers()["ratelimit-reset"], "1");
    assert_eq!(limiter.stats().rejected_total, 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limiter_max_wait_queues_callers_in_order() {
    let limiter = RateLimiter::builder("wait")
        .clock(Clock::tokio())
        .permits(10, Duration::from_secs(1))
        .burst(1)
        .max_wait(Duration::from_millis(250))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    for _ in 0..3 {
        limiter.acquire().await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_millis(200));
    // Three callers reserve 100, 200, 300 ms ahead: the third is over 250.
    let results = tokio::join!(limiter.acquire(), limiter.acquire(), limiter.acquire());
    assert!(results.0.is_ok() && results.1.is_ok() && results.2.is_err());
}

/// Threads hammering one global limiter at a frozen instant: exactly the
/// burst gets through, however the compare-and-swaps interleave.
#[test]
fn stress_global_limiter_admits_exactly_the_burst() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::builder("exact")
        .clock(Clock::tokio())
        .permits(100, Duration::from_secs(1))
        .clock(Clock::manual(&clock))
        .build()
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let limiter = limiter.clone();
            std::thread::spawn(move || (0..1000).filter(|_| limiter.check().allowed).count())
        })
        .collect();
    let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(allowed, 100);
}

#[tokio::test(start_paused = true)]
async fn standard_pipeline_opens_the_breaker_and_answers_503() {
    let breaker = CircuitBreaker::builder("flaky")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::CountBased { size: 10 })
        .minimum_number_of_calls(5)
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .bulkhead(Bulkhead::builder("flaky").build().unwrap())
        .timeout(
            Timeout::builder("total")
                .timeout_duration(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
        .retry(
            Retry::builder("flaky")
                .clock(Clock::tokio())
                .backoff(cortex_resilience::Backoff::Fixed {
                    delay: Duration::from_millis(1),
                })
                .build()
                .unwrap(),
        )
        .circuit_breaker(breaker.clone())
        .attempt_timeout(
            Timeout::builder("attempt")
                .timeout_duration(Duration::from_secs(1))
                .build()
                .unwrap(),
        )
        .build_http();
    assert_eq!(
        Policy::<axum::response::Response, std::convert::Infallible>::describe(&pipeline),
        "Bulkhead -> Timeout -> Retry -> CircuitBreaker -> Timeout"
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = Router::new()
        .route(
            "/",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::SERVICE_UNAVAILABLE }
            }),
        )
        .layer(pipeline.http_layer());
    let get_root = || Request::get("/").body(Body::empty()).unwrap();
    let first = app.clone().oneshot(get_root()).await.unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "three attempts");
    let _ = app.clone().oneshot(get_root()).await.unwrap();
    assert_eq!(breaker.state(), cortex_resilience::CircuitState::Open);
    let before = calls.load(Ordering::SeqCst);
    let rejected = app.oneshot(get_root()).await.unwrap();
    assert_eq!(rejected.status(), 503);
    assert!(rejected.headers().contains_key("retry-after"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "the open breaker is not retried"
    );
}

/// The acquisition APIs of the three admission policies look alike: a
/// permit (or `()`) or a typed rejection carrying the wait or the limit,
/// which `?` turns into the matching `ResilienceError`.
#[tokio::test(start_paused = true)]
async fn acquisition_apis_reject_with_typed_errors_that_convert() {
    let bulkhead = Bulkhead::builder("pool")
        .max_concurrent_calls(1)
        .build()
        .unwrap();
    let held = bulkhead.try_acquire().unwrap();
    let full = bulkhead.try_acquire().unwrap_err();
    assert_eq!(
        full,
        BulkheadFull {
            max_concurrent_calls: 1
        }
    );
    assert_eq!(bulkhead.acquire().await.unwrap_err(), full);
    assert_eq!(bulkhead.stats().rejected_total, 2);
    drop(held);
    assert!(bulkhead.acquire().await.is_ok());

    let limiter = RateLimiter::builder("api")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(10))
        .build()
        .unwrap();
    limiter.try_acquire().unwrap();
    let RateLimited { retry_after } = limiter.try_acquire().unwrap_err();
    assert_eq!(retry_after, Duration::from_secs(10));
    assert_eq!(
        limiter.acquire().await,
        Err(RateLimited {
            retry_after: Duration::from_secs(10)
        })
    );

    let keyed = RateLimiter::builder("per-user")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(10))
        .build_keyed::<&str>()
        .unwrap();
    keyed.try_acquire(Some(&"alice")).unwrap();
    keyed.try_acquire(Some(&"bob")).unwrap();
    assert_eq!(
        keyed.try_acquire(Some(&"alice")),
        Err(RateLimited {
            retry_after: Duration::from_secs(10)
        })
    );

    let breaker = CircuitBreaker::builder("db")
        .clock(Clock::tokio())
        .wait_duration_in_open_state(Duration::from_secs(30))
        .build()
        .unwrap();
    breaker.transition_to_open();
    let open: CircuitOpen = breaker.try_acquire_permission().unwrap_err();
    assert_eq!(open.retry_after, Some(Duration::from_secs(30)));

    // `?` in code returning `ResilienceError`.
    async fn guarded(
        bulkhead: &Bulkhead,
        limiter: &RateLimiter,
    ) -> Result<(), ResilienceError<()>> {
        limiter.acquire().await?;
        let _permit = bulkhead.try_acquire()?;
        Ok(())
    }
    assert_eq!(
        guarded(&bulkhead, &limiter).await,
        Err(ResilienceError::RateLimited {
            retry_after: Duration::from_secs(10)
        })
    );
    assert_eq!(
        ResilienceError::<()>::from(open),
        ResilienceError::CircuitOpen {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    assert_eq!(
        ResilienceError::<()>::from(full),
        ResilienceError::BulkheadFull
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
