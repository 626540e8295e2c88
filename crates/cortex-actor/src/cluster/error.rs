//! What can go wrong joining a cluster, bridging, consuming, or reaching a
//! remote actor.

use crate::bus::TopicError;
use crate::error::AskError;

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The first connection to NATS failed.
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// A namespace, node, group or actor name NATS cannot carry.
    #[error("invalid {what} {name:?}: use 1 to 64 letters, digits, `-` or `_`")]
    InvalidName {
        /// What the name was for.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// A bad topic or pattern.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The operation needs JetStream, and the cluster was built without it.
    #[error(
        "JetStream is off: build the cluster with `.jetstream(true)` (and run nats-server with -js)"
    )]
    JetStreamOff,
    /// JetStream refused a stream, consumer or bucket operation.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// Subscribing failed (the connection is closed).
    #[error("cannot subscribe: {0}")]
    Subscribe(String),
}

/// Why a remote `ask` or `tell` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// What a local ask would have said: `ActorStopped` when no node serves
    /// the actor (NATS's "no responders", at once), `ReplyTimeout` when no
    /// answer came in time, `HandlerFailed`, `MailboxFull`, … from the
    /// serving node.
    #[error(transparent)]
    Ask(#[from] AskError),
    /// The message or reply could not be encoded or decoded (the nodes
    /// disagree on its shape).
    #[error("cannot encode or decode the {what}: {reason}")]
    Codec {
        /// `"message"` or `"reply"`.
        what: &'static str,
        /// The serializer's words.
        reason: String,
    },
    /// The serving actor does not take this message type remotely.
    #[error("the actor does not serve {0:?} remotely")]
    UnknownMessage(String),
    /// NATS could not carry the request (the connection is closed, …).
    #[error("NATS: {0}")]
    Transport(String),
}
