//! Admission policies: the bulkhead and the rate limiter, and the
//! acquisition APIs they share with the breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cortex_resilience::{
    Bulkhead, BulkheadFull, CircuitBreaker, CircuitOpen, Clock, ManualClock, RateLimited,
    RateLimiter, ResilienceError,
};

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
