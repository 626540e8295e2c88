//! Consumer groups: at-least-once handling of a namespace's stored events,
//! each event by one member of the group, on whichever node it runs.
//!
//! A group is one durable JetStream pull consumer named after it, shared by
//! every node that consumes with that name. A handler's `Ok` acknowledges
//! the event; an `Err` (or a panic) asks for it again after a delay; a
//! handler that neither finishes nor fails within `ack_wait` has it
//! redelivered too. After `max_deliver` attempts the event goes to the
//! group's dead-letter subject (`cortex.<namespace>.dlq.<group>`, stored in
//! the same stream, with the reason and the delivery count in its headers)
//! and is terminated, so one poisonous event cannot stall the group.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures_util::{FutureExt as _, StreamExt as _};
use opentelemetry::context::FutureExt as _;

use super::headers::{self, DEAD_REASON, DELIVERIES, EVENT};
use super::subject::pattern_subjects;
use super::{Cluster, ClusterError, Inner, RemoteEvent, bump, check_name};
use crate::bus::pattern::{Pattern, check_topic};
use crate::error::ActorError;

/// How a consumer group receives events; the defaults suit handlers that
/// take milliseconds.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// How long a delivered event may stay unacknowledged before the
    /// server delivers it again (default 30 s).
    pub ack_wait: Duration,
    /// Deliveries of one event before it is a dead letter (default 5).
    pub max_deliver: u32,
    /// How long after a failure the event is delivered again (default
    /// 1 s).
    pub retry_delay: Duration,
    /// Events delivered to this member and not yet acknowledged (default
    /// 256); the server sends no more until some are.
    pub max_ack_pending: u32,
    /// Where a new group starts: `true` (the default) with the stream's
    /// oldest event, `false` with the events published from now on.
    pub from_start: bool,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            retry_delay: Duration::from_secs(1),
            max_ack_pending: 256,
            from_start: true,
        }
    }
}

/// A running member of a consumer group; dropping it leaves the group
/// (events it had not acknowledged go to the other members after
/// `ack_wait`).
#[derive(Debug)]
pub struct ConsumerGroup {
    task: tokio::task::JoinHandle<()>,
}

