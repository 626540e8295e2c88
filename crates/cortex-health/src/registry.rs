//! The registry: checks, their options, and how they are run.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::HealthError;
use crate::check::{ErasedCheck, HealthCheck, HealthCheckResult, HealthStatus};
use crate::report::{CheckReport, HealthReport, ServiceInfo};

/// The default per-check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The Kubernetes probe a check answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// "Is the process alive?" Failing it gets the container restarted, so
    /// it should never depend on other services.
    Liveness,
    /// "Can it take traffic?" Failing it takes the instance out of the
    /// load balancer.
    Readiness,
    /// "Has it finished starting?" Readiness stays down until these have
    /// passed once.
    Startup,
}

/// How a check is run and aggregated.
///
/// Defaults: readiness probe only, critical, [`DEFAULT_TIMEOUT`], no result
/// cache beyond coalescing concurrent calls.
///
/// ```
/// use std::time::Duration;
/// use cortex_health::{CheckOptions, Probe};
///
/// let options = CheckOptions::new()
///     .probes([Probe::Readiness, Probe::Startup])
///     .critical(false) // its Down only degrades the whole
///     .timeout(Duration::from_secs(2))
///     .cache_ttl(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct CheckOptions {
    liveness: bool,
    readiness: bool,
    startup: bool,
    critical: bool,
    timeout: Duration,
    cache_ttl: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            liveness: false,
            readiness: true,
            startup: false,
            critical: true,
            timeout: DEFAULT_TIMEOUT,
            cache_ttl: Duration::ZERO,
        }
    }
}

impl CheckOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Exactly these probes (replacing the default readiness).
    pub fn probes(mut self, probes: impl IntoIterator<Item = Probe>) -> Self {
        self.liveness = false;
        self.readiness = false;
        self.startup = false;
        for probe in probes {
            match probe {
                Probe::Liveness => self.liveness = true,
                Probe::Readiness => self.readiness = true,
                Probe::Startup => self.startup = true,
            }
        }
        self
    }

    /// Whether a Down result makes the whole service Down (default) or
    /// only Degraded.
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// The longest a run may take before it counts as Down (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a result is reused before the check runs again (default:
    /// zero, which still makes concurrent callers share one run).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    fn answers(&self, probe: Probe) -> bool {
        match probe {
            Probe::Liveness => self.liveness,
            Probe::Readiness => self.readiness,
            Probe::Startup => self.startup,
        }
    }
}

/// Whether check messages and details appear in HTTP responses. They can
/// leak internals (hostnames, error texts), so the default is `Never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShowDetails {
    /// Statuses only.
    #[default]
    Never,
    /// Only when the request asks with `?verbose`.
    WhenVerbose,
    /// Always.
    Always,
}

/// A set of health checks, run in parallel with per-check timeouts, panic
/// isolation and result caching.
///
/// A value, not a global: cheap to [`Clone`] (an `Arc` inside). Running
/// checks needs a tokio runtime (each run is a task, so a panicking or
/// hanging check cannot take the caller down).
///
/// ```
/// use cortex_health::{HealthCheckResult, HealthRegistry, HealthStatus, health_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cortex_health::HealthError> {
/// let health = HealthRegistry::new();
/// health.register("db", health_fn(|| async { HealthCheckResult::up() }))?;
/// health.register("search", health_fn(|| async { HealthCheckResult::degraded("slow replica") }))?;
/// assert!(health.register("db", health_fn(|| async { HealthCheckResult::up() })).is_err());
///
/// let report = health.check_all().await;
/// assert_eq!(report.status, HealthStatus::Degraded);
/// assert_eq!(health.check("db").await?.status, HealthStatus::Up);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HealthRegistry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    checks: RwLock<Vec<Arc<Entry>>>,
    started: AtomicBool,
    draining: AtomicBool,
    show_details: ShowDetails,
    service: Arc<ServiceInfo>,
    /// Set by the first `register_metrics`; checks record into it from then on.
    #[cfg(feature = "metrics")]
    metrics: std::sync::OnceLock<crate::metrics::HealthMetrics>,
}

