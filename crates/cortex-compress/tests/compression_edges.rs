//! Compression at the edges: the tower-http style service API, levels and
//! the size threshold as configured, allow-lists against untyped bodies,
//! and inner bodies that wait or fail mid-stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use cortex_compress::{Compression, CompressionLayer, Levels};
use http::{Request, Response, header};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

/// Repetitive text: compresses well at every level.
fn text(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn request(accept: &str) -> Request<()> {
    Request::get("/")
        .header(header::ACCEPT_ENCODING, accept)
        .body(())
        .unwrap()
}

/// A body of `frames`: `Some(Ok)` data, `Some(Err)` a failure, `None` a
/// poll that returns Pending once (and wakes at once).
struct Scripted(VecDeque<Option<Result<&'static [u8], &'static str>>>);

impl Body for Scripted {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        match self.0.pop_front() {
            None => Poll::Ready(None),
            Some(None) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(data))))),
            Some(Some(Err(error))) => Poll::Ready(Some(Err(error))),
        }
    }
}

/// Answers every request with its body: state a test can reach through
/// `get_ref` / `get_mut`.
#[derive(Clone)]
struct Fixed(Bytes);

impl tower::Service<Request<()>> for Fixed {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(self.0.clone()))))
    }
}

#[tokio::test]
async fn compression_new_uses_the_defaults_and_exposes_its_inner_service() {
    let mut service = Compression::new(Fixed(Bytes::from_static(b"short")));
    assert_eq!(service.get_ref().0, "short");
    // Under the 1 KiB default threshold: sent as is.
    let response = service.clone().oneshot(request("gzip")).await.unwrap();
    assert!(response.headers().get(header::CONTENT_ENCODING).is_none());

    // Reconfiguring the inner service in place changes what is compressed.
    service.get_mut().0 = Bytes::from(text(4096));
    let response = service.clone().oneshot(request("gzip")).await.unwrap();
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(gunzip(&body), text(4096));

    // The unwrapped service is undecorated; `Compression::layer()` wraps it
    // again with the same defaults.
    let inner = service.into_inner();
    let plain = inner.clone().oneshot(request("gzip")).await.unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let relayered = Compression::<()>::layer().layer(inner);
    let response = relayered.oneshot(request("br;q=0.5, gzip")).await.unwrap();
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn levels_are_applied_and_out_of_range_levels_are_clamped() {
    let original = text(256 * 1024);
    let body_at = |levels: Levels| {
        let original = original.clone();
        async move {
            let inner = service_fn(move |_: Request<()>| {
                let original = original.clone();
                async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(original)))) }
            });
            let service = CompressionLayer::new().levels(levels).layer(inner);
            let response = service.oneshot(request("gzip")).await.unwrap();
            response.into_body().collect().await.unwrap().to_bytes()
        }
    };
    let stored = body_at(Levels {
        gzip: 0,
        ..Levels::default()
    })
    .await;
    let best = body_at(Levels {
        gzip: 9,
        ..Levels::default()
    })
    .await;
    let beyond = body_at(Levels {
        gzip: 1_000,
        ..Levels::default()
    })
    .await;
    // Level 0 stores: the output is no smaller than the input.
    assert!(stored.len() >= original.len(), "{}", stored.len());
    assert!(best.len() < original.len() / 20, "{}", best.len());
    // Past 9 means 9, not an encoder error.
    assert_eq!(beyond, best);
    for body in [stored, best, beyond] {
        assert_eq!(gunzip(&body), original);
    }
}

#[tokio::test]
async fn zstd_and_brotli_levels_outside_their_ranges_still_encode() {
    let original = text(64 * 1024);
    for (accept, levels) in [
        (
            "zstd",
            Levels {
                zstd: -7,
                ..Levels::default()
            },
        ),
        (
            "zstd",
            Levels {
                zstd: 99,
                ..Levels::default()
            },
        ),
        (
            "br",
            Levels {
                brotli: 99,
                ..Levels::default()
            },
        ),
    ] {
        let body = original.clone();
        let inner = service_fn(move |_: Request<()>| {
            let body = body.clone();
            async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
        });
        let service = CompressionLayer::new().levels(levels).layer(inner);
        let response = service.oneshot(request(accept)).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_ENCODING], accept);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let decoded = match accept {
            "zstd" => zstd::decode_all(&body[..]).unwrap(),
            _ => {
                let mut out = Vec::new();
                brotli::Decompressor::new(&body[..], 4096)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
        };
        assert_eq!(decoded, original, "{accept} {levels:?}");
    }
}

