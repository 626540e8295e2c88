//! Ready-made checks: process memory, uptime, disk space.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde_json::json;

use crate::check::{HealthCheck, HealthCheckResult};
use crate::report::rfc3339;

/// Resident memory against a limit: Degraded above a fraction of it.
///
/// The limit is, in order: the one given to
/// [`limit_bytes`](Self::limit_bytes), the container's cgroup limit
/// (v2 `memory.max`, v1 `memory.limit_in_bytes`), or none (always Up, with
/// the RSS in the details). RSS comes from `/proc/self/status`; where that
/// cannot be read the check is Up with a message saying so.
///
/// ```
/// use cortex_health::{HealthRegistry, checks::MemoryCheck};
///
/// let health = HealthRegistry::new();
/// health.register("memory", MemoryCheck::new().degraded_above(0.85))?;
/// # Ok::<(), cortex_health::HealthError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryCheck {
    limit_bytes: Option<u64>,
    degraded_above: f64,
}

impl Default for MemoryCheck {
    fn default() -> Self {
        Self {
            limit_bytes: None,
            degraded_above: 0.9,
        }
    }
}

impl MemoryCheck {
    /// A check against the cgroup limit, Degraded above 90 % of it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this limit instead of the cgroup's.
    pub fn limit_bytes(mut self, limit: u64) -> Self {
        self.limit_bytes = Some(limit);
        self
    }

    /// The fraction of the limit above which the check is Degraded
    /// (default 0.9; clamped to 0..=1).
    pub fn degraded_above(mut self, fraction: f64) -> Self {
        self.degraded_above = if fraction.is_nan() {
            0.9
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    fn evaluate(&self, rss: Option<u64>, cgroup_limit: Option<u64>) -> HealthCheckResult {
        let Some(rss) = rss else {
            return HealthCheckResult::up().with_message("resident memory is not readable here");
        };
        let (limit, source) = match (self.limit_bytes, cgroup_limit) {
            (Some(limit), _) => (limit, "configured"),
            (None, Some(limit)) => (limit, "cgroup"),
            (None, None) => {
                return HealthCheckResult::up()
                    .with_details(json!({ "rss_bytes": rss, "limit_bytes": null }));
            }
        };
        let ratio = rss as f64 / limit.max(1) as f64;
        let details = json!({
            "rss_bytes": rss,
            "limit_bytes": limit,
            "limit_source": source,
            "ratio": ratio,
        });
        if ratio > self.degraded_above {
            HealthCheckResult::degraded(format!(
                "resident memory is {:.0}% of the {source} limit",
                ratio * 100.0
            ))
            .with_details(details)
        } else {
            HealthCheckResult::up().with_details(details)
        }
    }
}

impl HealthCheck for MemoryCheck {
    async fn check(&self) -> HealthCheckResult {
        self.evaluate(resident_bytes(), cgroup_memory_limit())
    }
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The cgroup memory limit, if one is set. v1 reports "no limit" as a huge
/// page-aligned number, which is treated as none.
fn cgroup_memory_limit() -> Option<u64> {
    let parse = |text: String| -> Option<u64> {
        let value = text.trim();
        if value == "max" {
            return None;
        }
        value.parse::<u64>().ok().filter(|limit| *limit < (1 << 60))
    };
    std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(parse)
        .or_else(|| {
            std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes")
                .ok()
                .and_then(parse)
        })
}

/// Always Up; reports how long the process has run.
///
/// ```
/// use cortex_health::{CheckOptions, HealthRegistry, Probe, checks::UptimeCheck};
///
/// let health = HealthRegistry::new();
/// // Safe for liveness: it calls nothing outside the process.
/// health.register_with("uptime", UptimeCheck::new(), CheckOptions::new().probes([Probe::Liveness]))?;
/// # Ok::<(), cortex_health::HealthError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UptimeCheck {
    started: Instant,
    started_wall: SystemTime,
}

impl Default for UptimeCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl UptimeCheck {
    /// Counts from now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            started_wall: SystemTime::now(),
        }
    }
}

impl HealthCheck for UptimeCheck {
    async fn check(&self) -> HealthCheckResult {
        HealthCheckResult::up().with_details(json!({
            "uptime_seconds": self.started.elapsed().as_secs_f64(),
            "started_at": rfc3339(self.started_wall),
        }))
    }
}

