//! The facade's promises: one pass mounts every configured component,
//! setters do not depend on their order, and failures are the typed errors
//! `Error` lists.
#![cfg(all(
    feature = "metrics",
    feature = "health",
    feature = "trace",
    feature = "compress",
    feature = "resilience"
))]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex::prelude::*;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get_text(app: &Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn routes() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

#[tokio::test]
async fn mounts_every_component_in_one_pass() {
    let metrics = MetricsRegistry::new();
    let health = HealthRegistry::new();
    let policies = PolicyRegistry::new();
    policies
        .register_circuit_breaker(CircuitBreaker::builder("payments").build().unwrap())
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    #[allow(unused_mut)]
    let mut builder = Cortex::builder()
        .metrics(metrics.clone())
        .health(health.clone())
        .trace(HttpTraceLayer::new(&provider))
        .compression(CompressionLayer::new())
        .decompression(DecompressionLayer::new())
        .resilience(policies);
    #[cfg(feature = "actor")]
    {
        builder = builder.actors(ActorSystem::new("facade-test"));
    }
    #[cfg(feature = "workers")]
    {
        builder = builder.workers(WorkerPool::builder("facade-test").build().unwrap());
    }
    #[cfg(feature = "wasm")]
    {
        let module = WasmEngine::new().compile("(module)").unwrap();
        builder = builder.wasm(WasmPool::new(module, WorkerPool::builder("facade-wasm")).unwrap());
    }
    let app = builder.mount(routes()).unwrap();

    assert_eq!(
        get_text(&app, "/hello", &[]).await,
        (StatusCode::OK, "hello".to_owned())
    );
    let (status, body) = get_text(&app, "/health?verbose", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"resilience\""), "{body}");
    #[cfg(feature = "actor")]
    assert!(body.contains("\"actors\""), "{body}");
    #[cfg(feature = "workers")]
    assert!(body.contains("\"workers:facade-test\""), "{body}");
    #[cfg(feature = "wasm")]
    assert!(body.contains("\"wasm:facade-wasm\""), "{body}");
    // A wrong method on a Cortex endpoint: 405 problem+json, `Allow` kept.
    let response = app
        .clone()
        .oneshot(Request::delete("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert!(response.headers().contains_key(header::ALLOW));
    let (status, body) = get_text(&app, "/resilience", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("payments"), "{body}");

    let (status, text) = get_text(&app, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    for family in [
        "http_server_request_duration_seconds",
        "process_cpu_seconds_total",
        "cortex_health_check_status",
        "cortex_compression_responses_total",
        "cortex_circuitbreaker_state",
    ] {
        assert!(text.contains(family), "missing {family}:\n{text}");
    }
    #[cfg(feature = "actor")]
    assert!(text.contains("cortex_actor_"), "{text}");
    #[cfg(feature = "workers")]
    assert!(
        text.contains("cortex_worker_workers{pool=\"facade-test\"}"),
        "{text}"
    );
    #[cfg(feature = "wasm")]
    assert!(
        text.contains("cortex_wasm_calls_total{pool=\"facade-wasm\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_settings_do_not_depend_on_call_order() {
    let metrics = MetricsRegistry::new();
    // Path, token and process switch before `.metrics(...)`: they used to
    // be silently dropped.
    let app = Cortex::builder()
        .metrics_path("/internal/metrics")
        .metrics_bearer_token("s3cret")
        .process_metrics(false)
        .metrics(metrics)
        .mount(routes())
        .unwrap();
    assert_eq!(
        get_text(&app, "/metrics", &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_text(&app, "/internal/metrics", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, text) = get_text(
        &app,
        "/internal/metrics",
        &[(header::AUTHORIZATION.as_str(), "Bearer s3cret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text.contains("process_"), "{text}");
}

#[tokio::test]
async fn unmatched_requests_are_measured_too() {
    let metrics = MetricsRegistry::new();
    let app = Cortex::builder()
        .metrics(metrics.clone())
        .mount(routes())
        .unwrap();
    assert_eq!(
        get_text(&app, "/nowhere", &[]).await.0,
        StatusCode::NOT_FOUND
    );
    let text = metrics.encode(Format::Prometheus);
    assert!(text.contains("http_response_status_code=\"404\""), "{text}");
}

#[tokio::test]
async fn a_taken_metric_name_is_a_typed_error() {
    let metrics = MetricsRegistry::new();
    metrics
        .counter("cortex_health_check_status", "Taken by a counter.")
        .unwrap();
    let error = Cortex::builder()
        .metrics(metrics)
        .health(HealthRegistry::new())
        .mount(routes())
        .unwrap_err();
    assert!(matches!(error, cortex::Error::Metrics(_)), "{error:?}");
}

#[tokio::test]
async fn a_taken_check_name_is_a_typed_error() {
    let health = HealthRegistry::new();
    health
        .register(
            "resilience",
            health_fn(|| async { HealthCheckResult::up() }),
        )
        .unwrap();
    let error = Cortex::builder()
        .health(health)
        .resilience(PolicyRegistry::new())
        .mount(routes())
        .unwrap_err();
    assert!(matches!(error, cortex::Error::Health(_)), "{error:?}");
}

#[tokio::test]
async fn registering_components_twice_keeps_one_set_of_series() {
    let metrics = MetricsRegistry::new();
    let health = HealthRegistry::new();
    let first = Cortex::builder()
        .metrics(metrics.clone())
        .health(health.clone())
        .mount(routes())
        .unwrap();
    // A second service on the same registries (say, an admin listener).
    let second = Cortex::builder()
        .metrics(metrics.clone())
        .health(health)
        .mount(routes())
        .unwrap();
    get_text(&first, "/health", &[]).await;
    get_text(&second, "/health", &[]).await;
    let text = metrics.encode(Format::Prometheus);
    assert_eq!(
        text.matches("# HELP process_cpu_seconds_total").count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches("# HELP cortex_health_check_status").count(),
        1,
        "{text}"
    );
}

#[cfg(feature = "serve")]
#[tokio::test]
async fn a_server_is_observed_and_its_shutdown_drains_readiness() {
    use std::time::Duration;
    let metrics = MetricsRegistry::new();
    let health = HealthRegistry::new();
    let server = Server::new()
        .drain_delay(Duration::from_millis(500))
        .shutdown_timeout(Duration::from_millis(100));
    let app = Cortex::builder()
        .metrics(metrics.clone())
        .health(health.clone())
        .server(server.clone())
        .mount(routes())
        .unwrap();
    assert!(
        metrics
            .encode(Format::Prometheus)
            .contains("cortex_server_connections ")
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, app, async move {
        let _ = stopped.await;
    }));
    assert_eq!(
        health.check_probe(Probe::Readiness).await.status,
        HealthStatus::Up
    );
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        health.check_probe(Probe::Readiness).await.status,
        HealthStatus::Down
    );
    let report = serving.await.unwrap();
    assert_eq!(report.aborted, 0, "{report:?}");
}
