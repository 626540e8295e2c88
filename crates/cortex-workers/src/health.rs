//! A cortex-health check for a [`WorkerPool`] (feature `health`).
//!
//! ```
//! use cortex_health::{HealthCheck, HealthStatus};
//! use cortex_workers::WorkerPool;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = WorkerPool::builder("compute").workers(1).build()?;
//! let check = pool.health_check();
//! assert_eq!(check.check().await.status, HealthStatus::Up);
//! pool.shutdown_now();
//! assert_eq!(check.check().await.status, HealthStatus::Down);
//! # Ok(()) }
//! ```

use std::sync::Mutex;

use cortex_health::{HealthCheck, HealthCheckResult};
use serde_json::json;

use crate::WorkerPool;
use crate::job::lock;

/// Down when the pool shuts down or has no worker left (every thread a
/// zombie past the cap); Degraded while zombies run, or when the queue
/// was full at two checks in a row (callers are being refused); else Up.
/// Details carry the stats.
#[derive(Debug)]
pub struct WorkerPoolHealthCheck {
    pool: WorkerPool,
    /// The queue was full at the previous check.
    full_before: Mutex<bool>,
}

impl WorkerPool {
    /// A health check for this pool; see [`WorkerPoolHealthCheck`].
    pub fn health_check(&self) -> WorkerPoolHealthCheck {
        WorkerPoolHealthCheck {
            pool: self.clone(),
            full_before: Mutex::new(false),
        }
    }
}

impl HealthCheck for WorkerPoolHealthCheck {
    async fn check(&self) -> HealthCheckResult {
        let stats = self.pool.stats();
        let full_now = stats.queue_len >= stats.queue_capacity;
        let full_twice = {
            let mut before = lock(&self.full_before);
            let twice = *before && full_now;
            *before = full_now;
            twice
        };
        let details = json!({
            "workers": stats.workers,
            "busy": stats.busy,
            "zombies": stats.zombies,
            "queue_len": stats.queue_len,
            "queue_capacity": stats.queue_capacity,
            "rejected": stats.rejected,
            "timed_out": stats.timed_out,
            "utilization": stats.utilization,
        });
        let result = if self.pool.is_shutting_down() {
            HealthCheckResult::down("the worker pool is shutting down")
        } else if stats.workers == 0 {
            HealthCheckResult::down(format!(
                "no worker left: {} zombie thread(s) hold every place",
                stats.zombies
            ))
        } else if stats.zombies > 0 {
            HealthCheckResult::degraded(format!(
                "{} zombie thread(s) run jobs that outlived their timeout",
                stats.zombies
            ))
        } else if full_twice {
            HealthCheckResult::degraded("the job queue was full at two checks in a row")
        } else {
            HealthCheckResult::up()
        };
        result
            .observed_value(stats.utilization)
            .observed_unit("utilization")
            .with_details(details)
    }
}
