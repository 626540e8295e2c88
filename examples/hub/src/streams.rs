//! [`Streams`]: the switch that ends the Hub's long-lived responses.
//!
//! A WebSocket or a server-sent-event stream never finishes on its own, so
//! a graceful shutdown would wait its whole timeout for them. `main` calls
//! [`Streams::close`] when the shutdown signal arrives: every notification
//! connection and status stream ends at once with a reason
//! (`server shutting down`), and clients reconnect to another replica.

use tokio::sync::watch;

/// The Hub's long-lived responses' off switch. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Streams {
    closed: watch::Sender<bool>,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            closed: watch::Sender::new(false),
        }
    }
}

impl Streams {
    /// Ends every stream (and refuses new ones with 503).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the streams are closed (at once if they are).
    pub(crate) fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.closed.subscribe();
        async move {
            // An error means the sender is gone: nothing can close them
            // any more, so this never resolves.
            if receiver.wait_for(|closed| *closed).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
