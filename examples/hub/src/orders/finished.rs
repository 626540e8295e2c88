//! Finished orders, kept readable after their actor has stopped.
//!
//! Bounded twice: at most `max_count` orders, none older than `max_age`
//! (whichever bound is hit first evicts the oldest). Orders are evicted in
//! the order they finished; every operation is O(1) amortised.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::actor::OrderView;

/// The recently finished orders.
#[derive(Debug)]
pub(super) struct FinishedOrders {
    kept: Mutex<Kept>,
    max_count: usize,
    max_age: Duration,
}

#[derive(Debug, Default)]
struct Kept {
    by_id: HashMap<u64, OrderView>,
    /// Ids with the moment they finished, oldest first.
    finished: VecDeque<(Instant, u64)>,
}

impl FinishedOrders {
    pub(super) fn new(max_count: usize, max_age: Duration) -> Self {
        Self {
            kept: Mutex::default(),
            max_count,
            max_age,
        }
    }

    /// Keeps `order`, evicting the oldest past either bound.
    pub(super) fn insert(&self, order: OrderView) {
        let now = Instant::now();
        let mut kept = self.lock();
        kept.finished.push_back((now, order.id));
        kept.by_id.insert(order.id, order);
        self.evict(&mut kept, now);
    }

    /// The finished order `id`, if it is still kept.
    pub(super) fn get(&self, id: u64) -> Option<OrderView> {
        let mut kept = self.lock();
        self.evict(&mut kept, Instant::now());
        kept.by_id.get(&id).cloned()
    }

    /// How many finished orders are kept now.
    pub(super) fn len(&self) -> usize {
        let mut kept = self.lock();
        self.evict(&mut kept, Instant::now());
        kept.by_id.len()
    }

    fn evict(&self, kept: &mut Kept, now: Instant) {
        while let Some(&(finished, id)) = kept.finished.front() {
            let too_many = kept.finished.len() > self.max_count;
            let too_old = now.saturating_duration_since(finished) >= self.max_age;
            if !too_many && !too_old {
                break;
            }
            kept.finished.pop_front();
            kept.by_id.remove(&id);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        // The map stays consistent whatever panicked while holding it.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
