//! Circuit breaker behaviour, single-threaded and under contention.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use cortex_resilience::{
    CircuitBreaker, CircuitBreakerEvent, CircuitState, Clock, ManualClock, Outcome,
    ResilienceError, SlidingWindow,
};
use tower::{Service, ServiceBuilder, ServiceExt};

type Result<T = ()> = std::result::Result<T, ResilienceError<&'static str>>;

async fn succeed(breaker: &CircuitBreaker) -> Result {
    breaker.execute(|| async { Ok(()) }).await
}

async fn fail(breaker: &CircuitBreaker) -> Result {
    breaker.execute(|| async { Err("boom") }).await
}

fn count_based(size: u32, minimum: u32) -> CircuitBreaker {
    CircuitBreaker::builder("test")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::CountBased { size })
        .minimum_number_of_calls(minimum)
        .permitted_number_of_calls_in_half_open_state(2)
        .wait_duration_in_open_state(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn opens_after_failure_rate_exceeds_threshold() {
    let breaker = count_based(10, 4);
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    let _ = fail(&breaker).await;
    assert_eq!(breaker.state(), CircuitState::Closed, "below the minimum");
    let _ = fail(&breaker).await;
    // 2 of 4 = 50% >= 50%.
    assert_eq!(breaker.state(), CircuitState::Open);
    let stats = breaker.stats();
    assert_eq!(stats.failed_calls_total, 2);
    assert!(matches!(
        fail(&breaker).await,
        Err(ResilienceError::CircuitOpen { retry_after: Some(wait) }) if wait == Duration::from_secs(10)
    ));
    assert_eq!(breaker.stats().not_permitted_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn stays_closed_below_the_threshold_and_old_calls_leave_the_window() {
    let breaker = count_based(4, 4);
    for _ in 0..3 {
        succeed(&breaker).await.unwrap();
    }
    let _ = fail(&breaker).await;
    assert_eq!(breaker.state(), CircuitState::Closed, "25%");
    // The window keeps the last 4 calls: S S F F = 50%.
    let _ = fail(&breaker).await;
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn half_open_after_the_wait_then_closes_on_successful_probes() {
    let breaker = count_based(4, 2);
    let _ = fail(&breaker).await;
    let _ = fail(&breaker).await;
    assert_eq!(breaker.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(fail(&breaker).await.is_err_and(|e| e.is_rejection()));
    tokio::time::advance(Duration::from_secs(1)).await;
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(
        breaker.stats().buffered_calls,
        0,
        "closing starts a fresh window"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_probes_reopen_the_breaker() {
    let breaker = count_based(4, 2);
    let _ = fail(&breaker).await;
    let _ = fail(&breaker).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    succeed(&breaker).await.unwrap();
    let _ = fail(&breaker).await;
    // 1 of 2 probes failed: 50% reopens.
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_permitted_calls_and_dropped_probes_free_their_slot() {
    let breaker = count_based(4, 2);
    breaker.transition_to_half_open();
    let first = breaker.try_acquire_permission().unwrap();
    let second = breaker.try_acquire_permission().unwrap();
    assert!(breaker.try_acquire_permission().is_err());
    drop(first); // cancelled: no outcome, slot back
    let third = breaker.try_acquire_permission().unwrap();
    assert!(breaker.try_acquire_permission().is_err());
    second.record(Outcome::Success);
    third.record(Outcome::Success);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_execute_future_frees_its_probe_slot() {
    let breaker = count_based(4, 2);
    breaker.transition_to_half_open();
    let pending = breaker.execute(std::future::pending::<Result>);
    let cancelled = tokio::time::timeout(Duration::from_millis(1), pending).await;
    assert!(cancelled.is_err());
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_count_as_neither() {
    let breaker = count_based(4, 2);
    let ignore_all = |_: &Result| Outcome::Ignored;
    for _ in 0..10 {
        let _ = breaker
            .execute_with(&ignore_all, || async { Err(ResilienceError::Inner("x")) })
            .await;
    }
    let stats = breaker.stats();
    assert_eq!((stats.buffered_calls, stats.ignored_calls_total), (0, 10));
    assert_eq!(stats.state, CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker() {
    let breaker = CircuitBreaker::builder("slow")
        .clock(Clock::tokio())
        .minimum_number_of_calls(2)
        .slow_call_duration_threshold(Duration::from_millis(100))
        .slow_call_rate_threshold(50.0)
        .build()
        .unwrap();
    succeed(&breaker).await.unwrap();
    breaker
        .execute(|| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<_, &str>(())
        })
        .await
        .unwrap();
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(breaker.stats().slow_successful_calls_total, 1);
}

#[tokio::test(start_paused = true)]
async fn time_based_window_forgets_old_failures() {
    let breaker = CircuitBreaker::builder("time")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::TimeBased { seconds: 5 })
        .minimum_number_of_calls(3)
        .build()
        .unwrap();
    let _ = fail(&breaker).await;
    let _ = fail(&breaker).await;
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(breaker.stats().buffered_calls, 0);
    succeed(&breaker).await.unwrap();
    succeed(&breaker).await.unwrap();
    let _ = fail(&breaker).await;
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "1 of 3 in the window"
    );
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_mode_resets_on_success() {
    let breaker = CircuitBreaker::builder("consecutive")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 3 })
        .build()
        .unwrap();
    let _ = fail(&breaker).await;
    let _ = fail(&breaker).await;
    succeed(&breaker).await.unwrap();
    let _ = fail(&breaker).await;
    let _ = fail(&breaker).await;
    assert_eq!(breaker.state(), CircuitState::Closed);
    let _ = fail(&breaker).await;
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn open_wait_backs_off_per_consecutive_opening() {
    let breaker = CircuitBreaker::builder("backoff")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 1 })
        .permitted_number_of_calls_in_half_open_state(1)
        .wait_duration_in_open_state_fn(|openings| Duration::from_secs(1 << openings))
        .build()
        .unwrap();
    let _ = fail(&breaker).await;
    let wait = |result: Result| match result {
        Err(ResilienceError::CircuitOpen { retry_after }) => retry_after,
        other => panic!("{other:?}"),
    };
    assert_eq!(wait(succeed(&breaker).await), Some(Duration::from_secs(2)));
    tokio::time::advance(Duration::from_secs(2)).await;
    let _ = fail(&breaker).await; // probe fails: second opening
    assert_eq!(wait(succeed(&breaker).await), Some(Duration::from_secs(4)));
    tokio::time::advance(Duration::from_secs(4)).await;
    succeed(&breaker).await.unwrap(); // probe succeeds: closed, backoff restarts
    let _ = fail(&breaker).await;
    assert_eq!(wait(succeed(&breaker).await), Some(Duration::from_secs(2)));
}

#[tokio::test(start_paused = true)]
async fn automatic_transition_moves_to_half_open_on_a_timer() {
    let breaker = CircuitBreaker::builder("auto")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 1 })
        .automatic_transition_from_open_to_half_open(true)
        .wait_duration_in_open_state(Duration::from_secs(5))
        .build()
        .unwrap();
    let _ = fail(&breaker).await;
    assert_eq!(breaker.state(), CircuitState::Open);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn half_open_that_lasts_too_long_reopens() {
    let breaker = CircuitBreaker::builder("stuck")
        .clock(Clock::tokio())
        .max_wait_duration_in_half_open_state(Duration::from_secs(3))
        .build()
        .unwrap();
    breaker.transition_to_half_open();
    let _hung_probe = breaker.try_acquire_permission().unwrap();
    tokio::time::advance(Duration::from_secs(3)).await;
    assert!(succeed(&breaker).await.is_err());
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn manual_states_behave_as_named() {
    let breaker = count_based(4, 2);
    breaker.transition_to_disabled();
    for _ in 0..10 {
        let _ = fail(&breaker).await;
    }
    assert_eq!(breaker.state(), CircuitState::Disabled);
    assert_eq!(
        breaker.stats().failed_calls_total,
        0,
        "disabled records nothing"
    );

    breaker.transition_to_forced_open();
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(succeed(&breaker).await.is_err());
    assert_eq!(breaker.state(), CircuitState::ForcedOpen);

    breaker.transition_to_metrics_only();
    let mut events = breaker.subscribe();
    for _ in 0..4 {
        let _ = fail(&breaker).await;
    }
    assert_eq!(breaker.state(), CircuitState::MetricsOnly);
    assert_eq!(breaker.stats().failure_rate, Some(100.0));
    let mut exceeded = 0;
    while let Ok(event) = events.try_recv() {
        exceeded += usize::from(matches!(
            event,
            CircuitBreakerEvent::FailureRateExceeded { .. }
        ));
    }
    assert_eq!(exceeded, 1, "reported once, not on every call");

    breaker.reset();
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.stats().buffered_calls, 0);
}

#[tokio::test(start_paused = true)]
async fn events_reach_subscribers_and_callbacks() {
    let breaker = count_based(2, 2);
    let transitions = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&transitions);
    breaker.on_event(move |event| {
        if matches!(event, CircuitBreakerEvent::StateTransition { .. }) {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut events = breaker.subscribe();
    let _ = fail(&breaker).await;
    let _ = fail(&breaker).await;
    let _ = fail(&breaker).await;
    let received: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert!(matches!(received[0], CircuitBreakerEvent::Error { .. }));
    assert!(
        received.contains(&CircuitBreakerEvent::FailureRateExceeded {
            failure_rate: 100.0
        })
    );
    assert!(received.contains(&CircuitBreakerEvent::StateTransition {
        from: CircuitState::Closed,
        to: CircuitState::Open
    }));
    assert_eq!(
        received.last(),
        Some(&CircuitBreakerEvent::CallNotPermitted)
    );
    assert_eq!(transitions.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_panicking_call_counts_as_a_failure() {
    let breaker = CircuitBreaker::builder("panic")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 1 })
        .build()
        .unwrap();
    let task_breaker = breaker.clone();
    let joined = tokio::spawn(async move {
        task_breaker
            .execute(|| async {
                panic!("handler bug");
                #[allow(unreachable_code)]
                Ok::<(), ()>(())
            })
            .await
    })
    .await;
    assert!(joined.is_err());
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn invalid_configuration_is_a_typed_error() {
    let error = CircuitBreaker::builder("bad")
        .clock(Clock::tokio())
        .failure_rate_threshold(0.0)
        .build()
        .unwrap_err();
    assert_eq!(error.field, "failure_rate_threshold");
    let error = CircuitBreaker::builder("bad")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::CountBased { size: 0 })
        .build()
        .unwrap_err();
    assert_eq!(error.field, "sliding_window.size");
}

#[tokio::test(start_paused = true)]
async fn layer_clones_share_one_breaker_and_5xx_counts_as_failure() {
    let breaker = CircuitBreaker::builder("http")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 2 })
        .wait_duration_in_open_state(Duration::from_millis(1500))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/ok", get(|| async { "ok" }))
        .layer(breaker.http_layer());
    let request = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    // Two separate clones of the router (as axum makes per connection).
    let first = app.clone().oneshot(request("/fail")).await.unwrap();
    assert_eq!(first.status(), 500);
    let second = app.clone().oneshot(request("/fail")).await.unwrap();
    assert_eq!(second.status(), 500);
    assert_eq!(breaker.state(), CircuitState::Open);
    let rejected = app.clone().oneshot(request("/ok")).await.unwrap();
    assert_eq!(rejected.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejected.headers()["retry-after"], "2");
    assert_eq!(
        rejected
            .extensions()
            .get::<cortex_resilience::PolicyRejection>(),
        Some(&cortex_resilience::PolicyRejection::CircuitOpen)
    );
}

#[tokio::test]
async fn generic_layer_rejects_in_call_never_in_poll_ready() {
    let breaker = CircuitBreaker::builder("tower")
        .clock(Clock::tokio())
        .build()
        .unwrap();
    breaker.transition_to_forced_open();
    let mut service = ServiceBuilder::new()
        .layer(breaker.layer())
        .service_fn(|_: ()| async { Ok::<_, &str>("inner") });
    let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
    assert!(ready.is_ok());
    let result = service.call(()).await;
    assert_eq!(
        result,
        Err(ResilienceError::CircuitOpen { retry_after: None })
    );
}

/// Many threads race for half-open probe slots; exactly the permitted
/// number win every round, whatever the interleaving.
#[test]
fn stress_half_open_never_admits_more_than_permitted() {
    const PERMITTED: u32 = 3;
    const THREADS: usize = 8;
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder("stress")
        .clock(Clock::tokio())
        .permitted_number_of_calls_in_half_open_state(PERMITTED)
        .clock(Clock::manual(&clock))
        .build()
        .unwrap();
    for _round in 0..200 {
        breaker.transition_to_half_open();
        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let admitted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let breaker = breaker.clone();
                let barrier = Arc::clone(&barrier);
                let admitted = Arc::clone(&admitted);
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut held = Vec::new();
                    for _ in 0..4 {
                        if let Ok(permit) = breaker.try_acquire_permission() {
                            admitted.fetch_add(1, Ordering::SeqCst);
                            held.push(permit);
                        }
                    }
                    held
                })
            })
            .collect();
        let permits: Vec<_> = threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();
        assert_eq!(admitted.load(Ordering::SeqCst), PERMITTED as usize);
        // Dropping unfinished probes frees the slots of this epoch only.
        drop(permits);
        assert_eq!(breaker.state(), CircuitState::HalfOpen);
    }
}

/// Concurrent failures race to open the breaker: exactly one transition
/// happens and no outcome from before it leaks into the next state.
#[test]
fn stress_concurrent_failures_open_exactly_once() {
    let clock = ManualClock::new();
    for _round in 0..100 {
        let breaker = CircuitBreaker::builder("race")
            .clock(Clock::tokio())
            .sliding_window(SlidingWindow::CountBased { size: 16 })
            .minimum_number_of_calls(16)
            .clock(Clock::manual(&clock))
            .build()
            .unwrap();
        let transitions = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&transitions);
        breaker.on_event(move |event| {
            if let CircuitBreakerEvent::StateTransition { from, to } = event {
                assert_eq!((*from, *to), (CircuitState::Closed, CircuitState::Open));
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let breaker = breaker.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        if let Ok(permit) = breaker.try_acquire_permission() {
                            permit.record(Outcome::Failure);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(breaker.state(), CircuitState::Open);
        assert_eq!(transitions.load(Ordering::SeqCst), 1);
    }
}
