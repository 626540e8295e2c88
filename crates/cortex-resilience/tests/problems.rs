//! Every policy rejection is an RFC 9457 `application/problem+json` body
//! (issue 12, item 8), from a handler returning `ResilienceError` and from
//! the HTTP adapter alike, with the protocol headers kept.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cortex_resilience::{
    CircuitBreaker, Clock, PolicyRejection, RateLimiter, ResilienceError, Timeout,
};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn problem_of(response: Response) -> (StatusCode, http::HeaderMap, Value) {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|error| {
        panic!("{error}: {:?}", String::from_utf8_lossy(&bytes));
    });
    assert_eq!(parts.headers["content-type"], "application/problem+json");
    (parts.status, parts.headers, value)
}

type Error = ResilienceError<std::convert::Infallible>;

#[tokio::test]
async fn resilience_errors_are_problems_with_their_status_and_retry_after() {
    let cases: [(Error, u16, &str, &str, Option<u64>); 5] = [
        (
            ResilienceError::CircuitOpen {
                retry_after: Some(Duration::from_millis(2500)),
            },
            503,
            "Service Unavailable",
            "circuit_breaker",
            Some(3),
        ),
        (
            ResilienceError::CircuitOpen { retry_after: None },
            503,
            "Service Unavailable",
            "circuit_breaker",
            None,
        ),
        (
            ResilienceError::BulkheadFull,
            503,
            "Service Unavailable",
            "bulkhead",
            None,
        ),
        (
            ResilienceError::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            429,
            "Too Many Requests",
            "rate_limiter",
            Some(2),
        ),
        (
            ResilienceError::Timeout,
            504,
            "Gateway Timeout",
            "timeout",
            None,
        ),
    ];
    for (error, status, title, policy, retry_after) in cases {
        let (got, headers, problem) = problem_of(error.clone().into_response()).await;
        assert_eq!(got.as_u16(), status, "{error:?}");
        assert_eq!(problem["type"], "about:blank", "{error:?}");
        assert_eq!(problem["title"], title, "{error:?}");
        assert_eq!(problem["status"], status, "{error:?}");
        assert_eq!(problem["detail"], error.to_string(), "{error:?}");
        assert_eq!(problem["policy"], policy, "{error:?}");
        match retry_after {
            Some(seconds) => {
                assert_eq!(headers["retry-after"], seconds.to_string());
                assert_eq!(problem["retry_after"], seconds);
            }
            None => {
                assert!(!headers.contains_key("retry-after"));
                assert!(problem.get("retry_after").is_none());
            }
        }
    }
}

#[tokio::test]
async fn an_inner_error_keeps_its_own_response() {
    let error: ResilienceError<(StatusCode, &'static str)> =
        ResilienceError::Inner((StatusCode::CONFLICT, "taken"));
    let response = error.into_response();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "taken");
}

#[tokio::test(start_paused = true)]
async fn the_http_layers_429_is_a_problem_with_ratelimit_headers() {
    let limiter = RateLimiter::builder("api")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(1))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(limiter.http_layer());
    let get_root = || Request::get("/").body(Body::empty()).unwrap();
    app.clone().oneshot(get_root()).await.unwrap();
    let limited = app.oneshot(get_root()).await.unwrap();
    assert_eq!(
        limited.extensions().get::<PolicyRejection>(),
        Some(&PolicyRejection::RateLimited)
    );
    let (status, headers, problem) = problem_of(limited).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["ratelimit-limit"], "1");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["ratelimit-reset"], "1");
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["title"], "Too Many Requests");
    assert_eq!(problem["detail"], "rate limit exceeded");
    assert_eq!(problem["policy"], "rate_limiter");
    assert_eq!(problem["retry_after"], 1);
}

#[tokio::test(start_paused = true)]
async fn the_http_layers_open_breaker_and_timeout_are_problems() {
    let breaker = CircuitBreaker::builder("down")
        .clock(Clock::tokio())
        .build()
        .unwrap();
    breaker.transition_to_open();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(breaker.http_layer());
    let rejected = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers, problem) = problem_of(rejected).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(problem["policy"], "circuit_breaker");
    assert_eq!(problem["detail"], "circuit breaker is open");
    assert_eq!(
        problem["retry_after"].to_string(),
        headers["retry-after"].to_str().unwrap()
    );

    let timeout = Timeout::builder("slow")
        .timeout_duration(Duration::from_millis(10))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "late"
            }),
        )
        .layer(timeout.http_layer());
    let timed_out = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, _, problem) = problem_of(timed_out).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(problem["title"], "Gateway Timeout");
    assert_eq!(problem["policy"], "timeout");
}
