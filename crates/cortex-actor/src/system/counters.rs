//! The system's running totals, kept as they happen so that
//! [`ActorSystem::stats`](super::ActorSystem::stats) is a handful of
//! atomic loads: no lock, no walk over the actors, whatever their number.
//!
//! Rare events (spawns, stops, failures, restarts, dead letters) bump one
//! shared atomic each. Messages are the hot path, so their total is
//! striped: each thread adds to its own cache line and a read sums the
//! lines (a fixed number, about one per core), as Java's `LongAdder` does.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::SystemStats;

/// System-wide totals; every actor kind's [`KindStats`](super::KindStats)
/// adds to them as it counts its own.
#[derive(Debug)]
pub(crate) struct Totals {
    pub(crate) actors: AtomicUsize,
    pub(crate) messages: StripedCounter,
    pub(crate) failures: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) escalations: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
}

impl Totals {
    pub(crate) fn new() -> Self {
        let stripes = std::thread::available_parallelism()
            .map_or(8, usize::from)
            .next_power_of_two()
            .clamp(4, 64);
        Self {
            actors: AtomicUsize::new(0),
            messages: StripedCounter::new(stripes),
            failures: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            escalations: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
        }
    }

    /// The totals now. Each figure is exact; taken while actors run, they
    /// are read one after another, not as one atomic snapshot.
    pub(crate) fn snapshot(&self) -> SystemStats {
        SystemStats {
            actors: self.actors.load(Ordering::Acquire),
            messages: self.messages.sum(),
            failures: self.failures.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            escalations: self.escalations.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.load(Ordering::Relaxed),
        }
    }
}

/// One stripe on its own cache line (128 bytes: two lines on x86, whose
/// prefetcher pulls pairs; one on Apple silicon).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A counter many threads add to without sharing a cache line.
#[derive(Debug)]
pub(crate) struct StripedCounter {
    stripes: Box<[Stripe]>,
}

impl StripedCounter {
    fn new(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes.max(1)).map(|_| Stripe::default()).collect(),
        }
    }

    /// Adds one on the calling thread's stripe.
    #[inline]
    pub(crate) fn increment(&self) {
        let stripe = &self.stripes[thread_index() % self.stripes.len()];
        stripe.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// A small number per thread, handed out in turn, so threads (up to the
/// stripe count) land on different stripes.
#[inline]
fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|index| {
        let mut value = index.get();
        if value == usize::MAX {
            value = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
            index.set(value);
        }
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_striped_counter_sums_what_every_thread_added() {
        let counter = StripedCounter::new(4);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counter.increment();
                    }
                });
            }
        });
        assert_eq!(counter.sum(), 8000);
    }
}
