//! The event bus and named actors across nodes, on NATS (feature `nats`).
//!
//! A [`Cluster`] joins one node's [`EventBus`] to a NATS server (or
//! cluster of them) under a namespace. Nothing here is a home-made
//! protocol: fan-out is core NATS publish/subscribe, at-least-once is a
//! JetStream stream with durable consumers, an `ask` is a NATS request,
//! and "one owner per actor name" is a JetStream key-value create.
//!
//! - [`Cluster::bridge`] makes the local bus cluster-wide for one event
//!   type and pattern: events published here also go out on
//!   `cortex.<namespace>.ev.<topic>`, events published on other nodes are
//!   delivered to this node's subscribers. Local subscribers still get local
//!   events straight from the local bus, without a network hop, and never a
//!   second time from NATS (each message names the node it came from).
//! - [`Transport::JetStream`] bridges keep every event in the namespace's
//!   stream (`CORTEX_<NAMESPACE>`), published with a `Nats-Msg-Id` so the
//!   server drops the duplicates a retry makes; [`Cluster::consume`] runs a
//!   durable consumer group over that stream: each event is handled by one
//!   member of the group, acknowledged after the handler succeeds,
//!   redelivered after a failure or after `ack_wait`, and sent to
//!   `cortex.<namespace>.dlq.<group>` after `max_deliver` attempts.
//! - [`Cluster::serve`] and [`Cluster::remote`] make a named actor
//!   reachable from every node (`cortex.<namespace>.actor.<type>.<name>`);
//!   [`Cluster::placement`] decides which node runs it.
//!
//! Every message carries the W3C trace context of the code that sent it
//! (`traceparent`, `tracestate` headers, through OpenTelemetry's global
//! propagator), and the receiving side runs the subscriber, handler or
//! actor inside it, so one trace spans the nodes.
//!
//! Guarantees, in short: a core bridge is at most once (an event published
//! while a node is cut off from NATS is buffered by the client up to its
//! limit, and missed by nodes that are not subscribed yet); a JetStream
//! bridge plus a consumer group is at least once (a handler may see an
//! event twice after a crash or a redelivery, so handlers must be
//! idempotent for an exactly-once effect).
//!
//! ```no_run
//! use cortex_actor::EventBus;
//! use cortex_actor::cluster::{Cluster, RemoteEvent, Transport};
//!
//! #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! struct OrderPlaced { id: u64 }
//!
//! impl RemoteEvent for OrderPlaced {
//!     const NAME: &'static str = "order-placed";
//! }
//!
//! # async fn run() -> Result<(), cortex_actor::cluster::ClusterError> {
//! let bus = EventBus::new();
//! let cluster = Cluster::builder("nats://127.0.0.1:4222")
//!     .namespace("shop")
//!     .node("node-1")
//!     .jetstream(true)
//!     .connect(bus.clone())
//!     .await?;
//! cluster.bridge::<OrderPlaced>("order.**", Transport::JetStream).await?;
//! // Every node's `order.*` subscribers now see this event.
//! bus.publish("order.placed", OrderPlaced { id: 7 }).await.unwrap();
//! // One member of the `billing` group handles each event, at least once.
//! cluster
//!     .consume::<OrderPlaced, _, _>("billing", "order.*", Default::default(), |_topic, event| async move {
//!         tracing::info!(order = event.id, "billed");
//!         Ok(())
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

mod bridge;
mod error;
mod group;
mod headers;
mod ids;
#[cfg(feature = "metrics")]
mod metrics;
mod placement;
mod remote;
mod subject;

use std::any::TypeId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::bus::EventBus;
use crate::bus::pattern::Pattern;

pub use error::{ClusterError, RemoteError};
pub use group::{ConsumeOptions, ConsumerGroup};
pub use ids::IdAllocator;
pub use placement::{Claim, Placement};
pub use remote::{RemoteActor, RemoteMessage, RemoteRef, Serve, Served};

/// An event type that can cross nodes: serialized as JSON, and named so a
/// receiver only decodes the types it asked for.
///
/// The name is the contract between nodes: keep it when the Rust type is
/// renamed or moved, and change it when the encoding changes
/// incompatibly.
pub trait RemoteEvent: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The event's name on the wire (`Cortex-Event` header).
    const NAME: &'static str;
}

/// How a bridge carries events between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Core NATS: at most once, nothing stored. Fast; a node that is
    /// disconnected or not yet subscribed misses events.
    Core,
    /// A JetStream stream: each event is stored once (de-duplicated by
    /// `Nats-Msg-Id`), published again until the server acknowledges it,
    /// and delivered to every node by the node's own durable consumer,
    /// acknowledged once local subscribers have it. So every node sees
    /// every event at least once, across NATS outages and its own
    /// restarts (events published while it was down arrive when it is
    /// back), and [`Cluster::consume`] groups can share the work.
    JetStream,
}

