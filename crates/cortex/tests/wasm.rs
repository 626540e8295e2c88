//! `CortexBuilder::wasm`: a WebAssembly pool mounted through the facade
//! shows its `cortex_wasm_*` and `cortex_worker_*` series in `/metrics`
//! and its `wasm:<pool>` check in `/health`, like every other component; a
//! guest that traps or loops does not take the check down (its instance is
//! replaced); the guest's failures answer as problem+json.
#![cfg(feature = "wasm")]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cortex::prelude::*;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// An `add`, a plain trap and an endless loop.
const GUEST: &str = r#"(module
    (memory (export "memory") 1)
    (func (export "add") (param i32 i32) (result i32)
      (i32.add (local.get 0) (local.get 1)))
    (func (export "trap") unreachable)
    (func (export "spin") (loop $forever (br $forever))))"#;

/// The committed Rust image guest (RGBA filters).
const IMAGE: &[u8] = include_bytes!("../../cortex-wasm/guests/image.wasm");

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

/// A pool of `GUEST` named `name`, with a fuel budget.
fn pool(name: &str) -> WasmPool {
    let module = WasmEngine::builder()
        .fuel(1_000_000)
        .build()
        .unwrap()
        .compile(GUEST)
        .unwrap();
    WasmPool::new(
        module,
        WorkerPool::builder(name).workers(2).queue_capacity(4),
    )
    .unwrap()
}

async fn add(pool: &WasmPool, a: i32, b: i32) -> Result<i32, WasmError> {
    pool.call(move |instance| {
        let add = instance.typed_function::<(i32, i32), i32>("add")?;
        instance.call_with(|store| add.call(store, a, b))
    })
    .await
}

async fn call(pool: &WasmPool, function: &'static str) -> Result<(), WasmError> {
    pool.call(move |instance| instance.call(function, &[]).map(drop))
        .await
}

