//! The automatic Open → HalfOpen transition: when it fires, and what
//! cancels it. Runs on tokio's paused clock, as the crate's docs advise
//! for tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex_resilience::{
    CircuitBreaker, CircuitBreakerEvent, CircuitState, Clock, ResilienceError, SlidingWindow,
};
use tokio::time::Instant;

type Transitions = Arc<Mutex<Vec<(Instant, CircuitState, CircuitState)>>>;

/// A breaker that opens on one failure and moves to half-open by itself
/// `wait` after opening, recording when each transition happens.
fn automatic(wait: Duration) -> (CircuitBreaker, Transitions) {
    let breaker = CircuitBreaker::builder("auto")
        .clock(Clock::tokio())
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 1 })
        .automatic_transition_from_open_to_half_open(true)
        .wait_duration_in_open_state(wait)
        .build()
        .unwrap();
    let transitions = Transitions::default();
    let seen = Arc::clone(&transitions);
    breaker.on_event(move |event| {
        if let CircuitBreakerEvent::StateTransition { from, to } = event {
            seen.lock().unwrap().push((Instant::now(), *from, *to));
        }
    });
    (breaker, transitions)
}

async fn fail(breaker: &CircuitBreaker) {
    let result: Result<(), ResilienceError<&str>> = breaker.execute(|| async { Err("boom") }).await;
    assert!(result.is_err());
}

/// Lets spawned tasks (the breaker's timer) run.
async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

fn half_open_at(transitions: &Transitions) -> Vec<Instant> {
    transitions
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, from, to)| (*from, *to) == (CircuitState::Open, CircuitState::HalfOpen))
        .map(|(at, _, _)| *at)
        .collect()
}

/// Issue 12, item 13: the deadline was taken when the timer task was
/// first polled (`sleep(wait)` inside the task), so a runtime that got to
/// the task late moved the breaker late, by as much as it was late.
#[tokio::test(start_paused = true)]
async fn half_open_comes_wait_after_opening_even_when_the_timer_task_starts_late() {
    let wait = Duration::from_secs(5);
    let (breaker, transitions) = automatic(wait);
    let opened = Instant::now();
    fail(&breaker).await;
    assert_eq!(breaker.state(), CircuitState::Open);
    // The runtime is busy with this task for the whole wait: the timer
    // task has not run once when the clock reaches the deadline.
    tokio::time::advance(wait).await;
    settle().await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    assert_eq!(half_open_at(&transitions), [opened + wait]);
}

/// resilience4j, `CircuitBreakerAutoTransitionStateMachineTest.
/// testAutoTransition`: opening schedules the transition with a delay of
/// exactly `waitDurationInOpenState` (2000 ms), and running it moves the
/// breaker to HALF_OPEN. Their config: failure rate 50 %, count window 5,
/// 3 permitted half-open calls.
#[tokio::test(start_paused = true)]
async fn auto_transition_is_scheduled_exactly_the_wait_duration_after_opening() {
    let breaker = CircuitBreaker::builder("testName")
        .clock(Clock::tokio())
        .failure_rate_threshold(50.0)
        .sliding_window(SlidingWindow::CountBased { size: 5 })
        .minimum_number_of_calls(5)
        .permitted_number_of_calls_in_half_open_state(3)
        .automatic_transition_from_open_to_half_open(true)
        .wait_duration_in_open_state(Duration::from_secs(2))
        .build()
        .unwrap();
    let opened = Instant::now();
    breaker.transition_to_open();
    settle().await;
    tokio::time::advance(Duration::from_millis(1999)).await;
    settle().await;
    assert_eq!(breaker.state(), CircuitState::Open);
    tokio::time::advance(Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    assert_eq!(Instant::now() - opened, Duration::from_secs(2));
    // Three probes, as configured, and no more.
    let probes: Vec<_> = (0..3)
        .map(|_| breaker.try_acquire_permission().unwrap())
        .collect();
    assert!(breaker.try_acquire_permission().is_err());
    drop(probes);
}

/// resilience4j, `CircuitBreakerAutoTransitionStateMachineTest.
/// shouldCancelAutoTransition`: leaving Open another way (there, forced
/// open) cancels the scheduled transition, so no timer outlives the state
/// it was for, and the breaker stays where it was put.
#[tokio::test(start_paused = true)]
async fn a_manual_transition_cancels_the_pending_automatic_one() {
    let (breaker, transitions) = automatic(Duration::from_secs(2));
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    breaker.transition_to_open();
    settle().await;
    assert_eq!(
        metrics.num_alive_tasks(),
        before + 1,
        "the timer is scheduled"
    );
    breaker.transition_to_forced_open();
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), before, "the timer is cancelled");
    tokio::time::advance(Duration::from_secs(3)).await;
    settle().await;
    assert_eq!(breaker.state(), CircuitState::ForcedOpen);
    assert!(half_open_at(&transitions).is_empty());
}

/// resilience4j, `notCancelAutoTransitionFutureIfAlreadyDone`: a timer
/// that already fired is left alone; the breaker carries on from
/// half-open as usual.
#[tokio::test(start_paused = true)]
async fn a_fired_timer_leaves_later_transitions_alone() {
    let (breaker, transitions) = automatic(Duration::from_secs(2));
    breaker.transition_to_open();
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    breaker.transition_to_forced_open();
    assert_eq!(breaker.state(), CircuitState::ForcedOpen);
    assert_eq!(half_open_at(&transitions).len(), 1);
}

/// Each opening has its own deadline: the timer of an earlier opening
/// (closed again meanwhile) cannot end a later opening early.
#[tokio::test(start_paused = true)]
async fn a_timer_from_an_earlier_opening_does_not_cut_a_later_one_short() {
    let wait = Duration::from_secs(5);
    let (breaker, transitions) = automatic(wait);
    fail(&breaker).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    breaker.reset();
    tokio::time::advance(Duration::from_secs(2)).await;
    let reopened = Instant::now();
    fail(&breaker).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(half_open_at(&transitions), [reopened + wait]);
}
