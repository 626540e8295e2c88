//! The plain tower layers (`.layer()`, no HTTP): each rejects in `call`
//! with its `ResilienceError`, and every service hands back the service
//! and the policy it wraps (`get_ref`, `get_mut`, `into_inner`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cortex_resilience::{
    Backoff, Bulkhead, CircuitBreaker, Clock, HeaderKey, HttpService, Pipeline, RateLimiter,
    ResilienceError, Retry, Timeout,
};
use tower::{Layer, Service, ServiceExt};

fn echo() -> impl Service<
    u32,
    Response = u32,
    Error = &'static str,
    Future = impl std::future::Future<Output = Result<u32, &'static str>> + Send,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(|request: u32| async move { Ok::<_, &'static str>(request) })
}

#[tokio::test(start_paused = true)]
async fn a_global_rate_limiter_layer_rejects_in_call_with_when_to_come_back() {
    let limiter = RateLimiter::builder("jobs")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(10))
        .build()
        .unwrap();
    let mut service = limiter.layer().layer(echo());
    let first = service.ready().await.unwrap().call(1).await;
    assert_eq!(first, Ok(1));
    // Readiness does not consume or check permits; `call` does.
    let second = service.ready().await.unwrap().call(2).await;
    assert_eq!(
        second,
        Err(ResilienceError::RateLimited {
            retry_after: Duration::from_secs(10)
        })
    );
    assert_eq!(service.limiter().stats().rejected_total, 1);
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_layer_without_a_queue_rejects_at_once_and_with_one_waits() {
    let no_queue = Bulkhead::builder("db")
        .max_concurrent_calls(1)
        .build()
        .unwrap();
    let held = no_queue.try_acquire().unwrap();
    let mut service = no_queue.layer().layer(echo());
    assert_eq!(
        service.ready().await.unwrap().call(1).await,
        Err(ResilienceError::BulkheadFull)
    );
    drop(held);
    assert_eq!(service.ready().await.unwrap().call(2).await, Ok(2));

    let queued = Bulkhead::builder("queued")
        .max_concurrent_calls(1)
        .max_queue(1)
        .build()
        .unwrap();
    let held = queued.try_acquire().unwrap();
    let mut service = queued.layer().layer(echo());
    let waiting = service.ready().await.unwrap().call(3);
    let waiting = tokio::spawn(waiting);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(queued.stats().queued, 1);
    drop(held);
    assert_eq!(waiting.await.unwrap(), Ok(3));
    // The service kept a usable clone while the queued call held the original.
    assert_eq!(service.ready().await.unwrap().call(4).await, Ok(4));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_layer_cancels_a_slow_call_and_passes_inner_errors_through() {
    let timeout = Timeout::builder("slow")
        .timeout_duration(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut slow = timeout
        .layer()
        .layer(tower::service_fn(|millis: u64| async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            if millis == 0 {
                Err("refused")
            } else {
                Ok(millis)
            }
        }));
    assert_eq!(slow.ready().await.unwrap().call(10).await, Ok(10));
    assert_eq!(
        slow.ready().await.unwrap().call(0).await,
        Err(ResilienceError::Inner("refused"))
    );
    assert_eq!(
        slow.ready().await.unwrap().call(100).await,
        Err(ResilienceError::Timeout)
    );
    assert_eq!(slow.timeout().stats().timed_out_calls_total, 1);
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_layer_retries_a_cloneable_request_through_its_policies() {
    let pipeline = Pipeline::builder()
        .retry(
            Retry::builder("flaky")
                .backoff(Backoff::Fixed {
                    delay: Duration::from_millis(1),
                })
                .build()
                .unwrap(),
        )
        .circuit_breaker(CircuitBreaker::builder("flaky").build().unwrap())
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let mut service = pipeline
        .layer()
        .layer(tower::service_fn(move |request: String| {
            let attempt = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt == 0 {
                    Err("first attempt fails")
                } else {
                    Ok(format!("{request} after {attempt}"))
                }
            }
        }));
    let response = service
        .ready()
        .await
        .unwrap()
        .call("order".to_owned())
        .await;
    assert_eq!(response, Ok("order after 1".to_owned()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let breaker = service.pipeline().circuit_breaker().unwrap();
    assert_eq!(breaker.stats().failed_calls_total, 1);
    assert_eq!(breaker.stats().successful_calls_total, 1);
}

/// A stand-in inner service: only its identity matters here.
#[derive(Debug, Clone, PartialEq)]
struct Named(&'static str);

/// Every service wraps its inner service the same way: `get_ref`,
/// `get_mut` and `into_inner` reach the service given to the layer.
macro_rules! assert_wraps {
    ($service:expr) => {{
        let mut service = $service;
        assert_eq!(service.get_ref(), &Named("inner"));
        service.get_mut().0 = "changed";
        assert_eq!(service.into_inner(), Named("changed"));
    }};
}

#[test]
fn every_service_hands_back_the_service_and_the_policy_it_wraps() {
    let breaker = CircuitBreaker::builder("cb").build().unwrap();
    let service = breaker.layer().layer(Named("inner"));
    assert_eq!(service.breaker().name(), "cb");
    assert_wraps!(service);

    let retry = Retry::builder("rt").build().unwrap();
    let service = retry.layer().layer(Named("inner"));
    assert_eq!(service.retry().name(), "rt");
    assert_wraps!(service);

    let bulkhead = Bulkhead::builder("bh").build().unwrap();
    let service = bulkhead.layer().layer(Named("inner"));
    assert_eq!(service.bulkhead().name(), "bh");
    assert_wraps!(service);

    let timeout = Timeout::builder("to").build().unwrap();
    let service = timeout.layer().layer(Named("inner"));
    assert_eq!(service.timeout().name(), "to");
    assert_wraps!(service);

    let limiter = RateLimiter::builder("rl").build().unwrap();
    let service = limiter.layer().layer(Named("inner"));
    assert_eq!(service.limiter().name(), "rl");
    assert_wraps!(service);

    let keyed = RateLimiter::builder("keyed")
        .build_keyed::<Vec<u8>>()
        .unwrap();
    let service = keyed
        .layer(HeaderKey::new("x-api-key".parse().unwrap()))
        .layer(Named("inner"));
    assert_eq!(service.limiter().name(), "keyed");
    assert_wraps!(service);

    let pipeline = Pipeline::builder().build();
    let service = pipeline.layer().layer(Named("inner"));
    assert!(service.pipeline().circuit_breaker().is_none());
    assert_wraps!(service);

    // The HTTP adapter wraps a policy service the same way.
    let http_layer = bulkhead.http_layer();
    assert_eq!(
        http_layer.get_ref().layer(Named("x")).bulkhead().name(),
        "bh"
    );
    let mut http = HttpService::new(bulkhead.layer().layer(Named("inner")));
    assert_eq!(http.get_ref().get_ref(), &Named("inner"));
    http.get_mut().get_mut().0 = "changed";
    assert_eq!(http.into_inner().into_inner(), Named("changed"));
}