#[cfg(all(feature = "metrics", feature = "health"))]
#[tokio::test]
async fn a_pool_shows_its_series_and_its_check() {
    let metrics = MetricsRegistry::new();
    let health = HealthRegistry::new();
    let plugins = pool("plugins");
    let app = Cortex::builder()
        .metrics(metrics.clone())
        .health(health.clone())
        .wasm(plugins.clone())
        .mount(routes())
        .unwrap();
    assert_eq!(add(&plugins, 40, 2).await, Ok(42));
    assert!(matches!(
        call(&plugins, "trap").await,
        Err(WasmError::GuestTrap { .. })
    ));
    assert!(matches!(
        call(&plugins, "spin").await,
        Err(WasmError::Exhausted { .. })
    ));
    // The failed instances were replaced: the pool still answers.
    assert_eq!(add(&plugins, 1, 2).await, Ok(3));

    // Failures in guests are not failures of the pool.
    let (status, _, body) = get_response(&app, "/health?verbose").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"wasm:plugins\""), "{body}");
    assert!(!body.contains("\"workers:plugins\""), "{body}");

    // Values as prefixes: scrape-time gauges may be written `2` or `2.0`.
    let (status, _, text) = get_response(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        r#"cortex_wasm_calls_total{pool="plugins"} 4"#,
        r#"cortex_wasm_failures_total{pool="plugins",kind="trap"} 1"#,
        r#"cortex_wasm_failures_total{pool="plugins",kind="exhausted"} 1"#,
        r#"cortex_wasm_instances_replaced_total{pool="plugins"} 2"#,
        r#"cortex_wasm_instances_created_total{pool="plugins"} "#,
        r#"cortex_wasm_call_seconds_total{pool="plugins"} "#,
        r#"cortex_worker_workers{pool="plugins"} 2"#,
        r#"cortex_worker_queue_capacity{pool="plugins"} 4"#,
        r#"cortex_worker_jobs_total{pool="plugins",outcome="completed"} 4"#,
        r#"cortex_health_check_status{check="wasm:plugins"} 1"#,
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }

    // A pool that shut down takes readiness with it.
    let report = plugins
        .shutdown(cortex::workers::Shutdown::Graceful {
            timeout: Duration::from_secs(5),
        })
        .await;
    assert!(report.drained, "{report:?}");
    let (status, _, body) = get_response(&app, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[cfg(all(feature = "metrics", feature = "health"))]
#[tokio::test]
async fn wasm_and_worker_pools_each_get_their_series_and_check() {
    let metrics = MetricsRegistry::new();
    let health = HealthRegistry::new();
    let _app = Cortex::builder()
        .metrics(metrics.clone())
        .health(health.clone())
        .wasm(pool("filters"))
        .workers(WorkerPool::builder("hashing").workers(1).build().unwrap())
        .wasm(pool("plugins"))
        .mount(routes())
        .unwrap();
    assert_eq!(
        health.names(),
        // In registration order: worker pools, then wasm pools.
        ["workers:hashing", "wasm:filters", "wasm:plugins"]
    );
    let text = metrics.encode(Format::Prometheus);
    for name in ["filters", "plugins"] {
        for series in [
            format!("cortex_wasm_calls_total{{pool=\"{name}\"}} 0"),
            format!("cortex_worker_workers{{pool=\"{name}\"}} 2"),
        ] {
            assert!(text.contains(&series), "missing {series}:\n{text}");
        }
    }
    assert!(
        text.contains("cortex_worker_workers{pool=\"hashing\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("cortex_wasm_calls_total{pool=\"hashing\"}"),
        "{text}"
    );
    for family in ["cortex_wasm_calls_total", "cortex_worker_workers"] {
        assert_eq!(
            text.matches(&format!("# HELP {family} ")).count(),
            1,
            "{text}"
        );
    }
}

/// The committed image guest through a pool: grayscale of two pixels.
#[tokio::test]
async fn the_image_guest_runs_on_a_mounted_pool() {
    let module = WasmEngine::builder()
        .fuel(100_000_000)
        .deadline(Duration::from_secs(5))
        .build()
        .unwrap()
        .compile(IMAGE)
        .unwrap();
    let images = WasmPool::new(module, WorkerPool::builder("images").workers(1)).unwrap();
    let _app = Cortex::builder()
        .wasm(images.clone())
        .mount(routes())
        .unwrap();
    let rgba = vec![255, 0, 0, 7, 10, 20, 30, 255];
    let gray = images.call_bytes("grayscale", rgba).await.unwrap();
    // (77 r + 150 g + 29 b) >> 8, alpha kept.
    let luma = |r: u32, g: u32, b: u32| ((77 * r + 150 * g + 29 * b) >> 8) as u8;
    let (first, second) = (luma(255, 0, 0), luma(10, 20, 30));
    assert_eq!(gray, [first, first, first, 7, second, second, second, 255]);
    let inverted = images
        .call_bytes("invert", vec![0, 100, 255, 9])
        .await
        .unwrap();
    assert_eq!(inverted, [255, 155, 0, 9]);
}

#[tokio::test]
async fn pools_of_one_name_are_a_typed_error_across_kinds() {
    let error = Cortex::builder()
        .wasm(pool("twin"))
        .wasm(pool("twin"))
        .mount(routes())
        .unwrap_err();
    assert!(
        matches!(&error, cortex::Error::DuplicatePool(name) if name == "twin"),
        "{error:?}"
    );
    // A wasm pool and a worker pool label their series alike.
    let error = Cortex::builder()
        .workers(WorkerPool::builder("shared").build().unwrap())
        .wasm(pool("shared"))
        .mount(routes())
        .unwrap_err();
    assert!(
        matches!(&error, cortex::Error::DuplicatePool(name) if name == "shared"),
        "{error:?}"
    );
    assert!(error.to_string().contains("shared"), "{error}");
}

#[cfg(feature = "health")]
#[tokio::test]
async fn a_taken_wasm_check_name_is_a_typed_error() {
    let health = HealthRegistry::new();
    health
        .register(
            "wasm:plugins",
            health_fn(|| async { HealthCheckResult::up() }),
        )
        .unwrap();
    let error = Cortex::builder()
        .health(health)
        .wasm(pool("plugins"))
        .mount(routes())
        .unwrap_err();
    assert!(matches!(error, cortex::Error::Health(_)), "{error:?}");
    assert!(error.to_string().contains("wasm:plugins"), "{error}");
}

#[tokio::test]
async fn a_pool_without_health_or_metrics_mounts_nothing_and_fails_nothing() {
    let builder = Cortex::builder().wasm(pool("quiet"));
    assert!(builder.paths().is_empty());
    let app = builder.mount(routes()).unwrap();
    assert_eq!(get_response(&app, "/hello").await.0, StatusCode::OK);
    assert_eq!(get_response(&app, "/health").await.0, StatusCode::NOT_FOUND);
}

/// A handler that answers a guest's failure with the re-exported
/// `IntoResponse`: a trap or a spent budget is 422, a deadline 504, a
/// full queue 429 with `Retry-After`, each problem+json with a `reason`.
#[tokio::test]
async fn guest_failures_answer_problem_json() {
    let module = WasmEngine::builder()
        .fuel(1_000_000)
        .build()
        .unwrap()
        .compile(GUEST)
        .unwrap();
    let timed = WasmEngine::builder()
        .deadline(Duration::from_millis(50))
        .build()
        .unwrap()
        .compile(GUEST)
        .unwrap();
    let fueled = WasmPool::new(
        module,
        WorkerPool::builder("fueled").workers(1).queue_capacity(1),
    )
    .unwrap();
    let timed = WasmPool::new(timed, WorkerPool::builder("timed").workers(1)).unwrap();
    let (on_fuel, on_time) = (fueled.clone(), timed.clone());
    let app = Cortex::builder()
        .wasm(fueled.clone())
        .wasm(timed.clone())
        .mount(
            Router::new()
                .route(
                    "/fueled/{function}",
                    get(move |Path(function): Path<String>| {
                        let pool = on_fuel.clone();
                        async move { answer(&pool, function).await }
                    }),
                )
                .route(
                    "/timed/{function}",
                    get(move |Path(function): Path<String>| {
                        let pool = on_time.clone();
                        async move { answer(&pool, function).await }
                    }),
                ),
        )
        .unwrap();

    for (uri, status, reason) in [
        ("/fueled/trap", StatusCode::UNPROCESSABLE_ENTITY, "trap"),
        (
            "/fueled/spin",
            StatusCode::UNPROCESSABLE_ENTITY,
            "exhausted",
        ),
        ("/timed/spin", StatusCode::GATEWAY_TIMEOUT, "timed_out"),
    ] {
        let (got, headers, body) = get_response(&app, uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert!(
            body.contains(&format!("\"reason\":\"{reason}\"")),
            "{uri}: {body}"
        );
    }
    assert_eq!(get_response(&app, "/fueled/add").await.2, "ok");

    // The only worker held, the only queue place taken: 429 at once.
    let (started, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let busy = tokio::spawn({
        let pool = fueled.clone();
        async move {
            pool.call(move |_| {
                s.wait();
                r.wait();
                Ok(())
            })
            .await
        }
    });
    tokio::task::spawn_blocking(move || started.wait())
        .await
        .unwrap();
    let queued = tokio::spawn({
        let pool = fueled.clone();
        async move { add(&pool, 1, 1).await }
    });
    // Until the second call is queued, the route may take the place.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fueled.workers().stats().queue_len < 1 {
        assert!(std::time::Instant::now() < deadline, "never queued");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, headers, body) = get_response(&app, "/fueled/add").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert!(body.contains("\"reason\":\"overloaded\""), "{body}");
    tokio::task::spawn_blocking(move || release.wait())
        .await
        .unwrap();
    assert_eq!(busy.await.unwrap(), Ok(()));
    assert_eq!(queued.await.unwrap(), Ok(2));
    let stats = fueled.stats();
    assert_eq!(stats.failures.get("trap"), Some(&1), "{stats:?}");
    assert_eq!(stats.failures.get("exhausted"), Some(&1), "{stats:?}");
    assert_eq!(stats.instances_replaced, 2, "{stats:?}");
    assert_eq!(timed.stats().failures.get("timed_out"), Some(&1));
}

async fn answer(pool: &WasmPool, function: String) -> Response {
    let result = if function == "add" {
        add(pool, 2, 2).await.map(drop)
    } else {
        let function: &'static str = if function == "trap" { "trap" } else { "spin" };
        call(pool, function).await
    };
    match result {
        Ok(()) => "ok".into_response(),
        Err(error) => error.into_response(),
    }
}
