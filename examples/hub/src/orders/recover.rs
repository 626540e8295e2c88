//! Taking over a dead node's unfinished orders, in a cluster of Hubs.
//!
//! Every second each node looks for order names claimed by a process that
//! is gone (its node's liveness expired, or the node restarted). Once its
//! own journal has everything the stream holds, the first live node to
//! claim one takes it over (the claim is a compare-and-set, so only one
//! does) and, if the order is not final in its journal, ends it with a
//! `failed` event of kind `abandoned` saying which node died and in which
//! state the order was (checked and appended in one step).
//! It does not pay again: the dead node may have charged the order before
//! it died, and paying twice is worse than failing an order the client can
//! place again. Then it gives the name up.
//!
//! An order actor gives its name up only once its final event is stored,
//! so a name found free never hides an order whose end was lost. A node
//! judges others dead only after being connected for a whole TTL itself,
//! so a NATS outage (which expires every liveness key) does not look like
//! every node dying. What is left: a node cut off from NATS for longer
//! than the TTL while its orders finish is taken for dead; when it comes
//! back, nodes keep the first final event each saw for those orders.

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
        // Empty until this node has been connected for a whole TTL.
        let orphans = match cluster.placement.orphans().await {
            Ok(orphans) => orphans,
            Err(error) => {
                tracing::debug!(%error, "cannot list orphaned orders");
                continue;
            }
        };
        if orphans.is_empty() {
            continue;
        }
        // Decide from everything the stream holds, not from a journal
        // that lags it: the dead node's last events may be stored and not
        // yet delivered here.
        if !cluster.cluster.caught_up().await.unwrap_or(false) {
            continue;
        }
        for (name, _) in orphans {
            let Some(id) = name.strip_prefix("order-").and_then(|id| id.parse().ok()) else {
                continue;
            };
            let previous = match cluster.placement.claim(&name).await {
                Ok(Claim::TakenOver { previous }) => previous,
                // Released since it was listed: this node just claimed a
                // free name, which it does not need.
                Ok(Claim::Mine) => {
                    let _ = cluster.placement.release(&name).await;
                    continue;
                }
                // Another node took it first.
                Ok(Claim::Elsewhere(_)) | Err(_) => continue,
            };
            let node = cluster.cluster.node().to_owned();
            let ended = journal.end_if_open(id, |events| abandon(events, &previous, &node));
            if let Some(event) = ended {
                tracing::warn!(order = id, dead_node = %previous, "took over an unfinished order of a dead node and failed it");
                let _ = bus.publish(event.topic(), event).await;
                cluster.count_recovered();
            }
            // Given up once the failure is stored: if this node dies first,
            // the next survivor takes the order over again.
            let _ = cluster
                .placement
                .release_when_stored(&name, Duration::from_secs(10))
                .await;
        }
    }
}

/// The event that ends an order whose log is `events`: its next `seq`, a
/// `failed` of kind `abandoned` with the reason.
fn abandon(events: &[OrderEvent], dead_node: &str, node: &str) -> Option<OrderEvent> {
    let last = events.last()?;
    let view = OrderView::replay(last.order_id, events);
    let state = serde_json::to_value(view.state)
        .ok()
        .and_then(|state| state.as_str().map(str::to_owned))
        .unwrap_or_default();
    Some(OrderEvent {
        order_id: last.order_id,
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
