//! The state every limiter shares with its clones and services: GCRA
//! steps by compare-and-swap on one `AtomicU64`, waiting for a permit in
//! order, and the counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::config::{RateLimiterConfig, RateLimiterStats};
use super::gcra::{Gcra, RateLimitDecision};
use crate::RateLimited;
use crate::clock::{Clock, Stopwatch, duration_nanos};

/// Configuration, clock and counters of a limiter, global or keyed, and
/// the GCRA state of its global (or overflow) budget.
pub(crate) struct Shared {
    pub(super) name: Arc<str>,
    pub(super) config: RateLimiterConfig,
    pub(super) gcra: Gcra,
    pub(super) stopwatch: Stopwatch,
    pub(super) tat: AtomicU64,
    pub(super) permitted: AtomicU64,
    pub(super) rejected: AtomicU64,
}

/// The outcome of one GCRA step: the state and time it was decided at.
enum Step {
    Allowed { tat: u64, now: u64 },
    Denied { tat: u64, now: u64, wait: u64 },
}

impl Shared {
    pub(super) fn new(name: Arc<str>, config: RateLimiterConfig, clock: &Clock) -> Self {
        Self {
            name,
            gcra: config.gcra(),
            config,
            stopwatch: clock.stopwatch(),
            tat: AtomicU64::new(0),
            permitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(super) fn now(&self) -> u64 {
        self.stopwatch.nanos()
    }

    /// One GCRA step on `state`, with header numbers.
    #[inline]
    pub(super) fn check_state(&self, state: &AtomicU64, weight: u32) -> RateLimitDecision {
        match self.step(state, weight) {
            Step::Allowed { tat, now } => self.gcra.decision(tat, now, true, 0),
            Step::Denied { tat, now, wait } => self.gcra.decision(tat, now, false, wait),
        }
    }

    /// One GCRA step for a single permit, reporting only the verdict.
    #[inline]
    pub(super) fn try_acquire(&self, state: &AtomicU64) -> Result<(), RateLimited> {
        match self.step(state, 1) {
            Step::Allowed { .. } => Ok(()),
            Step::Denied { wait, .. } => Err(RateLimited {
                retry_after: Duration::from_nanos(wait),
            }),
        }
    }

    /// Takes `weight` permits by compare-and-swap, or counts a rejection.
    #[inline]
    fn step(&self, state: &AtomicU64, weight: u32) -> Step {
        let now = self.now();
        let mut tat = state.load(Ordering::Acquire);
        loop {
            match self.gcra.check(tat, now, weight) {
                Ok(new_tat) => match state.compare_exchange_weak(
                    tat,
                    new_tat,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.permitted.fetch_add(1, Ordering::Relaxed);
                        return Step::Allowed { tat: new_tat, now };
                    }
                    Err(current) => tat = current,
                },
                Err(wait) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Step::Denied { tat, now, wait };
                }
            }
        }
    }

    /// Takes a permit, reserving one up to `max_wait` ahead and sleeping
    /// until it is due, so waiting callers are served in order.
    pub(super) async fn acquire(&self, state: &AtomicU64) -> Result<(), RateLimited> {
        let max_wait = duration_nanos(self.config.max_wait);
        let now = self.now();
        let mut tat = state.load(Ordering::Acquire);
        loop {
            let (new_tat, wait) = match self.gcra.check(tat, now, 1) {
                Ok(new_tat) => (new_tat, 0),
                Err(wait) if wait <= max_wait => (tat.max(now) + self.gcra.interval(), wait),
                Err(wait) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(RateLimited {
                        retry_after: Duration::from_nanos(wait),
                    });
                }
            };
            match state.compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.permitted.fetch_add(1, Ordering::Relaxed);
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_nanos(wait)).await;
                    }
                    return Ok(());
                }
                Err(current) => tat = current,
            }
        }
    }

    pub(super) fn stats(&self, state: &AtomicU64, keys: u64) -> RateLimiterStats {
        let decision = self
            .gcra
            .decision(state.load(Ordering::Acquire), self.now(), true, 0);
        RateLimiterStats {
            name: self.name.to_string(),
            available_permissions: decision.remaining,
            permitted_total: self.permitted.load(Ordering::Relaxed),
            rejected_total: self.rejected.load(Ordering::Relaxed),
            keys,
        }
    }
}
