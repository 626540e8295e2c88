//! The one HTTP front end of every policy: rejections become responses.
//!
//! Every policy, and the [`Pipeline`](crate::Pipeline), has the same two
//! entry points: `.layer()`, a tower layer whose errors are
//! [`ResilienceError`](crate::ResilienceError)s, and `.http_layer()`, that
//! same layer wrapped in this module's [`HttpLayer`], whose
//! [`HttpService`] answers rejections with responses (the inner
//! service's own errors pass through), so it goes straight onto an axum
//! `Router`:
//!
//! | policy error | response |
//! |---|---|
//! | open circuit breaker | 503 + `Retry-After` (when the open state ends) |
//! | full bulkhead | 503 |
//! | rate limit | 429 + `Retry-After` + `RateLimit-Limit`/`-Remaining`/`-Reset` |
//! | timeout | 504 |
//!
//! Each response made this way carries a [`PolicyRejection`] extension.
//! Rate limiters add the `RateLimit-*` headers to allowed responses too
//! ([`HttpLayer::headers_on_success`]). Retrying policies (a
//! [`Retry`](crate::Retry), a pipeline with one) replay a request only if
//! its method is idempotent ([`IdempotentMethods`]) and its body is empty
//! or of a known length up to [`HttpLayer::max_replay_body`], buffered
//! once; any other request is sent once.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use cortex_resilience::{CircuitBreaker, HeaderKey, RateLimiter, Retry};
//!
//! # fn main() -> Result<(), cortex_resilience::ConfigError> {
//! let breaker = CircuitBreaker::builder("search").build()?;
//! let per_key = RateLimiter::builder("search-per-key")
//!     .permits(10, Duration::from_secs(1))
//!     .build_keyed()?;
//! let app: Router = Router::new()
//!     .route("/search", get(|| async { "results" }))
//!     .layer(breaker.http_layer())
//!     .layer(Retry::builder("search").build()?.http_layer().max_replay_body(16 * 1024))
//!     .layer(per_key.http_layer(HeaderKey::new("x-api-key".parse().unwrap())));
//! # Ok(())
//! # }
//! ```

mod body;
mod future;
mod layer;
mod policy;
mod rejection;
mod replay;
mod service;

pub use body::ResilienceBody;
pub use future::{PolicyFuture, ResponseFuture};
pub use layer::HttpLayer;
pub use policy::{HttpOptions, PolicyService};
pub use rejection::PolicyRejection;
pub use replay::IdempotentMethods;
pub use service::HttpService;

pub(crate) use policy::sealed::Sealed;
#[cfg(feature = "redis")]
pub(crate) use rejection::{insert_rate_limit_headers, rejection_response};
pub(crate) use replay::{Prepared, prepare, unreadable_body};
