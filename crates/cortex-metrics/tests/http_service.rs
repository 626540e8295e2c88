//! `HttpMetrics` as a plain tower service: its tower-http style API, inner
//! service errors, malformed `Content-Length` headers, and registries whose
//! names are already taken.

use std::convert::Infallible;

use bytes::Bytes;
use cortex_metrics::http::{HttpMetrics, HttpMetricsLayer};
use cortex_metrics::{Format, MetricsError, MetricsRegistry};
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

fn ok() -> impl tower::Service<
    Request<()>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|_: Request<()>| async { Ok(Response::new(Full::new(Bytes::from_static(b"ok")))) })
}

fn count_line<'a>(text: &'a str, family: &str) -> Option<&'a str> {
    text.lines()
        .find(|line| line.starts_with(&format!("{family}_count{{")))
}

#[tokio::test]
async fn http_metrics_new_records_and_hands_back_its_inner_service() {
    let registry = MetricsRegistry::new();
    let service = HttpMetrics::new(ok(), &registry).unwrap();
    // The inner service alone records nothing.
    service
        .get_ref()
        .clone()
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    assert!(
        count_line(
            &registry.encode(Format::Prometheus),
            "http_server_request_duration_seconds"
        )
        .is_none()
    );

    let response = service
        .clone()
        .oneshot(Request::head("/").body(()).unwrap())
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    // `HttpMetrics::layer` over the unwrapped service records into the
    // same families.
    let relayered = HttpMetrics::<()>::layer(&registry)
        .unwrap()
        .layer(service.into_inner());
    let response = relayered
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();

    let text = registry.encode(Format::Prometheus);
    for expected in [
        r#"http_server_request_duration_seconds_count{http_request_method="HEAD",http_route="unmatched",http_response_status_code="200",url_scheme="http"} 1"#,
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="unmatched",http_response_status_code="200",url_scheme="http"} 1"#,
    ] {
        assert!(text.contains(expected), "missing {expected}\n{text}");
    }
}

#[tokio::test]
async fn an_inner_service_error_is_counted_as_500_and_leaves_no_active_request() {
    let registry = MetricsRegistry::new();
    let failing = service_fn(|_: Request<()>| async {
        Err::<Response<Full<Bytes>>, _>("backend unreachable")
    });
    let service = HttpMetricsLayer::new(&registry).unwrap().layer(failing);
    let error = service
        .oneshot(Request::post("/orders").body(()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error, "backend unreachable");

    let text = registry.encode(Format::Prometheus);
    assert!(
        text.contains(r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="unmatched",http_response_status_code="500",url_scheme="http",error_type="service error"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            "http_server_active_requests{http_request_method=\"POST\",url_scheme=\"http\"} 0\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_malformed_content_length_records_no_request_size() {
    let registry = MetricsRegistry::new();
    let service = HttpMetricsLayer::new(&registry).unwrap().layer(ok());
    for length in ["12", "twelve"] {
        let request = Request::put("/")
            .header(header::CONTENT_LENGTH, length)
            .body(())
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let text = registry.encode(Format::Prometheus);
    let labels = r#"{http_request_method="PUT",http_route="unmatched",http_response_status_code="200",url_scheme="http"}"#;
    // Both requests are timed; only the one with a valid length is sized.
    assert!(
        text.contains(&format!(
            "http_server_request_duration_seconds_count{labels} 2"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "http_server_request_body_size_bytes_count{labels} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "http_server_request_body_size_bytes_sum{labels} 12"
        )),
        "{text}"
    );
}

#[test]
fn each_taken_http_family_name_is_a_conflict() {
    for taken in [
        "http_server_request_duration_seconds",
        "http_server_active_requests",
        "http_server_request_body_size_bytes",
        "http_server_response_body_size_bytes",
    ] {
        let registry = MetricsRegistry::new();
        registry.counter(taken, "Something else.").unwrap();
        let error = HttpMetricsLayer::new(&registry).unwrap_err();
        assert!(
            matches!(&error, MetricsError::Conflict { name, .. } if name == taken),
            "{taken}: {error}"
        );
    }
}
