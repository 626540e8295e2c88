//! The in-flight cap: how many orders may be pending or processing at
//! once.
//!
//! A slot is reserved before the order's actor is spawned and released
//! when the [`Reservation`] drops: when the order becomes final, or with
//! the actor if it dies first, or with the spawn if it fails. Reserving is
//! one compare-and-swap, so concurrent requests can never take more slots
//! than the cap (no check-then-spawn window).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts orders that are not final yet, up to a cap.
#[derive(Debug)]
pub(super) struct InFlight {
    current: AtomicUsize,
    max: usize,
}

impl InFlight {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            current: AtomicUsize::new(0),
            max,
        })
    }

    /// A slot, or `None` when `max` orders are already in flight.
    pub(super) fn try_reserve(self: &Arc<Self>) -> Option<Reservation> {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current < self.max).then_some(current + 1)
            })
            .ok()
            .map(|_| Reservation {
                in_flight: Arc::clone(self),
            })
    }

    /// Orders in flight now.
    pub(super) fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// The cap.
    pub(super) fn max(&self) -> usize {
        self.max
    }
}

/// One order's slot under the cap; dropping it frees the slot.
#[derive(Debug)]
pub(super) struct Reservation {
    in_flight: Arc<InFlight>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.in_flight.current.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_exactly_up_to_the_cap_and_frees_on_drop() {
        let in_flight = InFlight::new(2);
        let first = in_flight.try_reserve().unwrap();
        let _second = in_flight.try_reserve().unwrap();
        assert!(in_flight.try_reserve().is_none());
        drop(first);
        assert_eq!(in_flight.current(), 1);
        assert!(in_flight.try_reserve().is_some());
    }
}
