//! Prometheus series for wasm pools (feature `metrics`).
//!
//! ```
//! use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
//! use cortex_wasm::{WasmEngine, WasmPool};
//! use cortex_workers::WorkerPool;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let module = WasmEngine::builder().fuel(1_000).build()?
//!     .compile(r#"(module (func (export "spin") (loop $l (br $l))))"#)?;
//! let pool = WasmPool::new(module, WorkerPool::builder("plugins").workers(1))?;
//! let metrics = MetricsRegistry::new();
//! pool.register_metrics(&metrics)?;
//! assert!(pool.call(|instance| instance.call("spin", &[])).await.is_err());
//! let text = metrics.encode(Format::Prometheus);
//! assert!(text.contains(r#"cortex_wasm_calls_total{pool="plugins"} 1"#));
//! assert!(text.contains(r#"cortex_wasm_failures_total{pool="plugins",kind="exhausted"} 1"#));
//! assert!(text.contains(r#"cortex_wasm_instances_replaced_total{pool="plugins"} 1"#));
//! assert!(text.contains(r#"cortex_worker_queue_wait_seconds_count{pool="plugins"} 1"#));
//! # Ok(()) }
//! ```

use std::sync::{Mutex, PoisonError};

use cortex_metrics::{Collector, CollectorOutput, MetricsError, MetricsRegistry, RegisterMetrics};

use crate::pool::{WasmPool, WasmPoolStats};

/// The pools one registry exports.
#[derive(Default)]
struct PoolsCollector {
    pools: Mutex<Vec<WasmPool>>,
}

/// The worker pool's `cortex_worker_*` series (queue, wait and run
/// histograms, utilisation), and `cortex_wasm_calls_total`,
/// `cortex_wasm_failures_total{kind}`, `cortex_wasm_instances_created_total`,
/// `cortex_wasm_instances_replaced_total` and
/// `cortex_wasm_call_seconds_total`, all labelled `pool` (the worker
/// pool's name).
impl RegisterMetrics for WasmPool {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        self.workers().register_metrics(registry)?;
        let collector = registry.shared_collector("cortex_wasm", PoolsCollector::default)?;
        let mut pools = collector
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !pools.iter().any(|known| known.same_as(self)) {
            pools.push(self.clone());
        }
        Ok(())
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^53
fn float(value: u64) -> f64 {
    value as f64
}

impl Collector for PoolsCollector {
    fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
        let pools = self
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stats: Vec<(String, WasmPoolStats)> = pools
            .iter()
            .map(|pool| (pool.workers().name().to_owned(), pool.stats()))
            .collect();
        let names: Vec<[&str; 1]> = stats.iter().map(|(name, _)| [name.as_str()]).collect();
        let each = |pick: fn(&WasmPoolStats) -> f64| {
            stats
                .iter()
                .zip(&names)
                .map(move |((_, stats), name)| (&name[..], pick(stats)))
                .collect::<Vec<_>>()
        };
        let pool = &["pool"];
        out.counter_family(
            "cortex_wasm_calls_total",
            "Guest calls run on an instance.",
            pool,
            each(|s| float(s.calls)),
        );
        out.counter_family(
            "cortex_wasm_instances_created_total",
            "Instances made (one per worker thread, again after a failure).",
            pool,
            each(|s| float(s.instances_created)),
        );
        out.counter_family(
            "cortex_wasm_instances_replaced_total",
            "Instances dropped after a trap, timeout or limit hit.",
            pool,
            each(|s| float(s.instances_replaced)),
        );
        out.counter_family(
            "cortex_wasm_call_seconds_total",
            "Seconds spent in guest calls.",
            pool,
            each(|s| s.call_seconds_total),
        );
        let labels: Vec<[&str; 2]> = stats
            .iter()
            .flat_map(|(name, stats)| {
                stats
                    .failures
                    .keys()
                    .map(move |kind| [name.as_str(), *kind])
            })
            .collect();
        let values: Vec<f64> = stats
            .iter()
            .flat_map(|(_, stats)| stats.failures.values().map(|&count| float(count)))
            .collect();
        out.counter_family(
            "cortex_wasm_failures_total",
            "Failed guest calls by kind: trap, exhausted, timed_out, memory_limit, out_of_bounds, abi, json...",
            &["pool", "kind"],
            labels.iter().map(|labels| &labels[..]).zip(values),
        );
    }
}
