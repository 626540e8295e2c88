//! Request decompression at the edges: the tower-http style service API,
//! header values that name no coding, trailers and failures of the inner
//! body, truncated streams, and what the inner service can learn about the
//! body's size.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use cortex_compress::decompression::{DecompressionRequestBody, DecompressionResponseBody};
use cortex_compress::{BoxError, Decompression, DecompressionLayer};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// An inner service that reads the whole decoded body and answers with it
/// (or with the body's error as a 400).
async fn echo(
    request: Request<
        DecompressionRequestBody<impl Body<Data = Bytes, Error = impl Into<BoxError>>>,
    >,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match request.into_body().collect().await {
        Ok(collected) => Ok(Response::new(Full::new(collected.to_bytes()))),
        Err(error) => {
            let mut response = Response::new(Full::new(Bytes::from(error.to_string())));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            Ok(response)
        }
    }
}

async fn send<B>(
    layer: DecompressionLayer,
    coding: Option<HeaderValue>,
    body: B,
) -> (StatusCode, HeaderMap, Bytes)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let service = layer.layer(service_fn(echo));
    let mut request = Request::post("/upload").body(body).unwrap();
    if let Some(coding) = coding {
        request
            .headers_mut()
            .insert(header::CONTENT_ENCODING, coding);
    }
    let response = service.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

/// What the inner service answered (its "body" is a plain value).
fn inner<T>(response: Response<DecompressionResponseBody<T>>) -> T {
    match response.into_body() {
        DecompressionResponseBody::Inner { inner } => inner,
        DecompressionResponseBody::Rejection { .. } => panic!("the request was refused"),
    }
}

/// Data frames, then optionally trailers or an error.
struct Frames(VecDeque<Result<Frame<Bytes>, &'static str>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        Poll::Ready(self.0.pop_front())
    }
}

