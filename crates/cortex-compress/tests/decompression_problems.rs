//! What the decompression layer answers by itself (issue 12, items 8 and 9):
//! RFC 9457 `application/problem+json` for its 415 and its up-front 413,
//! no `100 Continue` before refusing a declared length over the limit, and
//! bodiless requests passed through whatever their `Content-Encoding`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use cortex_compress::DecompressionLayer;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

fn app(layer: DecompressionLayer) -> Router {
    Router::new()
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route("/health/live", get(|| async { "up" }))
        .layer(layer)
}

async fn problem_of(response: axum::response::Response) -> (StatusCode, http::HeaderMap, Value) {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|error| {
        panic!("{error}: {:?}", String::from_utf8_lossy(&bytes));
    });
    (parts.status, parts.headers, value)
}

#[tokio::test]
async fn an_unknown_coding_gets_a_415_problem_with_accept_encoding() {
    let request = Request::post("/upload")
        .header(header::CONTENT_ENCODING, "lzma")
        .body(axum::body::Body::from("x"))
        .unwrap();
    let response = app(DecompressionLayer::new())
        .oneshot(request)
        .await
        .unwrap();
    let (status, headers, problem) = problem_of(response).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(
        headers[header::ACCEPT_ENCODING]
            .to_str()
            .unwrap()
            .ends_with("identity")
    );
    assert_eq!(problem["type"], "about:blank");
    assert_eq!(problem["title"], "Unsupported Media Type");
    assert_eq!(problem["status"], 415);
    assert!(problem["detail"].as_str().unwrap().contains("lzma"));
    // The body's declared length is the bytes sent.
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        serde_json::to_vec(&problem).unwrap().len().to_string()
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_gets_a_413_problem_without_reading_the_body() {
    // A body that panics if polled: the layer must answer from the headers.
    let request = Request::post("/upload")
        .header(header::CONTENT_LENGTH, "1001")
        .body(axum::body::Body::new(NeverRead))
        .unwrap();
    let response = app(DecompressionLayer::new().max_size(1000))
        .oneshot(request)
        .await
        .unwrap();
    let (status, headers, problem) = problem_of(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(problem["type"], "about:blank");
    assert_eq!(problem["title"], "Payload Too Large");
    assert_eq!(problem["status"], 413);
    assert_eq!(problem["max_size"], 1000);
    assert!(problem["detail"].as_str().unwrap().contains("1001"));
}

/// A request body whose first poll panics.
struct NeverRead;

impl http_body::Body for NeverRead {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        panic!("the body of a refused request was read")
    }
}

#[tokio::test]
async fn a_declared_length_within_the_limit_is_served() {
    let request = Request::post("/upload")
        .header(header::CONTENT_LENGTH, "1000")
        .body(axum::body::Body::from(vec![b'a'; 1000]))
        .unwrap();
    let response = app(DecompressionLayer::new().max_size(1000))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bodiless_request_passes_through_whatever_its_content_encoding() {
    let app = app(DecompressionLayer::new());
    for coding in ["x-foo", "gzip", "gzip, br"] {
        let request = Request::get("/health/live")
            .header(header::CONTENT_ENCODING, coding)
            .body(axum::body::Body::new(Empty::<Bytes>::new()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{coding}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "up");
    }
    // A body that is there is still refused.
    let request = Request::post("/upload")
        .header(header::CONTENT_ENCODING, "x-foo")
        .body(axum::body::Body::new(Full::new(Bytes::from_static(b"x"))))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Reads until the end of the first response's headers.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("no response within 5 s")
            .unwrap();
        if read == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn expect_100_continue_over_the_limit_gets_413_and_no_100_continue_on_the_wire() {
    let addr = serve(app(DecompressionLayer::new())).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n\
              Content-Length: 99999999999\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(
        head.starts_with("HTTP/1.1 413 "),
        "the first response must be the 413: {head:?}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head:?}"
    );
}

#[tokio::test]
async fn a_bodiless_get_with_an_unknown_content_encoding_is_served_over_the_wire() {
    let addr = serve(app(DecompressionLayer::new())).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: test\r\nContent-Encoding: x-foo\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head:?}");
}
