//! `/api/analytics`: the order service's numbers, from its events.
//!
//! [`Analytics`] is an event-bus consumer of `order.*`: it never asks the
//! order service anything. Each event updates
//!
//! - `cortex_hub_order_events_total{type}`: events by type;
//! - `cortex_hub_orders_active`: orders created and not final yet;
//! - `cortex_hub_order_processing_seconds{outcome}`: time from `created`
//!   to `completed` or `failed`, by outcome;
//! - `cortex_hub_order_failures_total{reason}`: failures by kind
//!   (`declined`, `unavailable`, `fault`, `abandoned`);
//!
//! and a one-minute sliding window of orders created, completed and
//! failed per second. `GET /api/analytics` shows all of it as JSON, with
//! p50/p95/p99 of the processing time estimated from the histogram's
//! buckets the way Prometheus' `histogram_quantile` does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use cortex::actor::EventBus;
use cortex::metrics::{CounterFamily, Gauge, Histogram, MetricsError, MetricsRegistry};
use serde_json::{Value, json};

use crate::orders::{FailureKind, OrderEvent, OrderEventKind};
use crate::routes::IndexedRouter;

/// The processing-time buckets: from a paid order's milliseconds to an
/// order that waited out its deadline on an open breaker.
const PROCESSING_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Seconds in the rate window.
const WINDOW_SECONDS: usize = 60;

/// The order analytics: a bus consumer and what it has counted.
#[derive(Debug, Clone)]
pub struct Analytics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    events: CounterFamily<1>,
    active: Gauge,
    completed_seconds: Histogram,
    failed_seconds: Histogram,
    failures: CounterFamily<1>,
    state: Mutex<Window>,
}

/// What is kept between events: when each live order was created, and the
/// per-second window.
#[derive(Debug, Default)]
struct Window {
    created_at_ms: HashMap<u64, u64>,
    /// The latest events counted, as `(order, seq)`: in a cluster an event
    /// can arrive twice (at least once delivery), and is counted once.
    recent: HashSet<(u64, u32)>,
    recent_order: VecDeque<(u64, u32)>,
    /// `(unix second, created, completed, failed)`, one slot per second of
    /// the window, reused round-robin.
    slots: Vec<(u64, u64, u64, u64)>,
    totals: Totals,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    created: u64,
    completed: u64,
    failed: u64,
}

impl Analytics {
    /// Registers the series in `registry` and subscribes to `order.*` on
    /// `bus`.
    pub fn start(registry: &MetricsRegistry, bus: &EventBus) -> Result<Self, MetricsError> {
        let processing = registry.histogram_family(
            "cortex_hub_order_processing_seconds",
            "Time from an order's creation to its final state, by outcome.",
            ["outcome"],
            PROCESSING_BUCKETS,
        )?;
        let inner = Arc::new(Inner {
            events: registry.counter_family(
                "cortex_hub_order_events_total",
                "Order events seen on the bus, by type.",
                ["type"],
            )?,
            active: registry.gauge(
                "cortex_hub_orders_active",
                "Orders created and not yet completed or failed.",
            )?,
            completed_seconds: processing.with_labels(["completed"]),
            failed_seconds: processing.with_labels(["failed"]),
            failures: registry.counter_family(
                "cortex_hub_order_failures_total",
                "Failed orders, by kind of failure.",
                ["reason"],
            )?,
            state: Mutex::new(Window {
                slots: vec![(0, 0, 0, 0); WINDOW_SECONDS],
                ..Window::default()
            }),
        });
        // Every label value is known up front, so the series exist (at 0)
        // before the first order: dashboards and alerts find them.
        for kind in [
            "created",
            "processing",
            "payment_succeeded",
            "payment_declined",
            "payment_unavailable",
            "payment_failed",
            "completed",
            "failed",
        ] {
            let _ = inner.events.with_labels([kind]);
        }
        for kind in [
            FailureKind::Declined,
            FailureKind::Unavailable,
            FailureKind::Fault,
            FailureKind::Abandoned,
        ] {
            let _ = inner.failures.with_labels([kind.as_str()]);
        }
        let consumer = Arc::clone(&inner);
        let subscribed = bus.subscribe_fn::<OrderEvent, _>("order.*", move |_, event| {
            consumer.record(event);
        });
        if let Err(error) = subscribed {
            // Only a malformed pattern fails, and this one is a constant.
            tracing::error!(%error, "order analytics will stay at zero");
        }
        Ok(Self { inner })
    }

