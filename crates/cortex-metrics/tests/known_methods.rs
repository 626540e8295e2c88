//! `HttpMetricsLayer::known_methods` and
//! `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`: which methods keep their own
//! `http_request_method` label. A test binary of its own, because one test
//! runs itself again with the variable set (edition 2024 makes
//! `std::env::set_var` unsafe, and the workspace forbids unsafe code).

use axum::Router;
use axum::body::Body;
use axum::routing::any;
use cortex_metrics::http::HttpMetricsLayer;
use cortex_metrics::{Format, MetricsRegistry};
use http::{Method, Request};
use tower::ServiceExt;

const ENV: &str = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS";
/// Set only in the child process of `the_environment_variable_is_read_at_construction`.
const CHILD: &str = "CORTEX_METRICS_KNOWN_METHODS_CHILD";

fn purge() -> Method {
    Method::from_bytes(b"PURGE").unwrap()
}

/// Sends one request per method through `layer` and returns the
/// Prometheus text of `registry`.
async fn scrape_after(
    registry: &MetricsRegistry,
    layer: HttpMetricsLayer,
    methods: &[&str],
) -> String {
    let app = Router::new()
        .route("/items", any(|| async { "ok" }))
        .layer(layer);
    for method in methods {
        let request = Request::builder()
            .method(*method)
            .uri("/items")
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap();
    }
    registry.encode(Format::Prometheus)
}

/// The request-count line of `method` on `/items`.
fn count(method: &str, n: u32) -> String {
    format!(
        r#"http_server_request_duration_seconds_count{{http_request_method="{method}",http_route="/items",http_response_status_code="200",url_scheme="http"}} {n}"#
    )
}

fn active(method: &str) -> String {
    format!(r#"http_server_active_requests{{http_request_method="{method}",url_scheme="http"}} 0"#)
}

#[tokio::test]
async fn a_configured_custom_method_is_its_own_label() {
    let registry = MetricsRegistry::new();
    let layer = HttpMetricsLayer::new(&registry)
        .unwrap()
        .known_methods([Method::GET, purge()]);
    let text = scrape_after(&registry, layer, &["PURGE", "PURGE", "GET"]).await;
    assert!(text.contains(&count("PURGE", 2)), "{text}");
    assert!(text.contains(&active("PURGE")), "{text}");
    assert!(text.contains(&count("GET", 1)), "{text}");
    assert!(!text.contains("_OTHER"), "{text}");
}

#[tokio::test]
async fn a_default_method_left_out_of_the_override_becomes_other() {
    let registry = MetricsRegistry::new();
    let layer = HttpMetricsLayer::new(&registry)
        .unwrap()
        .known_methods([Method::GET]);
    let text = scrape_after(&registry, layer, &["DELETE", "POST", "GET"]).await;
    assert!(text.contains(&count("_OTHER", 2)), "{text}");
    assert!(text.contains(&active("_OTHER")), "{text}");
    assert!(text.contains(&count("GET", 1)), "{text}");
    assert!(!text.contains(r#"http_request_method="DELETE""#), "{text}");
    assert!(!text.contains(r#"http_request_method="POST""#), "{text}");
}

#[tokio::test]
async fn the_override_is_full_not_added_to_the_defaults() {
    let registry = MetricsRegistry::new();
    let layer = HttpMetricsLayer::new(&registry)
        .unwrap()
        .known_methods([purge()]);
    let text = scrape_after(&registry, layer, &["GET", "PUT", "PURGE", "purge"]).await;
    // GET and PUT are defaults, but not in the override; `purge` is not
    // `PURGE` (case-sensitive).
    assert!(text.contains(&count("_OTHER", 3)), "{text}");
    assert!(text.contains(&count("PURGE", 1)), "{text}");
    assert!(!text.contains(r#"http_request_method="GET""#), "{text}");
}

#[tokio::test]
async fn without_an_override_the_standard_methods_are_known() {
    if std::env::var_os(ENV).is_some() {
        return; // Not the defaults this test is about.
    }
    let registry = MetricsRegistry::new();
    let layer = HttpMetricsLayer::new(&registry).unwrap();
    let text = scrape_after(&registry, layer, &["PATCH", "PURGE"]).await;
    assert!(text.contains(&count("PATCH", 1)), "{text}");
    assert!(text.contains(&count("_OTHER", 1)), "{text}");
}

/// Runs `environment_variable_child` in a new process of this test binary
/// with the variable set.
#[test]
fn the_environment_variable_is_read_at_construction() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "environment_variable_child", "--nocapture"])
        .env(ENV, " PURGE, GET ,not a method,")
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
}

#[tokio::test]
async fn environment_variable_child() {
    if std::env::var_os(CHILD).is_none() {
        return; // Only meaningful in the child process.
    }
    // The variable alone: PURGE and GET known, POST (a default) not.
    let registry = MetricsRegistry::new();
    let layer = HttpMetricsLayer::new(&registry).unwrap();
    let text = scrape_after(&registry, layer, &["PURGE", "GET", "POST"]).await;
    assert!(text.contains(&count("PURGE", 1)), "{text}");
    assert!(text.contains(&count("GET", 1)), "{text}");
    assert!(text.contains(&count("_OTHER", 1)), "{text}");

    // The builder call wins over the variable.
    let registry = MetricsRegistry::new();
    let layer = HttpMetricsLayer::new(&registry)
        .unwrap()
        .known_methods([Method::POST]);
    let text = scrape_after(&registry, layer, &["PURGE", "POST"]).await;
    assert!(text.contains(&count("POST", 1)), "{text}");
    assert!(text.contains(&count("_OTHER", 1)), "{text}");
    assert!(!text.contains(r#"http_request_method="PURGE""#), "{text}");
}
