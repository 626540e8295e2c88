//! Heap allocations per request of `CompressionLayer` and
//! `DecompressionLayer` (#16): a count, not a time, so a regression fails
//! CI on any machine, however loaded.
//!
//! Each stack is measured without the layer and with it, in the same test;
//! the assertion is on the difference (the layer's own cost). Counts are
//! per thread (`allocation_counter`) on a current-thread runtime, so other
//! tests running at the same time are not counted.
//!
//! `cargo test -p cortex-compress --test allocations -- --nocapture` prints
//! the numbers.

use std::convert::Infallible;

use std::sync::LazyLock;

use bytes::Bytes;
use cortex_compress::{CompressionLayer, DecompressionLayer};
use cortex_testing::{AllocationInfo, cost, report, runtime};
use flate2::{Compress, Compression, FlushCompress};
use http::{Request, Response, StatusCode, header};
use http_body_util::{Empty, Full};
use tower::{Layer, Service, service_fn};

/// `CompressionLayer` on a response it leaves alone (11 bytes of JSON,
/// under the 1 KiB minimum, to a client that accepts gzip): allocations per
/// request over the bare service. None (the `Content-Type` is matched
/// without a lowercase copy since this test found one per response).
/// Lowering it is impossible; raising it needs a reason.
const COMPRESSION_SKIPPED: i64 = 0;

/// `CompressionLayer` gzipping a 4 KiB JSON response: allocations per
/// request over the bare service, less what flate2 allocates to deflate
/// the same body by itself (its state is made per response: six
/// allocations, about 312 KiB, with the miniz_oxide backend `cargo test -p
/// cortex-compress` builds; one, about 371 KiB, with the zlib-rs backend
/// the whole workspace's features select). What is left is the layer's
/// own: the boxed `Compressor` and its 16 KiB output chunk
/// (`src/codec.rs`), the boxed compressing body state and two output
/// frames. Lowering it is welcome; raising it needs a reason.
const COMPRESSION_GZIP: i64 = 5;

/// `DecompressionLayer` on a GET without a body (nothing to decode):
/// allocations per request over the bare service. None. Lowering it is
/// impossible; raising it needs a reason.
const DECOMPRESSION_NO_BODY: i64 = 0;

#[test]
fn compression_layer_skipping_a_small_response() {
    let rt = runtime();
    let bare = json_service(Bytes::from_static(SMALL));
    let layered = CompressionLayer::new().layer(bare.clone());
    let without = cost(&rt, &bare, accepts_gzip, ok);
    let with = cost(&rt, &layered, accepts_gzip, |response| {
        ok(response);
        assert!(!response.headers().contains_key(header::CONTENT_ENCODING));
    });
    let layer = report("CompressionLayer (skipped: too small)", without, with);
    assert_eq!(
        layer, COMPRESSION_SKIPPED,
        "skipping CompressionLayer allocations per request"
    );
}

#[test]
fn compression_layer_gzipping_a_response() {
    let rt = runtime();
    let bare = json_service(Bytes::from_static(big_json()));
    let layered = CompressionLayer::new().layer(bare.clone());
    let without = cost(&rt, &bare, accepts_gzip, ok);
    let with = cost(&rt, &layered, accepts_gzip, |response| {
        ok(response);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    });
    let layer = report("CompressionLayer (gzip, 4 KiB)", without, with);
    let codec = deflate_alone(big_json());
    println!(
        "  of which flate2 deflating the body alone: {} ({} B)",
        codec.count_total, codec.bytes_total
    );
    assert_eq!(
        layer - i64::try_from(codec.count_total).unwrap(),
        COMPRESSION_GZIP,
        "gzipping CompressionLayer allocations per request, the codec's own excluded"
    );
}

#[test]
fn decompression_layer_on_a_get_without_body() {
    let rt = runtime();
    let bare = json_service(Bytes::from_static(SMALL));
    // The inner service sees the layer's request body type.
    let layered = DecompressionLayer::new().layer(json_service(Bytes::from_static(SMALL)));
    let request = || {
        Request::get("/api/echo/42")
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let without = cost(&rt, &bare, request, ok);
    let with = cost(&rt, &layered, request, ok);
    let layer = report("DecompressionLayer (GET, no body)", without, with);
    assert_eq!(
        layer, DECOMPRESSION_NO_BODY,
        "DecompressionLayer allocations per request"
    );
}

const SMALL: &[u8] = br#"{"id":"42"}"#;

/// About 4 KiB of JSON, made once.
fn big_json() -> &'static [u8] {
    static BIG: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let items: Vec<String> = (0..64)
            .map(|i| format!(r#"{{"id":{i},"name":"item-{i}","tags":["cortex","load"]}}"#))
            .collect();
        format!(r#"{{"items":[{}]}}"#, items.join(",")).into_bytes()
    });
    &BIG
}

/// A service answering `body` as JSON; it allocates only its response's
/// header map (the body is static).
fn json_service<B>(
    body: Bytes,
) -> impl Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static
where
    B: Send + 'static,
{
    service_fn(move |_: Request<B>| {
        let body = body.clone();
        async move {
            let mut response = Response::new(Full::new(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            Ok::<_, Infallible>(response)
        }
    })
}

/// What flate2 allocates to deflate `body` in one go at gzip's default level
/// (4), as
/// async-compression's gzip encoder does (raw deflate; it writes the gzip
/// header and trailer itself), into room made beforehand.
fn deflate_alone(body: &[u8]) -> AllocationInfo {
    let mut out = Vec::with_capacity(2 * body.len() + 1024);
    let info = cortex_testing::measure(|| {
        let mut deflate = Compress::new(Compression::new(4), false);
        let status = deflate
            .compress_vec(body, &mut out, FlushCompress::Finish)
            .unwrap();
        assert_eq!(status, flate2::Status::StreamEnd);
    });
    assert!(!out.is_empty());
    info
}

fn accepts_gzip() -> Request<Empty<Bytes>> {
    Request::get("/api/echo/42")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Empty::new())
        .unwrap()
}

fn ok<B>(response: &Response<B>) {
    assert_eq!(response.status(), StatusCode::OK);
}
