//! Streaming response compression, in tower-http's layout: [`layer`]'s
//! [`CompressionLayer`] builds [`Compression`] services ([`service`]) whose
//! [`ResponseFuture`] ([`future`]) decides per response whether to
//! compress ([`predicate`]'s skip rules) and wraps the body in a
//! [`CompressionBody`] ([`body`]). The settings all of them read live in
//! `config`.
//!
//! ```
//! use axum::{Router, routing::get};
//! use cortex_compress::compression::CompressionLayer;
//! use cortex_compress::Encoding;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello ".repeat(1000) }))
//!     .layer(CompressionLayer::new().preference([Encoding::Zstd, Encoding::Gzip]).min_size(512));
//! ```
//!
//! [`layer`]: CompressionLayer
//! [`service`]: Compression
//! [`future`]: ResponseFuture
//! [`body`]: CompressionBody
//! [`predicate`]: CompressionLayer::skip_when

mod body;
mod config;
mod future;
mod layer;
mod predicate;
mod service;

pub use body::CompressionBody;
pub use config::DEFAULT_MIN_SIZE;
pub use future::ResponseFuture;
pub use layer::CompressionLayer;
pub use service::Compression;
