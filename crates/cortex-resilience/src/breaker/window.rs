//! Sliding windows: the breaker's memory of recent calls.
//!
//! The count-based window is lock-free: a call claims a ring slot with one
//! `fetch_add`, swaps its outcome in, and adjusts the failure and slow
//! totals by the difference from the outcome it replaced. A success that
//! replaces a success touches no total. The time-based window keeps
//! one-second buckets behind a mutex and evicts expired buckets lazily, so
//! both are O(1) per call (amortised for the time-based one).

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

pub(crate) const RECORDED: u8 = 1;
pub(crate) const FAILED: u8 = 2;
pub(crate) const SLOW: u8 = 4;

/// What the window holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Snapshot {
    pub(crate) fn failure_rate(&self) -> f64 {
        percentage(self.failures, self.calls)
    }

    pub(crate) fn slow_rate(&self) -> f64 {
        percentage(self.slow, self.calls)
    }
}

#[allow(clippy::cast_precision_loss)] // counts stay far below 2^52
fn percentage(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The last `size` outcomes.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    next: AtomicU64,
    failures: AtomicI64,
    slow: AtomicI64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        Self {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicU64::new(0),
            failures: AtomicI64::new(0),
            slow: AtomicI64::new(0),
        }
    }

    fn size(&self) -> u64 {
        self.slots.len() as u64
    }

    #[inline]
    pub(crate) fn record(&self, outcome: u8) -> Snapshot {
        let index = self.next.fetch_add(1, Ordering::AcqRel);
        // `size` is at most 2^24, so the remainder fits a usize.
        #[allow(clippy::cast_possible_truncation)]
        let slot = &self.slots[(index % self.size()) as usize];
        let replaced = slot.swap(outcome, Ordering::AcqRel);
        let failures = Self::adjust(&self.failures, outcome, replaced, FAILED);
        let slow = Self::adjust(&self.slow, outcome, replaced, SLOW);
        let calls = (index + 1).min(self.size());
        Snapshot {
            calls,
            failures: clamp(failures, calls),
            slow: clamp(slow, calls),
        }
    }

    #[inline]
    fn adjust(total: &AtomicI64, outcome: u8, replaced: u8, bit: u8) -> i64 {
        let delta = i64::from(outcome & bit != 0) - i64::from(replaced & bit != 0);
        if delta == 0 {
            total.load(Ordering::Acquire)
        } else {
            total.fetch_add(delta, Ordering::AcqRel) + delta
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let calls = self.next.load(Ordering::Acquire).min(self.size());
        Snapshot {
            calls,
            failures: clamp(self.failures.load(Ordering::Acquire), calls),
            slow: clamp(self.slow.load(Ordering::Acquire), calls),
        }
    }

    /// Empties the window. Called under the breaker's transition lock; a
    /// call recording concurrently may land in the fresh window, which is
    /// the same as it finishing a moment later.
    pub(crate) fn reset(&self) {
        self.next.store(0, Ordering::Release);
        for slot in &*self.slots {
            slot.store(0, Ordering::Release);
        }
        self.failures.store(0, Ordering::Release);
        self.slow.store(0, Ordering::Release);
    }
}

/// Totals can be transiently off by the records racing a reset; never
/// report a negative count or more than the calls held.
fn clamp(total: i64, calls: u64) -> u64 {
    u64::try_from(total).unwrap_or(0).min(calls)
}

/// The outcomes of the last `seconds` seconds.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    inner: Mutex<TimeBuckets>,
}

#[derive(Debug)]
struct TimeBuckets {
    buckets: Box<[Snapshot]>,
    /// The second the newest bucket belongs to.
    head: u64,
    total: Snapshot,
}

impl TimeWindow {
    pub(crate) fn new(seconds: u32) -> Self {
        Self {
            inner: Mutex::new(TimeBuckets {
                buckets: vec![Snapshot::default(); seconds as usize].into_boxed_slice(),
                head: 0,
                total: Snapshot::default(),
            }),
        }
    }

    pub(crate) fn record(&self, now_second: u64, outcome: u8) -> Snapshot {
        let mut inner = self.lock();
        inner.advance(now_second);
        let index = inner.index(now_second);
        let failed = u64::from(outcome & FAILED != 0);
        let slow = u64::from(outcome & SLOW != 0);
        let bucket = &mut inner.buckets[index];
        bucket.calls += 1;
        bucket.failures += failed;
        bucket.slow += slow;
        inner.total.calls += 1;
        inner.total.failures += failed;
        inner.total.slow += slow;
        inner.total
    }

