//! The attribute tables of OpenTelemetry's `http.server.request.duration`
//! and `http.server.active_requests` (semantic conventions v1.23+,
//! `docs/http/http-metrics.md`), walked row by row for every Required and
//! Conditionally Required attribute, as Prometheus labels:
//!
//! | attribute | level | label |
//! |---|---|---|
//! | `http.request.method` | Required | `http_request_method` |
//! | `url.scheme` | Required | `url_scheme` |
//! | `error.type` | Cond. Required: the request ended in error | `error_type` |
//! | `http.response.status_code` | Cond. Required: one was sent | `http_response_status_code` |
//! | `http.route` | Cond. Required: it is available | `http_route` |
//! | `network.protocol.name` | Cond. Required: not `http` | never (always `http`) |
//!
//! The body-size histograms carry the duration's labels.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{any, get};
use bytes::Bytes;
use cortex_metrics::http::{HttpMetrics, HttpMetricsLayer};
use cortex_metrics::{Format, MetricsRegistry};
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

const DURATION: &str = "http_server_request_duration_seconds_count";

fn app(registry: &MetricsRegistry) -> Router {
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/cache/{key}", any(|| async { "purged" }))
        .route(
            "/unavailable",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route("/hang", get(std::future::pending::<&'static str>))
        .route(
            "/panic",
            get(|| async {
                panic!("handler bug");
                #[allow(unreachable_code)]
                "never"
            }),
        )
        .layer(HttpMetricsLayer::new(registry).unwrap())
}

async fn send(app: &Router, request: Request<Body>) -> StatusCode {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

async fn get_path(app: &Router, path: &str) -> StatusCode {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

/// The `_count` lines of the duration histogram.
fn duration_lines(registry: &MetricsRegistry) -> Vec<String> {
    registry
        .encode(Format::Prometheus)
        .lines()
        .filter(|l| l.starts_with(DURATION))
        .map(str::to_owned)
        .collect()
}

/// The one duration `_count` line whose labels include all of `labels`.
fn series(registry: &MetricsRegistry, labels: &[&str]) -> String {
    let found: Vec<String> = duration_lines(registry)
        .into_iter()
        .filter(|line| labels.iter().all(|l| line.contains(l)))
        .collect();
    assert_eq!(found.len(), 1, "{labels:?} in {found:#?}");
    found.into_iter().next().unwrap()
}

#[tokio::test]
async fn http_request_method_is_on_every_series_and_unknown_methods_are_other() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    get_path(&app, "/users/1").await;
    let purge = Request::builder()
        .method(Method::from_bytes(b"PURGE").unwrap())
        .uri("/cache/k")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, purge).await, StatusCode::OK);
    for line in duration_lines(&registry) {
        assert!(line.contains("http_request_method=\""), "{line}");
        assert!(!line.contains("PURGE"), "{line}");
    }
    series(
        &registry,
        &["http_request_method=\"_OTHER\"", "/cache/{key}"],
    );
    series(&registry, &["http_request_method=\"GET\"", "/users/{id}"]);
}

#[tokio::test]
async fn url_scheme_is_on_every_series_and_http_for_a_plain_listener() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    get_path(&app, "/users/1").await;
    get_path(&app, "/nowhere").await;
    let lines = duration_lines(&registry);
    assert_eq!(lines.len(), 2);
    for line in lines {
        assert!(line.contains(",url_scheme=\"http\""), "{line}");
    }
}

#[tokio::test]
async fn url_scheme_is_the_original_clients_when_a_proxy_says_so() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    for (header, value) in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"),
    ] {
        let request = Request::get("/users/1")
            .header(header, value)
            .body(Body::empty())
            .unwrap();
        send(&app, request).await;
    }
    let line = series(&registry, &["url_scheme=\"https\""]);
    assert!(line.ends_with(" 2"), "{line}");
}

#[tokio::test]
async fn url_scheme_comes_from_an_absolute_target() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    let request = Request::get("https://example.com/users/1")
        .body(Body::empty())
        .unwrap();
    send(&app, request).await;
    series(&registry, &["/users/{id}", "url_scheme=\"https\""]);
}

#[tokio::test]
async fn url_scheme_defaults_to_https_on_a_tls_listener() {
    let registry = MetricsRegistry::new();
    let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(
        HttpMetricsLayer::new(&registry)
            .unwrap()
            .served_over_tls(true),
    );
    get_path(&app, "/").await;
    // A proxy's word still wins over the listener's.
    let downgraded = Request::get("/")
        .header("x-forwarded-proto", "http")
        .body(Body::empty())
        .unwrap();
    send(&app, downgraded).await;
    series(&registry, &["url_scheme=\"https\""]);
    series(&registry, &["url_scheme=\"http\""]);
    let text = registry.encode(Format::Prometheus);
    assert!(
        text.contains(
            "http_server_active_requests{http_request_method=\"GET\",url_scheme=\"https\"} 0\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_client_cannot_invent_a_url_scheme() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    for value in ["gopher", "HTTPS-ish", "javascript", ""] {
        let request = Request::get("/users/1")
            .header("x-forwarded-proto", value)
            .body(Body::empty())
            .unwrap();
        send(&app, request).await;
    }
    let line = series(&registry, &["/users/{id}"]);
    assert!(line.contains("url_scheme=\"http\""), "{line}");
    assert!(line.ends_with(" 4"), "{line}");
}

#[tokio::test]
async fn error_type_is_the_status_code_of_a_5xx_and_absent_otherwise() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    assert_eq!(
        get_path(&app, "/unavailable").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get_path(&app, "/teapot").await, StatusCode::IM_A_TEAPOT);
    assert_eq!(get_path(&app, "/nowhere").await, StatusCode::NOT_FOUND);
    assert_eq!(get_path(&app, "/users/1").await, StatusCode::OK);
    let failed = series(&registry, &["/unavailable"]);
    assert!(
        failed
            .contains("http_response_status_code=\"503\",url_scheme=\"http\",error_type=\"503\"}"),
        "{failed}"
    );
    // 4xx are the client's fault and 2xx succeeded: no error_type at all.
    for route in ["/teapot", "unmatched", "/users/{id}"] {
        let line = series(&registry, &[&format!("http_route=\"{route}\"")]);
        assert!(!line.contains("error_type"), "{line}");
    }
    // The size histograms carry the same label.
    let text = registry.encode(Format::Prometheus);
    for family in [
        "http_server_request_body_size_bytes_count",
        "http_server_response_body_size_bytes_count",
    ] {
        assert!(
            text.contains(&format!(
                "{family}{{http_request_method=\"GET\",http_route=\"/unavailable\",\
                 http_response_status_code=\"503\",url_scheme=\"http\",error_type=\"503\"}} 1\n"
            )),
            "{text}"
        );
    }
}

