//! Bridges: the local bus's events of one type and pattern go out to NATS,
//! and other nodes' come in to local subscribers.
//!
//! Outgoing, a bridge is a subscription on the local bus that serializes
//! each event on the publisher's task (with the publisher's trace context)
//! and queues it for a forwarder task, which publishes it: over core NATS,
//! or to JetStream, retrying until the server has stored it. Incoming, a
//! NATS subscription decodes each message from another node and publishes
//! it on the local bus as an import, which bridges do not forward again.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use bytes::Bytes;
use futures_util::StreamExt as _;
use opentelemetry::context::FutureExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::headers::{self, EVENT, INCARNATION, MSG_ID, ORIGIN};
use super::subject::{check_subject_word, pattern_subjects};
use super::{BridgeEntry, Cluster, ClusterError, Inner, RemoteEvent, Transport, bump};
use crate::bus::pattern::{Pattern, check_topic};
use crate::bus::subscriber::{DeliverFuture, Outcome, Subscriber};
use crate::bus::{Delivery, SubscriptionHandle};

/// Events waiting for a bridge's forwarder. A JetStream bridge makes
/// publishers wait when it is full (so nothing acknowledged is lost while
/// NATS is away for a while); a core bridge drops and counts.
const EXPORT_QUEUE: usize = 8192;
/// JetStream publishes in flight at once, awaiting their acknowledgements.
const PUBLISH_WINDOW: usize = 128;

pub(crate) struct ExporterTask {
    pub(crate) subscription: SubscriptionHandle,
    pub(crate) task: JoinHandle<()>,
    /// For JetStream bridges: how far the server has stored.
    pub(crate) progress: Option<Arc<Progress>>,
}

/// One JetStream bridge's events: tickets handed out as they are queued,
/// and the highest ticket up to which every event is stored.
pub(crate) struct Progress {
    issued: AtomicU64,
    stored: tokio::sync::watch::Sender<u64>,
}

impl Progress {
    /// Records `ticket` as stored (or given up on) and moves the mark past
    /// every ticket stored in a row; returns the new mark.
    fn mark_stored(
        &self,
        ticket: u64,
        stored_ahead: &mut std::collections::BTreeSet<u64>,
        mut mark: u64,
    ) -> u64 {
        stored_ahead.insert(ticket);
        while stored_ahead.remove(&(mark + 1)) {
            mark += 1;
        }
        self.stored.send_replace(mark);
        mark
    }

