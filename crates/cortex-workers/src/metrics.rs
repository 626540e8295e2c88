//! Prometheus series for worker pools (feature `metrics`).
//!
//! [`WorkerPool`] implements [`RegisterMetrics`], the one way every Cortex
//! component exports its series. Gauges and counters are read at scrape
//! time from the pool's own counters; only the queue-wait and run-time
//! histograms are recorded per job, and only once metrics are registered.
//! Every pool registered with one [`MetricsRegistry`] shares its families,
//! labelled `pool="<name>"`; registering a pool twice adds nothing.
//!
//! ```
//! use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
//! use cortex_workers::WorkerPool;
//!
//! let metrics = MetricsRegistry::new();
//! let pool = WorkerPool::builder("hashing").workers(2).build()?;
//! pool.register_metrics(&metrics)?;
//! pool.try_submit(|| 1 + 1).expect("room").wait()?;
//! let text = metrics.encode(Format::Prometheus);
//! assert!(text.contains(r#"cortex_worker_workers{pool="hashing"} 2"#));
//! assert!(text.contains(r#"cortex_worker_jobs_total{pool="hashing",outcome="completed"} 1"#));
//! assert!(text.contains(r#"cortex_worker_run_seconds_count{pool="hashing"} 1"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use cortex_metrics::{Collector, CollectorOutput, MetricsError, MetricsRegistry, RegisterMetrics};

use crate::WorkerPool;
use crate::shared::{Histograms, Shared};
use crate::stats::WorkerPoolStats;

/// Queue waits and run times from 50 µs to 60 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The pools one registry exports. It holds the pools' shared state, not
/// their handles, so dropping a pool's last handle still winds it down.
#[derive(Default)]
struct PoolsCollector {
    pools: Mutex<Vec<Arc<Shared>>>,
}

/// `cortex_worker_workers`, `_busy`, `_zombies`, `_queue_length`,
/// `_queue_capacity`, `_utilization` (gauges), `cortex_worker_submitted_total`,
/// `cortex_worker_jobs_total{outcome}`, `cortex_worker_replaced_total`,
/// `cortex_worker_busy_seconds_total`, and the histograms
/// `cortex_worker_queue_wait_seconds` and `cortex_worker_run_seconds`
/// (bound to the first registry: each job is timed once). All labelled
/// `pool`.
impl RegisterMetrics for WorkerPool {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        let shared = self.shared();
        if shared.histograms.get().is_none() {
            let wait = registry.histogram_family(
                "cortex_worker_queue_wait_seconds",
                "Time jobs waited in the queue before a worker started them.",
                ["pool"],
                SECONDS_BUCKETS,
            )?;
            let run = registry.histogram_family(
                "cortex_worker_run_seconds",
                "Time jobs ran on a worker.",
                ["pool"],
                SECONDS_BUCKETS,
            )?;
            let _ = shared.histograms.set(Histograms {
                wait: wait.with_labels([&shared.name]),
                run: run.with_labels([&shared.name]),
            });
        }
        let collector = registry.shared_collector("cortex_workers", PoolsCollector::default)?;
        let mut pools = collector
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !pools.iter().any(|known| Arc::ptr_eq(known, shared)) {
            pools.push(Arc::clone(shared));
        }
        Ok(())
    }
}

/// The outcome label values, in the order of [`outcome_counts`].
const OUTCOMES: [&str; 6] = [
    "completed",
    "panicked",
    "timed_out",
    "expired",
    "cancelled",
    "rejected",
];

fn outcome_counts(stats: &WorkerPoolStats) -> [u64; 6] {
    [
        stats.completed,
        stats.panicked,
        stats.timed_out,
        stats.expired,
        stats.cancelled,
        stats.rejected,
    ]
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^53
fn float(value: impl TryInto<u64>) -> f64 {
    value.try_into().unwrap_or(u64::MAX) as f64
}

impl Collector for PoolsCollector {
    fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
        let pools = self
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stats: Vec<WorkerPoolStats> = pools
            .iter()
            .map(|pool| WorkerPoolStats::read(pool))
            .collect();
        let names: Vec<[&str; 1]> = stats.iter().map(|stats| [stats.name.as_str()]).collect();
        let gauge = |pick: fn(&WorkerPoolStats) -> f64| {
            stats
                .iter()
                .zip(&names)
                .map(move |(stats, name)| (&name[..], pick(stats)))
                .collect::<Vec<_>>()
        };
        let pool = &["pool"];
        out.gauge_family(
            "cortex_worker_workers",
            "Worker threads taking jobs.",
            pool,
            gauge(|s| float(s.workers)),
        );
        out.gauge_family(
            "cortex_worker_busy",
            "Workers running a job now.",
            pool,
            gauge(|s| float(s.busy)),
        );
        out.gauge_family(
            "cortex_worker_zombies",
            "Detached threads still running a job that outlived its run timeout and grace period.",
            pool,
            gauge(|s| float(s.zombies)),
        );
        out.gauge_family(
            "cortex_worker_queue_length",
            "Jobs waiting for a worker.",
            pool,
            gauge(|s| float(s.queue_len)),
        );
        out.gauge_family(
            "cortex_worker_queue_capacity",
            "The job queue's capacity.",
            pool,
            gauge(|s| float(s.queue_capacity)),
        );
        out.gauge_family(
            "cortex_worker_utilization",
            "Share of worker time spent running jobs since the pool started (0 to 1).",
            pool,
            gauge(|s| s.utilization),
        );
        out.counter_family(
            "cortex_worker_submitted_total",
            "Jobs submitted (accepted or rejected).",
            pool,
            gauge(|s| float(s.submitted)),
        );
        out.counter_family(
            "cortex_worker_replaced_total",
            "Zombie threads replaced by a new worker.",
            pool,
            gauge(|s| float(s.replaced)),
        );
        out.counter_family(
            "cortex_worker_busy_seconds_total",
            "Seconds workers spent running jobs; its rate over workers is the utilization.",
            pool,
            gauge(|s| s.run_seconds_total),
        );
        let labels: Vec<[&str; 2]> = stats
            .iter()
            .flat_map(|stats| OUTCOMES.map(|outcome| [stats.name.as_str(), outcome]))
            .collect();
        let values: Vec<f64> = stats
            .iter()
            .flat_map(|stats| outcome_counts(stats).map(float))
            .collect();
        out.counter_family(
            "cortex_worker_jobs_total",
            "Jobs by outcome: completed, panicked, timed_out, expired, cancelled, rejected.",
            &["pool", "outcome"],
            labels.iter().map(|labels| &labels[..]).zip(values),
        );
    }
}
