//! Prometheus series for a [`Cluster`] (features `nats` and `metrics`),
//! read at scrape time from its counters, labelled by namespace:
//!
//! - `cortex_cluster_connected`: 1 while the NATS connection is up;
//! - `cortex_cluster_events_total{outcome}`: bridged events `exported`,
//!   `export_dropped` (a full core bridge), `export_failed` (not
//!   encodable, or refused by the server), `stored` (acknowledged by
//!   JetStream), `duplicate` (already stored: a retry's copy),
//!   `publish_retry`, `imported` (from other nodes), `decode_error`;
//! - `cortex_cluster_group_events_total{outcome}`: consumer groups'
//!   `consumed`, `redelivered` and `dead_lettered` events;
//! - `cortex_cluster_remote_requests_total`: remote asks and tells served
//!   by this node's actors.
//!
//! ```no_run
//! use cortex_actor::EventBus;
//! use cortex_actor::cluster::Cluster;
//! use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = Cluster::builder("nats://127.0.0.1:4222")
//!     .namespace("shop")
//!     .connect(EventBus::new())
//!     .await?;
//! let metrics = MetricsRegistry::new();
//! cluster.register_metrics(&metrics)?;
//! assert!(metrics.encode(Format::Prometheus).contains(r#"cortex_cluster_connected{namespace="shop"} 1"#));
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use cortex_metrics::{Collector, CollectorOutput, MetricsError, MetricsRegistry, RegisterMetrics};

use super::Cluster;

impl RegisterMetrics for Cluster {
    /// Registers this cluster connection's scrape-time series; registering
    /// again with the same registry adds nothing.
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        let key = format!("cortex_cluster/{:p}", std::sync::Arc::as_ptr(&self.inner));
        registry.register_collector_once(
            &key,
            ClusterCollector {
                cluster: self.clone(),
            },
        );
        Ok(())
    }
}

#[derive(Debug)]
struct ClusterCollector {
    cluster: Cluster,
}

#[allow(clippy::cast_precision_loss)] // counters far below 2^53
fn float(counter: &AtomicU64) -> f64 {
    counter.load(Ordering::Relaxed) as f64
}

impl Collector for ClusterCollector {
    fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
        let namespace = self.cluster.namespace();
        let c = &self.cluster.inner.counters;
        out.gauge_family(
            "cortex_cluster_connected",
            "Whether the NATS connection is up (1) or not (0).",
            &["namespace"],
            [(
                &[namespace][..],
                if self.cluster.is_connected() {
                    1.0
                } else {
                    0.0
                },
            )],
        );
        out.counter_family(
            "cortex_cluster_events_total",
            "Bridged events, by outcome.",
            &["namespace", "outcome"],
            [
                ("exported", &c.exported),
                ("export_dropped", &c.export_dropped),
                ("export_failed", &c.export_failed),
                ("stored", &c.stored),
                ("duplicate", &c.duplicates),
                ("publish_retry", &c.publish_retries),
                ("imported", &c.imported),
                ("decode_error", &c.decode_errors),
            ]
            .map(|(outcome, counter)| ([namespace, outcome], float(counter)))
            .iter()
            .map(|(labels, value)| (&labels[..], *value))
            .collect::<Vec<_>>(),
        );
        out.counter_family(
            "cortex_cluster_group_events_total",
            "Consumer groups' events, by outcome.",
            &["namespace", "outcome"],
            [
                ("consumed", &c.consumed),
                ("redelivered", &c.redelivered),
                ("dead_lettered", &c.dead_lettered),
            ]
            .map(|(outcome, counter)| ([namespace, outcome], float(counter)))
            .iter()
            .map(|(labels, value)| (&labels[..], *value))
            .collect::<Vec<_>>(),
        );
        out.counter_family(
            "cortex_cluster_remote_requests_total",
            "Remote asks and tells served by this node's actors.",
            &["namespace"],
            [(&[namespace][..], float(&c.served))],
        );
    }
}