    fn new() -> Self {
        Self {
            issued: AtomicU64::new(0),
            stored: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Waits until every event queued before the call is stored.
    pub(crate) async fn caught_up(&self) {
        let target = self.issued.load(Ordering::Acquire);
        let mut stored = self.stored.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = stored.wait_for(|stored| *stored >= target).await;
    }
}

/// One event, encoded, on its way to NATS.
struct Outgoing {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
    /// Its place among the bridge's events, for [`Progress`] (0 on core
    /// bridges).
    ticket: u64,
}

impl Inner {
    /// Whether `bridge` is the first bridge of `type_id` whose pattern
    /// matches `words`: the one that carries the event.
    fn carries(&self, bridge: u64, type_id: TypeId, words: &[&str]) -> bool {
        self.bridges
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|entry| entry.type_id == type_id && entry.pattern.matches(words))
            .is_some_and(|entry| entry.id == bridge)
    }

    fn outgoing<E: RemoteEvent>(
        &self,
        topic: &str,
        event: &E,
        transport: Transport,
    ) -> Option<Outgoing> {
        if let Err(reason) = topic.split('.').try_for_each(check_subject_word) {
            tracing::warn!(target: "cortex_actor::cluster", topic, reason, "event not bridged");
            bump(&self.counters.export_failed);
            return None;
        }
        let payload = match serde_json::to_vec(event) {
            Ok(payload) => Bytes::from(payload),
            Err(error) => {
                tracing::warn!(target: "cortex_actor::cluster", topic, event = E::NAME, %error, "event not bridged: cannot encode");
                bump(&self.counters.export_failed);
                return None;
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, self.node.as_str());
        headers.insert(INCARNATION, self.incarnation.as_str());
        headers.insert(EVENT, E::NAME);
        if transport == Transport::JetStream {
            // Only JetStream de-duplicates by it.
            let sequence = self.next_message.fetch_add(1, Ordering::Relaxed);
            headers.insert(
                MSG_ID,
                format!("{}-{}-{sequence}", self.node, self.incarnation),
            );
        }
        headers::inject_trace(&mut headers);
        Some(Outgoing {
            subject: format!("{}{topic}", self.event_prefix),
            headers,
            payload,
            ticket: 0,
        })
    }
}

/// The local bus subscription that feeds a bridge's forwarder.
struct Exporter<E> {
    inner: Arc<Inner>,
    bridge: u64,
    transport: Transport,
    sender: mpsc::Sender<Outgoing>,
    progress: Option<Arc<Progress>>,
    _event: PhantomData<fn(E)>,
}

impl<E: RemoteEvent> Exporter<E> {
    /// The event if this bridge carries it, encoded; `Err` with the outcome
    /// to report otherwise.
    fn prepare(&self, topic: &str, event: &(dyn Any + Send + Sync)) -> Result<Outgoing, Outcome> {
        let Some(event) = event.downcast_ref::<E>() else {
            return Err(Outcome::Gone);
        };
        let words = check_topic(topic).map_err(|_| Outcome::Delivered)?;
        if !self.inner.carries(self.bridge, TypeId::of::<E>(), &words) {
            return Err(Outcome::Delivered);
        }
        self.inner
            .outgoing(topic, event, self.transport)
            .ok_or(Outcome::Delivered)
    }
}

impl<E> Exporter<E> {
    /// Numbers an event whose queue slot is reserved: a ticket is only
    /// handed out for an event that will reach the forwarder, so the
    /// stored mark never waits for one that will not.
    fn ticketed(&self, mut outgoing: Outgoing) -> Outgoing {
        if let Some(progress) = &self.progress {
            outgoing.ticket = progress.issued.fetch_add(1, Ordering::AcqRel) + 1;
        }
        outgoing
    }
}

impl<E: RemoteEvent> Subscriber for Exporter<E> {
    fn try_deliver(&self, topic: &str, event: &(dyn Any + Send + Sync)) -> Outcome {
        let outgoing = match self.prepare(topic, event) {
            Ok(outgoing) => outgoing,
            Err(outcome) => return outcome,
        };
        match self.sender.try_reserve() {
            Ok(permit) => {
                permit.send(self.ticketed(outgoing));
                bump(&self.inner.counters.exported);
                Outcome::Delivered
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                if self.transport == Transport::Core {
                    bump(&self.inner.counters.export_dropped);
                }
                Outcome::Full
            }
            Err(mpsc::error::TrySendError::Closed(())) => Outcome::Gone,
        }
    }

    fn deliver<'a>(
        &'a self,
        topic: &'a str,
        event: &'a (dyn Any + Send + Sync),
    ) -> DeliverFuture<'a> {
        Box::pin(async move {
            let outgoing = match self.prepare(topic, event) {
                Ok(outgoing) => outgoing,
                Err(outcome) => return outcome,
            };
            match self.sender.reserve().await {
                Ok(permit) => {
                    permit.send(self.ticketed(outgoing));
                    bump(&self.inner.counters.exported);
                    Outcome::Delivered
                }
                Err(_) => Outcome::Gone,
            }
        })
    }

    fn is_gone(&self) -> bool {
        self.sender.is_closed()
    }
}

