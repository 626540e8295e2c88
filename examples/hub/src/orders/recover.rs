//! Taking over a dead node's unfinished orders, in a cluster of Hubs.
//!
//! Every second each node looks for order names claimed by a node whose
//! liveness has expired. The first live node to claim one takes it over
//! (the claim is a compare-and-set, so only one does) and, if the order is
//! not final in its journal, ends it with a `failed` event of kind
//! `abandoned` saying which node died and in which state the order was.
//! It does not pay again: the dead node may have charged the order before
//! it died, and paying twice is worse than failing an order the client can
//! place again. Then it gives the name up.
//!
//! The journal is fed by the JetStream bridge, which delivers the dead
//! node's events within milliseconds, and a node is only dead to the
//! others after its liveness TTL (seconds), so the journal has everything
//! the dead node published. A late copy of the dead node's own final event
//! would carry the same `seq` as the takeover's, and the journal drops it.

use std::sync::Arc;
use std::time::Duration;

use cortex::actor::EventBus;
use cortex::actor::cluster::Claim;

use super::event::{FailureKind, OrderEvent, OrderEventKind, OrderView, now_ms};
use super::journal::OrderJournal;
use crate::cluster::HubCluster;

/// How often a node looks for a dead node's orders.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn take_over_orphans(
    cluster: HubCluster,
    journal: Arc<OrderJournal>,
    bus: EventBus,
) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if !cluster.cluster.is_connected() {
            continue;
        }
        let orphans = match cluster.placement.orphans().await {
            Ok(orphans) => orphans,
            Err(error) => {
                tracing::debug!(%error, "cannot list orphaned orders");
                continue;
            }
        };
        for (name, _) in orphans {
            let Some(id) = name.strip_prefix("order-").and_then(|id| id.parse().ok()) else {
                continue;
            };
            let previous = match cluster.placement.claim(&name).await {
                Ok(Claim::TakenOver { previous }) => previous,
                // Another node took it first, or it was released.
                Ok(_) | Err(_) => continue,
            };
            if let Some(event) = abandon(&journal, id, &previous, cluster.cluster.node()) {
                tracing::warn!(order = id, dead_node = %previous, "took over an unfinished order of a dead node and failed it");
                journal.append(event.clone());
                let _ = bus.publish(event.topic(), event).await;
                cluster.count_recovered();
            }
            let _ = cluster.placement.release(&name).await;
        }
    }
}

/// The event that ends order `id` if it is not final: its next `seq`, a
/// `failed` of kind `abandoned` with the reason.
fn abandon(journal: &OrderJournal, id: u64, dead_node: &str, node: &str) -> Option<OrderEvent> {
    let events = journal.events(id)?;
    let view = OrderView::replay(id, &events);
    if view.state.is_final() {
        return None;
    }
    let last = events.last()?;
    let state = serde_json::to_value(view.state)
        .ok()
        .and_then(|state| state.as_str().map(str::to_owned))
        .unwrap_or_default();
    Some(OrderEvent {
        order_id: id,
        seq: last.seq.saturating_add(1),
        at_ms: now_ms(),
        trace_id: last.trace_id.clone(),
        kind: OrderEventKind::Failed {
            kind: FailureKind::Abandoned,
            reason: format!(
                "node {dead_node} stopped while the order was {state}; node {node} took it over and failed it rather than risk charging twice"
            ),
        },
    })
}
