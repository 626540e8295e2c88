//! The probe endpoints across a real socket and under a probe storm.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use cortex_health::{CheckOptions, HealthCheckResult, HealthRegistry, ShowDetails, health_fn};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

async fn serve(health: HealthRegistry) -> SocketAddr {
    let app: Router = health.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn get(addr: SocketAddr, path: &str) -> (String, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (
        head.to_owned(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn failing_db(health: &HealthRegistry) {
    health
        .register(
            "db",
            health_fn(|| async {
                HealthCheckResult::down("connection to 10.1.2.3:5432 refused")
                    .with_details(serde_json::json!({"host": "10.1.2.3"}))
            }),
        )
        .unwrap();
}

#[tokio::test]
async fn probes_answer_health_json_with_the_right_status_codes() {
    let health = HealthRegistry::new();
    failing_db(&health);
    let addr = serve(health).await;

    let (head, body) = get(addr, "/health").await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(
        head.contains("content-type: application/health+json"),
        "{head}"
    );
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["db"][0]["status"], "fail");
    assert!(body["time"].as_str().unwrap().ends_with('Z'));

    for path in ["/health/live", "/livez"] {
        let (head, body) = get(addr, path).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert_eq!(body["status"], "pass");
    }
    for path in ["/health/ready", "/readyz"] {
        let (head, _) = get(addr, path).await;
        assert!(head.starts_with("HTTP/1.1 503"), "{path}: {head}");
    }
    let (head, _) = get(addr, "/health/startup").await;
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "no startup checks: started"
    );
}

#[tokio::test]
async fn details_are_hidden_unless_allowed() {
    let hidden = HealthRegistry::new();
    failing_db(&hidden);
    let addr = serve(hidden).await;
    for path in ["/health", "/health?verbose", "/health?verbose=1"] {
        let (_, body) = get(addr, path).await;
        let text = body.to_string();
        assert!(!text.contains("10.1.2.3"), "{path}: {text}");
    }

    let on_request = HealthRegistry::builder()
        .show_details(ShowDetails::WhenVerbose)
        .build();
    failing_db(&on_request);
    let addr = serve(on_request).await;
    assert!(
        !get(addr, "/health")
            .await
            .1
            .to_string()
            .contains("10.1.2.3")
    );
    let (_, verbose) = get(addr, "/health?verbose").await;
    assert_eq!(
        verbose["checks"]["db"][0]["output"],
        "connection to 10.1.2.3:5432 refused"
    );
    assert_eq!(verbose["checks"]["db"][0]["details"]["host"], "10.1.2.3");
    // A garbage query is not an error.
    let (head, _) = get(addr, "/health?%ZZ=%%&&verbose=0").await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_storm_against_a_slow_check_runs_it_once_per_ttl() {
    let health = HealthRegistry::new();
    health
        .register_with(
            "slow",
            health_fn(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                HealthCheckResult::up()
            }),
            CheckOptions::new().cache_ttl(Duration::from_secs(60)),
        )
        .unwrap();
    let app: Router = health.router();
    let mut probes = Vec::new();
    for i in 0..1_000 {
        let app = app.clone();
        let path = if i % 2 == 0 { "/readyz" } else { "/health" };
        probes.push(tokio::spawn(async move {
            let response = app
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            response.into_body().collect().await.unwrap();
            status
        }));
    }
    for probe in probes {
        assert_eq!(probe.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(health.run_count("slow").unwrap(), 1);
}
