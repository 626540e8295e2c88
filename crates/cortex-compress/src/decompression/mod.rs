//! Bounded request decompression.
//!
//! [`DecompressionLayer`] decodes request bodies sent with
//! `Content-Encoding: gzip | x-gzip | br | zstd | deflate` as they stream,
//! and removes `Content-Encoding` and `Content-Length` from the request the
//! inner service sees. Two limits make a decompression bomb harmless:
//!
//! - a maximum decompressed size (default 16 MiB), and
//! - a maximum expansion ratio (default 100:1, enforced once 1 MiB has been
//!   produced, so small well-compressed bodies are never refused).
//!
//! Past either, the body yields `http_body_util::LengthLimitError`, which
//! axum's body extractors (`Bytes`, `String`, `Json`...) answer with
//! **413 Payload Too Large** — and decoding stops, so memory stays bounded.
//! An unknown coding is answered **415 Unsupported Media Type** at once,
//! with `Accept-Encoding` listing what is supported, and a declared
//! `Content-Length` over the size limit **413** before the body is read (so
//! `Expect: 100-continue` never gets a `100 Continue`); both bodies are RFC
//! 9457 `application/problem+json`. A request without a body passes
//! through whatever its `Content-Encoding` says.
//!
//! ```
//! use axum::{Router, routing::post};
//! use cortex_compress::DecompressionLayer;
//!
//! let app: Router = Router::new()
//!     .route("/upload", post(|body: String| async move { body.len().to_string() }))
//!     .layer(DecompressionLayer::new().max_size(4 * 1024 * 1024));
//! ```

mod body;
mod config;
mod future;
mod layer;
mod problem;
mod service;

pub use body::{DecompressionBody, DecompressionRequestBody, DecompressionResponseBody};
pub use config::{DEFAULT_MAX_RATIO, DEFAULT_MAX_SIZE};
pub use future::DecompressionFuture;
pub use layer::DecompressionLayer;
pub use service::Decompression;
