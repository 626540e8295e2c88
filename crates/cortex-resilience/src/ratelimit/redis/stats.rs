//! What a [`DistributedRateLimiter`](super::DistributedRateLimiter)
//! counts: decisions, backend failures by kind, fallback decisions.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// A snapshot of a [`DistributedRateLimiter`](super::DistributedRateLimiter):
/// this process's counters (the budget itself lives in Redis).
///
/// ```no_run
/// use cortex_resilience::DistributedRateLimiter;
///
/// # #[tokio::main] async fn main() -> Result<(), cortex_resilience::ConfigError> {
/// let limiter = DistributedRateLimiter::builder("api")
///     .redis_url("redis://127.0.0.1:6379")
///     .build()?;
/// limiter.check(b"alice").await;
/// let stats = limiter.stats();
/// assert_eq!(stats.permitted_total + stats.rejected_total, 1);
/// if stats.backend_errors.total() > 0 {
///     assert_eq!(stats.fallback_decisions_total, 1);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistributedRateLimiterStats {
    /// The limiter's name.
    pub name: String,
    /// Whether the last call to Redis succeeded (see
    /// [`backend_available`](super::DistributedRateLimiter::backend_available)).
    pub backend_available: bool,
    /// Checks allowed since creation, by Redis or by the fallback.
    pub permitted_total: u64,
    /// Checks refused since creation, by Redis or by the fallback.
    pub rejected_total: u64,
    /// Calls to Redis that failed, by kind.
    pub backend_errors: BackendErrorCounts,
    /// Checks the fallback decided because Redis failed or was known to be
    /// unavailable.
    pub fallback_decisions_total: u64,
}

/// Failed calls to Redis, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BackendErrorCounts {
    /// No answer within the check's time budget.
    pub timeout: u64,
    /// No connection: refused, dropped, reset, or any other I/O error.
    pub connection: u64,
    /// An answer that was an error: a script error, `READONLY` after a
    /// failover, `LOADING`, an unexpected reply.
    pub other: u64,
}

impl BackendErrorCounts {
    /// All failed calls.
    pub fn total(&self) -> u64 {
        self.timeout + self.connection + self.other
    }
}

/// Why one call to Redis produced no decision.
#[derive(Debug)]
pub(super) enum BackendError {
    /// The check's own time budget ran out first.
    Timeout(Duration),
    /// redis-rs reported an error.
    Redis(::redis::RedisError),
}

/// The classes of [`BackendError`] the counters and the metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BackendErrorKind {
    Timeout,
    Connection,
    Other,
}

impl BackendError {
    pub(super) fn kind(&self) -> BackendErrorKind {
        match self {
            Self::Timeout(_) => BackendErrorKind::Timeout,
            // redis-rs's own connect and response timeouts.
            Self::Redis(error) if error.is_timeout() => BackendErrorKind::Timeout,
            Self::Redis(error) if error.is_io_error() || error.is_connection_dropped() => {
                BackendErrorKind::Connection
            }
            Self::Redis(_) => BackendErrorKind::Other,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(budget) => write!(f, "no answer within {budget:?}"),
            Self::Redis(error) => error.fmt(f),
        }
    }
}

/// The running totals behind [`DistributedRateLimiterStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    permitted: AtomicU64,
    rejected: AtomicU64,
    fallback: AtomicU64,
    timeout: AtomicU64,
    connection: AtomicU64,
    other: AtomicU64,
}

impl Counters {
    pub(super) fn decided(&self, allowed: bool) {
        let counter = if allowed {
            &self.permitted
        } else {
            &self.rejected
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn fell_back(&self) {
        self.fallback.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn failed(&self, kind: BackendErrorKind) {
        let counter = match kind {
            BackendErrorKind::Timeout => &self.timeout,
            BackendErrorKind::Connection => &self.connection,
            BackendErrorKind::Other => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(
        &self,
        name: &str,
        backend_available: bool,
    ) -> DistributedRateLimiterStats {
        DistributedRateLimiterStats {
            name: name.to_owned(),
            backend_available,
            permitted_total: self.permitted.load(Ordering::Relaxed),
            rejected_total: self.rejected.load(Ordering::Relaxed),
            backend_errors: BackendErrorCounts {
                timeout: self.timeout.load(Ordering::Relaxed),
                connection: self.connection.load(Ordering::Relaxed),
                other: self.other.load(Ordering::Relaxed),
            },
            fallback_decisions_total: self.fallback.load(Ordering::Relaxed),
        }
    }
}
