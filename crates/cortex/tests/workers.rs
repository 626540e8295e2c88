//! `CortexBuilder::workers`: a worker pool mounted through the facade shows
//! its series in `/metrics` and its `workers:<pool>` check in `/health`,
//! like every other component; its refusals answer as problem+json.
#![cfg(feature = "workers")]

use std::sync::{Arc, Barrier};

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cortex::prelude::*;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn routes() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

async fn get_response(app: &Router, uri: &str) -> (StatusCode, http::HeaderMap, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn pool(name: &str) -> WorkerPool {
    WorkerPool::builder(name)
        .workers(2)
        .queue_capacity(4)
        .build()
        .unwrap()
}

#[cfg(all(feature = "metrics", feature = "health"))]
#[tokio::test]
async fn a_pool_shows_its_series_and_its_check() {
    let metrics = MetricsRegistry::new();
    let health = HealthRegistry::new();
    let compute = pool("facade");
    let app = Cortex::builder()
        .metrics(metrics.clone())
        .health(health.clone())
        .workers(compute.clone())
        .mount(routes())
        .unwrap();
    assert_eq!(compute.submit(|| 6 * 7).await.unwrap().await, Ok(42));

    let (status, _, body) = get_response(&app, "/health?verbose").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"workers:facade\""), "{body}");

    // Values as prefixes: scrape-time gauges may be written `2` or `2.0`.
    let (status, _, text) = get_response(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        r#"cortex_worker_workers{pool="facade"} 2"#,
        r#"cortex_worker_queue_capacity{pool="facade"} 4"#,
        r#"cortex_worker_jobs_total{pool="facade",outcome="completed"} 1"#,
        // The run histogram is observed just after the caller is answered,
        // so its count may still be 0 here.
        r#"cortex_worker_run_seconds_count{pool="facade"} "#,
        r#"cortex_health_check_status{check="workers:facade"} 1"#,
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }

    // A pool that shut down takes readiness with it.
    let report = compute
        .shutdown(cortex::workers::Shutdown::Graceful {
            timeout: std::time::Duration::from_secs(5),
        })
        .await;
    assert!(report.drained, "{report:?}");
    let (status, _, body) = get_response(&app, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[cfg(all(feature = "metrics", feature = "health"))]
#[tokio::test]
async fn several_pools_each_get_their_series_and_check() {
    let metrics = MetricsRegistry::new();
    let health = HealthRegistry::new();
    let _app = Cortex::builder()
        .metrics(metrics.clone())
        .health(health.clone())
        .workers(pool("hashing"))
        .workers(pool("images"))
        .mount(routes())
        .unwrap();
    assert_eq!(health.names(), ["workers:hashing", "workers:images"]);
    let text = metrics.encode(Format::Prometheus);
    for name in ["hashing", "images"] {
        let series = format!("cortex_worker_workers{{pool=\"{name}\"}} 2");
        assert!(text.contains(&series), "missing {series}:\n{text}");
    }
    assert_eq!(
        text.matches("# HELP cortex_worker_workers ").count(),
        1,
        "{text}"
    );
}

#[tokio::test]
async fn two_pools_of_one_name_are_a_typed_error() {
    let error = Cortex::builder()
        .workers(pool("twin"))
        .workers(pool("twin"))
        .mount(routes())
        .unwrap_err();
    assert!(
        matches!(&error, cortex::Error::DuplicatePool(name) if name == "twin"),
        "{error:?}"
    );
    assert!(error.to_string().contains("twin"), "{error}");
}

#[cfg(feature = "health")]
#[tokio::test]
async fn a_taken_workers_check_name_is_a_typed_error() {
    let health = HealthRegistry::new();
    health
        .register(
            "workers:compute",
            health_fn(|| async { HealthCheckResult::up() }),
        )
        .unwrap();
    let error = Cortex::builder()
        .health(health)
        .workers(pool("compute"))
        .mount(routes())
        .unwrap_err();
    assert!(matches!(error, cortex::Error::Health(_)), "{error:?}");
    assert!(error.to_string().contains("workers:compute"), "{error}");
}

#[cfg(feature = "health")]
#[tokio::test]
async fn a_pool_name_that_is_no_check_name_is_a_typed_error() {
    let error = Cortex::builder()
        .health(HealthRegistry::new())
        .workers(pool("not a check name"))
        .mount(routes())
        .unwrap_err();
    assert!(matches!(error, cortex::Error::Health(_)), "{error:?}");
}

#[tokio::test]
async fn a_pool_without_health_or_metrics_mounts_nothing_and_fails_nothing() {
    let builder = Cortex::builder().workers(pool("quiet"));
    assert!(builder.paths().is_empty());
    let app = builder.mount(routes()).unwrap();
    assert_eq!(get_response(&app, "/hello").await.0, StatusCode::OK);
    assert_eq!(get_response(&app, "/health").await.0, StatusCode::NOT_FOUND);
}

/// `try_submit` in a handler: a full queue answers 429 problem+json with
/// `Retry-After` through the re-exported `IntoResponse`.
#[tokio::test]
async fn a_full_pool_answers_429_problem_json() {
    let compute = WorkerPool::builder("tiny")
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let busy = compute
        .try_submit(move || {
            s.wait();
            r.wait();
        })
        .unwrap();
    started.wait();
    let queued = compute.try_submit(|| 1).unwrap();
    let handler_pool = compute.clone();
    let app = Cortex::builder()
        .workers(compute.clone())
        .mount(Router::new().route(
            "/job",
            get(move || {
                let pool = handler_pool.clone();
                async move {
                    match pool.try_submit(|| 2) {
                        Ok(job) => match job.await {
                            Ok(value) => value.to_string().into_response(),
                            Err(error) => error.into_response(),
                        },
                        Err(refused) => refused.into_response(),
                    }
                }
            }),
        ))
        .unwrap();
    let (status, headers, body) = get_response(&app, "/job").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert!(body.contains("\"status\":429"), "{body}");

    release.wait();
    busy.await.unwrap();
    assert_eq!(queued.await, Ok(1));
    assert_eq!(get_response(&app, "/job").await.2, "2");
    compute.shutdown_now();
    let refused: Response = compute.try_submit(|| 3).unwrap_err().into_response();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stats = compute.stats();
    assert_eq!(stats.in_flight(), 0, "{stats:?}");
    assert_eq!((stats.completed, stats.rejected), (3, 2), "{stats:?}");
}
