//! The Hub as one node of several, when `CORTEX_NATS_URL` is set.
//!
//! [`HubCluster::join`] connects the actor system's bus to NATS (with
//! JetStream) under the namespace (`hub` by default) and makes the order
//! service cluster-wide by configuration alone:
//!
//! - `order.*` events are bridged over JetStream, so every node's journal,
//!   counts, analytics and notification rooms see every order, wherever it
//!   was placed, at least once (the journal drops copies by `seq`);
//! - order ids come from a cluster-wide sequence in blocks of
//!   [`ID_BLOCK`], so two nodes never number two orders alike;
//! - each order actor claims its name (`order-{id}`) in JetStream KV and
//!   is served under it, so `GET /api/orders/{id}/actor` reaches it from
//!   any node; when a node dies, a survivor takes over its unfinished
//!   orders and fails them with the reason (it cannot know whether the
//!   payment went through, so it does not pay again).
//!
//! Without NATS the Hub runs exactly as on one machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cortex::actor::EventBus;
use cortex::actor::cluster::{
    Cluster, ClusterError, IdAllocator, Placement, RemoteEvent, Transport,
};
use serde_json::{Value, json};

use crate::ClusterConfig;
use crate::orders::OrderEvent;

/// Order ids a node takes from the cluster-wide sequence at a time.
pub const ID_BLOCK: u64 = 1000;

impl RemoteEvent for OrderEvent {
    const NAME: &'static str = "hub-order-event";
}

/// This node's part in a cluster of Hubs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubCluster {
    /// The NATS connection and the bridged bus.
    pub cluster: Cluster,
    pub(crate) placement: Placement,
    pub(crate) order_ids: IdAllocator,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    /// Orders placed while NATS was away: run here, not claimed, so no
    /// other node can take them over if this one dies.
    unplaced: AtomicU64,
    /// Orders of dead nodes this node took over and finished.
    recovered: AtomicU64,
}

/// The node name to join with: the configured one, unless it is the
/// single-machine default `hub`, which replicas would all share (each would
/// then skip the others' events and claim their orders). Then the host's
/// name (a pod's, under Kubernetes), or `hub-` and a random suffix.
fn clustered_node_name(configured: &str) -> String {
    if configured != crate::ClusterConfig::default().node_name {
        return configured.to_owned();
    }
    let valid = |name: &str| {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let name = std::env::var("HOSTNAME")
        .ok()
        .filter(|host| valid(host))
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.subsec_nanos());
            format!("hub-{:08x}", nanos ^ std::process::id().rotate_left(16))
        });
    tracing::warn!(node = %name, "no CORTEX_NODE_NAME: joining the cluster as {name}");
    name
}

impl HubCluster {
    /// Joins the cluster `config` names, if it names a NATS server.
    pub async fn join(
        config: &ClusterConfig,
        bus: &EventBus,
    ) -> Result<Option<Self>, ClusterError> {
        let Some(url) = &config.nats_url else {
            return Ok(None);
        };
        let node = clustered_node_name(&config.node_name);
        let cluster = Cluster::builder(url.clone())
            .namespace(config.namespace.clone())
            .node(node)
            .node_ttl(config.node_ttl)
            .jetstream(true)
            .connect(bus.clone())
            .await?;
        cluster
            .bridge::<OrderEvent>("order.*", Transport::JetStream)
            .await?;
        let placement = cluster.placement("orders").await?;
        let order_ids = cluster.ids("orders", ID_BLOCK).await?;
        Ok(Some(Self {
            cluster,
            placement,
            order_ids,
            counters: Arc::default(),
        }))
    }

    pub(crate) fn count_unplaced(&self) {
        self.counters.unplaced.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_recovered(&self) {
        self.counters.recovered.fetch_add(1, Ordering::Relaxed);
    }

    /// `GET /api/cluster`: this node, its connection and what it moved.
    pub fn status(&self) -> Value {
        let stats = self.cluster.stats();
        json!({
            "node": self.cluster.node(),
            "clustered": true,
            "namespace": self.cluster.namespace(),
            "connected": self.cluster.is_connected(),
            "events": {
                "exported": stats.exported,
                "export_dropped": stats.export_dropped,
                "export_failed": stats.export_failed,
                "stored": stats.stored,
                "duplicates": stats.duplicates,
                "publish_retries": stats.publish_retries,
                "imported": stats.imported,
                "decode_errors": stats.decode_errors,
            },
            "actors": {
                "served": stats.served,
            },
            "orders": {
                "unplaced": self.counters.unplaced.load(Ordering::Relaxed),
                "recovered": self.counters.recovered.load(Ordering::Relaxed),
            },
        })
    }

    /// Leaves the cluster: waits up to `grace` until every event published
    /// here is stored.
    pub async fn leave(&self, grace: Duration) -> bool {
        self.cluster.shutdown(grace).await
    }
}
