//! What a health check is and what it returns.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

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
///
/// Besides the status, a result can carry the fields of the IETF
/// health-check draft's check entry (draft-inadarei-api-health-check §4):
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use cortex_health::HealthCheckResult;
///
/// let result = HealthCheckResult::up()
///     .component_type("datastore") // always shown; default "component"
///     .component_id("dfd6cf2b-1b6e-4412-a0b8-f6f7797a60d2") // a detail
///     .observed_value(250) // a detail
///     .observed_unit("ms") // a detail
///     .time(UNIX_EPOCH + Duration::from_secs(1_516_160_208)); // the reading's time
/// assert_eq!(result.observed_value, Some(250.into()));
/// ```
///
/// Fields marked "a detail" appear in HTTP responses only when the
/// registry's [`ShowDetails`](crate::ShowDetails) allows, since they can
/// name hosts, instances or internal figures.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckResult {
    /// Up, Degraded or Down.
    pub status: HealthStatus,
    /// A human-readable explanation, rendered as `output` (a detail).
    pub message: Option<String>,
    /// Structured details, rendered as `details` (a detail).
    pub details: Value,
    /// How long the check took; filled in by the registry.
    pub duration: Duration,
    /// The draft's `observedValue`: any JSON value the check measured
    /// (a detail).
    pub observed_value: Option<Value>,
    /// The draft's `observedUnit`: the unit of `observed_value`, e.g. `ms`,
    /// `s`, `percent`, `GiB` (a detail).
    pub observed_unit: Option<String>,
    /// The draft's `componentId`: which instance of the component answered,
    /// e.g. a node's UUID (a detail: ids are often host names).
    pub component_id: Option<String>,
    /// The draft's `componentType`: `component`, `datastore`, `system` or
    /// a URI. `None` renders as `component` (always shown).
    pub component_type: Option<String>,
    /// The draft's `time`: when the reading was taken. `None` renders the
    /// time the registry finished the run (always shown).
    pub time: Option<SystemTime>,
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

    /// Sets the draft's `observedValue`: a number, string, boolean or any
    /// JSON value (`serde_json::json!` for objects).
    #[must_use]
    pub fn observed_value(mut self, value: impl Into<Value>) -> Self {
        self.observed_value = Some(value.into());
        self
    }

    /// Sets the draft's `observedUnit` (`ms`, `s`, `percent`, `GiB`, ...).
    #[must_use]
    pub fn observed_unit(mut self, unit: impl Into<String>) -> Self {
        self.observed_unit = Some(unit.into());
        self
    }

    /// Sets the draft's `componentId`: the instance that was checked.
    #[must_use]
    pub fn component_id(mut self, id: impl Into<String>) -> Self {
        self.component_id = Some(id.into());
        self
    }

    /// Sets the draft's `componentType` (default `component`; the draft
    /// names `datastore` and `system`, or a URI).
    #[must_use]
    pub fn component_type(mut self, component_type: impl Into<String>) -> Self {
        self.component_type = Some(component_type.into());
        self
    }

    /// Sets the draft's `time`, when the observed value was read, for a
    /// check that reports a reading taken earlier than its run (default:
    /// when the registry finished the run).
    #[must_use]
    pub fn time(mut self, time: SystemTime) -> Self {
        self.time = Some(time);
        self
    }

    fn with_status(status: HealthStatus, message: Option<String>) -> Self {
        Self {
            status,
            message,
            details: Value::Null,
            duration: Duration::ZERO,
            observed_value: None,
            observed_unit: None,
            component_id: None,
            component_type: None,
            time: None,
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