#[tokio::test]
async fn min_size_is_the_threshold_for_bodies_of_known_size() {
    let service = |min: u64| {
        let inner = service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text(100)))))
        });
        CompressionLayer::new().min_size(min).layer(inner)
    };
    let below = service(101).oneshot(request("gzip")).await.unwrap();
    assert!(below.headers().get(header::CONTENT_ENCODING).is_none());
    let at = service(100).oneshot(request("gzip")).await.unwrap();
    assert_eq!(at.headers()[header::CONTENT_ENCODING], "gzip");
    // The default threshold (1 KiB) leaves 100 bytes alone.
    let default = CompressionLayer::default()
        .layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text(100)))))
        }))
        .oneshot(request("gzip"))
        .await
        .unwrap();
    assert!(default.headers().get(header::CONTENT_ENCODING).is_none());
}

#[tokio::test]
async fn an_allow_list_does_not_compress_bodies_without_a_content_type() {
    let untyped = service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text(4096)))))
    });
    let service = CompressionLayer::new()
        .only_content_types(["text/*"])
        .layer(untyped);
    let response = service.oneshot(request("gzip")).await.unwrap();
    assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, text(4096));
}

#[tokio::test]
async fn a_source_that_waits_with_nothing_buffered_yields_no_empty_frame() {
    let inner = service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Scripted(VecDeque::from([
            None,
            Some(Ok(&b"event one\n"[..])),
            None,
            Some(Ok(&b"event two\n"[..])),
        ]))))
    });
    let service = CompressionLayer::new().layer(inner);
    let response = service.oneshot(request("gzip")).await.unwrap();
    let mut body = std::pin::pin!(response.into_body());
    assert!(!body.is_end_stream());
    let mut compressed = Vec::new();
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        assert!(!data.is_empty(), "an empty data frame was sent");
        compressed.extend_from_slice(&data);
    }
    assert!(body.is_end_stream());
    assert_eq!(gunzip(&compressed), b"event one\nevent two\n");
}

#[tokio::test]
async fn an_inner_body_error_ends_the_compressed_stream_with_that_error() {
    let inner = service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Scripted(VecDeque::from([
            Some(Ok(&b"partial"[..])),
            Some(Err("upstream reset")),
            Some(Ok(&b"never sent"[..])),
        ]))))
    });
    let service = CompressionLayer::new().layer(inner);
    let response = service.oneshot(request("gzip")).await.unwrap();
    let mut body = std::pin::pin!(response.into_body());
    let error = loop {
        match body.frame().await {
            Some(Ok(_)) => {}
            Some(Err(error)) => break error,
            None => panic!("the stream ended without the error"),
        }
    };
    assert_eq!(error.to_string(), "upstream reset");
    assert!(body.frame().await.is_none(), "nothing after the error");
    assert!(body.is_end_stream());
}

#[tokio::test]
async fn identity_bodies_keep_their_size_hint_and_end_of_stream() {
    let inner = service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text(4096)))))
    });
    let service = CompressionLayer::new().layer(inner);
    // No Accept-Encoding: sent as is, with its exact length known.
    let response = service
        .clone()
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    let body = response.into_body();
    assert_eq!(body.size_hint().exact(), Some(4096));
    assert!(!body.is_end_stream());
    // Compressed: the length is unknown until the end.
    let response = service.oneshot(request("gzip")).await.unwrap();
    assert_eq!(response.into_body().size_hint().exact(), None);
}

#[cfg(feature = "metrics")]
#[test]
fn registering_metrics_over_a_taken_name_is_an_error() {
    use cortex_metrics::{MetricsError, MetricsRegistry, RegisterMetrics};
    for taken in [
        "cortex_compression_bytes_total",
        "cortex_compression_responses_total",
    ] {
        let registry = MetricsRegistry::new();
        registry.gauge(taken, "Something else.").unwrap();
        let error = CompressionLayer::new()
            .register_metrics(&registry)
            .unwrap_err();
        // Counter families are named without the `_total` of their sample.
        let family = taken.trim_end_matches("_total");
        assert!(
            matches!(&error, MetricsError::Conflict { name, .. } if name == family),
            "{error}"
        );
    }
}