impl Cluster {
    /// Makes the local bus cluster-wide for events of type `E` on
    /// `pattern`: they go out to the other nodes over `transport`, and the
    /// other nodes' come in to this node's subscribers (of any pattern
    /// that matches). Every node bridges the same types and patterns.
    /// Once this returns, the server knows the subscription: events other
    /// nodes publish from then on arrive.
    ///
    /// An event matching several bridges of its type travels once, through
    /// the first one made.
    pub async fn bridge<E: RemoteEvent>(
        &self,
        pattern: &str,
        transport: Transport,
    ) -> Result<(), ClusterError> {
        if transport == Transport::JetStream {
            self.jetstream()?;
        }
        let parsed = Pattern::parse(pattern)?;
        for word in parsed.words().filter(|word| !matches!(*word, "*" | "**")) {
            check_subject_word(word).map_err(|reason| crate::bus::TopicError {
                what: "pattern",
                value: pattern.to_owned(),
                reason,
            })?;
        }
        let filter = pattern_subjects(&self.inner.event_prefix, &parsed);
        let bridge = self.inner.next_bridge.fetch_add(1, Ordering::Relaxed);
        let mut subscribers = Vec::with_capacity(filter.subjects.len());
        let mut consumer = None;
        match transport {
            Transport::Core => {
                for subject in &filter.subjects {
                    subscribers.push(
                        self.inner
                            .client
                            .subscribe(subject.clone())
                            .await
                            .map_err(|error| ClusterError::Subscribe(error.to_string()))?,
                    );
                }
            }
            Transport::JetStream => {
                let single = filter.single(&self.inner.event_prefix);
                consumer = Some((self.node_consumer::<E>(&single).await?, single));
            }
        }
        self.inner
            .bridges
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(BridgeEntry {
                id: bridge,
                type_id: TypeId::of::<E>(),
                pattern: parsed,
            });

        let (sender, receiver) = mpsc::channel(EXPORT_QUEUE);
        let progress = (transport == Transport::JetStream).then(|| Arc::new(Progress::new()));
        let delivery = match transport {
            Transport::Core => Delivery::BestEffort,
            Transport::JetStream => Delivery::Guaranteed,
        };
        let subscription = self.inner.bus.add_export(
            pattern,
            TypeId::of::<E>(),
            delivery,
            Arc::new(Exporter::<E> {
                inner: Arc::clone(&self.inner),
                bridge,
                transport,
                sender,
                progress: progress.clone(),
                _event: PhantomData,
            }),
        )?;
        let forwarder = match transport {
            Transport::Core => tokio::spawn(forward_core(Arc::clone(&self.inner), receiver)),
            Transport::JetStream => tokio::spawn(forward_jetstream(
                Arc::clone(&self.inner),
                receiver,
                progress
                    .clone()
                    .unwrap_or_else(|| Arc::new(Progress::new())),
            )),
        };
        self.inner
            .exporters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(ExporterTask {
                subscription,
                task: forwarder,
                progress,
            });
        match consumer {
            None => self.track(tokio::spawn(import::<E>(
                Arc::clone(&self.inner),
                bridge,
                futures_util::stream::select_all(subscribers),
            ))),
            // No live subscription: this node's own durable consumer
            // brings every stored event.
            Some((consumer, filter)) => {
                self.inner
                    .imports
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(consumer.clone());
                self.track(tokio::spawn(import_stored::<E>(
                    self.clone(),
                    bridge,
                    consumer,
                    filter,
                )));
            }
        }
        self.sync_with_server().await
    }
}