pub(crate) struct Entry {
    pub(crate) name: Arc<str>,
    check: Arc<dyn ErasedCheck>,
    pub(crate) options: CheckOptions,
    /// The last result; the lock also makes concurrent callers wait for one
    /// run instead of starting their own (single-flight).
    cache: tokio::sync::Mutex<Option<Cached>>,
    runs: AtomicU64,
}

struct Cached {
    result: HealthCheckResult,
    finished: Instant,
    finished_wall: SystemTime,
}

impl std::fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("checks", &self.names())
            .field("started", &self.inner.started.load(Ordering::Relaxed))
            .field("draining", &self.is_draining())
            .field("show_details", &self.inner.show_details)
            .field("service", &self.inner.service)
            .finish()
    }
}

impl Default for HealthRegistry {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`HealthRegistry`] with non-default settings.
///
/// The service-level fields of the IETF health-check draft (§3) are set
/// here and appear at the top level of every response, whatever
/// [`ShowDetails`] says: publish only what clients may see. None is set by
/// default.
///
/// ```
/// use cortex_health::{HealthRegistry, ShowDetails};
///
/// let health = HealthRegistry::builder()
///     .show_details(ShowDetails::WhenVerbose)
///     .version("1")
///     .release_id(env!("CARGO_PKG_VERSION"))
///     .service_id("f03e522f-1f44-4062-9b55-9587f91c9c41")
///     .description("health of authz service")
///     .note("read-only during the migration")
///     .link("about", "http://api.example.com/about/authz")
///     .build();
/// # let _ = health;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct HealthRegistryBuilder {
    show_details: ShowDetails,
    service: ServiceInfo,
}

impl HealthRegistryBuilder {
    /// Whether HTTP responses include messages and details (default never).
    pub fn show_details(mut self, show: ShowDetails) -> Self {
        self.show_details = show;
        self
    }

    /// The draft's `version`: the public version of the service's API
    /// (e.g. `1`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.service.version = Some(version.into());
        self
    }

    /// The draft's `releaseId`: the release or build of the
    /// implementation (e.g. `1.2.2`, a git hash).
    pub fn release_id(mut self, release_id: impl Into<String>) -> Self {
        self.service.release_id = Some(release_id.into());
        self
    }

    /// The draft's `serviceId`: a unique identifier of the service.
    pub fn service_id(mut self, service_id: impl Into<String>) -> Self {
        self.service.service_id = Some(service_id.into());
        self
    }

    /// The draft's `description`: a human-friendly description of the
    /// service.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.service.description = Some(description.into());
        self
    }

    /// Appends one of the draft's `notes`, in order.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.service.notes.push(note.into());
        self
    }

    /// Adds one of the draft's `links`: a link relation (`about`, or a URI
    /// for a custom relation) and its URI. The same relation again
    /// replaces the URI.
    pub fn link(mut self, rel: impl Into<String>, href: impl Into<String>) -> Self {
        self.service.links.insert(rel.into(), href.into());
        self
    }

    /// Builds the registry.
    pub fn build(self) -> HealthRegistry {
        HealthRegistry::from_parts(self.show_details, self.service)
    }
}

impl HealthRegistry {
    /// An empty registry that hides details.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for non-default settings.
    pub fn builder() -> HealthRegistryBuilder {
        HealthRegistryBuilder::default()
    }

