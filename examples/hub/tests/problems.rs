//! Every error the Hub answers is RFC 9457 `application/problem+json`
//! (issue 12, item 8), with its protocol headers, and the fallbacks are
//! still measured (docs/ARCHITECTURE.md, "Layer after Router::merge").
//! Served on a real loopback socket, spoken to by a real HTTP client.

use std::net::SocketAddr;
use std::time::Duration;

use cortex_hub::{Hub, HubConfig};
use reqwest::{Client, Response, StatusCode, header};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve() -> SocketAddr {
    let hub = Hub::new(HubConfig::default()).expect("the hub starts");
    let router = hub.router().expect("the hub builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// The response's status, headers and problem body; panics unless it is
/// `application/problem+json` with the four standard members.
async fn problem(response: Response) -> (StatusCode, header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{status}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "about:blank", "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert_eq!(body["title"], status.canonical_reason().unwrap(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    (status, headers, body)
}

#[tokio::test]
async fn an_unknown_path_gets_a_404_problem_that_is_still_measured() {
    let addr = serve().await;
    let client = Client::new();
    let response = client
        .get(format!("http://{addr}/no/such/route"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "no route matches /no/such/route");
    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let unmatched = metrics
        .lines()
        .find(|line| {
            line.starts_with("http_server_request_duration_seconds_count{")
                && line.contains(r#"http_route="unmatched""#)
                && line.contains(r#"http_response_status_code="404""#)
        })
        .unwrap_or_else(|| panic!("no unmatched 404 in:\n{metrics}"));
    assert!(unmatched.ends_with(" 1"), "{unmatched}");
}

#[tokio::test]
async fn a_method_a_route_does_not_serve_gets_a_405_problem_with_allow() {
    let addr = serve().await;
    let client = Client::new();
    for (path, allowed) in [("/api/echo/1", "GET"), ("/", "GET")] {
        let response = client
            .delete(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        let (status, headers, body) = problem(response).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let allow = headers[header::ALLOW].to_str().unwrap();
        assert!(allow.contains(allowed), "{path}: Allow: {allow}");
        assert_eq!(body["detail"], format!("DELETE is not allowed on {path}"));
    }
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_a_413_problem_and_an_unknown_coding_a_415() {
    let addr = serve().await;
    let client = Client::new();
    // The attack of item 9: a huge declared upload asking for
    // `100 Continue`. The 413 comes first, from the headers alone (raw
    // TCP, so nothing between us and the wire hides an interim response).
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/upload HTTP/1.1\r\nHost: hub\r\nExpect: 100-continue\r\n\
              Content-Length: 99999999999\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("no answer within 5 s")
            .unwrap();
        assert_ne!(read, 0, "closed without an answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 413 "), "{head:?}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head:?}"
    );

    let response = client
        .post(format!("http://{addr}/api/upload"))
        .header(header::CONTENT_ENCODING, "x-foo")
        .body("x")
        .send()
        .await
        .unwrap();
    let (status, headers, _) = problem(response).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(headers.contains_key(header::ACCEPT_ENCODING));

    // No body: served, whatever the Content-Encoding says.
    let response = client
        .get(format!("http://{addr}/health/live"))
        .header(header::CONTENT_ENCODING, "x-foo")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