#[tokio::test]
async fn decompression_new_and_its_default_layer_decode_within_16_mib() {
    // Wrapping, unwrapping and wrapping again with the default layer.
    let service = Decompression::new(service_fn(echo));
    let relayered = Decompression::<()>::layer().layer(service.into_inner());
    let mut request = Request::post("/")
        .body(Full::new(Bytes::from(gzip(b"hello"))))
        .unwrap();
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let response = relayered.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello");
    // `DecompressionLayer::default()` is `new()`: the same 16 MiB limit.
    let big = gzip(&vec![0u8; 16 * 1024 * 1024 + 1]);
    let (status, _, _) = send(
        DecompressionLayer::default(),
        Some(HeaderValue::from_static("gzip")),
        Full::new(Bytes::from(big)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_content_encoding_that_is_not_text_gets_415() {
    let (status, headers, body) = send(
        DecompressionLayer::new(),
        Some(HeaderValue::from_bytes(b"gz\xffip").unwrap()),
        Full::new(Bytes::from_static(b"x")),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        headers[header::ACCEPT_ENCODING],
        "gzip, br, zstd, deflate, identity"
    );
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(body.starts_with(b"{"));
}

#[tokio::test]
async fn codings_stacked_over_two_header_lines_get_415() {
    let service = DecompressionLayer::new().layer(service_fn(echo));
    let twice = gzip(&gzip(b"double"));
    let mut request = Request::post("/")
        .body(Full::new(Bytes::from(twice)))
        .unwrap();
    for _ in 0..2 {
        request
            .headers_mut()
            .append(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn an_empty_content_encoding_is_identity() {
    let (status, _, body) = send(
        DecompressionLayer::new(),
        Some(HeaderValue::from_static("  ")),
        Full::new(Bytes::from_static(b"plain")),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from_static(b"plain"))
    );
}

#[tokio::test]
async fn the_415_response_has_a_problem_body_of_known_length() {
    let service = DecompressionLayer::new().layer(service_fn(echo));
    let mut request = Request::post("/")
        .body(Full::new(Bytes::from_static(b"x")))
        .unwrap();
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("lzma"));
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let declared: u64 = response.headers()[header::CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = response.into_body();
    assert!(!body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(declared));
    let bytes = body.collect().await.unwrap().to_bytes();
    assert_eq!(bytes.len() as u64, declared);
}

// Trailers sent after a complete compressed stream reach the service: the
// body keeps reading the inner body past the stream's end (data there is
// ignored) until its trailers or its end.
#[tokio::test]
async fn trailers_follow_the_decoded_data() {
    let compressed = Bytes::from(gzip(b"payload"));
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("abc"));
    let body = Frames(VecDeque::from([
        Ok(Frame::data(compressed.slice(..10))),
        Ok(Frame::data(compressed.slice(10..))),
        Ok(Frame::trailers(trailers)),
    ]));
    let service = DecompressionLayer::new().layer(service_fn(
        |request: Request<DecompressionRequestBody<Frames>>| async move {
            let collected = request.into_body().collect().await.unwrap();
            let trailers = collected.trailers().cloned();
            Ok::<_, Infallible>(Response::new((collected.to_bytes(), trailers)))
        },
    ));
    let mut request = Request::post("/").body(body).unwrap();
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let (data, trailers) = inner(service.oneshot(request).await.unwrap());
    assert_eq!(data, "payload");
    assert_eq!(trailers.unwrap()["x-checksum"], "abc");
}

#[tokio::test]
async fn an_inner_body_error_reaches_the_service_unchanged() {
    let compressed = Bytes::from(gzip(&[b'a'; 10_000]));
    let body = Frames(VecDeque::from([
        Ok(Frame::data(compressed.slice(..20))),
        Err("client reset the stream"),
    ]));
    let (status, _, message) = send(
        DecompressionLayer::new(),
        Some(HeaderValue::from_static("gzip")),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message, "client reset the stream");
}

#[tokio::test]
async fn a_stream_cut_off_part_way_is_an_error_not_a_short_body() {
    let original = vec![b'z'; 50_000];
    for (coding, compressed) in [
        ("gzip", gzip(&original)),
        ("zstd", zstd::encode_all(&original[..], 3).unwrap()),
    ] {
        for cut in [10, compressed.len() - 4] {
            let (status, _, message) = send(
                DecompressionLayer::new(),
                Some(HeaderValue::from_static(coding)),
                Full::new(Bytes::copy_from_slice(&compressed[..cut])),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{coding} cut at {cut}");
            assert!(!message.is_empty(), "{coding} cut at {cut}");
        }
    }
}

#[tokio::test]
async fn decoded_bodies_have_no_size_hint_and_identity_bodies_keep_theirs() {
    let service = DecompressionLayer::new().layer(service_fn(
        |request: Request<DecompressionRequestBody<Full<Bytes>>>| async move {
            let body = request.into_body();
            let hint = body.size_hint().exact();
            let ended = body.is_end_stream();
            let data = body.collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new((hint, ended, data)))
        },
    ));
    let plain = Request::post("/")
        .body(Full::new(Bytes::from_static(b"12345")))
        .unwrap();
    let (hint, ended, _) = inner(service.clone().oneshot(plain).await.unwrap());
    assert_eq!((hint, ended), (Some(5), false));

    let mut encoded = Request::post("/")
        .body(Full::new(Bytes::from(gzip(b"12345"))))
        .unwrap();
    encoded
        .headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    encoded
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("25"));
    let (hint, ended, data) = inner(service.oneshot(encoded).await.unwrap());
    // The compressed length says nothing about the decoded one.
    assert_eq!(
        (hint, ended, data),
        (None, false, Bytes::from_static(b"12345"))
    );
}

#[tokio::test]
async fn a_decoded_body_reports_its_end_once_fully_read() {
    let service = DecompressionLayer::new().layer(service_fn(
        |request: Request<DecompressionRequestBody<Full<Bytes>>>| async move {
            let mut body = std::pin::pin!(request.into_body());
            let mut data = Vec::new();
            while let Some(frame) = body.frame().await {
                data.extend_from_slice(&frame.unwrap().into_data().unwrap());
            }
            Ok::<_, Infallible>(Response::new((body.is_end_stream(), data)))
        },
    ));
    let mut request = Request::post("/")
        .body(Full::new(Bytes::from(gzip(b"done"))))
        .unwrap();
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let (ended, data) = inner(service.oneshot(request).await.unwrap());
    assert!(ended);
    assert_eq!(data, b"done");
}

/// With the `br` feature off, a brotli body is refused up front instead of
/// reaching the service undecoded.
#[cfg(not(feature = "br"))]
#[tokio::test]
async fn a_coding_whose_feature_is_off_gets_415() {
    let (status, headers, _) = send(
        DecompressionLayer::new(),
        Some(HeaderValue::from_static("br")),
        Full::new(Bytes::from_static(b"x")),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        !headers[header::ACCEPT_ENCODING]
            .to_str()
            .unwrap()
            .contains("br")
    );
}
