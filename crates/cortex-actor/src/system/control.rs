//! The type-erased lifecycle handle of an actor: what the system and a
//! parent hold on actors of any type to stop, kill, signal and count them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::actor_ref::{Cell, lock};
use crate::mailbox::Signal;

use super::KindStats;

/// Lifecycle control of an actor of any type.
#[cfg_attr(not(any(feature = "metrics", feature = "health")), allow(dead_code))]
pub(crate) trait Control: Send + Sync {
    fn close(&self);
    fn stop(&self);
    fn kill(&self);
    fn id(&self) -> u64;
    fn signal(&self, signal: Signal);
    /// A child of this actor restarted: spread it per the strategy.
    fn child_restarted(&self, child: u64, reason: &str);
    fn remove_child(&self, child: u64);
    /// Adopts `child`; false once this actor is ending.
    fn add_child(&self, child: Arc<dyn Control>) -> bool;
    /// Resolves once the actor's clean-up is complete.
    fn wait_stopped(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// How long a stopping parent (or the system) waits for it.
    fn shutdown_timeout(&self) -> Duration;
    // Read only by the metrics collector.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn kind(&self) -> &Arc<KindStats>;
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn handled(&self) -> u64;
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn mailbox_len(&self) -> usize;
    #[cfg_attr(not(feature = "health"), allow(dead_code))]
    fn mailbox_full(&self) -> bool;
}

impl<A: Send + 'static> Control for Cell<A> {
    fn id(&self) -> u64 {
        self.id
    }

    fn signal(&self, signal: Signal) {
        self.mailbox.signal(signal);
    }

    fn child_restarted(&self, child: u64, reason: &str) {
        // A copy, so no sibling is signalled under this actor's lock.
        let children = lock(&self.children).clone();
        let Some(at) = children.iter().position(|c| c.id() == child) else {
            return;
        };
        for sibling in self.strategy.restarts_with(at, children.len()) {
            children[sibling].signal(Signal::Restart(format!("sibling restarted: {reason}")));
        }
    }

    fn remove_child(&self, child: u64) {
        lock(&self.children).retain(|c| c.id() != child);
    }

    fn add_child(&self, child: Arc<dyn Control>) -> bool {
        let mut children = lock(&self.children);
        if !self.alive.load(Ordering::Acquire) || self.mailbox.is_closed() {
            return false;
        }
        children.push(child);
        true
    }

    fn wait_stopped(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.wait_ended())
    }

    fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    fn kind(&self) -> &Arc<KindStats> {
        &self.kind
    }

    fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    fn mailbox_len(&self) -> usize {
        self.mailbox.len()
    }

    fn mailbox_full(&self) -> bool {
        self.mailbox.is_full()
    }

    fn close(&self) {
        self.mailbox.close();
    }

    fn stop(&self) {
        self.mailbox.request_stop();
    }

    fn kill(&self) {
        self.mailbox.request_stop();
        if let Some(abort) = self.abort.get() {
            abort.abort();
        }
    }
}
