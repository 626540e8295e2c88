//! `CortexBuilder::paths` tells the truth about what `mount` serves, and
//! every failure `mount` can meet comes back as the typed `Error` it
//! documents.
#![cfg(all(feature = "metrics", feature = "health", feature = "resilience"))]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex::prelude::*;
use http::{Request, StatusCode, header};
use tower::ServiceExt;

fn routes() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

async fn status(app: &Router, path: &str) -> StatusCode {
    let request = Request::get(path)
        .header(header::AUTHORIZATION, "Bearer t0ken")
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn paths_lists_every_endpoint_mount_serves_in_merge_order() {
    let builder = Cortex::builder()
        .metrics(MetricsRegistry::new())
        .metrics_path("/internal/metrics")
        .metrics_bearer_token("t0ken")
        .resilience(PolicyRegistry::new())
        .health(HealthRegistry::new());
    let paths = builder.paths();
    assert_eq!(
        paths,
        [
            "/health",
            "/health/live",
            "/livez",
            "/health/ready",
            "/readyz",
            "/health/startup",
            "/resilience",
            "/internal/metrics",
        ]
    );
    let app = builder.mount(routes()).unwrap();
    for path in &paths {
        assert_eq!(status(&app, path).await, StatusCode::OK, "{path}");
    }
    assert_eq!(status(&app, "/metrics").await, StatusCode::NOT_FOUND);
}

#[test]
fn an_unconfigured_builder_serves_no_paths() {
    assert!(Cortex::builder().paths().is_empty());
    // Metrics settings alone configure nothing to serve.
    assert!(
        Cortex::builder()
            .metrics_path("/m")
            .metrics_bearer_token("t")
            .paths()
            .is_empty()
    );
}

#[tokio::test]
async fn a_taken_http_metrics_name_is_a_typed_error() {
    let metrics = MetricsRegistry::new();
    metrics
        .gauge("http_server_request_duration_seconds", "Taken by a gauge.")
        .unwrap();
    let error = Cortex::builder()
        .metrics(metrics)
        .process_metrics(false)
        .mount(routes())
        .unwrap_err();
    assert!(
        matches!(&error, cortex::Error::Metrics(MetricsError::Conflict { name, .. })
            if name == "http_server_request_duration_seconds"),
        "{error:?}"
    );
}

#[cfg(feature = "actor")]
#[tokio::test]
async fn a_taken_actors_check_name_is_a_typed_error() {
    let health = HealthRegistry::new();
    health
        .register("actors", health_fn(|| async { HealthCheckResult::up() }))
        .unwrap();
    let error = Cortex::builder()
        .health(health)
        .actors(ActorSystem::new("facade"))
        .mount(routes())
        .unwrap_err();
    assert!(matches!(error, cortex::Error::Health(_)), "{error:?}");
    assert!(error.to_string().contains("actors"), "{error}");
}

#[cfg(feature = "actor")]
#[tokio::test]
async fn actors_without_health_or_metrics_mount_nothing_and_fail_nothing() {
    let app = Cortex::builder()
        .actors(ActorSystem::new("facade"))
        .mount(routes())
        .unwrap();
    assert_eq!(status(&app, "/hello").await, StatusCode::OK);
    assert_eq!(status(&app, "/health").await, StatusCode::NOT_FOUND);
}