/// Counts of what a [`Cluster`] did, since it connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterStats {
    /// Events handed to a bridge for other nodes.
    pub exported: u64,
    /// Events a full best-effort bridge queue missed.
    pub export_dropped: u64,
    /// Events that could not be encoded, or whose topic is not a NATS
    /// subject.
    pub export_failed: u64,
    /// JetStream-bridged events the server acknowledged (stored) ...
    pub stored: u64,
    /// ... of which it had already stored (a retry's duplicate).
    pub duplicates: u64,
    /// Publishes to JetStream tried again after no acknowledgement.
    pub publish_retries: u64,
    /// Events from other nodes delivered to local subscribers.
    pub imported: u64,
    /// Messages that could not be decoded (wrong payload or headers).
    pub decode_errors: u64,
    /// Events a consumer group handled and acknowledged.
    pub consumed: u64,
    /// Handler failures, redelivered later.
    pub redelivered: u64,
    /// Events sent to a dead-letter subject after `max_deliver` attempts.
    pub dead_lettered: u64,
    /// Remote asks and tells served by actors on this node.
    pub served: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    exported: AtomicU64,
    export_dropped: AtomicU64,
    export_failed: AtomicU64,
    stored: AtomicU64,
    duplicates: AtomicU64,
    publish_retries: AtomicU64,
    imported: AtomicU64,
    decode_errors: AtomicU64,
    consumed: AtomicU64,
    redelivered: AtomicU64,
    dead_lettered: AtomicU64,
    served: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One node's connection to the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    client: async_nats::Client,
    jetstream: Option<async_nats::jetstream::Context>,
    namespace: String,
    node: String,
    /// Distinguishes this process from an earlier one with the same node
    /// name, in message ids.
    incarnation: String,
    next_message: AtomicU64,
    bus: EventBus,
    /// `cortex.<namespace>.ev.`
    event_prefix: String,
    stream_name: String,
    stream_max_age: Duration,
    node_ttl: Duration,
    /// Every bridge's event type and pattern, in the order they were
    /// made: an event goes out (and comes in) through the first bridge of
    /// its type that matches its topic, so overlapping bridges never
    /// deliver it twice.
    bridges: RwLock<Vec<BridgeEntry>>,
    next_bridge: AtomicU64,
    counters: Counters,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    exporters: Mutex<Vec<bridge::ExporterTask>>,
    /// The durable consumers JetStream bridges import through.
    imports: Mutex<
        Vec<
            async_nats::jetstream::consumer::Consumer<
                async_nats::jetstream::consumer::pull::Config,
            >,
        >,
    >,
    /// Since when the connection has been up (`None` while it is down).
    connected_since: Arc<Mutex<Option<std::time::Instant>>>,
}

