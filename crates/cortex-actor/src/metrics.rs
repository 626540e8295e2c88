//! Prometheus series for an [`ActorSystem`], labelled by actor type.
//!
//! [`ActorSystem`] implements [`RegisterMetrics`], the one way every Cortex
//! component exports its series. Counters are read at scrape time from the
//! system's own counters; only the handler-duration histogram is recorded
//! per message (two clock reads), and only once metrics are registered.
//! Registering is harmless to repeat and may happen before or after actors
//! are spawned.
//!
//! ```
//! use cortex_actor::{Actor, ActorError, ActorSystem, Context, Handler, Message};
//! use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
//!
//! #[derive(Default)]
//! struct Greeter;
//! impl Actor for Greeter {}
//! struct Hello;
//! impl Message for Hello { type Reply = &'static str; }
//! impl Handler<Hello> for Greeter {
//!     async fn handle(&mut self, _: Hello, _: &mut Context<Self>) -> Result<&'static str, ActorError> {
//!         Ok("hi")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let system = ActorSystem::new("app");
//! let metrics = MetricsRegistry::new();
//! system.register_metrics(&metrics).unwrap();
//! let greeter = system.spawn(|| Greeter).unwrap();
//! greeter.ask(Hello).await.unwrap();
//! let text = metrics.encode(Format::Prometheus);
//! assert!(text.contains(r#"cortex_actor_messages_total{actor="Greeter"} 1"#));
//! assert!(text.contains(r#"cortex_actor_handler_duration_seconds_count{actor="Greeter"} 1"#));
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use cortex_metrics::{Collector, CollectorOutput, MetricsError, MetricsRegistry, RegisterMetrics};

use crate::system::{ActorSystem, KindStats};

/// Handler durations from 50 µs to 10 s.
const DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

impl RegisterMetrics for ActorSystem {
    /// Registers this system's series with `registry`: a scrape-time
    /// collector for the counters and gauges, and, with the first registry
    /// only, the `cortex_actor_handler_duration_seconds` histogram family
    /// (which turns on per-message timing). Registering again with the same
    /// registry adds nothing; another registry gets the scrape-time series.
    fn register_metrics(&self, registry: &MetricsRegistry) -> Result<(), MetricsError> {
        let inner = self.inner();
        // Each message is timed once, so the histogram has one home: the
        // first registry. Later registries do not get an empty copy of it.
        if inner.duration_family.get().is_none() {
            let family = registry.histogram_family(
                "cortex_actor_handler_duration_seconds",
                "Time spent in message handlers, by actor type.",
                ["actor"],
                DURATION_BUCKETS,
            )?;
            if inner.duration_family.set(family.clone()).is_ok() {
                // Kinds created from here on bind at creation
                // (`SystemInner::kind`); these are the ones that came before.
                for kind in inner.kinds() {
                    let _ = kind.duration.set(family.with_labels([kind.kind]));
                }
            }
        }
        // The key names this system: the collector holds the system, so its
        // address cannot be reused by another while the registry lives.
        let key = format!("cortex_actor/{:p}", std::ptr::from_ref(inner));
        registry.register_collector_once(
            &key,
            ActorCollector {
                system: self.clone(),
            },
        );
        Ok(())
    }
}

/// Messages handled (by live and ended actors) and mailbox depth of one
/// kind.
type LiveTotals = (u64, u64);
/// Reads one sample's value from a kind's counters and live totals.
type Pick = dyn Fn(&KindStats, LiveTotals) -> u64;

/// The collector [`ActorSystem`]'s [`RegisterMetrics`] impl installs.
#[derive(Debug)]
struct ActorCollector {
    system: ActorSystem,
}

fn load(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[allow(clippy::cast_precision_loss)] // counters far below 2^53
fn float(value: u64) -> f64 {
    value as f64
}

impl Collector for ActorCollector {
    fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
        let inner = self.system.inner();
        let kinds = inner.kinds();
        // Messages and mailbox depth of live actors are their own (so the
        // message path shares no counter): this walks the actor table,
        // once per scrape. The rest are per-type atomics.
        let mut live: BTreeMap<&'static str, LiveTotals> = BTreeMap::new();
        {
            let table = inner.lock_live();
            for actor in table.values() {
                let entry = live.entry(actor.control.kind().kind).or_default();
                entry.0 += actor.control.handled();
                entry.1 += actor.control.mailbox_len() as u64;
            }
            // Read under the same lock an ending actor moves its count
            // from live to retired under: each message is seen once.
            for kind in &kinds {
                live.entry(kind.kind).or_default().0 += load(&kind.retired_messages);
            }
        }
        let names: Vec<[&str; 1]> = kinds.iter().map(|kind| [kind.kind]).collect();
        let sample = |pick: &Pick| {
            kinds
                .iter()
                .zip(&names)
                .map(|(kind, name)| {
                    let live = live.get(kind.kind).copied().unwrap_or_default();
                    (&name[..], float(pick(kind, live)))
                })
                .collect::<Vec<_>>()
        };
        out.counter_family(
            "cortex_actor_messages_total",
            "Messages handled, by actor type.",
            &["actor"],
            sample(&|_, live| live.0),
        );
        out.counter_family(
            "cortex_actor_errors_total",
            "Handler and hook failures (errors and panics), by actor type.",
            &["actor"],
            sample(&|kind, _| load(&kind.failures)),
        );
        out.counter_family(
            "cortex_actor_restarts_total",
            "Restarts by the supervisor, by actor type.",
            &["actor"],
            sample(&|kind, _| load(&kind.restarts)),
        );
        out.counter_family(
            "cortex_actor_restarts_exhausted_total",
            "Actors stopped or escalated because their restarts ran out, by type.",
            &["actor"],
            sample(&|kind, _| load(&kind.exhausted)),
        );
        out.counter_family(
            "cortex_actor_dead_letters_total",
            "Messages not delivered, by addressee type.",
            &["actor"],
            sample(&|kind, _| load(&kind.dead_letters)),
        );
        out.gauge_family(
            "cortex_actor_mailbox_depth",
            "Messages waiting in mailboxes, summed by actor type.",
            &["actor"],
            sample(&|_, live| live.1),
        );
        out.gauge_family(
            "cortex_actor_live",
            "Running actors, by type.",
            &["actor"],
            sample(&|kind, _| load(&kind.live)),
        );
        let bus = self.system.events().stats();
        out.counter_family(
            "cortex_actor_bus_deliveries_total",
            "System event bus deliveries, by outcome.",
            &["outcome"],
            [
                (&["delivered"][..], float(bus.delivered)),
                (&["dropped"][..], float(bus.dropped)),
            ],
        );
    }
}
