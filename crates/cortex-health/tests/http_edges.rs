//! The probe endpoints at the HTTP edges: HEAD, methods they do not serve,
//! details always shown, checks on several probes, and degraded results.

use axum::Router;
use axum::body::Body;
use cortex_health::{
    CheckOptions, HEALTH_JSON, HealthCheckResult, HealthRegistry, Probe, ShowDetails, health_fn,
};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call(
    health: &HealthRegistry,
    method: Method,
    path: &str,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let app: Router = health.router();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

fn down(message: &'static str) -> impl cortex_health::HealthCheck {
    health_fn(move || async move { HealthCheckResult::down(message) })
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let health = HealthRegistry::new();
    health.register("db", down("refused")).unwrap();
    let (status, headers, body) = call(&health, Method::HEAD, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::CONTENT_TYPE], HEALTH_JSON);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(body, serde_json::Value::Null, "no body on HEAD");
}

#[tokio::test]
async fn methods_other_than_get_and_head_are_refused_without_running_checks() {
    let health = HealthRegistry::new();
    health.register("db", down("refused")).unwrap();
    for method in [
        Method::POST,
        Method::DELETE,
        Method::from_bytes(b"PURGE").unwrap(),
    ] {
        let (status, headers, _) = call(&health, method.clone(), "/health").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow = headers[header::ALLOW].to_str().unwrap();
        assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
    }
    assert_eq!(health.run_count("db").unwrap(), 0);
}

#[tokio::test]
async fn always_shown_details_need_no_verbose_query() {
    let health = HealthRegistry::builder()
        .show_details(ShowDetails::Always)
        .build();
    assert_eq!(health.show_details(), ShowDetails::Always);
    health.register("db", down("connection refused")).unwrap();
    let (_, _, body) = call(&health, Method::GET, "/health").await;
    assert_eq!(body["checks"]["db"][0]["output"], "connection refused");
}

#[tokio::test]
async fn a_check_on_several_probes_answers_each_of_them_and_no_other() {
    let health = HealthRegistry::new();
    health
        .register_with(
            "event_loop",
            down("blocked for 3 s"),
            CheckOptions::new().probes([Probe::Liveness, Probe::Readiness]),
        )
        .unwrap();
    for path in ["/livez", "/health/live", "/readyz", "/health/ready"] {
        let (status, _, body) = call(&health, Method::GET, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(body["status"], "fail", "{path}");
    }
    let (status, _, _) = call(&health, Method::GET, "/health/startup").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_degraded_check_reports_warn_but_still_answers_200() {
    let health = HealthRegistry::builder()
        .show_details(ShowDetails::Always)
        .build();
    health
        .register(
            "disk",
            health_fn(|| async { HealthCheckResult::degraded("93% full") }),
        )
        .unwrap();
    let (status, _, body) = call(&health, Method::GET, "/health/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "warn");
    assert_eq!(body["checks"]["disk"][0]["status"], "warn");
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn a_down_check_exports_a_status_of_zero() {
    use cortex_metrics::RegisterMetrics;
    let metrics = cortex_metrics::MetricsRegistry::new();
    let health = HealthRegistry::new();
    health.register_metrics(&metrics).unwrap();
    health.register("db", down("refused")).unwrap();
    health.check_all().await;
    let text = metrics.encode(cortex_metrics::Format::Prometheus);
    assert!(
        text.contains("cortex_health_check_status{check=\"db\"} 0.0\n"),
        "{text}"
    );
}
