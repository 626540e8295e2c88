//! Named actors reachable from every node.
//!
//! [`Cluster::serve`] subscribes an actor to
//! `cortex.<namespace>.actor.<type>.<name>` until it stops; from any node,
//! [`Cluster::remote`] gives a [`RemoteRef`] whose `ask` is a NATS request
//! and whose `tell` is a publish. Messages opt in with [`RemoteMessage`]
//! (JSON on the wire, named in the `Cortex-Message` header); the reply, or
//! the ask error the serving node met, comes back as JSON too. When nobody
//! serves the name, NATS answers "no responders" at once and the asker gets
//! `AskError::ActorStopped` without waiting for a timeout.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use opentelemetry::context::FutureExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::headers::{self, MESSAGE};
use super::{Cluster, ClusterError, Inner, RemoteError, bump, check_name};
use crate::actor::{Actor, Handler, Message};
use crate::actor_ref::ActorRef;
use crate::error::{AskError, SendError};

/// An actor type other nodes can reach by name.
pub trait RemoteActor: Actor {
    /// The type's name in subjects (`cortex.<ns>.actor.<TYPE>.<name>`):
    /// letters, digits, `-` and `_`.
    const TYPE: &'static str;
}

/// A message that can cross nodes: it and its reply are JSON.
///
/// As with [`RemoteEvent`](super::RemoteEvent), the name is the contract
/// between nodes.
pub trait RemoteMessage:
    Message<Reply: Serialize + DeserializeOwned> + Serialize + DeserializeOwned
{
    /// The message's name on the wire (`Cortex-Message` header).
    const NAME: &'static str;
}

/// An answer on the wire: the reply, or why there is none.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer<R> {
    Ok(R),
    Err(WireError),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
enum WireError {
    MailboxFull,
    ActorStopped,
    MailboxTimeout,
    ReplyTimeout,
    HandlerFailed(String),
    NoReply,
    UnknownMessage(String),
    Undecodable(String),
}

impl From<AskError> for WireError {
    fn from(error: AskError) -> Self {
        match error {
            AskError::MailboxFull => Self::MailboxFull,
            AskError::ActorStopped => Self::ActorStopped,
            AskError::MailboxTimeout => Self::MailboxTimeout,
            AskError::ReplyTimeout => Self::ReplyTimeout,
            AskError::HandlerFailed(text) => Self::HandlerFailed(text),
            AskError::NoReply => Self::NoReply,
        }
    }
}

