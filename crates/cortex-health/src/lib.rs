//! Kubernetes-grade health probes for axum services.
//!
//! - [`HealthCheck`]: an async check returning [`HealthCheckResult`]
//!   (Up / Degraded / Down, message, JSON details, duration); closures via
//!   [`health_fn`].
//! - [`HealthRegistry`]: register/unregister by name, run one check or all
//!   **in parallel**, each with its own timeout (default 5 s); a check that
//!   hangs or panics becomes Down with a message, never a hung or crashed
//!   probe. Results are cached per check ([`CheckOptions::cache_ttl`]) and
//!   concurrent callers share one run, so probe storms do not hammer
//!   dependencies.
//! - Liveness / readiness / startup groups ([`Probe`]), non-critical checks,
//!   draining before shutdown ([`HealthRegistry::set_draining`]).
//! - [`HealthRegistry::router`]: `/health`, `/health/live`, `/health/ready`,
//!   `/health/startup`, `/livez`, `/readyz`, answering IETF
//!   `application/health+json`.
//! - [`checks`]: process memory (cgroup-aware), uptime, disk space.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use axum::Router;
//! use cortex_health::{
//!     CheckOptions, HealthCheckResult, HealthRegistry, Probe, ShowDetails, checks, health_fn,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let health = HealthRegistry::builder().show_details(ShowDetails::WhenVerbose).build();
//! health.register("memory", checks::MemoryCheck::new())?;
//! health.register_with(
//!     "database",
//!     health_fn(|| async { HealthCheckResult::up() }),
//!     CheckOptions::new()
//!         .probes([Probe::Readiness, Probe::Startup])
//!         .timeout(Duration::from_secs(2))
//!         .cache_ttl(Duration::from_secs(5)),
//! )?;
//! let app: Router = Router::new().merge(health.router());
//! # let _ = app;
//! // On SIGTERM, before draining connections:
//! health.set_draining();
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `metrics` | no | `cortex_health_check_status{check}` and `cortex_health_check_duration_seconds{check}` via `cortex_metrics::RegisterMetrics` on [`HealthRegistry`] |
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (1.88).

mod check;
pub mod checks;
mod error;
#[cfg(feature = "metrics")]
mod metrics;
mod registry;
mod report;
mod router;

pub use check::{HealthCheck, HealthCheckResult, HealthFn, HealthStatus, health_fn};
pub use error::HealthError;
pub use registry::{
    CheckOptions, DEFAULT_TIMEOUT, HealthRegistry, HealthRegistryBuilder, Probe, ShowDetails,
};
pub use report::{CheckReport, HealthReport};
pub use router::HEALTH_JSON;

/// Compiles the code blocks of `docs/health.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/health.md")]
pub struct HealthGuideDoctests;
