//! One owner per actor name across the cluster, on JetStream KV.
//!
//! Claiming a name is a KV `create`, which the server makes atomic: of two
//! nodes claiming `order-42` at once, exactly one gets it. A claim holds
//! `node/incarnation`: the process, not only the node name. Each node
//! also keeps a liveness key (its incarnation) in a bucket whose entries
//! expire after the cluster's `node_ttl` (the first node to create the
//! bucket sets it for all), refreshed every quarter of it. A claim whose
//! process is gone (its node's key expired: it crashed or is cut off from
//! NATS; or the key holds another incarnation: the node restarted) can be
//! taken over, with a compare-and-set on the claim's revision so only one
//! node takes it. A node judges others dead only once it has itself been
//! connected for a whole TTL: a NATS outage expires every key, and the
//! others need that long to renew theirs.
//!
//! What a takeover does not bring back: the dead node's in-memory actor
//! state and the messages in its mailbox. An actor whose state is the fold
//! of its own events (an event-sourced order) rebuilds it from the
//! namespace's stream; anything else starts fresh.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::TryStreamExt as _;

use super::{Cluster, ClusterError, check_name};

/// Who runs an actor name, as [`Placement::claim`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node: it was free, or already ours. Start (or keep) the actor.
    Mine,
    /// This node, taken from `previous`, whose liveness expired. Start the
    /// actor and recover what it can.
    TakenOver {
        /// The node that held it.
        previous: String,
    },
    /// A live node holds it: reach the actor there.
    Elsewhere(String),
}

impl Claim {
    /// Whether this node now owns the name.
    pub fn is_mine(&self) -> bool {
        !matches!(self, Self::Elsewhere(_))
    }
}

/// Claims of actor names for one kind of actor; from
/// [`Cluster::placement`].
#[derive(Clone)]
pub struct Placement {
    owners: kv::Store,
    nodes: kv::Store,
    node: Arc<str>,
    /// What a claim holds: `node/incarnation`, so a claim of an earlier
    /// process with this node name is not mistaken for this one's.
    owner: Arc<str>,
    cluster: Cluster,
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn kv_error(error: impl std::fmt::Display) -> ClusterError {
    ClusterError::JetStream(error.to_string())
}

impl Cluster {
    /// The placement of actors of kind `kind` (a KV bucket
    /// `cortex_<namespace>_<kind>`), with this node announced as alive.
    /// A node that stops refreshing its liveness for the cluster's
    /// [`node_ttl`](super::ClusterBuilder::node_ttl) is dead to the others,
    /// and its names can be taken over.
    pub async fn placement(&self, kind: &str) -> Result<Placement, ClusterError> {
        let node_ttl = self.inner.node_ttl;
        check_name("placement kind", kind)?;
        if matches!(kind, "nodes" | "ids") {
            return Err(ClusterError::InvalidName {
                what: "placement kind (`nodes` and `ids` are the cluster's own buckets)",
                name: kind.to_owned(),
            });
        }
        let jetstream = self.jetstream()?;
        let namespace = &self.inner.namespace;
        let owners = bucket(
            jetstream,
            format!("cortex_{namespace}_{kind}"),
            Duration::ZERO,
        )
        .await?;
        let nodes = bucket(jetstream, format!("cortex_{namespace}_nodes"), node_ttl).await?;
        let node: Arc<str> = Arc::from(self.inner.node.as_str());
        let incarnation = Bytes::from(self.inner.incarnation.clone());
        nodes
            .put(&*node, incarnation.clone())
            .await
            .map_err(kv_error)?;
        let heartbeat = {
            let nodes = nodes.clone();
            let node = Arc::clone(&node);
            tokio::spawn(async move {
                // Four times a TTL: a node back from a NATS outage (whose
                // key expired meanwhile) is alive again within a quarter.
                let mut every = tokio::time::interval(node_ttl / 4);
                loop {
                    every.tick().await;
                    if let Err(error) = nodes.put(&*node, incarnation.clone()).await {
                        tracing::debug!(target: "cortex_actor::cluster", %error, "cannot refresh this node's liveness");
                    }
                }
            })
        };
        self.track(heartbeat);
        Ok(Placement {
            owners,
            nodes,
            owner: Arc::from(format!("{}/{}", self.inner.node, self.inner.incarnation)),
            node,
            cluster: self.clone(),
        })
    }
}

/// A KV bucket with one value per key, made as the stream async-nats's
/// `create_key_value` would make, then opened. Not `create_key_value`
/// itself: it first asks for the account's JetStream info, whose answer
/// from a 2.9 server async-nats 0.51 cannot parse.
pub(crate) async fn bucket(
    jetstream: &async_nats::jetstream::Context,
    bucket: String,
    max_age: Duration,
) -> Result<kv::Store, ClusterError> {
    use async_nats::jetstream::stream;
    jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(kv_error)?;
    jetstream.get_key_value(bucket).await.map_err(kv_error)
}

/// The node name of an owner (`node/incarnation`).
fn node_of(owner: &str) -> &str {
    owner.split_once('/').map_or(owner, |(node, _)| node)
}

impl Placement {
    /// Whether this node may judge others dead: only after it has been
    /// connected for a whole TTL, so that after a NATS outage (which
    /// expires every liveness key) the others have had time to come back
    /// and say they are alive.
    fn may_judge(&self) -> bool {
        self.cluster
            .connected_for()
            .is_some_and(|up| up >= self.cluster.inner.node_ttl)
    }

