//! The layer end to end, decoded by independent decoders (flate2, brotli,
//! zstd crates).

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use cortex_compress::{CompressionLayer, Encoding};
use http::{HeaderMap, Request, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

fn json(len: usize) -> String {
    let mut out = String::from("[");
    let mut i = 0;
    while out.len() < len {
        out.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item {i}\",\"tags\":[\"a\",\"b\"]}},"
        ));
        i += 1;
    }
    out.push_str("{}]");
    out
}

/// A stream that yields one event, then never ends: an SSE connection.
struct OneEventThenPending(bool);

impl http_body::Body for OneEventThenPending {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.0 {
            Poll::Pending
        } else {
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                b"data: hello\n\n",
            )))))
        }
    }
}

/// Data then trailers.
struct WithTrailers(u8);

impl http_body::Body for WithTrailers {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0 += 1;
        Poll::Ready(match self.0 {
            1 => Some(Ok(Frame::data(Bytes::from(json(4096))))),
            2 => {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", "0".parse().unwrap());
                Some(Ok(Frame::trailers(trailers)))
            }
            _ => None,
        })
    }
}

fn app(layer: CompressionLayer) -> Router {
    Router::new()
        .route(
            "/json",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::ETAG, "\"v1\""),
                    ],
                    json(200_000),
                )
            }),
        )
        .route("/tiny", get(|| async { "tiny" }))
        .route(
            "/png",
            get(|| async {
                ([(header::CONTENT_TYPE, "image/png")], vec![0u8; 5000]).into_response()
            }),
        )
        .route(
            "/encoded",
            get(|| async {
                ([(header::CONTENT_ENCODING, "gzip")], vec![1u8; 5000]).into_response()
            }),
        )
        .route(
            "/vary",
            get(|| async {
                ([(header::VARY, "Origin, accept-encoding")], json(5000)).into_response()
            }),
        )
        .route(
            "/sse",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    Body::new(OneEventThenPending(false)),
                )
                    .into_response()
            }),
        )
        .route("/trailers", get(|| async { Body::new(WithTrailers(0)) }))
        .layer(layer)
}

async fn fetch(
    app: &Router,
    method: &str,
    path: &str,
    accept: Option<&str>,
) -> (http::response::Parts, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT_ENCODING, accept);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts, bytes)
}

fn decode(encoding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap(),
        "deflate" => flate2::read::ZlibDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap(),
        "br" => brotli::Decompressor::new(data, 4096)
            .read_to_end(&mut out)
            .unwrap(),
        "zstd" => zstd::stream::read::Decoder::new(data)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap(),
        other => panic!("unexpected encoding {other}"),
    };
    out
}

#[tokio::test]
async fn every_encoding_round_trips_with_the_right_headers() {
    let app = app(CompressionLayer::new());
    let original = json(200_000);
    for (accept, expected) in [
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("gzip, br, zstd", "br"),
    ] {
        let (parts, body) = fetch(&app, "GET", "/json", Some(accept)).await;
        assert_eq!(
            parts.headers[header::CONTENT_ENCODING],
            expected,
            "{accept}"
        );
        assert!(!parts.headers.contains_key(header::CONTENT_LENGTH));
        assert_eq!(parts.headers[header::ETAG], "W/\"v1\"");
        assert_eq!(parts.headers.get_all(header::VARY).iter().count(), 1);
        assert!(
            body.len() < original.len() / 4,
            "{expected}: {} bytes",
            body.len()
        );
        assert_eq!(decode(expected, &body), original.as_bytes(), "{expected}");
    }
}

