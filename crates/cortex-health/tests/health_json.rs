//! The draft's own fields, across a real socket: check entries with
//! `componentId`, `componentType`, `observedValue`, `observedUnit` and
//! `time`; the service's `version`, `releaseId`, `serviceId`,
//! `description`, `notes` and `links`; and which of them the details
//! policy hides.
//!
//! The expected bodies are the example response of
//! draft-inadarei-api-health-check-06 §5 ("Example Output"), minus what
//! Cortex does not produce: `affectedEndpoints`, per-entry `links`, the
//! `node` key (Cortex gives each check one entry) and empty `output`s
//! (§3.4/§4.8: omitted for `pass`).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use cortex_health::{HealthCheckResult, HealthRegistry, HealthStatus, ShowDetails, health_fn};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Keys Cortex adds that the draft's example lacks (§4.10 allows
/// additional keys): the response's own `time`, and per entry whether the
/// check is critical and how long it took.
const CORTEX_TOP_LEVEL: [&str; 1] = ["time"];
const CORTEX_ENTRY: [&str; 2] = ["critical", "durationSeconds"];

/// `2018-01-17T03:36:48Z`, the `time` of every entry in the example.
fn example_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_516_160_208)
}

async fn serve(health: HealthRegistry) -> SocketAddr {
    let app: Router = health.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn get(addr: SocketAddr, path: &str) -> (String, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), serde_json::from_str(body).unwrap())
}

/// The example's service, as the registry builder sets it.
fn example_service() -> cortex_health::HealthRegistryBuilder {
    HealthRegistry::builder()
        .version("1")
        .release_id("1.2.2")
        .note("")
        .service_id("f03e522f-1f44-4062-9b55-9587f91c9c41")
        .description("health of authz service")
        .link("about", "http://api.example.com/about/authz")
        .link(
            "http://api.x.io/rel/thresholds",
            "http://api.x.io/about/authz/thresholds",
        )
}

fn register(health: &HealthRegistry, name: &str, result: HealthCheckResult) {
    health
        .register(name, health_fn(move || std::future::ready(result.clone())))
        .unwrap();
}

/// The example's `pass` checks.
fn register_passing_checks(health: &HealthRegistry) {
    register(
        health,
        "cassandra:responseTime",
        HealthCheckResult::up()
            .component_id("dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2")
            .component_type("datastore")
            .observed_value(250)
            .observed_unit("ms")
            .time(example_time()),
    );
    register(
        health,
        "uptime",
        HealthCheckResult::up()
            .component_type("system")
            .observed_value(1_209_600.245)
            .observed_unit("s")
            .time(example_time()),
    );
}

/// The example's top level, without its checks.
fn example_top_level() -> Value {
    json!({
        "status": "pass",
        "version": "1",
        "releaseId": "1.2.2",
        "notes": [""],
        "serviceId": "f03e522f-1f44-4062-9b55-9587f91c9c41",
        "description": "health of authz service",
        "links": {
            "about": "http://api.example.com/about/authz",
            "http://api.x.io/rel/thresholds": "http://api.x.io/about/authz/thresholds"
        }
    })
}

