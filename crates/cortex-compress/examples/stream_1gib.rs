//! Streams 1 GiB of generated JSON-like text through `CompressionLayer` and
//! prints the process's peak resident memory: the layer must not buffer.
//! `cargo run --release -p cortex-compress --example stream_1gib -- [br|gzip|zstd]`

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use cortex_compress::{CompressionLayer, Encoding};
use http::{Request, Response, header};
use http_body::{Body, Frame};
use tower::{Layer, ServiceExt, service_fn};

const TOTAL: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;

/// 1 GiB produced 64 KiB at a time, never held whole.
struct Generated {
    sent: u64,
    chunk: Bytes,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent >= TOTAL {
            return Poll::Ready(None);
        }
        self.sent += self.chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let coding = std::env::args().nth(1).unwrap_or_else(|| "zstd".to_owned());
    let encoding = match coding.as_str() {
        "br" => Encoding::Brotli,
        "gzip" => Encoding::Gzip,
        _ => Encoding::Zstd,
    };
    let mut line = String::new();
    let mut i = 0u64;
    while line.len() < CHUNK {
        line.push_str(&format!(
            "{{\"id\":{i},\"name\":\"item {i}\",\"price\":{}}},",
            i * 7 % 1000
        ));
        i += 1;
    }
    line.truncate(CHUNK);
    let chunk = Bytes::from(line);
    let origin = service_fn(move |_: Request<()>| {
        let chunk = chunk.clone();
        async move {
            let mut response = Response::new(Generated { sent: 0, chunk });
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            Ok::<_, Infallible>(response)
        }
    });
    let service = CompressionLayer::new().preference([encoding]).layer(origin);
    let request = Request::get("/")
        .header(header::ACCEPT_ENCODING, coding.as_str())
        .body(())
        .unwrap();
    let started = std::time::Instant::now();
    let mut body = service.oneshot(request).await.unwrap().into_body();
    let mut out = 0u64;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if let Ok(data) = frame.unwrap().into_data() {
            out += data.len() as u64;
        }
    }
    println!(
        "{{\"encoding\":\"{coding}\",\"in_bytes\":{TOTAL},\"out_bytes\":{out},\"seconds\":{:.2},\"peak_rss_kib\":{}}}",
        started.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
}
