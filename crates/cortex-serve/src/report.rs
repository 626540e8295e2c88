//! What a shutdown did.

use std::time::Duration;

/// How [`Server::serve`](crate::Server::serve)'s shutdown went, from the
/// signal to the last connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections that finished their in-flight requests and closed
    /// after the listener closed.
    pub drained: usize,
    /// Connections still busy at the shutdown timeout, aborted.
    pub aborted: usize,
    /// From the shutdown signal to the end, drain delay included.
    pub elapsed: Duration,
}