impl ConsumerGroup {
    /// Stops consuming.
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for ConsumerGroup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Cluster {
    /// Joins the consumer group `group` for events of type `E` on
    /// `pattern` (as bridged with [`Transport::JetStream`](super::Transport::JetStream)
    /// by any node) and runs `handler` for each, one at a time, inside the
    /// trace context it was published in. The group is created on first
    /// use; later members (other nodes, restarts) join it and share its
    /// events. Events of other types on the same topics are acknowledged
    /// and skipped.
    ///
    /// The pattern is matched exactly: when NATS cannot express it in one
    /// filter (`order.**` is `order` and `order.>`), the consumer filters
    /// wider and skips the rest on this side.
    pub async fn consume<E, F, Fut>(
        &self,
        group: &str,
        pattern: &str,
        options: ConsumeOptions,
        handler: F,
    ) -> Result<ConsumerGroup, ClusterError>
    where
        E: RemoteEvent,
        F: Fn(Arc<str>, E) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ActorError>> + Send + 'static,
    {
        check_name("group", group)?;
        let jetstream = self.jetstream()?;
        let parsed = Pattern::parse(pattern)?;
        let filter =
            pattern_subjects(&self.inner.event_prefix, &parsed).single(&self.inner.event_prefix);
        let stream = jetstream
            .get_stream(&self.inner.stream_name)
            .await
            .map_err(|error| ClusterError::JetStream(error.to_string()))?;
        let config = pull::Config {
            durable_name: Some(group.to_owned()),
            filter_subject: filter,
            ack_policy: AckPolicy::Explicit,
            ack_wait: options.ack_wait,
            // Unlimited on the server: the member counts deliveries and
            // dead-letters at `max_deliver` itself, so an event whose
            // dead-letter publish failed is still delivered again.
            max_deliver: -1,
            max_ack_pending: i64::from(options.max_ack_pending),
            deliver_policy: if options.from_start {
                DeliverPolicy::All
            } else {
                DeliverPolicy::New
            },
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(group, config)
            .await
            .map_err(|error| ClusterError::JetStream(error.to_string()))?;
        let consumer: async_nats::jetstream::consumer::Consumer<pull::Config> = consumer;
        let member = Member::<E, F> {
            inner: Arc::clone(&self.inner),
            group: group.to_owned(),
            dead_letters: self.dead_letter_subject(group),
            pattern: parsed,
            options,
            handler,
            _event: PhantomData,
        };
        let task = tokio::spawn(async move {
            // A fetch loop that outlives a NATS outage: the message stream
            // ends or errors when the server goes, and is opened again.
            loop {
                match consumer
                    .stream()
                    .max_messages_per_batch(16)
                    .heartbeat(Duration::from_secs(5))
                    .messages()
                    .await
                {
                    Ok(mut messages) => {
                        while let Some(message) = messages.next().await {
                            match message {
                                Ok(message) => member.handle(message).await,
                                Err(error) => {
                                    tracing::debug!(target: "cortex_actor::cluster", group = %member.group, %error, "consumer stream error");
                                }
                            }
                        }
                    }
                    Err(error) => {
                        tracing::debug!(target: "cortex_actor::cluster", group = %member.group, %error, "cannot open the consumer stream; retrying");
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Ok(ConsumerGroup { task })
    }
}

struct Member<E, F> {
    inner: Arc<Inner>,
    group: String,
    dead_letters: String,
    pattern: Pattern,
    options: ConsumeOptions,
    handler: F,
    _event: PhantomData<fn(E)>,
}

impl<E, F, Fut> Member<E, F>
where
    E: RemoteEvent,
    F: Fn(Arc<str>, E) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ActorError>> + Send + 'static,
{
    async fn handle(&self, message: async_nats::jetstream::Message) {
        let headers = message.headers.as_ref();
        let topic = message
            .subject
            .strip_prefix(self.inner.event_prefix.as_str())
            .map(str::to_owned);
        let ours = headers::get(headers, EVENT) == Some(E::NAME)
            && topic
                .as_deref()
                .and_then(|topic| check_topic(topic).ok())
                .is_some_and(|words| self.pattern.matches(&words));
        if !ours {
            // Another type on the same topics, or outside the exact
            // pattern: not this group's work.
            let _ = message.ack().await;
            return;
        }
        let topic: Arc<str> = Arc::from(topic.unwrap_or_default());
        let deliveries = message.info().map_or(1, |info| info.delivered);
        let event: E = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(error) => {
                bump(&self.inner.counters.decode_errors);
                self.dead_letter(&message, &format!("undecodable: {error}"), deliveries)
                    .await;
                return;
            }
        };
        if deliveries > i64::from(self.options.max_deliver) {
            // Delivered again after `ack_wait` ran out (a member died or
            // hung mid-handler) more times than allowed.
            self.dead_letter(&message, "ack_wait expired on every delivery", deliveries)
                .await;
            return;
        }
        let cx = headers::extract_trace(headers);
        // The handler's synchronous part runs inside the context too.
        let handling = {
            let _attached = cx.clone().attach();
            (self.handler)(Arc::clone(&topic), event)
        };
        let outcome = std::panic::AssertUnwindSafe(handling)
            .catch_unwind()
            .with_context(cx)
            .await;
        let failure = match outcome {
            Ok(Ok(())) => {
                // A double ack: the server confirms, so an event counted as
                // consumed is one the group will not see again.
                if message.double_ack().await.is_ok() {
                    bump(&self.inner.counters.consumed);
                }
                return;
            }
            Ok(Err(error)) => error.to_string(),
            Err(panic) => ActorError::panicked(&*panic).to_string(),
        };
        if deliveries >= i64::from(self.options.max_deliver) {
            self.dead_letter(&message, &failure, deliveries).await;
        } else {
            tracing::debug!(target: "cortex_actor::cluster", group = %self.group, %topic, deliveries, error = %failure, "handler failed; the event will be delivered again");
            bump(&self.inner.counters.redelivered);
            let _ = message
                .ack_with(AckKind::Nak(Some(self.options.retry_delay)))
                .await;
        }
    }

    /// Stores the event under the group's dead-letter subject, then
    /// terminates it, in that order: if the node dies in between, the event
    /// is delivered again rather than lost.
    async fn dead_letter(
        &self,
        message: &async_nats::jetstream::Message,
        reason: &str,
        deliveries: i64,
    ) {
        let mut headers = message.headers.clone().unwrap_or_default();
        let reason: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(512)
            .collect();
        tracing::warn!(target: "cortex_actor::cluster", group = %self.group, subject = %message.subject, deliveries, reason, "event dead-lettered");
        headers.insert(DEAD_REASON, reason);
        headers.insert(DELIVERIES, deliveries.to_string());
        headers.insert("Cortex-Topic", message.subject.as_str());
        // A fresh id: the original's would be dropped as a duplicate.
        headers.insert(
            super::headers::MSG_ID,
            format!(
                "dlq-{}-{}",
                self.group,
                message.info().map_or(0, |i| i.stream_sequence)
            ),
        );
        let Some(jetstream) = &self.inner.jetstream else {
            return;
        };
        let stored = match jetstream
            .publish_with_headers(self.dead_letters.clone(), headers, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if stored {
            bump(&self.inner.counters.dead_lettered);
            let _ = message.ack_with(AckKind::Term).await;
        } else {
            let _ = message
                .ack_with(AckKind::Nak(Some(self.options.retry_delay)))
                .await;
        }
    }
}