    fn from_parts(show_details: ShowDetails, service: ServiceInfo) -> Self {
        Self {
            inner: Arc::new(RegistryInner {
                checks: RwLock::new(Vec::new()),
                started: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                show_details,
                service: Arc::new(service),
                #[cfg(feature = "metrics")]
                metrics: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Registers `check` under `name` with [`CheckOptions::default`].
    pub fn register(&self, name: &str, check: impl HealthCheck) -> Result<(), HealthError> {
        self.register_with(name, check, CheckOptions::default())
    }

    /// Registers `check` under `name` with `options`.
    pub fn register_with(
        &self,
        name: &str,
        check: impl HealthCheck,
        options: CheckOptions,
    ) -> Result<(), HealthError> {
        validate_name(name)?;
        let mut checks = self
            .inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if checks.iter().any(|entry| &*entry.name == name) {
            return Err(HealthError::Duplicate {
                name: name.to_owned(),
            });
        }
        checks.push(Arc::new(Entry {
            name: name.into(),
            check: Arc::new(check),
            options,
            cache: tokio::sync::Mutex::new(None),
            runs: AtomicU64::new(0),
        }));
        Ok(())
    }

    /// Removes the check named `name`.
    pub fn unregister(&self, name: &str) -> Result<(), HealthError> {
        let mut checks = self
            .inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let before = checks.len();
        checks.retain(|entry| &*entry.name != name);
        if checks.len() == before {
            return Err(HealthError::Unknown {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<String> {
        self.entries().iter().map(|e| e.name.to_string()).collect()
    }

    /// How many times the check named `name` has actually run (cache hits
    /// and coalesced callers excluded).
    pub fn run_count(&self, name: &str) -> Result<u64, HealthError> {
        Ok(self.entry(name)?.runs.load(Ordering::Relaxed))
    }

    /// Runs (or reuses the cached result of) the check named `name`.
    pub async fn check(&self, name: &str) -> Result<HealthCheckResult, HealthError> {
        let entry = self.entry(name)?;
        Ok(self.run(entry).await.0)
    }

    /// Runs every check in parallel and aggregates them.
    pub async fn check_all(&self) -> HealthReport {
        self.run_many(self.entries()).await
    }

    /// The worst status of all checks (non-critical Downs count as
    /// Degraded).
    pub async fn overall(&self) -> HealthStatus {
        self.check_all().await.status
    }

    /// Runs the checks of one probe, with the probe's semantics:
    ///
    /// - liveness: only liveness checks (none by default, so it is Up while
    ///   the process can answer);
    /// - startup: startup checks; once they all pass, the registry
    ///   remembers that startup is complete;
    /// - readiness: Down while draining or until startup has completed,
    ///   then the readiness checks.
    pub async fn check_probe(&self, probe: Probe) -> HealthReport {
        match probe {
            Probe::Liveness | Probe::Startup => {
                let report = self.run_many(self.entries_for(probe)).await;
                if probe == Probe::Startup && report.status != HealthStatus::Down {
                    self.inner.started.store(true, Ordering::Relaxed);
                }
                report
            }
            Probe::Readiness => {
                if self.is_draining() {
                    return HealthReport::failed("draining: not accepting new traffic")
                        .with_service(Arc::clone(&self.inner.service));
                }
                if !self.inner.started.load(Ordering::Relaxed) {
                    let startup = Box::pin(self.check_probe(Probe::Startup)).await;
                    if startup.status == HealthStatus::Down {
                        return HealthReport {
                            output: Some("startup checks have not passed yet".to_owned()),
                            ..startup
                        };
                    }
                }
                self.run_many(self.entries_for(Probe::Readiness)).await
            }
        }
    }

    /// Makes readiness report Down from now on, so load balancers stop
    /// sending traffic before a graceful shutdown drains in-flight work.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// Whether [`set_draining`](Self::set_draining) was called.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Whether startup checks have passed once.
    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// The registry's detail policy.
    pub fn show_details(&self) -> ShowDetails {
        self.inner.show_details
    }

    fn entries(&self) -> Vec<Arc<Entry>> {
        self.inner
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn entries_for(&self, probe: Probe) -> Vec<Arc<Entry>> {
        let mut entries = self.entries();
        entries.retain(|entry| entry.options.answers(probe));
        entries
    }

    fn entry(&self, name: &str) -> Result<Arc<Entry>, HealthError> {
        self.inner
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|entry| &*entry.name == name)
            .cloned()
            .ok_or_else(|| HealthError::Unknown {
                name: name.to_owned(),
            })
    }

    async fn run_many(&self, entries: Vec<Arc<Entry>>) -> HealthReport {
        // Polled together in this task: they run concurrently, a cached
        // result costs no task spawn, and dropping the caller cancels
        // every run. Each actual check still runs in its own task
        // (`execute`), which is what isolates panics and blocking code.
        let runs = entries.into_iter().map(|entry| async move {
            let (result, checked_at) = self.run(Arc::clone(&entry)).await;
            CheckReport {
                name: entry.name.to_string(),
                critical: entry.options.critical,
                result,
                checked_at,
            }
        });
        HealthReport::from_checks(join_all(runs).await)
            .with_service(Arc::clone(&self.inner.service))
    }

    /// Returns the cached result when it is fresh or was produced after
    /// this call started waiting; otherwise runs the check.
    async fn run(&self, entry: Arc<Entry>) -> (HealthCheckResult, SystemTime) {
        let requested = Instant::now();
        let mut cache = entry.cache.lock().await;
        if let Some(cached) = &*cache {
            let coalesced = cached.finished >= requested;
            let fresh = cached.finished.elapsed() < entry.options.cache_ttl;
            if coalesced || fresh {
                return (cached.result.clone(), cached.finished_wall);
            }
        }
        let result = self.execute(&entry).await;
        let finished_wall = SystemTime::now();
        *cache = Some(Cached {
            result: result.clone(),
            finished: Instant::now(),
            finished_wall,
        });
        (result, finished_wall)
    }

    async fn execute(&self, entry: &Entry) -> HealthCheckResult {
        entry.runs.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let check = Arc::clone(&entry.check);
        let mut task = AbortOnDrop(tokio::spawn(async move { check.check_boxed().await }));
        let timeout = entry.options.timeout;
        let mut result = match tokio::time::timeout(timeout, &mut task.0).await {
            Ok(Ok(result)) => result,
            Ok(Err(error)) if error.is_panic() => {
                let panic = error.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".to_owned());
                tracing::error!(check = &*entry.name, %message, "health check panicked");
                HealthCheckResult::down(format!("check panicked: {message}"))
            }
            Ok(Err(_)) => HealthCheckResult::down("check was cancelled"),
            Err(_) => {
                tracing::warn!(check = &*entry.name, ?timeout, "health check timed out");
                HealthCheckResult::down(format!("check timed out after {timeout:?}"))
            }
        };
        result.duration = start.elapsed();
        #[cfg(feature = "metrics")]
        if let Some(metrics) = self.inner.metrics.get() {
            metrics.record(&entry.name, &result);
        }
        result
    }
}

/// Records `cortex_health_check_status{check}` (1 up, 0.5 degraded, 0 down)
/// and `cortex_health_check_duration_seconds{check}` for every run from now
/// on. Fails only if those names are taken by incompatible metrics.
///
/// ```
/// use cortex_health::{HealthCheckResult, HealthRegistry, health_fn};
/// use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let metrics = MetricsRegistry::new();
/// let health = HealthRegistry::new();
/// health.register_metrics(&metrics)?;
/// health.register("db", health_fn(|| async { HealthCheckResult::up() }))?;
/// health.check_all().await;
/// assert!(metrics.encode(Format::Prometheus).contains("cortex_health_check_status{check=\"db\"} 1"));
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "metrics")]
impl cortex_metrics::RegisterMetrics for HealthRegistry {
    fn register_metrics(
        &self,
        registry: &cortex_metrics::MetricsRegistry,
    ) -> Result<(), cortex_metrics::MetricsError> {
        // Get-or-create: a second registry's families are validated (so a
        // name conflict still surfaces) but runs keep recording into the
        // first, as the contract says.
        let metrics = crate::metrics::HealthMetrics::new(registry)?;
        let _ = self.inner.metrics.set(metrics);
        Ok(())
    }
}

/// Drives every future to completion concurrently within one task and
/// returns their outputs in order.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Aborts the task when dropped: a caller that goes away (a probe request
/// whose client disconnected, a timeout) does not leave the check running.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn validate_name(name: &str) -> Result<(), HealthError> {
    let invalid = |reason| HealthError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("names must not be empty"));
    }
    if name.len() > 128 {
        return Err(invalid("names must be at most 128 bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    {
        return Err(invalid("names may only contain [A-Za-z0-9_.:-]"));
    }
    Ok(())
}