    /// The routes: `GET /api/analytics`.
    pub(crate) fn routes(&self) -> IndexedRouter {
        IndexedRouter::new()
            .route(
                "/api/analytics",
                "order analytics from the event bus: totals, per-minute rates, processing-time p50/p95/p99, failure reasons",
                get(analytics),
            )
            .map(|router: Router<Analytics>| router.with_state(self.clone()))
    }

    /// Everything counted, as `GET /api/analytics` shows it.
    pub fn snapshot(&self) -> Value {
        let inner = &self.inner;
        let (totals, per_minute) = {
            let window = inner.lock();
            (window.totals, window.per_minute(now_second()))
        };
        let events: serde_json::Map<String, Value> = [
            "created",
            "processing",
            "payment_succeeded",
            "payment_declined",
            "payment_unavailable",
            "payment_failed",
            "completed",
            "failed",
        ]
        .into_iter()
        .map(|kind| {
            (
                kind.to_owned(),
                inner.events.with_labels([kind]).get().into(),
            )
        })
        .collect();
        let failures: serde_json::Map<String, Value> = [
            FailureKind::Declined,
            FailureKind::Unavailable,
            FailureKind::Fault,
            FailureKind::Abandoned,
        ]
        .into_iter()
        .map(|kind| {
            let count = inner.failures.with_labels([kind.as_str()]).get();
            (kind.as_str().to_owned(), count.into())
        })
        .collect();
        json!({
            "orders": {
                "created": totals.created,
                "completed": totals.completed,
                "failed": totals.failed,
                "active": inner.active.get(),
            },
            "per_minute": {
                "created": per_minute.created,
                "completed": per_minute.completed,
                "failed": per_minute.failed,
            },
            "processing_seconds": {
                "completed": summary(&inner.completed_seconds),
                "failed": summary(&inner.failed_seconds),
            },
            "failures": failures,
            "events": events,
        })
    }
}

impl Inner {
    fn record(&self, event: &OrderEvent) {
        let mut window = self.lock();
        if !window.first_time(event) {
            return;
        }
        self.events.with_labels([event.kind.name()]).inc();
        let second = event.at_ms / 1000;
        match &event.kind {
            OrderEventKind::Created { .. } => {
                self.active.inc();
                window.created_at_ms.insert(event.order_id, event.at_ms);
                window.totals.created += 1;
                window.slot(second).1 += 1;
            }
            OrderEventKind::Completed | OrderEventKind::Failed { .. } => {
                let failed = matches!(event.kind, OrderEventKind::Failed { .. });
                if let OrderEventKind::Failed { kind, .. } = &event.kind {
                    self.failures.with_labels([kind.as_str()]).inc();
                }
                // An order created before analytics started has no start.
                if let Some(created) = window.created_at_ms.remove(&event.order_id) {
                    self.active.dec();
                    let seconds = event.at_ms.saturating_sub(created) as f64 / 1000.0;
                    if failed {
                        self.failed_seconds.observe(seconds);
                    } else {
                        self.completed_seconds.observe(seconds);
                    }
                }
                if failed {
                    window.totals.failed += 1;
                    window.slot(second).3 += 1;
                } else {
                    window.totals.completed += 1;
                    window.slot(second).2 += 1;
                }
            }
            _ => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many `(order, seq)` pairs analytics remembers to drop copies.
const RECENT_EVENTS: usize = 65_536;

impl Window {
    /// Whether `event` is seen for the first time (among the latest
    /// [`RECENT_EVENTS`]); remembers it.
    fn first_time(&mut self, event: &OrderEvent) -> bool {
        let key = (event.order_id, event.seq);
        if !self.recent.insert(key) {
            return false;
        }
        self.recent_order.push_back(key);
        if self.recent_order.len() > RECENT_EVENTS
            && let Some(oldest) = self.recent_order.pop_front()
        {
            self.recent.remove(&oldest);
        }
        true
    }

    /// The slot of unix second `second`, cleared if it last held an older
    /// second.
    fn slot(&mut self, second: u64) -> &mut (u64, u64, u64, u64) {
        let index = usize::try_from(second).unwrap_or(0) % WINDOW_SECONDS;
        let slot = &mut self.slots[index];
        if slot.0 != second {
            *slot = (second, 0, 0, 0);
        }
        slot
    }

    /// Orders created, completed and failed in the minute up to `now`.
    fn per_minute(&self, now: u64) -> Totals {
        let oldest = now.saturating_sub(WINDOW_SECONDS as u64 - 1);
        self.slots
            .iter()
            .filter(|slot| slot.0 >= oldest && slot.0 <= now)
            .fold(Totals::default(), |sum, slot| Totals {
                created: sum.created + slot.1,
                completed: sum.completed + slot.2,
                failed: sum.failed + slot.3,
            })
    }
}

fn now_second() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Count, mean and estimated quantiles of `histogram`.
fn summary(histogram: &Histogram) -> Value {
    let count = histogram.count();
    let bounds = histogram.buckets().bounds();
    let cumulative = histogram.cumulative_counts();
    let quantile = |q| histogram_quantile(q, bounds, &cumulative);
    json!({
        "count": count,
        "mean": (count > 0).then(|| histogram.sum() / count as f64),
        "p50": quantile(0.5),
        "p95": quantile(0.95),
        "p99": quantile(0.99),
    })
}

/// The `q`-quantile of observations in buckets with upper `bounds` and
/// `cumulative` counts (one more than `bounds`: the last is `+Inf`),
/// interpolated linearly inside the bucket it falls in, as Prometheus'
/// `histogram_quantile` does (a quantile in the `+Inf` bucket is the
/// highest finite bound). `None` without observations.
pub(crate) fn histogram_quantile(q: f64, bounds: &[f64], cumulative: &[u64]) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let index = cumulative.iter().position(|&count| count as f64 >= rank)?;
    let Some(&upper) = bounds.get(index) else {
        return bounds.last().copied();
    };
    let (lower, below) = match index {
        0 => (0.0, 0),
        _ => (bounds[index - 1], cumulative[index - 1]),
    };
    let in_bucket = cumulative[index] - below;
    if in_bucket == 0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below as f64) / in_bucket as f64)
}

