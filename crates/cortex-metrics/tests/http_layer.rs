//! `HttpMetricsLayer` and the `/metrics` endpoint, in-process and across a
//! real socket.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex_metrics::http::HttpMetricsLayer;
use cortex_metrics::{Format, MetricsEndpoint, MetricsRegistry};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

fn app(registry: &MetricsRegistry) -> Router {
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/fail", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
        .route(
            "/hang",
            get(|| async {
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .route("/stream", get(|| async { Body::new(Chunks(4)) }))
        .merge(registry.router())
        .layer(HttpMetricsLayer::new(registry).unwrap())
}

/// A body of `n` frames of 1000 bytes each, streamed one at a time.
struct Chunks(u32);

impl http_body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from(
            vec![b'x'; 1000],
        )))))
    }
}

async fn get_status(app: &Router, uri: &str) -> StatusCode {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

fn series_line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|line| line.starts_with(prefix))
}

#[tokio::test]
async fn records_route_templates_methods_and_statuses() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    assert_eq!(get_status(&app, "/users/1").await, StatusCode::OK);
    assert_eq!(get_status(&app, "/users/2").await, StatusCode::OK);
    assert_eq!(
        get_status(&app, "/fail").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get_status(&app, "/no/such/path").await,
        StatusCode::NOT_FOUND
    );
    let purge = Request::builder()
        .method("PURGE")
        .uri("/users/1")
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(purge).await.unwrap();

    let text = registry.encode(Format::Prometheus);
    let count = "http_server_request_duration_seconds_count";
    for expected in [
        r#"{http_request_method="GET",http_route="/users/{id}",http_response_status_code="200",url_scheme="http"} 2"#,
        r#"{http_request_method="GET",http_route="/fail",http_response_status_code="503",url_scheme="http",error_type="503"} 1"#,
        r#"{http_request_method="GET",http_route="unmatched",http_response_status_code="404",url_scheme="http"} 1"#,
        r#"{http_request_method="_OTHER",http_route="/users/{id}",http_response_status_code="405",url_scheme="http"} 1"#,
    ] {
        assert!(
            text.contains(&format!("{count}{expected}\n")),
            "missing {expected}\n{text}"
        );
    }
    assert!(
        !text.contains("/users/1"),
        "raw paths must never become labels"
    );
    assert!(text.contains(
        "http_server_active_requests{http_request_method=\"GET\",url_scheme=\"http\"} 0\n"
    ));
}

#[tokio::test]
async fn a_scanner_of_random_paths_adds_no_series() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    get_status(&app, "/warm-up").await;
    get_status(&app, "/users/0").await;
    let before = registry.encode(Format::Prometheus).lines().count();
    for i in 0..2_000 {
        get_status(&app, &format!("/scan/{i}/{}", i * 7919)).await;
        get_status(&app, &format!("/users/{i}")).await;
    }
    let after = registry.encode(Format::Prometheus);
    assert_eq!(after.lines().count(), before, "{after}");
}

#[tokio::test]
async fn streamed_bodies_are_counted_in_bytes() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    assert_eq!(get_status(&app, "/stream").await, StatusCode::OK);
    let text = registry.encode(Format::Prometheus);
    let sum = series_line(&text, "http_server_response_body_size_bytes_sum{http_request_method=\"GET\",http_route=\"/stream\"").unwrap();
    assert!(sum.ends_with(" 4000.0"), "{sum}");
}

