//! The Hub served on a real loopback socket.

use std::net::SocketAddr;

use cortex_hub::{HubConfig, app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve(config: HubConfig) -> SocketAddr {
    let router = app(&config).expect("the hub builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn request(addr: SocketAddr, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nHost: hub\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn serves_demo_routes_and_their_metrics() {
    let addr = serve(HubConfig::default()).await;
    assert!(
        request(addr, "GET / HTTP/1.1")
            .await
            .contains("\"cortex-hub\"")
    );
    let echo = request(addr, "GET /api/echo/42 HTTP/1.1").await;
    assert!(
        echo.starts_with("HTTP/1.1 200") && echo.contains(r#"{"id":"42"}"#),
        "{echo}"
    );
    request(addr, "GET /api/echo/hello HTTP/1.1").await;
    let work = request(addr, "GET /api/work?ms=1 HTTP/1.1").await;
    assert!(work.contains(r#""slept_ms":1"#), "{work}");
    assert!(
        request(addr, "GET /nope HTTP/1.1")
            .await
            .starts_with("HTTP/1.1 404")
    );

    let metrics = request(addr, "GET /metrics HTTP/1.1").await;
    assert!(
        metrics.contains("text/plain; version=0.0.4; charset=utf-8"),
        "{metrics}"
    );
    for expected in [
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/api/echo/{id}",http_response_status_code="200"} 2"#,
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="unmatched",http_response_status_code="404"} 1"#,
        r#"hub_echo_requests_total{kind="numeric"} 1"#,
        r#"hub_echo_requests_total{kind="text"} 1"#,
        "process_resident_memory_bytes ",
        "hub_work_duration_seconds_count 1\n",
        "hub_work_in_progress 0\n",
    ] {
        assert!(metrics.contains(expected), "missing {expected}\n{metrics}");
    }
    let om = request(
        addr,
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text",
    )
    .await;
    assert!(
        om.contains("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains(" # {trace_id=\""),
        "traced requests leave exemplars: {om}"
    );
}

#[tokio::test]
async fn serves_health_probes_with_details_on_request() {
    let config = HubConfig::default();
    let health = config.health.clone();
    let addr = serve(config).await;
    let all = request(addr, "GET /health HTTP/1.1").await;
    assert!(all.contains("application/health+json"), "{all}");
    for check in ["uptime", "memory", "disk", "work_queue"] {
        assert!(
            all.contains(&format!("\"{check}\"")),
            "missing {check}: {all}"
        );
    }
    assert!(
        !all.contains("in_progress"),
        "details are hidden by default: {all}"
    );
    let verbose = request(addr, "GET /health?verbose HTTP/1.1").await;
    assert!(verbose.contains("\"in_progress\":0"), "{verbose}");
    for probe in [
        "/livez",
        "/readyz",
        "/health/live",
        "/health/ready",
        "/health/startup",
    ] {
        let response = request(addr, &format!("GET {probe} HTTP/1.1")).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{probe}: {response}");
    }
    health.set_draining();
    assert!(
        request(addr, "GET /readyz HTTP/1.1")
            .await
            .starts_with("HTTP/1.1 503")
    );
    assert!(
        request(addr, "GET /livez HTTP/1.1")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let metrics = request(addr, "GET /metrics HTTP/1.1").await;
    assert!(
        metrics.contains("cortex_health_check_status{check=\"uptime\"} 1.0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn continues_an_incoming_trace() {
    let addr = serve(HubConfig::default()).await;
    let response = request(
        addr,
        "GET /api/trace HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: congo=t61rcWkgMzE",
    )
    .await;
    assert!(
        response.contains("\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""),
        "{response}"
    );
    assert!(
        !response.contains("00f067aa0ba902b7"),
        "a fresh span id: {response}"
    );
    assert!(
        response.contains("\"tracestate\":\"congo=t61rcWkgMzE\""),
        "{response}"
    );
    let fresh = request(addr, "GET /api/trace HTTP/1.1\r\ntraceparent: garbage").await;
    assert!(
        !fresh.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{fresh}"
    );
    assert!(fresh.contains("\"trace_id\":\""), "{fresh}");
}

#[tokio::test]
async fn large_responses_are_compressed_when_accepted() {
    let addr = serve(HubConfig::default()).await;
    let plain = request(addr, "GET /metrics HTTP/1.1").await;
    assert!(
        !plain.to_ascii_lowercase().contains("content-encoding"),
        "identity without Accept-Encoding"
    );
    // Read raw bytes: the body is binary.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: hub\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let head =
        String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
            .to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(
        head.contains("vary: accept") || head.contains("vary: accept-encoding"),
        "{head}"
    );
}

#[tokio::test]
async fn metrics_token_protects_the_endpoint() {
    let addr = serve(HubConfig {
        metrics_token: Some("hub-secret".to_owned()),
        ..HubConfig::default()
    })
    .await;
    assert!(
        request(addr, "GET /metrics HTTP/1.1")
            .await
            .starts_with("HTTP/1.1 401")
    );
    let ok = request(
        addr,
        "GET /metrics HTTP/1.1\r\nAuthorization: Bearer hub-secret",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[tokio::test]
async fn compressed_uploads_are_decoded_and_bombs_refused() {
    use std::io::Write;
    let addr = serve(HubConfig::default()).await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&vec![b'a'; 100_000]).unwrap();
    let small = encoder.finish().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&vec![0u8; 64 * 1024 * 1024]).unwrap();
    let bomb = encoder.finish().unwrap();
    for (body, expected) in [(small, "HTTP/1.1 200"), (bomb, "HTTP/1.1 413")] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/upload HTTP/1.1\r\nHost: hub\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with(expected), "{response}");
        if expected.ends_with("200") {
            assert!(response.contains("\"bytes\":100000"), "{response}");
        }
    }
}

#[tokio::test]
async fn flaky_downstream_opens_the_breaker_and_reports_it() {
    let addr = serve(HubConfig::default()).await;
    let bad = request(addr, "PUT /api/flaky/config?rate=2 HTTP/1.1").await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let healthy = request(addr, "GET /api/flaky HTTP/1.1").await;
    assert!(healthy.starts_with("HTTP/1.1 200"), "{healthy}");
    assert!(healthy.contains("ratelimit-remaining"), "{healthy}");
    let set = request(addr, "PUT /api/flaky/config?rate=1 HTTP/1.1").await;
    assert!(set.starts_with("HTTP/1.1 200"), "{set}");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = request(addr, "GET /api/flaky HTTP/1.1").await;
        statuses.push(response[9..12].to_owned());
        if response.contains("circuit breaker is open") {
            assert!(response.contains("retry-after: 1"), "{response}");
            break;
        }
    }
    assert!(
        statuses.iter().all(|status| status == "503"),
        "{statuses:?}"
    );
    let stats = request(addr, "GET /resilience HTTP/1.1").await;
    assert!(stats.contains(r#""state": "open""#), "{stats}");
    let metrics = request(addr, "GET /metrics HTTP/1.1").await;
    assert!(
        metrics.contains(r#"cortex_circuitbreaker_state{name="flaky-downstream",state="open"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"cortex_retry_calls_total{name="flaky-downstream",kind="failed_with_retry"}"#
        )
    );
}

/// A request with a JSON body.
async fn post_json(addr: SocketAddr, path: &str, body: &str) -> String {
    let head = format!(
        "POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nHost: hub\r\nConnection: close\r\n\r\n{body}");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// Polls an order until it leaves pending/processing.
async fn finished_order(addr: SocketAddr, id: u64) -> String {
    for _ in 0..200 {
        let response = request(addr, &format!("GET /api/orders/{id} HTTP/1.1")).await;
        if response.contains(r#""state":"completed""#) || response.contains(r#""state":"failed""#) {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("order {id} never finished");
}

#[tokio::test]
async fn orders_are_actors_with_a_state_machine_events_and_metrics() {
    let config = HubConfig::default();
    let actors = config.actors.clone();
    let addr = serve(config).await;

    let created = post_json(addr, "/api/orders", r#"{"item":"book","quantity":2}"#).await;
    assert!(created.starts_with("HTTP/1.1 202"), "{created}");
    assert!(created.contains(r#""state":"pending""#), "{created}");
    let paid = finished_order(addr, 1).await;
    assert!(paid.contains(r#""state":"completed""#), "{paid}");
    assert!(paid.contains(r#""payment_attempts":1"#), "{paid}");

    let declined = post_json(
        addr,
        "/api/orders",
        r#"{"item":"lamp","fail_payment":true}"#,
    )
    .await;
    assert!(declined.starts_with("HTTP/1.1 202"), "{declined}");
    let failed = finished_order(addr, 2).await;
    assert!(failed.contains(r#""state":"failed""#), "{failed}");
    assert!(
        failed.contains(r#""payment_attempts":3"#),
        "retried: {failed}"
    );
    assert!(failed.contains("payment declined"), "{failed}");

    let missing = request(addr, "GET /api/orders/999 HTTP/1.1").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let bad_id = request(addr, "GET /api/orders/abc HTTP/1.1").await;
    assert!(bad_id.starts_with("HTTP/1.1 400"), "{bad_id}");
    let empty = post_json(addr, "/api/orders", r#"{"item":"  "}"#).await;
    assert!(empty.starts_with("HTTP/1.1 422"), "{empty}");
    let malformed = post_json(addr, "/api/orders", "{").await;
    assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");

    let summary = request(addr, "GET /api/orders HTTP/1.1").await;
    for expected in [
        r#""created":2"#,
        r#""processing":2"#,
        r#""completed":1"#,
        r#""failed":1"#,
        r#""payment_calls":4"#,
    ] {
        assert!(summary.contains(expected), "{expected} in {summary}");
    }
    let metrics = request(addr, "GET /metrics HTTP/1.1").await;
    assert!(
        metrics.contains(r#"cortex_actor_live{actor="OrderActor"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"cortex_circuitbreaker_state{name="payments",state="closed"} 1"#),
        "{metrics}"
    );
    let health = request(addr, "GET /health?verbose HTTP/1.1").await;
    assert!(health.contains(r#""actors""#), "{health}");

    let report = actors.shutdown(std::time::Duration::from_secs(1)).await;
    assert_eq!(report.drained, 2, "{report:?}");
    let gone = request(addr, "GET /api/orders/1 HTTP/1.1").await;
    assert!(gone.starts_with("HTTP/1.1 404"), "{gone}");
}
