//! Streaming HTTP response compression as a tower layer, on
//! async-compression's codecs.
//!
//! [`CompressionLayer`] negotiates `Accept-Encoding` per RFC 9110
//! ([`negotiate`]: q-values, `x-gzip`, `*`, exclusions), then compresses
//! with br, zstd, gzip or deflate (zlib framing) — brotli 4, gzip 4, zstd 3
//! with an 8 MiB window by default ([`Levels`]).
//!
//! - **Streams.** Chunks are compressed as they arrive and the output is
//!   flushed whenever the inner body is pending, so server-sent events and
//!   slow streams reach the client at once; trailers are forwarded. Memory
//!   is bounded by one output chunk and the codec window, not the body.
//! - **Skips** HEAD, 1xx/204/304, responses already carrying
//!   `Content-Encoding`, `Content-Range` responses, `Cache-Control:
//!   no-transform`, images (except SVG), audio, video, fonts, archives,
//!   gRPC, and bodies known to be under the threshold (1 KiB).
//! - **Headers.** When compressing: `Content-Encoding` set,
//!   `Content-Length` and `Accept-Ranges` removed, a strong `ETag` weakened;
//!   `Vary: Accept-Encoding` added (once) whenever negotiation could change
//!   the response.
//!
//! ```
//! use axum::{Router, routing::get};
//! use cortex_compress::{CompressionLayer, Encoding};
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello ".repeat(1000) }))
//!     .layer(CompressionLayer::new().preference([Encoding::Zstd, Encoding::Gzip]));
//! ```
//!
//! [`DecompressionLayer`] is the request side: bounded streaming decoding
//! of compressed request bodies (see [`decompression`]).
//!
//! Both follow tower-http's layout: a folder per middleware
//! ([`compression`], [`decompression`]) with `layer.rs`, `service.rs`
//! (`Compression<S>` / `Decompression<S>` with `new`, `layer`, `get_ref`,
//! `get_mut`, `into_inner`), `future.rs`, `body.rs`, and the settings they
//! share in their own module.
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `metrics` | no | `cortex_compression_bytes_total` and `cortex_compression_responses_total` through `cortex_metrics::RegisterMetrics` on [`CompressionLayer`] |
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (1.88).

mod codec;
pub mod compression;
pub mod decompression;
mod encoding;
mod frame;
#[cfg(feature = "metrics")]
mod metrics;

pub use codec::Levels;
pub use compression::{
    Compression, CompressionBody, CompressionLayer, DEFAULT_MIN_SIZE, ResponseFuture,
};
pub use decompression::{Decompression, DecompressionLayer};
pub use encoding::{Encoding, Negotiated, negotiate};
pub use frame::BoxError;
pub(crate) use frame::bytes_frame;

/// Compiles the code blocks of `docs/compress.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/compress.md")]
pub struct CompressGuideDoctests;