impl Cluster {
    /// This node's own durable consumer of a JetStream bridge's events:
    /// named after the node, the event type and the filter, so a restarted
    /// node resumes where it stopped; it starts with the events published
    /// after its creation, and the server drops it after a day unused.
    async fn node_consumer<E: RemoteEvent>(
        &self,
        filter: &str,
    ) -> Result<async_nats::jetstream::consumer::Consumer<pull::Config>, ClusterError> {
        let jetstream = self.jetstream()?;
        let stream = jetstream
            .get_stream(&self.inner.stream_name)
            .await
            .map_err(|error| ClusterError::JetStream(error.to_string()))?;
        let event: String = E::NAME
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // Named by what it reads, not by the order bridges were made in: a
        // new version that bridges in another order finds its consumers.
        let name = format!(
            "bridge_{}_{event}_{:016x}",
            self.inner.node,
            fnv1a(filter.as_bytes())
        );
        stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: filter.to_owned(),
                    ack_policy: AckPolicy::Explicit,
                    // Delivering to the local bus takes microseconds; what
                    // a node pulled and did not acknowledge (it stopped
                    // mid-batch) comes back to its next process soon.
                    ack_wait: Duration::from_secs(5),
                    deliver_policy: DeliverPolicy::New,
                    max_ack_pending: 4096,
                    inactive_threshold: Duration::from_secs(24 * 3600),
                    ..Default::default()
                },
            )
            .await
            .map_err(|error| ClusterError::JetStream(error.to_string()))
    }
}

/// Publish errors a retry cannot mend.
fn is_permanent(kind: PublishErrorKind) -> bool {
    matches!(
        kind,
        PublishErrorKind::MaxPayloadExceeded
            | PublishErrorKind::WrongLastMessageId
            | PublishErrorKind::WrongLastSequence
    )
}

async fn forward_core(inner: Arc<Inner>, mut receiver: mpsc::Receiver<Outgoing>) {
    while let Some(out) = receiver.recv().await {
        // The client buffers while reconnecting; an error means it closed.
        if inner
            .client
            .publish_with_headers(out.subject, out.headers, out.payload)
            .await
            .is_err()
        {
            bump(&inner.counters.export_failed);
        }
    }
}

/// Publishes to JetStream in windows of up to [`PUBLISH_WINDOW`] events,
/// and publishes again every event whose acknowledgement did not come, with
/// the same `Nats-Msg-Id`, until the server has it. The server drops the
/// copies it already stored (within the stream's two-minute duplicate
/// window), so a retry never stores an event twice.
async fn forward_jetstream(
    inner: Arc<Inner>,
    mut receiver: mpsc::Receiver<Outgoing>,
    progress: Arc<Progress>,
) {
    let Some(jetstream) = inner.jetstream.clone() else {
        return;
    };
    // Tickets stored beyond the mark, waiting for the ones before them.
    let mut stored_ahead = std::collections::BTreeSet::new();
    let mut mark = 0;
    let mut recreate_stream = false;
    let mut window = Vec::with_capacity(PUBLISH_WINDOW);
    while receiver.recv_many(&mut window, PUBLISH_WINDOW).await > 0 {
        let mut backoff = Duration::from_millis(50);
        while !window.is_empty() {
            let mut acks = Vec::with_capacity(window.len());
            for out in &window {
                acks.push(
                    jetstream
                        .publish_with_headers(
                            out.subject.clone(),
                            out.headers.clone(),
                            out.payload.clone(),
                        )
                        .await,
                );
            }
            // Awaited together: each acknowledgement's timeout starts when
            // it is first polled, so awaiting them in turn after a server
            // loss would wait a timeout per event.
            let stored = futures_util::future::join_all(acks.into_iter().map(|ack| async move {
                match ack {
                    Ok(ack) => ack.await,
                    Err(error) => Err(error),
                }
            }))
            .await;
            let mut unacknowledged = Vec::new();
            for (out, stored) in window.drain(..).zip(stored) {
                match stored {
                    Ok(ack) => {
                        bump(&inner.counters.stored);
                        if ack.duplicate {
                            bump(&inner.counters.duplicates);
                        }
                        mark = progress.mark_stored(out.ticket, &mut stored_ahead, mark);
                    }
                    Err(error) if is_permanent(error.kind()) => {
                        // Retrying cannot help (too big for the server):
                        // counted, logged, and no longer waited for.
                        tracing::warn!(target: "cortex_actor::cluster", subject = %out.subject, %error, "event not stored: the server refuses it");
                        bump(&inner.counters.export_failed);
                        mark = progress.mark_stored(out.ticket, &mut stored_ahead, mark);
                    }
                    Err(error) => {
                        if error.kind() == PublishErrorKind::StreamNotFound {
                            recreate_stream = true;
                        }
                        tracing::debug!(target: "cortex_actor::cluster", subject = %out.subject, %error, "JetStream publish not acknowledged; retrying");
                        bump(&inner.counters.publish_retries);
                        unacknowledged.push(out);
                    }
                }
            }
            if recreate_stream {
                // The server lost its store (it restarted without it):
                // make the stream again, or nothing will ever be stored.
                recreate_stream = false;
                if let Err(error) = inner.create_stream().await {
                    tracing::warn!(target: "cortex_actor::cluster", %error, "cannot re-create the namespace's stream");
                }
            }
            if !unacknowledged.is_empty() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            window = unacknowledged;
        }
    }
}