#[tokio::test]
async fn error_type_names_a_panic_a_service_error_and_a_departed_client() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    let panicked = tokio::spawn(
        app.clone()
            .oneshot(Request::get("/panic").body(Body::empty()).unwrap()),
    )
    .await;
    assert!(panicked.unwrap_err().is_panic());
    let hang = app
        .clone()
        .oneshot(Request::get("/hang").body(Body::empty()).unwrap());
    assert!(
        tokio::time::timeout(Duration::from_millis(20), hang)
            .await
            .is_err()
    );
    let failing = service_fn(|_: Request<()>| async {
        Err::<Response<Full<Bytes>>, _>("backend unreachable")
    });
    let service = HttpMetricsLayer::new(&registry).unwrap().layer(failing);
    service
        .oneshot(Request::post("/orders").body(()).unwrap())
        .await
        .unwrap_err();

    for (route, status, error) in [
        ("/panic", "500", "panic"),
        ("/hang", "499", "cancelled"),
        ("unmatched", "500", "service error"),
    ] {
        let line = series(&registry, &[&format!("http_route=\"{route}\"")]);
        assert!(
            line.contains(&format!(
                "http_response_status_code=\"{status}\",url_scheme=\"http\",error_type=\"{error}\"}} 1"
            )),
            "{line}"
        );
    }
}

/// A body that sends one chunk, then fails.
struct FailingBody {
    sent: bool,
}

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.sent {
            Poll::Ready(Some(Err(std::io::Error::other("disk gone"))))
        } else {
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"partial")))))
        }
    }
}

#[tokio::test]
async fn error_type_marks_a_response_body_that_fails_after_its_status() {
    let registry = MetricsRegistry::new();
    let streaming = service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(FailingBody { sent: false }))
    });
    let service = HttpMetrics::new(streaming, &registry).unwrap();
    let response = service
        .oneshot(Request::get("/download").body(()).unwrap())
        .await
        .unwrap();
    assert!(response.into_body().collect().await.is_err());
    let line = series(&registry, &["error_type"]);
    assert!(
        line.contains(
            "http_response_status_code=\"200\",url_scheme=\"http\",error_type=\"response body error\"}"
        ),
        "{line}"
    );
}

#[tokio::test]
async fn http_response_status_code_is_the_code_sent() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    for (path, code) in [("/users/1", "200"), ("/teapot", "418"), ("/nowhere", "404")] {
        get_path(&app, path).await;
        series(
            &registry,
            &[&format!("http_response_status_code=\"{code}\"")],
        );
    }
}

#[tokio::test]
async fn http_route_is_the_template_when_a_route_matched() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    get_path(&app, "/users/42").await;
    get_path(&app, "/users/43").await;
    let line = series(&registry, &["http_route=\"/users/{id}\""]);
    assert!(line.ends_with(" 2"), "{line}");
    // Unrouted requests share one documented value, never the raw path.
    get_path(&app, "/users/42/extra").await;
    series(&registry, &["http_route=\"unmatched\""]);
    assert!(!registry.encode(Format::Prometheus).contains("/users/42"));
}

#[tokio::test]
async fn network_protocol_name_is_never_set_because_it_is_always_http() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    get_path(&app, "/users/1").await;
    assert!(
        !registry
            .encode(Format::Prometheus)
            .contains("network_protocol_name")
    );
}

#[tokio::test]
async fn active_requests_carries_method_and_scheme() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    let hang = app.clone().oneshot(
        Request::get("/hang")
            .header("x-forwarded-proto", "https")
            .body(Body::empty())
            .unwrap(),
    );
    let in_flight = tokio::spawn(hang);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let text = registry.encode(Format::Prometheus);
    assert!(
        text.contains(
            "http_server_active_requests{http_request_method=\"GET\",url_scheme=\"https\"} 1\n"
        ),
        "{text}"
    );
    in_flight.abort();
    let _ = in_flight.await;
    let text = registry.encode(Format::Prometheus);
    assert!(
        text.contains(
            "http_server_active_requests{http_request_method=\"GET\",url_scheme=\"https\"} 0\n"
        ),
        "{text}"
    );
}

/// Every label set is also valid OpenMetrics: no empty `error_type=""`.
#[tokio::test]
async fn successful_series_write_no_empty_error_type_in_either_format() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    get_path(&app, "/users/1").await;
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = registry.encode(format);
        assert!(!text.contains("error_type=\"\""), "{text}");
        assert!(!text.contains(",}"), "{text}");
    }
}
