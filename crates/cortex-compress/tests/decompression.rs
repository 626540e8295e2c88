//! Request decompression: every coding, the 413 limits, 415, pass-through.

use std::io::Write;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use cortex_compress::DecompressionLayer;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn app(layer: DecompressionLayer) -> Router {
    Router::new()
        .route(
            "/echo",
            post(
                |headers: http::HeaderMap, body: axum::body::Bytes| async move {
                    assert!(!headers.contains_key(header::CONTENT_ENCODING));
                    body
                },
            ),
        )
        .layer(layer)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" | "x-gzip" => gzip(data),
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                e.write_all(data).unwrap();
            }
            out
        }
        "zstd" => zstd::encode_all(data, 3).unwrap(),
        other => panic!("{other}"),
    }
}

async fn post_body(
    app: &Router,
    coding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>, http::HeaderMap) {
    let mut request = Request::post("/echo");
    if let Some(coding) = coding {
        request = request.header(header::CONTENT_ENCODING, coding);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body, headers)
}

#[tokio::test]
async fn every_coding_is_decoded() {
    let app = app(DecompressionLayer::new());
    let original: Vec<u8> = (0..200_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    for coding in ["gzip", "x-gzip", "deflate", "br", "zstd", "GZIP"] {
        let (status, body, _) = post_body(
            &app,
            Some(coding),
            encode(&coding.to_lowercase(), &original),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{coding}");
        assert_eq!(body, original, "{coding}");
    }
    let (status, body, _) = post_body(&app, None, b"plain".to_vec()).await;
    assert_eq!((status, body), (StatusCode::OK, b"plain".to_vec()));
    let (status, body, _) = post_body(&app, Some("identity"), b"plain".to_vec()).await;
    assert_eq!((status, body), (StatusCode::OK, b"plain".to_vec()));
}

#[tokio::test]
async fn a_decompression_bomb_gets_413_not_an_oom() {
    // 64 MiB of zeros compress to about 64 KiB of gzip.
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 200 * 1024);
    let app = app(DecompressionLayer::new());
    let (status, _, _) = post_body(&app, Some("gzip"), bomb.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // The ratio limit alone catches it too.
    let ratio_only = app_with(DecompressionLayer::new().max_size(u64::MAX).max_ratio(100));
    let (status, _, _) = post_body(&ratio_only, Some("gzip"), bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

fn app_with(layer: DecompressionLayer) -> Router {
    app(layer)
}

#[tokio::test]
async fn the_size_limit_is_exact() {
    let app = app(DecompressionLayer::new().max_size(1000));
    let (status, _, _) = post_body(&app, Some("gzip"), gzip(&[7u8; 1000])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = post_body(&app, Some("gzip"), gzip(&[7u8; 1001])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_or_stacked_codings_get_415_with_accept_encoding() {
    let app = app(DecompressionLayer::new());
    for coding in ["compress", "bogus", "gzip, br"] {
        let (status, _, headers) = post_body(&app, Some(coding), b"x".to_vec()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{coding}");
        assert!(
            headers[header::ACCEPT_ENCODING]
                .to_str()
                .unwrap()
                .contains("gzip")
        );
    }
}

#[tokio::test]
async fn corrupt_or_truncated_bodies_are_errors_not_panics() {
    let app = app(DecompressionLayer::new());
    let mut truncated = gzip(&[1u8; 10_000]);
    truncated.truncate(truncated.len() / 2);
    let (status, _, _) = post_body(&app, Some("gzip"), truncated).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _, _) = post_body(&app, Some("br"), b"definitely not brotli".to_vec()).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _, _) = post_body(&app, Some("zstd"), vec![0xff; 64]).await;
    assert!(status.is_client_error(), "{status}");
}
