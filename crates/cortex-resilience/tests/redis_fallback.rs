//! The distributed rate limiter without Redis: every fallback mode, the
//! counters, the log, the builder's checks and the HTTP answers, driven
//! by a Redis URL whose port nothing listens on. Runs in plain
//! `cargo test -p cortex-resilience --features redis`.

#![cfg(feature = "redis")]

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use cortex_resilience::{
    DistributedRateLimiter, GlobalKey, HeaderKey, PolicyRejection, RedisFallback,
};
use http_body_util::BodyExt;
use support::{LogCount, closed_port_url};
use tower::ServiceExt;

fn limiter(fallback: RedisFallback, permits: u32, burst: u32) -> DistributedRateLimiter {
    DistributedRateLimiter::builder("outage")
        .redis_url(closed_port_url())
        .permits(permits, Duration::from_secs(60))
        .burst(burst)
        .fallback(fallback)
        .build()
        .unwrap()
}

#[tokio::test]
async fn allow_fallback_allows_everything_and_counts_each_failure() {
    let limiter = limiter(RedisFallback::Allow, 1, 1);
    for _ in 0..5 {
        let decision = limiter.check(b"alice").await;
        assert!(decision.allowed);
        assert_eq!(decision.limit, 1);
    }
    assert!(!limiter.backend_available());
    let stats = limiter.stats();
    assert_eq!((stats.permitted_total, stats.rejected_total), (5, 0));
    assert_eq!(stats.fallback_decisions_total, 5);
    // One after another, each check is the probe that finds Redis still
    // gone.
    assert_eq!(stats.backend_errors.total(), 5);
    assert!(!stats.backend_available);
}

#[tokio::test]
async fn deny_fallback_refuses_everything_with_a_retry_after() {
    // 6 per minute: T = 10 s.
    let limiter = limiter(RedisFallback::Deny, 6, 6);
    for _ in 0..3 {
        let decision = limiter.check(b"alice").await;
        assert!(!decision.allowed);
        assert_eq!(decision.remaining, 0);
        assert_eq!(decision.retry_after, Duration::from_secs(10));
    }
    let stats = limiter.stats();
    assert_eq!((stats.permitted_total, stats.rejected_total), (0, 3));
    assert_eq!(stats.fallback_decisions_total, 3);
    assert_eq!(stats.backend_errors.total(), 3);
}

#[tokio::test]
async fn local_fallback_enforces_the_limit_divided_by_replicas_exactly() {
    // Burst 4 shared by 2 replicas: 2 each while Redis is down.
    let limiter = limiter(RedisFallback::Local { replicas: 2 }, 4, 4);
    let first = limiter.check(b"alice").await;
    assert!(first.allowed);
    assert_eq!((first.limit, first.remaining), (2, 1));
    assert!(limiter.check(b"alice").await.allowed);
    let refused = limiter.check(b"alice").await;
    assert!(!refused.allowed);
    // 4 per minute over 2 replicas: one permit per 30 s on each.
    // (less the time the checks took).
    assert!(refused.retry_after <= Duration::from_secs(30));
    assert!(refused.retry_after > Duration::from_secs(29));
    // Keys keep their own budgets in the fallback too.
    assert!(limiter.check(b"bob").await.allowed);
    assert!(limiter.check(b"bob").await.allowed);
    assert!(!limiter.check(b"bob").await.allowed);
    let stats = limiter.stats();
    assert_eq!((stats.permitted_total, stats.rejected_total), (4, 2));
    assert_eq!(stats.fallback_decisions_total, 6);
    assert!(!limiter.backend_available());
}

#[tokio::test]
async fn local_fallback_rounds_a_small_burst_up_to_one() {
    let limiter = limiter(RedisFallback::Local { replicas: 10 }, 3, 3);
    assert!(limiter.check(b"k").await.allowed);
    assert!(!limiter.check(b"k").await.allowed);
}

#[tokio::test]
async fn while_redis_is_down_one_check_at_a_time_probes_it() {
    let limiter = limiter(RedisFallback::Allow, 1, 1);
    limiter.check(b"first").await;
    assert!(!limiter.backend_available());
    let before = limiter.stats().backend_errors.total();
    // On this current-thread runtime every task runs until its first wait:
    // the first takes the probe, all others find it taken.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let limiter = limiter.clone();
        tasks.spawn(async move { limiter.check(b"k").await.allowed });
    }
    while let Some(allowed) = tasks.join_next().await {
        assert!(allowed.unwrap());
    }
    let stats = limiter.stats();
    assert_eq!(stats.backend_errors.total() - before, 1);
    assert_eq!(stats.fallback_decisions_total, 21);
}

#[tokio::test]
async fn the_outage_is_logged_once_not_per_request() {
    let logs = LogCount::default();
    let _guard = logs.install();
    let limiter = limiter(RedisFallback::Allow, 1, 1);
    for _ in 0..4 {
        limiter.check(b"alice").await;
    }
    assert_eq!(limiter.stats().backend_errors.total(), 4);
    assert_eq!((logs.warnings(), logs.infos()), (1, 0));
}

