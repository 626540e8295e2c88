//! A message in a mailbox: the typed value boxed behind one trait object
//! per actor type, so one mailbox carries every message type the actor
//! handles.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::oneshot;

use crate::actor::{Actor, Context, Handler, Message};
use crate::error::{ActorError, AskError};

pub(crate) type BoxEnvelope<A> = Box<dyn Envelope<A>>;
pub(crate) type HandleFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), ActorError>> + Send + 'a>>;

pub(crate) trait Envelope<A>: Send {
    /// Runs the actor's handler for this message.
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> HandleFuture<'a>
    where
        A: Actor;
    /// The message's Rust type, for dead letters, logs and spans.
    fn message_type(&self) -> &'static str;
    /// The span that was current where the message was sent.
    fn sender_span(&self) -> &tracing::Span;
    /// Undeliverable: tells an asker why (a tell has nobody to tell).
    fn reject(self: Box<Self>, error: AskError);
    /// For handing a refused message back to its sender.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

pub(crate) struct Tell<M> {
    pub(crate) message: M,
    pub(crate) span: tracing::Span,
}

impl<A, M> Envelope<A> for Tell<M>
where
    A: Handler<M>,
    M: Message,
{
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> HandleFuture<'a> {
        let message = self.message;
        Box::pin(async move { actor.handle(message, ctx).await.map(drop) })
    }

    fn message_type(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn sender_span(&self) -> &tracing::Span {
        &self.span
    }

    fn reject(self: Box<Self>, _: AskError) {}

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

pub(crate) struct Ask<M: Message> {
    pub(crate) message: M,
    pub(crate) reply: oneshot::Sender<Result<M::Reply, AskError>>,
    pub(crate) span: tracing::Span,
}

impl<A, M> Envelope<A> for Ask<M>
where
    A: Handler<M>,
    M: Message,
{
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> HandleFuture<'a> {
        let Ask { message, reply, .. } = *self;
        Box::pin(async move {
            match actor.handle(message, ctx).await {
                Ok(answer) => {
                    // The asker may have timed out and gone: nothing to do.
                    let _ = reply.send(Ok(answer));
                    Ok(())
                }
                Err(error) => {
                    let _ = reply.send(Err(AskError::HandlerFailed(error.to_string())));
                    Err(error)
                }
            }
        })
    }

    fn message_type(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn sender_span(&self) -> &tracing::Span {
        &self.span
    }

    fn reject(self: Box<Self>, error: AskError) {
        let _ = self.reply.send(Err(error));
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        Box::new(self.message)
    }
}
