//! What can go wrong sending to, asking, or running an actor.

use std::fmt;

/// A failure inside an actor: a handler's or hook's error, or a panic.
///
/// Any `std::error::Error` converts into it with `?`, so handlers read
/// like ordinary fallible code. It is deliberately not an `Error` itself
/// (that conversion would then overlap the identity one), like `anyhow`.
pub struct ActorError {
    kind: ErrorKind,
}

enum ErrorKind {
    Failed(Box<dyn std::error::Error + Send + Sync>),
    Message(String),
    Panicked(String),
}

impl ActorError {
    /// An error from a plain message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Message(message.into()),
        }
    }

    pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Self {
            kind: ErrorKind::Panicked(text),
        }
    }

    /// Whether this failure was a panic.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, ErrorKind::Panicked(_))
    }

    /// The underlying error, when the failure was one.
    pub fn source_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match &self.kind {
            ErrorKind::Failed(error) => Some(error.as_ref()),
            ErrorKind::Message(_) | ErrorKind::Panicked(_) => None,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActorError {
    fn from(error: E) -> Self {
        Self {
            kind: ErrorKind::Failed(Box::new(error)),
        }
    }
}

impl fmt::Display for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Failed(error) => write!(f, "{error}"),
            ErrorKind::Message(message) => f.write_str(message),
            ErrorKind::Panicked(text) => write!(f, "panicked: {text}"),
        }
    }
}

impl fmt::Debug for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorError({self})")
    }
}

/// Why a `tell` did not deliver; the message comes back so nothing is lost.
#[derive(thiserror::Error)]
pub enum SendError<M> {
    /// The mailbox is full and its policy (or `try_tell`) fails fast.
    #[error("the actor's mailbox is full")]
    MailboxFull(M),
    /// The actor has stopped (or is stopping) and takes no messages.
    #[error("the actor has stopped")]
    ActorStopped(M),
}

impl<M> SendError<M> {
    /// The message that was not delivered.
    pub fn into_message(self) -> M {
        match self {
            Self::MailboxFull(message) | Self::ActorStopped(message) => message,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MailboxFull(_) => f.write_str("MailboxFull(..)"),
            Self::ActorStopped(_) => f.write_str("ActorStopped(..)"),
        }
    }
}

/// Why an `ask` got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// The mailbox was full and its policy fails fast.
    #[error("the actor's mailbox is full")]
    MailboxFull,
    /// The actor has stopped; the question is a dead letter.
    #[error("the actor has stopped")]
    ActorStopped,
    /// No mailbox space within the mailbox timeout.
    #[error("no mailbox space within the mailbox timeout")]
    MailboxTimeout,
    /// The question was queued but not answered within the reply timeout.
    #[error("no reply within the reply timeout")]
    ReplyTimeout,
    /// The handler returned an error (its text) instead of a reply.
    #[error("the handler failed: {0}")]
    HandlerFailed(String),
    /// The actor stopped, panicked or was killed before replying.
    #[error("the actor stopped before replying")]
    NoReply,
}

/// Why an actor could not be spawned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// Another live actor holds that name.
    #[error("an actor named {0:?} is already registered")]
    NameTaken(String),
    /// The system is shutting down.
    #[error("the actor system is shutting down")]
    ShuttingDown,
    /// A mailbox capacity of zero can hold nothing.
    #[error("mailbox capacity must be at least 1")]
    ZeroCapacity,
    /// There is no tokio runtime to spawn on.
    #[error("no tokio runtime: spawn actors from inside one")]
    NoRuntime,
}