    pub(crate) fn snapshot(&self, now_second: u64) -> Snapshot {
        let mut inner = self.lock();
        inner.advance(now_second);
        inner.total
    }

    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        inner.buckets.fill(Snapshot::default());
        inner.total = Snapshot::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TimeBuckets> {
        // The buckets are plain counters; a panic cannot leave them torn.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TimeBuckets {
    fn index(&self, second: u64) -> usize {
        // The bucket count is at most 3600.
        #[allow(clippy::cast_possible_truncation)]
        let index = (second % self.buckets.len() as u64) as usize;
        index
    }

    /// Drops the buckets that fell out of the window since `head`.
    fn advance(&mut self, now_second: u64) {
        if now_second <= self.head {
            return;
        }
        let expired = (now_second - self.head).min(self.buckets.len() as u64);
        for step in 1..=expired {
            let index = self.index(self.head + step);
            let bucket = std::mem::take(&mut self.buckets[index]);
            self.total.calls -= bucket.calls;
            self.total.failures -= bucket.failures;
            self.total.slow -= bucket.slow;
        }
        self.head = now_second;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious implementation the windows must agree with.
    fn naive_count(outcomes: &[u8], size: usize) -> Snapshot {
        let kept = &outcomes[outcomes.len().saturating_sub(size)..];
        Snapshot {
            calls: kept.len() as u64,
            failures: kept.iter().filter(|o| *o & FAILED != 0).count() as u64,
            slow: kept.iter().filter(|o| *o & SLOW != 0).count() as u64,
        }
    }

    fn naive_time(calls: &[(u64, u8)], now: u64, seconds: u64) -> Snapshot {
        let kept: Vec<u8> = calls
            .iter()
            .filter(|(second, _)| *second + seconds > now)
            .map(|(_, outcome)| *outcome)
            .collect();
        naive_count(&kept, usize::MAX)
    }

    fn outcome() -> impl Strategy<Value = u8> {
        (any::<bool>(), any::<bool>()).prop_map(|(failed, slow)| {
            RECORDED | if failed { FAILED } else { 0 } | if slow { SLOW } else { 0 }
        })
    }

    proptest! {
        #[test]
        fn count_window_matches_naive(size in 1u32..20, outcomes in prop::collection::vec(outcome(), 0..100)) {
            let window = CountWindow::new(size);
            for (i, outcome) in outcomes.iter().enumerate() {
                let snapshot = window.record(*outcome);
                prop_assert_eq!(snapshot, naive_count(&outcomes[..=i], size as usize));
            }
            prop_assert_eq!(window.snapshot(), naive_count(&outcomes, size as usize));
        }

        #[test]
        fn time_window_matches_naive(
            seconds in 1u32..10,
            steps in prop::collection::vec((0u64..4, outcome()), 0..100),
        ) {
            let window = TimeWindow::new(seconds);
            let mut now = 0;
            let mut calls = Vec::new();
            for (gap, outcome) in steps {
                now += gap;
                calls.push((now, outcome));
                prop_assert_eq!(window.record(now, outcome), naive_time(&calls, now, u64::from(seconds)));
            }
            let later = now + 3;
            prop_assert_eq!(window.snapshot(later), naive_time(&calls, later, u64::from(seconds)));
        }
    }

    #[test]
    fn reset_empties_both_windows() {
        let count = CountWindow::new(4);
        count.record(RECORDED | FAILED);
        count.reset();
        assert_eq!(count.snapshot(), Snapshot::default());
        let time = TimeWindow::new(4);
        time.record(1, RECORDED | SLOW);
        time.reset();
        assert_eq!(time.snapshot(1), Snapshot::default());
    }

    #[test]
    fn concurrent_records_keep_exact_totals() {
        let window = std::sync::Arc::new(CountWindow::new(64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let window = window.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        let failed = (i + t) % 3 == 0;
                        window.record(RECORDED | if failed { FAILED } else { 0 });
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Whatever interleaving happened, the totals equal the slot contents.
        let failed_slots = window
            .slots
            .iter()
            .filter(|slot| slot.load(Ordering::Relaxed) & FAILED != 0)
            .count() as u64;
        let snapshot = window.snapshot();
        assert_eq!(snapshot.calls, 64);
        assert_eq!(snapshot.failures, failed_slots);
    }
}
