//! The observability contract: `RegisterMetrics` for registries, single
//! policies and pipelines, and the `/resilience` endpoint.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
use cortex_resilience::{
    Bulkhead, CircuitBreaker, Pipeline, PolicyRegistry, RateLimiter, Retry, SlidingWindow, Timeout,
};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The lines of `text` that are samples of `family` (any suffix).
fn samples<'t>(text: &'t str, family: &str) -> Vec<&'t str> {
    text.lines()
        .filter(|line| !line.starts_with('#') && line.starts_with(family))
        .collect()
}

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::builder(name)
        .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 1 })
        .build()
        .unwrap()
}

#[test]
fn registering_twice_adds_no_series() {
    let policies = PolicyRegistry::new();
    policies.register_circuit_breaker(breaker("db")).unwrap();
    let metrics = MetricsRegistry::new();
    policies.register_metrics(&metrics).unwrap();
    let once = metrics.encode(Format::Prometheus);
    policies.register_metrics(&metrics).unwrap();
    policies.clone().register_metrics(&metrics).unwrap();
    let twice = metrics.encode(Format::Prometheus);
    assert_eq!(once, twice);
    assert_eq!(
        samples(&twice, "cortex_circuitbreaker_state{name=\"db\"").len(),
        6
    );
}

#[tokio::test]
async fn policies_registered_after_the_registry_are_exported() {
    let policies = PolicyRegistry::new();
    let metrics = MetricsRegistry::new();
    policies.register_metrics(&metrics).unwrap();
    let late = breaker("late");
    policies.register_circuit_breaker(late.clone()).unwrap();
    let _ = late.execute(|| async { Err::<(), _>("boom") }).await;
    let text = metrics.encode(Format::Prometheus);
    assert!(
        text.contains(r#"cortex_circuitbreaker_state{name="late",state="open"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"cortex_circuitbreaker_calls_total{name="late",kind="failed"} 1"#));
}

#[tokio::test]
async fn single_policies_share_the_families_and_are_labelled_by_name() {
    let metrics = MetricsRegistry::new();
    let db = breaker("db");
    let cache = breaker("cache");
    db.register_metrics(&metrics).unwrap();
    cache.register_metrics(&metrics).unwrap();
    Bulkhead::builder("uploads")
        .max_concurrent_calls(4)
        .build()
        .unwrap()
        .register_metrics(&metrics)
        .unwrap();
    let retry = Retry::builder("fetch").build().unwrap();
    retry.register_metrics(&metrics).unwrap();
    let limiter = RateLimiter::builder("api").build().unwrap();
    limiter.register_metrics(&metrics).unwrap();
    RateLimiter::builder("per-client")
        .build_keyed::<u32>()
        .unwrap()
        .register_metrics(&metrics)
        .unwrap();
    Timeout::builder("slow")
        .timeout_duration(Duration::from_secs(1))
        .build()
        .unwrap()
        .register_metrics(&metrics)
        .unwrap();

    let _ = db.execute(|| async { Err::<(), _>("down") }).await;
    assert_eq!(retry.execute(|| async { Ok::<_, ()>(1) }).await, Ok(1));
    assert!(limiter.try_acquire().is_ok());

    let text = metrics.encode(Format::Prometheus);
    // One family header each, whatever the number of instances.
    assert_eq!(
        text.matches("# TYPE cortex_circuitbreaker_state ").count(),
        1
    );
    assert!(text.contains(r#"cortex_circuitbreaker_state{name="db",state="open"} 1"#));
    assert!(text.contains(r#"cortex_circuitbreaker_state{name="cache",state="closed"} 1"#));
    assert!(text.contains(r#"cortex_bulkhead_max_allowed_concurrent_calls{name="uploads"} 4"#));
    assert!(
        text.contains(
            r#"cortex_retry_calls_total{name="fetch",kind="successful_without_retry"} 1"#
        )
    );
    assert!(text.contains(r#"cortex_ratelimiter_calls_total{name="api",kind="permitted"} 1"#));
    assert!(text.contains(r#"cortex_ratelimiter_available_permissions{name="per-client"} 50"#));
    assert!(text.contains(r#"cortex_timeout_limit_seconds{name="slow"} 1"#));
    assert!(text.contains(r#"cortex_timeout_timed_out_calls_total{name="slow"} 0"#));
}

#[test]
fn a_policy_in_a_registry_and_registered_alone_is_exported_once() {
    let policies = PolicyRegistry::new();
    let db = breaker("db");
    policies.register_circuit_breaker(db.clone()).unwrap();
    let metrics = MetricsRegistry::new();
    db.register_metrics(&metrics).unwrap();
    policies.register_metrics(&metrics).unwrap();
    let text = metrics.encode(Format::Prometheus);
    assert_eq!(
        samples(
            &text,
            r#"cortex_circuitbreaker_state{name="db",state="closed"}"#
        )
        .len(),
        1
    );
}

#[test]
fn two_instances_with_one_name_export_the_first_registered() {
    let metrics = MetricsRegistry::new();
    let first = Bulkhead::builder("pool")
        .max_concurrent_calls(1)
        .build()
        .unwrap();
    let second = Bulkhead::builder("pool")
        .max_concurrent_calls(2)
        .build()
        .unwrap();
    first.register_metrics(&metrics).unwrap();
    second.register_metrics(&metrics).unwrap();
    let text = metrics.encode(Format::Prometheus);
    assert_eq!(
        samples(&text, "cortex_bulkhead_max_allowed_concurrent_calls{").len(),
        1
    );
    assert!(text.contains(r#"cortex_bulkhead_max_allowed_concurrent_calls{name="pool"} 1"#));
}

#[test]
fn each_metrics_registry_exports_only_what_was_registered_with_it() {
    let a = MetricsRegistry::new();
    let b = MetricsRegistry::new();
    breaker("only-a").register_metrics(&a).unwrap();
    breaker("only-b").register_metrics(&b).unwrap();
    let (a, b) = (a.encode(Format::Prometheus), b.encode(Format::Prometheus));
    assert!(a.contains("only-a") && !a.contains("only-b"));
    assert!(b.contains("only-b") && !b.contains("only-a"));
}

#[test]
fn a_pipeline_exports_every_policy_it_holds() {
    let pipeline = Pipeline::builder()
        .rate_limiter(RateLimiter::builder("p").build().unwrap())
        .bulkhead(Bulkhead::builder("p").build().unwrap())
        .timeout(
            Timeout::builder("p-total")
                .timeout_duration(Duration::from_secs(2))
                .build()
                .unwrap(),
        )
        .retry(Retry::builder("p").build().unwrap())
        .circuit_breaker(breaker("p"))
        .attempt_timeout(
            Timeout::builder("p-attempt")
                .timeout_duration(Duration::from_secs(1))
                .build()
                .unwrap(),
        )
        .build();
    let metrics = MetricsRegistry::new();
    pipeline.register_metrics(&metrics).unwrap();
    let text = metrics.encode(Format::Prometheus);
    for sample in [
        r#"cortex_ratelimiter_available_permissions{name="p"}"#,
        r#"cortex_bulkhead_available_concurrent_calls{name="p"}"#,
        r#"cortex_retry_calls_total{name="p",kind="failed_with_retry"}"#,
        r#"cortex_circuitbreaker_state{name="p",state="closed"} 1"#,
        r#"cortex_timeout_limit_seconds{name="p-total"} 2"#,
        r#"cortex_timeout_timed_out_calls_total{name="p-attempt"} 0"#,
    ] {
        assert!(text.contains(sample), "{sample} missing from\n{text}");
    }
}

#[test]
fn counters_are_exposed_with_total() {
    let policies = PolicyRegistry::new();
    policies.register_circuit_breaker(breaker("db")).unwrap();
    policies
        .register_bulkhead(Bulkhead::builder("db").build().unwrap())
        .unwrap();
    policies
        .register_retry(Retry::builder("db").build().unwrap())
        .unwrap();
    policies
        .register_rate_limiter(RateLimiter::builder("db").build().unwrap())
        .unwrap();
    policies
        .register_timeout(
            Timeout::builder("db")
                .timeout_duration(Duration::from_secs(1))
                .build()
                .unwrap(),
        )
        .unwrap();
    let metrics = MetricsRegistry::new();
    policies.register_metrics(&metrics).unwrap();
    let text = metrics.encode(Format::OpenMetrics);
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.strip_suffix(" counter"))
        .filter(|name| name.starts_with("cortex_") && *name != "cortex_metrics_overflow")
        .collect();
    assert!(counters.len() >= 5, "{counters:?}");
    for family in counters {
        let samples = samples(&text, family);
        assert!(!samples.is_empty(), "{family} has no samples");
        for sample in samples {
            assert!(
                sample.starts_with(&format!("{family}_total")),
                "{sample} is a counter sample without _total"
            );
        }
    }
}

#[tokio::test]
async fn the_router_serves_all_stats_as_json_at_resilience() {
    let policies = PolicyRegistry::new();
    let db = breaker("db");
    policies.register_circuit_breaker(db.clone()).unwrap();
    policies
        .register_bulkhead(
            Bulkhead::builder("db")
                .max_concurrent_calls(3)
                .build()
                .unwrap(),
        )
        .unwrap();
    db.transition_to_forced_open();
    let app: axum::Router = policies.router();

    let response = app
        .clone()
        .oneshot(Request::get("/resilience").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["circuit_breakers"][0]["name"], "db");
    assert_eq!(stats["circuit_breakers"][0]["state"], "forced_open");
    assert_eq!(stats["bulkheads"][0]["max_concurrent_calls"], 3);
    assert_eq!(stats["retries"], serde_json::json!([]));
    assert_eq!(stats, serde_json::to_value(policies.all_stats()).unwrap());

    let other = app
        .oneshot(Request::get("/resilience/db").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}