/// Order analytics kept by an event-bus consumer.
#[utoipa::path(
    get,
    path = "/api/analytics",
    tag = "orders",
    responses((
        status = 200,
        description = "totals, active orders, per-minute rates, processing-time p50/p95/p99 and failure reasons (`Analytics::snapshot`)",
        body = Object,
    )),
)]
async fn analytics(State(analytics): State<Analytics>) -> Json<Value> {
    Json(analytics.snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_their_bucket_like_prometheus() {
        let bounds = [0.1, 0.2, 0.4];
        // 10 in (0, 0.1], 10 in (0.1, 0.2], none above.
        let cumulative = [10, 20, 20, 20];
        assert_eq!(histogram_quantile(0.5, &bounds, &cumulative), Some(0.1));
        let p75 = histogram_quantile(0.75, &bounds, &cumulative).unwrap();
        assert!((p75 - 0.15).abs() < 1e-9, "{p75}");
        assert_eq!(histogram_quantile(0.5, &bounds, &[0, 0, 0, 0]), None);
        // Everything above the last bound: the last bound.
        assert_eq!(histogram_quantile(0.99, &bounds, &[0, 0, 0, 5]), Some(0.4));
    }

    #[tokio::test]
    async fn an_event_delivered_twice_is_counted_once() {
        let bus = EventBus::new();
        let analytics = Analytics::start(&MetricsRegistry::new(), &bus).unwrap();
        let event = |seq, kind| OrderEvent {
            order_id: 7,
            seq,
            at_ms: 1_000,
            trace_id: None,
            kind,
        };
        let created = event(
            1,
            OrderEventKind::Created {
                item: "book".into(),
                quantity: 1,
            },
        );
        for copy in [
            created.clone(),
            created,
            event(2, OrderEventKind::Completed),
            event(2, OrderEventKind::Completed),
        ] {
            bus.publish(copy.topic(), copy).await.unwrap();
        }
        let snapshot = analytics.snapshot();
        assert_eq!(snapshot["orders"]["created"], 1);
        assert_eq!(snapshot["orders"]["completed"], 1);
        assert_eq!(snapshot["orders"]["active"], 0);
        assert_eq!(snapshot["events"]["created"], 1);
    }
}