#[tokio::test]
async fn skipped_responses_pass_through_untouched() {
    let app = app(CompressionLayer::new());
    let (parts, body) = fetch(&app, "GET", "/tiny", Some("gzip")).await;
    assert!(!parts.headers.contains_key(header::CONTENT_ENCODING));
    assert_eq!(body, b"tiny");
    let (parts, _) = fetch(&app, "GET", "/png", Some("gzip")).await;
    assert!(!parts.headers.contains_key(header::CONTENT_ENCODING));
    assert!(!parts.headers.contains_key(header::VARY));
    let (parts, body) = fetch(&app, "GET", "/encoded", Some("br")).await;
    assert_eq!(parts.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(body, vec![1u8; 5000]);
    let (parts, body) = fetch(&app, "HEAD", "/json", Some("gzip")).await;
    assert!(!parts.headers.contains_key(header::CONTENT_ENCODING));
    assert!(body.is_empty());
}

#[tokio::test]
async fn identity_responses_still_vary_and_existing_vary_is_not_duplicated() {
    let app = app(CompressionLayer::new());
    let (parts, body) = fetch(&app, "GET", "/json", None).await;
    assert!(!parts.headers.contains_key(header::CONTENT_ENCODING));
    assert_eq!(parts.headers[header::VARY], "Accept-Encoding");
    assert_eq!(body, json(200_000).as_bytes());
    let (parts, _) = fetch(&app, "GET", "/vary", Some("gzip")).await;
    let vary: Vec<_> = parts.headers.get_all(header::VARY).iter().collect();
    assert_eq!(vary, vec!["Origin, accept-encoding"]);
}

#[tokio::test]
async fn server_sent_events_arrive_before_the_stream_ends() {
    let app = app(CompressionLayer::new());
    let request = Request::get("/sse")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let mut body = response.into_body();
    let mut received = Vec::new();
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    // The stream never ends: frames must come from flushing on Pending.
    while !decoder.get_ref().ends_with(b"data: hello\n\n") {
        let frame = tokio::time::timeout(Duration::from_secs(2), body.frame())
            .await
            .expect("a flushed frame, not a wait for the end")
            .unwrap()
            .unwrap();
        let data = frame.into_data().unwrap();
        received.extend_from_slice(&data);
        decoder.write_all(&data).unwrap();
        decoder.flush().unwrap();
    }
    assert_eq!(decoder.get_ref(), b"data: hello\n\n");
}

#[tokio::test]
async fn trailers_follow_the_compressed_data() {
    let app = app(CompressionLayer::new().preference([Encoding::Zstd]));
    let request = Request::get("/trailers")
        .header(header::ACCEPT_ENCODING, "zstd")
        .body(Body::empty())
        .unwrap();
    let collected = app
        .oneshot(request)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(decode("zstd", &collected.to_bytes()), json(4096).as_bytes());
}

proptest! {
    #[test]
    fn negotiation_never_panics(values in proptest::collection::vec("[ -~]{0,60}", 0..4)) {
        let mut headers = HeaderMap::new();
        for value in &values {
            if let Ok(value) = value.parse() {
                headers.append(header::ACCEPT_ENCODING, value);
            }
        }
        let _ = cortex_compress::negotiate(&headers, &[Encoding::Brotli, Encoding::Gzip]);
    }
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn decisions_and_bytes_are_counted() {
    let registry = cortex_metrics::MetricsRegistry::new();
    let layer = CompressionLayer::new();
    let app = app(layer.clone());
    // Registered after the layer built its service: the service counts too.
    cortex_metrics::RegisterMetrics::register_metrics(&layer, &registry).unwrap();
    cortex_metrics::RegisterMetrics::register_metrics(&layer, &registry).unwrap();
    let (_, body) = fetch(&app, "GET", "/json", Some("gzip")).await;
    fetch(&app, "GET", "/png", Some("gzip")).await;
    fetch(&app, "GET", "/json", None).await;
    let text = registry.encode(cortex_metrics::Format::Prometheus);
    for expected in [
        "cortex_compression_responses_total{decision=\"gzip\"} 1\n",
        "cortex_compression_responses_total{decision=\"content_type\"} 1\n",
        "cortex_compression_responses_total{decision=\"identity\"} 1\n",
        &format!(
            "cortex_compression_bytes_total{{encoding=\"gzip\",direction=\"in\"}} {}\n",
            json(200_000).len()
        ),
        &format!(
            "cortex_compression_bytes_total{{encoding=\"gzip\",direction=\"out\"}} {}\n",
            body.len()
        ),
    ] {
        assert!(text.contains(expected), "missing {expected}\n{text}");
    }
}
