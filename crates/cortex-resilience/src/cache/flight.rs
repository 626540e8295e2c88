//! Request coalescing: at most one upstream call per key at a time.
//!
//! The first caller to miss a key becomes its [`Leader`]; later callers of
//! the same key get a receiver and wait for the leader's [`Landing`]. The
//! leader lands exactly once: explicitly, or on drop (its future was
//! cancelled), with [`Landing::Abandoned`], so no waiter ever hangs; a
//! waiter that sees `Abandoned` starts over and one of them leads. The
//! leader leaves the map right after landing, and stores its result in
//! the cache before that, so a caller that finds no flight finds the
//! result instead.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// How a flight ended, as its waiters see it.
#[derive(Debug, Clone)]
pub(crate) enum Landing<V> {
    /// Still in the air.
    Pending,
    /// The upstream answered and the result was stored: take it.
    Value(V),
    /// The upstream failed and this stale entry answered instead: take it.
    Stale(V),
    /// Nothing to share (not cacheable, or failed with no stale entry):
    /// each waiter makes its own call.
    Pass,
    /// The leader was cancelled: start over.
    Abandoned,
}

type Sender<V> = Arc<watch::Sender<Landing<V>>>;
type Map<K, V> = Arc<Mutex<HashMap<K, Sender<V>>>>;

/// The flights in the air, by key.
pub(crate) struct Flights<K, V> {
    map: Map<K, V>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            map: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// What [`Flights::join`] made of a caller.
pub(crate) enum Role<K: Hash + Eq, V> {
    /// Nobody was calling: this caller calls, and must land.
    Leader(Leader<K, V>),
    /// Somebody is: wait for their landing.
    Follower(watch::Receiver<Landing<V>>),
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    /// Joins the flight of `key`, or starts one.
    pub(crate) fn join(&self, key: &K) -> Role<K, V> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = map.get(key) {
            return Role::Follower(sender.subscribe());
        }
        let sender = Arc::new(watch::channel(Landing::Pending).0);
        map.insert(key.clone(), Arc::clone(&sender));
        Role::Leader(Leader {
            map: Arc::clone(&self.map),
            key: key.clone(),
            sender,
            landed: false,
        })
    }

    /// Flights in the air (for tests and stats).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Waits for the leader of a flight; a leader gone without landing is
/// [`Landing::Abandoned`].
pub(crate) async fn wait<V: Clone>(mut receiver: watch::Receiver<Landing<V>>) -> Landing<V> {
    let landed = receiver
        .wait_for(|landing| !matches!(landing, Landing::Pending))
        .await
        .map(|landing| landing.clone());
    landed.unwrap_or(Landing::Abandoned)
}

/// The one caller of a flight. Dropping it without
/// [`land`](Self::land)ing tells the waiters to start over.
pub(crate) struct Leader<K: Hash + Eq, V> {
    map: Map<K, V>,
    key: K,
    sender: Sender<V>,
    landed: bool,
}

impl<K: Hash + Eq, V> Leader<K, V> {
    /// Hands `landing` to every waiter and ends the flight.
    pub(crate) fn land(mut self, landing: Landing<V>) {
        self.finish(landing);
    }

    fn finish(&mut self, landing: Landing<V>) {
        if self.landed {
            return;
        }
        self.landed = true;
        // `send_replace` stores the value even with no receiver, so a
        // waiter that subscribes before the removal below still sees it.
        self.sender.send_replace(landing);
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map
            .get(&self.key)
            .is_some_and(|current| Arc::ptr_eq(current, &self.sender))
        {
            map.remove(&self.key);
        }
    }
}

impl<K: Hash + Eq, V> Drop for Leader<K, V> {
    fn drop(&mut self) {
        self.finish(Landing::Abandoned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_landing_and_the_flight_ends() {
        let flights = Flights::<&str, u32>::default();
        let Role::Leader(leader) = flights.join(&"k") else {
            panic!("the first caller leads");
        };
        let Role::Follower(receiver) = flights.join(&"k") else {
            panic!("the second caller follows");
        };
        leader.land(Landing::Value(7));
        assert!(matches!(wait(receiver).await, Landing::Value(7)));
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join(&"k"), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_dropped_leader_abandons_its_flight() {
        let flights = Flights::<&str, u32>::default();
        let leader = flights.join(&"k");
        let Role::Follower(receiver) = flights.join(&"k") else {
            panic!("the second caller follows");
        };
        drop(leader);
        assert!(matches!(wait(receiver).await, Landing::Abandoned));
        assert_eq!(flights.len(), 0);
    }
}
