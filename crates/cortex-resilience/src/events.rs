//! Event fan-out shared by all policies: callbacks and a broadcast channel,
//! paid for only once somebody listens.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tokio::sync::broadcast;

/// How many events a slow broadcast subscriber may lag behind before it
/// starts missing some (it then sees `RecvError::Lagged`).
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

type Callback<Ev> = Arc<dyn Fn(&Ev) + Send + Sync>;

pub(crate) struct EventHub<Ev> {
    listening: AtomicBool,
    sender: OnceLock<broadcast::Sender<Ev>>,
    callbacks: RwLock<Vec<Callback<Ev>>>,
}

impl<Ev> fmt::Debug for EventHub<Ev> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHub")
            .field("listening", &self.listening.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<Ev> Default for EventHub<Ev> {
    fn default() -> Self {
        Self {
            listening: AtomicBool::new(false),
            sender: OnceLock::new(),
            callbacks: RwLock::new(Vec::new()),
        }
    }
}

impl<Ev: Clone + Send + 'static> EventHub<Ev> {
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Ev> {
        let receiver = self
            .sender
            .get_or_init(|| broadcast::channel(EVENT_CHANNEL_CAPACITY).0)
            .subscribe();
        self.listening.store(true, Ordering::Release);
        receiver
    }

    pub(crate) fn on_event(&self, callback: impl Fn(&Ev) + Send + Sync + 'static) {
        self.callbacks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::new(callback));
        self.listening.store(true, Ordering::Release);
    }

    /// Builds and delivers an event, if anybody listens. The closure keeps
    /// event construction off the hot path.
    #[inline]
    pub(crate) fn emit(&self, event: impl FnOnce() -> Ev) {
        if self.listening.load(Ordering::Relaxed) {
            self.deliver(event());
        }
    }

    #[cold]
    fn deliver(&self, event: Ev) {
        let callbacks = self
            .callbacks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for callback in &callbacks {
            callback(&event);
        }
        if let Some(sender) = self.sender.get() {
            // No receivers left is fine: events are best-effort.
            let _ = sender.send(event);
        }
    }
}
