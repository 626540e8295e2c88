//! The standard pipeline: every policy in the recommended order, as one
//! [`Policy`](crate::Policy), one tower layer or one HTTP layer.
//!
//! Outermost first: rate limiter → bulkhead → total timeout → retry →
//! circuit breaker → per-attempt timeout → the call. Admission control
//! comes first so rejected calls cost nothing; the total timeout bounds
//! all attempts and their backoff; the breaker sees (and counts) every
//! attempt; the per-attempt timeout makes a hung attempt a failure the
//! breaker and the retry both see.
//!
//! ```
//! use std::time::Duration;
//! use cortex_resilience::{Bulkhead, CircuitBreaker, Pipeline, Policy, Retry, Timeout};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let total = Timeout::builder("inventory-total").timeout_duration(Duration::from_secs(5));
//! let pipeline = Pipeline::builder()
//!     .bulkhead(Bulkhead::builder("inventory").build().unwrap())
//!     .timeout(total.build().unwrap())
//!     .retry(Retry::builder("inventory").build().unwrap())
//!     .circuit_breaker(CircuitBreaker::builder("inventory").build().unwrap())
//!     .attempt_timeout(Timeout::builder("inventory-attempt").build().unwrap())
//!     .build();
//! assert_eq!(
//!     Policy::<(), ()>::describe(&pipeline),
//!     "Bulkhead -> Timeout -> Retry -> CircuitBreaker -> Timeout"
//! );
//! assert_eq!(pipeline.execute(|| async { Ok::<_, ()>(7) }).await, Ok(7));
//! # }
//! ```
//!
//! `policy` holds [`Pipeline`], its builder and the run through the
//! policies; the tower front end is `layer` ([`PipelineLayer`]) and
//! `service` ([`PipelineService`], which [`HttpLayer`](crate::HttpLayer)
//! drives with replayed requests). Its futures are boxed: a pipeline
//! awaits several policies in turn.

mod layer;
mod policy;
mod service;

pub use layer::PipelineLayer;
pub use policy::{Pipeline, PipelineBuilder};
pub use service::PipelineService;
