//! The generic cell rate algorithm, on one `u64` of state.
//!
//! State is the theoretical arrival time (TAT) in nanoseconds since the
//! limiter's origin. A request of weight `n` at `now` is allowed when
//! `max(TAT, now) + n·T - now <= τ + T`, where `T` is the emission interval
//! (period / permits) and `τ = (burst - 1)·T`; it then moves TAT forward by
//! `n·T`. Equivalent to a token bucket of `burst` tokens refilled one per
//! `T`, but one integer instead of two and no refill timer.

use std::time::Duration;

use crate::clock::duration_nanos;

/// Emission interval and tolerance of a configured limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gcra {
    /// Nanoseconds per permit.
    interval: u64,
    /// Nanoseconds of burst tolerance: `(burst - 1) * interval`.
    tolerance: u64,
    burst: u32,
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The burst size (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests that could proceed right now after this one.
    pub remaining: u32,
    /// Until the limiter is back to a full burst.
    pub reset: Duration,
    /// For a rejected request: when it would be allowed.
    pub retry_after: Duration,
}

impl Gcra {
    pub(crate) fn new(permits: u32, period: Duration, burst: u32) -> Self {
        let interval = (duration_nanos(period) / u64::from(permits.max(1))).max(1);
        Self {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst.max(1) - 1)),
            burst: burst.max(1),
        }
    }

    pub(crate) fn interval(&self) -> u64 {
        self.interval
    }

    /// The new TAT if a request of `weight` at `now` is allowed, else the
    /// wait until it would be.
    #[inline]
    pub(crate) fn check(&self, tat: u64, now: u64, weight: u32) -> Result<u64, u64> {
        let start = tat.max(now);
        let cost = self.interval.saturating_mul(u64::from(weight));
        let new_tat = start.saturating_add(cost);
        let allowed_until = now
            .saturating_add(self.tolerance)
            .saturating_add(self.interval);
        if new_tat <= allowed_until {
            Ok(new_tat)
        } else {
            Err(new_tat - allowed_until)
        }
    }

    /// Headers-worth of information about state `tat` at `now`.
    pub(crate) fn decision(
        &self,
        tat: u64,
        now: u64,
        allowed: bool,
        retry_after: u64,
    ) -> RateLimitDecision {
        let ahead = tat.saturating_sub(now);
        let headroom = (self.tolerance + self.interval).saturating_sub(ahead);
        RateLimitDecision {
            allowed,
            limit: self.burst,
            remaining: u32::try_from(headroom / self.interval)
                .unwrap_or(u32::MAX)
                .min(self.burst),
            reset: Duration::from_nanos(ahead),
            retry_after: Duration::from_nanos(retry_after),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn allows_a_burst_then_one_per_interval() {
        // 10 per second, burst 3: T = 100 ms.
        let gcra = Gcra::new(10, Duration::from_secs(1), 3);
        let mut tat = 0;
        for expected_remaining in [2, 1, 0] {
            tat = gcra.check(tat, 0, 1).unwrap();
            assert_eq!(gcra.decision(tat, 0, true, 0).remaining, expected_remaining);
        }
        assert_eq!(gcra.check(tat, 0, 1), Err(100 * MS));
        assert_eq!(gcra.check(tat, 50 * MS, 1), Err(50 * MS));
        tat = gcra.check(tat, 100 * MS, 1).unwrap();
        assert_eq!(gcra.check(tat, 100 * MS, 1), Err(100 * MS));
        // Idle long enough and the whole burst is back.
        let decision = gcra.decision(tat, 10_000 * MS, true, 0);
        assert_eq!((decision.remaining, decision.reset), (3, Duration::ZERO));
    }

    #[test]
    fn weights_cost_several_permits() {
        let gcra = Gcra::new(10, Duration::from_secs(1), 5);
        let tat = gcra.check(0, 0, 5).unwrap();
        assert!(gcra.check(tat, 0, 1).is_err());
        assert!(gcra.check(0, 0, 6).is_err());
    }
}