pub(crate) struct BridgeEntry {
    id: u64,
    type_id: TypeId,
    pattern: Pattern,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.inner.namespace)
            .field("node", &self.inner.node)
            .field("jetstream", &self.inner.jetstream.is_some())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Cluster`]; from [`Cluster::builder`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    url: String,
    namespace: String,
    node: Option<String>,
    jetstream: bool,
    stream_max_age: Duration,
    publish_timeout: Duration,
    connect_timeout: Duration,
    node_ttl: Duration,
}

impl ClusterBuilder {
    /// The namespace every subject, stream and bucket lives under
    /// (default `default`): letters, digits, `-` and `_`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// This node's name (default: a random one): letters, digits, `-` and
    /// `_`. Two live processes must not share a name.
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Whether to use JetStream (default false): needed by
    /// [`Transport::JetStream`], [`Cluster::consume`] and
    /// [`Cluster::placement`]. The server must run with `-js`.
    pub fn jetstream(mut self, on: bool) -> Self {
        self.jetstream = on;
        self
    }

    /// How long the namespace's stream keeps events (default 24 h).
    pub fn stream_max_age(mut self, max_age: Duration) -> Self {
        self.stream_max_age = max_age;
        self
    }

    /// How long a JetStream publish waits for the server's
    /// acknowledgement before it is tried again (default 2 s).
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// How long a node that stopped refreshing its liveness (crashed, cut
    /// off from NATS) still owns its [placed](Cluster::placement) actor
    /// names (default 10 s). Every node of a namespace must use the same:
    /// the first to create the liveness bucket sets it.
    pub fn node_ttl(mut self, ttl: Duration) -> Self {
        self.node_ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// How long the first connection may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects, and with JetStream on, creates (or reuses) the
    /// namespace's stream. Reconnects after that are automatic and
    /// unbounded.
    pub async fn connect(self, bus: EventBus) -> Result<Cluster, ClusterError> {
        check_name("namespace", &self.namespace)?;
        if self.namespace.bytes().any(|byte| byte.is_ascii_uppercase()) {
            // The stream's name is the namespace upper-cased: two
            // namespaces differing in case would share it.
            return Err(ClusterError::InvalidName {
                what: "namespace (lower case)",
                name: self.namespace,
            });
        }
        let node = self
            .node
            .unwrap_or_else(|| format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        check_name("node", &node)?;
        let connected_since = Arc::new(Mutex::new(None));
        let on_event = Arc::clone(&connected_since);
        let client = async_nats::ConnectOptions::new()
            .name(format!("cortex-{}-{node}", self.namespace))
            .connection_timeout(self.connect_timeout)
            .max_reconnects(None)
            // Back within a second of the server: a node that waits longer
            // looks dead to the others (placement) for that much longer.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(50 * (1 << attempts.min(4) as u64))
                    .min(Duration::from_secs(1))
            })
            .event_callback(move |event| {
                let since = Arc::clone(&on_event);
                async move {
                    let mut since = since
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match event {
                        async_nats::Event::Connected => *since = Some(std::time::Instant::now()),
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            *since = None
                        }
                        _ => {}
                    }
                    tracing::info!(target: "cortex_actor::cluster", %event, "NATS connection");
                }
            })
            .connect(&self.url)
            .await
            .map_err(|error| ClusterError::Connect(error.to_string()))?;
        *connected_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
        let stream_name = format!("CORTEX_{}", self.namespace.to_uppercase());
        let jetstream = self.jetstream.then(|| {
            let mut context = async_nats::jetstream::new(client.clone());
            context.set_timeout(self.publish_timeout);
            context
        });
        let event_prefix = format!("cortex.{}.ev.", self.namespace);
        let cluster = Cluster {
            inner: Arc::new(Inner {
                client,
                jetstream,
                namespace: self.namespace,
                node,
                incarnation: uuid::Uuid::new_v4().simple().to_string(),
                next_message: AtomicU64::new(0),
                bus,
                event_prefix,
                stream_name,
                node_ttl: self.node_ttl,
                bridges: RwLock::new(Vec::new()),
                next_bridge: AtomicU64::new(0),
                counters: Counters::default(),
                tasks: Mutex::new(Vec::new()),
                exporters: Mutex::new(Vec::new()),
                imports: Mutex::new(Vec::new()),
                connected_since,
                stream_max_age: self.stream_max_age,
            }),
        };
        if cluster.inner.jetstream.is_some() {
            cluster.inner.create_stream().await?;
        }
        Ok(cluster)
    }
}

impl Inner {
    /// Creates the namespace's stream (or finds it): events and dead
    /// letters, on file, kept `stream_max_age`, de-duplicated over two
    /// minutes.
    pub(crate) async fn create_stream(&self) -> Result<(), ClusterError> {
        let Some(jetstream) = &self.jetstream else {
            return Err(ClusterError::JetStreamOff);
        };
        jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: self.stream_name.clone(),
                subjects: vec![
                    format!("cortex.{}.ev.>", self.namespace),
                    format!("cortex.{}.dlq.>", self.namespace),
                ],
                max_age: self.stream_max_age,
                duplicate_window: Duration::from_secs(120),
                storage: async_nats::jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|error| ClusterError::JetStream(error.to_string()))
    }
}

/// Names that become subject tokens, stream and bucket names and header
/// values.
fn check_name(what: &'static str, name: &str) -> Result<(), ClusterError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if valid {
        Ok(())
    } else {
        Err(ClusterError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

impl Cluster {
    /// A cluster connection to the NATS server at `url`
    /// (`nats://host:4222`; several comma-separated URLs for a NATS
    /// cluster).
    pub fn builder(url: impl Into<String>) -> ClusterBuilder {
        ClusterBuilder {
            url: url.into(),
            namespace: "default".to_owned(),
            node: None,
            jetstream: false,
            stream_max_age: Duration::from_secs(24 * 3600),
            publish_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            node_ttl: Duration::from_secs(10),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The local bus this cluster bridges.
    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// The NATS client, for anything this module does not wrap.
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// Whether the connection to NATS is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.client.connection_state() == async_nats::connection::State::Connected
    }

    /// How long the connection to NATS has been up without a break
    /// (`None` while it is down).
    pub fn connected_for(&self) -> Option<Duration> {
        self.inner
            .connected_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|since| since.elapsed())
    }

    /// This process's incarnation: distinguishes it from an earlier
    /// process that had the same node name.
    pub fn incarnation(&self) -> &str {
        &self.inner.incarnation
    }

    /// Whether this node has delivered every event stored so far to its
    /// local subscribers (its JetStream bridges' consumers have nothing
    /// pending): what it knows is everything the stream holds.
    pub async fn caught_up(&self) -> Result<bool, ClusterError> {
        let consumers = self
            .inner
            .imports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for consumer in consumers {
            let info = consumer
                .get_info()
                .await
                .map_err(|error| ClusterError::JetStream(error.to_string()))?;
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The JetStream stream holding the namespace's events.
    pub fn stream_name(&self) -> &str {
        &self.inner.stream_name
    }

    /// The subject an event on `topic` travels on.
    pub fn event_subject(&self, topic: &str) -> String {
        format!("{}{topic}", self.inner.event_prefix)
    }

    /// The subject a group's dead letters go to.
    pub fn dead_letter_subject(&self, group: &str) -> String {
        format!("cortex.{}.dlq.{group}", self.inner.namespace)
    }

    /// Totals since connecting.
    pub fn stats(&self) -> ClusterStats {
        let c = &self.inner.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ClusterStats {
            exported: load(&c.exported),
            export_dropped: load(&c.export_dropped),
            export_failed: load(&c.export_failed),
            stored: load(&c.stored),
            duplicates: load(&c.duplicates),
            publish_retries: load(&c.publish_retries),
            imported: load(&c.imported),
            decode_errors: load(&c.decode_errors),
            consumed: load(&c.consumed),
            redelivered: load(&c.redelivered),
            dead_lettered: load(&c.dead_lettered),
            served: load(&c.served),
        }
    }

    fn jetstream(&self) -> Result<&async_nats::jetstream::Context, ClusterError> {
        self.inner
            .jetstream
            .as_ref()
            .ok_or(ClusterError::JetStreamOff)
    }

    /// Returns once the server has processed everything this connection
    /// sent before (subscriptions included): a message to our own inbox,
    /// received back, is behind them in the server's queue. (`flush` only
    /// empties the client's buffer.)
    async fn sync_with_server(&self) -> Result<(), ClusterError> {
        use futures_util::StreamExt as _;
        let client = &self.inner.client;
        let inbox = client.new_inbox();
        let mut echo = client
            .subscribe(inbox.clone())
            .await
            .map_err(|error| ClusterError::Subscribe(error.to_string()))?;
        client
            .publish(inbox, bytes::Bytes::new())
            .await
            .map_err(|error| ClusterError::Subscribe(error.to_string()))?;
        match tokio::time::timeout(Duration::from_secs(10), echo.next()).await {
            Ok(Some(_)) => Ok(()),
            _ => Err(ClusterError::Subscribe(
                "the server did not confirm the subscription within 10 s".to_owned(),
            )),
        }
    }

    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
    }

    /// Waits (at most `timeout`) until JetStream has stored every event
    /// this node's JetStream bridges took before the call; false if the
    /// time ran out (NATS is away). What a service answers after this
    /// returned true survives the node: it is in the stream.
    pub async fn wait_stored(&self, timeout: Duration) -> bool {
        let progress: Vec<Arc<bridge::Progress>> = self
            .inner
            .exporters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|exporter| exporter.progress.clone())
            .collect();
        tokio::time::timeout(
            timeout,
            futures_util::future::join_all(progress.iter().map(|p| p.caught_up())),
        )
        .await
        .is_ok()
    }

    /// Leaves the cluster: stops importing (consumer groups stop when their
    /// [`ConsumerGroup`] handles drop, served actors when they stop), then
    /// waits up to
    /// `grace` for the bridges to hand every event already published here
    /// to NATS (for JetStream bridges: until the server stored it), and
    /// flushes and closes the connection. Events published on the bus after
    /// this stay local. Events this node's JetStream bridges had pulled and
    /// not yet delivered go to the node's next process (after a 5 s
    /// acknowledgement wait), not lost.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in &tasks {
            task.abort();
        }
        let exporters = std::mem::take(
            &mut *self
                .inner
                .exporters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let deadline = tokio::time::Instant::now() + grace;
        let mut drained = true;
        for exporter in exporters {
            self.inner.bus.unsubscribe(exporter.subscription);
            let mut task = exporter.task;
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                drained = false;
            }
        }
        let flushed = tokio::time::timeout_at(deadline, self.inner.client.flush())
            .await
            .is_ok_and(|flushed| flushed.is_ok());
        // Closes the connection once its subscriptions are drained: the
        // server forgets this node's interest at once.
        let _ = self.inner.client.drain().await;
        drained && flushed
    }
}