/// Free space on the file system holding a path: Degraded below the warn
/// fraction (default 10 %), Down below the fail fraction (default 5 %) or
/// when the path cannot be inspected.
///
/// ```
/// use cortex_health::{HealthRegistry, checks::DiskSpaceCheck};
///
/// let health = HealthRegistry::new();
/// health.register("disk", DiskSpaceCheck::new("/var/lib/app").thresholds(0.2, 0.05))?;
/// # Ok::<(), cortex_health::HealthError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct DiskSpaceCheck {
    path: PathBuf,
    warn_below: f64,
    fail_below: f64,
}

impl DiskSpaceCheck {
    /// Watches the file system of `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            warn_below: 0.10,
            fail_below: 0.05,
        }
    }

    /// Free-space fractions below which the check is Degraded and Down.
    pub fn thresholds(mut self, warn_below: f64, fail_below: f64) -> Self {
        let clamp = |f: f64| if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
        self.fail_below = clamp(fail_below);
        self.warn_below = clamp(warn_below).max(self.fail_below);
        self
    }

    fn evaluate(&self, available: u64, total: u64) -> HealthCheckResult {
        let free = if total == 0 {
            1.0
        } else {
            available as f64 / total as f64
        };
        let details = json!({
            "path": self.path.display().to_string(),
            "available_bytes": available,
            "total_bytes": total,
            "free_ratio": free,
        });
        let message = || format!("{:.1}% free on {}", free * 100.0, self.path.display());
        if free < self.fail_below {
            HealthCheckResult::down(message()).with_details(details)
        } else if free < self.warn_below {
            HealthCheckResult::degraded(message()).with_details(details)
        } else {
            HealthCheckResult::up().with_details(details)
        }
    }
}

impl HealthCheck for DiskSpaceCheck {
    async fn check(&self) -> HealthCheckResult {
        match rustix::fs::statvfs(&self.path) {
            Ok(stat) => {
                let available = stat.f_bavail.saturating_mul(stat.f_frsize);
                let total = stat.f_blocks.saturating_mul(stat.f_frsize);
                self.evaluate(available, total)
            }
            Err(error) => {
                HealthCheckResult::down(format!("cannot inspect {}: {error}", self.path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HealthStatus;

    #[test]
    fn memory_degrades_above_the_threshold() {
        let check = MemoryCheck::new().degraded_above(0.5);
        assert_eq!(check.evaluate(Some(40), Some(100)).status, HealthStatus::Up);
        assert_eq!(
            check.evaluate(Some(60), Some(100)).status,
            HealthStatus::Degraded
        );
        assert_eq!(check.evaluate(Some(60), None).status, HealthStatus::Up);
        assert_eq!(check.evaluate(None, Some(100)).status, HealthStatus::Up);
        let configured = MemoryCheck::new().limit_bytes(1000);
        assert_eq!(
            configured.evaluate(Some(950), Some(10_000)).status,
            HealthStatus::Degraded
        );
    }

    #[test]
    fn disk_space_thresholds() {
        let check = DiskSpaceCheck::new("/").thresholds(0.2, 0.1);
        assert_eq!(check.evaluate(50, 100).status, HealthStatus::Up);
        assert_eq!(check.evaluate(15, 100).status, HealthStatus::Degraded);
        assert_eq!(check.evaluate(5, 100).status, HealthStatus::Down);
        assert_eq!(check.evaluate(0, 0).status, HealthStatus::Up);
    }

    #[tokio::test]
    async fn real_checks_run_on_this_machine() {
        assert_eq!(
            DiskSpaceCheck::new("/")
                .thresholds(0.0, 0.0)
                .check()
                .await
                .status,
            HealthStatus::Up
        );
        let missing = DiskSpaceCheck::new("/definitely/not/here").check().await;
        assert_eq!(missing.status, HealthStatus::Down);
        assert_eq!(UptimeCheck::new().check().await.status, HealthStatus::Up);
        let memory = MemoryCheck::new().limit_bytes(u64::MAX).check().await;
        assert_eq!(memory.status, HealthStatus::Up);
    }
}
