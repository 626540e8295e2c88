//! Routes that exercise compression: a large JSON document, a server-sent
//! event stream, an upload endpoint for compressed request bodies, and a
//! page a browser loads to check both directions of the stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http_body::Frame;
use serde_json::{Value, json};

use crate::routes::IndexedRouter;

/// How many items `/api/big.json` holds (about 1 MiB of JSON).
pub const BIG_JSON_ITEMS: usize = 12_000;
/// The largest decoded upload (the decompression layer's default).
pub const UPLOAD_LIMIT: usize = 16 * 1024 * 1024;
/// How many events `/api/events` sends before ending.
pub const EVENT_COUNT: u32 = 3;

/// The compression routes (state-free, merged into the Hub).
pub(crate) fn routes() -> IndexedRouter {
    IndexedRouter::new()
        .route(
            "/demo",
            "a page that fetches /api/big.json and /api/events and reports PASS/FAIL",
            get(demo_page),
        )
        .route(
            "/demo.js",
            "the /demo page's script, a file: the CSP allows same-origin scripts only",
            get(demo_script),
        )
        .route(
            "/api/big.json",
            "about 1 MiB of JSON, compressed when accepted",
            get(big_json),
        )
        .route(
            "/api/events",
            "three server-sent events 200 ms apart, flushed through compression",
            get(events),
        )
        .route(
            "/api/upload",
            "accepts gzip/br/zstd/deflate request bodies (16 MiB decoded at most)",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route(
            "/api/empty",
            "204: must pass uncompressed",
            get(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/api/not-modified",
            "304: must pass uncompressed",
            get(|| async { StatusCode::NOT_MODIFIED }),
        )
        .route("/api/partial", "206: must pass uncompressed", get(partial))
        .route(
            "/api/precompressed",
            "already gzip-encoded: must pass untouched",
            get(precompressed),
        )
}

/// About 1 MiB of JSON, compressed when the client accepts it.
#[utoipa::path(
    get,
    path = "/api/big.json",
    tag = "compression",
    responses((status = 200, description = "`{\"items\": [{\"id\", \"name\", \"price\", \"tags\"}, …]}`, 12 000 items", body = Object)),
)]
async fn big_json() -> Json<Value> {
    let items: Vec<Value> = (0..BIG_JSON_ITEMS)
        .map(|i| json!({ "id": i, "name": format!("item {i}"), "price": i * 7 % 1000, "tags": ["demo", "cortex"] }))
        .collect();
    Json(json!({ "items": items }))
}

/// Server-sent events, one every 200 ms: through the compression layer they
/// must still arrive one by one.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "compression",
    operation_id = "tick_events",
    responses((status = 200, description = "three events, `data: tick 0` to `data: tick 2`, then the end", body = String, content_type = "text/event-stream")),
)]
async fn events() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::new(Ticks::new()),
    )
        .into_response()
}

struct Ticks {
    sent: u32,
    delay: Pin<Box<tokio::time::Sleep>>,
}

impl Ticks {
    fn new() -> Self {
        Self {
            sent: 0,
            delay: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

impl http_body::Body for Ticks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.sent == EVENT_COUNT {
            return Poll::Ready(None);
        }
        if self.delay.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let event = format!("data: tick {}\n\n", self.sent);
        self.sent += 1;
        let next = tokio::time::Instant::now() + Duration::from_millis(200);
        self.delay.as_mut().reset(next);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
    }
}

/// Echoes what arrived after decompression.
#[utoipa::path(
    post,
    path = "/api/upload",
    tag = "compression",
    params(("Content-Encoding" = Option<String>, Header, description = "gzip, br, zstd, deflate or identity")),
    request_body(content(("application/octet-stream")), description = "any bytes, encoded as `Content-Encoding` says"),
    responses(
        (status = 200, description = "`{\"bytes\", \"checksum\"}` of the decoded body", body = Object),
        (status = 413, description = "over 16 MiB decoded, or declared so", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "a `Content-Encoding` the Hub cannot decode (`Accept-Encoding` lists those it can)", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn upload(body: Bytes) -> Json<Value> {
    let checksum = body.iter().fold(0u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(*b))
    });
    Json(json!({ "bytes": body.len(), "checksum": checksum }))
}

/// A ranged response: compressing it would corrupt the range.
#[utoipa::path(
    get,
    path = "/api/partial",
    tag = "compression",
    responses((status = 206, description = "2 048 bytes of 4 096 (`Content-Range`), never compressed", body = String, content_type = "text/plain")),
)]
async fn partial() -> Response {
    (
        StatusCode::PARTIAL_CONTENT,
        [(header::CONTENT_RANGE, "bytes 0-2047/4096")],
        "r".repeat(2048),
    )
        .into_response()
}

/// Already gzip-encoded by the handler: must pass through untouched.
#[utoipa::path(
    get,
    path = "/api/precompressed",
    tag = "compression",
    responses((status = 200, description = "`hello` lines, already `Content-Encoding: gzip`", body = String, content_type = "text/plain")),
)]
async fn precompressed() -> Response {
    // "hello\n" gzip-compressed, repeated in a valid multi-member stream.
    const MEMBER: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0xe7, 0x02, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00,
    ];
    let body: Vec<u8> = MEMBER
        .iter()
        .copied()
        .cycle()
        .take(MEMBER.len() * 100)
        .collect();
    (
        [
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_TYPE, "text/plain"),
        ],
        body,
    )
        .into_response()
}

/// A page that fetches `/api/big.json` and `/api/events` and reports PASS/FAIL.
#[utoipa::path(
    get,
    path = "/demo",
    tag = "compression",
    responses((status = 200, description = "the page", body = String, content_type = "text/html")),
)]
async fn demo_page() -> Html<&'static str> {
    Html(DEMO_PAGE)
}

/// The `/demo` page's script.
#[utoipa::path(
    get,
    path = "/demo.js",
    tag = "compression",
    responses((status = 200, description = "the script", body = String, content_type = "text/javascript")),
)]
async fn demo_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        DEMO_SCRIPT,
    )
}

/// Loads [`DEMO_SCRIPT`], which writes PASS or FAIL into `#status`, for a
/// headless browser's `--dump-dom`. Nothing inline: the Hub's
/// Content-Security-Policy would block it.
const DEMO_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Cortex compression demo</title></head>
<body>
<h1>Cortex compression demo</h1>
<p id="status">PENDING</p>
<p id="detail"></p>
<script src="/demo.js"></script>
</body></html>
"#;

/// Fetches the large JSON and the event stream and writes PASS or FAIL
/// into the page's `#status`.
const DEMO_SCRIPT: &str = r#"(async () => {
  const status = document.getElementById('status');
  const detail = document.getElementById('detail');
  try {
    const response = await fetch('/api/big.json');
    const data = await response.json();
    const jsonOk = Array.isArray(data.items) && data.items.length === 12000;
    const events = await new Promise((resolve, reject) => {
      const seen = [];
      const source = new EventSource('/api/events');
      const timer = setTimeout(() => { source.close(); reject(new Error('events timed out: ' + seen)); }, 8000);
      source.onmessage = (event) => {
        seen.push(event.data);
        if (seen.length === 3) { clearTimeout(timer); source.close(); resolve(seen); }
      };
    });
    const eventsOk = events.join(',') === 'tick 0,tick 1,tick 2';
    detail.textContent = 'json=' + jsonOk + ' events=' + eventsOk;
    status.textContent = (jsonOk && eventsOk) ? 'PASS' : 'FAIL';
  } catch (error) {
    status.textContent = 'FAIL';
    detail.textContent = String(error);
  }
})();
"#;
