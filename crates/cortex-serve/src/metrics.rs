//! Connection and accept-error series (feature `metrics`).

use cortex_metrics::{CounterFamily, Gauge, MetricsError, MetricsRegistry, RegisterMetrics};

use crate::Server;
use crate::connection::CloseReason;

#[derive(Debug)]
pub(crate) struct ServerMetrics {
    open: Gauge,
    max: Gauge,
    closed: CounterFamily<1>,
    accept_errors: CounterFamily<1>,
}

impl ServerMetrics {
    fn new(registry: &MetricsRegistry) -> Result<Self, MetricsError> {
        let metrics = Self {
            open: registry.gauge(
                "cortex_server_connections",
                "Client connections open now.",
            )?,
            max: registry.gauge(
                "cortex_server_max_connections",
                "The connection cap: at it, idle connections are closed to admit new ones.",
            )?,
            closed: registry.counter_family(
                "cortex_server_connections_closed_total",
                "Client connections closed, by reason: client, idle, evicted, shutdown, aborted, error.",
                ["reason"],
            )?,
            accept_errors: registry.counter_family(
                "cortex_server_accept_errors_total",
                "Failed accepts, by kind: fd_limit (EMFILE/ENFILE, backed off) or other.",
                ["kind"],
            )?,
        };
        // Every label value from the start, so rates exist before events.
        for reason in CloseReason::ALL {
            metrics.closed.with_labels([reason.as_str()]);
        }
        metrics.closed.with_labels(["aborted"]);
        for kind in ["fd_limit", "other"] {
            metrics.accept_errors.with_labels([kind]);
        }
        Ok(metrics)
    }

    pub(crate) fn max_connections(&self, max: usize) {
        self.max.set(i64::try_from(max).unwrap_or(i64::MAX));
    }

    pub(crate) fn opened(&self) {
        self.open.inc();
    }

    pub(crate) fn closed(&self, reason: &str) {
        self.open.dec();
        self.closed.with_labels([reason]).inc();
    }

    pub(crate) fn accept_error(&self, kind: &str) {
        self.accept_errors.with_labels([kind]).inc();
    }
}

/// `cortex_server_connections`, `cortex_server_max_connections`,
/// `cortex_server_connections_closed_total{reason}` and
/// `cortex_server_accept_errors_total{kind}`.
///
/// ```
/// use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
/// use cortex_serve::Server;
///
/// let metrics = MetricsRegistry::new();
/// let server = Server::new();
/// server.register_metrics(&metrics)?;
/// assert!(metrics.encode(Format::Prometheus).contains("cortex_server_connections 0"));
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
impl RegisterMetrics for Server {
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        // Validated against every registry; recording binds to the first.
        let metrics = ServerMetrics::new(registry)?;
        if let Some(max) = self.state.max_connections() {
            metrics.max_connections(max);
        }
        let _ = self.state.metrics.set(metrics);
        Ok(())
    }
}