    /// Claims `name` for this node, unless a live node holds it.
    pub async fn claim(&self, name: &str) -> Result<Claim, ClusterError> {
        check_name("actor name", name)?;
        loop {
            match self
                .owners
                .create(name, Bytes::copy_from_slice(self.owner.as_bytes()))
                .await
            {
                Ok(_) => return Ok(Claim::Mine),
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(error) => return Err(kv_error(error)),
            }
            let Some(entry) = self.owners.entry(name).await.map_err(kv_error)? else {
                continue;
            };
            if entry.operation != kv::Operation::Put {
                // Released between our create and this read: try again.
                continue;
            }
            let owner = String::from_utf8_lossy(&entry.value).into_owned();
            if *owner == *self.owner {
                return Ok(Claim::Mine);
            }
            if !self.may_judge() || self.owner_is_alive(&owner).await? {
                return Ok(Claim::Elsewhere(node_of(&owner).to_owned()));
            }
            match self
                .owners
                .update(
                    name,
                    Bytes::copy_from_slice(self.owner.as_bytes()),
                    entry.revision,
                )
                .await
            {
                Ok(_) => {
                    return Ok(Claim::TakenOver {
                        previous: node_of(&owner).to_owned(),
                    });
                }
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Err(error) => return Err(kv_error(error)),
            }
        }
    }

    /// The node holding `name`, if any (alive or not).
    pub async fn owner(&self, name: &str) -> Result<Option<String>, ClusterError> {
        Ok(self
            .owners
            .get(name)
            .await
            .map_err(kv_error)?
            .map(|value| node_of(&String::from_utf8_lossy(&value)).to_owned()))
    }

    /// Gives `name` up if this process holds it (the actor finished).
    pub async fn release(&self, name: &str) -> Result<bool, ClusterError> {
        let Some(entry) = self.owners.entry(name).await.map_err(kv_error)? else {
            return Ok(false);
        };
        if entry.operation != kv::Operation::Put || *entry.value != *self.owner.as_bytes() {
            return Ok(false);
        }
        self.owners
            .delete_expect_revision(name, Some(entry.revision))
            .await
            .map_or(Ok(false), |()| Ok(true))
    }

    /// Gives `name` up once every event this node published before the
    /// call is stored (waiting up to `within`), so no node can see the
    /// name free while the actor's last events are still on their way:
    /// if this node dies first, the claim stays for a survivor to take
    /// over. Whether it was released.
    pub async fn release_when_stored(
        &self,
        name: &str,
        within: Duration,
    ) -> Result<bool, ClusterError> {
        if !self.cluster.wait_stored(within).await {
            return Ok(false);
        }
        self.release(name).await
    }

    /// Whether `node` refreshed its liveness within the TTL.
    pub async fn is_alive(&self, node: &str) -> Result<bool, ClusterError> {
        Ok(self.nodes.get(node).await.map_err(kv_error)?.is_some())
    }

    /// Whether the process that wrote claim value `owner` is alive: its
    /// node refreshed its liveness, and it is still the same process.
    async fn owner_is_alive(&self, owner: &str) -> Result<bool, ClusterError> {
        let (node, incarnation) = owner.split_once('/').unwrap_or((owner, ""));
        Ok(self
            .nodes
            .get(node)
            .await
            .map_err(kv_error)?
            .is_some_and(|alive| *alive == *incarnation.as_bytes()))
    }

    /// The claimed names whose owner is no longer alive (its liveness
    /// expired, or its node restarted as a new process), with that
    /// owner's node: what a surviving node should [`claim`](Self::claim)
    /// and recover. Empty until this node has been connected for a whole
    /// TTL (see [`claim`](Self::claim)).
    pub async fn orphans(&self) -> Result<Vec<(String, String)>, ClusterError> {
        if !self.may_judge() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = match self.owners.keys().await {
            Ok(keys) => keys.try_collect().await.map_err(kv_error)?,
            Err(error) => return Err(kv_error(error)),
        };
        let mut alive = std::collections::HashMap::new();
        let mut orphans = Vec::new();
        for key in keys {
            let Some(owner) = self.owners.get(&key).await.map_err(kv_error)? else {
                continue;
            };
            let owner = String::from_utf8_lossy(&owner).into_owned();
            let live = match alive.get(&owner) {
                Some(live) => *live,
                None => {
                    let live = self.owner_is_alive(&owner).await?;
                    alive.insert(owner.clone(), live);
                    live
                }
            };
            if !live {
                orphans.push((key, node_of(&owner).to_owned()));
            }
        }
        Ok(orphans)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }
}