/// Every field of `expected` is in `actual` with the same value, at any
/// depth, and `actual` has no field beyond those and Cortex's own.
fn assert_same_fields(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            let allowed_extra: &[&str] = if path.is_empty() {
                &CORTEX_TOP_LEVEL
            } else if path.ends_with(']') {
                &CORTEX_ENTRY
            } else {
                &[]
            };
            for (key, value) in expected {
                let field = format!("{path}.{key}");
                let Some(got) = actual.get(key) else {
                    panic!("{field} is missing: {actual:?}");
                };
                assert_same_fields(value, got, &field);
            }
            for key in actual.keys() {
                assert!(
                    expected.contains_key(key) || allowed_extra.contains(&key.as_str()),
                    "{path}.{key} is not in the draft's example: {actual:?}"
                );
            }
        }
        (Value::Array(expected), Value::Array(actual)) => {
            assert_eq!(expected.len(), actual.len(), "{path}: {actual:?}");
            for (i, (value, got)) in expected.iter().zip(actual).enumerate() {
                assert_same_fields(value, got, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(expected, actual, "{path}"),
    }
}

#[tokio::test]
async fn the_drafts_example_response_is_reproduced_field_by_field() {
    let health = example_service().show_details(ShowDetails::Always).build();
    register_passing_checks(&health);
    let addr = serve(health).await;

    let (head, body) = get(addr, "/health").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut expected = example_top_level();
    expected["checks"] = json!({
        "cassandra:responseTime": [{
            "componentId": "dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2",
            "componentType": "datastore",
            "observedValue": 250,
            "observedUnit": "ms",
            "status": "pass",
            "time": "2018-01-17T03:36:48Z"
        }],
        "uptime": [{
            "componentType": "system",
            "observedValue": 1_209_600.245,
            "observedUnit": "s",
            "status": "pass",
            "time": "2018-01-17T03:36:48Z"
        }]
    });
    assert_same_fields(&expected, &body, "");
    assert!(
        humantime::parse_rfc3339(body["time"].as_str().unwrap()).is_ok(),
        "{body}"
    );
}

/// The example's `warn` entries (node 1 of each). The example's top level
/// says `pass` beside them; Cortex's aggregate is the worst check, so it
/// says `warn` here, a deliberate difference.
#[tokio::test]
async fn the_drafts_warn_entries_are_reproduced_and_make_the_aggregate_warn() {
    let health = example_service().show_details(ShowDetails::Always).build();
    let warn = || HealthCheckResult::degraded("").time(example_time());
    register(
        &health,
        "cassandra:connections",
        warn()
            .component_id("dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2")
            .component_type("datastore")
            .observed_value(75),
    );
    register(
        &health,
        "cpu:utilization",
        warn()
            .component_id("6fd416e0-8920-410f-9c7b-c479000f7227")
            .component_type("system")
            .observed_value(85)
            .observed_unit("percent"),
    );
    register(
        &health,
        "memory:utilization",
        warn()
            .component_id("6fd416e0-8920-410f-9c7b-c479000f7227")
            .component_type("system")
            .observed_value(8.5)
            .observed_unit("GiB"),
    );
    let addr = serve(health).await;

    let (head, body) = get(addr, "/health").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut expected = example_top_level();
    expected["status"] = "warn".into();
    expected["checks"] = json!({
        "cassandra:connections": [{
            "componentId": "dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2",
            "componentType": "datastore",
            "observedValue": 75,
            "status": "warn",
            "time": "2018-01-17T03:36:48Z",
            "output": ""
        }],
        "cpu:utilization": [{
            "componentId": "6fd416e0-8920-410f-9c7b-c479000f7227",
            "componentType": "system",
            "observedValue": 85,
            "observedUnit": "percent",
            "status": "warn",
            "time": "2018-01-17T03:36:48Z",
            "output": ""
        }],
        "memory:utilization": [{
            "componentId": "6fd416e0-8920-410f-9c7b-c479000f7227",
            "componentType": "system",
            "observedValue": 8.5,
            "observedUnit": "GiB",
            "status": "warn",
            "time": "2018-01-17T03:36:48Z",
            "output": ""
        }]
    });
    assert_same_fields(&expected, &body, "");
}

#[tokio::test]
async fn hidden_details_drop_observations_and_component_ids_but_keep_the_service_fields() {
    let health = example_service()
        .show_details(ShowDetails::WhenVerbose)
        .build();
    register_passing_checks(&health);
    let addr = serve(health).await;

    let (_, hidden) = get(addr, "/health").await;
    let mut expected = example_top_level();
    expected["checks"] = json!({
        "cassandra:responseTime": [{
            "componentType": "datastore",
            "status": "pass",
            "time": "2018-01-17T03:36:48Z"
        }],
        "uptime": [{
            "componentType": "system",
            "status": "pass",
            "time": "2018-01-17T03:36:48Z"
        }]
    });
    assert_same_fields(&expected, &hidden, "");

    let (_, verbose) = get(addr, "/health?verbose").await;
    let entry = &verbose["checks"]["cassandra:responseTime"][0];
    assert_eq!(entry["componentId"], "dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2");
    assert_eq!(entry["observedValue"], 250);
    assert_eq!(entry["observedUnit"], "ms");
}

#[tokio::test]
async fn service_fields_are_on_every_probe_including_a_draining_readiness() {
    let health = example_service().build();
    register_passing_checks(&health);
    health.set_draining();
    let addr = serve(health).await;

    for path in [
        "/health",
        "/health/live",
        "/livez",
        "/health/ready",
        "/readyz",
        "/health/startup",
    ] {
        let (_, body) = get(addr, path).await;
        for key in [
            "version",
            "releaseId",
            "serviceId",
            "description",
            "notes",
            "links",
        ] {
            assert_eq!(body[key], example_top_level()[key], "{path}: {body}");
        }
    }
    let (head, ready) = get(addr, "/health/ready").await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert_eq!(ready["status"], "fail");
}

#[tokio::test]
async fn a_result_without_the_new_fields_renders_as_before() {
    let health = HealthRegistry::builder()
        .show_details(ShowDetails::Always)
        .build();
    register(&health, "db", HealthCheckResult::up());
    let before = SystemTime::now() - Duration::from_secs(1);
    let addr = serve(health).await;

    let (_, body) = get(addr, "/health").await;
    for key in [
        "version",
        "releaseId",
        "serviceId",
        "description",
        "notes",
        "links",
    ] {
        assert!(body.get(key).is_none(), "{key}: {body}");
    }
    let entry = body["checks"]["db"][0].as_object().unwrap();
    let mut keys: Vec<&str> = entry.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "componentType",
            "critical",
            "durationSeconds",
            "status",
            "time"
        ]
    );
    assert_eq!(entry["componentType"], "component");
    let time = humantime::parse_rfc3339(entry["time"].as_str().unwrap()).unwrap();
    assert!(time >= before, "the run's time, not an override: {body}");
}

#[tokio::test]
async fn check_names_take_the_drafts_component_measurement_form() {
    let health = HealthRegistry::new();
    for name in ["db:responseTime", "cassandra:connections", "a:b:c"] {
        register(&health, name, HealthCheckResult::up().observed_value(1));
    }
    assert_eq!(
        health
            .check("db:responseTime")
            .await
            .unwrap()
            .observed_value,
        Some(json!(1))
    );
    let report = health.check_all().await;
    assert_eq!(report.status, HealthStatus::Up);
    let body = report.to_json(false);
    assert_eq!(body["checks"]["db:responseTime"][0]["status"], "pass");
    assert_eq!(body["checks"]["a:b:c"][0]["status"], "pass");
}

#[test]
fn observed_values_take_any_json_value() {
    let objects = HealthCheckResult::up().observed_value(json!({"p50": 3, "p99": 40}));
    assert_eq!(objects.observed_value, Some(json!({"p50": 3, "p99": 40})));
    let text = HealthCheckResult::up().observed_value("primary");
    assert_eq!(text.observed_value, Some(json!("primary")));
    let flag = HealthCheckResult::up().observed_value(true);
    assert_eq!(flag.observed_value, Some(json!(true)));
}
