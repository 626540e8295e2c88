//! Bulkhead: a bound on concurrent calls, with a bounded FIFO queue.
//!
//! ```
//! use cortex_resilience::{Bulkhead, ResilienceError};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let bulkhead = Bulkhead::builder("db").max_concurrent_calls(1).build().unwrap();
//! let held = bulkhead.try_acquire().unwrap();
//! // No queue by default: the second caller is rejected at once.
//! let rejected = bulkhead.execute(|| async { Ok::<_, ()>(()) }).await;
//! assert_eq!(rejected, Err(ResilienceError::BulkheadFull));
//! drop(held);
//! assert_eq!(bulkhead.execute(|| async { Ok::<_, ()>(1) }).await, Ok(1));
//! # }
//! ```
//!
//! Admission is tokio's fair semaphore: a free permit is taken without
//! waiting; otherwise the call joins the queue if fewer than `max_queue`
//! calls wait, else it is rejected at once. Queued calls are admitted in
//! arrival order. Permits return on drop, so a cancelled or panicking call
//! never leaks one, and a cancelled queued call leaves the queue.
//!
//! `policy` holds [`Bulkhead`] and its builder; `config` the settings,
//! stats and events; `state` the semaphore and counters its permits and
//! services share; the tower front end is `layer` ([`BulkheadLayer`]),
//! `service` ([`BulkheadService`], also what
//! [`HttpLayer`](crate::HttpLayer) drives) and `future`
//! ([`ResponseFuture`]).

mod config;
mod future;
mod layer;
mod policy;
mod service;
mod state;

pub use config::{BulkheadConfig, BulkheadEvent, BulkheadStats};
pub use future::ResponseFuture;
pub use layer::BulkheadLayer;
pub use policy::{Bulkhead, BulkheadBuilder};
pub use service::BulkheadService;
pub use state::BulkheadPermit;
