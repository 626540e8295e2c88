//! Response compression: cortex-compress vs tower-http's CompressionLayer,
//! each at its defaults (cortex: brotli 4, gzip 4, deflate 4, zstd 3;
//! tower-http: brotli 4, gzip 6, deflate 6, zstd 3), compressing JSON
//! bodies of 1 MiB and 64 MiB, plus the per-request cost of a skipped tiny
//! response. Compressed sizes are written to
//! `target/compression-ratios.json` for the report.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt, service_fn};

fn json(len: usize) -> Bytes {
    let mut out = String::with_capacity(len + 128);
    out.push('[');
    let mut i = 0u64;
    while out.len() < len {
        out.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item {i}\",\"price\":{},\"tags\":[\"demo\",\"cortex\"]}},",
            i * 7 % 1000
        ));
        i += 1;
    }
    out.push_str("{}]");
    Bytes::from(out)
}

fn origin(
    body: Bytes,
) -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send> + Clone
{
    service_fn(move |_request: Request<()>| {
        let body = body.clone();
        async move {
            let mut response = Response::new(Full::new(body));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            Ok::<_, Infallible>(response)
        }
    })
}

/// Sends one request and returns the compressed size.
async fn run<S, B>(service: S, coding: &str) -> usize
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let request = Request::get("/")
        .header(header::ACCEPT_ENCODING, coding)
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}

fn ours(coding: &str) -> cortex_compress::CompressionLayer {
    use cortex_compress::Encoding;
    let encoding = match coding {
        "br" => Encoding::Brotli,
        "gzip" => Encoding::Gzip,
        "deflate" => Encoding::Deflate,
        _ => Encoding::Zstd,
    };
    cortex_compress::CompressionLayer::new().preference([encoding])
}

fn peer() -> tower_http::compression::CompressionLayer {
    // tower-http on its defaults (`CompressionLevel::Default`).
    tower_http::compression::CompressionLayer::new().quality(tower_http::CompressionLevel::Default)
}

fn compression(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut ratios: BTreeMap<String, usize> = BTreeMap::new();
    for (size_name, size) in [("1MiB", 1 << 20), ("64MiB", 64 << 20)] {
        let body = json(size);
        let mut group = c.benchmark_group(format!("compress_{size_name}"));
        group.throughput(Throughput::Bytes(body.len() as u64));
        if size > 1 << 20 {
            group.sample_size(10);
        }
        for coding in ["br", "gzip", "deflate", "zstd"] {
            let ours_svc = ours(coding).layer(origin(body.clone()));
            let peer_svc = peer().layer(origin(body.clone()));
            ratios.insert(
                format!("{size_name}/{coding}/cortex"),
                runtime.block_on(run(ours_svc.clone(), coding)),
            );
            ratios.insert(
                format!("{size_name}/{coding}/tower-http"),
                runtime.block_on(run(peer_svc.clone(), coding)),
            );
            ratios.insert(format!("{size_name}/original"), body.len());
            group.bench_with_input(BenchmarkId::new("cortex", coding), &coding, |b, coding| {
                b.iter(|| black_box(runtime.block_on(run(ours_svc.clone(), coding))))
            });
            group.bench_with_input(
                BenchmarkId::new("tower-http", coding),
                &coding,
                |b, coding| b.iter(|| black_box(runtime.block_on(run(peer_svc.clone(), coding)))),
            );
        }
        group.finish();
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compression-ratios.json");
    let _ = std::fs::write(path, serde_json::to_string_pretty(&ratios).unwrap());

    // A tiny response the layer must skip: its whole cost is overhead.
    let mut group = c.benchmark_group("compress_skip_tiny");
    let tiny = Bytes::from_static(b"{\"ok\":true}");
    let bare = origin(tiny.clone());
    let ours_svc = ours("gzip").layer(origin(tiny.clone()));
    let peer_svc = peer().layer(origin(tiny));
    group.bench_function("bare", |b| {
        b.iter(|| black_box(runtime.block_on(run(bare.clone(), "gzip"))))
    });
    group.bench_function("cortex", |b| {
        b.iter(|| black_box(runtime.block_on(run(ours_svc.clone(), "gzip"))))
    });
    group.bench_function("tower-http", |b| {
        b.iter(|| black_box(runtime.block_on(run(peer_svc.clone(), "gzip"))))
    });
    group.finish();
}

/// The gzip backend and level: the same 1 MiB JSON through flate2's
/// `GzEncoder` on zlib-rs (the backend cortex-compress turns on) and
/// through miniz_oxide (flate2's default backend, called directly, plus the
/// CRC-32 a gzip trailer needs), at levels 1, 4, 6 and 9. One build can
/// hold only one flate2 backend (Cargo unifies features), so the default
/// backend is measured through its own crate. Sizes go to
/// `target/gzip-levels.json`.
fn gzip_levels(c: &mut Criterion) {
    use std::io::Write as _;
    let body = json(1 << 20);
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    let mut group = c.benchmark_group("gzip_levels_1MiB");
    group.throughput(Throughput::Bytes(body.len() as u64));
    let zlib_rs = |level: u32| {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(256 * 1024),
            flate2::Compression::new(level),
        );
        encoder.write_all(&body).unwrap();
        encoder.finish().unwrap()
    };
    let miniz = |level: u8| {
        let crc = crc32fast::hash(&body);
        let deflated = miniz_oxide::deflate::compress_to_vec(&body, level);
        (crc, deflated)
    };
    for level in [1u8, 4, 6, 9] {
        sizes.insert(format!("zlib-rs/{level}"), zlib_rs(u32::from(level)).len());
        // 18 bytes of gzip header and trailer around the deflate stream.
        sizes.insert(format!("miniz_oxide/{level}"), miniz(level).1.len() + 18);
        group.bench_with_input(BenchmarkId::new("zlib-rs", level), &level, |b, &level| {
            b.iter(|| black_box(zlib_rs(u32::from(level))))
        });
        group.bench_with_input(
            BenchmarkId::new("miniz_oxide", level),
            &level,
            |b, &level| b.iter(|| black_box(miniz(level))),
        );
    }
    group.finish();
    sizes.insert("original".to_owned(), body.len());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/gzip-levels.json");
    let _ = std::fs::write(path, serde_json::to_string_pretty(&sizes).unwrap());
}

criterion_group!(benches, compression, gzip_levels);
criterion_main!(benches);
