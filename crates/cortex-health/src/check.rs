//! What a health check is and what it returns.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

/// The state of one check or of the whole service. Ordered by severity:
/// `Up < Degraded < Down`, so the overall status is the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthStatus {
    /// Working normally.
    Up,
    /// Working, but impaired (a non-critical dependency is down, a resource
    /// is near its limit). Probes still answer 200.
    Degraded,
    /// Not working. Probes answer 503.
    Down,
}

impl HealthStatus {
    /// The IETF health-check draft's word: `pass`, `warn` or `fail`.
    pub fn as_ietf(self) -> &'static str {
        match self {
            Self::Up => "pass",
            Self::Degraded => "warn",
            Self::Down => "fail",
        }
    }

    /// The value of the `cortex_health_check_status` gauge: 1, 0.5 or 0.
    pub fn as_gauge(self) -> f64 {
        match self {
            Self::Up => 1.0,
            Self::Degraded => 0.5,
            Self::Down => 0.0,
        }
    }
}

/// The outcome of one run of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckResult {
    /// Up, Degraded or Down.
    pub status: HealthStatus,
    /// A human-readable explanation (shown only when details are allowed).
    pub message: Option<String>,
    /// Structured details (shown only when details are allowed).
    pub details: Value,
    /// How long the check took; filled in by the registry.
    pub duration: Duration,
}

impl HealthCheckResult {
    /// An `Up` result.
    pub fn up() -> Self {
        Self::with_status(HealthStatus::Up, None)
    }

    /// A `Degraded` result with an explanation.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::with_status(HealthStatus::Degraded, Some(message.into()))
    }

    /// A `Down` result with an explanation.
    pub fn down(message: impl Into<String>) -> Self {
        Self::with_status(HealthStatus::Down, Some(message.into()))
    }

    /// Attaches structured details (replacing any).
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Attaches or replaces the message.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    fn with_status(status: HealthStatus, message: Option<String>) -> Self {
        Self {
            status,
            message,
            details: Value::Null,
            duration: Duration::ZERO,
        }
    }
}

/// A health check: an async probe of one dependency or resource.
///
/// Implement it with an `async fn` (the future must be `Send`), or wrap a
/// closure with [`health_fn`]. The registry adds the timeout, panic
/// isolation, caching and timing, so a check only says what it sees.
///
/// ```
/// use cortex_health::{HealthCheck, HealthCheckResult};
///
/// struct Database;
///
/// impl HealthCheck for Database {
///     async fn check(&self) -> HealthCheckResult {
///         // e.g. `SELECT 1` against the pool
///         HealthCheckResult::up()
///     }
/// }
/// ```
pub trait HealthCheck: Send + Sync + 'static {
    /// Runs the check once.
    fn check(&self) -> impl Future<Output = HealthCheckResult> + Send;
}

/// A [`HealthCheck`] from an async closure.
///
/// ```
/// use cortex_health::{HealthCheckResult, HealthRegistry, health_fn};
///
/// let registry = HealthRegistry::new();
/// registry.register("cache", health_fn(|| async { HealthCheckResult::up() }))?;
/// # Ok::<(), cortex_health::HealthError>(())
/// ```
pub fn health_fn<F, Fut>(f: F) -> HealthFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HealthCheckResult> + Send,
{
    HealthFn(f)
}

/// The check made by [`health_fn`].
#[derive(Clone)]
pub struct HealthFn<F>(F);

impl<F> std::fmt::Debug for HealthFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthFn").finish_non_exhaustive()
    }
}

impl<F, Fut> HealthCheck for HealthFn<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HealthCheckResult> + Send,
{
    fn check(&self) -> impl Future<Output = HealthCheckResult> + Send {
        (self.0)()
    }
}

pub(crate) type BoxedResult<'a> = Pin<Box<dyn Future<Output = HealthCheckResult> + Send + 'a>>;

/// The object-safe form the registry stores.
pub(crate) trait ErasedCheck: Send + Sync + 'static {
    fn check_boxed(&self) -> BoxedResult<'_>;
}

impl<T: HealthCheck> ErasedCheck for T {
    fn check_boxed(&self) -> BoxedResult<'_> {
        Box::pin(self.check())
    }
}