async fn import<E: RemoteEvent>(
    inner: Arc<Inner>,
    bridge: u64,
    mut messages: futures_util::stream::SelectAll<async_nats::Subscriber>,
) {
    while let Some(message) = messages.next().await {
        deliver_here::<E>(
            &inner,
            bridge,
            &message.subject,
            message.headers.as_ref(),
            &message.payload,
        )
        .await;
    }
}

/// Delivers one message from another node to local subscribers, if it is
/// an `E` this bridge carries.
async fn deliver_here<E: RemoteEvent>(
    inner: &Inner,
    bridge: u64,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) {
    if headers::get(headers, ORIGIN) == Some(inner.node.as_str())
        && headers::get(headers, INCARNATION) == Some(inner.incarnation.as_str())
    {
        // Local subscribers had it from the local bus already. (An earlier
        // process with this node name is another publisher.)
        return;
    }
    if headers::get(headers, EVENT) != Some(E::NAME) {
        return;
    }
    let Some(topic) = subject.strip_prefix(inner.event_prefix.as_str()) else {
        return;
    };
    let Ok(words) = check_topic(topic) else {
        bump(&inner.counters.decode_errors);
        return;
    };
    if !inner.carries(bridge, TypeId::of::<E>(), &words) {
        return;
    }
    let event: E = match serde_json::from_slice(payload) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(target: "cortex_actor::cluster", topic, event = E::NAME, %error, "undecodable event from another node");
            bump(&inner.counters.decode_errors);
            return;
        }
    };
    let cx = headers::extract_trace(headers);
    if inner
        .bus
        .publish_imported(topic, event)
        .with_context(cx)
        .await
        .is_ok()
    {
        bump(&inner.counters.imported);
    }
}

/// Delivers a JetStream bridge's stored events from this node's durable
/// consumer, acknowledging each once local subscribers have it; reopens
/// the consumer's message stream after a NATS outage.
async fn import_stored<E: RemoteEvent>(
    cluster: Cluster,
    bridge: u64,
    mut consumer: async_nats::jetstream::consumer::Consumer<pull::Config>,
    filter: String,
) {
    let inner = Arc::clone(&cluster.inner);
    let mut failures = 0_u32;
    loop {
        if failures >= 3 {
            // The consumer (or its stream) may be gone: the server lost
            // its store, or an operator deleted it. Make it again.
            if let Ok(again) = cluster.node_consumer::<E>(&filter).await {
                consumer = again;
            }
            failures = 0;
        }
        match consumer
            .stream()
            .max_messages_per_batch(64)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
        {
            Ok(mut messages) => {
                failures = 0;
                while let Some(message) = messages.next().await {
                    let Ok(message) = message else {
                        continue;
                    };
                    deliver_here::<E>(
                        &inner,
                        bridge,
                        &message.subject,
                        message.headers.as_ref(),
                        &message.payload,
                    )
                    .await;
                    let _ = message.ack().await;
                }
            }
            Err(error) => {
                failures += 1;
                tracing::debug!(target: "cortex_actor::cluster", %error, "cannot open the bridge's consumer; retrying");
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// FNV-1a 64: a short stable name for a subject filter.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