#[tokio::test]
async fn a_short_budget_bounds_each_check() {
    let limiter = DistributedRateLimiter::builder("budget")
        .redis_url(closed_port_url())
        .timeout(Duration::from_millis(5))
        .fallback(RedisFallback::Deny)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        assert!(!limiter.check(b"k").await.allowed);
    }
    // Three checks of at most 5 ms each (plus scheduling), never the
    // manager's connect timeouts and retries.
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn the_builder_rejects_unworkable_settings() {
    let builder = || DistributedRateLimiter::builder("bad").redis_url(closed_port_url());
    let field = |result: Result<DistributedRateLimiter, cortex_resilience::ConfigError>| {
        let error = result.unwrap_err();
        assert_eq!(
            (error.policy, error.name.as_str()),
            ("DistributedRateLimiter", "bad")
        );
        error.field
    };
    assert_eq!(
        field(builder().permits(0, Duration::from_secs(1)).build()),
        "permits"
    );
    assert_eq!(
        field(builder().permits(1, Duration::ZERO).build()),
        "period"
    );
    assert_eq!(field(builder().burst(0).build()), "burst");
    assert_eq!(field(builder().timeout(Duration::ZERO).build()), "timeout");
    assert_eq!(
        field(
            builder()
                .fallback(RedisFallback::Local { replicas: 0 })
                .build()
        ),
        "fallback"
    );
    assert_eq!(
        field(
            builder()
                .permits(1, Duration::from_secs(3600 * 24 * 365 * 40))
                .build()
        ),
        "period"
    );
    assert_eq!(
        field(DistributedRateLimiter::builder("bad").build()),
        "redis_url"
    );
    assert_eq!(
        field(
            DistributedRateLimiter::builder("bad")
                .redis_url("http://x")
                .build()
        ),
        "redis_url"
    );
}

#[test]
fn building_from_a_url_needs_a_tokio_runtime() {
    let error = DistributedRateLimiter::builder("no-runtime")
        .redis_url(closed_port_url())
        .build()
        .unwrap_err();
    assert_eq!(error.field, "redis_url");
}

fn request(key: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/");
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn http_layer_answers_a_refusal_with_a_429_problem_and_headers() {
    let limiter = limiter(RedisFallback::Deny, 6, 3);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(limiter.http_layer(GlobalKey));
    let response = app.oneshot(request(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers["retry-after"], "10");
    assert_eq!(headers["ratelimit-limit"], "3");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["ratelimit-reset"], "10");
    assert_eq!(
        response.extensions().get::<PolicyRejection>(),
        Some(&PolicyRejection::RateLimited)
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["policy"], "rate_limiter");
    assert_eq!(problem["retry_after"], 10);
}

#[tokio::test]
async fn http_layer_limits_each_key_and_puts_headers_on_allowed_responses() {
    let limiter = limiter(RedisFallback::Local { replicas: 1 }, 2, 2);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(limiter.http_layer(HeaderKey::new("x-api-key".parse().unwrap())));
    let first = app.clone().oneshot(request(Some("alice"))).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["ratelimit-limit"], "2");
    assert_eq!(first.headers()["ratelimit-remaining"], "1");
    let body = first.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    let second = app.clone().oneshot(request(Some("alice"))).await.unwrap();
    assert_eq!(second.headers()["ratelimit-remaining"], "0");
    let third = app.clone().oneshot(request(Some("alice"))).await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.headers()["retry-after"], "30");

    // Bob has his own budget; requests without a key share one.
    let bob = app.clone().oneshot(request(Some("bob"))).await.unwrap();
    assert_eq!(bob.status(), StatusCode::OK);
    for _ in 0..2 {
        let anonymous = app.clone().oneshot(request(None)).await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::OK);
    }
    let anonymous = app.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn http_layer_can_leave_allowed_responses_alone() {
    let limiter = limiter(RedisFallback::Allow, 2, 2);
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(limiter.http_layer(GlobalKey).headers_on_success(false));
    let response = app.oneshot(request(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("ratelimit-limit"));
}

#[tokio::test]
async fn metrics_count_backend_errors_fallbacks_and_calls_once_per_name() {
    use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
    use cortex_resilience::RateLimiter;

    let distributed = limiter(RedisFallback::Local { replicas: 1 }, 1, 1);
    let metrics = MetricsRegistry::new();
    distributed.register_metrics(&metrics).unwrap();
    distributed.clone().register_metrics(&metrics).unwrap();
    distributed.check(b"k").await;
    distributed.check(b"k").await;
    let text = metrics.encode(Format::Prometheus);
    let errors = distributed.stats().backend_errors;
    for (kind, count) in [
        ("timeout", errors.timeout),
        ("connection", errors.connection),
        ("other", errors.other),
    ] {
        let series = format!(
            r#"cortex_ratelimiter_backend_errors_total{{name="outage",kind="{kind}"}} {count}"#
        );
        assert!(text.contains(&series), "{series} in\n{text}");
    }
    assert_eq!(errors.total(), 2);
    for series in [
        r#"cortex_ratelimiter_backend_up{name="outage"} 0"#,
        r#"cortex_ratelimiter_fallback_decisions_total{name="outage"} 2"#,
        r#"cortex_ratelimiter_calls_total{name="outage",kind="permitted"} 1"#,
        r#"cortex_ratelimiter_calls_total{name="outage",kind="rejected"} 1"#,
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }

    // A local limiter of the same name keeps the calls series; the
    // backend series stay.
    let local = RateLimiter::builder("outage").build().unwrap();
    local.register_metrics(&metrics).unwrap();
    let text = metrics.encode(Format::Prometheus);
    assert_eq!(
        text.matches(r#"cortex_ratelimiter_calls_total{name="outage",kind="permitted"}"#)
            .count(),
        1
    );
    assert!(text.contains(r#"cortex_ratelimiter_calls_total{name="outage",kind="permitted"} 0"#));
    assert!(text.contains(r#"cortex_ratelimiter_backend_up{name="outage"} 0"#));
}