#[tokio::test]
async fn a_panicking_handler_is_counted_as_500_and_leaves_no_active_request() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    let request = Request::get("/panic").body(Body::empty()).unwrap();
    let joined = tokio::spawn(app.oneshot(request)).await;
    assert!(joined.unwrap_err().is_panic());
    let text = registry.encode(Format::Prometheus);
    assert!(text.contains(r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/panic",http_response_status_code="500",url_scheme="http",error_type="panic"} 1"#), "{text}");
    assert!(
        text.contains(
            "http_server_active_requests{http_request_method=\"GET\",url_scheme=\"http\"} 0\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_dropped_request_is_counted_as_499_and_leaves_no_active_request() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    let request = Request::get("/hang").body(Body::empty()).unwrap();
    let pending = tokio::time::timeout(Duration::from_millis(20), app.oneshot(request)).await;
    assert!(pending.is_err(), "the handler never finishes");
    let text = registry.encode(Format::Prometheus);
    assert!(text.contains(r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/hang",http_response_status_code="499",url_scheme="http",error_type="cancelled"} 1"#), "{text}");
    assert!(
        text.contains(
            "http_server_active_requests{http_request_method=\"GET\",url_scheme=\"http\"} 0\n"
        ),
        "{text}"
    );
}

/// One HTTP/1.1 request over a fresh connection; returns the raw response.
async fn raw_request(addr: std::net::SocketAddr, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn scrapes_over_a_real_socket_in_both_formats_with_auth() {
    let registry = MetricsRegistry::new();
    let label = registry
        .counter_family("tricky", "Help with \"quotes\" and \\ backslash.", ["v"])
        .unwrap();
    label.with_labels(["a\"b\\c\nd"]).inc();
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .merge(
            MetricsEndpoint::new(registry.clone())
                .bearer_token("t0ken")
                .router(),
        )
        .layer(HttpMetricsLayer::new(&registry).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    assert!(
        raw_request(addr, "GET /ok HTTP/1.1")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let denied = raw_request(addr, "GET /metrics HTTP/1.1").await;
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    assert!(
        denied
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{denied}"
    );
    let wrong = raw_request(addr, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer nope").await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");

    let text = raw_request(addr, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer t0ken").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{text}"
    );
    assert!(
        text.contains("tricky_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("# HELP tricky_total Help with \"quotes\" and \\\\ backslash.\n"),
        "{text}"
    );
    assert!(text.contains("http_route=\"/ok\""), "{text}");

    let om = raw_request(
        addr,
        "GET /metrics HTTP/1.1\r\nAuthorization: Bearer t0ken\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    )
    .await;
    assert!(
        om.contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"),
        "{om}"
    );
    assert!(om.contains("# TYPE tricky counter\n"), "{om}");
    assert!(
        om.contains("# HELP tricky Help with \\\"quotes\\\" and \\\\ backslash.\n"),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    server.abort();
}

#[tokio::test]
async fn the_series_cap_also_bounds_http_metrics() {
    let registry = MetricsRegistry::builder().max_series_per_family(2).build();
    let app = Router::new()
        .route(
            "/status/{code}",
            get(
                |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
                },
            ),
        )
        .layer(HttpMetricsLayer::new(&registry).unwrap());
    for code in [200, 201, 202, 203, 200, 204] {
        get_status(&app, &format!("/status/{code}")).await;
    }
    let text = registry.encode(Format::Prometheus);
    let counts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count"))
        .collect();
    assert_eq!(counts.len(), 3, "two series and the overflow:\n{text}");
    assert!(
        text.contains(
            "http_server_request_duration_seconds_count{otel_metric_overflow=\"true\"} 3\n"
        )
    );
    let total: u64 = counts
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 6, "no request is lost");
}

#[cfg(feature = "trace")]
#[tokio::test]
async fn sampled_requests_leave_a_trace_exemplar() {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };

    let registry = MetricsRegistry::new();
    let app = app(&registry);
    let span = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    );
    use opentelemetry::context::FutureExt;
    let cx = opentelemetry::Context::new().with_remote_span_context(span);
    // As under a trace layer: the request is handled with the span current.
    let request = Request::get("/users/1").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).with_context(cx).await.unwrap();
    response.into_body().collect().await.unwrap();
    let om = registry.encode(Format::OpenMetrics);
    assert!(
        om.contains(
            r#" # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} "#
        ),
        "{om}"
    );
    // Prometheus text has no exemplar syntax.
    assert!(!registry.encode(Format::Prometheus).contains("trace_id"));
}
