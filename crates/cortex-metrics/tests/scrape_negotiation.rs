//! `Accept` negotiation of `/metrics` (RFC 9110 §12.5.1) with the media
//! types of the Prometheus exposition formats: OpenMetrics 1.0.0 is served
//! only to a range that names version 1.0.0 or no version, the more
//! specific range decides, and a scrape that accepts neither format gets
//! `406`. The `Accept` headers Prometheus sends come from its
//! `scrape/scrape.go` (`acceptHeader`) and `config.ScrapeProtocolsHeaders`.

use axum::Router;
use axum::body::Body;
use cortex_metrics::{Format, MetricsEndpoint, MetricsRegistry};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn app() -> Router {
    let registry = MetricsRegistry::new();
    registry.counter("jobs_total", "Jobs.").unwrap().inc();
    registry.router()
}

/// Status, `Content-Type` (empty when absent), `Vary` and body of a scrape
/// with these `Accept` lines.
async fn scrape(accept: &[&str]) -> (StatusCode, String, String, String) {
    let mut request = Request::get("/metrics");
    for line in accept {
        request = request.header(header::ACCEPT, *line);
    }
    let response = app()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (content_type, vary) = (header(header::CONTENT_TYPE), header(header::VARY));
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        vary,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

async fn content_type(accept: &[&str]) -> String {
    let (status, content_type, _, _) = scrape(accept).await;
    assert_eq!(status, StatusCode::OK, "{accept:?}");
    content_type
}

#[tokio::test]
async fn a_future_openmetrics_version_alone_is_not_acceptable() {
    for accept in [
        "application/openmetrics-text; version=99",
        "application/openmetrics-text;version=2.0.0",
        "application/openmetrics-text; version=0.0.1",
    ] {
        let (status, content_type, vary, body) = scrape(&[accept]).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{accept}");
        assert_eq!(vary, "Accept");
        assert!(!content_type.starts_with("application/openmetrics-text"));
        assert!(!body.contains("jobs_total"), "{body}");
        assert!(body.contains("version=1.0.0"), "{body}");
    }
}

#[tokio::test]
async fn a_future_openmetrics_version_falls_back_to_text_when_text_is_acceptable() {
    for accept in [
        "application/openmetrics-text; version=99, text/plain; q=0.5",
        "application/openmetrics-text; version=99, text/plain;version=0.0.4;q=0.1",
        "application/openmetrics-text; version=99, text/*;q=0.2",
        "application/openmetrics-text; version=99, */*;q=0.1",
    ] {
        assert_eq!(content_type(&[accept]).await, TEXT, "{accept}");
    }
}

#[tokio::test]
async fn openmetrics_without_a_version_or_at_1_0_0_is_openmetrics() {
    for accept in [
        "application/openmetrics-text",
        "application/openmetrics-text; version=1.0.0",
        "application/openmetrics-text;version=\"1.0.0\";charset=utf-8",
        "Application/OpenMetrics-Text; Version=1.0.0",
        "application/openmetrics-text; version=99, application/openmetrics-text;q=0.5",
    ] {
        assert_eq!(content_type(&[accept]).await, OPENMETRICS, "{accept}");
    }
}

/// The headers of each Prometheus generation with its default scrape
/// protocols, and of one configured for text only.
#[tokio::test]
async fn what_prometheus_sends_gets_the_format_it_prefers() {
    let cases = [
        // Prometheus 3: escaping on the 1.0.0 formats, five weights.
        (
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,\
             text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            OPENMETRICS,
        ),
        // Prometheus 2.49 to 2.x: `scrape_protocols`, four weights.
        (
            "application/openmetrics-text;version=1.0.0;q=0.5,\
             application/openmetrics-text;version=0.0.1;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            OPENMETRICS,
        ),
        // Before 2.49.
        (
            "application/openmetrics-text;version=1.0.0,\
             application/openmetrics-text;version=0.0.1;q=0.75,\
             text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            OPENMETRICS,
        ),
        // Before OpenMetrics 1.0.0 existed: its 0.0.1 is not what we write.
        (
            "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            TEXT,
        ),
        // `scrape_protocols: [PrometheusText0.0.4]`.
        ("text/plain;version=0.0.4;q=0.6,*/*;q=0.5", TEXT),
        // `scrape_protocols: [PrometheusText1.0.0]`: its own range does not
        // match 0.0.4, but `*/*` does.
        (
            "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5",
            TEXT,
        ),
    ];
    for (accept, expected) in cases {
        assert_eq!(content_type(&[accept]).await, expected, "{accept}");
    }
}

#[tokio::test]
async fn the_most_specific_range_decides_whatever_the_order() {
    let cases = [
        ("text/plain;q=0, */*", OPENMETRICS),
        ("*/*, text/plain;q=0", OPENMETRICS),
        ("application/openmetrics-text;q=0, */*", TEXT),
        (
            "application/*;q=0.9, application/openmetrics-text;q=0.1, text/plain;q=0.5",
            TEXT,
        ),
        (
            "text/*;q=0.1, text/plain;version=0.0.4;q=0.9, application/*;q=0.5",
            TEXT,
        ),
        (
            "text/plain;q=0.9, text/plain;version=0.0.4;q=0.2, application/*;q=0.5",
            OPENMETRICS,
        ),
    ];
    for (accept, expected) in cases {
        assert_eq!(content_type(&[accept]).await, expected, "{accept}");
    }
}

#[tokio::test]
async fn curl_browsers_and_no_header_get_prometheus_text() {
    assert_eq!(content_type(&[]).await, TEXT);
    assert_eq!(content_type(&["*/*"]).await, TEXT);
    let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    assert_eq!(content_type(&[firefox]).await, TEXT);
    // A tie between explicitly named formats goes to OpenMetrics, as before.
    let both = "application/openmetrics-text, text/plain";
    assert_eq!(content_type(&[both]).await, OPENMETRICS);
}

#[tokio::test]
async fn nothing_acceptable_is_406_not_a_guess() {
    for accept in [
        "application/json",
        "text/html",
        "application/openmetrics-text;q=0",
        "text/plain;q=0, application/openmetrics-text;q=0, */*;q=0",
        "text/plain;version=1.0.0",
    ] {
        let (status, content_type, vary, _) = scrape(&[accept]).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{accept}");
        assert_eq!(vary, "Accept");
        // Like every other Cortex error: RFC 9457 problem+json.
        assert_eq!(content_type, "application/problem+json", "{accept}");
    }
}

#[tokio::test]
async fn several_accept_lines_are_one_list() {
    let lines = [
        "application/openmetrics-text; version=99",
        "text/plain; q=0.1",
    ];
    assert_eq!(content_type(&lines).await, TEXT);
    let lines = ["text/plain; q=0.1", "application/openmetrics-text"];
    assert_eq!(content_type(&lines).await, OPENMETRICS);
}

#[test]
fn format_negotiate_answers_none_for_a_406() {
    let future = Some("application/openmetrics-text; version=99");
    assert_eq!(Format::negotiate(future), None);
    let prometheus = Some("application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.2");
    assert_eq!(Format::negotiate(prometheus), Some(Format::OpenMetrics));
}

/// The same over a real socket, through `axum::serve`.
#[tokio::test]
async fn a_real_scrape_for_a_future_version_gets_406() {
    let endpoint = MetricsEndpoint::new(MetricsRegistry::new()).router::<()>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, endpoint).await.unwrap() });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /metrics HTTP/1.1\r\nHost: test\r\n\
              Accept: application/openmetrics-text; version=99\r\n\
              Connection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 406"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("vary: accept\r\n"),
        "{response}"
    );
    server.abort();
}
