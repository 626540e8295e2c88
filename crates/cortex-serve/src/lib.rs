//! A production server runner for axum: what `axum::serve` leaves out.
//!
//! `axum::serve` runs hyper without a timer, so a client that sends its
//! headers one byte a second (slowloris) or opens a socket and says nothing
//! holds a connection forever; it has no connection cap, no shutdown
//! deadline, and accept errors pass silently. [`Server`] serves the same
//! [`Router`](axum::Router) with:
//!
//! - **HTTP/1 and HTTP/2** on hyper-util's `auto` builder with tokio's timer.
//! - **Header-read timeout** (default 10 s): a client that has not sent a
//!   request's headers by then is disconnected. For HTTP/1, hyper counts
//!   the wait for the next request on a keep-alive connection against it.
//! - **Idle timeout** (default 60 s): no request in progress and no bytes
//!   moved → the connection is closed, HTTP/1 or HTTP/2.
//! - **A connection cap** (default: the soft `RLIMIT_NOFILE` minus a tenth,
//!   at least 64 kept free). At the cap the least recently active
//!   connection idle for a second or more is closed to admit the new one,
//!   so idle sockets cannot lock out a health probe; when every connection is busy, new ones wait in
//!   the listen backlog.
//! - **Accept errors** logged and counted; `EMFILE`/`ENFILE` also close an
//!   idle connection and back off (10 ms doubling to 1 s) instead of
//!   spinning.
//! - **A graceful shutdown with a deadline**: on the signal, readiness is
//!   marked draining and serving goes on for the drain delay (default 5 s:
//!   load balancers see `/health/ready` answer 503, not a refused
//!   connection); then the listener closes and in-flight requests get the
//!   shutdown timeout (default 20 s) to finish; what is left is aborted.
//!   The defaults fit Kubernetes' 30 s `terminationGracePeriodSeconds`.
//!   [`Server::serve`] returns a [`ShutdownReport`]; the application then
//!   stops its own runtimes (actors, trace export).
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use cortex_serve::{Server, shutdown_signal};
//!
//! # #[tokio::main]
//! # async fn main() -> std::io::Result<()> {
//! let app: Router = Router::new().route("/", get(|| async { "hello" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = Server::new()
//!     .drain_delay(Duration::from_secs(5))
//!     .shutdown_timeout(Duration::from_secs(20));
//! # let server = server.drain_delay(Duration::ZERO);
//! # let shutdown_signal = || async {}; // the example stops at once
//! // In a service: serve until SIGTERM or Ctrl-C, then shut down gracefully.
//! let report = server.serve(listener, app, shutdown_signal()).await;
//! assert_eq!(report.aborted, 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `health` | no | [`Server::health`]: mark a `cortex_health::HealthRegistry` draining when shutdown starts |
//! | `metrics` | no | `cortex_metrics::RegisterMetrics` for [`Server`]: `cortex_server_connections`, `cortex_server_max_connections`, `cortex_server_connections_closed_total{reason}`, `cortex_server_accept_errors_total{kind}` |
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version`.

mod connection;
mod limits;
#[cfg(feature = "metrics")]
mod metrics;
mod report;
mod server;
mod signal;
mod state;

pub use report::ShutdownReport;
pub use server::{
    DEFAULT_DRAIN_DELAY, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT, Server,
};
pub use signal::shutdown_signal;

/// Compiles the code blocks of `docs/serve.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/serve.md")]
pub struct ServeGuideDoctests;