impl From<WireError> for RemoteError {
    fn from(error: WireError) -> Self {
        match error {
            WireError::MailboxFull => AskError::MailboxFull.into(),
            WireError::ActorStopped => AskError::ActorStopped.into(),
            WireError::MailboxTimeout => AskError::MailboxTimeout.into(),
            WireError::ReplyTimeout => AskError::ReplyTimeout.into(),
            WireError::HandlerFailed(text) => AskError::HandlerFailed(text).into(),
            WireError::NoReply => AskError::NoReply.into(),
            WireError::UnknownMessage(name) => RemoteError::UnknownMessage(name),
            WireError::Undecodable(reason) => RemoteError::Codec {
                what: "message",
                reason,
            },
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One message type an actor serves, type-erased.
trait ErasedHandler<A>: Send + Sync {
    /// Asks, and encodes the answer.
    fn ask(&self, actor: ActorRef<A>, payload: Bytes) -> BoxFuture<Bytes>;
    /// Tells; waits for mailbox room like a local `tell`.
    fn tell(&self, actor: ActorRef<A>, payload: Bytes) -> BoxFuture<Result<(), String>>;
}

struct Typed<M>(PhantomData<fn(M)>);

fn encode<R: Serialize>(answer: &Answer<R>) -> Bytes {
    // Encoding our own enum of a serializable reply cannot fail unless the
    // reply's `Serialize` does; say so rather than answer nothing.
    serde_json::to_vec(answer).map_or_else(
        |error| {
            Bytes::from(
                serde_json::to_vec(&Answer::<()>::Err(WireError::Undecodable(format!(
                    "cannot encode the reply: {error}"
                ))))
                .unwrap_or_default(),
            )
        },
        Bytes::from,
    )
}

impl<A, M> ErasedHandler<A> for Typed<M>
where
    A: Handler<M>,
    M: RemoteMessage,
{
    fn ask(&self, actor: ActorRef<A>, payload: Bytes) -> BoxFuture<Bytes> {
        Box::pin(async move {
            let message: M = match serde_json::from_slice(&payload) {
                Ok(message) => message,
                Err(error) => {
                    return encode(&Answer::<()>::Err(WireError::Undecodable(
                        error.to_string(),
                    )));
                }
            };
            match actor.ask(message).await {
                Ok(reply) => encode(&Answer::Ok(reply)),
                Err(error) => encode(&Answer::<()>::Err(error.into())),
            }
        })
    }

    fn tell(&self, actor: ActorRef<A>, payload: Bytes) -> BoxFuture<Result<(), String>> {
        Box::pin(async move {
            let message: M = serde_json::from_slice(&payload).map_err(|error| error.to_string())?;
            actor
                .tell(message)
                .await
                .map_err(|error: SendError<M>| error.to_string())
        })
    }
}

/// Sets up serving an actor to other nodes; from [`Cluster::serve`].
#[must_use = "nothing is served until `start`"]
pub struct Serve<A: RemoteActor> {
    cluster: Cluster,
    name: String,
    actor: ActorRef<A>,
    handlers: HashMap<&'static str, Arc<dyn ErasedHandler<A>>>,
}

impl<A: RemoteActor> std::fmt::Debug for Serve<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("name", &self.name)
            .field("messages", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<A: RemoteActor> Serve<A> {
    /// Serves message type `M` too.
    pub fn message<M>(mut self) -> Self
    where
        A: Handler<M>,
        M: RemoteMessage,
    {
        self.handlers
            .insert(M::NAME, Arc::new(Typed::<M>(PhantomData)));
        self
    }

    /// Subscribes; the actor is reachable from every node once this
    /// returns, until it stops (or [`Served::stop`]).
    pub async fn start(self) -> Result<Served, ClusterError> {
        check_name("actor type", A::TYPE)?;
        check_name("actor name", &self.name)?;
        let subject = actor_subject(&self.cluster.inner, A::TYPE, &self.name);
        let mut requests = self
            .cluster
            .inner
            .client
            .subscribe(subject)
            .await
            .map_err(|error| ClusterError::Subscribe(error.to_string()))?;
        let inner = Arc::clone(&self.cluster.inner);
        let actor = self.actor;
        let handlers = self.handlers;
        let task = tokio::spawn(async move {
            let stopped = actor.wait_for_stop();
            tokio::pin!(stopped);
            // Asks being answered, polled here rather than spawned: one
            // task switch less per ask, and a slow handler still does not
            // hold up the next message's delivery to the mailbox.
            let mut answering = FuturesUnordered::new();
            loop {
                let request = tokio::select! {
                    () = &mut stopped => break,
                    Some(()) = answering.next(), if !answering.is_empty() => continue,
                    request = requests.next() => match request {
                        Some(request) => request,
                        None => break,
                    },
                };
                if let Some(answer) = serve_one(&inner, &actor, &handlers, request).await {
                    answering.push(answer);
                }
            }
            // Unsubscribed: from now on asks get "no responders" at once.
            // Requests the server routed before it saw the unsubscribe are
            // answered `ActorStopped` rather than left to time out, and
            // asks already taken get their answer.
            let _ = requests.unsubscribe().await;
            let stopped = encode(&Answer::<()>::Err(WireError::ActorStopped));
            while let Ok(Some(request)) =
                tokio::time::timeout(Duration::from_millis(100), requests.next()).await
            {
                if let Some(reply) = request.reply {
                    let _ = inner.client.publish(reply, stopped.clone()).await;
                }
            }
            while answering.next().await.is_some() {}
        });
        self.cluster.sync_with_server().await?;
        Ok(Served { task })
    }
}

/// Delivers one request to the actor: a tell at once (in order, waiting
/// for mailbox room), an ask as the future that answers it.
async fn serve_one<A: Actor>(
    inner: &Arc<Inner>,
    actor: &ActorRef<A>,
    handlers: &HashMap<&'static str, Arc<dyn ErasedHandler<A>>>,
    request: async_nats::Message,
) -> Option<BoxFuture<()>> {
    bump(&inner.counters.served);
    let headers = request.headers.as_ref();
    let name = headers::get(headers, MESSAGE).unwrap_or_default();
    let handler = handlers.get(name).cloned();
    let cx = headers::extract_trace(headers);
    match (request.reply, handler) {
        (Some(reply), Some(handler)) => {
            let client = inner.client.clone();
            let actor = actor.clone();
            return Some(Box::pin(
                async move {
                    let answer = handler.ask(actor, request.payload).await;
                    let _ = client.publish(reply, answer).await;
                }
                .with_context(cx),
            ));
        }
        (Some(reply), None) => {
            let answer = encode(&Answer::<()>::Err(WireError::UnknownMessage(
                name.to_owned(),
            )));
            let _ = inner.client.publish(reply, answer).await;
        }
        (None, Some(handler)) => {
            // Tells are delivered in order, waiting for mailbox room.
            if let Err(error) = handler
                .tell(actor.clone(), request.payload)
                .with_context(cx)
                .await
            {
                tracing::debug!(target: "cortex_actor::cluster", actor = actor.name(), message = name, %error, "remote tell not delivered");
            }
        }
        (None, None) => {
            tracing::debug!(target: "cortex_actor::cluster", actor = actor.name(), message = name, "remote tell of a message the actor does not serve");
        }
    }
    None
}

fn actor_subject(inner: &Inner, actor_type: &str, name: &str) -> String {
    format!("cortex.{}.actor.{actor_type}.{name}", inner.namespace)
}

/// An actor being served to other nodes. Serving ends when the actor
/// stops; dropping this handle does not end it.
#[derive(Debug)]
pub struct Served {
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Stops serving (the actor keeps running locally).
    pub fn stop(self) {
        self.task.abort();
    }

    /// Whether the actor is still served.
    pub fn is_serving(&self) -> bool {
        !self.task.is_finished()
    }
}

/// A handle on an actor served by some node, by type and name.
pub struct RemoteRef<A> {
    inner: Arc<Inner>,
    subject: String,
    timeout: Duration,
    _actor: PhantomData<fn(A)>,
}

impl<A> Clone for RemoteRef<A> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            subject: self.subject.clone(),
            timeout: self.timeout,
            _actor: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for RemoteRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRef")
            .field("subject", &self.subject)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<A: RemoteActor> RemoteRef<A> {
    /// How long an `ask` waits for the answer (default 5 s); past it,
    /// `AskError::ReplyTimeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The subject the actor is served on.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    fn request<M: RemoteMessage>(message: &M) -> Result<(HeaderMap, Bytes), RemoteError> {
        let payload = serde_json::to_vec(message).map_err(|error| RemoteError::Codec {
            what: "message",
            reason: error.to_string(),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(MESSAGE, M::NAME);
        headers::inject_trace(&mut headers);
        Ok((headers, Bytes::from(payload)))
    }

    /// Asks the actor, wherever it runs, and waits for the reply.
    pub async fn ask<M>(&self, message: M) -> Result<M::Reply, RemoteError>
    where
        A: Handler<M>,
        M: RemoteMessage,
    {
        let (headers, payload) = Self::request(&message)?;
        let request = async_nats::Request::new()
            .payload(payload)
            .headers(headers)
            .timeout(Some(self.timeout));
        let answer = self
            .inner
            .client
            .send_request(self.subject.clone(), request)
            .await
            .map_err(|error| match error.kind() {
                async_nats::client::RequestErrorKind::NoResponders => {
                    RemoteError::Ask(AskError::ActorStopped)
                }
                async_nats::client::RequestErrorKind::TimedOut => {
                    RemoteError::Ask(AskError::ReplyTimeout)
                }
                _ => RemoteError::Transport(error.to_string()),
            })?;
        match serde_json::from_slice::<Answer<M::Reply>>(&answer.payload) {
            Ok(Answer::Ok(reply)) => Ok(reply),
            Ok(Answer::Err(error)) => Err(error.into()),
            Err(error) => Err(RemoteError::Codec {
                what: "reply",
                reason: error.to_string(),
            }),
        }
    }

    /// Tells the actor, wherever it runs: a publish, so it does not wait
    /// and cannot know whether anyone received it (at most once).
    pub async fn tell<M>(&self, message: M) -> Result<(), RemoteError>
    where
        A: Handler<M>,
        M: RemoteMessage,
    {
        let (headers, payload) = Self::request(&message)?;
        self.inner
            .client
            .publish_with_headers(self.subject.clone(), headers, payload)
            .await
            .map_err(|error| RemoteError::Transport(error.to_string()))
    }
}

impl Cluster {
    /// Serves `actor` under `name` to every node; list the message types
    /// with [`Serve::message`], then [`Serve::start`].
    ///
    /// Two nodes serving the same name would split the requests between
    /// them; [`Cluster::placement`] is how nodes agree on one owner.
    pub fn serve<A: RemoteActor>(&self, name: impl Into<String>, actor: &ActorRef<A>) -> Serve<A> {
        Serve {
            cluster: self.clone(),
            name: name.into(),
            actor: actor.clone(),
            handlers: HashMap::new(),
        }
    }

    /// A handle on the actor of type `A` served as `name` by any node.
    pub fn remote<A: RemoteActor>(&self, name: &str) -> RemoteRef<A> {
        RemoteRef {
            inner: Arc::clone(&self.inner),
            subject: actor_subject(&self.inner, A::TYPE, name),
            timeout: Duration::from_secs(5),
            _actor: PhantomData,
        }
    }
}
