//! Retry budget: retries may add at most a fixed fraction of extra load.
//!
//! Finagle's and Envoy's model, also tower's `TpsBudget`: every original
//! call deposits `retry_ratio` of a token, every retry withdraws one whole
//! token, deposits expire after `ttl`, and `min_retries_per_second * ttl`
//! tokens are always available so low-traffic clients can still retry.
//! Tokens are counted in thousandths as integers, so a ratio of 0.2 allows
//! exactly one retry per five calls with no float drift.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;
use crate::clock::duration_nanos;

const MILLI_TOKENS: i64 = 1000;
const BUCKETS: usize = 10;

/// Retry budget settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// How long a deposit counts. 10 s.
    #[serde(with = "crate::duration")]
    pub ttl: Duration,
    /// Retries always allowed per second of `ttl`. 10.
    pub min_retries_per_second: u32,
    /// Extra load allowed, as a fraction of calls: 0.2 = 20%. Up to 1000.
    pub retry_ratio: f64,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            min_retries_per_second: 10,
            retry_ratio: 0.2,
        }
    }
}

impl RetryBudgetConfig {
    pub(crate) fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&self.ttl) {
            return Err(ConfigError::new(
                "Retry",
                name,
                "budget.ttl",
                "must be between 1 s and 60 s",
            ));
        }
        if !(0.0..=1000.0).contains(&self.retry_ratio) {
            return Err(ConfigError::new(
                "Retry",
                name,
                "budget.retry_ratio",
                "must be in [0, 1000]",
            ));
        }
        Ok(())
    }
}

/// The running balance. Deposits and withdrawals go to the bucket of the
/// current tenth of `ttl`; a bucket is zeroed when its slot comes round
/// again, which is when its entries expire.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    bucket_nanos: u64,
    deposit: i64,
    reserve: i64,
    buckets: [AtomicI64; BUCKETS],
    generations: [AtomicU64; BUCKETS],
}

impl RetryBudget {
    pub(crate) fn new(config: &RetryBudgetConfig) -> Self {
        // Validated: ratio in [0, 1000] fits easily.
        #[allow(clippy::cast_possible_truncation)]
        let deposit = (config.retry_ratio * MILLI_TOKENS as f64).round() as i64;
        let ttl_seconds = i64::try_from(config.ttl.as_secs()).unwrap_or(60);
        Self {
            bucket_nanos: (duration_nanos(config.ttl) / BUCKETS as u64).max(1),
            deposit,
            reserve: i64::from(config.min_retries_per_second) * ttl_seconds * MILLI_TOKENS,
            buckets: std::array::from_fn(|_| AtomicI64::new(0)),
            generations: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The bucket for `now`, rotated if its previous contents expired.
    #[inline]
    fn bucket(&self, now: u64) -> &AtomicI64 {
        let generation = now / self.bucket_nanos + 1;
        // BUCKETS is tiny.
        #[allow(clippy::cast_possible_truncation)]
        let index = (generation % BUCKETS as u64) as usize;
        let seen = self.generations[index].load(Ordering::Acquire);
        if seen != generation
            && self.generations[index]
                .compare_exchange(seen, generation, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.buckets[index].store(0, Ordering::Release);
        }
        &self.buckets[index]
    }

    #[inline]
    pub(crate) fn deposit(&self, now: u64) {
        if self.deposit != 0 {
            self.bucket(now).fetch_add(self.deposit, Ordering::AcqRel);
        }
    }

    /// Takes one retry's worth if the balance allows it.
    pub(crate) fn try_withdraw(&self, now: u64) -> bool {
        if self.balance(now) < MILLI_TOKENS {
            return false;
        }
        self.bucket(now).fetch_sub(MILLI_TOKENS, Ordering::AcqRel);
        true
    }

    /// Reserve plus the unexpired buckets, in thousandths of a retry.
    pub(crate) fn balance(&self, now: u64) -> i64 {
        let current = now / self.bucket_nanos + 1;
        let live = (0..BUCKETS)
            .filter(|&index| {
                let generation = self.generations[index].load(Ordering::Acquire);
                generation + BUCKETS as u64 > current && generation <= current
            })
            .map(|index| self.buckets[index].load(Ordering::Acquire))
            .sum::<i64>();
        self.reserve + live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn budget(min_per_second: u32, ratio: f64) -> RetryBudget {
        RetryBudget::new(&RetryBudgetConfig {
            ttl: Duration::from_secs(10),
            min_retries_per_second: min_per_second,
            retry_ratio: ratio,
        })
    }

    #[test]
    fn twenty_percent_allows_one_retry_per_five_calls() {
        let budget = budget(0, 0.2);
        for _ in 0..100 {
            budget.deposit(0);
        }
        let retries = (0..1000).take_while(|_| budget.try_withdraw(0)).count();
        assert_eq!(retries, 20);
    }

    #[test]
    fn a_third_is_exact_in_thousandths() {
        // 0.333 per call: 3000 calls deposit 999 tokens, not 1000.
        let budget = budget(0, 1.0 / 3.0);
        for _ in 0..3000 {
            budget.deposit(0);
        }
        assert_eq!(
            (0..2000).take_while(|_| budget.try_withdraw(0)).count(),
            999
        );
    }

    #[test]
    fn the_reserve_allows_retries_without_traffic() {
        let budget = budget(1, 0.2);
        assert_eq!((0..100).take_while(|_| budget.try_withdraw(0)).count(), 10);
    }

    #[test]
    fn deposits_expire_after_the_ttl() {
        let budget = budget(0, 1.0);
        for _ in 0..10 {
            budget.deposit(0);
        }
        assert_eq!(budget.balance(5 * SECOND), 10 * MILLI_TOKENS);
        assert_eq!(budget.balance(11 * SECOND), 0);
        assert!(!budget.try_withdraw(11 * SECOND));
    }
}
