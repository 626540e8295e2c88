//! The one HTTP adapter: every policy's `http_layer()` answers rejections
//! with responses; the keyed limiter gets one too; retrying policies
//! share one replay rule.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::{any, get, put};
use cortex_resilience::{
    Backoff, Bulkhead, CircuitBreaker, Clock, HeaderKey, HttpLayer, HttpRetryPredicate,
    IdempotentMethods, Outcome, Pipeline, Policy, PolicyRejection, RateLimiter, ResilienceError,
    Retry, SlidingWindow, Timeout,
};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

fn api_key() -> HeaderKey {
    HeaderKey::new("x-api-key".parse().unwrap())
}

fn request(key: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/");
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn keyed_limiter_http_layer_limits_each_key_with_its_own_headers() {
    let per_key = RateLimiter::builder("per-key")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(60))
        .build_keyed()
        .unwrap();
    let app = Router::new()
        .route("/", any(|| async { "ok" }))
        .layer(per_key.http_layer(api_key()));
    let alice = app.clone().oneshot(request(Some("alice"))).await.unwrap();
    assert_eq!(alice.status(), StatusCode::OK);
    assert_eq!(alice.headers()["ratelimit-limit"], "1");
    assert_eq!(alice.headers()["ratelimit-remaining"], "0");

    let again = app.clone().oneshot(request(Some("alice"))).await.unwrap();
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(again.headers()["retry-after"], "60");
    assert_eq!(again.headers()["ratelimit-reset"], "60");
    assert_eq!(
        again.extensions().get::<PolicyRejection>(),
        Some(&PolicyRejection::RateLimited)
    );

    let bob = app.clone().oneshot(request(Some("bob"))).await.unwrap();
    assert_eq!(bob.status(), StatusCode::OK, "bob has his own budget");
    // Requests without a key share the overflow budget.
    let anonymous = app.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    let anonymous = app.oneshot(request(None)).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::TOO_MANY_REQUESTS);
    let stats = per_key.stats();
    assert_eq!((stats.permitted_total, stats.rejected_total), (3, 2));
    assert_eq!(stats.keys, 2);
}

#[tokio::test(start_paused = true)]
async fn keyed_limiter_tower_layer_rejects_with_rate_limited() {
    let per_key = RateLimiter::builder("per-key")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(2))
        .build_keyed()
        .unwrap();
    let mut service = per_key
        .layer(api_key())
        .layer(tower::service_fn(|_: Request<Body>| async {
            Ok::<_, &str>("inner")
        }));
    let first = service
        .ready()
        .await
        .unwrap()
        .call(request(Some("k")))
        .await;
    assert_eq!(first, Ok("inner"));
    let second = service
        .ready()
        .await
        .unwrap()
        .call(request(Some("k")))
        .await;
    assert_eq!(
        second,
        Err(ResilienceError::RateLimited {
            retry_after: Duration::from_secs(2)
        })
    );
    assert_eq!(service.limiter().name(), "per-key");
}

#[tokio::test(start_paused = true)]
async fn headers_on_success_off_leaves_allowed_responses_alone() {
    let limiter = RateLimiter::builder("quiet")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(1))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", any(|| async { "ok" }))
        .layer(limiter.http_layer().headers_on_success(false));
    let allowed = app.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert!(!allowed.headers().contains_key("ratelimit-limit"));
    let limited = app.oneshot(request(None)).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.headers()["ratelimit-limit"],
        "1",
        "rejections always"
    );
}

/// A route that always answers 503 and counts its calls.
fn unavailable(calls: &Arc<AtomicUsize>) -> Router {
    let calls = Arc::clone(calls);
    Router::new().route(
        "/",
        any(move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::SERVICE_UNAVAILABLE }
        }),
    )
}

fn quick_retry(name: &str) -> Retry {
    Retry::builder(name)
        .clock(Clock::tokio())
        .backoff(Backoff::Fixed {
            delay: Duration::from_millis(1),
        })
        .budget(None)
        .build()
        .unwrap()
}

/// The pipeline and the retry share the replay rule: three attempts for a
/// small PUT, one for a body over the bound, one for a POST.
#[tokio::test(start_paused = true)]
async fn pipeline_over_http_replays_only_bounded_bodies_of_idempotent_methods() {
    let calls = Arc::new(AtomicUsize::new(0));
    let pipeline = Pipeline::builder()
        .retry(quick_retry("pipeline"))
        .build_http();
    let app = unavailable(&calls).layer(pipeline.http_layer().max_replay_body(8));
    let send = |method: Method, body: &'static str| {
        let app = app.clone();
        let calls = Arc::clone(&calls);
        async move {
            calls.store(0, Ordering::SeqCst);
            let request = Request::builder()
                .method(method)
                .uri("/")
                .body(Body::from(body))
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            (response.status(), calls.load(Ordering::SeqCst))
        }
    };
    assert_eq!(
        send(Method::PUT, "hello").await,
        (StatusCode::SERVICE_UNAVAILABLE, 3)
    );
    assert_eq!(
        send(Method::PUT, "over 8 bytes").await,
        (StatusCode::SERVICE_UNAVAILABLE, 1),
        "a body over the replay bound is sent once"
    );
    assert_eq!(
        send(Method::POST, "hello").await,
        (StatusCode::SERVICE_UNAVAILABLE, 1),
        "a non-idempotent method is sent once"
    );
    assert_eq!(
        send(Method::GET, "").await,
        (StatusCode::SERVICE_UNAVAILABLE, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn retry_http_layer_takes_another_predicate_and_methods() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let app = Router::new()
        .route(
            "/",
            any(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::INTERNAL_SERVER_ERROR }
            }),
        )
        .layer(
            quick_retry("custom")
                .http_layer()
                .predicate(HttpRetryPredicate::statuses([
                    StatusCode::INTERNAL_SERVER_ERROR,
                ]))
                .methods(IdempotentMethods::only([Method::POST])),
        );
    let post = Request::post("/").body(Body::from("{}")).unwrap();
    let response = app.clone().oneshot(post).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "POST is allowed here");
    calls.store(0, Ordering::SeqCst);
    let get = Request::get("/").body(Body::empty()).unwrap();
    app.oneshot(get).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "GET is not, here");
}

#[tokio::test]
async fn http_layer_wraps_any_policy_layer_and_exposes_its_service() {
    let breaker = CircuitBreaker::builder("classified").build().unwrap();
    // Count nothing as a failure: the breaker never opens on 500s.
    let never_fails = |_: &Result<axum::response::Response, ResilienceError<_>>| Outcome::Success;
    let app = Router::new()
        .route("/", any(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .layer(breaker.http_layer().classify(never_fails));
    for _ in 0..150 {
        app.clone().oneshot(request(None)).await.unwrap();
    }
    assert_eq!(breaker.stats().failed_calls_total, 0);

    let bulkhead = Bulkhead::builder("pool").build().unwrap();
    let inner = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(axum::response::Response::new(Body::empty()))
    });
    let mut service = HttpLayer::new(bulkhead.layer()).layer(inner);
    assert_eq!(service.get_ref().bulkhead().name(), "pool");
    let response = service.ready().await.unwrap().call(request(None)).await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    let _inner = service.into_inner().into_inner();
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
